"""How text from a server or a file is shown, per medium: one set of rules for every renderer.

Untrusted text (certificate names, header values, cookie names, a stored or crafted report) may
hold characters that act on whoever displays it: C0/C1 controls and escape sequences move the
cursor, clear the screen or set a terminal's title; bidi controls (U+202E) reorder what is read;
zero-width characters hide in plain sight. Every medium shows them, none obeys them:

- a control character (C0 other than the layout a medium keeps, DEL, C1, and a lone surrogate,
  which cannot even be encoded) becomes "?": an escape sequence loses its ESC ("?[2J");
- an invisible format character (Unicode category Cf: bidi controls, zero-width characters, BOM)
  or a line/paragraph separator becomes its code point, "<U+202E>": the reader sees what was tried.

The media: `one_line` (terminal and plain-text fields: no line break either, so a value cannot
forge a line), `block` (multi-line text: a whole text report, CSV cells, XML, SARIF strings),
`header` (e-mail headers), `html` (a rendered document: the code point written &lt;U+202E&gt;).
JSON is the evidence and stays faithful: `json_text` writes the same characters as \\uXXXX
escapes, which every JSON reader turns back into exactly the string received.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

CONTROL = "?"
_CONTROLS = frozenset({"Cc", "Cs"})  # controls (C0, DEL, C1) and lone surrogates
_INVISIBLE = frozenset({"Cf", "Zl", "Zp"})  # bidi, zero-width, BOM, tags; U+2028, U+2029
_SUSPECT = re.compile(r"[^\x20-\x7e]")  # anything but printable ASCII: looked at one by one
_ONE_LINE = {"\n": " ", "\r": " ", "\t": " "}
_BLOCK = {"\n": "\n", "\t": "\t"}


def code_point(ch: str) -> str:
    """ "<U+202E>": how an invisible character is shown in text."""
    return f"<U+{ord(ch):04X}>"


def _clean(text: str, layout: dict[str, str], shown: Callable[[str], str]) -> str:
    if text.isprintable():  # the common case, in C: no control, format or separator character
        return text

    def replace(match: re.Match[str]) -> str:
        ch = match.group()
        if ch in layout:
            return layout[ch]
        category = unicodedata.category(ch)
        if category in _CONTROLS:
            return CONTROL
        return shown(ch) if category in _INVISIBLE else ch

    return _SUSPECT.sub(replace, text)


def one_line(text: str, limit: int | None = None) -> str:
    """A field for a terminal or a plain-text line: one line, controls defanged, invisible
    characters named, at most `limit` characters (the cut marked with an ellipsis)."""
    line = _clean(text, _ONE_LINE, code_point)
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


def block(text: str) -> str:
    """Multi-line text (line feeds and tabs kept; a lone CR is a control: it would overwrite
    the line on a terminal)."""
    return _clean(text.replace("\r\n", "\n"), _BLOCK, code_point)


def header(text: str, limit: int = 200) -> str:
    """An e-mail header value: one line (no CR/LF to inject a header), whitespace collapsed."""
    return " ".join(one_line(text).split())[:limit]


def html(document: str) -> str:
    """A rendered HTML document (its untrusted text already autoescaped): the same rules, the
    code point shown as escaped text, so no raw bidi control reaches a browser or a mail client."""
    return _clean(document.replace("\r\n", "\n"), _BLOCK, lambda ch: f"&lt;U+{ord(ch):04X}&gt;")


def _json_escape(ch: str) -> str:
    if ord(ch) <= 0xFFFF:
        return f"\\u{ord(ch):04x}"
    high, low = divmod(ord(ch) - 0x10000, 0x400)  # UTF-16 surrogate pair, as JSON spells it
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def json_text(serialized: str) -> str:
    """Serialized JSON with every control, format and separator character that its encoder left
    raw (DEL, C1, bidi, zero-width, U+2028...) written as a \\u escape: the parsed strings are
    unchanged (the evidence stays faithful), the bytes no longer act on a terminal that shows them.
    Outside strings JSON has only ASCII whitespace and punctuation, so every such character found
    is inside a string, where an escape means the same character."""
    if serialized.isascii() and "\x7f" not in serialized:
        return serialized

    def replace(match: re.Match[str]) -> str:
        ch = match.group()
        if ch in "\n\r\t":  # whitespace between tokens (inside strings the encoder escaped them)
            return ch
        return _json_escape(ch) if unicodedata.category(ch) in _CONTROLS | _INVISIBLE else ch

    return _SUSPECT.sub(replace, serialized)
