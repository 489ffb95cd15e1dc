"""The engine's economies (issue 13, "Also"): fewer connections and round trips, same verdicts.

- a TLS <= 1.2 enumeration handshake ends once the client has answered the server's first flight;
- ROBOT's other two jobs run only when the first one finds RSA key exchange;
- simulated clients with the same ClientHello share one connection;
- the hybrid groups are asked in one hello (see also test_post_quantum).
Each is checked against a real loopback server, with sslyze's own answer where it has one.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from sslyze import ScanCommand
from sslyze.server_connectivity import ServerConnectivityInfo, check_connectivity_to_server

from auditor.clients import CLIENTS
from auditor.scan.enumerate import Enumerator
from auditor.scan.ledger import ConnectionCounter, _has_change_cipher_spec
from auditor.scan.replay import distinct_hellos
from auditor.scan.tls import _network, scan_tls
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, OpenSSLServer


def test_change_cipher_spec_is_found_among_records() -> None:
    handshake = b"\x16\x03\x03\x00\x04" + b"\x10\x00\x00\x00"
    ccs = b"\x14\x03\x03\x00\x01\x01"
    finished = b"\x16\x03\x03\x00\x28" + bytes(40)
    assert _has_change_cipher_spec(handshake + ccs + finished)
    assert not _has_change_cipher_spec(handshake + finished)
    assert not _has_change_cipher_spec(b"\x16\x03\x01\x00\x05\x14\x14\x14\x14\x14")  # 0x14 inside a record


class FirstFlightOnly:
    """A loopback relay that forwards the server's bytes only until the client has sent its second
    flight: the server's Finished never arrives, as on a link that stalls after the key exchange."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.upstream)) as server:
            flights = [0]

            def up() -> None:
                try:
                    while data := client.recv(65536):
                        flights[0] += 1
                        server.sendall(data)
                except OSError:
                    pass
                with contextlib.suppress(OSError):
                    server.shutdown(socket.SHUT_WR)

            upstream = threading.Thread(target=up, daemon=True)
            upstream.start()
            try:
                while data := server.recv(65536):
                    if flights[0] < 2:
                        client.sendall(data)
            except OSError:
                pass
            upstream.join(5)

    def close(self) -> None:
        self.listener.close()


def test_tls12_enumeration_does_not_wait_for_the_servers_finished(pki: TestPKI, tmp_path: Path) -> None:
    with NginxSite(tmp_path / "site", issued=pki.issue("flight")) as site:
        location, network = _network("good.test", site.https_port, "127.0.0.1", 3)
        probing = check_connectivity_to_server(location, network)
        relay = FirstFlightOnly(site.https_port)
        try:
            relayed, _ = _network("good.test", relay.port, "127.0.0.1", 3)
            server = ServerConnectivityInfo(
                server_location=relayed, network_configuration=network, tls_probing_result=probing
            )
            counter = ConnectionCounter(timeout=3)
            started = time.monotonic()
            tls12 = Enumerator(server, counter).protocol("TLS 1.2")
            elapsed = time.monotonic() - started
        finally:
            relay.close()
    assert tls12.supported and len(tls12.suites) >= 2
    assert all(s.ephemeral_group for s in tls12.suites)  # the key exchange was read from the first flight
    assert counter.deadline_hits == 0 and elapsed < 3, elapsed  # no handshake waited for its deadline


def test_a_server_without_rsa_key_exchange_costs_robot_two_connections(pki: TestPKI, tmp_path: Path) -> None:
    with NginxSite(tmp_path / "site", issued=pki.issue("robot-ecdhe")) as site:
        fast = scan_tls("good.test", site.https_port, ip="127.0.0.1", ca_bundle=pki.root_path, ocsp=False)
        exact = scan_tls(
            "good.test", site.https_port, ip="127.0.0.1", ocsp=False, commands={ScanCommand.ROBOT}
        )
    assert fast.vulnerabilities.robot == exact.vulnerabilities.robot == "NOT_VULNERABLE_RSA_NOT_SUPPORTED"
    assert fast.connections_by_phase["robot"] == 2  # one job (GCM, then any RSA suite), not three


def test_a_server_with_rsa_key_exchange_gets_all_three_robot_jobs(pki: TestPKI) -> None:
    issued = pki.issue("robot-rsa")
    with OpenSSLServer(issued, ["-cipher", "AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"]) as server:
        fast = scan_tls(
            "good.test", server.port, ip="127.0.0.1", ocsp=False, connections_per_server=1, timeout=5
        )
        exact = scan_tls(
            "good.test",
            server.port,
            ip="127.0.0.1",
            ocsp=False,
            connections_per_server=1,
            timeout=5,
            commands={ScanCommand.ROBOT},
        )
    assert fast.vulnerabilities.robot == exact.vulnerabilities.robot
    assert fast.vulnerabilities.robot not in (None, "NOT_VULNERABLE_RSA_NOT_SUPPORTED")
    assert fast.connections_by_phase["robot"] >= 3 * 2  # three jobs: the parameters and the payloads each


def test_clients_with_the_same_hello_share_a_connection(pki: TestPKI, tmp_path: Path) -> None:
    with NginxSite(tmp_path / "site", issued=pki.issue("sims")) as site:
        evidence = scan_tls("good.test", site.https_port, ip="127.0.0.1", ca_bundle=pki.root_path, ocsp=False)
    assert evidence.connections_by_phase["simulation"] == len(distinct_hellos(CLIENTS)) == 7
    sims = {s.client: s for s in evidence.simulations}
    assert list(sims) == [c.name for c in CLIENTS]
    chrome, edge, android = (sims[n] for n in ("Chrome 131 / Win 11", "Edge 131 / Win 11", "Android 14"))
    assert chrome.suite == edge.suite == android.suite and chrome.suite is not None
    assert (chrome.reference, android.reference) == (True, True)
    assert sims["Java 17"].reference is False and sims["Java 17"].suite == sims["Java 21"].suite
    assert chrome is not edge and chrome.suite is not edge.suite  # copies: annotating one leaves the other
