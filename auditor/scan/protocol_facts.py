"""Protocol facts SSL Labs shows beside the grade: ALPN (HTTP/2), session IDs and tickets, session
resumption, TLS 1.3 0-RTT, and the SCTs a server sends in its TLS 1.2 ServerHello. No clause
judges them (except the SCTs: auditor.checks.certificate's CT policy).

Three connections, counted under phase "facts", run in a thread of their own beside the scan:
1. a raw TLS 1.2 ClientHello (auditor.scan.raw_hello) offering ALPN "h2, http/1.1",
   signed_certificate_timestamp, status_request and session_ticket: the ServerHello and Certificate
   are plain text in TLS 1.2, so ALPN, the SCT list, a session ID and the ticket extension are read
   without completing the handshake. In TLS 1.3 all of it is encrypted: a server that refuses TLS 1.2
   leaves these "not measured", never "none";
2. a full handshake with nassl at the server's highest version (TLS 1.3 or 1.2), keeping the session
   (TLS 1.3: the ticket arrives after an HTTP HEAD request);
3. a second handshake offering that session and, in TLS 1.3 when the ticket allows it, one HEAD
   request as early data. Resumption is read from the ServerHello on the wire (TLS 1.3: the
   pre_shared_key extension; TLS 1.2: the session ID echoed), as nassl does not expose it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Literal, cast

from nassl._nassl import OpenSSLError
from nassl.ssl_client import (
    ClientCertificateRequested,
    OpenSslEarlyDataStatusEnum,
    OpenSslVerifyEnum,
    OpenSslVersionEnum,
    SslClient,
)

from auditor.model import Attempt, ProtocolFacts, Sct, TlsEvidence
from auditor.scan.attempts import from_exception
from auditor.scan.dh_size import Target, open_raw
from auditor.scan.ledger import ConnectionCounter, Unanswered
from auditor.scan.raw_hello import (
    CERTIFICATE,
    HANDSHAKE,
    SERVER_HELLO,
    SERVER_HELLO_DONE,
    TLS12,
    TLS13,
    HandshakeRefused,
    Hello,
    client_hello,
    handshake_messages,
    parse_server_hello,
)
from auditor.scan.sct import parse_list

PHASE = "facts"
Resumed = Literal["session id", "ticket"]
PATIENCE = 2.0  # seconds to wait for the answer that brings a TLS 1.3 ticket
EXT_STATUS_REQUEST, EXT_ALPN, EXT_SCT, EXT_SESSION_TICKET, EXT_PRE_SHARED_KEY = 5, 16, 18, 35, 41
ALPN_OFFER = ("h2", "http/1.1")
_NAMES = {TLS12: "TLS 1.2", TLS13: "TLS 1.3", 0x0302: "TLS 1.1", 0x0301: "TLS 1.0", 0x0300: "SSL 3.0"}
# ECDHE (ECDSA and RSA), DHE and RSA key exchange, AEAD first, then CBC: any TLS 1.2 server finds one.
TLS12_SUITES = (
    0xC02C, 0xC02B, 0xC030, 0xC02F, 0xCCA9, 0xCCA8, 0x009F, 0x009E, 0xCCAA,
    0xC024, 0xC023, 0xC028, 0xC027, 0xC00A, 0xC009, 0xC014, 0xC013,
    0x009D, 0x009C, 0x003D, 0x003C, 0x0035, 0x002F, 0x000A,
)  # fmt: skip


@dataclass(frozen=True)
class TlsExtensionScts:
    """The SCT TLS extension as read from a TLS 1.2 ServerHello: for which leaf (SHA-256 hex), and the
    list (empty: the server sent none). `scts` None: not measured, `note` says why."""

    leaf_sha256: str | None
    scts: list[Sct] | None
    note: str | None = None


@dataclass(frozen=True)
class _Tls12Reading:
    version: int
    alpn: str | None
    session_id: bool
    ticket: bool
    scts: list[Sct]
    leaf_sha256: str | None


def _alpn_body() -> bytes:
    names = b"".join(bytes([len(n)]) + n.encode() for n in ALPN_OFFER)
    return struct.pack("!H", len(names)) + names


def _selected_alpn(body: bytes) -> str | None:
    """The protocol name in a ServerHello's ALPN extension (a list of exactly one name)."""
    if len(body) < 3:
        return None
    return body[3 : 3 + body[2]].decode("ascii", "replace") or None


def _first_certificate_sha256(body: bytes) -> str | None:
    """SHA-256 (hex) of the first certificate of a TLS 1.2 Certificate message."""
    if len(body) < 6:
        return None
    length = int.from_bytes(body[3:6], "big")
    der = body[6 : 6 + length]
    return sha256(der).hexdigest() if len(der) == length and der else None


def read_tls12_hello(where: Target, counter: ConnectionCounter | None) -> _Tls12Reading:
    """One raw TLS 1.2 ClientHello; the ServerHello's extensions and the leaf, read in plain text.
    Raises HandshakeRefused (an alert: TLS 1.2 refused), OSError, Unanswered."""
    hello = Hello(
        suites=TLS12_SUITES,
        version=TLS12,
        server_name=where.server_name,
        extensions=(
            (EXT_STATUS_REQUEST, b"\x01\x00\x00\x00\x00"),  # OCSP, no responder ids, no extensions
            (EXT_ALPN, _alpn_body()),
            (EXT_SCT, b""),
            (EXT_SESSION_TICKET, b""),
        ),
    )
    server = None
    with open_raw(where, PHASE, counter) as sock:
        deadline = time.monotonic() + where.timeout  # from the connection, not the wait for a slot
        sock.sendall(client_hello(hello))
        for kind, body in handshake_messages(sock, deadline):
            if kind == SERVER_HELLO:
                server = parse_server_hello(body)
                if server.version != TLS12:
                    break
            elif kind == CERTIFICATE and server is not None:
                return _reading(server.version, server.extensions, server.session_id, body)
            elif kind == SERVER_HELLO_DONE:
                break
    if server is None:
        raise HandshakeRefused("no ServerHello")
    return _reading(server.version, server.extensions, server.session_id, b"")


def _reading(version: int, extensions: Any, session_id: bytes, certificate: bytes) -> _Tls12Reading:
    return _Tls12Reading(
        version=version,
        alpn=_selected_alpn(extensions[EXT_ALPN]) if EXT_ALPN in extensions else None,
        session_id=bool(session_id),
        ticket=EXT_SESSION_TICKET in extensions,
        scts=parse_list(extensions.get(EXT_SCT, b"")),
        leaf_sha256=_first_certificate_sha256(certificate) if certificate else None,
    )


class _Tap:
    """The socket nassl reads and writes, recording the first bytes each way (to read the hellos)."""

    LIMIT = 16384

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.sent, self.received = sock, b"", b""
        # Seconds a read may wait for the server's first byte (None: until the connection's deadline).
        # Set once the handshake is done: a server that does not answer HTTP costs this, not the deadline.
        self.patience: float | None = None

    def send(self, data: bytes) -> int:
        if len(self.sent) < self.LIMIT:
            self.sent += bytes(data)
        return self.sock.send(data)

    def recv(self, size: int) -> bytes:
        if self.patience is not None and not select.select([self.sock], [], [], self.patience)[0]:
            raise TimeoutError("no answer to the request")
        data = self.sock.recv(size)
        if len(self.received) < self.LIMIT:
            self.received += data
        return data

    def close(self) -> None:
        self.sock.close()

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)


def _first_handshake(data: bytes) -> bytes | None:
    """The body of the first handshake message in a run of records (it fits one record here)."""
    if len(data) < 9 or data[0] != HANDSHAKE:
        return None
    length = int.from_bytes(data[6:9], "big")
    body = data[9 : 9 + length]
    return body if len(body) == length else None


def _last_server_hello(data: bytes) -> bytes | None:
    """The last ServerHello among the plain-text handshake records the server sent (after a TLS 1.3
    HelloRetryRequest, the second one)."""
    found, offset = None, 0
    while offset + 5 <= len(data):
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        record = data[offset : offset + 5 + length]
        body = _first_handshake(record)
        if body is not None and record[5] == SERVER_HELLO:
            found = body
        offset += 5 + length
    return found


def _client_hello_offer(data: bytes) -> tuple[bytes, bool]:
    """(session ID, a non-empty session ticket offered) of the ClientHello at the start of `data`."""
    body = _first_handshake(data)
    if body is None or len(body) < 35:
        return b"", False
    session_id = body[35 : 35 + body[34]]
    offset = 35 + body[34]
    try:
        offset += 2 + struct.unpack("!H", body[offset : offset + 2])[0]  # suites
        offset += 1 + body[offset]  # compression methods
        end = offset + 2 + struct.unpack("!H", body[offset : offset + 2])[0]
        offset += 2
        while offset + 4 <= end:
            kind, length = struct.unpack("!HH", body[offset : offset + 4])
            if kind == EXT_SESSION_TICKET:
                return session_id, length > 0
            offset += 4 + length
    except (IndexError, struct.error):
        pass
    return session_id, False


def _resumed(tap: _Tap) -> tuple[bool, Resumed | None]:
    """Did the server resume, and how: its ServerHello against the ClientHello nassl sent."""
    body = _last_server_hello(tap.received)
    if body is None:
        return False, None
    server = parse_server_hello(body)
    if server.version == TLS13:
        return (True, "ticket") if EXT_PRE_SHARED_KEY in server.extensions else (False, None)
    offered, ticket = _client_hello_offer(tap.sent)
    if offered and server.session_id == offered:
        return True, "ticket" if ticket else "session id"
    return False, None


def _client(where: Target, version: OpenSslVersionEnum, tap: _Tap) -> SslClient:
    client = SslClient(
        underlying_socket=cast(socket.socket, tap),
        ssl_version=version,
        ssl_verify=OpenSslVerifyEnum.NONE,
        ignore_client_authentication_requests=True,
    )
    if where.server_name:
        client.set_tlsext_host_name(where.server_name)
    return client


def _close(client: SslClient, tap: _Tap) -> None:
    """Shut TLS down before closing: OpenSSL marks the session of a connection freed without a
    close_notify as not resumable."""
    try:
        client.shutdown()
    except (OSError, OpenSSLError):
        pass
    finally:
        tap.close()


def _head(where: Target) -> bytes:
    host = where.server_name or where.address
    return f"HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


def measure_resumption(
    where: Target, tls13: bool, counter: ConnectionCounter | None
) -> tuple[bool, Resumed | None, bool | None]:
    """(resumed, how, early data accepted) over two nassl connections. Early data is None in TLS 1.2.
    Raises OSError, OpenSSLError, Unanswered, ClientCertificateRequested."""
    version = OpenSslVersionEnum.TLSV1_3 if tls13 else OpenSslVersionEnum.TLSV1_2
    tap = _Tap(open_raw(where, PHASE, counter))
    client = _client(where, version, tap)
    try:
        client.do_handshake()
        if tls13:  # the ticket comes after the handshake: an answer to a request brings it
            client.write(_head(where))
            tap.patience = min(PATIENCE, where.timeout)
            with contextlib.suppress(OSError, OpenSSLError):  # no answer: the ticket may be there anyway
                client.read(2048)
        session = client.get_session()
    finally:
        _close(client, tap)
    tap = _Tap(open_raw(where, PHASE, counter))
    client = _client(where, version, tap)
    early: bool | None = None
    try:
        client.set_session(session)
        if tls13 and session.get_max_early_data() > 0:
            client.write_early_data(_head(where))
        client.do_handshake()
        if tls13:
            early = client.get_early_data_status() is OpenSslEarlyDataStatusEnum.ACCEPTED
    finally:
        _close(client, tap)
    resumed, how = _resumed(tap)
    return resumed, how, early


def probe(
    where: Target, highest: str | None, counter: ConnectionCounter | None
) -> tuple[ProtocolFacts, TlsExtensionScts]:
    """The facts, and the SCTs of the TLS extension; what could not be measured says why (notes).
    Never raises: these are facts beside the audit, not a reason to lose it."""
    facts, scts, _ = measure(where, highest, counter)
    return facts, scts


def measure(
    where: Target, highest: str | None, counter: ConnectionCounter | None
) -> tuple[ProtocolFacts, TlsExtensionScts, Attempt | None]:
    """`probe`, and its attempt (Probe.FACTS): None when every connection got an answer (a refused
    TLS 1.2 is an answer); else the first failure, typed, the notes as detail."""
    failed: list[Attempt] = []
    try:
        facts, scts = _probe(where, highest, counter, failed)
    except Exception as exc:  # noqa: BLE001  (a bug here must not cost the scan)
        why = f"not measured: {type(exc).__name__}: {exc}"[:200]
        return ProtocolFacts(notes=[why]), TlsExtensionScts(None, None, why), from_exception(exc)
    if not failed or failed[0].reason is None:
        return facts, scts, None
    return facts, scts, Attempt.failed(failed[0].reason, "; ".join(facts.notes))


def _probe(
    where: Target, highest: str | None, counter: ConnectionCounter | None, failed: list[Attempt]
) -> tuple[ProtocolFacts, TlsExtensionScts]:
    stopped = counter.stopped if counter else None
    facts = ProtocolFacts()
    scts = TlsExtensionScts(None, None, "not measured")
    try:
        reading = read_tls12_hello(where, counter)
    except HandshakeRefused as exc:
        why = "TLS 1.2 refused" if str(exc).startswith("TLS alert") else f"no TLS 1.2 answer ({exc})"
        note = f"{why}: in TLS 1.3 ALPN and SCTs are encrypted, not measured"
        facts.notes.append(note)
        scts = TlsExtensionScts(None, None, note)
    except (OSError, Unanswered) as exc:
        facts.notes.append(f"TLS 1.2 hello: no answer ({type(exc).__name__})")
        failed.append(from_exception(exc, stopped))
        scts = TlsExtensionScts(None, None, "the TLS 1.2 hello got no answer: not measured")
    else:
        if reading.version == TLS12:
            facts.alpn, facts.alpn_protocol = reading.alpn, "TLS 1.2"
            facts.http2 = reading.alpn == "h2"
            facts.session_ids, facts.session_tickets = reading.session_id, reading.ticket
            scts = TlsExtensionScts(reading.leaf_sha256, reading.scts)
        else:
            name = _NAMES.get(reading.version, hex(reading.version))
            note = f"the server answered a TLS 1.2 hello with {name}: ALPN and SCTs not measured"
            facts.notes.append(note)
            scts = TlsExtensionScts(None, None, note)
    if highest not in ("TLS 1.3", "TLS 1.2"):
        facts.notes.append(f"resumption not measured (highest protocol {highest or 'unknown'})")
        return facts, scts
    facts.resumption_protocol = highest
    try:
        facts.resumption, facts.resumed_with, facts.early_data = measure_resumption(
            where, highest == "TLS 1.3", counter
        )
    except ClientCertificateRequested as exc:
        facts.notes.append("resumption not measured: the server asks for a client certificate")
        failed.append(from_exception(exc))
    except (OSError, OpenSSLError, Unanswered, HandshakeRefused) as exc:
        facts.notes.append(f"resumption not measured: {type(exc).__name__}: {exc}"[:200])
        failed.append(from_exception(exc, stopped))
    return facts, scts


def apply(evidence: TlsEvidence, facts: ProtocolFacts, scts: TlsExtensionScts) -> None:
    """Put the facts in the evidence: stapling from the certificates sslyze read, the TLS extension's
    SCTs on the certificate the raw hello received (the others: not measured)."""
    evidence.facts = facts
    if evidence.certificates:
        facts.ocsp_stapling = any(d.ocsp_stapled for d in evidence.certificates)
    for deployment in evidence.certificates:
        if deployment.ct is None or not deployment.received_chain:
            continue
        if scts.scts is not None and deployment.received_chain[0].sha256_fingerprint == scts.leaf_sha256:
            deployment.ct.tls_extension, deployment.ct.note = list(scts.scts), None
        elif scts.scts is not None:
            deployment.ct.note = "TLS extension: measured for the other certificate only"
        else:
            deployment.ct.note = f"TLS extension: {scts.note}"
