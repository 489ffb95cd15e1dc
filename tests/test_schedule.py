"""`auditor schedule` as a real process: it fires once on its own, stores, mails and keeps the
chain verifying; a missed run is caught up once at start-up; a second scheduler is refused."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.store import Store
from tests.conftest import ROOT, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer
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
    return subprocess.Popen(
        [sys.executable, "-m", "auditor", "schedule", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen) -> tuple[str, str]:  # type: ignore[type-arg]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out, err


def _entries(tmp_path: Path) -> int:
    return Store(str(tmp_path / "history.sqlite")).verify().entries


@pytest.fixture(scope="module")
def site(pki: TestPKI) -> Iterator[PythonTLSServer]:
    with PythonTLSServer(
        pki.issue("scheduled"), response_headers=[("Strict-Transport-Security", "max-age=63072000")]
    ) as server:
        yield server


def test_scheduler_fires_once_stores_mails_and_verifies(site, pki, tmp_path, smtp) -> None:  # noqa: F811
    inbox, smtp_port = smtp
    fire_at = datetime.now(UTC) + timedelta(seconds=6)
    config = _config(tmp_path, pki, site.url, _cron_at(fire_at), smtp_port)
    proc = _start(config)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((tmp_path / "out").glob("nightly-*.json")):
            time.sleep(0.5)
        # a second scheduler on the same database refuses to start
        second = run_cli("schedule", "--config", str(config), env={"AUDITOR_TEST_PW": PASSWORD})
        assert second.code == 3 and "refusing to start" in second.stderr
        once = run_cli("schedule", "--config", str(config), "--once", env={"AUDITOR_TEST_PW": PASSWORD})
        assert once.code == 3 and "refusing to start" in once.stderr  # never two runs at once
        time.sleep(3)
    finally:
        _out, err = _stop(proc)
    assert "scheduler started; next run" in err and "scheduler stopped" in err
    assert err.count("history: stored 1 result") == 1
    # the same verdict summary as `audit`, in the log: one line per target and the total
    verdicts = [line for line in err.splitlines() if line.startswith(("COMPLIANT ", "NOT COMPLIANT "))]
    assert len(verdicts) == 1 and site.url in verdicts[0] and err.count("Policy verdict: ") == 1
    assert _entries(tmp_path) == 1
    report = json.loads(next((tmp_path / "out").glob("nightly-*.json")).read_text())
    head = report["meta"]["evidence_log_head"]
    verify = run_cli("verify-log", "--config", str(config), "--expect-head", head)
    assert verify.code == 0, verify.stderr
    ((_, _, message),) = inbox.messages
    assert head in message.get_body(("plain",)).get_content()
    assert next((tmp_path / "out").glob("nightly-*.html")).read_text().count(head) == 1
    witnessed = (tmp_path / "out" / "evidence-log-heads.txt").read_text().split()
    assert witnessed[:2] == ["1", head]
    finding = next(f for f in report["targets"][0]["findings"] if f["clause"] == "11.6-evidence-log")
    assert finding["status"] == "pass"  # verified (empty) before the run


def test_missed_runs_are_caught_up_once_at_start_up(site, pki, tmp_path) -> None:
    """Three fire times pass while the scheduler is stopped: one run at start-up (coalesce), not
    zero (misfire grace) and not three."""
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    if first.second > 56:  # keep the three seconds inside one minute
        first = first.replace(second=0) + timedelta(minutes=1)
    cron = f"{first.second},{first.second + 1},{first.second + 2} {first.minute} {first.hour} * * *"
    config = _config(tmp_path, pki, site.url, cron)
    proc = _start(config)
    time.sleep(2)
    _stop(proc)  # the machine "goes off" before the night's runs
    assert not (tmp_path / "history.sqlite").exists() or _entries(tmp_path) == 0
    time.sleep(max(0.0, (first - datetime.now(UTC)).total_seconds()) + 4)
    proc = _start(config)  # back on: the missed runs happen once, now
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((tmp_path / "out").glob("nightly-*.json")):
            time.sleep(0.5)
        time.sleep(3)
    finally:
        _out, err = _stop(proc)
    assert "(missed while stopped: runs now)" in err
    assert err.count("history: stored") == 1
    assert _entries(tmp_path) == 1


def test_stored_job_follows_config_changes(site, pki, tmp_path) -> None:
    """The job store keeps the job between starts; a changed cron, timezone or grace time replaces
    the stored values (and a job store file is owner-only like the history)."""
    from auditor.config import load_config
    from auditor.schedule import JOB_ID, build_scheduler

    config_path = _config(tmp_path, pki, site.url, "0 2 * * *")
    scheduler = build_scheduler(load_config(config_path), config_path)
    job = scheduler.get_job(JOB_ID)
    assert (job.next_run_time.hour, job.coalesce, job.max_instances, job.misfire_grace_time) == (
        2,
        True,
        1,
        3600,
    )
    scheduler.shutdown()
    config_path.write_text(
        config_path.read_text()
        .replace('cron = "0 2 * * *"', 'cron = "30 4 * * 1"')
        .replace('timezone = "UTC"', 'timezone = "Asia/Tokyo"')
        .replace("misfire_grace_time = 3600", "misfire_grace_time = 600")
    )
    scheduler = build_scheduler(load_config(config_path), config_path)
    job = scheduler.get_job(JOB_ID)
    when = job.next_run_time
    assert (when.hour, when.minute, when.weekday(), str(when.tzinfo)) == (4, 30, 0, "Asia/Tokyo")
    assert job.misfire_grace_time == 600 and len(scheduler.get_jobs()) == 1
    scheduler.shutdown()
    assert stat.S_IMODE((tmp_path / "history.sqlite.jobs").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "field, weekdays",
    [
        ("1", {0}),
        ("0", {6}),
        ("7", {6}),
        ("1-5", {0, 1, 2, 3, 4}),
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("5-7", {4, 5, 6}),
        ("*", set(range(7))),
    ],
)
def test_crontab_weekday_numbers_mean_what_cron_means(field: str, weekdays: set[int]) -> None:
    """APScheduler 3 reads 0 as Monday; the config is crontab, where 0 and 7 are Sunday."""
    from auditor.cron import make_trigger

    trigger, when, seen = make_trigger(f"0 2 * * {field}", "Asia/Tokyo"), None, set()
    now = datetime(2026, 11, 24, tzinfo=UTC)
    for _ in range(14):
        when = trigger.get_next_fire_time(when, when or now)
        seen.add(when.weekday())
        assert (when.hour, when.minute, str(when.tzinfo)) == (2, 0, "Asia/Tokyo")
    assert seen == weekdays


def test_next_prints_the_schedule(site, pki, tmp_path) -> None:
    config = _config(tmp_path, pki, site.url, "0 2 * * *")
    run = run_cli("schedule", "--config", str(config), "--next")
    lines = run.stdout.strip().splitlines()
    assert run.code == 0 and len(lines) == 5 and all(line.endswith("02:00:00 UTC") for line in lines)


def _scheduler_in_a_slow_scan(tmp_path: Path, pki: TestPKI, port: int) -> subprocess.Popen:  # type: ignore[type-arg]
    """A scheduler whose run has started and is held by a tarpit (scan gives up after 6 s)."""
    fire_at = datetime.now(UTC) + timedelta(seconds=4)
    config = _config(tmp_path, pki, f"https://good.test:{port}/", _cron_at(fire_at))
    config.write_text(
        config.read_text().replace("[history]", "[scan]\ntimeout = 2\ntarget_timeout = 6\n\n[history]")
    )
    proc = _start(config)
    time.sleep(max(0.0, (fire_at - datetime.now(UTC)).total_seconds()) + 1.5)
    assert proc.poll() is None
    return proc


def test_sigterm_during_a_scan_finishes_and_stores_it(pki, tmp_path) -> None:
    from tests.hostile.rawservers import RawServer, tarpit

    with RawServer(tarpit) as slow:
        proc = _scheduler_in_a_slow_scan(tmp_path, pki, slow.port)
        _out, err = _stop(proc)  # while the tarpit holds the scan
    assert "waiting for a scan in progress" in err
    assert err.count("history: stored 1 result") == 1  # finished and stored, not half-written
    assert (
        "NOT AUDITED https://good.test:" in err
        and "Policy verdict: 0 compliant, 0 not compliant, 1 not audited" in err
    )
    check = Store(str(tmp_path / "history.sqlite")).verify()
    assert check.ok and check.entries == 1


def test_second_signal_abandons_the_scan_without_a_partial_record(pki, tmp_path) -> None:
    from tests.hostile.rawservers import RawServer, tarpit

    with RawServer(tarpit) as slow:
        proc = _scheduler_in_a_slow_scan(tmp_path, pki, slow.port)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "abandoning the scan in progress" in err
    assert "history: stored" not in out + err
    check = Store(str(tmp_path / "history.sqlite")).verify()
    assert check.ok and check.entries == 0


# ---- a hostile mail server under the scheduler (issue 13 item 8)


def _mail_to_trickle(config: Path, port: int, *, timeout: float, retries: int, backoff: float = 0) -> None:
    """Mail every run, without TLS, to the trickling server of tests/test_hostile_smtp.py."""
    config.write_text(
        config.read_text()
        + f"""
[email]
host = "127.0.0.1"
port = {port}
security = "none"
from = "auditor@example.test"
to = ["ops@example.test"]
notify = "always"
timeout = {timeout}
retries = {retries}
backoff = {backoff}
"""
    )


def _kill(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def test_a_trickling_mail_server_does_not_hold_the_next_run(site, pki, tmp_path) -> None:
    """Runs every 15 s, each mailed to a server that trickles its greeting for a minute. Before:
    the first run stayed in its mail step and the next ones were skipped ("maximum number of
    running instances reached"). Now each mail attempt ends at `timeout` and every run happens."""
    from tests.hostile.rawservers import RawServer
    from tests.test_hostile_smtp import Trickle

    trickle = Trickle()
    with RawServer(trickle) as smtp_server:
        config = _config(tmp_path, pki, site.url, "*/15 * * * * *")
        _mail_to_trickle(config, smtp_server.port, timeout=2, retries=0)
        proc = _start(config)
        try:
            two_runs = trickle.wait_for(2, timeout=50)  # two runs reached their mail step
            time.sleep(3)  # the second run's mail attempt ends
        finally:
            try:
                _, err = _stop(proc)
            finally:
                _kill(proc)
    assert "maximum number of running instances" not in err
    assert two_runs, err
    assert _entries(tmp_path) >= 2
    assert (
        err.count(f"mail to 127.0.0.1:{smtp_server.port} failed after 1 attempt: timed out after 2 s") >= 2
    ), err


def test_sigterm_during_a_stuck_mail_stops_without_retrying(site, pki, tmp_path) -> None:
    """SIGTERM while the mail step is held by a trickling server: the attempt in progress ends at
    its deadline (3 s), no retry follows (5 were allowed), the run's summary is logged and the
    service exits 0. Before: SIGTERM waited for every attempt, each as long as the server trickled."""
    from tests.hostile.rawservers import RawServer
    from tests.test_hostile_smtp import Trickle

    trickle = Trickle()
    with RawServer(trickle) as smtp_server:
        config = _config(tmp_path, pki, site.url, _cron_at(datetime.now(UTC) + timedelta(seconds=4)))
        _mail_to_trickle(config, smtp_server.port, timeout=3, retries=5, backoff=1)
        proc = _start(config)
        try:
            assert trickle.wait_for(1, timeout=40)  # the mail step has begun
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            asked = time.monotonic()
            _, err = proc.communicate(timeout=15)
            took = time.monotonic() - asked
        finally:
            _kill(proc)
    assert proc.returncode == 0, err
    assert took < 3 + 2, took
    assert (
        f"mail to 127.0.0.1:{smtp_server.port} failed after 1 attempt: timed out after 3 s "
        "(not retried: stopping)"
    ) in err
    assert err.count("history: stored 1 result") == 1 and "scheduler stopped" in err


def test_second_signal_after_the_run_is_stored_says_so(site, pki, tmp_path) -> None:
    """The second signal used to announce "abandoning the scan in progress (it is not stored)"
    whatever the run was doing; held in its mail step, the run was stored and `history` showed
    it. Now the message is true: before the commit nothing is stored (the test above with a
    tarpit), after it the message says the run is stored and only the rest is abandoned."""
    from tests.hostile.rawservers import RawServer
    from tests.test_hostile_smtp import Trickle

    trickle = Trickle()
    with RawServer(trickle) as smtp_server:
        config = _config(tmp_path, pki, site.url, _cron_at(datetime.now(UTC) + timedelta(seconds=4)))
        _mail_to_trickle(config, smtp_server.port, timeout=30, retries=0)
        proc = _start(config)
        try:
            assert trickle.wait_for(1, timeout=40)  # the mail step has begun
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
        finally:
            _kill(proc)
    assert proc.returncode == 130, err
    assert "(it is not stored)" not in err
    assert "second signal: stopping now; the run in progress is already stored" in err
    assert _entries(tmp_path) == 1
