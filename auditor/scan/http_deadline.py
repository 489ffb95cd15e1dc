"""Deadlines for the HTTP probe's connections (httpx through httpcore's sync backend).

httpx wraps its sockets in ssl.SSLSocket, which reads in C, so a DeadlineSocket cannot bound it:
the ledger's watchdog (auditor.scan.ledger.WATCHDOG) shuts the socket down when an exchange
passes its deadline (`timeout` from each request) or the target is abandoned. httpcore's sync
backend is wrapped once, on import; a thread inside `http_through(ledger)` opens its HTTP
connections that way (not counted: they are not TLS scan connections).

A module of its own so that httpx and httpcore load only with the HTTP probe (in its own thread,
while the TLS handshakes wait on the network), never before the first handshake.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from typing import Any

from httpcore._backends.base import NetworkStream
from httpcore._backends.sync import SyncBackend, SyncStream

from auditor.scan.ledger import WATCHDOG, ConnectionCounter


class _Watch:
    """One HTTP connection under the watchdog: a duplicate of its descriptor (shutdown acts on the
    socket, so it ends the connection whatever object, SSLSocket included, now reads it)."""

    def __init__(self, sock: socket.socket, seconds: float, ledger: ConnectionCounter) -> None:
        self.twin = socket.socket(fileno=os.dup(sock.fileno()))
        self.seconds, self.ledger = seconds, ledger
        self.deadline = time.monotonic() + seconds
        self.done = False

    def rearm(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def expire(self) -> None:
        self.cut()

    def cut(self) -> None:
        if not self.done:
            with contextlib.suppress(OSError):
                self.twin.shutdown(socket.SHUT_RDWR)
        self.release()

    def release(self) -> None:
        if not self.done:
            self.done = True
            self.twin.close()
            self.ledger.unwatch_http(self)
            WATCHDOG.forget(self)


class _WatchedStream(SyncStream):
    """httpcore's stream with a wall-clock deadline per exchange: each request re-arms it."""

    def __init__(self, sock: socket.socket, watch: _Watch) -> None:
        super().__init__(sock)
        self._watch = watch

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self._watch.rearm()
        super().write(buffer, timeout)

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> NetworkStream:
        stream = super().start_tls(ssl_context, server_hostname, timeout)
        if isinstance(stream, SyncStream):
            return _WatchedStream(stream._sock, self._watch)  # noqa: SLF001  (httpcore keeps its socket private)
        return stream

    def close(self) -> None:
        self._watch.release()
        super().close()


_http = threading.local()


class http_through:  # noqa: N801 - used like a function: `with http_through(ledger):`
    """This thread's HTTP connections (httpx) get a deadline per exchange and are cut when `ledger`
    is abandoned."""

    def __init__(self, ledger: ConnectionCounter) -> None:
        self.ledger = ledger

    def __enter__(self) -> None:
        _http.ledger = self.ledger

    def __exit__(self, *exc_info: object) -> None:
        _http.ledger = None


def _install() -> None:
    original_tcp = SyncBackend.connect_tcp
    if getattr(original_tcp, "_auditor_watched", False):
        return

    def connect_tcp(
        self: SyncBackend, host: str, port: int, timeout: float | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        stream = original_tcp(self, host, port, timeout, *args, **kwargs)
        ledger: ConnectionCounter | None = getattr(_http, "ledger", None)
        if ledger is None or not isinstance(stream, SyncStream):
            return stream
        sock = stream._sock  # noqa: SLF001  (httpcore keeps its socket private)
        watch = _Watch(sock, ledger.timeout, ledger)
        WATCHDOG.watch(watch)
        if ledger.watch_http(watch):
            watch.cut()
        return _WatchedStream(sock, watch)

    connect_tcp._auditor_watched = True  # type: ignore[attr-defined]  # noqa: SLF001
    SyncBackend.connect_tcp = connect_tcp  # type: ignore[method-assign]


_install()
