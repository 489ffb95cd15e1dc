"""Every endpoint of a name (issue 15): a real DNS server (dnsmasq) on loopback serves www.site.test
at three addresses, each with its own nginx on the same ports, one of them on an old configuration
(TLS 1.0, RSA key exchange). `auditor audit` resolves the name once, audits every address with the
name for SNI and Host, and reports the worst: that endpoint's clauses fail, the report names it, and
the history records when it is fixed. CAA records are judged under 11.2-cert-trusted."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.endpoints import merge_endpoints
from auditor.model import (
    SCHEMA_VERSION,
    AuditReport,
    ClauseId,
    Finding,
    Grade,
    Status,
    TargetRef,
    TargetResult,
)
from tests.conftest import CliRun, run_cli
from tests.harness.dns_server import DnsServer, dnsmasq_path
from tests.harness.pki import Issued, TestPKI
from tests.harness.servers import NginxSite, free_port

pytestmark = [
    pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed (dnsmasq-base)"),
]

GOOD, OLD, V6 = "127.0.0.2", "127.0.0.3", "::1"
NAMES = ("www.site.test", "www.other.test", "www.none.test")
HOSTS = {"www.site.test": [OLD, GOOD, V6], "www.other.test": [GOOD], "www.none.test": [GOOD]}
CAA = {
    "site.test": ['0 issue "ca.test"', '0 iodef "mailto:security@site.test"'],
    "other.test": ['0 issue "letsencrypt.org"'],
}
OLD_CONFIG = {
    "protocols": "TLSv1 TLSv1.2",
    "seclevel0": True,
    "ciphers": "AES256-GCM-SHA384:AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384",
}
TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"


@dataclass
class Site:
    """One name's endpoints: an nginx per address, all on the same two ports."""

    pki: TestPKI
    root: Path
    https_port: int
    http_port: int
    servers: dict[str, NginxSite]
    issued: Issued | None = None

    def start(self, address: str, **config: Any) -> None:
        if self.issued is None:  # one certificate for every endpoint, as a load-balanced site serves
            self.issued = self.pki.issue("site", hosts=NAMES, policy="ov")
        server = NginxSite(
            self.root / f"nginx-{address.replace(':', '_')}",
            issued=self.issued,
            server_name="www.site.test",
            address=address,
            https_port=self.https_port,
            http_port=self.http_port,
            tls13_ciphersuites=TLS13,
            **config,
        )
        server.start()
        self.servers[address] = server

    def stop(self, address: str) -> None:
        self.servers.pop(address).stop()

    def url(self, name: str = "www.site.test") -> str:
        return f"https://{name}:{self.https_port}/"


@pytest.fixture(scope="module")
def site(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    served = Site(pki, tmp_path_factory.mktemp("endpoints"), free_port(), free_port(), {})
    try:
        served.start(GOOD)
        served.start(OLD, **OLD_CONFIG)
        served.start(V6)
        yield served
    finally:
        for address in list(served.servers):
            served.stop(address)


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(HOSTS, CAA) as server:
        yield server


def _config(
    directory: Path, site: Site, dns: DnsServer, names: tuple[str, ...], require_caa: bool, history: Path
) -> Path:
    targets = "".join(
        f'[[targets]]\nurl = "{site.url(name)}"\nca_bundle = "{site.pki.root_path}"\nhttp_port = {site.http_port}\n'
        for name in names
    )
    config = directory / f"config-{len(names)}.toml"
    config.write_text(
        f'[scan]\nconcurrency = 3\nocsp = false\n[output]\nwrite_json = false\n[history]\ndatabase = "{history}"\n'
        f'[dns]\nnameservers = ["{dns.address}"]\nrequire_caa = {str(require_caa).lower()}\n'
        f'ca_identifiers = {{"Auditor Test" = ["CA.test"]}}\n{targets}'
    )
    return config


def _audit(config: Path, *extra: str) -> CliRun:
    return run_cli("audit", "--config", str(config), "--json", "-", "--quiet", *extra)


def _target(report: dict[str, Any], host: str) -> dict[str, Any]:
    return next(t for t in report["targets"] if t["target"]["host"] == host)


def _statuses(findings: list[dict[str, Any]]) -> dict[str, str]:
    worst = [s.value for s in (Status.FAIL, Status.ERROR, Status.WARN, Status.INFO, Status.PASS)]
    out: dict[str, str] = {}
    for f in findings:
        if f["clause"] not in out or worst.index(f["status"]) < worst.index(out[f["clause"]]):
            out[f["clause"]] = f["status"]
    return out


@pytest.fixture(scope="module")
def first_run(site: Site, dns: DnsServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliRun]:
    """One audit of the three names (five endpoints), stored in the history."""
    directory = tmp_path_factory.mktemp("first-run")
    config = _config(directory, site, dns, NAMES, require_caa=True, history=directory / "h.sqlite")
    return config, _audit(config, "--store")


def test_every_address_is_audited_and_the_old_one_breaks_the_policy(first_run: tuple[Path, CliRun]) -> None:
    _, run = first_run
    assert run.code == 1, run.stderr
    target = _target(run.report, "www.site.test")
    assert target["evidence"]["dns"]["source"] == "nameservers"
    assert target["evidence"]["dns"]["addresses"] == [GOOD, OLD, V6]  # IPv4 first, in order
    endpoints = {e["address"]: e for e in target["endpoints"]}
    assert list(endpoints) == [GOOD, OLD, V6]
    assert [endpoints[a]["compliant"] for a in (GOOD, OLD, V6)] == [True, False, True]
    assert endpoints[GOOD]["letter"] == endpoints[V6]["letter"] == "A+"
    # the target's letter is the old endpoint's, and its verdict the worst
    assert target["grade"]["letter"] == endpoints[OLD]["letter"] != "A+"
    assert target["compliant"] is False and target["error"] is None and target["target"]["ip"] is None
    # exactly the old endpoint's clauses fail, each finding naming that address
    failed = {c for c, s in _statuses(target["findings"]).items() if s == "fail"}
    assert failed == {c for c, s in _statuses(endpoints[OLD]["findings"]).items() if s == "fail"}
    assert {"11.3-protocols", "11.3-no-rsa-kex"} <= failed
    for f in target["findings"]:
        if f["status"] == "fail":
            assert f["title"].endswith(f"on 1 of 3 endpoints: {OLD}"), f["title"]
            assert f"per endpoint: {GOOD} pass, {OLD} fail, {V6} pass" in f["evidence"]
    # the good endpoints carry only passes on the clauses where the endpoints differ
    assert {f["status"] for f in endpoints[V6]["findings"]} <= {"pass", "info"}
    assert endpoints[GOOD]["findings"] and not endpoints[GOOD]["error"]


def test_the_report_names_the_endpoint_that_breaks_the_policy(
    first_run: tuple[Path, CliRun], tmp_path: Path
) -> None:
    _, run = first_run
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(run.report))
    text = run_cli("report", str(saved), "--text", "-")
    assert text.code == 0, text.stderr
    lines = text.stdout.splitlines()
    old = next(line for line in lines if line.strip().startswith(OLD))
    assert "NOT COMPLIANT" in old and "11.3-protocols" in old
    assert any(line.strip().startswith(V6) and line.rstrip().endswith("COMPLIANT") for line in lines)
    assert "Addresses: 127.0.0.2, 127.0.0.3, ::1 ([dns] nameservers)" in text.stdout
    assert 'CAA: at site.test: 0 iodef "mailto:security@site.test"; 0 issue "ca.test"' in text.stdout
    html = run_cli("report", str(saved), "--html", str(tmp_path / "r.html"))
    assert html.code == 0, html.stderr
    page = (tmp_path / "r.html").read_text()
    assert "Endpoints</h3>" in page and f">{OLD}<" in page and f">{V6}<" in page


def test_caa_permitted_not_permitted_and_missing(first_run: tuple[Path, CliRun]) -> None:
    _, run = first_run
    permitted = _target(run.report, "www.site.test")
    trust = [f for f in permitted["findings"] if f["clause"] == "11.2-cert-trusted"]
    assert [f["result_id"] for f in trust] == ["cert-trusted"]
    assert any("CAA allows ca.test, which includes Auditor Test" in e for e in trust[0]["evidence"])

    refused = _target(run.report, "www.other.test")
    assert refused["evidence"]["dns"]["caa"]["owner"] == "other.test"
    (warning,) = [f for f in refused["findings"] if f["result_id"] == "caa-ca-not-permitted"]
    assert warning["status"] == "warn" and "letsencrypt.org" in warning["detail"]
    assert refused["compliant"] is True  # a warning: CAA is checked at issuance, not by clients

    missing = _target(run.report, "www.none.test")
    assert missing["evidence"]["dns"]["caa"] == {"owner": None, "records": [], "error": None}
    assert [f["status"] for f in missing["findings"] if f["result_id"] == "caa-missing"] == ["warn"]


def test_ip_twice_audits_the_chosen_addresses_without_dns(site: Site, pki: TestPKI, tmp_path: Path) -> None:
    run = run_cli(
        "audit",
        "--ip",
        GOOD,
        "--ip",
        V6,
        "--ca-bundle",
        str(pki.root_path),
        "--http-port",
        str(site.http_port),
        "--json",
        "-",
        "--quiet",
        site.url(),
        cwd=tmp_path,
    )
    assert run.code == 0, run.stdout + run.stderr
    (target,) = run.report["targets"]
    assert target["evidence"]["dns"] == {"source": "given", "addresses": [GOOD, V6], "caa": None}
    assert [(e["address"], e["compliant"], e["findings"]) for e in target["endpoints"]] == [
        (GOOD, True, []),
        (V6, True, []),
    ]
    assert target["grade"]["letter"] == "A+"


def test_fixing_the_old_endpoint_is_a_change_in_the_history(
    first_run: tuple[Path, CliRun], site: Site, dns: DnsServer
) -> None:
    """Last in this module: it replaces the old endpoint's server by a compliant one."""
    first, _ = first_run
    site.stop(OLD)
    site.start(OLD)
    history = first.parent / "h.sqlite"
    config = _config(first.parent, site, dns, NAMES[:1], require_caa=True, history=history)
    run = _audit(config, "--store")
    assert run.code == 0, run.stdout + run.stderr
    (target,) = run.report["targets"]
    changes = [c for c in target["changes"]["changes"] if c["kind"] == "endpoint"]
    assert changes == [
        {
            "kind": "endpoint",
            "subject": OLD,
            "before": f"grade {_old_letter(first_run)}, not compliant",
            "after": "grade A+, compliant",
            "detail": "",
        }
    ]
    diff = run_cli("diff", "--config", str(config), site.url())
    assert diff.code == 0, diff.stderr
    line = next(line.split() for line in diff.stdout.splitlines() if line.split()[:1] == ["endpoint"])
    assert (
        " ".join(line)
        == f"endpoint {OLD}: grade {_old_letter(first_run)}, not compliant -> grade A+, compliant"
    )
    # the evidence log's entries carry the addresses, each endpoint's verdict and the CAA answer
    with closing(sqlite3.connect(history)) as db:
        bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM evidence_log ORDER BY seq")]
    stored = [b for b in bodies if b.get("target", {}).get("host") == "www.site.test"]
    assert len(stored) == 2
    for body in stored:
        assert body["evidence"]["dns"]["addresses"] == [GOOD, OLD, V6]
        assert body["evidence"]["dns"]["caa"]["owner"] == "site.test"
        assert [e["address"] for e in body["endpoints"]] == [GOOD, OLD, V6]
    assert [e["compliant"] for e in stored[0]["endpoints"]] == [True, False, True]


def _old_letter(first_run: tuple[Path, CliRun]) -> str:
    endpoints = _target(first_run[1].report, "www.site.test")["endpoints"]
    return str(next(e["letter"] for e in endpoints if e["address"] == OLD))


def test_one_unreachable_endpoint_is_named_and_the_target_not_audited(
    site: Site, pki: TestPKI, tmp_path: Path
) -> None:
    silent = "127.0.0.9"  # nothing listens there: refused at once
    run = run_cli(
        "audit",
        *("--ip", GOOD, "--ip", silent, "--ca-bundle", str(pki.root_path)),
        *("--http-port", str(site.http_port), "--json", "-", "--quiet", site.url()),
        cwd=tmp_path,
    )
    assert run.code == 3, run.stdout + run.stderr
    (target,) = run.report["targets"]
    assert target["error"].startswith(f"1 of 2 endpoints not audited ({silent}: ")
    assert [(e["address"], e["error"] is None) for e in target["endpoints"]] == [
        (GOOD, True),
        (silent, False),
    ]
    assert target["grade"]["letter"] == "A+"  # what the audited endpoint showed is kept


def test_dns_settings_and_addresses_are_checked_before_any_scan(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"  # not ./config.toml: the --ip run below must not read it
    config.write_text(
        '[dns]\nnameservers = ["ns.example:53"]\n'
        '[[targets]]\nurl = "https://a.test/"\nips = ["192.0.2.1", "nope"]\n'
        '[[targets]]\nurl = "https://b.test/"\nip = "192.0.2.1"\nips = ["192.0.2.2"]\n'
    )
    run = run_cli("audit", "--config", str(config), cwd=tmp_path)
    assert run.code == 2 and "Traceback" not in run.stderr
    assert "bad.toml: target 1 (https://a.test/): ips: 'nope' is not an IP address" in run.stderr
    assert "target 2 (https://b.test/): give either ip or ips, not both" in run.stderr
    assert "dns.nameservers: 'ns.example:53': a name server is given by its IP address" in run.stderr
    assert (
        "--ip: 'nope' is not an IP address"
        in run_cli("audit", "--ip", "nope", "https://a.test/", cwd=tmp_path).stderr
    )


def test_a_report_written_before_endpoints_still_loads() -> None:
    old = AuditReport.model_validate_json(
        (Path(__file__).parent / "data" / "report-before-result-ids.json").read_text()
    )
    assert old.schema_version == "1.0" and SCHEMA_VERSION == "1.1"
    for target in old.targets:
        assert target.endpoints == [] and (target.evidence is None or target.evidence.dns is None)


def _result(letter: str, *findings: tuple[str, str, str]) -> TargetResult:
    return TargetResult(
        target=TargetRef(url="https://www.site.test/", host="www.site.test", port=443),
        started_at=datetime.now(UTC),
        duration_s=1.0,
        compliant=all(status != "fail" for _, _, status in findings),
        grade=Grade(letter=letter, score=90),
        findings=[
            Finding(clause=ClauseId(c), result_id=r, status=Status(s), title=r.replace("-", " "))
            for c, r, s in findings
        ],
    )


def test_endpoints_failing_differently_are_each_named() -> None:
    """The merge alone: TLS 1.0 on one address, SSL 3.0 on another; each finding names its own address."""
    ok = ("11.3-protocols", "protocols-ok", "pass")
    merged = merge_endpoints(
        [
            ("192.0.2.1", _result("B", ("11.3-protocols", "tls10-accepted", "fail"))),
            ("192.0.2.2", _result("A+", ok)),
            ("2001:db8::1", _result("T", ("11.3-protocols", "ssl3-accepted", "fail"))),
        ]
    )
    assert merged.grade is not None and merged.grade.letter == "T"  # T ranks below every letter
    assert [f.title for f in merged.findings] == [
        "tls10 accepted on 1 of 3 endpoints: 192.0.2.1",
        "ssl3 accepted on 1 of 3 endpoints: 2001:db8::1",
    ]
    assert merged.findings[0].evidence == ["per endpoint: 192.0.2.1 fail, 192.0.2.2 pass, 2001:db8::1 fail"]
    assert [e.letter for e in merged.endpoints] == ["B", "A+", "T"] and not merged.compliant
    alone = merge_endpoints([("192.0.2.2", _result("A+", ok))])
    assert alone.findings[0].title == "protocols ok" and [e.address for e in alone.endpoints] == ["192.0.2.2"]
