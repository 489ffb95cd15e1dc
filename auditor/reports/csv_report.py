"""CSV, one row per finding (as testssl.sh --csvfile), for spreadsheets and line tools.

RFC 4180 via the csv module (CRLF rows, fields quoted when needed). A target that could not be
audited gets one row of status `error`, so no target silently drops out of a sheet. Cookie values
never reach the model, so they cannot reach a row. Text from the audited server follows
reports.sanitize.block (controls "?", bidi and zero-width characters "<U+202E>"; line feeds and tabs
kept, quoted), and a cell that a spreadsheet would run as a formula (=, +, -, @) is prefixed with an
apostrophe, as OWASP advises against CSV injection.
"""

from __future__ import annotations

import csv
import io

from auditor.model import AuditReport, TargetResult
from auditor.reports.sanitize import block

COLUMNS = ["target", "url", "ip", "clause", "status", "title", "detail", "evidence", "grade"]
EVIDENCE_SEPARATOR = " | "
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    """A value a spreadsheet shows as text, never evaluates."""
    safe = block(text)
    return "'" + safe if safe.startswith(_FORMULA_START) else safe


def _rows(result: TargetResult) -> list[list[str]]:
    ref = result.target
    head = [result.target.name or ref.url, ref.url, ref.ip or ""]
    grade = result.grade.letter if result.grade else ""
    if result.error:
        return [[*head, "", "error", "not audited", result.error, "", grade]]
    return [
        [*head, f.clause, f.status.value, f.title, f.detail, EVIDENCE_SEPARATOR.join(f.evidence), grade]
        for f in result.findings
    ]


def to_csv(report: AuditReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)  # the csv module's default dialect is RFC 4180's: CRLF, minimal quoting
    writer.writerow(COLUMNS)
    for result in report.targets:
        writer.writerows([cell(value) for value in row] for row in _rows(result))
    return out.getvalue()
