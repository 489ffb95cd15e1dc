"""The machine-readable report formats beside JSON (JUnit XML, SARIF, CSV): one table, so the
`audit` and `report` commands and the nightly job offer the same ones, written the same way."""

from __future__ import annotations

import sys
from pathlib import Path

from auditor.config import Output
from auditor.model import AuditReport
from reports.json_report import write_atomic

HELP = {
    "junit": "write a JUnit XML report here, one test case per clause per target ('-' for stdout)",
    "sarif": "write a SARIF 2.1.0 report here, one result per failing or warning finding ('-' for stdout)",
    "csv": "write a CSV report here, one row per finding ('-' for stdout)",
}


def render(report: AuditReport, name: str) -> str:
    """The report in format `name` (a key of HELP). The writers are imported here, not at start-up:
    they load the clause table, which every other command can do without."""
    if name == "junit":
        from reports.junit import to_junit

        return to_junit(report)
    if name == "sarif":
        from reports.sarif import to_sarif

        return to_sarif(report)
    if name == "csv":
        from reports.csv_report import to_csv

        return to_csv(report)
    raise ValueError(f"unknown report format {name!r}")


def write(report: AuditReport, name: str, destination: str | Path) -> Path | None:
    """Render `name` to a path (atomic, owner-only, like the JSON report) or to stdout for '-';
    return the path written, None for stdout."""
    text = render(report, name)
    if str(destination) == "-":
        sys.stdout.write(text)
        return None
    path = Path(destination)
    write_atomic(path, text)
    return path


def configured(output: Output) -> list[tuple[str, Path]]:
    """The formats an [output] section asks for on every audit of the config's targets, each path
    relative to the output directory unless absolute."""
    directory = output.directory
    wanted = [(name, getattr(output, name, None)) for name in HELP]
    return [(name, path if path.is_absolute() else directory / path) for name, path in wanted if path is not None]
