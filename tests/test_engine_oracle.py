"""Oracle for the fast enumerator: on every server configuration, the accepted suites per protocol
equal sslyze's exhaustive scan (`--thorough`), the order is the server's configured order where
it enforces one, and far fewer connections are opened. Each server is started once (module-scoped
fixture) and scanned once each way."""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from auditor.checks import CheckContext
from auditor.checks.key_exchange import check_pfs
from auditor.checks.preference import check_aes256gcm_first
from auditor.clients import CLIENTS
from auditor.model import Evidence, HandshakeSimulation, Status, TlsEvidence
from auditor.scan import early_contact
from auditor.scan.replay import distinct_hellos
from auditor.scan.simulate import simulate_client
from auditor.scan.tls import scan_tls
from tests.harness.pki import TestPKI
from tests.harness.servers import MODERN_CIPHERS, NginxSite, OpenSSLServer

TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"


@dataclass
class Case:
    name: str
    nginx: dict = field(default_factory=dict)  # type: ignore[type-arg]
    openssl_args: list[str] | None = None
    key: str = "rsa2048"
    dual: bool = False
    dhparam: bool = False  # give nginx DH parameters (RFC 7919 ffdhe2048), so DHE suites work
    enforced: bool = True  # the server enforces its own order
    aes256_first: bool = False  # 11.3-aes256gcm-first passes on the fast engine's evidence
    pfs: bool = True  # 11.1-pfs passes


CASES = [
    Case("modern", {"tls13_ciphersuites": TLS13}, aes256_first=True),
    Case(
        "legacy-protocols",
        {
            "protocols": "TLSv1 TLSv1.1 TLSv1.2",
            "seclevel0": True,
            "ciphers": "ECDHE-RSA-AES256-SHA:AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384:DES-CBC3-SHA",
        },
        pfs=False,
    ),
    Case(
        "rsa-kex-preferred",
        {"ciphers": "AES256-GCM-SHA384:AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"},
        pfs=False,
    ),
    Case(
        "cbc-only",
        {"protocols": "TLSv1.2", "ciphers": "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:AES256-SHA"},
        pfs=False,
    ),
    Case(
        "chacha-first",
        {
            "ciphers": "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
            "tls13_ciphersuites": "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
        },
    ),
    # OpenSSL's PrioritizeChaCha: ChaCha20 only for clients that list it first; still the server's order
    Case(
        "prioritize-chacha",
        {
            "ciphers": "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256",
            "tls13_ciphersuites": TLS13,
            "extra_server": "ssl_conf_command Options PrioritizeChaCha;",
        },
        aes256_first=True,
    ),
    Case(
        "client-order",
        {
            "prefer_server_ciphers": False,
            "ciphers": "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305",
        },
        enforced=False,
    ),
    Case(
        "ecdsa",
        {"ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-CHACHA20-POLY1305"},
        key="p256",
        aes256_first=True,
    ),
    Case(
        "dual-rsa-ecdsa",
        {
            "ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
        },
        dual=True,
        aes256_first=True,
    ),
    Case(
        "tls13-only",
        {"protocols": "TLSv1.3", "tls13_ciphersuites": "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"},
    ),
    Case(
        "tls10-only",
        openssl_args=["-tls1", "-cipher", "ECDHE-RSA-AES128-SHA:AES256-SHA:@SECLEVEL=0", "-serverpref"],
        pfs=False,
    ),
    Case(
        "dhe",
        {"ciphers": "DHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256"},
        dhparam=True,
    ),
]


@dataclass
class Scanned:
    case: Case
    fast: TlsEvidence
    full: TlsEvidence
    # the fast scan again, begun as `auditor audit` begins it (auditor.scan.early_contact)
    early: TlsEvidence
    # each distinct client hello, stopped after the server's first flight (the fast scan) and completed
    simulated: list[tuple[HandshakeSimulation, HandshakeSimulation]] = field(default_factory=list)


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def scanned(
    request: pytest.FixtureRequest, pki: TestPKI, tmp_path_factory: pytest.TempPathFactory
) -> Scanned:
    """One server per configuration, scanned once by the fast engine and once exhaustively."""
    case: Case = request.param
    issued = pki.issue(f"oracle-{case.name}", key=case.key)
    if case.openssl_args is not None:
        server = OpenSSLServer(issued, case.openssl_args)
    else:
        dual = pki.issue(f"oracle-{case.name}-ec", key="p256") if case.dual else None
        directory = tmp_path_factory.mktemp(case.name)
        extra = {}
        if case.dhparam:
            dh = directory / "dhparam.pem"
            subprocess.run(
                [
                    "openssl",
                    "genpkey",
                    "-genparam",
                    "-algorithm",
                    "DH",
                    "-pkeyopt",
                    "group:ffdhe2048",
                    "-out",
                    str(dh),
                ],
                check=True,
                capture_output=True,
            )
            extra["extra_server"] = f"ssl_dhparam {dh};"
        server = NginxSite(directory / "nginx", issued=issued, dual_issued=dual, **case.nginx, **extra)
    with server:
        port = server.port if isinstance(server, OpenSSLServer) else server.https_port
        fast = scan_tls("good.test", port, ip="127.0.0.1", ca_bundle=pki.root_path)
        early_contact.start("good.test", port, "127.0.0.1", 10.0)
        contact = early_contact.take("127.0.0.1", port, "good.test")
        assert contact is not None and contact.ledger is not None
        early = scan_tls(
            "good.test", port, ip="127.0.0.1", ca_bundle=pki.root_path, ledger=contact.ledger, early=contact
        )
        full = scan_tls("good.test", port, ip="127.0.0.1", ca_bundle=pki.root_path, thorough=True)
        simulated = [
            tuple(
                simulate_client(client, "good.test", port, "127.0.0.1", 10.0, None, first_flight=first)
                for first in (True, False)
            )
            for client in distinct_hellos(CLIENTS)
        ]
    return Scanned(case, fast, full, early, simulated)  # type: ignore[arg-type]


def _configured_order(case: Case, version: str) -> list[str]:
    if version == "TLS 1.3":
        return case.nginx.get("tls13_ciphersuites", TLS13).split(":")
    if case.openssl_args is not None:
        return case.openssl_args[case.openssl_args.index("-cipher") + 1].split(":")
    return case.nginx.get("ciphers", MODERN_CIPHERS).split(":")


def test_accepted_suites_equal_sslyze_exhaustive_scan(scanned: Scanned) -> None:
    fast, full = scanned.fast, scanned.full
    assert fast.attempts == {}, fast.attempts
    assert full.attempts == {}, full.attempts
    for mine, theirs in zip(fast.protocols, full.protocols, strict=True):
        assert mine.version == theirs.version
        assert mine.supported == theirs.supported, mine.version
        assert {s.name for s in mine.suites} == {s.name for s in theirs.suites}, mine.version
        # the same ephemeral key kind per suite (DH vs ECDH), as sslyze records it
        kinds = {s.name: s.ephemeral_group == "DH" for s in theirs.suites}
        assert {s.name: s.ephemeral_group == "DH" for s in mine.suites} == kinds, mine.version
    assert set(fast.groups) == set(full.groups)
    assert [p for p in fast.protocols if p.supported], "the server accepted nothing"


def test_order_is_the_configured_server_order(scanned: Scanned) -> None:
    case = scanned.case
    for protocol in (p for p in scanned.fast.protocols if p.supported):
        if len(protocol.suites) < 2:
            assert protocol.server_enforces_order is None  # nothing to order
            continue
        assert protocol.server_enforces_order is case.enforced, protocol.version
        assert protocol.in_server_order is case.enforced, protocol.version
        if not case.enforced or (protocol.version == "TLS 1.3" and "tls13_ciphersuites" not in case.nginx):
            continue  # client order, or OpenSSL's built-in TLS 1.3 order (not configured here)
        names = {s.openssl_name for s in protocol.suites} | {s.name for s in protocol.suites}
        configured = [n for n in _configured_order(case, protocol.version) if n in names]
        found = [s.openssl_name if s.openssl_name in configured else s.name for s in protocol.suites]
        assert found == configured, protocol.version
        assert (
            protocol.preferred_group == protocol.suites[0].ephemeral_group
            or protocol.suites[0].ephemeral_group is None
        )


def test_checks_judge_the_measured_order(scanned: Scanned) -> None:
    """11.3-aes256gcm-first and 11.1-pfs on the fast engine's evidence of a real server."""
    ctx = CheckContext(evidence=Evidence(tls=scanned.fast), host="good.test")
    first = check_aes256gcm_first(ctx)[0]
    assert first.status is (Status.PASS if scanned.case.aes256_first else Status.FAIL), first
    pfs = check_pfs(ctx)[0]
    assert pfs.status is (Status.PASS if scanned.case.pfs else Status.FAIL), pfs


def test_far_fewer_connections_than_the_exhaustive_scan(scanned: Scanned) -> None:
    fast = scanned.fast
    phases = fast.connections_by_phase
    # (accepted + 1) per protocol and client (TLS 1.2: modern, then legacy for the weak suites only it sends)
    assert phases["suites"] <= sum(len(p.suites) + 1 for p in fast.protocols) + 1, phases
    assert "batches" not in phases  # a refused protocol is answered with an alert: no batch retries
    assert phases.get("order", 0) <= sum(len(p.suites) + 1 for p in fast.protocols if p.supported)
    assert phases.get("groups", 0) <= len(fast.groups) + 1
    # one connection per distinct ClientHello (Chrome, Edge and Android 14 send the same one), a result per client
    assert phases["simulation"] == len(distinct_hellos(CLIENTS)) < len(CLIENTS)
    assert [s.client for s in fast.simulations] == [c.name for c in CLIENTS]
    assert fast.connections == sum(phases.values())
    assert fast.connections < 80, phases  # sslyze's exhaustive scan opens ~580


def test_a_simulation_stopped_after_the_first_flight_equals_the_completed_handshake(scanned: Scanned) -> None:
    """The fast scan's TLS 1.2 clients stop once they answered the server's first flight: what they
    learn (protocol, suite, key exchange, or the failure) is what the whole handshake tells."""
    assert scanned.simulated
    for stopped, completed in scanned.simulated:
        assert stopped.model_dump(exclude={"attempt"}) == completed.model_dump(exclude={"attempt"}), (
            stopped.client
        )
    assert any(s.suite for s, _ in scanned.simulated) or scanned.case.name == "tls10-only"


class HelloSizeLimiter:
    """A loopback middlebox that drops any connection whose ClientHello record is larger than
    `limit` bytes, as some load balancers and old TLS stacks do; forwards everything else."""

    def __init__(self, upstream: int, limit: int) -> None:
        import socket
        import threading

        self.upstream, self.limit, self.dropped = upstream, limit, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                client.settimeout(5)
                header = client.recv(5, socket.MSG_WAITALL)
                if len(header) == 5 and header[0] == 0x16 and int.from_bytes(header[3:5], "big") > self.limit:
                    self.dropped += 1
                    client.close()
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.upstream))
                upstream.sendall(header)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self.sock.close()


def test_server_that_refuses_large_client_hellos_is_enumerated_in_batches(
    pki: TestPKI, tmp_path: Path
) -> None:
    issued = pki.issue("hello-limit")
    with NginxSite(tmp_path, issued=issued, tls13_ciphersuites=TLS13) as site:
        reference = scan_tls("good.test", site.https_port, ip="127.0.0.1", ca_bundle=pki.root_path)
        limiter = HelloSizeLimiter(site.https_port, limit=300)
        try:
            limited = scan_tls("good.test", limiter.port, ip="127.0.0.1", ca_bundle=pki.root_path)
        finally:
            limiter.close()
    assert limiter.dropped > 0  # the full-list ClientHello really was refused
    assert limited.connections_by_phase.get("batches", 0) > 0
    assert "batches" not in reference.connections_by_phase
    for mine, theirs in zip(limited.protocols, reference.protocols, strict=True):
        assert mine.supported == theirs.supported, mine.version
        assert [s.name for s in mine.suites] == [s.name for s in theirs.suites], mine.version  # same order
        assert mine.server_enforces_order == theirs.server_enforces_order, mine.version


def test_the_scan_begun_early_finds_what_the_scan_finds(scanned: Scanned) -> None:
    """`auditor audit` begins with the connectivity handshake and the client simulations while it
    imports, and the certificate job for TLS 1.3 takes that handshake's chain: the evidence is the
    same, in one connection fewer when the server speaks TLS 1.3 (one more otherwise: sslyze's own
    connectivity check follows the refused TLS 1.3 handshake)."""
    volatile = {"connections", "connections_by_phase"}
    assert scanned.early.model_dump(exclude=volatile) == scanned.fast.model_dump(exclude=volatile)
    tls13 = scanned.fast.protocol("TLS 1.3")
    saved = 1 if tls13 is not None and tls13.supported else -1
    assert scanned.early.connections == scanned.fast.connections - saved, (
        scanned.early.connections_by_phase,
        scanned.fast.connections_by_phase,
    )
    assert scanned.early.connections_by_phase["simulation"] == len(distinct_hellos(CLIENTS))
