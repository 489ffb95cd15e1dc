"""Mail servers built to misbehave, on loopback: one that trickles its greeting a line at a time
(never idle long enough for an idle timeout), one that streams 8 KB reply lines without end, one
whose replies are merely too big, and a real TLS mail server behind a proxy that dribbles every
byte. Each mail attempt must end by its deadline (`[email] timeout`, wall clock) and a reply must
cost bounded memory."""

from __future__ import annotations

import gc
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from auditor.config import Email
from auditor.errors import MailError
from auditor.reports.email import send_report
from tests.conftest import ROOT, CliRun, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer
from tests.hostile.rawservers import RawServer
from tests.test_email import Inbox, report  # noqa: F401  (the report fixture)


@dataclass
class Trickle:
    """An SMTP server that sends `220-` continuation lines every `interval` seconds for `lines`
    lines, then a final `220` and silence. Records, per connection, how long the client stayed."""

    interval: float = 0.5
    lines: int = 120
    held: list[float] = field(default_factory=list)
    connections: int = 0

    def wait_for(self, connections: int, timeout: float) -> bool:
        """Whether `connections` clients have connected (mail attempts begun) within `timeout` s."""
        deadline = time.monotonic() + timeout
        while self.connections < connections and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.connections >= connections

    def __call__(self, conn: socket.socket) -> None:
        self.connections += 1
        started = time.monotonic()
        try:
            for _ in range(self.lines):
                conn.sendall(b"220-mail.example.test hello, please wait\r\n")
                readable, _, _ = select.select([conn], [], [], self.interval)
                if readable and not conn.recv(4096):
                    return  # the client hung up
            conn.sendall(b"220 mail.example.test ready\r\n")
            while conn.recv(4096):
                pass
        except OSError:
            pass
        finally:
            self.held.append(time.monotonic() - started)


def stream_8k_lines(conn: socket.socket) -> None:
    """A greeting that never ends: `220-` lines of 8000 bytes (under smtplib's 8192-byte line
    limit), as fast as the client reads them."""
    line = b"220-" + b"a" * 8000 + b"\r\n"
    try:
        while True:
            conn.sendall(line * 16)
    except OSError:
        pass


def finite_reply(lines: int, width: int) -> RawServer:
    """A server whose greeting is `lines` continuation lines of `width` bytes, then a normal
    session: each reply complete, just too big."""

    def handler(conn: socket.socket) -> None:
        conn.sendall(b"".join(b"220-" + b"a" * width + b"\r\n" for _ in range(lines)) + b"220 ready\r\n")
        conn.settimeout(5)
        while data := conn.recv(4096):
            if data.upper().startswith(b"QUIT"):
                conn.sendall(b"221 bye\r\n")
                return
            conn.sendall(b"354 go on\r\n" if data.upper().startswith(b"DATA") else b"250 ok\r\n")

    return RawServer(handler)


def _settings(port: int, **kw) -> Email:  # noqa: ANN003
    base = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": "auditor@example.test",
        "to": ["ops@example.test"],
        "timeout": 2,
        "retries": 0,
        "backoff": 0,
    }
    return Email.model_validate({**base, **kw})


def _mail_config(tmp_path: Path, port: int, *, timeout: float, retries: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[email]
host = "127.0.0.1"
port = {port}
security = "none"
from = "auditor@example.test"
to = ["ops@example.test"]
timeout = {timeout}
retries = {retries}
backoff = 0
""")
    return path


def _audit_and_mail(
    tmp_path: Path, pki: TestPKI, smtp_port: int, *, timeout: float = 2, retries: int = 1
) -> CliRun:
    with PythonTLSServer(pki.issue("mailed-hostile")) as site:
        return run_cli(
            "audit",
            "--config",
            str(_mail_config(tmp_path, smtp_port, timeout=timeout, retries=retries)),
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--quiet",
            "--email",
            site.url,
        )


def test_trickled_greeting_ends_at_the_deadline(pki, tmp_path) -> None:
    """One `220-` line every half second never lets an idle timeout expire (before: each attempt
    lasted as long as the server kept trickling). With `timeout = 2` each attempt ends at 2 s."""
    trickle = Trickle()
    with RawServer(trickle) as server:
        run = _audit_and_mail(tmp_path, pki, server.port, timeout=2, retries=1)
        time.sleep(0.6)  # the server notices the last hang-up
    assert len(trickle.held) == 2 and all(held < 3.0 for held in trickle.held), trickle.held
    assert run.code == 4, run.stderr
    assert f"mail to 127.0.0.1:{server.port} failed after 2 attempts: timed out after 2 s" in run.stderr


def _run_with_memory_limit(args: list[str], limit: int, timeout: float) -> tuple[CliRun, int]:
    """The real CLI in a process whose address space is capped at `limit` bytes; its exit, output
    and peak resident memory (bytes). Spawned through a small launcher (tests/hostile/peak_rss.py):
    a process exec'd straight from this pytest process would report pytest's own peak (300 MiB
    late in a full suite) as its ru_maxrss."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r") as result,
    ):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.hostile.peak_rss",
                str(limit),
                str(timeout),
                result.name,
                sys.executable,
                "-m",
                "auditor",
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout + 30,
            check=True,
        )
        code, peak = (int(field) for field in result.read().split())
        out.seek(0)
        err.seek(0)
        return CliRun(code, out.read(), err.read()), peak


def test_endless_8k_reply_lines_cost_bounded_memory(pki, tmp_path) -> None:
    """smtplib keeps every line of a reply: a greeting of endless 8 KB lines took the mailer past
    4 GB (here: MemoryError against the address-space cap). Now a reply is capped, the failure is
    one line, not retried (a server that breaks the protocol is not mended by retrying), and the
    process stays small."""
    config = _mail_config(tmp_path, 0, timeout=10, retries=2)
    limit = 1536 * 2**20  # the audit peaks at about 80 MiB resident; the unbounded reply needed 4 GB
    with RawServer(stream_8k_lines) as server, PythonTLSServer(pki.issue("mailed-flood")) as site:
        config.write_text(config.read_text().replace("port = 0", f"port = {server.port}"))
        run, peak = _run_with_memory_limit(
            [
                "audit",
                "--config",
                str(config),
                "--ip",
                "127.0.0.1",
                "--ca-bundle",
                str(pki.root_path),
                "--http-port",
                "9",
                "--quiet",
                "--email",
                site.url,
            ],
            limit,
            timeout=90,
        )
    assert run.code == 4, run.stderr
    assert (
        f"mail to 127.0.0.1:{server.port} failed after 1 attempt: the server's reply is too long "
        "(a line over 2048 bytes)"
    ) in run.stderr
    assert "MemoryError" not in run.stderr and "Traceback" not in run.stderr
    assert peak < 200 * 2**20, f"peak resident memory {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    "lines, width, why",
    [
        (150, 60, "over 100 lines or 64 KiB"),  # many short lines
        (40, 2000, "over 100 lines or 64 KiB"),  # 80 KB in long but legal lines
        (1, 5000, "a line over 2048 bytes"),
    ],
)
def test_oversized_replies_are_refused(report, lines: int, width: int, why: str) -> None:  # noqa: F811
    """Complete replies, merely too big (before: accepted, whatever their size)."""
    with finite_reply(lines, width) as server, pytest.raises(MailError) as info:
        send_report(report, _settings(server.port, retries=2), html="h", text="t", json_text="{}")
    assert str(info.value) == (
        f"mail to 127.0.0.1:{server.port} failed after 1 attempt: the server's reply is too long ({why})"
    )


def test_a_large_but_legal_reply_still_works(report) -> None:  # noqa: F811
    """The caps leave room for verbose servers: a 30-line greeting of 500-byte lines is fine."""
    with finite_reply(30, 500) as server:
        send_report(report, _settings(server.port), html="h", text="t", json_text="{}")


@pytest.fixture()
def implicit_tls_smtp(pki: TestPKI) -> Iterator[tuple[Inbox, int]]:
    issued = pki.issue("smtps", hosts=("127.0.0.1",))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # so that a proxy can tell handshake from data
    context.load_cert_chain(issued.chain_path, issued.key_path)
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    yield inbox, port
    controller.stop()
    # aiosmtpd's implicit-TLS server leaves server-side asyncio transports unclosed (its own start-up
    # check connection among them): collect them here, where their ResourceWarning is known to be theirs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def dribble_application_data(upstream: int, seconds_per_byte: float):
    """A proxy to a TLS 1.2 `upstream` that forwards the handshake at full speed and every record
    of application data one byte every `seconds_per_byte`: each reply arrives well within an idle
    timeout, the session takes several seconds."""

    def handler(conn: socket.socket) -> None:
        with socket.create_connection(("127.0.0.1", upstream)) as up:
            threading.Thread(target=_copy, args=(conn, up), daemon=True).start()
            while header := _read_exactly(up, 5):
                record = header + _read_exactly(up, int.from_bytes(header[3:5], "big"))
                if header[0] != 23:  # handshake, alert, change cipher spec
                    conn.sendall(record)
                    continue
                for byte in record:
                    time.sleep(seconds_per_byte)
                    conn.sendall(bytes([byte]))

    return handler


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := sock.recv(size - len(data))):
        data += chunk
    return data


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass


def test_tls_dribbled_byte_by_byte_ends_at_the_deadline(implicit_tls_smtp, report, pki) -> None:  # noqa: F811
    """A real implicit-TLS mail server behind a proxy that dribbles its TLS records of application
    data one byte every 6 ms: every reply arrives within about a second, the session takes more
    than three. The attempt ends at its 2 s deadline (before: the mail went out after as long as
    the server cared to take; this is below smtplib, inside the TLS layer)."""
    inbox, port = implicit_tls_smtp
    with RawServer(dribble_application_data(port, seconds_per_byte=0.006)) as slow:
        settings = _settings(slow.port, security="tls", ca_bundle=pki.root_path, timeout=2, retries=1)
        started = time.monotonic()
        with pytest.raises(MailError) as info:
            send_report(report, settings, html="h", text="t", json_text="{}")
        elapsed = time.monotonic() - started
    assert elapsed < 2 * 2 + 1, elapsed
    assert str(info.value) == f"mail to 127.0.0.1:{slow.port} failed after 2 attempts: timed out after 2 s"
    assert not inbox.messages


def test_the_same_tls_server_unhindered_receives_the_mail(implicit_tls_smtp, report, pki) -> None:  # noqa: F811
    """The control for the test above: the deadline is what stops it, not the TLS setup."""
    inbox, port = implicit_tls_smtp
    send_report(
        report, _settings(port, security="tls", ca_bundle=pki.root_path), html="h", text="t", json_text="{}"
    )
    assert len(inbox.messages) == 1


def test_stop_ends_the_retries(report) -> None:  # noqa: F811
    """A stop asked for (the scheduler's SIGTERM) while an attempt runs: that attempt keeps its
    deadline, no further attempt is made, and the backoff wait is not slept."""
    trickle = Trickle()
    stop = threading.Event()
    with RawServer(trickle) as server:
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(MailError) as info:
            send_report(
                report,
                _settings(server.port, timeout=1.5, retries=5, backoff=30),
                html="h",
                text="t",
                json_text="{}",
                stop=stop,
            )
        elapsed = time.monotonic() - started
    assert str(info.value) == (
        f"mail to 127.0.0.1:{server.port} failed after 1 attempt: timed out after 1.5 s "
        "(not retried: stopping)"
    )
    assert elapsed < 2.5
