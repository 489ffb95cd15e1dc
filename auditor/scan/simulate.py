"""Handshake simulation: one connection per reference client (auditor.clients), replaying its
protocol range, suites and groups with nassl, recording what the server negotiates with it.

The grade judges forward secrecy, RC4 and 3DES by these results, as SSL Labs does. Each connection
ends by its deadline (auditor.scan.connections); one that hit it, or was cut, is "no answer", never a
refusal.
"""

from __future__ import annotations

import contextlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from nassl.ephemeral_key_info import OpenSslEcNidEnum
from nassl.ssl_client import OpenSslVerifyEnum, OpenSslVersionEnum, SslClient
from sslyze.plugins.openssl_cipher_suites.cipher_suites import _TLS_OPENSSL_TO_RFC_NAMES_MAPPING

from auditor.clients import CLIENTS, ClientProfile
from auditor.model import Attempt, AttemptErrorReason, HandshakeSimulation, ProtocolSupport
from auditor.scan.attempts import from_exception, summary
from auditor.scan.connections import ConnectionCounter, DeadlineSocket, FirstFlightRead, Unanswered
from auditor.scan.enumerate import group_name
from auditor.suites import TLS13_SUITES, describe

_GROUPS = {
    "X25519": OpenSslEcNidEnum.X25519,
    "X448": OpenSslEcNidEnum.X448,
    "P-256": OpenSslEcNidEnum.SECP256R1,
    "P-384": OpenSslEcNidEnum.SECP384R1,
    "P-521": OpenSslEcNidEnum.SECP521R1,
}
_ORDER = ["SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]


def _protocol_of(suite: str, max_version: str, protocols: list[ProtocolSupport]) -> str:
    """nassl does not say which version was negotiated: TLS 1.3 suites say it themselves, otherwise
    it is the highest version the server accepts this suite in, up to the client's maximum."""
    if suite in TLS13_SUITES:
        return "TLS 1.3"
    ceiling = _ORDER.index(max_version) if max_version in _ORDER else len(_ORDER) - 1
    for p in sorted(
        protocols, key=lambda p: _ORDER.index(p.version) if p.version in _ORDER else -1, reverse=True
    ):
        if (
            p.version in _ORDER
            and _ORDER.index(p.version) <= ceiling
            and p.version != "TLS 1.3"
            and any(s.name == suite for s in p.suites)
        ):
            return p.version
    return "TLS 1.2"


def simulate_client(
    profile: ClientProfile,
    host: str,
    port: int,
    ip: str | None,
    timeout: float,
    protocols: list[ProtocolSupport] | None,
    counter: ConnectionCounter | None = None,
    first_flight: bool = True,
) -> HandshakeSimulation:
    """One reference client's handshake. With `protocols` None (the enumeration still running) the
    negotiated protocol is left for `name_protocols` to fill in once the accepted suites are known.
    `first_flight` False completes a TLS 1.2 client's handshake (the tests compare the two)."""
    modern = profile.max_version == "TLS 1.3"
    # A TLS 1.2 client is pinned to TLS 1.2: OpenSSL will not build a hello with TLS 1.3 enabled and no 1.3 suite.
    client = SslClient(
        ssl_version=OpenSslVersionEnum.SSLV23 if modern else OpenSslVersionEnum.TLSV1_2,
        ssl_verify=OpenSslVerifyEnum.NONE,
        ignore_client_authentication_requests=True,
    )
    try:
        client.set_cipher_list(profile.tls12_suites)
        if modern:
            client.set_ciphersuites(profile.tls13_suites)
        client.set_groups([_GROUPS[g] for g in profile.groups if g in _GROUPS])
        client.set_tlsext_host_name(host)
        if counter:
            sock = counter.open(ip or host, port, "simulation")
        else:
            started = time.monotonic()
            sock = DeadlineSocket.adopt(
                socket.create_connection((ip or host, port), timeout=timeout), started + timeout
            )
        # A TLS 1.2 client knows the outcome (protocol, suite, key exchange it accepted) once it answers
        # the server's first flight, as the suite enumeration does: the round trip for the server's
        # Finished is skipped (FirstFlightRead). Not for a TLS 1.3 client: its compatibility
        # ChangeCipherSpec also follows a HelloRetryRequest, before the real ServerHello.
        sock.watch_flight = first_flight and not modern
        client.set_underlying_socket(sock)
        with contextlib.suppress(FirstFlightRead):
            client.do_handshake()
        openssl_name = client.get_current_cipher_name()
        key = client.get_ephemeral_key()
    except Unanswered as exc:
        return HandshakeSimulation(
            client=profile.name,
            reference=profile.reference,
            error=f"not tested: {exc}",
            attempt=from_exception(exc, counter.stopped if counter else None),
        )
    except Exception as exc:  # noqa: BLE001  (the failure is the result: this client cannot connect)
        sock_obj = client.get_underlying_socket()
        if isinstance(sock_obj, DeadlineSocket) and sock_obj.untrusted:
            why = f"no complete answer within {timeout:g} s"
            return HandshakeSimulation(
                client=profile.name,
                reference=profile.reference,
                error=f"not tested: {why}",
                attempt=Attempt.failed(AttemptErrorReason.TIMEOUT, why),
            )
        message = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return HandshakeSimulation(client=profile.name, reference=profile.reference, error=message)
    finally:
        with contextlib.suppress(Exception):  # an unfinished handshake may not shut down cleanly
            client.shutdown()
        sock_obj = client.get_underlying_socket()
        if sock_obj is not None:
            sock_obj.close()
    name = (
        openssl_name
        if openssl_name in TLS13_SUITES
        else _TLS_OPENSSL_TO_RFC_NAMES_MAPPING.get(openssl_name, openssl_name)
    )
    curve = getattr(key, "curve_name", None)
    suite = describe(
        name,
        openssl_name=openssl_name,
        ephemeral_group=group_name(curve) if curve else (key.type_name if key else None),
        ephemeral_bits=key.size if key else None,
    )
    return HandshakeSimulation(
        client=profile.name,
        reference=profile.reference,
        protocol=None if protocols is None else _protocol_of(name, profile.max_version, protocols),
        suite=suite,
    )


Hello = tuple[str, str, str, tuple[str, ...]]


def hello_of(profile: ClientProfile) -> Hello:
    """What a profile's ClientHello is made of here: profiles with the same one (Chrome, Edge and
    Android 14; Java 17 and 21) get the same answer, so they share one connection."""
    return (profile.max_version, profile.tls13_suites, profile.tls12_suites, profile.groups)


def distinct_hellos(clients: list[ClientProfile]) -> list[ClientProfile]:
    """The first profile of each distinct ClientHello, in the clients' order."""
    first: dict[Hello, ClientProfile] = {}
    for profile in clients:
        first.setdefault(hello_of(profile), profile)
    return list(first.values())


def for_each_client(
    results: dict[Hello, HandshakeSimulation], clients: list[ClientProfile]
) -> list[HandshakeSimulation]:
    """One simulation per client, each a copy of the result for its ClientHello under its own name."""
    return [
        results[hello_of(p)].model_copy(deep=True, update={"client": p.name, "reference": p.reference})
        for p in clients
    ]


def name_protocols(simulations: list[HandshakeSimulation], protocols: list[ProtocolSupport]) -> None:
    """Fill in, in place, the protocol each simulated client negotiated (simulations run before the
    enumeration ends, so that they overlap it)."""
    ceilings = {c.name: c.max_version for c in CLIENTS}
    for sim in simulations:
        if sim.suite is not None and sim.protocol is None:
            sim.protocol = _protocol_of(sim.suite.name, ceilings.get(sim.client, "TLS 1.3"), protocols)


def simulate_all(
    host: str,
    port: int,
    ip: str | None,
    timeout: float,
    protocols: list[ProtocolSupport],
    connections: int = 5,
    counter: ConnectionCounter | None = None,
) -> list[HandshakeSimulation]:
    distinct = distinct_hellos(CLIENTS)
    with ThreadPoolExecutor(max_workers=max(1, connections)) as pool:
        results = pool.map(
            lambda p: simulate_client(p, host, port, ip, timeout, protocols, counter), distinct
        )
        return for_each_client(dict(zip(map(hello_of, distinct), results, strict=True)), CLIENTS)


def attempt_of(simulations: list[HandshakeSimulation]) -> Attempt | None:
    """The simulations' attempt (Probe.SIMULATIONS): None when every client's handshake was tested;
    a client that cannot connect was tested (that is its result)."""
    return summary((s.client, s.attempt) for s in simulations)
