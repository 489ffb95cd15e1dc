"""`auditor schedule` as a real process: it fires once on its own, stores, mails and keeps the
chain verifying; a missed run is caught up once at start-up; a second scheduler is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from auditor.store import Store
from auditor.testing.pki import TestPKI
from auditor.testing.servers import NginxSite, PythonTLSServer
from tests.conftest import ROOT, run_cli
from tests.test_email import PASSWORD, smtp  # noqa: F401  (the real SMTP server fixture)


def _cron_at(when: datetime) -> str:
    return f"{when.second} {when.minute} {when.hour} * * *"


def _config(tmp_path: Path, pki: TestPKI, url: str, cron: str, smtp_port: int | None = None) -> Path:
    mail = ""
    if smtp_port:
        mail = f"""
[email]
host = "127.0.0.1"
port = {smtp_port}
username = "auditor"
password_env = "AUDITOR_TEST_PW"
from = "auditor@example.test"
to = ["privacy@example.test"]
ca_bundle = "{pki.root_path}"
notify = "always"
"""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[schedule]
cron = "{cron}"
timezone = "UTC"
misfire_grace_time = 3600

[history]
database = "history.sqlite"

[output]
directory = "out"
{mail}
[[targets]]
url = "{url}"
ip = "127.0.0.1"
ca_bundle = "{pki.root_path}"
http_port = 9
""")
    return path


def _start(config: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    env = {**os.environ, "AUDITOR_TEST_PW": PASSWORD, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "auditor", "schedule", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen) -> tuple[str, str]:  # type: ignore[type-arg]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out, err


def _entries(tmp_path: Path) -> int:
    return Store(str(tmp_path / "history.sqlite")).verify().entries


@pytest.fixture(scope="module")
def site(pki: TestPKI) -> Iterator[PythonTLSServer]:
    with PythonTLSServer(pki.issue("scheduled"), response_headers=[("Strict-Transport-Security",
                                                                     "max-age=63072000")]) as server:
        yield server


def test_scheduler_fires_once_stores_mails_and_verifies(site, pki, tmp_path, smtp) -> None:  # noqa: ANN001, F811
    inbox, smtp_port = smtp
    fire_at = datetime.now(timezone.utc) + timedelta(seconds=6)
    config = _config(tmp_path, pki, site.url, _cron_at(fire_at), smtp_port)
    proc = _start(config)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((tmp_path / "out").glob("nightly-*.json")):
            time.sleep(0.5)
        # a second scheduler on the same database refuses to start
        second = run_cli("schedule", "--config", str(config), env={"AUDITOR_TEST_PW": PASSWORD})
        assert second.code == 3 and "refusing to start" in second.stderr
        time.sleep(3)
    finally:
        out, err = _stop(proc)
    assert "scheduler started; next run" in err and "scheduler stopped" in err
    assert out.count("nightly run stored 1 result") == 1
    assert _entries(tmp_path) == 1
    report = json.loads(next((tmp_path / "out").glob("nightly-*.json")).read_text())
    head = report["meta"]["evidence_log_head"]
    verify = run_cli("verify-log", "--config", str(config), "--expect-head", head)
    assert verify.code == 0, verify.stderr
    (_, _, message), = inbox.messages
    assert head in message.get_body(("plain",)).get_content()
    assert next((tmp_path / "out").glob("nightly-*.html")).read_text().count(head) == 1


def test_missed_run_is_caught_up_once_at_start_up(site, pki, tmp_path) -> None:  # noqa: ANN001
    fire_at = datetime.now(timezone.utc) + timedelta(seconds=5)
    config = _config(tmp_path, pki, site.url, _cron_at(fire_at))
    proc = _start(config)
    time.sleep(2)
    _stop(proc)  # the machine "goes off" before the night's run
    assert not (tmp_path / "history.sqlite").exists() or _entries(tmp_path) == 0
    time.sleep(max(0.0, (fire_at - datetime.now(timezone.utc)).total_seconds()) + 2)
    proc = _start(config)  # back on: the missed run happens once, now
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((tmp_path / "out").glob("nightly-*.json")):
            time.sleep(0.5)
        time.sleep(3)
    finally:
        out, _ = _stop(proc)
    assert out.count("nightly run stored") == 1
    assert _entries(tmp_path) == 1


def test_next_prints_the_schedule(site, pki, tmp_path) -> None:  # noqa: ANN001
    config = _config(tmp_path, pki, site.url, "0 2 * * *")
    run = run_cli("schedule", "--config", str(config), "--next")
    lines = run.stdout.strip().splitlines()
    assert run.code == 0 and len(lines) == 5 and all(line.endswith("02:00:00 UTC") for line in lines)


def test_history_and_diff_after_a_certificate_is_replaced(pki, tmp_path) -> None:  # noqa: ANN001
    first = NginxSite(tmp_path / "a", issued=pki.issue("before", days_valid=20))
    with first:
        config = _config(tmp_path, pki, first.url, "0 2 * * *")
        assert run_cli("schedule", "--config", str(config), "--once").code == 0
        assert run_cli("schedule", "--config", str(config), "--once").code == 0
    second = NginxSite(tmp_path / "b", issued=pki.issue("after", days_valid=90), protocols="TLSv1.2 TLSv1.3")
    second.https_port, second.http_port = first.https_port, first.http_port
    with second:
        assert run_cli("schedule", "--config", str(config), "--once").code == 0
    history = run_cli("history", "--config", str(config))
    assert history.code == 0 and history.stdout.count(first.url) == 3
    diff = run_cli("diff", "--config", str(config))
    assert diff.code == 0, diff.stderr
    assert "certificate" in diff.stdout and "replaced (renewed)" in diff.stdout
    assert "11.2-cert-renewal: fail -> pass" in diff.stdout
    # the second night, with the same expiring certificate, said renewal had failed
    older = run_cli("diff", "--config", str(config), "--scan", "1", "--scan", "2")
    assert older.code == 0 and "no change" in older.stdout
    store = Store(str(tmp_path / "history.sqlite"))
    night_two = store.get(2)
    renewal = next(f for f in night_two.findings if f.clause == "11.2-cert-renewal")
    assert "Renewal has failed" in renewal.detail
    assert store.verify().ok


def test_sigterm_during_a_scan_finishes_and_stores_it(pki, tmp_path) -> None:  # noqa: ANN001
    from tests.hostile.rawservers import RawServer, tarpit

    with RawServer(tarpit) as slow:
        fire_at = datetime.now(timezone.utc) + timedelta(seconds=4)
        config = _config(tmp_path, pki, f"https://good.test:{slow.port}/", _cron_at(fire_at))
        config.write_text(config.read_text().replace("[history]", "[scan]\ntimeout = 2\ntarget_timeout = 20\n\n"
                                                                   "[history]"))
        proc = _start(config)
        time.sleep(max(0.0, (fire_at - datetime.now(timezone.utc)).total_seconds()) + 1.5)
        assert proc.poll() is None
        out, err = _stop(proc)  # while the tarpit holds the scan
    assert "waiting for a scan in progress" in err
    assert out.count("nightly run stored 1 result") == 1  # finished and stored, not half-written
    check = Store(str(tmp_path / "history.sqlite")).verify()
    assert check.ok and check.entries == 1
