"""Who may see the dashboard, and what a page may do once shown.

Every response carries a strict Content-Security-Policy: no script at all, styles from the
dashboard's own stylesheet only, nothing framed, forms posted back here only; the stored HTML
report (its styles inlined for mail clients) gets the hashes of exactly its own styles instead.

The dashboard binds loopback unless access control is configured ([serve] token_env, or
username with password_env): then every route, /metrics too, asks for it. Secrets are compared
in constant time, as digests of equal length.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser

from auditor.config import Serve
from auditor.errors import ConfigError

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
COOKIE = "auditor_dashboard"


class _Styles(HTMLParser):
    """The style attributes and <style> blocks of a document, as a browser hashes them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: set[str] = set()
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.update(value for name, value in attrs if name == "style" and value is not None)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found.add(data)


def report_csp(document: str) -> str:
    """The CSP for one rendered HTML report: the policy above, with style-src allowing the hash
    of each of its inline styles and nothing else ('unsafe-hashes': style attributes too)."""
    parser = _Styles()
    parser.feed(document)
    parser.close()
    hashes = sorted(
        "'sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() + "'"
        for style in parser.found
    )
    styles = " ".join(["'unsafe-hashes'", *hashes]) if hashes else "'none'"
    return CSP.replace("style-src 'self'", f"style-src {styles}")


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def same(given: str, expected: str) -> bool:
    """Constant-time equality (of the digests: equal lengths whatever was sent)."""
    return hmac.compare_digest(_digest(given), _digest(expected))


@dataclass(frozen=True)
class Access:
    """The configured credentials (None: not asked). `cookie` is what the ?token= flow sets: a
    keyed digest of the token, so the token itself is not kept in the browser."""

    token: str | None = None
    username: str | None = None
    password: str | None = None

    @property
    def required(self) -> bool:
        return self.token is not None or self.username is not None

    @property
    def cookie(self) -> str | None:
        if self.token is None:
            return None
        return hmac.new(self.token.encode(), b"auditor-dashboard-session", hashlib.sha256).hexdigest()

    def allows(self, authorization: str | None, cookie: str | None, query_token: str | None) -> bool:
        if not self.required:
            return True
        scheme, _, value = (authorization or "").partition(" ")
        value = value.strip()
        if self.token is not None:
            if scheme.lower() == "bearer" and same(value, self.token):
                return True
            if query_token is not None and same(query_token, self.token):
                return True
            if cookie is not None and self.cookie is not None and same(cookie, self.cookie):
                return True
        if self.username is not None and self.password is not None and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            # both compared, always: which one was wrong is not told by the time taken
            return same(user, self.username) & same(password, self.password)
        return False

    def challenge(self) -> str:
        """The WWW-Authenticate header of a refusal."""
        return 'Basic realm="auditor", charset="UTF-8"' if self.username else 'Bearer realm="auditor"'


def access_from(settings: Serve, environ: Mapping[str, str] | None = None) -> Access:
    """The credentials [serve] names, read from the environment; ConfigError when a named
    variable is unset or empty (a dashboard meant to be protected never starts open)."""
    env = os.environ if environ is None else environ

    def secret(variable: str | None, key: str) -> str | None:
        if variable is None:
            return None
        value = env.get(variable, "")
        if not value:
            raise ConfigError(f"[serve] {key} = {variable!r}: the environment variable {variable} is not set")
        return value

    return Access(
        token=secret(settings.token_env, "token_env"),
        username=settings.username,
        password=secret(settings.password_env, "password_env"),
    )


def parse_bind(bind: str) -> tuple[str, int]:
    """ "127.0.0.1:8080", "[::1]:8080", "localhost:8080" -> (host, port); ConfigError otherwise."""
    host, sep, port = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--bind {bind!r}: give ADDRESS:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def check_bind(host: str, access: Access) -> None:
    """Refuse (ConfigError, exit 2) to expose the dashboard beyond this machine without access control."""
    if not is_loopback(host) and not access.required:
        raise ConfigError(
            f"refusing to serve on {host} (not loopback) without access control: set [serve] token_env, "
            "or username and password_env"
        )
