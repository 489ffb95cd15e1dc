"""The clause table (clauses.toml beside this module), loaded once and validated: a typo in the data
fails at import, not in a report.

The data is TOML rather than Python so that the table a reader checks against the policy is one
file of text (promise, thresholds, fixes with their nginx and Apache lines), and so that the README's
table and the SARIF help are generated from it, not copied.
"""

from __future__ import annotations

import re
import tomllib
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from auditor.model import ClauseId


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Remedy(_Data):
    """A fix: plain text, or a sentence with the nginx and Apache lines."""

    text: str | None = None
    note: str = ""
    nginx: str | None = None
    apache: str | None = None

    def render(self) -> str:
        if self.text is not None:
            return self.text
        lines = f"nginx:\n{self.nginx}\nApache:\n{self.apache}"
        return f"{self.note}\n{lines}" if self.note else lines


class Clause(_Data):
    id: ClauseId
    section: str
    title: str  # the promise, as reports print it
    severity: Literal["critical", "high", "medium", "low"]
    since: int = Field(ge=1)  # the RULES_VERSION the check appeared in
    row_since: dict[str, int] = Field(default_factory=dict)  # per row (11.4-vulnerabilities flaws)
    thresholds: tuple[str, ...] = ()  # the [policy] keys the check reads
    checks: str  # what the auditor checks (Markdown)
    remediation: dict[str, Remedy] = Field(default_factory=dict)


class ClauseTable(_Data):
    rules_version: int = Field(ge=1)
    values: dict[str, str] = Field(default_factory=dict)
    clause: tuple[Clause, ...]


_PLACEHOLDER = re.compile(r"@([A-Z0-9_]+)@")


def _expand(raw: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], raw)  # an unknown name: KeyError at import


def load(text: str) -> ClauseTable:
    """The table from TOML text, with @NAME@ replaced by [values] NAME in every remediation."""
    raw = tomllib.loads(text)
    values = raw.get("values", {})
    for entry in raw.get("clause", []):
        for remedy in entry.get("remediation", {}).values():
            for key, value in remedy.items():
                remedy[key] = _expand(value, values)
    return ClauseTable.model_validate(raw)


TABLE = load(files("auditor.checks").joinpath("clauses.toml").read_text(encoding="utf-8"))
CLAUSE_DATA: dict[ClauseId, Clause] = {c.id: c for c in TABLE.clause}
VALUES = TABLE.values

# id -> promise, in report order (reports, JSON, config and history use these ids)
CLAUSES: dict[ClauseId, str] = {c.id: c.title for c in TABLE.clause}

# The version of the check rules, recorded in every stored scan (TargetResult.rules_version).
RULES_VERSION = TABLE.rules_version
# clause id, or "clause/row" -> the rules version it appeared in, where later than 1: the remediation
# clock (auditor.exposure) starts that key at the first scan able to see it.
SINCE: dict[str, int] = {c.id: c.since for c in TABLE.clause if c.since > 1} | {
    f"{c.id}/{row}": version for c in TABLE.clause for row, version in c.row_since.items()
}


def remediation(clause: ClauseId, name: str) -> str:
    """The named fix of a clause, as a finding carries it."""
    return CLAUSE_DATA[clause].remediation[name].render()
