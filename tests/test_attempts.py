"""Typed evidence attempts (issue 14, item 3): a probe that gives no result is recorded with a status and
a reason enum (TlsEvidence.attempts), the clauses that need it are `error` through one helper
(auditor.checks.evidence), and reports written before attempts existed still load."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sslyze.errors import ConnectionToServerTimedOut, ServerRejectedTlsHandshake
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from auditor.checks import CheckContext
from auditor.checks.certificate import check_trusted
from auditor.checks.key_exchange import check_ecdhe_default, check_pfs
from auditor.checks.protocols import check_transit
from auditor.checks.quantum import check_quantum_resistance
from auditor.checks.transport import check_tls_enforced
from auditor.checks.vulnerabilities import check_vulnerabilities
from auditor.clients import CLIENTS
from auditor.grading import withheld
from auditor.model import (
    AttemptErrorReason,
    AttemptStatus,
    AuditReport,
    Evidence,
    HttpEvidence,
    Probe,
    Status,
    TlsEvidence,
)
from auditor.scan import protocol_facts
from auditor.scan.attempts import from_exception, from_http
from auditor.scan.dh_size import target
from auditor.scan.http import probe_http
from auditor.scan.ledger import Unanswered
from auditor.scan.post_quantum import probe_if_tls13
from auditor.scan.revocation import query_responder
from auditor.scan.simulate import attempt_of, simulate_client
from auditor.scan.tls import scan_tls
from tests.conftest import run_cli
from tests.harness.pki import TestPKI
from tests.harness.process_server import free_port
from tests.harness.servers import NginxSite, PythonTLSServer
from tests.hostile import rawservers as raw

DATA = Path(__file__).parent / "data"
# Written by the auditor before attempts (commit a70a89b) auditing a TLS 1.2 nginx behind a rate
# limiter that answered 8 connections: its TlsEvidence carries the old free-text `errors`.
BEFORE_ATTEMPTS = DATA / "report-before-attempts.json"
STOPPED = AttemptErrorReason.SERVER_STOPPED_ANSWERING
TIMEOUT = AttemptErrorReason.TIMEOUT


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


# ---------------------------------------------------------------- our own probes beside sslyze's


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that accepts connections and never says a word (a firewall that lets the SYN through)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_a_closed_plain_http_port_is_refused_typed_and_passes(nginx12: NginxSite) -> None:
    http = probe_http("good.test", nginx12.https_port, ip="127.0.0.1", http_port=free_port(), timeout=3)
    plain = http.plain_http
    assert plain is not None and plain.attempt is not None
    assert plain.attempt.reason is AttemptErrorReason.CONNECTION_REFUSED, plain.attempt
    assert plain.error == "connection refused"  # the words the reports show are kept
    assert all(r.attempt is None and r.error is None for r in http.https)
    [verdict] = check_tls_enforced(CheckContext(evidence=Evidence(http=http), host="good.test"))
    assert (verdict.status, verdict.result_id) == (Status.PASS, "plain-http-closed")


def test_a_plain_http_port_answering_garbage_is_a_malformed_answer_not_a_closed_port(
    nginx12: NginxSite,
) -> None:
    with raw.RawServer(raw.banner(b"SSH-2.0-OpenSSH_9.6\r\n")) as ssh:
        http = probe_http("good.test", nginx12.https_port, ip="127.0.0.1", http_port=ssh.port, timeout=3)
    plain = http.plain_http
    assert plain is not None and plain.attempt is not None
    assert plain.attempt.reason is AttemptErrorReason.MALFORMED_ANSWER, plain.attempt
    [verdict] = check_tls_enforced(CheckContext(evidence=Evidence(http=http), host="good.test"))
    assert (verdict.status, verdict.result_id) == (Status.WARN, "plain-http-unexpected")


def test_a_silent_https_port_is_a_timeout_attempt_on_every_response(silent: int) -> None:
    http = probe_http("good.test", silent, ip="127.0.0.1", http_port=free_port(), timeout=0.5)
    assert [r.attempt.reason for r in http.https if r.attempt] == [TIMEOUT]
    assert http.plain_http is not None and http.plain_http.attempt is not None
    assert http.plain_http.attempt.reason is AttemptErrorReason.CONNECTION_REFUSED
    closed, unfetched = check_tls_enforced(CheckContext(evidence=Evidence(http=http), host="good.test"))
    assert closed.status is Status.PASS  # refused on port 80: nothing served unencrypted
    # but no HTTPS page came back: mixed content and downgrade redirects were never seen
    assert (unfetched.status, unfetched.result_id) == (Status.ERROR, "https-pages-not-fetched")
    again = HttpEvidence.model_validate_json(http.model_dump_json())
    assert again == http


def test_a_server_that_drops_the_post_quantum_hello_is_a_timeout_attempt_and_an_error(silent: int) -> None:
    result, _, attempt = probe_if_tls13(target("good.test", silent, "127.0.0.1", 0.5), None, True)
    assert attempt is not None and attempt.reason is TIMEOUT, attempt
    assert attempt.detail == result.error and "no answer within 0.5 s" in attempt.detail
    tls = TlsEvidence(post_quantum=result, attempts={Probe.POST_QUANTUM: attempt})
    [verdict] = check_quantum_resistance(_context(tls))
    assert (verdict.status, verdict.result_id) == (Status.ERROR, "pq-untested")
    assert verdict.detail.startswith("not tested: post_quantum: timeout: "), verdict.detail
    # without TLS 1.3 there is nothing to ask: no attempt; TLS 1.3 untested: not scheduled, with why
    assert probe_if_tls13(target("good.test", silent, "127.0.0.1", 0.5), None, False)[2] is None
    _, _, unasked = probe_if_tls13(target("good.test", silent, "127.0.0.1", 0.5), None, None)
    assert unasked is not None and unasked.status is AttemptStatus.NOT_SCHEDULED


def test_a_simulated_client_left_unanswered_is_a_timeout_not_a_client_that_cannot_connect(
    silent: int, nginx12: NginxSite
) -> None:
    chrome = next(c for c in CLIENTS if c.reference and c.max_version == "TLS 1.3")
    dropped = simulate_client(chrome, "good.test", silent, "127.0.0.1", 0.5, None)
    assert dropped.attempt is not None and dropped.attempt.reason is TIMEOUT, dropped
    assert dropped.error and dropped.error.startswith("not tested: ")  # the reports' words are kept
    # a TLS 1.2-only server and a client that speaks it: tested, whatever the outcome
    done = simulate_client(chrome, "good.test", nginx12.https_port, "127.0.0.1", 3, None)
    assert done.attempt is None and done.suite is not None, done
    summary = attempt_of([done, dropped])
    assert summary is not None and summary.reason is TIMEOUT
    assert summary.detail.startswith(f"{chrome.name}: timeout: "), summary.detail
    tls = TlsEvidence(simulations=[dropped], attempts={Probe.SIMULATIONS: summary})
    [verdict] = check_ecdhe_default(_context(tls))
    assert (verdict.status, verdict.result_id) == (Status.ERROR, "ecdhe-no-client-connected")
    assert verdict.detail.startswith("not tested: simulations: timeout: "), verdict.detail


def test_protocol_facts_without_an_answer_are_a_typed_attempt(silent: int) -> None:
    facts, _, attempt = protocol_facts.measure(target("good.test", silent, "127.0.0.1", 0.5), "TLS 1.3", None)
    assert attempt is not None and attempt.reason is TIMEOUT, attempt
    assert facts.alpn is None and facts.resumption is None and facts.notes


def test_an_ocsp_responder_that_is_down_or_silent_is_a_typed_attempt(pki: TestPKI, silent: int) -> None:
    leaf = pki.issue("attempts-ocsp-leaf").cert
    down = query_responder(f"http://127.0.0.1:{free_port()}/", leaf, pki.intermediate, timeout=2)
    assert down.status == "error" and down.attempt is not None
    assert down.attempt.reason is AttemptErrorReason.CONNECTION_REFUSED, down.attempt
    mute = query_responder(f"http://127.0.0.1:{silent}/", leaf, pki.intermediate, timeout=0.5)
    assert mute.status == "error" and mute.attempt is not None and mute.attempt.reason is TIMEOUT


def test_a_scan_records_the_ocsp_attempt_beside_the_completed_probes(pki: TestPKI) -> None:
    """The whole fast scan: the responder named by the certificate is down, so OCSP (and only our own
    probes that did not complete) is listed; the grade is not withheld for it."""
    issued = pki.issue("attempts-ocsp-down", ocsp_url=f"http://127.0.0.1:{free_port()}/")
    with PythonTLSServer(issued) as server:
        tls = scan_tls("good.test", server.port, ip="127.0.0.1", ca_bundle=pki.root_path, timeout=3)
    ocsp = tls.attempts[Probe.OCSP]
    assert ocsp.reason is AttemptErrorReason.CONNECTION_REFUSED, tls.attempts
    assert ocsp.detail.startswith("http://127.0.0.1:"), ocsp.detail
    assert [r.attempt for r in tls.certificates[0].revocation] != [None]
    assert Probe.SCAN not in tls.attempts and withheld(tls) is None


def test_old_free_text_errors_of_http_and_simulations_load_typed() -> None:
    report = AuditReport.model_validate_json(BEFORE_ATTEMPTS.read_text())
    evidence = report.targets[0].evidence
    assert evidence is not None and evidence.http.plain_http is not None
    plain = evidence.http.plain_http
    assert plain.attempt is not None and plain.attempt.reason is AttemptErrorReason.CONNECTION_REFUSED
    assert all(s.attempt is not None and s.attempt.reason is STOPPED for s in evidence.tls.simulations)
    [verdict] = check_tls_enforced(CheckContext(evidence=evidence, host="good.test"))
    assert (verdict.status, verdict.result_id) == (Status.PASS, "plain-http-closed")


def test_http_failures_are_classified_once() -> None:
    with httpx.Client(timeout=2) as client, pytest.raises(httpx.ConnectError) as refused:
        client.get(f"http://127.0.0.1:{free_port()}/")
    assert from_http(refused.value).reason is AttemptErrorReason.CONNECTION_REFUSED
    assert from_http(httpx.ReadTimeout("slow")).reason is TIMEOUT
    assert from_http(httpx.RemoteProtocolError("not HTTP")).reason is AttemptErrorReason.MALFORMED_ANSWER
    assert from_http(httpx.ReadError("reset")).reason is AttemptErrorReason.CONNECTION_FAILED
    assert from_http(ValueError("bug")).reason is AttemptErrorReason.SCANNER_BUG
