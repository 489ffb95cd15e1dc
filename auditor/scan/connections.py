"""sslyze's connections through the target's ledger (auditor.scan.ledger).

Connections sslyze opens go through `tls_connection._open_socket`, wrapped once here: a thread
inside `counting(counter, phase)` opens them through its ledger; others (sslyze's own Scanner, for
--thorough) still get a deadline. The ledger itself is auditor.scan.ledger, which loads without sslyze.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sslyze.connection_helpers import tls_connection as _tls_connection

from auditor.scan.ledger import ConnectionCounter, DeadlineSocket


class Block:
    """The connections one thread opens inside `counting(...)`: their result is untrusted when any
    of them hit its deadline or was cut."""

    def __init__(
        self,
        counter: ConnectionCounter,
        phase: str,
        on_open: Callable[[int], None] | None = None,
        first_flight: bool = False,
    ) -> None:
        self.counter, self.phase = counter, phase
        self.sockets: list[DeadlineSocket] = []
        self.on_open = on_open  # called with the number of connections opened so far
        self.first_flight = first_flight  # sockets stop after the first flight (DeadlineSocket.watch_flight)

    @property
    def untrusted(self) -> str | None:
        return self.counter.untrusted(self.sockets)


_current = threading.local()


class counting:  # noqa: N801 - used like a function: `with counting(counter, "suites") as block:`
    """Open this thread's connections inside the block through `counter`, counted under `phase`.

    A plain class, not @contextmanager: sslyze's exceptions are frozen dataclasses, and a
    generator-based context manager fails re-raising them (it assigns __traceback__)."""

    def __init__(
        self,
        counter: ConnectionCounter,
        phase: str,
        *,
        on_open: Callable[[int], None] | None = None,
        first_flight: bool = False,
    ) -> None:
        self.block = Block(counter, phase, on_open, first_flight)
        self.previous: Block | None = None

    def __enter__(self) -> Block:
        self.previous = getattr(_current, "value", None)
        _current.value = self.block
        return self.block

    def __exit__(self, *exc_info: object) -> None:
        _current.value = self.previous


def _install() -> None:
    original = _tls_connection._open_socket  # noqa: SLF001  (sslyze's one place that opens sockets)
    if getattr(original, "_auditor_counted", False):
        return

    def _open_socket(server_location: Any, network_timeout: int) -> socket.socket:
        block: Block | None = getattr(_current, "value", None)
        if block is None or server_location.http_proxy_settings is not None:
            started = time.monotonic()
            return DeadlineSocket.adopt(original(server_location, network_timeout), started + network_timeout)
        sock = block.counter.open(server_location.ip_address, server_location.port, block.phase)
        sock.watch_flight = block.first_flight
        block.sockets.append(sock)
        if block.on_open is not None:
            block.on_open(len(block.sockets))
        return sock

    _open_socket._auditor_counted = True  # type: ignore[attr-defined]  # noqa: SLF001
    _tls_connection._open_socket = _open_socket  # noqa: SLF001


_install()
