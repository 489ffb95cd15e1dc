"""Shared fixtures: one throwaway PKI per test session, and helpers to run the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import postgres_server
from tests.harness.pki import TestPKI

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.stdout)
        return parsed


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 240,
    program: tuple[str, ...] = ("-m", "auditor"),
) -> CliRun:
    """Run `auditor` exactly as a user would: a separate process, no terminal. `program`: what the
    interpreter runs instead (a test's own wrapper around the CLI's entry point)."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    proc = subprocess.run(
        [sys.executable, *program, *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=full_env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr)


def clause_statuses(target: dict[str, Any]) -> dict[str, str]:
    """Worst status per clause of one target of a JSON report."""
    order = ["fail", "error", "warn", "info", "pass", "not_tested"]
    out: dict[str, str] = {}
    for f in target["findings"]:
        if f["clause"] not in out or order.index(f["status"]) < order.index(out[f["clause"]]):
            out[f["clause"]] = f["status"]
    return out


def audit_local_targets(targets: dict[str, tuple[str, Path]], directory: Path, scan: str = "") -> CliRun:
    """One real `auditor audit` run over named local targets {name: (url, CA bundle)}, connecting
    to 127.0.0.1; the JSON report on stdout (read it with `.report`). `scan`: more `[scan]` lines."""
    entries = "".join(
        f'[[targets]]\nname = "{name}"\nurl = "{url}"\nip = "127.0.0.1"\n'
        f'ca_bundle = "{bundle}"\nhttp_port = 9\n'
        for name, (url, bundle) in targets.items()
    )
    config = directory / "config.toml"
    config.write_text(f"[scan]\nconcurrency = 4\n{scan}[output]\nwrite_json = false\n{entries}")
    return run_cli("audit", "--config", str(config), "--json", "-", "--quiet")


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback for the module (tests.harness.postgres_server); its URL."""
    if not postgres_server.available():
        pytest.skip("PostgreSQL server binaries not installed")
    pytest.importorskip("psycopg")
    with postgres_server.running_postgres() as url:
        yield url
