"""Prometheus metrics of the history (issue 17 §4), over scans stored by one real `audit --store` of
local nginx sites (a compliant one, one breaking the policy) and a target nothing answers: the
textfile the pipeline rewrites, `auditor metrics`, parsed with prometheus_client's own parser and
checked against the run's JSON report and the certificates served; a tampered row turns the
evidence-log gauge to 0; a textfile that cannot be written leaves the run's exit status alone."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from auditor.metrics import exposition
from auditor.store import Store
from tests.conftest import ROOT, CliRun, clause_statuses, run_cli
from tests.harness.pki import TestPKI
from tests.harness.process_server import free_port
from tests.harness.servers import NginxSite

Labels = frozenset[tuple[str, str]]


def parse(text: str) -> dict[str, dict[Labels, float]]:
    """{family name: {labels: value}}, through prometheus_client's parser (which rejects bad syntax)."""
    return {
        family.name: {frozenset(sample.labels.items()): sample.value for sample in family.samples}
        for family in text_string_to_metric_families(text)
    }


def of(metrics: dict[str, dict[Labels, float]], name: str, **labels: str) -> float | None:
    return metrics[name].get(frozenset(labels.items()))


def target_config(name: str, url: str, pki: TestPKI, http_port: int) -> str:
    return (
        f'[[targets]]\nname = "{name}"\nurl = "{url}"\nip = "127.0.0.1"\n'
        f'ca_bundle = "{pki.root_path}"\nhttp_port = {http_port}\n'
    )


def write_config(directory: Path, textfile: Path, targets: str) -> Path:
    config = directory / "config.toml"
    config.write_text(
        f'[scan]\nconcurrency = 4\n[history]\ndatabase = "{directory / "history.sqlite"}"\n'
        f'[output]\ndirectory = "{directory / "out"}"\nwrite_json = false\n'
        f'[metrics]\ntextfile = "{textfile}"\n{targets}'
    )
    return config


@dataclass
class Stored:
    directory: Path
    config: Path
    textfile: Path
    run: CliRun
    report: dict[str, Any]
    good: NginxSite
    bad: NginxSite
    dead_url: str
    good_cert_not_after: datetime
    bad_cert_not_after: datetime

    def target(self, url: str) -> dict[str, Any]:
        return next(t for t in self.report["targets"] if t["target"]["url"] == url)


@pytest.fixture(scope="module")
def stored(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    """One `audit --store` of three targets with `[metrics] textfile` configured."""
    directory = tmp_path_factory.mktemp("metrics")
    good_cert = pki.issue("metrics-good", days_valid=90)
    bad_cert = pki.issue("metrics-bad", days_valid=20)  # inside the renewal window: 11.2-cert-renewal fails
    good = NginxSite(
        directory / "good",
        issued=good_cert,
        tls13_ciphersuites="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
    )
    bad = NginxSite(directory / "bad", issued=bad_cert, protocols="TLSv1.2")
    dead_url = f"https://dead.test:{free_port()}/"
    with good, bad:
        targets = (
            target_config("good", good.url, pki, good.http_port)
            + target_config("bad", bad.url, pki, bad.http_port)
            + target_config("dead", dead_url, pki, 9)
        )
        textfile = directory / "textfile" / "auditor.prom"
        config = write_config(directory, textfile, targets)
        report = directory / "report.json"
        run = run_cli("audit", "--config", str(config), "--store", "--json", str(report), "-q")
        yield Stored(
            directory,
            config,
            textfile,
            run,
            json.loads(report.read_text()),
            good,
            bad,
            dead_url,
            good_cert.cert.not_valid_after_utc,
            bad_cert.cert.not_valid_after_utc,
        )


def test_the_stored_run_rewrites_the_textfile(stored: Stored) -> None:
    assert stored.run.code == 3, stored.run.stderr  # the dead target was not audited
    assert "metrics" not in stored.run.stderr  # nothing to say about the textfile: it was written
    assert stat.S_IMODE(stored.textfile.stat().st_mode) == 0o644  # node_exporter, another user, reads it
    assert [p.name for p in stored.textfile.parent.iterdir()] == ["auditor.prom"]  # no temporary file left
    metrics = parse(stored.textfile.read_text())
    assert of(metrics, "auditor_target_compliant", target=stored.good.url) == 1
    assert of(metrics, "auditor_target_compliant", target=stored.bad.url) == 0
    assert of(metrics, "auditor_target_compliant", target=stored.dead_url) == 0
    assert of(metrics, "auditor_target_audited", target=stored.dead_url) == 0
    assert of(metrics, "auditor_target_audited", target=stored.bad.url) == 1
    assert metrics["auditor_targets"] == {
        frozenset({("state", "compliant")}): 1,
        frozenset({("state", "noncompliant")}): 1,
        frozenset({("state", "not_audited")}): 1,
    }
    assert metrics["auditor_evidence_log_verified"] == {frozenset(): 1}


def test_values_are_those_of_the_report_and_the_certificates(stored: Stored) -> None:
    metrics = parse(stored.textfile.read_text())
    for site, not_after in (
        (stored.good, stored.good_cert_not_after),
        (stored.bad, stored.bad_cert_not_after),
    ):
        target = stored.target(site.url)
        grade = target["grade"]
        assert of(metrics, "auditor_grade_score", target=site.url, letter=grade["letter"]) == grade["score"]
        assert of(
            metrics, "auditor_certificate_earliest_expiry_timestamp_seconds", target=site.url
        ) == pytest.approx(not_after.timestamp())
        started = datetime.fromisoformat(target["started_at"]).timestamp()
        assert of(metrics, "auditor_last_scan_timestamp_seconds", target=site.url) == pytest.approx(started)
        assert of(metrics, "auditor_scan_duration_seconds", target=site.url) == pytest.approx(
            target["duration_s"]
        )
        endpoints = {
            dict(labels)["address"]: value
            for labels, value in metrics["auditor_endpoint_compliant"].items()
            if ("target", site.url) in labels
        }
        assert endpoints == {e["address"]: float(e["compliant"]) for e in target["endpoints"]}
    # a target not audited has no certificate and no grade
    assert not [labels for labels in metrics["auditor_grade_score"] if ("target", stored.dead_url) in labels]
    assert (
        of(metrics, "auditor_certificate_earliest_expiry_timestamp_seconds", target=stored.dead_url) is None
    )


def test_clause_states_are_the_reports(stored: Stored) -> None:
    metrics = parse(stored.textfile.read_text())
    for site in (stored.good, stored.bad):
        states = [
            dict(labels) for labels in metrics["auditor_clause_status"] if ("target", site.url) in labels
        ]
        assert all(metrics["auditor_clause_status"][frozenset(s.items())] == 1 for s in states)
        assert {s["clause"]: s["status"] for s in states} == clause_statuses(stored.target(site.url))
        assert len(states) == len({s["clause"] for s in states})  # one status per clause
    assert of(
        metrics, "auditor_clause_status", target=stored.bad.url, clause="11.2-cert-renewal", status="fail"
    )


def test_the_command_prints_what_the_pipeline_wrote(stored: Stored) -> None:
    printed = run_cli("metrics", "--config", str(stored.config))
    assert printed.code == 0, printed.stderr
    assert printed.stdout == stored.textfile.read_text()
    elsewhere = stored.directory / "copy" / "auditor.prom"
    written = run_cli("metrics", "--config", str(stored.config), "--textfile", str(elsewhere))
    assert written.code == 0 and written.stdout == "", written.stderr
    assert elsewhere.read_text() == printed.stdout


def test_the_commands_exit_codes(stored: Stored, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    unwritable = run_cli("metrics", "--config", str(stored.config), "--textfile", str(blocker / "x.prom"))
    assert unwritable.code == 3 and "cannot write" in unwritable.stderr, unwritable.stderr
    (tmp_path / "none.toml").write_text(f'[history]\ndatabase = "{tmp_path / "none.sqlite"}"\n')
    missing = run_cli("metrics", "--config", str(tmp_path / "none.toml"))
    assert missing.code == 3 and "no history database" in missing.stderr, missing.stderr
    (tmp_path / "txt.toml").write_text('[metrics]\ntextfile = "auditor.txt"\n')
    not_prom = run_cli("metrics", "--config", str(tmp_path / "txt.toml"))
    assert not_prom.code == 2 and "reads only *.prom files" in not_prom.stderr, not_prom.stderr
    (tmp_path / "relative.toml").write_text('[metrics]\ntextfile = "textfile/auditor.prom"\n')
    relative = run_cli("metrics", "--config", str(tmp_path / "relative.toml"))
    assert relative.code == 2 and "give an absolute path" in relative.stderr, relative.stderr


def test_a_tampered_row_turns_the_log_gauge_to_0(stored: Stored, tmp_path: Path) -> None:
    copy = tmp_path / "history.sqlite"
    shutil.copy(stored.directory / "history.sqlite", copy)
    with sqlite3.connect(copy) as conn:
        conn.execute(
            "UPDATE evidence_log SET body = replace(body, '\"compliant\":false', '\"compliant\":true') WHERE seq = ("
            "SELECT seq FROM evidence_log WHERE body LIKE '%\"compliant\":false%' LIMIT 1)"
        )
        assert conn.total_changes == 1
    with Store(str(copy), create=False) as store:
        metrics = parse(exposition(store).decode())
    assert metrics["auditor_evidence_log_verified"] == {frozenset(): 0}
    with Store(str(stored.directory / "history.sqlite"), create=False) as store:
        assert parse(exposition(store).decode())["auditor_evidence_log_verified"] == {frozenset(): 1}


def test_a_textfile_not_written_is_one_line_and_keeps_the_exit_status(
    stored: Stored, pki: TestPKI, tmp_path: Path
) -> None:
    """The results are stored all the same: the verdict's exit status (0 here) stands."""
    (tmp_path / "blocker").write_text("")
    targets = target_config("good", stored.good.url, pki, stored.good.http_port)
    config = write_config(tmp_path, tmp_path / "blocker" / "auditor.prom", targets)
    run = run_cli("audit", "--config", str(config), "--store", "-q")
    assert run.code == 0, run.stderr
    problems = [line for line in run.stderr.splitlines() if "[metrics] textfile" in line]
    assert len(problems) == 1 and "not rewritten" in problems[0], run.stderr
    assert "history: stored 1 result" not in run.stderr  # -q; the store is checked instead
    with Store(str(tmp_path / "history.sqlite"), create=False) as store:
        assert len(store.history()) == 1


def test_auditing_never_imports_prometheus_client() -> None:
    code = (
        "import sys\n"
        "from auditor import app, cli\n"
        "from auditor.commands import audit, schedule\n"
        "cli.build_parser('audit')\n"
        "print(sorted(m for m in sys.modules if m.startswith('prometheus_client')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout == "[]\n", proc.stderr


def test_without_prometheus_client_the_error_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None\n"
        "from auditor.errors import ConfigError\n"
        "try:\n"
        "    import auditor.metrics\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "pip install 'tls-posture-auditor[metrics]'" in proc.stdout, proc.stdout + proc.stderr


def test_an_unreadable_newest_scan_is_left_out_not_fatal(stored: Stored, tmp_path: Path) -> None:
    copy = tmp_path / "history.sqlite"
    shutil.copy(stored.directory / "history.sqlite", copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE evidence_log SET body = 'not json' WHERE target_url = ?", (stored.good.url,))
    with Store(str(copy), create=False) as store:
        metrics = parse(exposition(store).decode())
    assert {dict(labels)["target"] for labels in metrics["auditor_target_compliant"]} == {
        stored.bad.url,
        stored.dead_url,
    }
    assert metrics["auditor_evidence_log_verified"] == {frozenset(): 0}
