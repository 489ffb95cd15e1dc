"""Grade letters compared: used to summarise several targets in one line."""

from __future__ import annotations

from auditor.grading_rules import ORDER

_ALL = [*ORDER, "T", "M"]


def worst_letter(letters: list[str]) -> str | None:
    known = [letter for letter in letters if letter in _ALL]
    return max(known, key=_ALL.index) if known else None
