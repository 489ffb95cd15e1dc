"""A server that speaks only finite-field DHE with a group the scanning client refuses.

sslyze's connectivity check gives up on such a server ("could not find a TLS version and cipher
suite supported by the server"): its OpenSSL clients refuse DH groups below 1024 bits before the
handshake ends. That server is Logjam-vulnerable, not unreachable, so a raw ClientHello
(auditor.scan.raw_hello) offering only DHE suites finds the version and suite it does answer with,
and the scan goes on from there (the suites are then recorded with their measured group: dh_size).
"""

from __future__ import annotations

import time

from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.server_connectivity import (
    ClientAuthRequirementEnum,
    ServerTlsProbingResult,
    TlsVersionEnum,
)

from auditor.scan.dh_size import Target, open_raw
from auditor.scan.ledger import ConnectionCounter, Unanswered
from auditor.scan.raw_hello import (
    SERVER_HELLO,
    WIRE_VERSIONS,
    HandshakeRefused,
    Hello,
    client_hello,
    handshake_messages,
    parse_server_hello,
)
from auditor.scan.suite_codes import SUITE_CODES

_TRIED = (
    ("TLS 1.2", TlsVersionEnum.TLS_1_2),
    ("TLS 1.1", TlsVersionEnum.TLS_1_1),
    ("TLS 1.0", TlsVersionEnum.TLS_1_0),
    ("SSL 3.0", TlsVersionEnum.SSL_3_0),
)


def _dhe_suites(version: TlsVersionEnum) -> dict[int, str]:
    """code point -> OpenSSL name of every DHE suite sslyze knows in this version."""
    return {
        SUITE_CODES[s.name]: s.openssl_name
        for s in CipherSuitesRepository.get_all_cipher_suites(version)
        if "_DHE_" in s.name and s.name in SUITE_CODES
    }


def probe_dhe_only(where: Target, counter: ConnectionCounter | None = None) -> ServerTlsProbingResult | None:
    """The probing result sslyze could not find, when the server answers a DHE-only hello; None when
    it does not (then it really is unreachable over TLS, as sslyze said). One connection per version
    tried, newest first, each bounded by the timeout, counted as "connectivity"."""
    for label, version in _TRIED:
        suites = _dhe_suites(version)
        if not suites:
            continue
        hello = client_hello(
            Hello(suites=list(suites), version=WIRE_VERSIONS[label], server_name=where.server_name)
        )
        try:
            with open_raw(where, "connectivity", counter) as sock:
                sock.sendall(hello)
                for kind, body in handshake_messages(sock, time.monotonic() + where.timeout):
                    if kind == SERVER_HELLO:
                        answer = parse_server_hello(body)
                        if answer.suite in suites and answer.version == WIRE_VERSIONS[label]:
                            return ServerTlsProbingResult(
                                highest_tls_version_supported=version,
                                cipher_suite_supported=suites[answer.suite],
                                client_auth_requirement=ClientAuthRequirementEnum.DISABLED,
                                supports_ecdh_key_exchange=False,
                            )
                        break
        except Unanswered:
            return None
        except (OSError, HandshakeRefused):
            continue
    return None
