"""scripts/install.sh decides what to install without touching the machine's services: its
decision logic runs for real (--dry-run), with recording stand-ins for the commands that could
change the machine (apt-get, systemctl, service, invoke-rc.d) first on PATH."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install.sh"
GUARDED = ("apt-get", "systemctl", "service", "invoke-rc.d", "sudo")


def _stand_ins(directory: Path, *, nginx: bool) -> Path:
    """A bin directory whose guarded commands only record that they were called."""
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    calls = directory / "calls.log"
    for name in GUARDED:
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n')
        path.chmod(0o755)
    if nginx:
        fake = bin_dir / "nginx"
        fake.write_text("#!/bin/sh\necho 'nginx version: nginx/1.99 (already here)'\n")
        fake.chmod(0o755)
    return bin_dir


def _run(tmp_path: Path, *args: str, nginx: bool) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir = _stand_ins(tmp_path, nginx=nginx)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "AUDITOR_NGINX_CANDIDATES": ""}
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    calls = tmp_path / "calls.log"
    return proc, calls.read_text() if calls.exists() else ""


def test_an_installed_nginx_is_used_as_it_is(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, "--test", "--dry-run", nginx=True)
    assert proc.returncode == 0, proc.stderr
    assert f"nginx: using the installed {tmp_path}/bin/nginx" in proc.stderr
    planned = [line for line in proc.stderr.splitlines() if "packages to install" in line]
    assert not any("nginx" in line for line in planned), planned
    assert calls == "", f"the dry run called {calls!r}"


def test_a_missing_nginx_is_announced_before_anything_is_installed(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, "--test", "--dry-run", nginx=False)
    assert proc.returncode == 0, proc.stderr
    assert "Debian packages to install: nginx" in proc.stderr
    assert "service kept from starting" in proc.stderr
    assert calls == "", f"the dry run called {calls!r}"


def test_the_tool_alone_never_asks_for_nginx(tmp_path: Path) -> None:
    proc, calls = _run(tmp_path, "--dry-run", nginx=False)
    assert proc.returncode == 0, proc.stderr
    assert "nginx" not in proc.stderr
    assert calls == ""


def test_the_script_never_stops_or_restarts_a_service() -> None:
    """No command position in the script (outside comments) names a service or process manager."""
    command = re.compile(
        r"(^|[;&|]\s*|\$\(\s*|then\s+|do\s+)(systemctl|service|invoke-rc\.d|killall|pkill|kill)\b"
    )
    code = [
        line.split(" #", 1)[0]
        for line in SCRIPT.read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    assert [line for line in code if command.search(line.strip())] == []


@pytest.mark.parametrize("bad", ["--tests", "-t"])
def test_unknown_options_are_refused(tmp_path: Path, bad: str) -> None:
    proc, calls = _run(tmp_path, bad, nginx=True)
    assert proc.returncode == 2
    assert "unknown option" in proc.stderr
    assert calls == ""
