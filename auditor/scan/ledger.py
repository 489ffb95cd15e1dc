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

This module loads nothing but the standard library and the raw ClientHello builder, so a ledger can
be opened before sslyze is imported (auditor.scan.early_contact); the hook that routes sslyze's own
connections through it is auditor.scan.connections. Simulations, the fallback and DH probes call
`counter.open`.

The HTTP probe's connections are watched by the same watchdog and cut with the ledger
(auditor.scan.http_deadline, loaded with httpx by the probe's own thread).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from auditor.scan.raw_hello import TLS12, TLS13, Hello, client_hello

# Deadline hits in a row that make the ledger doubt the server is still answering.
STREAK = 2
_SLOT_LOCK = threading.Lock()


class Unanswered(Exception):
    """No (more) connection to this server: it stopped answering, or the audit abandoned it.

    Not an OSError on purpose: sslyze turns OSErrors into TLS verdicts; this must pass through it."""


class FirstFlightRead(Exception):
    """The server's first flight was read and our answer to it sent (a TLS <= 1.2 handshake that
    watches its flight): the suite and key exchange are known, the last round trip is skipped.

    Not an OSError, for the reason given for Unanswered."""


class DeadlineSocket(socket.socket):
    """A connected TCP socket whose reads and writes all end `timeout` seconds after it was opened."""

    ledger: ConnectionCounter | None
    deadline: float
    received: int
    first_bytes: bytes
    timed_out: bool
    cut: bool
    slot: bool = False  # holds one of the ledger's connection slots
    # Stop at the first read after the client sent a ChangeCipherSpec record (TLS <= 1.2): by then it
    # has processed the server's whole first flight (FirstFlightRead).
    watch_flight: bool = False
    flight_sent: bool = False
    # The watchdog ended it at its deadline (expire): whoever still reads or writes it meets that
    # deadline (TimeoutError, a deadline hit), never the end of file the shutdown looks like.
    past_deadline: bool = False

    @classmethod
    def adopt(
        cls, sock: socket.socket, deadline: float, ledger: ConnectionCounter | None = None
    ) -> DeadlineSocket:
        wrapped = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        wrapped.ledger, wrapped.deadline = ledger, deadline
        wrapped.received, wrapped.first_bytes, wrapped.timed_out, wrapped.cut = 0, b"", False, False
        WATCHDOG.watch(wrapped)  # a connection left open by a library bug is still ended at its deadline
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
                self.ledger.deadline_hit(self)
        raise TimeoutError("the connection's deadline passed")

    def _got(self, data: bytes) -> bytes:
        if data and len(self.first_bytes) < 16:
            self.first_bytes += data[: 16 - len(self.first_bytes)]
        self.received += len(data)
        return data

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.flight_sent:
            raise FirstFlightRead
        self._arm()
        try:
            data = super().recv(bufsize, flags)
        except TimeoutError:
            self._timeout()
            raise
        except OSError:  # what a shutdown at the deadline may make of a read
            if self.past_deadline:
                self._timeout()
            raise
        if not data and self.past_deadline:
            self._timeout()
        return self._got(data)

    def send(self, data: Any, flags: int = 0) -> int:
        self._arm()
        if self.watch_flight and not self.flight_sent:
            self.flight_sent = _has_change_cipher_spec(bytes(data))
        try:
            return super().send(data, flags)
        except TimeoutError:
            self._timeout()
            raise
        except OSError:
            if self.past_deadline:
                self._timeout()
            raise

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view, flags) :]

    @property
    def untrusted(self) -> bool:
        """Did this connection end by its deadline or by the ledger cutting it? Then it proves nothing."""
        return self.timed_out or self.cut or self.past_deadline

    def close(self) -> None:
        WATCHDOG.forget(self)
        super().close()  # first: the slot is free only once the server has seen this connection end
        if self.ledger is not None and not getattr(self, "_settled", False):
            self._settled = True
            self.ledger.settle(self)

    def expire(self) -> None:
        """The watchdog's call at the deadline: end the connection even if nobody reads it any more
        (nassl leaves the socket open when OpenSSL's shutdown fails; a one-connection-at-a-time
        server would wait on it forever)."""
        WATCHDOG.forget(self)
        self.past_deadline = True
        if self.ledger is not None:
            self.ledger.expired(self)
        else:
            _cut(self)


# Who gets a free slot first, when several connections wait for one (lower first). The suite
# enumeration's remove loop (one offer after another, each depending on the last answer) is the
# scan's longest chain, TLS 1.2's above all; then the other chains (the order probes, the groups in
# preference order, the protocol facts' three handshakes); then the long single jobs (full
# handshakes, renegotiations, ROBOT's several connections), so that the scan does not end on one of
# them alone; the short ones (a hello and its answer) fill the rest.
RANKS = {
    **dict.fromkeys(("suites", "batches"), 0),
    **dict.fromkeys(("order", "groups", "facts"), 1),
    **dict.fromkeys(("session_renegotiation", "tls_compression", "certificate_info", "robot"), 2),
}
SHORT = 3


class Slots:
    """A counting semaphore that serves its waiters by rank (lowest first), whatever their order."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiting: dict[int, int] = {}  # rank -> waiters
        self._changed = threading.Condition(threading.Lock())

    def acquire(self, timeout: float, rank: int = SHORT) -> bool:
        with self._changed:
            self._waiting[rank] = self._waiting.get(rank, 0) + 1
            try:
                got = self._changed.wait_for(lambda: self._free > 0 and rank == min(self._waiting), timeout)
                if got:
                    self._free -= 1
                return got
            finally:
                self._waiting[rank] -= 1
                if not self._waiting[rank]:
                    del self._waiting[rank]
                self._changed.notify_all()  # the next rank may be served now

    def release(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify_all()


class ConnectionCounter:
    """The ledger of one target's connections: counts per phase, deadline per connection, pacing,
    abandonment, and whether the server still answers. Thread-safe."""

    def __init__(self, timeout: float = 10.0, pace: float = 0.0) -> None:
        self.timeout, self.pace = timeout, pace
        self._lock = threading.Lock()
        self._quiet = threading.Condition(self._lock)  # notified when a connection ends or a pause is over
        self.by_phase: dict[str, int] = {}
        self._open: set[DeadlineSocket] = set()
        self._next_slot = 0.0
        self.answered = 0  # connections that ended before their deadline, by the server's doing
        self.deadline_hits = 0
        self._streak = 0
        self._confirming = False
        self.first_bytes = b""  # the first bytes this server ever sent (to name what it speaks)
        self.stopped: str | None = None  # why no connection is opened any more
        self._watched: set[Any] = set()  # the HTTP probe's connections (.cut(); auditor.scan.http_deadline)
        self._slots: Slots | None = None  # at most `limit` connections open at once
        self._limit = 0
        self.probe: tuple[str, int, str | None] | None = None  # (address, port, SNI) for the liveness hello

    # ---- counting (also used alone, e.g. by tests and --thorough)
    def add(self, phase: str, n: int = 1) -> None:
        with self._lock:
            self.by_phase[phase] = self.by_phase.get(phase, 0) + n

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_phase.values())

    def set_limit(self, limit: int) -> None:
        """At most `limit` of this target's connections open at once (connections_per_server), however
        many threads open them. Setting the same limit again keeps the slots already held (the scan
        goes on with the ledger of auditor.scan.early_contact, whose connections may be in flight)."""
        if self._slots is not None and self._limit == limit:
            return
        self._slots, self._limit = Slots(max(1, limit)), limit

    def free(self, sock: DeadlineSocket) -> None:
        """Give back the slot `sock` holds (once, whoever calls first: close, deadline, cut)."""
        with _SLOT_LOCK:
            held, sock.slot = sock.slot, False
        if held and self._slots is not None:
            self._slots.release()

    # ---- opening
    def open(self, address: str, port: int, phase: str, *, during_pause: bool = False) -> DeadlineSocket:
        """A counted, paced TCP connection that ends by `timeout` seconds from now. While the ledger
        doubts the server (see deadline_hit), new connections wait."""
        with self._lock:
            while self._confirming and not during_pause and not self.stopped:
                self._quiet.wait()
            if self.stopped:
                raise Unanswered(self.stopped)
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.pace
        if slot > now:
            time.sleep(slot - now)
        # a slot: never more than the limit open at once (a server that serves one connection at a time
        # would otherwise queue our handshakes until they time out). Every open connection ends by its
        # deadline (the watchdog closes one nobody closed), so the wait ends; abandoning the target ends it too.
        slotted = during_pause or self._slots is None
        while not slotted:
            slotted = self._slots.acquire(0.25, RANKS.get(phase, SHORT))  # type: ignore[union-attr]
            if not slotted and self.stopped:
                raise Unanswered(self.stopped)
            if slotted and self._confirming:  # the ledger began doubting the server meanwhile: the
                self._slots.release()  # type: ignore[union-attr]  # liveness hello goes alone
                slotted = False
                with self._lock:
                    while self._confirming and not self._stopped_now():
                        self._quiet.wait()
                    if self._stopped_now():
                        raise Unanswered(self.stopped)
        self.add(phase)
        started = time.monotonic()
        try:
            sock = socket.create_connection((address, port), timeout=self.timeout)
        except BaseException:
            if slotted and not during_pause and self._slots is not None:
                self._slots.release()
            raise
        wrapped = DeadlineSocket.adopt(sock, started + self.timeout, self)
        wrapped.slot = slotted and not during_pause and self._slots is not None
        with self._lock:
            if self._stopped_now():  # abandoned while connecting
                wrapped.cut = True
                self.free(wrapped)
                wrapped.ledger = None
                wrapped.close()
                raise Unanswered(self.stopped)
            self._open.add(wrapped)
        return wrapped

    def _stopped_now(self) -> str | None:
        return self.stopped

    # ---- what the server does
    def settle(self, sock: DeadlineSocket) -> None:
        self.free(sock)
        with self._lock:
            self._open.discard(sock)
            self._quiet.notify_all()
            if sock.untrusted or self.stopped:
                return
            self.answered += 1
            self._streak = 0
            if sock.first_bytes and not self.first_bytes:
                self.first_bytes = sock.first_bytes

    def expired(self, sock: DeadlineSocket) -> None:
        """The watchdog ended `sock` at its deadline: its slot is free (nobody may ever close it);
        the thread that still reads it, if any, records the deadline hit (DeadlineSocket.recv)."""
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv at once
        self.free(sock)
        with self._lock:
            self._open.discard(sock)
            self._quiet.notify_all()

    def deadline_hit(self, sock: DeadlineSocket) -> None:
        with contextlib.suppress(OSError):  # ended for the server before its slot serves another
            sock.shutdown(socket.SHUT_RDWR)  # connection (its owner closes it when the error reaches it)
        self.free(sock)
        with self._lock:
            self._open.discard(sock)
            self._quiet.notify_all()
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
            # Pause: no new connection; let ours in flight end (a server that serves one connection at
            # a time may be busy with one of them), then ask once, alone.
            self._confirming = True
            drained = time.monotonic() + self.timeout
            while self._open and self._streak and not self.stopped and time.monotonic() < drained:
                self._quiet.wait(max(0.0, drained - time.monotonic()))
            answered_meanwhile = self._streak == 0 or self.stopped is not None
        alive = answered_meanwhile or self._confirm()  # one small hello, outside the lock (up to `timeout`)
        with self._lock:
            self._confirming = False
            self._quiet.notify_all()
            if alive:
                self._streak = 0
            elif not self.stopped:
                self._stop_locked(
                    f"the server stopped answering after {self.answered} connections "
                    f"(no answer within {self.timeout:g} s)"
                )

    def _never_answered(self) -> str:
        if self.first_bytes:
            return (
                f"no complete answer within {self.timeout:g} s (the server sends too slowly, "
                f"{STREAK} attempts)"
            )
        return f"no answer within {self.timeout:g} s (the port accepts connections but never speaks)"

    def _confirm(self) -> bool:
        """Does the server answer a small, ordinary ClientHello (any byte) within the timeout?"""
        if self.probe is None:
            return True  # nothing to confirm with: keep going

        address, port, server_name = self.probe
        hello = client_hello(
            Hello(
                suites=_LIVENESS_SUITES,
                version=TLS12,
                server_name=server_name,
                supported_versions=(TLS13, TLS12),
            )
        )
        try:
            sock = self.open(address, port, "liveness", during_pause=True)
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
        self._quiet.notify_all()
        for sock in list(self._open):
            _cut(sock)
        self._open.clear()

    def watch_http(self, watch: Any) -> bool:
        """Cut `watch` (an HTTP connection: .cut()) when the target is abandoned; True when it already is."""
        with self._lock:
            self._watched.add(watch)
            return self.stopped is not None

    def unwatch_http(self, watch: Any) -> None:
        with self._lock:
            self._watched.discard(watch)

    def abandon_http(self) -> None:
        """Cut the HTTP probe's connections (the target's deadline passed)."""
        with self._lock:
            watched, self._watched = list(self._watched), set()
        for watch in watched:
            watch.cut()

    def abandon(self, reason: str = "the audit was abandoned at its deadline") -> None:
        """Open nothing more and cut every connection in flight, TLS and HTTP (the target's deadline passed)."""
        with self._lock:
            if not self.stopped:
                self._stop_locked(reason)
            else:
                for sock in list(self._open):
                    _cut(sock)
        self.abandon_http()

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
_LIVENESS_SUITES = (
    0x1301,
    0x1302,
    0x1303,
    0xC02B,
    0xC02F,
    0xC02C,
    0xC030,
    0xCCA9,
    0xCCA8,
    0x009C,
    0x009D,
    0x002F,
    0x0035,
    0x000A,
)


def _has_change_cipher_spec(data: bytes) -> bool:
    """Does this run of TLS records hold a ChangeCipherSpec record (content type 20)?"""
    at = 0
    while at + 5 <= len(data):
        if data[at] == 20:
            return True
        at += 5 + int.from_bytes(data[at + 3 : at + 5], "big")
    return False


def _cut(sock: DeadlineSocket) -> None:
    sock.cut = True
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv at once; ended for the server
    if sock.ledger is not None:
        sock.ledger.free(sock)  # only then may its slot serve another connection


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


class _Watchdog:
    """One daemon thread that ends the connections past their deadline: HTTP exchanges (read in C
    by SSLSocket), and TLS scan sockets nobody closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: set[Any] = set()  # DeadlineSocket and HTTP watches: .deadline, .expire()
        self._thread: threading.Thread | None = None

    def watch(self, watch: Any) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-watchdog", daemon=True)
                self._thread.start()

    def forget(self, watch: Any) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                late = [w for w in self._watches if w.deadline <= now]
            for watch in late:
                watch.expire()


WATCHDOG = _Watchdog()
