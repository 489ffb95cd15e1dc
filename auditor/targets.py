"""Turning what a user typed into a target to connect to: host (IDNA), port, SNI name; and reading
a list of them, one URL per line (`audit --targets-from`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from auditor.errors import ConfigError, TargetError

__all__ = [
    "ListedTarget",
    "ParsedURL",
    "TargetError",
    "is_ip",
    "parse_target_list",
    "parse_url",
    "read_target_list",
]


@dataclass(frozen=True)
class ParsedURL:
    url: str  # normalised: https://host[:port]/
    host: str  # ASCII (punycode) host name or IP literal without brackets
    port: int


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_url(text: str) -> ParsedURL:
    """Validate an https URL; raise TargetError with a one-line reason otherwise."""
    raw = text.strip()
    if not raw:
        raise TargetError("empty URL")
    if any(c.isspace() for c in raw):
        raise TargetError(f"{text!r}: URL contains spaces")
    if "://" not in raw:
        raise TargetError(f"{text!r}: missing scheme; write https://{raw}")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"{text!r}: invalid URL ({exc})") from None
    if parts.scheme.lower() != "https":
        raise TargetError(f"{text!r}: unsupported scheme {parts.scheme!r}; only https:// can be audited")
    host = parts.hostname
    if not host:
        raise TargetError(f"{text!r}: no host name")
    if not is_ip(host):
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise TargetError(f"{text!r}: host {host!r} is not a valid domain name") from None
    port = port or 443
    if port == 0:
        raise TargetError(f"{text!r}: port 0 is not a valid port")
    shown = f"[{host}]" if ":" in host else host
    url = f"https://{shown}/" if port == 443 else f"https://{shown}:{port}/"
    return ParsedURL(url=url, host=host, port=port)


@dataclass(frozen=True)
class ListedTarget:
    """One target line of a `--targets-from` list, kept as written: a bad URL is that target's
    error (exit 3), like a bad URL argument, and `where` lets its error say which line it was."""

    url: str
    line: int
    source: str  # the file as the user named it, or "stdin"
    valid: bool

    @property
    def where(self) -> str:
        return f"{self.source} line {self.line}"


def parse_target_list(text: str, source: str) -> list[ListedTarget]:
    """One URL per line, as testssl.sh --file and sslyze --targets_in read them: blank lines and
    lines starting with '#' are skipped, and so is a '#' comment after the URL."""
    listed = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        url = words[0] if len(words) == 1 or words[1].startswith("#") else line.strip()
        try:
            parse_url(url)
            valid = True
        except TargetError:
            valid = False
        listed.append(ListedTarget(url=url, line=number, source=source, valid=valid))
    return listed


def read_target_list(path: str, stdin: TextIO) -> list[ListedTarget]:
    """The targets of a list file ('-' = standard input); ConfigError when it cannot be read."""
    source = "stdin" if path == "-" else path
    try:
        text = stdin.read() if path == "-" else Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"--targets-from: no such file {path!r}") from None
    except IsADirectoryError:
        raise ConfigError(f"--targets-from: {path!r} is a directory, not a list of URLs") from None
    except OSError as exc:
        raise ConfigError(f"--targets-from: cannot read {path!r} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--targets-from: {source} is not UTF-8 text") from None
    return parse_target_list(text, source)
