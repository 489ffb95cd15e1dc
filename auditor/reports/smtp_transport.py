"""An SMTP client that a broken or hostile mail server can neither hold nor flood.

smtplib's timeout is an idle timeout (a server sending one `220-` line a second keeps it forever)
and it keeps every line of a reply (a server streaming 8 KB lines exhausts memory). This subclass
keeps smtplib's protocol and replaces the three places where it touches the network (connecting,
`send`, `getreply`): before each blocking step the socket's timeout is set to what is left of the
attempt's wall-clock deadline (the ssl module applies such a timeout to a whole read, write or
handshake), and a reply is capped in line length, lines and bytes.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

# RFC 5321 4.5.3.1.5 allows 512 octets a reply line; an EHLO reply lists a dozen extensions. The caps
# leave ample room for verbose servers while bounding what one reply can cost.
MAX_LINE_BYTES = 2048
MAX_REPLY_LINES = 100
MAX_REPLY_BYTES = 64 * 1024
_CHUNK = 16 * 1024  # one TLS record: SSLSocket.sendall would restart its timeout for every record


class ReplyTooLong(smtplib.SMTPException):
    """The server's reply breaks the caps: a broken or hostile server, which retrying does not mend."""


class Deadline:
    """The wall-clock end of one mail attempt."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; TimeoutError once the deadline has passed."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out after {self.seconds:g} s")
        return left

    def timeout(self) -> float:
        """Seconds left, at least a millisecond: for a timeout set where raising would be wrong."""
        return max(self.end - time.monotonic(), 1e-3)


def connect(host: str, port: int, deadline: Deadline) -> socket.socket:
    """A TCP connection to the first address that answers, all addresses within the deadline
    (socket.create_connection gives each address the whole timeout)."""
    error: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(deadline.left())
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            if isinstance(exc, TimeoutError):
                raise
            error = exc
    raise error or OSError(f"{host} has no address")


class BoundedSMTP(smtplib.SMTP):
    """smtplib.SMTP (or SMTP_SSL with `implicit_tls`) whose every exchange ends by `deadline` and
    whose replies are capped. Nothing is sent to the network before connect()."""

    def __init__(self, deadline: Deadline, *, implicit_tls: ssl.SSLContext | None = None) -> None:
        self.deadline = deadline
        self.implicit_tls = implicit_tls
        self._pending = b""  # received bytes after the last complete reply line
        super().__init__(timeout=deadline.seconds)

    def connect(
        self,
        host: str = "localhost",
        port: int = 0,
        source_address: tuple[Any, ...] | str | Buffer | None = None,
    ) -> tuple[int, bytes]:
        self._host = host  # smtplib sets it only in the constructor; STARTTLS checks the name against it
        return super().connect(host, port, source_address)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = connect(host, port, self.deadline)
        if self.implicit_tls is None:
            return sock
        sock.settimeout(self.deadline.left())
        return self.implicit_tls.wrap_socket(sock, server_hostname=host)  # closes sock when it fails

    def send(self, s: Buffer | str) -> None:
        if not self.sock:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        data = memoryview(s.encode(self.command_encoding) if isinstance(s, str) else s).cast("B")
        try:
            for start in range(0, len(data), _CHUNK):
                self.sock.settimeout(self.deadline.left())
                self.sock.sendall(data[start : start + _CHUNK])
        except OSError as exc:
            self.close()
            if isinstance(exc, TimeoutError):
                raise
            raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None

    def getreply(self) -> tuple[int, bytes]:
        """One reply, as smtplib's: (code, text lines joined by newlines); -1 for a malformed code."""
        lines: list[bytes] = []
        size = 0
        errcode = -1
        while True:
            line = self._read_line()
            size += len(line)
            if len(lines) >= MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                self.close()
                raise ReplyTooLong(f"over {MAX_REPLY_LINES} lines or {MAX_REPLY_BYTES // 1024} KiB")
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                errcode = int(line[:3])
            except ValueError:
                errcode = -1
                break
            if line[3:4] != b"-":
                break
        # what follows a reply (a TLS handshake after STARTTLS) starts with the time left now; no
        # raising here: a complete reply (250 after DATA: the message is accepted) is never a failure
        if self.sock is not None:
            self.sock.settimeout(self.deadline.timeout())
        return errcode, b"\n".join(lines)

    def _read_line(self) -> bytes:
        if not self.sock:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        while (end := self._pending.find(b"\n")) < 0:
            if len(self._pending) >= MAX_LINE_BYTES:
                self.close()
                raise ReplyTooLong(f"a line over {MAX_LINE_BYTES} bytes")
            try:
                self.sock.settimeout(self.deadline.left())
                chunk = self.sock.recv(4096)
            except OSError as exc:
                self.close()
                if isinstance(exc, TimeoutError):
                    raise
                raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None
            if not chunk:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            self._pending += chunk
        line, self._pending = self._pending[: end + 1], self._pending[end + 1 :]
        if len(line) > MAX_LINE_BYTES:
            self.close()
            raise ReplyTooLong(f"a line over {MAX_LINE_BYTES} bytes")
        return line

    # narrower than smtplib's overloads on purpose: this transport is only ever given a context
    def starttls(self, *, context: ssl.SSLContext) -> tuple[int, bytes]:  # type: ignore[override]
        reply = super().starttls(context=context)
        self._pending = b""  # plaintext sent after the 220 must not be read as if it came over TLS
        return reply

    def close(self) -> None:
        self._pending = b""
        super().close()
