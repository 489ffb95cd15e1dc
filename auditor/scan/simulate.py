"""Handshake simulation: one connection per reference client (auditor.clients), replaying its
protocol range, suites and groups with nassl, recording what the server negotiates with it.

The grade judges forward secrecy, RC4 and 3DES by these results, as SSL Labs does. Each connection
ends by its deadline (auditor.scan.ledger); one that hit it, or was cut, is "no answer", never a
refusal.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sslyze.plugins.openssl_cipher_suites.cipher_suites import _TLS_OPENSSL_TO_RFC_NAMES_MAPPING

from auditor.clients import CLIENTS, ClientProfile
from auditor.model import Attempt, AttemptErrorReason, HandshakeSimulation, ProtocolSupport
from auditor.scan.attempts import from_exception, summary
from auditor.scan.enumerate import group_name
from auditor.scan.ledger import ConnectionCounter, Unanswered
from auditor.scan.replay import Exchange, Hello, distinct_hellos, hello_of, replay
from auditor.suites import TLS13_SUITES, describe

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
    exchange = replay(profile, host, port, ip, timeout, counter, first_flight)
    return interpret(profile, exchange, protocols, timeout, counter)


def interpret(
    profile: ClientProfile,
    exchange: Exchange,
    protocols: list[ProtocolSupport] | None,
    timeout: float,
    counter: ConnectionCounter | None = None,
) -> HandshakeSimulation:
    """The simulation result of one replayed handshake (auditor.scan.replay): the suite and key
    exchange negotiated, the client's own failure, or "not tested" when the exchange proves nothing."""
    exc = exchange.error
    if isinstance(exc, Unanswered):
        return HandshakeSimulation(
            client=profile.name,
            reference=profile.reference,
            error=f"not tested: {exc}",
            attempt=from_exception(exc, counter.stopped if counter else None),
        )
    if exc is not None and exchange.untrusted:
        why = f"no complete answer within {timeout:g} s"
        return HandshakeSimulation(
            client=profile.name,
            reference=profile.reference,
            error=f"not tested: {why}",
            attempt=Attempt.failed(AttemptErrorReason.TIMEOUT, why),
        )
    if exc is not None:  # the failure is the result: this client cannot connect
        message = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return HandshakeSimulation(client=profile.name, reference=profile.reference, error=message)
    openssl_name, key = exchange.openssl_name, exchange.key
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
