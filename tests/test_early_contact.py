"""The handshake `auditor audit` starts while it imports (auditor.scan.early_contact): it stands in
for sslyze's TLS 1.3 connectivity check only when that check would have passed, and is otherwise
counted as the attempt it was; one connection either way. After a usable one, the client
simulations follow through the same ledger. Real servers on loopback."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from auditor.clients import CLIENTS
from auditor.scan import early_contact
from auditor.scan.replay import distinct_hellos, hello_of
from tests.conftest import run_cli
from tests.harness.pki import TestPKI
from tests.harness.process_server import free_port
from tests.harness.servers import NginxSite, OpenSSLServer
from tests.hostile.rawservers import RawServer, tarpit

TLS13_SUITES = {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}


@pytest.fixture(scope="module")
def modern(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxSite]:
    with NginxSite(tmp_path_factory.mktemp("early") / "nginx", issued=pki.issue("early")) as site:
        yield site


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that accepts connections and never speaks."""
    with RawServer(tarpit) as server:
        yield server.port


def _contact(port: int, timeout: float = 5.0, host: str = "good.test") -> early_contact.Contact | None:
    early_contact.start(host, port, "127.0.0.1", timeout)
    return early_contact.take("127.0.0.1", port, host)


def test_a_tls13_server_is_reached_and_taken_once(modern: NginxSite) -> None:
    contact = _contact(modern.https_port)
    assert contact is not None and contact.usable, contact
    assert contact.cipher in TLS13_SUITES and contact.answered and not contact.timed_out
    assert early_contact.take("127.0.0.1", modern.https_port, "good.test") is None  # taken once


def test_the_simulations_and_probes_follow_through_the_same_ledger(modern: NginxSite) -> None:
    """After a usable contact, one connection per distinct reference ClientHello, the post-quantum
    probe and the protocol facts, counted in the contact's ledger and held to its limit; the chain
    the scan's certificate job wants is kept."""
    early_contact.start("good.test", modern.https_port, "127.0.0.1", 5.0, connections=2)
    contact = early_contact.take("127.0.0.1", modern.https_port, "good.test")
    assert contact is not None and contact.usable and contact.ledger is not None
    assert contact.quantum is not None and contact.facts is not None
    assert set(contact.simulations) == {hello_of(p) for p in distinct_hellos(CLIENTS)}
    exchanges = [future.result(timeout=10) for future in contact.simulations.values()]
    assert all(e.error is None and e.openssl_name for e in exchanges), exchanges
    _, _, quantum_attempt = contact.quantum.result(timeout=10)
    facts, _, facts_attempt = contact.facts.result(timeout=10)
    assert quantum_attempt is None and facts_attempt is None, (quantum_attempt, facts_attempt)
    assert facts.resumption is not None, facts
    assert contact.ledger.by_phase == {
        "connectivity": 1,
        "simulation": len(exchanges),
        "post_quantum": 1,
        "facts": 3,
    }
    assert contact.chain and contact.chain[0].startswith("-----BEGIN CERTIFICATE-----")


def test_another_address_of_the_name_does_not_take_it(modern: NginxSite) -> None:
    early_contact.start("good.test", modern.https_port, "127.0.0.1", 5.0)
    assert early_contact.take("127.0.0.2", modern.https_port, "good.test") is None
    assert early_contact.take("127.0.0.1", modern.https_port, "good.test") is not None


def test_a_server_without_tls13_answered_but_does_not_stand_in(pki: TestPKI) -> None:
    with OpenSSLServer(pki.issue("early-tls12"), ["-tls1_2"]) as server:
        contact = _contact(server.port)
    assert contact is not None and not contact.usable and contact.answered and not contact.timed_out


def test_a_silent_port_is_a_timed_out_attempt_within_its_deadline(silent: int) -> None:
    """Two attempts at once, the contact and one simulation beside it, both in the ledger the scan
    goes on with, which then knows the port never speaks: no more simulations are begun, and the
    scan opens nothing (the second attempt used to cost a whole timeout more)."""
    started = time.monotonic()
    contact = _contact(silent, timeout=1.0)
    assert time.monotonic() - started < 3
    assert contact is not None and contact.timed_out and not contact.answered and not contact.usable
    assert len(contact.simulations) == 1 and contact.quantum is None and contact.facts is None
    ledger = contact.ledger
    assert ledger is not None and ledger.by_phase == {"connectivity": 1, "simulation": 1}
    assert ledger.deadline_hits == 2 and ledger.answered == 0
    assert ledger.stopped is not None and "never speaks" in ledger.stopped


def test_a_trickling_server_is_a_deadline_hit_with_what_it_sent() -> None:
    """One byte a second: the deadline passes with bytes received; that is a deadline hit (the ledger
    then says "sends too slowly"), not an answer."""

    def trickle(conn: socket.socket) -> None:
        for byte in b"\x16\x03\x03\x00":
            conn.send(bytes([byte]))
            time.sleep(0.5)

    with RawServer(trickle) as server:
        contact = _contact(server.port, timeout=1.0)
    assert contact is not None and contact.timed_out and not contact.answered, contact
    assert contact.first_bytes.startswith(b"\x16")


def test_a_refused_contact_is_not_waited_for() -> None:
    """A closed port refuses the contact at once: the scan must not wait out the grace it gives a
    TCP connection still under way (it did: one second for every refused target)."""
    port = free_port()
    early_contact.start("good.test", port, "127.0.0.1", 5.0)
    started = time.monotonic()
    assert early_contact.take("127.0.0.1", port, "good.test") is None
    assert time.monotonic() - started < early_contact.CONNECT_GRACE / 2


def test_a_contact_still_waiting_for_its_tcp_connection_is_given_up_at_once() -> None:
    """A filtered port (SYNs dropped: here a listener whose backlog is full) must not cost the scan a
    whole timeout before sslyze's own attempts: take() gives the contact up after a second's grace,
    and it then sends nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)  # the one pending slot
    try:
        early_contact.start("good.test", port, "127.0.0.1", 5.0)
        started = time.monotonic()
        assert early_contact.take("127.0.0.1", port, "good.test") is None
        assert time.monotonic() - started < early_contact.CONNECT_GRACE + 0.5 < 5.0
        assert early_contact.take("127.0.0.1", port, "good.test") is None  # given up for good
    finally:
        filler.close()
        listener.close()


def test_the_audit_takes_it_one_connectivity_connection(modern: NginxSite, pki: TestPKI) -> None:
    run = run_cli(
        "audit", "--ip", "127.0.0.1", "--ca-bundle", str(pki.root_path), "--json", "-", "-q", modern.url
    )
    report = json.loads(run.stdout)
    phases = report["targets"][0]["evidence"]["tls"]["connections_by_phase"]
    assert phases["connectivity"] == 1, phases
    assert phases["simulation"] == len(distinct_hellos(CLIENTS)), phases
    assert phases["certificate_info"] == 2, phases  # TLS 1.2, RSA and not: the TLS 1.3 chain came early
    assert report["targets"][0]["grade"]["letter"] in {"A", "A+"}, run.stderr
