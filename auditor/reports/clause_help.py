"""What the auditor checks for each clause, from the clause table (auditor/checks/clauses.toml):
the help text of a SARIF rule, for a dashboard reader who has neither the policy nor the README at
hand, and the README's clause table (scripts/clause_table.py prints it)."""

from __future__ import annotations

from collections.abc import Iterable

from auditor.checks.clauses import CLAUSE_DATA, CLAUSES
from auditor.model import ClauseId, TargetResult

CLAUSE_IDS = frozenset(c.value for c in ClauseId)


def clause_title(clause: str) -> str:
    """The promise of a clause, or its id for one the table does not know (a newer report)."""
    return CLAUSES.get(ClauseId(clause), clause) if clause in CLAUSE_IDS else clause


def clause_help(clause: str) -> str:
    """What the auditor checks, as plain text (the table's Markdown without its backticks)."""
    if clause not in CLAUSE_IDS:
        return f"See the policy clause {clause}."
    return CLAUSE_DATA[ClauseId(clause)].checks.replace("`", "")


def markdown_table() -> str:
    """The README's clause table: id, promise, what is checked; one row per clause, in report order."""
    rows = ["| clause | the promise | what is checked |", "|---|---|---|"]
    rows += [f"| `{c.id}` | {c.title} | {c.checks} |" for c in CLAUSE_DATA.values()]
    return "\n".join(rows) + "\n"


def clause_order(results: Iterable[TargetResult]) -> list[str]:
    """Every clause of the table, then any clause a (newer) report has that the table lacks."""
    seen: dict[str, None] = dict.fromkeys(CLAUSES)
    for result in results:
        seen.update(dict.fromkeys(f.clause for f in result.findings))
    return list(seen)
