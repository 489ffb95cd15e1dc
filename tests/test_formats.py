"""The formats CI and monitoring read (JUnit XML, SARIF 2.1.0, CSV) and `--targets-from`, through the
real CLI against a real nginx site on 127.0.0.1; JUnit and SARIF are validated against the schemas
their consumers publish (tests/data/README.md says where each file comes from)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from auditor.checks.clauses import CLAUSES
from auditor.model import AuditReport, Finding, Status, TargetRef, TargetResult
from auditor.reports.csv_report import COLUMNS, to_csv
from auditor.reports.junit import to_junit
from tests.conftest import ROOT, CliRun, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, free_port

DATA = Path(__file__).resolve().parent / "data"
SECRET = "Sup3rS3cretV4lue"  # a session cookie's value: must reach no report


@pytest.fixture(scope="module")
def site(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxSite]:
    """Breaks several clauses (TLS 1.3 missing, DV, a cookie without attributes) and warns on one
    (HSTS max-age between the fail and warn floors)."""
    issued = pki.issue("formats", hosts=("formats.test",), days_valid=90, policy="dv")
    with NginxSite(
        tmp_path_factory.mktemp("nginx-formats"),
        issued=issued,
        server_name="formats.test",
        protocols="TLSv1.2",
        hsts="max-age=20000000",
        cookies=[f"session={SECRET}; Path=/"],
    ) as nginx:
        yield nginx


@dataclass
class Run:
    cli: CliRun
    out: Path
    listing: Path
    site: NginxSite
    dead_url: str

    @property
    def report(self) -> dict:  # type: ignore[type-arg]
        return json.loads((self.out / "report.json").read_text())


@pytest.fixture(scope="module")
def run(site: NginxSite, pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One `auditor audit` writing every format: a dead URL as an argument, then a list file holding
    the site, comments, a blank line and two lines that are not URLs."""
    out = tmp_path_factory.mktemp("formats-out")
    dead_url = f"https://dead.test:{free_port()}/"
    listing = out / "targets.txt"
    listing.write_text(f"# nightly targets\n\n  {site.url}   # the shop\nftp://files.test/\nnot a url\n")
    cli = run_cli(
        "audit",
        "--ip",
        "127.0.0.1",
        "--ca-bundle",
        str(pki.root_path),
        "--http-port",
        str(site.http_port),
        "--timeout",
        "5",
        "--quiet",
        "--targets-from",
        str(listing),
        "--json",
        str(out / "report.json"),
        "--junit",
        str(out / "junit.xml"),
        "--sarif",
        str(out / "report.sarif"),
        "--csv",
        str(out / "report.csv"),
        dead_url,
    )
    return Run(cli, out, listing, site, dead_url)


# ---------------------------------------------------------------- --targets-from


def test_targets_from_a_file_adds_its_urls_after_the_arguments(run: Run) -> None:
    assert run.cli.code == 3, run.cli.stderr  # a target could not be audited
    targets = run.report["targets"]
    assert [t["target"]["url"] for t in targets] == [
        run.dead_url,
        run.site.url,
        "ftp://files.test/",
        "not a url",
    ]
    dead, audited, ftp, spaces = targets
    assert dead["error"] == "connection refused" and dead["target"]["name"] is None
    assert audited["error"] is None and audited["target"]["name"] is None and audited["compliant"] is False
    # a bad line is that target's error, and says which line of which file it was
    assert ftp["target"]["name"] == f"{run.listing} line 4" and "unsupported scheme 'ftp'" in ftp["error"]
    assert spaces["target"]["name"] == f"{run.listing} line 5" and "URL contains spaces" in spaces["error"]
    assert f"NOT AUDITED {run.listing} line 4" in run.cli.stdout


def _audit_stdin(stdin: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditor", "audit", "--ip", "127.0.0.1", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_targets_from_stdin_with_csv_on_stdout(tmp_path: Path) -> None:
    dead = f"https://dead.test:{free_port()}/"
    proc = _audit_stdin(f"# from a pipe\n{dead}\n\n", "--targets-from", "-", "--csv", "-", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    rows = list(csv.reader(io.StringIO(proc.stdout)))  # stdout holds the CSV and nothing else
    assert rows == [
        COLUMNS,
        [dead, dead, "127.0.0.1", "", "error", "not audited", "connection refused", "", ""],
    ]
    assert "NOT AUDITED" in proc.stderr  # the verdict moved to stderr


def test_targets_from_problems_are_usage_errors(tmp_path: Path) -> None:
    missing = run_cli("audit", "--targets-from", str(tmp_path / "nope.txt"), cwd=tmp_path)
    assert missing.code == 2 and "--targets-from: no such file" in missing.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n")
    run = run_cli("audit", "--targets-from", str(empty), cwd=tmp_path)
    assert run.code == 2 and "lists no URL" in run.stderr and "Traceback" not in run.stderr
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00https://a.test/")
    assert "not UTF-8" in run_cli("audit", "--targets-from", str(binary), cwd=tmp_path).stderr
    two = run_cli("audit", "--json", "-", "--sarif", "-", "https://a.test/", cwd=tmp_path)
    assert two.code == 2 and "only one report can go to stdout" in two.stderr


# ---------------------------------------------------------------- JUnit


@pytest.mark.parametrize("schema", ["junit-10.xsd", "windyroad-JUnit.xsd"])
def test_junit_validates_against_the_published_schemas(run: Run, schema: str) -> None:
    xmlschema.XMLSchema(DATA / schema).validate(str(run.out / "junit.xml"))


def test_junit_one_case_per_clause_per_target_with_failures_errors_and_evidence(run: Run) -> None:
    path = run.out / "junit.xml"
    assert path.stat().st_mode & 0o777 == 0o600
    suites = ET.parse(path).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [
        run.dead_url,
        run.site.url,
        f"{run.listing} line 4",
        f"{run.listing} line 5",
    ]
    report = run.report
    for suite, _target in zip(suites, report["targets"], strict=True):
        cases = suite.findall("testcase")
        assert [c.get("name") for c in cases] == list(CLAUSES)
        assert {c.get("classname") for c in cases} == {suite.get("name")}
        assert int(suite.get("tests")) == len(CLAUSES)
    dead = suites[0]
    assert dead.get("errors") == str(len(CLAUSES)) and dead.get("failures") == "0"
    assert all("connection refused" in c.find("error").get("message") for c in dead.findall("testcase"))

    audited = {c.get("name"): c for c in suites[1].findall("testcase")}
    failing = {f["clause"] for f in report["targets"][1]["findings"] if f["status"] == "fail"}
    assert {"11.3-protocols", "11.2-cert-validation-level", "11.5-cookies"} <= failing
    assert {name for name, c in audited.items() if c.find("failure") is not None} == failing
    assert suites[1].get("failures") == str(len(failing))
    protocols = audited["11.3-protocols"].find("failure")
    assert "TLS 1.3" in protocols.get("message")
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in protocols.text  # the evidence and the fix travel with it
    assert "session=<redacted>" in audited["11.5-cookies"].find("failure").text
    assert audited["11.5-hsts"].find("failure") is None  # a warning is a passed case
    assert "max-age" in suites[1].find("system-out").text


# ---------------------------------------------------------------- SARIF


def test_sarif_validates_against_the_published_schema(run: Run) -> None:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = [
        e.message for e in validator(schema).iter_errors(json.loads((run.out / "report.sarif").read_text()))
    ]
    assert errors == []


def test_sarif_one_rule_per_clause_one_result_per_failure_and_warning(run: Run) -> None:
    path = run.out / "report.sarif"
    assert path.stat().st_mode & 0o777 == 0o600
    log = json.loads(path.read_text())
    (sarif_run,) = log["runs"]
    rules = sarif_run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CLAUSES)
    assert all(
        r["shortDescription"]["text"] == CLAUSES[r["id"]] and len(r["help"]["text"]) > 20 for r in rules
    )
    findings = run.report["targets"][1]["findings"]
    expected = sorted(
        (f["clause"], {"fail": "error", "warn": "warning"}[f["status"]], f["title"])
        for f in findings
        if f["status"] in ("fail", "warn")
    )
    got = sorted((r["ruleId"], r["level"], r["message"]["text"].split(". ")[0]) for r in sarif_run["results"])
    assert got == [(c, level, title.split(". ")[0]) for c, level, title in expected]
    assert ("11.5-hsts", "warning") in {(r["ruleId"], r["level"]) for r in sarif_run["results"]}
    for result in sarif_run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["locations"] == [{"physicalLocation": {"artifactLocation": {"uri": run.site.url}}}]
    # the targets that could not be audited are not silently clean: the invocation says so
    (invocation,) = sarif_run["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = [n["message"]["text"] for n in invocation["toolExecutionNotifications"]]
    assert len(notes) == 3 and any("connection refused" in n for n in notes)


# ---------------------------------------------------------------- CSV


def test_csv_one_row_per_finding_rfc4180(run: Run) -> None:
    path = run.out / "report.csv"
    assert path.stat().st_mode & 0o777 == 0o600
    raw = path.read_bytes()
    assert raw.startswith(b"target,url,ip,clause,status,title,detail,evidence,grade\r\n")  # RFC 4180: CRLF
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    report = run.report
    audited = report["targets"][1]
    assert len(rows) == len(audited["findings"]) + 3  # plus one row per target not audited
    site_rows = [r for r in rows if r["url"] == run.site.url]
    assert [(r["clause"], r["status"], r["title"]) for r in site_rows] == [
        (f["clause"], f["status"], f["title"]) for f in audited["findings"]
    ]
    assert {r["grade"] for r in site_rows} == {audited["grade"]["letter"]} and {
        r["ip"] for r in site_rows
    } == {"127.0.0.1"}
    cookies = next(r for r in site_rows if r["clause"] == "11.5-cookies")
    finding = next(f for f in audited["findings"] if f["clause"] == "11.5-cookies")
    assert cookies["evidence"] == " | ".join(finding["evidence"])
    errors = [(r["target"], r["status"], r["detail"]) for r in rows if r["url"] != run.site.url]
    assert errors[0] == (run.dead_url, "error", "connection refused")


def test_no_format_carries_the_cookie_value(run: Run) -> None:
    for name in ("report.json", "junit.xml", "report.sarif", "report.csv"):
        text = (run.out / name).read_text()
        assert "session" in text and SECRET not in text, name


# ---------------------------------------------------------------- `auditor report` and [output]


def test_report_command_renders_the_same_files_from_the_json(run: Run, tmp_path: Path) -> None:
    cli = run_cli(
        "report",
        str(run.out / "report.json"),
        "--junit",
        str(tmp_path / "junit.xml"),
        "--sarif",
        str(tmp_path / "report.sarif"),
        "--csv",
        str(tmp_path / "report.csv"),
    )
    assert cli.code == 0, cli.stderr
    for name in ("junit.xml", "report.sarif", "report.csv"):
        assert (tmp_path / name).read_bytes() == (run.out / name).read_bytes(), name
    assert cli.stdout == ""  # a format flag replaces the default text report on stdout
    stdout = run_cli("report", str(run.out / "report.json"), "--sarif", "-")
    assert json.loads(stdout.stdout) == json.loads((run.out / "report.sarif").read_text())


def test_output_keys_write_the_formats_on_every_config_audit(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[output]\ndirectory = "out"\njunit = "ci/junit.xml"\nsarif = "{tmp_path}/abs.sarif"\n'
        f'csv = "audit.csv"\n\n[[targets]]\nurl = "https://dead.test:{free_port()}/"\nip = "127.0.0.1"\n'
    )
    run = run_cli("audit", "--config", str(config), "--quiet")
    assert run.code == 3, run.stderr
    xmlschema.XMLSchema(DATA / "junit-10.xsd").validate(str(tmp_path / "out" / "ci" / "junit.xml"))
    assert json.loads((tmp_path / "abs.sarif").read_text())["version"] == "2.1.0"
    assert (tmp_path / "out" / "audit.csv").read_bytes().count(b"\r\n") == 2
    once = run_cli(
        "audit", "--config", str(config), "--quiet", "--ip", "127.0.0.1", f"https://other.test:{free_port()}/"
    )
    assert once.code == 3  # a one-off URL audit leaves the nightly files alone
    assert "other.test" not in (tmp_path / "out" / "audit.csv").read_text()


def test_nightly_run_writes_the_configured_formats(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        f'[output]\ndirectory = "out"\njunit = "junit.xml"\nsarif = "report.sarif"\ncsv = "audit.csv"\n\n'
        f'[[targets]]\nurl = "https://dead.test:{free_port()}/"\nip = "127.0.0.1"\n'
    )
    run = run_cli("schedule", "--once", cwd=tmp_path)
    assert run.code == 3, run.stdout + run.stderr
    out = tmp_path / "out"
    xmlschema.XMLSchema(DATA / "windyroad-JUnit.xsd").validate(str(out / "junit.xml"))
    assert "connection refused" in (out / "audit.csv").read_text()
    notes = json.loads((out / "report.sarif").read_text())["runs"][0]["invocations"][0][
        "toolExecutionNotifications"
    ]
    assert "connection refused" in notes[0]["message"]["text"]
    assert all(
        (out / name).stat().st_mode & 0o777 == 0o600 for name in ("junit.xml", "report.sarif", "audit.csv")
    )


# ---------------------------------------------------------------- hostile text


def _report(finding: Finding) -> AuditReport:
    now = datetime.now(UTC)
    target = TargetResult(
        target=TargetRef(url="https://x.test/", host="x.test", port=443),
        started_at=now,
        duration_s=1.0,
        compliant=False,
        findings=[finding],
    )
    return AuditReport(generated_at=now, tool_version="test", targets=[target])


def test_server_text_cannot_break_the_xml_or_run_as_a_spreadsheet_formula() -> None:
    # Built by hand: no real server sends these bytes through nginx, but a hostile one can.
    hostile = Finding(
        clause="11.5-cookies",
        status=Status.FAIL,
        title='=HYPERLINK("http://evil")',
        detail="bell\x07 nul\x00 esc\x1b[31m",
        evidence=["@SUM(1)", "-2+3", "ok \ufffe"],
    )
    junit = to_junit(_report(hostile))
    xmlschema.XMLSchema(DATA / "junit-10.xsd").validate(io.StringIO(junit))
    failure = ET.fromstring(junit.encode()).find(".//failure")
    assert "bell? nul? esc?[31m" in failure.text and "ok ?" in failure.text
    (row,) = list(csv.DictReader(io.StringIO(to_csv(_report(hostile)), newline="")))
    assert row["title"] == '\'=HYPERLINK("http://evil")' and row["evidence"] == "'@SUM(1) | -2+3 | ok \ufffe"
    assert row["detail"] == "bell? nul? esc?[31m"
