"""Turning what a user typed into a target to connect to: host (IDNA), port, SNI name."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from auditor.errors import TargetError

__all__ = ["ParsedURL", "TargetError", "parse_url", "is_ip"]


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
