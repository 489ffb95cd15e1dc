"""Strict-Transport-Security: the RFC 6797 section 6.1 grammar, and which response's header a
browser obeys. Shared by the 11.5-hsts check and the grade, so both read the same verdict.

A header that breaks the grammar (a directive twice, a broken quote, a value where none is
allowed, a missing or non-numeric max-age) is ignored by browsers: it counts as no header.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import HttpEvidence, HttpResponse

# RFC 7230 section 3.2.6 tchar (RFC 6797 refers to RFC 2616's token, the same set).
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LWS = " \t"


@dataclass(frozen=True)
class Hsts:
    """One STS header value as a browser reads it. `error` set = invalid, the rest meaningless."""

    max_age: int | None = None
    include_subdomains: bool = False
    preload: bool = False
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


class _Invalid(ValueError):
    pass


class _Scanner:
    """Reads the RFC 6797 grammar one character at a time (implied LWS between words)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def skip_lws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _LWS:
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TCHAR:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted_string(self) -> str:
        """RFC 7230 quoted-string, the opening quote under the cursor; returns the unescaped content."""
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\":
                if self.pos >= len(self.text):
                    break
                char = self.text[self.pos]
                self.pos += 1
            elif char != "\t" and (ord(char) < 0x20 or ord(char) == 0x7F):
                raise _Invalid(f"control character {ord(char):#04x} inside a quoted value")
            out.append(char)
        raise _Invalid("unclosed quote")


def _directives(value: str) -> list[tuple[str, str | None]]:
    """[(name lower-cased, value or None)], in order; raises _Invalid on any syntax error."""
    scanner = _Scanner(value)
    found: list[tuple[str, str | None]] = []
    while True:
        scanner.skip_lws()
        if scanner.peek() not in ("", ";"):  # an empty directive (";;") is allowed
            name = scanner.token()
            if not name:
                raise _Invalid(f"unexpected {scanner.peek()!r} where a directive name belongs")
            scanner.skip_lws()
            directive_value: str | None = None
            if scanner.peek() == "=":
                scanner.pos += 1
                scanner.skip_lws()
                if scanner.peek() == '"':
                    directive_value = scanner.quoted_string()
                else:
                    directive_value = scanner.token()
                    if not directive_value:
                        raise _Invalid(f"directive {name} has '=' but no value")
                scanner.skip_lws()
            found.append((name.lower(), directive_value))
        if scanner.peek() == "":
            return found
        if scanner.peek() != ";":
            raise _Invalid(
                f"unexpected {scanner.peek()!r} after a directive (directives are separated by ';')"
            )
        scanner.pos += 1


def parse_sts(value: str) -> Hsts:
    """One Strict-Transport-Security value, judged by RFC 6797 section 6.1 as a browser does."""
    try:
        directives = _directives(value)
    except _Invalid as exc:
        return Hsts(error=str(exc))
    names = [name for name, _ in directives]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        return Hsts(error=f"directive given more than once: {', '.join(twice)}")
    given = dict(directives)
    if "max-age" not in given:
        return Hsts(error="no max-age directive (it is required)")
    max_age = given["max-age"]
    if not max_age or not max_age.isascii() or not max_age.isdigit():
        return Hsts(error=f"max-age must be digits only, not {max_age!r}")
    if "includesubdomains" in given and given["includesubdomains"] is not None:
        return Hsts(error="includeSubDomains takes no value")
    # Unknown directives (preload among them: it is not in RFC 6797) are ignored when well-formed.
    return Hsts(
        max_age=int(max_age), include_subdomains="includesubdomains" in given, preload="preload" in given
    )


def parse_hsts(value: str) -> tuple[int | None, bool, bool]:
    """(max-age, includeSubDomains, preload); max-age None when the header is invalid."""
    parsed = parse_sts(value)
    return parsed.max_age, parsed.include_subdomains, parsed.preload


@dataclass(frozen=True)
class HstsVerdict:
    """What a browser gets: the first HTTPS response's header (the one that counts), and which
    later same-host responses carry a valid one."""

    first: HttpResponse | None  # the first HTTPS response that was fetched without error
    header: str | None  # its first Strict-Transport-Security value (RFC 6797 8.1: only the first counts)
    parsed: Hsts | None  # None when there is no header
    header_count: int = 0
    later_valid: tuple[HttpResponse, ...] = ()  # later same-host HTTPS responses with a valid header

    @property
    def max_age(self) -> int | None:
        """The max-age browsers apply from the first response; None when missing or invalid."""
        return self.parsed.max_age if self.parsed is not None and self.parsed.valid else None


def hsts_verdict(http: HttpEvidence) -> HstsVerdict:
    """The HSTS a browser takes from the audited site's first HTTPS response."""
    fetched = [r for r in http.https if r.error is None]
    if not fetched:
        return HstsVerdict(first=None, header=None, parsed=None)
    first, later = fetched[0], fetched[1:]
    values = first.header("strict-transport-security")
    later_valid = tuple(
        r
        for r in later
        if r.header("strict-transport-security") and parse_sts(r.header("strict-transport-security")[0]).valid
    )
    if not values:
        return HstsVerdict(first=first, header=None, parsed=None, later_valid=later_valid)
    return HstsVerdict(
        first=first,
        header=values[0],
        parsed=parse_sts(values[0]),
        header_count=len(values),
        later_valid=later_valid,
    )
