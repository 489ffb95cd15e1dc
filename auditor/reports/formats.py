"""The machine-readable report formats beside JSON (JUnit XML, SARIF, CSV): one table, so the
`audit` and `report` commands and the nightly job offer the same ones. They are written like every
report file (auditor.outcome.write_file: atomic, owner-only, a failure is one line, never the run)."""

from __future__ import annotations

from pathlib import Path

from auditor.config import Output
from auditor.model import AuditReport

HELP = {
    "junit": "write a JUnit XML report here, one test case per clause per target ('-' for stdout)",
    "sarif": "write a SARIF 2.1.0 report here, one result per failing or warning finding ('-' for stdout)",
    "csv": "write a CSV report here, one row per finding ('-' for stdout)",
}


def render(report: AuditReport, name: str) -> str:
    """The report in format `name` (a key of HELP). The writers are imported here, not at start-up:
    they load the clause table, which every other command can do without."""
    if name == "junit":
        from auditor.reports.junit import to_junit

        return to_junit(report)
    if name == "sarif":
        from auditor.reports.sarif import to_sarif

        return to_sarif(report)
    if name == "csv":
        from auditor.reports.csv_report import to_csv

        return to_csv(report)
    raise ValueError(f"unknown report format {name!r}")


def configured(output: Output) -> list[tuple[str, Path]]:
    """The formats an [output] section asks for on every audit of the config's targets, each path
    relative to the output directory unless absolute."""
    directory = output.directory
    wanted = [(name, getattr(output, name, None)) for name in HELP]
    return [
        (name, path if path.is_absolute() else directory / path) for name, path in wanted if path is not None
    ]
