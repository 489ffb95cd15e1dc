"""Counting the connections an audit opens to one server, per phase (the style guide's politeness
measure: "our engine should be able to say how many connections an audit opened, per phase").

Every connection sslyze and the enumerator open goes through one sslyze function,
`tls_connection._open_socket`; it is wrapped once so that a thread inside `counting(counter,
phase)` adds one to `counter` for each TCP connection it attempts. Threads outside such a block
(sslyze's own Scanner, used by --thorough) are not counted. The handshake simulation opens its own
sockets and counts them itself with `counter.add("simulation")`.
"""

from __future__ import annotations

import threading
from typing import Any

from sslyze.connection_helpers import tls_connection as _tls_connection


class ConnectionCounter:
    """TCP connections opened to one server, per phase; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_phase: dict[str, int] = {}

    def add(self, phase: str, n: int = 1) -> None:
        with self._lock:
            self.by_phase[phase] = self.by_phase.get(phase, 0) + n

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_phase.values())


_current = threading.local()


class counting:  # noqa: N801 - used like a function: `with counting(counter, "suites"):`
    """Count the connections this thread opens inside the block under `phase`.

    A plain class, not @contextmanager: sslyze's exceptions are frozen dataclasses, and a
    generator-based context manager fails re-raising them (it assigns __traceback__)."""

    def __init__(self, counter: ConnectionCounter, phase: str) -> None:
        self.value = (counter, phase)
        self.previous: tuple[ConnectionCounter, str] | None = None

    def __enter__(self) -> None:
        self.previous = getattr(_current, "value", None)
        _current.value = self.value

    def __exit__(self, *exc_info: object) -> None:
        _current.value = self.previous


def _install() -> None:
    original = _tls_connection._open_socket
    if getattr(original, "_auditor_counted", False):
        return

    def _open_socket(*args: Any, **kwargs: Any) -> Any:
        current = getattr(_current, "value", None)
        if current is not None:
            current[0].add(current[1])
        return original(*args, **kwargs)

    _open_socket._auditor_counted = True  # type: ignore[attr-defined]
    _tls_connection._open_socket = _open_socket


_install()
