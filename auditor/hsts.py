"""Strict-Transport-Security parsing, shared by the HSTS check and the grade."""

from __future__ import annotations

import re

_MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:;|$)", re.IGNORECASE)


def parse_hsts(value: str) -> tuple[int | None, bool, bool]:
    """(max-age or None when absent/invalid, includeSubDomains, preload)."""
    match = _MAX_AGE.search(value)
    directives = {d.strip().lower() for d in value.split(";")}
    return (int(match.group(1)) if match else None, "includesubdomains" in directives, "preload" in directives)
