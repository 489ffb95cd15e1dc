"""Undo a response's Content-Encoding under a size cap.

The probe asks for `Accept-Encoding: identity`, so a compressed body is the server's own doing,
and the server is untrusted: 1.8 KB of `gzip, gzip` expands to 1 GiB. Browsers decode it anyway,
so the page is decoded here too, but never beyond `limit` bytes per layer (zlib's max_length),
whatever the compression ratio.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

MAX_CODINGS = 3  # layers decoded ("gzip, gzip" is two); more is refused
_PIECE = 64 * 1024  # compressed bytes fed at a time, so a corrupt stream keeps what came before
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass
class Decoded:
    body: bytes
    note: str | None = None  # why the body is incomplete or not decoded at all (then body is b"")


class _Corrupt(Exception):
    """The stream is damaged before any byte could be decoded."""


def _inflate(data: bytes, wbits: int, limit: int) -> tuple[bytes, str | None]:
    """At most `limit` bytes of the zlib/gzip/raw-deflate stream `data`, and why they are not all
    of it (the cap, or damage after them); _Corrupt if nothing decodes."""
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    for start in range(0, len(data), _PIECE):
        try:  # max_length > 0 always: 0 would mean "no limit"
            out += inflater.decompress(data[start : start + _PIECE], limit - len(out))
        except zlib.error as exc:
            if not out:
                raise _Corrupt(str(exc)) from None
            # browsers render what decoded before the damage
            return bytes(out), f"the body is damaged after {len(out)} decoded bytes ({exc})"
        if len(out) >= limit:
            capped = not inflater.eof or bool(inflater.unconsumed_tail)
            return bytes(
                out
            ), f"the decoded body reached the {limit}-byte cap (scan.max_body_bytes)" if capped else None
        if inflater.eof:
            break
    return bytes(out), None


def _layer(data: bytes, coding: str, limit: int) -> tuple[bytes, str | None]:
    if coding == "deflate":  # servers send zlib-wrapped or raw deflate under this name; browsers take both
        try:
            return _inflate(data, zlib.MAX_WBITS, limit)
        except _Corrupt:
            return _inflate(data, -zlib.MAX_WBITS, limit)
    return _inflate(data, _WBITS[coding], limit)


def decode_body(raw: bytes, content_encoding: list[str], limit: int) -> Decoded:
    """`raw` with every coding of the Content-Encoding header values undone (last applied first),
    at most `limit` bytes at each step."""
    codings = [c.strip().lower() for value in content_encoding for c in value.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return Decoded(raw)
    if len(codings) > MAX_CODINGS:
        return Decoded(
            b"", f"the body has {len(codings)} content codings (more than {MAX_CODINGS}): not analysed"
        )
    unknown = [c for c in codings if c not in _WBITS]
    if unknown:
        return Decoded(
            b"", f"the body is {', '.join(unknown)}-encoded although identity was asked for: not analysed"
        )
    body, notes = raw, []
    for coding in reversed(codings):
        try:
            body, note = _layer(body, coding, max(limit, 1))
        except _Corrupt as exc:
            return Decoded(b"", f"the {coding} body could not be decoded ({exc}): not analysed")
        notes += [note] if note else []
    return Decoded(body, "; ".join(dict.fromkeys(notes)) or None)
