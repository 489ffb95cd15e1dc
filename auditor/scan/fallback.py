"""TLS_FALLBACK_SCSV (RFC 7507): does the server refuse a client that says it fell back?

sslyze's probe falls back one version below the highest, whether or not the server accepts that
version, and reads any refusal or timeout as "supported": a server that only speaks SSL 3.0 and
TLS 1.2 refuses TLS 1.1 anyway and is credited with the SCSV it lacks. Here the fallback lands on
a version the server was seen to accept, offering suites it was seen to accept there (all of them,
or its favourite alone when the scan starts the probe early), so the only new thing in the hello
is the SCSV: a ServerHello means it is ignored, an alert means it is honoured
(inappropriate_fallback, or any refusal of what the server accepted without the SCSV). A hello that
gets no answer at all (closed, reset, silent, twice) proves nothing: None, "not tested".
"""

from __future__ import annotations

import time

from auditor.model import ProtocolSupport
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

TLS_FALLBACK_SCSV = 0x5600
INAPPROPRIATE_FALLBACK = 86
_ORDER = ["SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]


def fallback_version(protocols: list[ProtocolSupport]) -> str | None:
    """The accepted version just below the highest accepted one (None: nothing to fall back to)."""
    accepted = sorted((p.version for p in protocols if p.supported and p.version in _ORDER), key=_ORDER.index)
    return accepted[-2] if len(accepted) >= 2 else None


def _offer(protocols: list[ProtocolSupport], version: str) -> list[int]:
    support = next(p for p in protocols if p.version == version)
    return [SUITE_CODES[s.name] for s in support.suites if s.name in SUITE_CODES][:64]


def _attempt(where: Target, hello: bytes, counter: ConnectionCounter | None) -> bool | None:
    """True: refused with an alert; False: a ServerHello; None: no answer."""
    try:
        with open_raw(where, "fallback", counter) as sock:
            deadline = time.monotonic() + where.timeout  # from the connection, not the wait for a slot
            sock.sendall(hello)
            for kind, body in handshake_messages(sock, deadline):
                if kind == SERVER_HELLO:
                    parse_server_hello(body)
                    return False
    except HandshakeRefused as exc:
        return True if str(exc).startswith("TLS alert") else None
    except (OSError, Unanswered):  # refused, reset, timed out (TimeoutError is an OSError), abandoned
        return None
    return None


def probe_fallback_scsv(
    where: Target, protocols: list[ProtocolSupport], counter: ConnectionCounter | None = None
) -> bool | None:
    """True when the server honours TLS_FALLBACK_SCSV, False when it ignores it, None when it cannot
    be told (fewer than two accepted versions from SSL 3.0 up, no suite with a known code point, or no
    answer twice). At most two connections, each bounded by the timeout, counted as "fallback"."""
    version = fallback_version(protocols)
    if version is None:
        return None
    return probe_with(where, version, _offer(protocols, version), counter)


def probe_with(
    where: Target, version: str, suites: list[int], counter: ConnectionCounter | None = None
) -> bool | None:
    """The probe itself: fall back to `version` offering `suites` (all accepted there without the
    SCSV) and the SCSV. The scan calls it directly, with the server's favourite TLS 1.2 suite, as
    soon as the enumeration finds it on a server that speaks TLS 1.3 (auditor.scan.tls): the version
    is the one fallback_version would choose once every protocol is known, and the answer the same."""
    if not suites:
        return None
    hello = client_hello(
        Hello(
            suites=[*suites, TLS_FALLBACK_SCSV], version=WIRE_VERSIONS[version], server_name=where.server_name
        )
    )
    for _ in range(2):
        answer = _attempt(where, hello, counter)
        if answer is not None:
            return answer
    return None
