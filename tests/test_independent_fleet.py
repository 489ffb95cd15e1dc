"""Independent tests of fleet mode (issue 17, section 1), written from the issue and the README
alone: a nightly run spread over two real `auditor worker` processes (real redis-server, real
PostgreSQL, real nginx targets, an aiosmtpd inbox) must give what the embedded night gives for the
same targets (verdicts, summary, exit code, files, mail), and every command that reads the history
(`history`, `diff`, `verify-log`, `metrics`, `serve`) must work on what the workers stored.

One module-scoped fleet runs two nights over four targets: a compliant site, a site breaking the
policy, a name with two addresses (one breaking the policy) and a closed port. Between the nights the
failing site gains HSTS and the closed port starts serving a compliant site."""

from __future__ import annotations

import contextlib
import email
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from tests.conftest import ROOT, CliRun, clause_statuses, run_cli
from tests.harness import postgres_server
from tests.harness.dashboard_server import Dashboard
from tests.harness.pki import TestPKI
from tests.harness.process_server import free_port, terminate
from tests.harness.redis_server import RedisServer
from tests.harness.servers import NginxSite

pytestmark = [
    pytest.mark.skipif(not RedisServer.available(), reason="redis-server not installed"),
    pytest.mark.skipif(not postgres_server.available(), reason="PostgreSQL (initdb, pg_ctl) not installed"),
    pytest.mark.skipif(
        not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")), reason="nginx not installed"
    ),
    pytest.mark.skipif(importlib.util.find_spec("celery") is None, reason="the fleet extra is not installed"),
]

NIGHT_1_CRON = "0 2 * * *"
NIGHT_2_CRON = "30 1 * * *"  # another cron time: another night for the fleet_runs claim


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:  # noqa: N802  # aiosmtpd hook
        assert isinstance(envelope.original_content, bytes)
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=default))
        return "250 OK"


@dataclass
class Fleet:
    """What the module's two fleet nights (and the embedded night) left behind."""

    config: Path  # the fleet config of night 2 (same database, queue and targets as night 1)
    night_1_config: Path
    embedded_config: Path
    database: str  # the psycopg URL of the shared history
    postgres: str  # the PostgreSQL server's URL (for more databases)
    broker: str
    targets: str  # the [[targets]] entries of the nights
    textfile: Path  # [metrics] textfile of the fleet nights
    mails: list[Message]  # what the fleet nights mailed
    urls: dict[str, str]  # name -> URL
    night_1: CliRun
    night_1_report: dict[str, Any]  # latest.json right after night 1
    night_1_files: set[str]  # [output] directory after night 1
    second_scheduler: CliRun  # `schedule --once` again for night 1
    after_second_scheduler: set[str]
    embedded: CliRun
    embedded_report: dict[str, Any]
    night_2: CliRun
    night_2_report: dict[str, Any]


def _targets(urls: dict[str, str], bundle: Path) -> str:
    """The [[targets]] entries; the target named "multi" has two endpoints (127.0.0.2 and 127.0.0.3)."""
    return "".join(
        f'[[targets]]\nname = "{name}"\nurl = "{url}"\n'
        + ('ips = ["127.0.0.2", "127.0.0.3"]\n' if name == "multi" else 'ip = "127.0.0.1"\n')
        + f'ca_bundle = "{bundle}"\nhttp_port = 9\n'
        for name, url in urls.items()
    )


def _write_config(directory: Path, history: str, targets: str, cron: str, fleet: str = "") -> Path:
    directory.mkdir(mode=0o700, exist_ok=True)
    config = directory / "config.toml"
    config.write_text(
        f'[schedule]\ncron = "{cron}"\n[scan]\nconcurrency = 4\ntimeout = 5\n'
        f'[output]\ndirectory = "out"\n[history]\ndatabase = "{history}"\n{fleet}{targets}'
    )
    return config


def _worker(config: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "auditor", "worker", "--config", str(config), "--concurrency", "2"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        start_new_session=True,
    )


def _latest(config: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((config.parent / "out" / "latest.json").read_text())
    return report


def _files(config: Path) -> set[str]:
    return {p.name for p in (config.parent / "out").iterdir()}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("independent-fleet")
    good = NginxSite(issued=pki.issue("ind-fleet-good", hosts=["good.test"]), server_name="good.test")
    bad_cert = pki.issue("ind-fleet-bad", hosts=["bad.test"], days_valid=20)
    bad = NginxSite(issued=bad_cert, server_name="bad.test", protocols="TLSv1.2", hsts=None)
    multi_port = free_port()
    multi_cert = pki.issue("ind-fleet-multi", hosts=["multi.test"])
    multi = [  # one name, two addresses: one kept to the policy, one with TLS 1.2 only
        NginxSite(issued=multi_cert, server_name="multi.test", address="127.0.0.2", https_port=multi_port),
        NginxSite(
            issued=multi_cert,
            server_name="multi.test",
            address="127.0.0.3",
            https_port=multi_port,
            protocols="TLSv1.2",
        ),
    ]
    late_port = free_port()
    urls = {
        "good": good.url,
        "bad": bad.url,
        "multi": multi[0].url,
        "late": f"https://late.test:{late_port}/",
    }
    targets = _targets(urls, pki.root_path)
    with contextlib.ExitStack() as stack:
        for site in (good, bad, *multi):
            stack.enter_context(site)
        redis = stack.enter_context(RedisServer())
        server = stack.enter_context(postgres_server.running_postgres())
        database = postgres_server.create_database(server, "independent_fleet")
        textfile = base / "textfile" / "auditor.prom"
        textfile.parent.mkdir()
        inbox, smtp_port = Inbox(), free_port()
        smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        stack.callback(smtp.stop)
        fleet_section = (
            f'[fleet]\nbroker = "{redis.url}"\nrun_deadline = 90\n[metrics]\ntextfile = "{textfile}"\n'
            f'[email]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
            'from = "auditor@example.test"\nto = ["ops@example.test"]\nnotify = "always"\n'
        )
        night_1_config = _write_config(base / "fleet", database, targets, NIGHT_1_CRON, fleet_section)
        workers = [
            _worker(night_1_config, stack.enter_context((base / f"worker{i}.log").open("wb"))) for i in (1, 2)
        ]
        for worker in workers:
            stack.callback(terminate, worker)

        embedded_config = _write_config(base / "embedded", "history.sqlite", targets, NIGHT_1_CRON)
        embedded = run_cli(  # with the import log on stderr
            "schedule", "--once", "--config", str(embedded_config), env={"PYTHONPROFILEIMPORTTIME": "1"}
        )
        night_1 = run_cli("schedule", "--once", "--config", str(night_1_config))
        night_1_report, night_1_files = _latest(night_1_config), _files(night_1_config)
        second_scheduler = run_cli("schedule", "--once", "--config", str(night_1_config))
        after_second_scheduler = _files(night_1_config)

        # Between the nights: the failing site gains HSTS on the same port; the closed port opens.
        bad.stop()
        stack.enter_context(
            NginxSite(issued=bad_cert, server_name="bad.test", protocols="TLSv1.2", https_port=bad.https_port)
        )
        late_cert = pki.issue("ind-fleet-late", hosts=["late.test"])
        stack.enter_context(NginxSite(issued=late_cert, server_name="late.test", https_port=late_port))
        config = night_1_config.parent / "night2.toml"
        config.write_text(night_1_config.read_text().replace(NIGHT_1_CRON, NIGHT_2_CRON))
        night_2 = run_cli("schedule", "--once", "--config", str(config))
        yield Fleet(
            config=config,
            night_1_config=night_1_config,
            embedded_config=embedded_config,
            database=database.replace("postgresql+psycopg://", "postgresql://", 1),
            postgres=server,
            broker=redis.url,
            targets=targets,
            textfile=textfile,
            mails=inbox.messages,
            urls=urls,
            night_1=night_1,
            night_1_report=night_1_report,
            night_1_files=night_1_files,
            second_scheduler=second_scheduler,
            after_second_scheduler=after_second_scheduler,
            embedded=embedded,
            embedded_report=_latest(embedded_config),
            night_2=night_2,
            night_2_report=_latest(config),
        )


def _by_url(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["target"]["url"]: t for t in report["targets"]}


def _verdict(target: dict[str, Any]) -> tuple[Any, ...]:
    grade = target["grade"]["letter"] if target["grade"] else None
    endpoints = [
        (
            e["address"],
            e["compliant"],
            e["letter"],
            e["error"],
            sorted((f["clause"], f["status"]) for f in e["findings"]),
        )
        for e in target.get("endpoints") or []
    ]
    return target["compliant"], grade, target["error"], clause_statuses(target), endpoints


def test_fleet_night_gives_the_embedded_nights_verdicts(fleet: Fleet) -> None:
    """Same targets, same moment: the same letters, compliance, errors and clause statuses."""
    assert fleet.embedded.code == 3, fleet.embedded.stderr
    fleet_targets, embedded_targets = _by_url(fleet.night_1_report), _by_url(fleet.embedded_report)
    assert set(fleet_targets) == set(embedded_targets) == set(fleet.urls.values())
    for url, target in fleet_targets.items():
        assert _verdict(target) == _verdict(embedded_targets[url]), url
    multi = fleet_targets[fleet.urls["multi"]]
    assert {e["address"]: e["compliant"] for e in multi["endpoints"]} == {
        "127.0.0.2": True,
        "127.0.0.3": False,
    }


def test_the_embedded_night_imports_no_fleet_dashboard_or_metrics_library(fleet: Fleet) -> None:
    """Without [fleet], [serve] and [metrics] the embedded mode stays as light as it was."""
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in fleet.embedded.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "auditor" in imported  # the import log is there
    assert not imported & {"celery", "kombu", "redis", "starlette", "uvicorn", "prometheus_client"}


def test_fleet_night_exit_code_and_summary_are_the_embedded_ones(fleet: Fleet) -> None:
    """Night 1 has a target not audited (exit 3, which wins over 1); night 2 only a policy break (exit 1).
    `schedule --once` prints the same summary as `audit --quiet`."""
    assert fleet.night_1.code == 3, fleet.night_1.stderr
    assert fleet.night_1.stdout == fleet.embedded.stdout
    assert "NOT AUDITED late" in fleet.night_1.stdout
    assert fleet.night_2.code == 1, fleet.night_2.stdout + fleet.night_2.stderr
    lines = fleet.night_2.stdout.splitlines()
    assert any(line.startswith("NOT COMPLIANT bad") for line in lines)
    assert any(line.startswith("COMPLIANT late") for line in lines)


def test_every_target_is_reported_and_stored_once_per_night(fleet: Fleet) -> None:
    for report in (fleet.night_1_report, fleet.night_2_report):
        assert sorted(t["target"]["url"] for t in report["targets"]) == sorted(fleet.urls.values())
    history = run_cli("history", "--config", str(fleet.config))
    assert history.code == 0, history.stderr
    for url in fleet.urls.values():
        assert history.stdout.count(url) == 2, history.stdout


def test_each_result_is_stored_once_in_the_shared_database(fleet: Fleet) -> None:
    import psycopg  # lazy: only with a PostgreSQL server

    with psycopg.connect(fleet.database) as conn:
        entries = conn.execute(
            "SELECT target_url, count(*) FROM evidence_log WHERE kind = 'scan' GROUP BY target_url"
        ).fetchall()
        results = conn.execute(
            "SELECT count(*), count(DISTINCT (run_id, target_url)) FROM fleet_results"
        ).fetchone()
    assert dict(entries) == dict.fromkeys(fleet.urls.values(), 2)
    assert results is not None and results[0] == results[1] >= 2 * len(fleet.urls)


def test_fleet_night_writes_the_embedded_nights_files(fleet: Fleet) -> None:
    """nightly-<time>.json/.html, latest.json and the witness file, as the embedded night writes."""

    def kinds(names: set[str]) -> set[str]:
        return {n.split("-")[0] + Path(n).suffix if n.startswith("nightly-") else n for n in names}

    embedded_files = {p.name for p in (fleet.embedded_config.parent / "out").iterdir()}
    assert kinds(fleet.night_1_files) == kinds(embedded_files)
    assert {"latest.json", "evidence-log-heads.txt", "nightly.json", "nightly.html"} <= kinds(
        fleet.night_1_files
    )


def test_each_fleet_night_mails_one_report_with_every_target(fleet: Fleet) -> None:
    """Two nights, two mails (the refused second scheduler mails nothing), each with the JSON report."""
    assert len(fleet.mails) == 2, [m["Subject"] for m in fleet.mails]
    for mail, report in zip(fleet.mails, (fleet.night_1_report, fleet.night_2_report), strict=True):
        attached = [p for p in mail.walk() if p.get_content_type() == "application/json"]
        assert len(attached) == 1, mail["Subject"]
        payload = attached[0].get_payload(decode=True)
        assert isinstance(payload, bytes)
        mailed = _by_url(json.loads(payload))
        assert {url: _verdict(t) for url, t in mailed.items()} == {
            url: _verdict(t) for url, t in _by_url(report).items()
        }
    assert "bad" in fleet.mails[1]["Subject"] or fleet.urls["bad"] in fleet.mails[1]["Subject"]


def test_a_second_scheduler_for_the_same_night_runs_nothing(fleet: Fleet) -> None:
    assert fleet.second_scheduler.code == 3
    lines = fleet.second_scheduler.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor:") and "already taken" in lines[0], lines
    assert fleet.after_second_scheduler == fleet.night_1_files  # no report written


def test_diff_shows_what_changed_between_two_fleet_nights(fleet: Fleet) -> None:
    diff = run_cli("diff", fleet.urls["bad"], "--config", str(fleet.config))
    assert diff.code == 0, diff.stderr
    assert "11.5-hsts" in diff.stdout, diff.stdout
    assert "no change" not in diff.stdout
    same = run_cli("diff", fleet.urls["good"], "--config", str(fleet.config))
    assert same.code == 0 and "11.5-hsts" not in same.stdout, same.stdout


def test_changes_since_the_previous_scan_are_in_the_fleet_report(fleet: Fleet) -> None:
    """Each stored result carries the same history judgments as in the embedded mode."""
    bad = _by_url(fleet.night_2_report)[fleet.urls["bad"]]
    assert bad["changes"], bad["changes"]
    assert "11.5-hsts" in json.dumps(bad["changes"])
    assert clause_statuses(bad)["11.5-hsts"] == "pass"


def test_verify_log_after_fleet_nights_matches_the_printed_head(fleet: Fleet) -> None:
    verify = run_cli("verify-log", "--config", str(fleet.config))
    assert verify.code == 0, verify.stdout + verify.stderr
    head = fleet.night_2_report["meta"]["evidence_log_head"]
    assert f"head {head}" in verify.stdout + verify.stderr
    assert f"evidence log head {head}" in fleet.night_2.stderr
    witness = (fleet.config.parent / "out" / "evidence-log-heads.txt").read_text().splitlines()
    assert head in witness[-1].split()
    assert run_cli("verify-log", "--config", str(fleet.config), "--expect-head", head).code == 0


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families  # lazy: the metrics extra

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_textfile_and_dashboard_read_the_fleet_history(fleet: Fleet) -> None:
    """`auditor metrics`, the textfile the fleet night rewrote and `auditor serve` on PostgreSQL agree."""
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    metrics = run_cli("metrics", "--config", str(fleet.config))
    assert metrics.code == 0, metrics.stderr
    samples = _samples(metrics.stdout)
    assert _samples(fleet.textfile.read_text()) == samples  # the night rewrote the textfile
    with Dashboard(fleet.config) as dashboard:
        assert _samples(httpx.get(dashboard.url + "/metrics", timeout=30).text) == samples
        overview = httpx.get(dashboard.url + "/", timeout=30)
    assert overview.status_code == 200
    for url in fleet.urls.values():
        assert url in overview.text
    for target in fleet.night_2_report["targets"]:
        labels = (("target", target["target"]["url"]),)
        assert samples[("auditor_target_compliant", labels)] == (1.0 if target["compliant"] else 0.0)
    assert samples[("auditor_targets", (("state", "compliant"),))] == 2
    assert samples[("auditor_targets", (("state", "noncompliant"),))] == 2
    for address, compliant in (("127.0.0.2", 1), ("127.0.0.3", 0)):
        endpoint = (("address", address), ("target", fleet.urls["multi"]))
        assert samples[("auditor_endpoint_compliant", endpoint)] == compliant, address
    assert samples[("auditor_targets", (("state", "not_audited"),))] == 0
    assert samples[("auditor_evidence_log_verified", ())] == 1


def test_worker_without_fleet_broker_is_a_one_line_config_error(fleet: Fleet) -> None:
    run = run_cli("worker", "--config", str(fleet.embedded_config), timeout=60)
    assert run.code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor:") and "broker" in lines[0], run.stderr


def test_fleet_mode_with_a_sqlite_history_is_a_config_error(fleet: Fleet, tmp_path: Path) -> None:
    text = fleet.night_1_config.read_text()
    database = text.split('database = "', 1)[1].split('"', 1)[0]
    config = tmp_path / "config.toml"
    config.write_text(text.replace(database, "history.sqlite"))
    for command in (["schedule", "--once"], ["worker"]):
        run = run_cli(*command, "--config", str(config), timeout=60)
        assert run.code == 2, (command, run.stdout, run.stderr)
        assert run.stderr.strip().startswith("auditor:") and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "history.sqlite").exists()


def test_verify_log_and_metrics_catch_a_row_tampered_in_postgresql(fleet: Fleet) -> None:
    """Last in this module: it breaks the shared log."""
    import psycopg  # lazy: only with a PostgreSQL server

    with psycopg.connect(fleet.database, autocommit=True) as conn:
        row = conn.execute(
            "SELECT min(seq) FROM evidence_log WHERE target_url = %s", (fleet.urls["bad"],)
        ).fetchone()
        assert row is not None and row[0] is not None
        seq = row[0]
        conn.execute("UPDATE evidence_log SET grade = 'A+', compliant = true WHERE seq = %s", (seq,))
    verify = run_cli("verify-log", "--config", str(fleet.config))
    assert verify.code == 5, verify.stdout + verify.stderr
    assert str(seq) in verify.stdout + verify.stderr
    metrics = run_cli("metrics", "--config", str(fleet.config))
    assert _samples(metrics.stdout)[("auditor_evidence_log_verified", ())] == 0


def test_tasks_left_queued_past_the_deadline_store_nothing_when_a_worker_comes(
    fleet: Fleet, tmp_path: Path
) -> None:
    """No worker listens on the queue: at the deadline every target is "not audited: worker lost"
    (exit 3). A worker that starts later and takes the stale tasks must not add a second result
    for the same run and target; the log still verifies."""
    import psycopg  # lazy: only with a PostgreSQL server
    import redis  # lazy: the fleet extra

    database = postgres_server.create_database(fleet.postgres, "independent_orphan")
    section = f'[fleet]\nbroker = "{fleet.broker}"\nrun_deadline = 1\nqueue = "independent-orphan"\n'
    config = _write_config(tmp_path / "orphan", database, fleet.targets, NIGHT_1_CRON, section)
    night = run_cli("schedule", "--once", "--config", str(config))
    assert night.code == 3, night.stdout + night.stderr
    report = _latest(config)
    assert len(report["targets"]) == len(fleet.urls)
    assert all("worker lost" in (t["error"] or "") for t in report["targets"]), report["targets"]
    assert night.stdout.count("worker lost") == len(fleet.urls), night.stdout

    broker = redis.Redis.from_url(fleet.broker)
    with (tmp_path / "late-worker.log").open("wb") as log:
        worker = _worker(config, log)
        try:
            deadline = time.monotonic() + 60
            while broker.llen("independent-orphan") or broker.hlen("unacked"):
                assert time.monotonic() < deadline, "the late worker never took the stale tasks"
                assert worker.poll() is None, (tmp_path / "late-worker.log").read_text()
                time.sleep(0.2)
        finally:
            terminate(worker)
    with psycopg.connect(database.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        row = conn.execute("SELECT count(*) FROM evidence_log WHERE kind = 'scan'").fetchone()
    assert row == (len(fleet.urls),)
    verify = run_cli("verify-log", "--config", str(config))
    assert verify.code == 0, verify.stdout + verify.stderr
