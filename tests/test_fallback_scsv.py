"""TLS_FALLBACK_SCSV (RFC 7507) is judged by a fallback to a version the server accepts.

sslyze's probe fell back one version below the highest, which a server offering SSL 3.0 and
TLS 1.2 refuses anyway, and read the refusal (or a timeout) as "supported": OpenSSL 1.0.1e, which
predates the SCSV, was credited with it. Real servers: the legacy OpenSSL, nginx on OpenSSL 3, and
a port that accepts and never answers.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.model import Probe, ProtocolSupport
from auditor.scan.dh_size import Target
from auditor.scan.fallback import fallback_version, probe_fallback_scsv
from auditor.scan.ledger import ConnectionCounter
from auditor.scan.tls import scan_tls
from auditor.suites import describe
from tests.harness.legacy import LegacyOpenSSLServer, legacy_openssl_available
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite

needs_legacy = pytest.mark.skipif(
    not legacy_openssl_available(),
    reason="../shared/legacy-openssl is absent (a clone outside its usual place)",
)


@pytest.fixture(scope="module")
def rsa_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("fallback-pki"), ca_keys="rsa")


def _protocols(**accepted: list[str]) -> list[ProtocolSupport]:
    names = {
        "ssl3": "SSL 3.0",
        "tls10": "TLS 1.0",
        "tls11": "TLS 1.1",
        "tls12": "TLS 1.2",
        "tls13": "TLS 1.3",
    }
    return [
        ProtocolSupport(version=names[key], supported=bool(suites), suites=[describe(s) for s in suites])
        for key, suites in accepted.items()
    ]


def test_the_fallback_lands_on_the_accepted_version_below_the_best() -> None:
    gcm = ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
    assert (
        fallback_version(_protocols(ssl3=["TLS_RSA_WITH_AES_128_CBC_SHA"], tls10=[], tls11=[], tls12=gcm))
        == "SSL 3.0"
    )
    assert fallback_version(_protocols(tls12=gcm, tls13=["TLS_AES_256_GCM_SHA384"])) == "TLS 1.2"
    assert fallback_version(_protocols(tls11=[], tls12=gcm)) is None


@needs_legacy
def test_ssl3_beside_tls12_without_the_scsv_is_found_missing(rsa_pki: TestPKI, tmp_path: Path) -> None:
    """The server sslyze credited with the SCSV: SSL 3.0 and TLS 1.2 on OpenSSL 1.0.1e."""
    issued = rsa_pki.issue("fallback-ssl3", key="rsa2048")
    args = [
        "-cipher",
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA",
        "-serverpref",
        "-no_ssl2",
        "-no_tls1",
        "-no_tls1_1",
    ]
    with LegacyOpenSSLServer(issued, args) as server:
        evidence = scan_tls(
            "good.test",
            server.port,
            ip="127.0.0.1",
            ca_bundle=rsa_pki.root_path,
            timeout=5,
            connections_per_server=1,
            ocsp=False,
        )
    assert {p.version for p in evidence.protocols if p.supported} == {"SSL 3.0", "TLS 1.2"}
    assert evidence.vulnerabilities.fallback_scsv is False
    assert evidence.connections_by_phase.get("fallback") == 1


@pytest.mark.parametrize("protocols", ["TLSv1.2 TLSv1.3", "TLSv1 TLSv1.2"])
def test_openssl3_honours_the_scsv(pki: TestPKI, tmp_path: Path, protocols: str) -> None:
    issued = pki.issue("fallback-nginx")
    with NginxSite(
        tmp_path / "site",
        issued=issued,
        protocols=protocols,
        seclevel0=True,
        ciphers="ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:"
        "ECDHE-RSA-AES128-SHA",
    ) as site:
        evidence = scan_tls(
            "good.test", site.https_port, ip="127.0.0.1", ca_bundle=pki.root_path, timeout=5, ocsp=False
        )
    assert evidence.vulnerabilities.fallback_scsv is True
    assert Probe.TLS_FALLBACK_SCSV not in evidence.attempts


def test_one_protocol_has_nothing_to_fall_back_to(pki: TestPKI, tmp_path: Path) -> None:
    issued = pki.issue("fallback-one")
    with NginxSite(tmp_path / "site", issued=issued, protocols="TLSv1.3") as site:
        evidence = scan_tls(
            "good.test", site.https_port, ip="127.0.0.1", ca_bundle=pki.root_path, timeout=5, ocsp=False
        )
    assert evidence.vulnerabilities.fallback_scsv is None
    assert Probe.TLS_FALLBACK_SCSV not in evidence.attempts
    assert "fallback" not in evidence.connections_by_phase


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections and never says a word (a tarpit, a dead backend behind a balancer)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_no_answer_is_not_tested_never_supported(silent_port: int) -> None:
    """A timeout is no evidence: sslyze read it as "supported"."""
    counter = ConnectionCounter()
    protocols = _protocols(
        tls10=["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], tls12=["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
    )
    answer = probe_fallback_scsv(Target("127.0.0.1", silent_port, "good.test", 0.5), protocols, counter)
    assert answer is None
    assert counter.by_phase["fallback"] == 2


def test_the_read_deadline_starts_when_the_connection_opens(pki: TestPKI, tmp_path: Path) -> None:
    """With one connection at a time, the probe may wait for its slot longer than its timeout (a
    slow renegotiation test ahead of it): that wait is not the server's silence. The deadline used
    to start before the wait, so the first hello timed out at once and a second one was sent."""
    issued = pki.issue("fallback-wait")
    protocols = _protocols(tls12=["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"], tls13=["TLS_AES_256_GCM_SHA384"])
    with NginxSite(tmp_path / "site", issued=issued) as site:
        counter = ConnectionCounter(timeout=1.0)
        counter.set_limit(1)
        held = counter.open("127.0.0.1", site.https_port, "held")  # the one slot, for 1.5 s
        threading.Timer(1.5, held.close).start()
        answer = probe_fallback_scsv(
            Target("127.0.0.1", site.https_port, "good.test", 1.0), protocols, counter
        )
    assert answer is True  # OpenSSL 3 honours the SCSV
    assert counter.by_phase["fallback"] == 1
