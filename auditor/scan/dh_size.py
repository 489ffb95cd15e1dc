"""The size of a finite-field DH group the scanning client refused to use.

nassl's OpenSSL clients abort a handshake whose ServerKeyExchange carries a DH group below their
floor ("dh key too small"), before telling us its size: the suite is accepted, its group unknown,
and "unknown" must never read as "fine" (a 512-bit group is Logjam and an F). So a raw ClientHello
(auditor.scan.raw_hello) offering just that suite reads the group size from the ServerKeyExchange.
If even that fails, the group is still known to be below the client's floor, and is recorded as
at most CLIENT_DH_FLOOR - 1 bits (CipherSuite.ephemeral_bits_max).

Both engines come here: the fast enumerator per protocol, and --thorough after sslyze's scan (sslyze
also leaves the ephemeral key empty exactly when its client refused the group).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from auditor.model import Attempt, AttemptErrorReason, CipherSuite, ProtocolSupport
from auditor.scan.ledger import ConnectionCounter, Unanswered
from auditor.scan.raw_hello import (
    SERVER_HELLO,
    SERVER_HELLO_DONE,
    SERVER_KEY_EXCHANGE,
    WIRE_VERSIONS,
    HandshakeRefused,
    Hello,
    client_hello,
    connect,
    dh_prime_bits,
    handshake_messages,
    parse_server_hello,
    server_name_for,
)
from auditor.scan.suite_codes import SUITE_CODES

# The smallest DH group nassl's clients accept (1024 bits: tests/test_grading_real.py scans a
# 1024-bit group through them). A group they refused is smaller.
CLIENT_DH_FLOOR = 1024


@dataclass(frozen=True)
class Target:
    """Where to connect and which name to send (no SNI for an IP address, as RFC 6066 says)."""

    address: str
    port: int
    server_name: str | None
    timeout: float


def target(host: str, port: int, ip: str | None, timeout: float) -> Target:
    return Target(ip or host, port, server_name_for(host), timeout)


def open_raw(where: Target, phase: str, counter: ConnectionCounter | None) -> socket.socket:
    """A connection for a raw ClientHello: through the target's ledger (counted, paced, cut at the
    target's deadline) when there is one. Raises OSError, or Unanswered when the ledger opens no more."""
    if counter is not None:
        return counter.open(where.address, where.port, phase)
    return connect(where.address, where.port, time.monotonic() + where.timeout)


def uses_finite_field_dh(suite: CipherSuite) -> bool:
    return suite.key_exchange == "DHE" or "_DH_anon_" in suite.name


def needs_measuring(suite: CipherSuite) -> bool:
    """An accepted DH suite whose group the client did not report: the client refused it."""
    return uses_finite_field_dh(suite) and suite.ephemeral_bits is None and suite.ephemeral_bits_max is None


def measure_dh_bits(
    where: Target, version: str, suite_name: str, counter: ConnectionCounter | None = None
) -> int | None:
    """The size of dh_p the server sends for this suite in this protocol, or None when it could not
    be read (no code point known, refused, timed out, not a DH ServerKeyExchange). One connection,
    counted in phase "dh", bounded by the scan timeout as a whole."""
    code = SUITE_CODES.get(suite_name)
    wire = WIRE_VERSIONS.get(version)
    if code is None or wire is None or wire >= WIRE_VERSIONS["TLS 1.3"]:
        return None
    try:
        with open_raw(where, "dh", counter) as sock:
            deadline = time.monotonic() + where.timeout  # from the connection, not the wait for a slot
            sock.sendall(client_hello(Hello(suites=[code], version=wire, server_name=where.server_name)))
            for kind, body in handshake_messages(sock, deadline):
                if kind == SERVER_HELLO and parse_server_hello(body).suite != code:
                    return None
                if kind == SERVER_KEY_EXCHANGE:
                    return dh_prime_bits(body)
                if kind == SERVER_HELLO_DONE:
                    return None
    except (OSError, HandshakeRefused, Unanswered):  # TimeoutError is an OSError
        return None
    return None


def complete(
    suite: CipherSuite, version: str, where: Target, counter: ConnectionCounter | None = None
) -> CipherSuite:
    """`suite` with its DH group size measured, or bounded by the client's floor when it cannot be."""
    if not needs_measuring(suite):
        return suite
    bits = measure_dh_bits(where, version, suite.name, counter)
    if bits:
        return suite.model_copy(update={"ephemeral_group": "DH", "ephemeral_bits": bits})
    return suite.model_copy(update={"ephemeral_bits_max": CLIENT_DH_FLOOR - 1})


def complete_protocols(
    protocols: list[ProtocolSupport], where: Target, counter: ConnectionCounter | None = None
) -> None:
    """Measure, in place, every refused DH group of every protocol."""
    for p in protocols:
        if any(needs_measuring(s) for s in p.suites):
            p.suites = [complete(s, p.version, where, counter) for s in p.suites]


def attempt_of(protocols: list[ProtocolSupport]) -> Attempt | None:
    """The DH sizes' attempt (Probe.DH_SIZES): None when every refused group was measured; else which
    were not (their size is then known only to be below CLIENT_DH_FLOOR: ephemeral_bits_max)."""
    unread = [
        f"{p.version} {s.name}"
        for p in protocols
        for s in p.suites
        if s.ephemeral_bits_max is not None and not s.ephemeral_bits
    ]
    if not unread:
        return None
    why = f"DH group size not read (below {CLIENT_DH_FLOOR} bits): {', '.join(unread)}"
    return Attempt.failed(AttemptErrorReason.NO_ANSWER, why)
