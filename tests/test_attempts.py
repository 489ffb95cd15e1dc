"""Typed evidence attempts (issue 14, item 3): a probe that gives no result is recorded with a status and
a reason enum (TlsEvidence.attempts), the clauses that need it are `error` through one helper
(auditor.checks.evidence), and reports written before attempts existed still load."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sslyze.errors import ConnectionToServerTimedOut, ServerRejectedTlsHandshake
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from auditor.checks import CheckContext
from auditor.checks.certificate import check_trusted
from auditor.checks.key_exchange import check_pfs
from auditor.checks.protocols import check_transit
from auditor.checks.vulnerabilities import check_vulnerabilities
from auditor.grading import withheld
from auditor.model import (
    AttemptErrorReason,
    AttemptStatus,
    AuditReport,
    Evidence,
    Probe,
    Status,
    TlsEvidence,
)
from auditor.scan.attempts import from_exception
from auditor.scan.connections import Unanswered
from auditor.scan.tls import scan_tls
from tests.conftest import run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite
from tests.hostile import rawservers as raw

DATA = Path(__file__).parent / "data"
# Written by the auditor before attempts (commit a70a89b) auditing a TLS 1.2 nginx behind a rate
# limiter that answered 8 connections: its TlsEvidence carries the old free-text `errors`.
BEFORE_ATTEMPTS = DATA / "report-before-attempts.json"
STOPPED = AttemptErrorReason.SERVER_STOPPED_ANSWERING


@pytest.fixture(scope="module")
def nginx12(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxSite]:
    """TLS 1.2 only: sslyze really probes Heartbleed and CCS (a TLS 1.3 server is presumed safe)."""
    issued = pki.issue("attempts-nginx12", policy="ov")
    with NginxSite(tmp_path_factory.mktemp("nginx-attempts"), issued=issued, protocols="TLSv1.2") as site:
        yield site


def _context(tls: TlsEvidence) -> CheckContext:
    return CheckContext(evidence=Evidence(tls=tls), host="good.test", custom_ca=True)


def test_a_server_that_stops_answering_is_a_typed_attempt_and_an_error_clause(
    pki: TestPKI, nginx12: NginxSite
) -> None:
    limiter = raw.RateLimiter(nginx12.https_port, allow=8)
    with raw.RawServer(limiter) as proxy:
        tls = scan_tls(
            "good.test", proxy.port, ip="127.0.0.1", ca_bundle=pki.root_path, timeout=3, ocsp=False
        )
    scan = tls.attempts[Probe.SCAN]
    assert scan.status is AttemptStatus.ERROR and scan.reason is STOPPED, scan
    assert scan.detail.startswith("the server stopped answering after"), scan.detail
    untested = [p.version for p in tls.protocols if p.supported is None]
    assert untested, tls.protocols
    for version in untested:  # each protocol left untested says why, as an enum
        assert tls.attempts[Probe.suites(version)].reason in (STOPPED, AttemptErrorReason.TIMEOUT)
    assert tls.vulnerabilities.heartbleed is None
    assert tls.attempts[Probe.HEARTBLEED].reason in (STOPPED, AttemptErrorReason.TIMEOUT)

    ctx = _context(tls)
    pfs = check_pfs(ctx)[0]
    assert pfs.status is Status.ERROR and pfs.result_id in ("pfs-suites-unknown", "pfs-suites-incomplete")
    assert pfs.detail.startswith("not tested: ") and "scan: server stopped answering: " in pfs.detail
    transit = check_transit(ctx)[0]  # nothing below TLS 1.2 accepted, but not all tested
    assert (transit.status, transit.result_id) == (Status.ERROR, "transit-protocols-untested")
    assert f"{Probe.suites(untested[0])}: " in transit.detail
    vulnerabilities = check_vulnerabilities(ctx)[0]
    assert (vulnerabilities.status, vulnerabilities.result_id) == (Status.ERROR, "vulns-untested-unanswered")
    assert withheld(tls) == f"not graded: {scan.detail}"

    again = TlsEvidence.model_validate_json(tls.model_dump_json())
    assert again.attempts == tls.attempts
    dumped = json.loads(tls.model_dump_json())
    assert "errors" not in dumped and dumped["attempts"]["scan"]["reason"] == "server_stopped_answering"


def test_a_probe_left_out_is_not_scheduled_and_its_clause_says_so(pki: TestPKI, nginx12: NginxSite) -> None:
    """An exact sslyze command set: every other probe is `not_scheduled`, and the certificate clauses
    are `error` with the standard detail rather than "no certificate was received"."""
    tls = scan_tls(
        "good.test", nginx12.https_port, ip="127.0.0.1", commands={ScanCommand.TLS_1_2_CIPHER_SUITES}
    )
    protocol = tls.protocol("TLS 1.2")
    assert protocol is not None and protocol.supported is True
    assert Probe.SUITES_TLS_1_2 not in tls.attempts  # completed
    for probe in (Probe.CERTIFICATE_INFO, Probe.GROUPS, Probe.SUITES_TLS_1_3, Probe.ROBOT):
        assert tls.attempts[probe].status is AttemptStatus.NOT_SCHEDULED, probe
        assert tls.attempts[probe].reason is None
    trusted = check_trusted(_context(tls))[0]
    assert (trusted.status, trusted.result_id) == (Status.ERROR, "cert-not-retrieved")
    assert trusted.detail == "not tested: certificate_info: not scheduled"


def test_a_report_written_before_attempts_loads_with_typed_attempts(tmp_path: Path) -> None:
    text = BEFORE_ATTEMPTS.read_text()
    old = json.loads(text)["targets"][0]["evidence"]["tls"]
    assert "errors" in old and "attempts" not in old  # the fixture is the old format
    report = AuditReport.model_validate_json(text)
    tls = report.targets[0].evidence.tls if report.targets[0].evidence else TlsEvidence()
    assert set(tls.attempts) == {
        Probe.SCAN,
        Probe.SUITES_TLS_1_2,
        Probe.SUITES_TLS_1_3,
        Probe.CERTIFICATE_INFO,
        Probe.HEARTBLEED,
        Probe.OPENSSL_CCS_INJECTION,
        Probe.ROBOT,
        Probe.SESSION_RENEGOTIATION,
        Probe.TLS_COMPRESSION,
    }
    assert tls.attempts[Probe.SCAN].reason is STOPPED
    assert tls.attempts[Probe.SCAN].detail == old["errors"]["unanswered"]
    assert tls.attempts[Probe.SUITES_TLS_1_2].reason is STOPPED
    assert tls.attempts[Probe.ROBOT].reason is AttemptErrorReason.TIMEOUT  # "no complete answer within 3 s"
    assert withheld(tls) == f"not graded: {old['errors']['unanswered']}"
    # written again, it is the new format, and loads to the same attempts
    rewritten = report.model_dump_json()
    assert '"errors"' not in rewritten
    assert AuditReport.model_validate_json(rewritten) == report
    # the CLI renders it (what `auditor report` does with a saved report of an earlier version)
    run = run_cli("report", str(BEFORE_ATTEMPTS), "--text", "-")
    assert run.code == 0, run.stderr
    assert "good.test" in run.stdout and "Traceback" not in run.stderr


def test_an_unknown_phase_of_an_old_report_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="session_tickets"):
        TlsEvidence.model_validate({"errors": {"session_tickets": "boom"}})


def test_exceptions_are_classified_once() -> None:
    location = ServerNetworkLocation("good.test", 443, "127.0.0.1")
    network = ServerNetworkConfiguration.default_for_server_location(location)
    cases = [
        (Unanswered("the server stopped answering after 3 connections"), STOPPED),
        (Unanswered("2 suites found, then no answer within 3 s (twice)"), AttemptErrorReason.TIMEOUT),
        (ConnectionToServerTimedOut(location, network, "timed out"), AttemptErrorReason.TIMEOUT),
        (ServerRejectedTlsHandshake(location, network, "alert"), AttemptErrorReason.CONNECTION_FAILED),
        (KeyError("bug"), AttemptErrorReason.SCANNER_BUG),
    ]
    stopped = "the server stopped answering after 3 connections"
    assert [from_exception(exc, stopped).reason for exc, _ in cases] == [reason for _, reason in cases]
