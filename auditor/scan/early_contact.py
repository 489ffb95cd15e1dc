"""A target's first handshake, started while the scanning stack is still being imported.

`auditor audit` spends about 0.2 s importing sslyze before its first connection. The first
connection of every fast scan is sslyze's TLS 1.3 connectivity check (auditor.scan.tls
_probe_connectivity): a TLS 1.3 handshake with OpenSSL's default suites, SNI, no client
certificate. This module makes exactly that handshake with nassl alone (light to import), in a
thread, as soon as the command knows the target, so that the network round trips overlap the
imports. The scan then takes the outcome instead of opening the same connection again
(`take`): for a TLS 1.3 server, the same one connection as before.

Only a handshake that completed without a client-certificate request stands in for sslyze's
check. Any other outcome is handed to the scan's ledger as the attempt it was (a timeout counts
toward "the server never answers", an answer as an answer) and the scan runs sslyze's check as
before, so its verdicts and messages are sslyze's; such a server (no TLS 1.3, a client
certificate asked for, no TLS at all) costs one connection more than before.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from nassl.ssl_client import ClientCertificateRequested, OpenSslVerifyEnum, OpenSslVersionEnum, SslClient

Key = tuple[int, str]  # (port, host): one early handshake per target; the name is sent as SNI


@dataclass(frozen=True)
class Contact:
    """What the early handshake found, with which address."""

    address: str | None  # None: the name did not resolve, or no TCP connection
    cipher: str | None  # the suite the server chose (OpenSSL name) when the handshake completed
    client_certificate_requested: bool = False
    timed_out: bool = False  # the connection's deadline passed (a silent or a trickling server)
    answered: bool = False  # the connection ended before its deadline, by the server's doing or ours
    first_bytes: bytes = b""  # what the server sent first (names what it speaks)

    @property
    def usable(self) -> bool:
        """It stands in for sslyze's TLS 1.3 connectivity check."""
        return self.cipher is not None and not self.client_certificate_requested


class _DeadlineSocket:
    """The socket methods nassl uses, each bounded by one wall-clock deadline (a trickling server
    cannot stretch the handshake past `timeout`), recording the first bytes received. The ledger's
    auditor.scan.connections.DeadlineSocket does the same for the scan, but that module loads
    sslyze, which this one exists to run before."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline, self.first_bytes, self.timed_out = sock, deadline, b"", False

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.timed_out = True
            raise TimeoutError("the connection's deadline passed")
        self.sock.settimeout(left)

    def recv(self, size: int) -> bytes:
        self._arm()
        try:
            data = self.sock.recv(size)
        except TimeoutError:
            self.timed_out = True
            raise
        if len(self.first_bytes) < 16:
            self.first_bytes += data[: 16 - len(self.first_bytes)]
        return data

    def send(self, data: Any) -> int:
        self._arm()
        try:
            return self.sock.send(data)
        except TimeoutError:
            self.timed_out = True
            raise

    def close(self) -> None:
        self.sock.close()


def _handshake(host: str, port: int, address: str | None, timeout: float, pending: _Pending) -> Contact:
    started = time.monotonic()
    try:
        if address is None:  # the system resolver, as the audit's own endpoint lookup uses
            address = str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
        raw = socket.create_connection((address, port), timeout=timeout)
    except OSError:
        return Contact(address=None, cipher=None)
    with _lock:
        if pending.abandoned:  # the scan began without it: send nothing more
            raw.close()
            return Contact(address=None, cipher=None)
        pending.connected.set()
    sock = _DeadlineSocket(raw, started + timeout)
    client = SslClient(
        ssl_version=OpenSslVersionEnum.TLSV1_3,
        ssl_verify=OpenSslVerifyEnum.NONE,
        ignore_client_authentication_requests=False,
    )
    client.set_tlsext_host_name(host)
    client.set_underlying_socket(sock)  # type: ignore[arg-type]  # duck-typed: send, recv, close
    try:
        client.do_handshake()
        cipher: str | None = client.get_current_cipher_name()
        requested = False
    except ClientCertificateRequested:
        cipher, requested = None, True
    except Exception:  # noqa: BLE001  (any other outcome: sslyze's check runs and names it)
        cipher, requested = None, False
    finally:
        with contextlib.suppress(Exception):
            client.shutdown()
        sock.close()
    return Contact(
        address=address,
        cipher=cipher,
        client_certificate_requested=requested,
        timed_out=sock.timed_out,
        answered=not sock.timed_out,
        first_bytes=sock.first_bytes,
    )


@dataclass
class _Pending:
    outcome: Future[Contact]
    connected: threading.Event  # the TCP connection is up: the handshake ends by its deadline
    abandoned: bool = False  # the scan began while it still waited for its TCP connection


_lock = threading.Lock()
_contacts: dict[Key, _Pending] = {}


def start(host: str, port: int, address: str | None, timeout: float) -> None:
    """Begin the handshake with `address` (None: what the system resolver gives first) in a daemon
    thread; the scan of that endpoint takes its outcome."""
    pending = _Pending(Future(), threading.Event())
    with _lock:
        if (port, host) in _contacts:
            return
        _contacts[(port, host)] = pending

    def run() -> None:
        try:
            pending.outcome.set_result(_handshake(host, port, address, timeout, pending))
        except BaseException as exc:  # noqa: BLE001  (handed to whoever takes it)
            pending.outcome.set_exception(exc)

    threading.Thread(target=run, name="early-contact", daemon=True).start()


CONNECT_GRACE = 1.0  # seconds the scan waits for the early TCP connection before giving it up


def take(address: str, port: int, host: str) -> Contact | None:
    """The outcome of the early handshake with this endpoint, or None when none was made with it.
    A handshake under way is waited for (it ends by its deadline); one still without its TCP
    connection after CONNECT_GRACE is given up (a filtered port would otherwise cost the scan a
    whole timeout before sslyze's own attempts). Each outcome is taken once."""
    with _lock:
        pending = _contacts.get((port, host))
    if pending is None:
        return None
    pending.connected.wait(CONNECT_GRACE)
    with _lock:
        if not pending.outcome.done() and not pending.connected.is_set():
            pending.abandoned = True
            _contacts.pop((port, host), None)
            return None
    try:
        contact = pending.outcome.result()
    except Exception:  # noqa: BLE001  (a bug here costs nothing but the head start)
        contact = None
    if contact is None or contact.address != address:
        return None  # another address of the name (its endpoint takes it), or nothing to take
    with _lock:
        if _contacts.get((port, host)) is not pending:
            return None  # taken meanwhile
        del _contacts[(port, host)]
    return contact
