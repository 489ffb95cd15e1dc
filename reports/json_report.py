"""The JSON report: the AuditReport model itself, written atomically; the schema lives in schema/."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from auditor.model import AuditReport

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "auditor" / "schema" / "report.schema.json"


def to_json(report: AuditReport) -> str:
    return report.model_dump_json(indent=2)


def json_schema() -> str:
    return json.dumps(AuditReport.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temporary file and rename, owner-only: a reader never sees half a report."""
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


def load_report(path: Path) -> AuditReport:
    return AuditReport.model_validate_json(path.read_text(encoding="utf-8"))
