"""Misbehaving servers on 127.0.0.1, built from raw sockets: each handler does one bad thing.

A `RawServer` runs `handler(conn)` for every connection in its own thread. With `tls=context`
the handler gets the connection after a completed TLS handshake (for servers whose TLS is fine
but whose HTTP is not).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

Handler = Callable[[socket.socket], None]


class RawServer:
    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.connections: list[socket.socket] = []

    def __enter__(self) -> RawServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopping.set()
        self.sock.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn.settimeout(10)
                conn = self.tls.wrap_socket(conn, server_side=True)
                self.connections.append(conn)
            self.handler(conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()


def _wait(stop_after: float = 30.0) -> None:
    time.sleep(stop_after)


# ---- handlers for the transport level


def tarpit(conn: socket.socket) -> None:
    """Accepts, then never says anything."""
    _wait()


def close_at_once(conn: socket.socket) -> None:
    conn.close()


def reset_mid_handshake(conn: socket.socket) -> None:
    """Reads the ClientHello, then resets the connection (RST, not FIN)."""
    conn.recv(4096)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def banner(text: bytes) -> Handler:
    def handler(conn: socket.socket) -> None:
        conn.sendall(text)
        with contextlib.suppress(OSError):
            conn.recv(4096)
        conn.sendall(text)
        _wait(2)

    return handler


def random_bytes(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(os.urandom(4096))


# ---- handlers for HTTP over a working TLS connection


def _read_request(conn: socket.socket) -> None:
    data = b""
    conn.settimeout(10)
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def http_hang_after_headers(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n<html>")
    _wait()


def http_trickle(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nStrict-Transport-Security: max-age=63072000"
        b"\r\nContent-Length: 100000\r\n\r\n"
    )
    for _ in range(60):
        conn.sendall(b"x")
        time.sleep(1)


def http_huge_headers(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    for _ in range(10_000):  # ~10 MB of headers
        conn.sendall(line)
    conn.sendall(b"\r\n")


def http_many_cookies(conn: socket.socket) -> None:
    _read_request(conn)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n"
    cookies = b"".join(b"Set-Cookie: c%d=v; Secure; HttpOnly; SameSite=Lax\r\n" % i for i in range(5000))
    conn.sendall(head + cookies + b"\r\nok")


def http_redirect(location: bytes) -> Handler:
    def handler(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 301 Moved\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n")

    return handler


def http_page(body: bytes, headers: list[tuple[str, str]]) -> Handler:
    """Answers each request with 200, these headers and this body as is (hostile content: a gzip
    bomb, quadratic HTML, an odd charset), then closes the connection."""

    def handler(conn: socket.socket) -> None:
        _read_request(conn)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers)
        conn.sendall(
            f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    return handler


# ---- proxies in front of a real TLS server (helper M: deadlines and rate limits)


def _pump(source: socket.socket, sink: socket.socket, delay_per_byte: float = 0.0) -> None:
    """Copy `source` to `sink` until either end closes; with `delay_per_byte`, one byte at a time."""
    try:
        while True:
            data = source.recv(1 if delay_per_byte else 65536)
            if not data:
                break
            if delay_per_byte:
                time.sleep(delay_per_byte)
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _forward(conn: socket.socket, upstream: int, delay_per_byte: float = 0.0) -> None:
    with socket.create_connection(("127.0.0.1", upstream)) as up:
        threading.Thread(target=_pump, args=(conn, up), daemon=True).start()
        _pump(up, conn, delay_per_byte)


def trickle_proxy(upstream: int, seconds_per_byte: float = 1.0) -> Handler:
    """Forwards to a real TLS server, its answers one byte every `seconds_per_byte`: never idle
    long enough for a socket timeout, never done."""

    def handler(conn: socket.socket) -> None:
        _forward(conn, upstream, seconds_per_byte)

    return handler


class RateLimiter:
    """Forwards to `upstream` the connections a rate limiter lets through, and accepts-and-never-
    answers the others (as rate limiters and firewalls do): at most `allow` connections per
    `window` seconds (window=None: the first `allow` connections ever, then silence). `then`
    handles the refused ones instead of silence (e.g. a trickle_proxy)."""

    def __init__(
        self, upstream: int, allow: int, window: float | None = None, then: Handler | None = None
    ) -> None:
        self.upstream, self.allow, self.window, self.then = upstream, allow, window, then
        self.lock = threading.Lock()
        self.times: list[float] = []
        self.forwarded = self.silenced = 0

    def _admit(self) -> bool:
        with self.lock:
            now = time.monotonic()
            recent = [t for t in self.times if self.window is None or now - t < self.window]
            if len(recent) >= self.allow:
                self.silenced += 1
                return False
            self.times.append(now)
            self.forwarded += 1
            return True

    def __call__(self, conn: socket.socket) -> None:
        if self._admit():
            _forward(conn, self.upstream)
        elif self.then is not None:
            self.then(conn)
        else:
            _wait(60)


class DropNth:
    """Forwards every connection to `upstream` except the `n`th ones (1-based), which are accepted
    and never answered: a server that drops one handshake under load."""

    def __init__(self, upstream: int, drop: set[int]) -> None:
        self.upstream, self.drop = upstream, drop
        self.lock = threading.Lock()
        self.count = 0

    def __call__(self, conn: socket.socket) -> None:
        with self.lock:
            self.count += 1
            number = self.count
        if number in self.drop:
            _wait(60)
        else:
            _forward(conn, self.upstream)
