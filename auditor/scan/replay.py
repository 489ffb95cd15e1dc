"""A reference client's handshake on the wire: its ClientHello replayed with nassl through the
target's ledger, and what came back, before any of it is interpreted (auditor.scan.simulate).

Kept apart from the interpretation because it loads nothing but nassl and the ledger: the first
simulations of `auditor audit` run from auditor.scan.early_contact while sslyze is still being
imported, and they must be the very same handshakes the scan would make.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass

from nassl.ephemeral_key_info import EphemeralKeyInfo, OpenSslEcNidEnum
from nassl.ssl_client import OpenSslVerifyEnum, OpenSslVersionEnum, SslClient

from auditor.clients import ClientProfile
from auditor.scan.ledger import ConnectionCounter, DeadlineSocket, FirstFlightRead

_GROUPS = {
    "X25519": OpenSslEcNidEnum.X25519,
    "X448": OpenSslEcNidEnum.X448,
    "P-256": OpenSslEcNidEnum.SECP256R1,
    "P-384": OpenSslEcNidEnum.SECP384R1,
    "P-521": OpenSslEcNidEnum.SECP521R1,
}

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


@dataclass(frozen=True)
class Exchange:
    """What one replayed handshake gave: the suite (OpenSSL's name) and ephemeral key the server
    chose, or the exception that ended it and whether that was our deadline or cut (`untrusted`)."""

    openssl_name: str = ""  # empty when `error` says why there is none
    key: EphemeralKeyInfo | None = None
    error: BaseException | None = None
    untrusted: bool = False


def replay(
    profile: ClientProfile,
    host: str,
    port: int,
    ip: str | None,
    timeout: float,
    counter: ConnectionCounter | None = None,
    first_flight: bool = True,
) -> Exchange:
    """Connect (through `counter` when given, counted as "simulation") and replay the profile's
    ClientHello. A TLS 1.2 client stops once it has answered the server's first flight when
    `first_flight` is True (the suite and key exchange are known by then)."""
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
        return Exchange(openssl_name=client.get_current_cipher_name(), key=client.get_ephemeral_key())
    except Exception as exc:  # noqa: BLE001  (the failure is the result: auditor.scan.simulate reads it)
        sock_obj = client.get_underlying_socket()
        untrusted = isinstance(sock_obj, DeadlineSocket) and sock_obj.untrusted
        return Exchange(error=exc, untrusted=untrusted)
    finally:
        with contextlib.suppress(Exception):  # an unfinished handshake may not shut down cleanly
            client.shutdown()
        sock_obj = client.get_underlying_socket()
        if sock_obj is not None:
            sock_obj.close()
