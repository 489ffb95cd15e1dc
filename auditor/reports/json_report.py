"""The JSON report: the AuditReport model itself, written atomically; the schema lives in schema/.

The JSON is the evidence: every string is kept exactly as the server (or the file) gave it, escape
sequences and bidi controls included; unlike the other reports it is not cleaned for display.
JSON escapes C0 controls itself; DEL, C1 controls, bidi and other invisible characters are
written as \\u escapes too (reports.sanitize.json_text), which any JSON reader turns back into the
same string, so `--json -` on a terminal cannot act on it either.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from auditor.model import AuditReport
from auditor.reports.sanitize import json_text

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "auditor" / "schema" / "report.schema.json"


def to_json(report: AuditReport) -> str:
    return json_text(report.model_dump_json(indent=2))


def json_schema() -> str:
    return json.dumps(AuditReport.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temporary file and rename, owner-only: a reader never sees half a report.

    A path that exists and is not a regular file (`/dev/null`, `/dev/stdout`, a FIFO) is written
    into as it is: renaming over it would replace a device with a file (as root, `/dev/null`)."""
    try:
        special = path.exists() and not path.is_file()
    except OSError:
        special = False
    if special:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_stem(prefix: str, when: datetime) -> str:
    """`<prefix>-<UTC time>-<8 random hex digits>`: a file name of this run only. The time alone
    was not enough: runs finishing in the same second replaced each other's reports."""
    return f"{prefix}-{when.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def load_report(path: Path) -> AuditReport:
    return AuditReport.model_validate_json(path.read_text(encoding="utf-8"))
