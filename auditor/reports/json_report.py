"""The JSON report: the AuditReport model itself (written by auditor.safe_files.write_atomic); the
schema lives in auditor/schema/.

The JSON is the evidence: every string is kept exactly as the server (or the file) gave it, escape
sequences and bidi controls included; unlike the other reports it is not cleaned for display.
JSON escapes C0 controls itself; DEL, C1 controls, bidi and other invisible characters are
written as \\u escapes too (reports.sanitize.json_text), which any JSON reader turns back into the
same string, so `--json -` on a terminal cannot act on it either.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

from auditor.model import AuditReport
from auditor.reports.sanitize import json_text

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "report.schema.json"


def to_json(report: AuditReport) -> str:
    return json_text(report.model_dump_json(indent=2))


def json_schema() -> str:
    return json.dumps(AuditReport.model_json_schema(), indent=2, sort_keys=True) + "\n"


def run_stem(prefix: str, when: datetime) -> str:
    """`<prefix>-<UTC time>-<8 random hex digits>`: a file name of this run only. The time alone
    was not enough: runs finishing in the same second replaced each other's reports."""
    return f"{prefix}-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def load_report(path: Path) -> AuditReport:
    return AuditReport.model_validate_json(path.read_text(encoding="utf-8"))
