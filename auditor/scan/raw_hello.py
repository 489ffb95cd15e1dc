"""A ClientHello built byte by byte, and the server's first flight read back as handshake messages.

For what nassl's OpenSSL clients cannot do: they refuse a DH group below their floor before
telling us its size (auditor.scan.dh_size), and they cannot offer arbitrary groups or key shares
(post-quantum hybrids). The hello is general: protocol version, suites, groups, key shares, SNI,
signature algorithms, supported_versions. Nothing here completes a handshake: the caller reads
what it needs from the server's first flight and closes the connection.

Every read is bounded by an overall deadline (socket timeouts alone would let a server that
trickles bytes hold the connection forever).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

# Protocol versions on the wire.
SSL3, TLS10, TLS11, TLS12, TLS13 = 0x0300, 0x0301, 0x0302, 0x0303, 0x0304
WIRE_VERSIONS = {"SSL 3.0": SSL3, "TLS 1.0": TLS10, "TLS 1.1": TLS11, "TLS 1.2": TLS12, "TLS 1.3": TLS13}

# Record content types and handshake message types (RFC 5246 / 8446).
ALERT, HANDSHAKE = 21, 22
SERVER_HELLO, CERTIFICATE, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST, SERVER_HELLO_DONE = 2, 11, 12, 13, 14

# Extensions.
EXT_SERVER_NAME, EXT_SUPPORTED_GROUPS, EXT_EC_POINT_FORMATS, EXT_SIGNATURE_ALGORITHMS = 0, 10, 11, 13
EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE = 43, 51
EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF

# Groups: x25519, secp256r1, secp384r1, secp521r1, x448, ffdhe2048..8192 (what a browser-like client offers).
DEFAULT_GROUPS = (0x001D, 0x0017, 0x0018, 0x0019, 0x001E, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104)
# Signature schemes: ECDSA and RSA-PSS/PKCS#1 with SHA-2, Ed25519, then SHA-1 (old servers need it).
DEFAULT_SIGNATURE_ALGORITHMS = (
    0x0403,
    0x0503,
    0x0603,
    0x0804,
    0x0805,
    0x0806,
    0x0401,
    0x0501,
    0x0601,
    0x0807,
    0x0203,
    0x0201,
    0x0402,
    0x0202,
)


class HandshakeRefused(Exception):
    """The server answered with an alert, closed the connection, or sent something unparseable."""


@dataclass(frozen=True)
class Hello:
    """What one ClientHello offers. `version` is the hello's legacy_version (TLS 1.3 is offered,
    as RFC 8446 requires, by version TLS 1.2 plus `supported_versions`)."""

    suites: Sequence[int]
    version: int = TLS12
    server_name: str | None = None
    groups: Sequence[int] = DEFAULT_GROUPS
    key_shares: Mapping[int, bytes] = field(default_factory=dict)  # group -> key_exchange bytes
    supported_versions: Sequence[int] = ()
    signature_algorithms: Sequence[int] = DEFAULT_SIGNATURE_ALGORITHMS
    # Any other extensions, (type, body), sent last: e.g. ALPN or signed_certificate_timestamp
    # (auditor.scan.protocol_facts).
    extensions: Sequence[tuple[int, bytes]] = ()


def _vector(data: bytes, length_bytes: int) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def _u16s(values: Sequence[int]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def _extension(kind: int, body: bytes) -> bytes:
    return struct.pack("!H", kind) + _vector(body, 2)


def _extensions(hello: Hello) -> bytes:
    exts = []
    if hello.server_name:
        name = hello.server_name.encode("idna")
        exts.append(_extension(EXT_SERVER_NAME, _vector(b"\x00" + _vector(name, 2), 2)))
    if hello.groups:
        exts.append(_extension(EXT_SUPPORTED_GROUPS, _vector(_u16s(hello.groups), 2)))
        exts.append(_extension(EXT_EC_POINT_FORMATS, _vector(b"\x00", 1)))  # uncompressed
    if hello.signature_algorithms and (hello.version >= TLS12 or hello.supported_versions):
        exts.append(_extension(EXT_SIGNATURE_ALGORITHMS, _vector(_u16s(hello.signature_algorithms), 2)))
    if hello.supported_versions:
        exts.append(_extension(EXT_SUPPORTED_VERSIONS, _vector(_u16s(hello.supported_versions), 1)))
    if hello.key_shares or TLS13 in hello.supported_versions:  # RFC 8446 4.2.8: present, even empty
        shares = b"".join(struct.pack("!H", g) + _vector(k, 2) for g, k in hello.key_shares.items())
        exts.append(_extension(EXT_KEY_SHARE, _vector(shares, 2)))
    exts += [_extension(kind, body) for kind, body in hello.extensions]
    return b"".join(exts)


def client_hello(hello: Hello) -> bytes:
    """The ClientHello as one TLS record, ready to send."""
    suites = list(hello.suites)
    if EMPTY_RENEGOTIATION_INFO_SCSV not in suites:
        suites.append(EMPTY_RENEGOTIATION_INFO_SCSV)  # as every OpenSSL client does (RFC 5746)
    body = (
        struct.pack("!H", hello.version)
        + os.urandom(32)
        + _vector(os.urandom(32), 1)
        + _vector(_u16s(suites), 2)
        + _vector(b"\x00", 1)
        + _vector(_extensions(hello), 2)
    )
    message = bytes([1]) + _vector(body, 3)
    # Record version: TLS 1.0 for any later hello (what browsers send; some servers reject more).
    return struct.pack("!BHH", HANDSHAKE, min(hello.version, TLS10), len(message)) + message


class _Reader:
    """Reads records from a socket until a deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline = sock, deadline

    def exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the server's answer did not arrive in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise HandshakeRefused("the server closed the connection")
            data += chunk
        return data

    def record(self) -> tuple[int, bytes]:
        kind, _version, length = struct.unpack("!BHH", self.exactly(5))
        if length > 18432:  # 2^14 plus the largest expansion RFC 5246 allows
            raise HandshakeRefused(f"record of {length} bytes: not TLS")
        return kind, self.exactly(length)


def handshake_messages(sock: socket.socket, deadline: float) -> Iterator[tuple[int, bytes]]:
    """(type, body) of each handshake message the server sends, in order, across records.
    Raises HandshakeRefused on an alert or a non-handshake record, TimeoutError at the deadline."""
    reader = _Reader(sock, deadline)
    buffer = b""
    while True:
        kind, payload = reader.record()
        if kind == ALERT:
            level, description = (payload + b"\x00\x00")[:2]
            raise HandshakeRefused(f"TLS alert {description} (level {level})")
        if kind != HANDSHAKE:
            raise HandshakeRefused(f"unexpected record type {kind}")
        buffer += payload
        while len(buffer) >= 4:
            length = int.from_bytes(buffer[1:4], "big")
            if len(buffer) < 4 + length:
                break
            yield buffer[0], buffer[4 : 4 + length]
            buffer = buffer[4 + length :]


# The random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 4.1.3).
HELLO_RETRY_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


@dataclass(frozen=True)
class ServerHello:
    version: int  # the negotiated version (supported_versions when present)
    suite: int
    # A HelloRetryRequest (TLS 1.3): the server asks the client to try again with `group`.
    retry: bool = False
    # TLS 1.3 key_share: the group of the server's share, or the group a HelloRetryRequest selects.
    group: int | None = None
    session_id: bytes = b""
    extensions: Mapping[int, bytes] = field(default_factory=dict)  # type -> body, as the server sent them


def parse_server_hello(body: bytes) -> ServerHello:
    try:
        version = struct.unpack("!H", body[:2])[0]
        retry, group = body[2:34] == HELLO_RETRY_RANDOM, None
        session_length = body[34]
        session_id = body[35 : 35 + session_length]
        extensions: dict[int, bytes] = {}
        offset = 35 + session_length
        suite = struct.unpack("!H", body[offset : offset + 2])[0]
        offset += 3  # suite, compression method
        if len(body) >= offset + 2:
            end = offset + 2 + struct.unpack("!H", body[offset : offset + 2])[0]
            offset += 2
            while offset + 4 <= end:
                kind, length = struct.unpack("!HH", body[offset : offset + 4])
                extensions[kind] = body[offset + 4 : offset + 4 + length]
                if kind == EXT_SUPPORTED_VERSIONS and length == 2:
                    version = struct.unpack("!H", body[offset + 4 : offset + 6])[0]
                if kind == EXT_KEY_SHARE and length >= 2:  # KeyShareEntry, or an HRR's selected_group
                    group = struct.unpack("!H", body[offset + 4 : offset + 6])[0]
                offset += 4 + length
    except (IndexError, struct.error) as exc:
        raise HandshakeRefused(f"malformed ServerHello: {exc}") from None
    return ServerHello(version, suite, retry, group, session_id, extensions)


def dh_prime_bits(server_key_exchange: bytes) -> int:
    """Size in bits of dh_p in a finite-field DHE ServerKeyExchange (RFC 5246 7.4.3: dh_p, dh_g,
    dh_Ys, each with a two-byte length, then the signature)."""
    if len(server_key_exchange) < 2:
        raise HandshakeRefused("malformed ServerKeyExchange")
    length = struct.unpack("!H", server_key_exchange[:2])[0]
    prime = server_key_exchange[2 : 2 + length]
    if len(prime) != length or not length:
        raise HandshakeRefused("malformed ServerKeyExchange")
    return int.from_bytes(prime, "big").bit_length()


def connect(host: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection made before the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no time left to connect")
    return socket.create_connection((host, port), timeout=left)


def server_name_for(host: str) -> str | None:
    """The SNI to send for `host`: none for an IP address (RFC 6066 names hosts only)."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        return host
