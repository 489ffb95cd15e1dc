"""The report formats by name, so the `audit` and `report` commands, the nightly job and the mail
render through one table: json, html, text, and the machine-readable ones beside JSON (JUnit XML,
SARIF, CSV) that are also options and [output] keys. Each is written like every report file
(auditor.app.write_file: atomic, owner-only, a failure is one line, never the run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from auditor.config import Output
from auditor.model import AuditReport
from auditor.reports.csv_report import to_csv
from auditor.reports.html import render_html
from auditor.reports.json_report import to_json
from auditor.reports.junit import to_junit
from auditor.reports.sarif import to_sarif
from auditor.reports.text import render_text


@dataclass(frozen=True)
class ReportFile:
    """One report a run writes: where (None: stdout), in which format (a key of RENDERERS), and
    the option or key that asked for it, named when it cannot be written."""

    path: Path | None
    format: str
    option: str


HELP = {
    "junit": "write a JUnit XML report here, one test case per clause per target ('-' for stdout)",
    "sarif": "write a SARIF 2.1.0 report here, one result per failing or warning finding ('-' for stdout)",
    "csv": "write a CSV report here, one row per finding ('-' for stdout)",
}


RENDERERS: dict[str, Callable[[AuditReport], str]] = {
    "json": to_json,
    "html": render_html,
    "text": render_text,
    "junit": to_junit,
    "sarif": to_sarif,
    "csv": to_csv,
}


def render(report: AuditReport, name: str) -> str:
    """The report in format `name` (a key of RENDERERS)."""
    try:
        renderer = RENDERERS[name]
    except KeyError:
        raise ValueError(f"unknown report format {name!r}") from None
    return renderer(report)


def configured(output: Output) -> list[tuple[str, Path]]:
    """The formats an [output] section asks for on every audit of the config's targets, each path
    relative to the output directory unless absolute."""
    directory = output.directory
    wanted = [(name, getattr(output, name, None)) for name in HELP]
    return [
        (name, path if path.is_absolute() else directory / path) for name, path in wanted if path is not None
    ]
