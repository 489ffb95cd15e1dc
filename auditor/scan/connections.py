"""Every TCP connection an audit opens to one server goes through one ledger (ConnectionCounter):
counted per phase (the style guide's politeness measure), bounded by a wall-clock deadline, paced,
closed at once when the target is abandoned, and watched for a server that stops answering.

Why a deadline and not socket timeouts: a socket timeout bounds each read, so a server that sends
one byte a second holds a connection forever. A DeadlineSocket gives each read and write only the
time left until `timeout` seconds after the connection began, so connect, handshake and every
exchange on it end by then, however the peer dribbles. nassl (and so sslyze) reads and writes the
socket from Python, so this holds for every connection sslyze, the enumerator and the simulations open.

Why a ledger: a timeout is never evidence. A connection that hit its deadline, or that the ledger
cut, makes whatever it was testing "not tested" (callers check `Block.untrusted` / `untrusted()`).
Two deadline hits in a row from a server that never answered anything is a server that does not
speak (a tarpit); after answers, two in a row are confirmed by one small ClientHello, and if that
gets no answer either the server has stopped answering (rate limiter, firewall): no new connection
is opened and the ones in flight are cut (`Unanswered`).

Connections sslyze opens go through `tls_connection._open_socket`, wrapped once here: a thread
inside `counting(counter, phase)` opens them through its ledger; others (sslyze's own Scanner, for
--thorough) still get a deadline. Simulations, the fallback and DH probes call `counter.open`.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from sslyze.connection_helpers import tls_connection as _tls_connection

# Deadline hits in a row that make the ledger doubt the server is still answering.
STREAK = 2


class Unanswered(Exception):
    """No (more) connection to this server: it stopped answering, or the audit abandoned it.

    Not an OSError on purpose: sslyze turns OSErrors into TLS verdicts; this must pass through it."""


class DeadlineSocket(socket.socket):
    """A connected TCP socket whose reads and writes all end `timeout` seconds after it was opened."""

    ledger: ConnectionCounter | None
    deadline: float
    received: int
    first_bytes: bytes
    timed_out: bool
    cut: bool

    @classmethod
    def adopt(cls, sock: socket.socket, deadline: float, ledger: ConnectionCounter | None = None) -> DeadlineSocket:
        wrapped = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        wrapped.ledger, wrapped.deadline = ledger, deadline
        wrapped.received, wrapped.first_bytes, wrapped.timed_out, wrapped.cut = 0, b"", False, False
        return wrapped

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self._timeout()
        super().settimeout(left)

    def settimeout(self, value: float | None) -> None:  # the deadline rules; callers' timeouts are ignored
        pass

    def _timeout(self) -> None:
        if not self.timed_out:
            self.timed_out = True
            if self.ledger is not None:
                self.ledger._deadline_hit(self)
        raise TimeoutError("the connection's deadline passed")

    def _got(self, data: bytes) -> bytes:
        if data and len(self.first_bytes) < 16:
            self.first_bytes += data[:16 - len(self.first_bytes)]
        self.received += len(data)
        return data

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        try:
            return self._got(super().recv(bufsize, flags))
        except TimeoutError:
            self._timeout()
            raise

    def send(self, data: Any, flags: int = 0) -> int:
        self._arm()
        try:
            return super().send(data, flags)
        except TimeoutError:
            self._timeout()
            raise

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view, flags):]

    @property
    def untrusted(self) -> bool:
        """Did this connection end by its deadline or by the ledger cutting it? Then it proves nothing."""
        return self.timed_out or self.cut

    def close(self) -> None:
        if self.ledger is not None and not getattr(self, "_settled", False):
            self._settled = True
            self.ledger._settle(self)
        super().close()


class ConnectionCounter:
    """The ledger of one target's connections: counts per phase, deadline per connection, pacing,
    abandonment, and whether the server still answers. Thread-safe."""

    def __init__(self, timeout: float = 10.0, pace: float = 0.0) -> None:
        self.timeout, self.pace = timeout, pace
        self._lock = threading.Lock()
        self.by_phase: dict[str, int] = {}
        self._open: set[DeadlineSocket] = set()
        self._next_slot = 0.0
        self.answered = 0  # connections that ended before their deadline, by the server's doing
        self.deadline_hits = 0
        self._streak = 0
        self._confirming = False
        self.first_bytes = b""  # the first bytes this server ever sent (to name what it speaks)
        self.stopped: str | None = None  # why no connection is opened any more
        self.probe: tuple[str, int, str | None] | None = None  # (address, port, SNI) for the liveness hello

    # ---- counting (also used alone, e.g. by tests and --thorough)
    def add(self, phase: str, n: int = 1) -> None:
        with self._lock:
            self.by_phase[phase] = self.by_phase.get(phase, 0) + n

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_phase.values())

    # ---- opening
    def open(self, address: str, port: int, phase: str) -> DeadlineSocket:
        """A counted, paced TCP connection that ends by `timeout` seconds from now."""
        with self._lock:
            if self.stopped:
                raise Unanswered(self.stopped)
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.pace
        if slot > now:
            time.sleep(slot - now)
        self.add(phase)
        started = time.monotonic()
        sock = socket.create_connection((address, port), timeout=self.timeout)
        wrapped = DeadlineSocket.adopt(sock, started + self.timeout, self)
        with self._lock:
            if self.stopped:
                wrapped.cut = True
                wrapped.ledger = None
                wrapped.close()
                raise Unanswered(self.stopped)
            self._open.add(wrapped)
        return wrapped

    # ---- what the server does
    def _settle(self, sock: DeadlineSocket) -> None:
        with self._lock:
            self._open.discard(sock)
            if sock.untrusted or self.stopped:
                return
            self.answered += 1
            self._streak = 0
            if sock.first_bytes and not self.first_bytes:
                self.first_bytes = sock.first_bytes

    def _deadline_hit(self, sock: DeadlineSocket) -> None:
        with self._lock:
            self._open.discard(sock)
            if sock.first_bytes and not self.first_bytes:
                self.first_bytes = sock.first_bytes
            if self.stopped:
                return
            self.deadline_hits += 1
            self._streak += 1
            if self._streak < STREAK or self._confirming:
                return
            if self.answered == 0:  # never a complete answer: nothing to confirm
                self._stop_locked(self._never_answered())
                return
            self._confirming = True
        alive = self._confirm()  # one small hello, outside the lock (it takes up to `timeout`)
        with self._lock:
            self._confirming = False
            if alive:
                self._streak = 0
            elif not self.stopped:
                self._stop_locked(f"the server stopped answering after {self.answered} connections "
                                  f"(no answer within {self.timeout:g} s)")

    def _never_answered(self) -> str:
        if self.first_bytes:
            return (f"no complete answer within {self.timeout:g} s (the server sends too slowly, "
                    f"{STREAK} attempts)")
        return f"no answer within {self.timeout:g} s (the port accepts connections but never speaks)"

    def _confirm(self) -> bool:
        """Does the server answer a small, ordinary ClientHello (any byte) within the timeout?"""
        if self.probe is None:
            return True  # nothing to confirm with: keep going
        from auditor.scan.raw_hello import TLS12, TLS13, Hello, client_hello

        address, port, server_name = self.probe
        hello = client_hello(Hello(suites=_LIVENESS_SUITES, version=TLS12, server_name=server_name,
                                   supported_versions=(TLS13, TLS12)))
        try:
            sock = self.open(address, port, "liveness")
        except (OSError, Unanswered):
            return False
        try:
            sock.sendall(hello)
            return bool(sock.recv(16))  # an alert or a ServerHello; b"" (closed) is no answer either
        except OSError:
            return False
        finally:
            sock.close()

    def _stop_locked(self, reason: str) -> None:
        self.stopped = reason
        for sock in list(self._open):
            _cut(sock)
        self._open.clear()

    def abandon(self, reason: str = "the audit was abandoned at its deadline") -> None:
        """Open nothing more and cut every connection in flight (the target's deadline passed)."""
        with self._lock:
            if not self.stopped:
                self._stop_locked(reason)
            else:
                for sock in list(self._open):
                    _cut(sock)

    def untrusted(self, sockets: list[DeadlineSocket]) -> str | None:
        """Why the result of these connections proves nothing (None: it does)."""
        for sock in sockets:
            if sock.cut:
                return self.stopped or "the connection was cut"
            if sock.timed_out:
                return f"no complete answer within {self.timeout:g} s"
        return None

    def describe_failure(self) -> str | None:
        """What the server sent instead of TLS, named from its first bytes (None: it looked like TLS)."""
        return _not_tls(self.first_bytes)


# An ordinary small offer (TLS 1.3 and common TLS 1.2 suites, ~150 bytes): any server that still
# speaks TLS answers it, with a ServerHello or an alert.
_LIVENESS_SUITES = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0x009C, 0x009D,
                    0x002F, 0x0035, 0x000A)


def _cut(sock: DeadlineSocket) -> None:
    sock.cut = True
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv at once
    except OSError:
        pass


def _not_tls(first: bytes) -> str | None:
    if not first or first[0] in (20, 21, 22, 23, 24):
        return None
    if first.startswith(b"HTTP/"):
        return "not TLS: the server answered in plain HTTP"
    if first.startswith(b"SSH-"):
        return "not TLS: the server speaks SSH"
    if first[:3].isdigit():
        return f"not TLS: the server sent a text banner ({first[:12].decode('ascii', 'replace')!r}...)"
    return "not TLS: the server's first bytes are not a TLS record"


class Block:
    """The connections one thread opens inside `counting(...)`: their result is untrusted when any
    of them hit its deadline or was cut."""

    def __init__(self, counter: ConnectionCounter, phase: str) -> None:
        self.counter, self.phase = counter, phase
        self.sockets: list[DeadlineSocket] = []

    @property
    def untrusted(self) -> str | None:
        return self.counter.untrusted(self.sockets)


_current = threading.local()


class counting:  # noqa: N801 - used like a function: `with counting(counter, "suites") as block:`
    """Open this thread's connections inside the block through `counter`, counted under `phase`.

    A plain class, not @contextmanager: sslyze's exceptions are frozen dataclasses, and a
    generator-based context manager fails re-raising them (it assigns __traceback__)."""

    def __init__(self, counter: ConnectionCounter, phase: str) -> None:
        self.block = Block(counter, phase)
        self.previous: Block | None = None

    def __enter__(self) -> Block:
        self.previous = getattr(_current, "value", None)
        _current.value = self.block
        return self.block

    def __exit__(self, *exc_info: object) -> None:
        _current.value = self.previous


def _install() -> None:
    original = _tls_connection._open_socket
    if getattr(original, "_auditor_counted", False):
        return

    def _open_socket(server_location: Any, network_timeout: float) -> socket.socket:
        block: Block | None = getattr(_current, "value", None)
        if block is None or server_location.http_proxy_settings is not None:
            started = time.monotonic()
            return DeadlineSocket.adopt(original(server_location, network_timeout), started + network_timeout)
        sock = block.counter.open(server_location.ip_address, server_location.port, block.phase)
        block.sockets.append(sock)
        return sock

    _open_socket._auditor_counted = True  # type: ignore[attr-defined]
    _tls_connection._open_socket = _open_socket


_install()
