"""One way to run a server program for a test: spawn it in its own session, wait until it listens,
and stop it with everything it forked, even when the test forgot to (atexit).

nginx, `openssl s_server`, OpenSSL 1.0.1e, Node and the tlslite child all go through ProcessServer.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

# Child processes still running; killed at interpreter exit if a caller forgot stop().
_RUNNING: set[subprocess.Popen[bytes]] = set()


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None, host: str = "127.0.0.1"
) -> None:
    """Poll until `port` accepts a TCP connection; fail fast if `proc` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


def terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a child started in its own session, and everything it forked (nginx workers)."""
    if proc is None:
        return
    _RUNNING.discard(proc)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    # workers can outlive a master that died early: sweep the whole group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=5)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_RUNNING):
        terminate(proc)


def read_log(log: IO[bytes] | Path | None) -> str:
    """What a server wrote to its log file or stderr file so far ("" if none)."""
    if log is None:
        return ""
    if isinstance(log, Path):
        return log.read_text(errors="replace") if log.exists() else ""
    log.seek(0)
    return log.read().decode(errors="replace")


class Managed:
    """A server that is also a context manager: `with Server(...) as s:` starts and stops it."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class ProcessServer(Managed):
    """A server program run as a child: `start()` spawns it and waits for it, `stop()` ends it.

    Subclasses say what to run (`command()`) and how to know it is ready (`wait_ready()`, by
    default: the port accepts a connection); they add clean-up in `cleanup()`. stderr goes to a
    file, not a pipe, so nobody has to drain it while the server runs, and its text ends the
    error when the server does not come up.
    """

    label = "server"  # in "<label> did not start: ..."
    ready_timeout = 10.0
    port: int
    stdin: int = subprocess.DEVNULL
    stdout: int = subprocess.DEVNULL

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def command(self) -> Sequence[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def environment(self) -> Mapping[str, str] | None:
        """The child's environment (None: this process's)."""
        return None

    def prepare(self) -> None:
        """Write what the child reads (config, page) before it starts."""

    def wait_ready(self) -> None:
        assert self.proc is not None
        wait_for_port(self.port, timeout=self.ready_timeout, proc=self.proc)

    def log_text(self) -> str:
        """What to show when the server does not come up."""
        return read_log(self._stderr)

    def start(self) -> None:
        if self.proc is not None:
            return
        self.prepare()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  # closed in stop()
        self.proc = subprocess.Popen(
            list(self.command()),
            stdin=self.stdin,
            stdout=self.stdout,
            stderr=self._stderr,
            env=self.environment(),
            start_new_session=True,
        )
        _RUNNING.add(self.proc)
        try:
            self.wait_ready()
        except RuntimeError as exc:
            log = self.log_text()
            self.stop()
            raise RuntimeError(f"{self.label} did not start: {exc}\n{log}") from None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        terminate(proc)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.cleanup()

    def cleanup(self) -> None:
        """Remove what prepare() wrote."""
