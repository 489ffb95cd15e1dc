"""The report formats by name, so the `audit` and `report` commands, the nightly job and the mail
render through one table: json, html, text, and the machine-readable ones beside JSON (JUnit XML,
SARIF, CSV) that are also options and [output] keys. Each is written like every report file
(auditor.app.write_file: atomic, owner-only, a failure is one line, never the run)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.config import Output

if TYPE_CHECKING:
    from auditor.model import AuditReport


@dataclass(frozen=True)
class ReportFile:
    """One report a run writes: where (None: stdout), in which format, and the option or key that
    asked for it, named when it cannot be written."""

    path: Path | None
    format: str  # one of FORMATS
    option: str


HELP = {
    "junit": "write a JUnit XML report here, one test case per clause per target ('-' for stdout)",
    "sarif": "write a SARIF 2.1.0 report here, one result per failing or warning finding ('-' for stdout)",
    "csv": "write a CSV report here, one row per finding ('-' for stdout)",
}


FORMATS = ("json", "html", "text", *HELP)


RENDERERS = {  # format -> (module in auditor.reports, function)
    "json": ("json_report", "to_json"),
    "html": ("html", "render_html"),
    "text": ("text", "render_text"),
    "junit": ("junit", "to_junit"),
    "sarif": ("sarif", "to_sarif"),
    "csv": ("csv_report", "to_csv"),
}


def renderer(name: str) -> Callable[[AuditReport], str]:
    """The function that renders format `name` (one of FORMATS). Each writer loads when its format
    is written, after the scan, and only then: the HTML one (jinja2, css_inline) costs ~90 ms that a
    JSON-only run, or every audit before its first handshake, would otherwise pay."""
    try:
        module, function = RENDERERS[name]
    except KeyError:
        raise ValueError(f"unknown report format {name!r}") from None
    rendering: Callable[[AuditReport], str] = getattr(
        importlib.import_module(f"auditor.reports.{module}"), function
    )
    return rendering


def render(report: AuditReport, name: str) -> str:
    """The report in format `name` (one of FORMATS)."""
    return renderer(name)(report)


def configured(output: Output) -> list[tuple[str, Path]]:
    """The formats an [output] section asks for on every audit of the config's targets, each path
    relative to the output directory unless absolute."""
    directory = output.directory
    wanted = [(name, getattr(output, name, None)) for name in HELP]
    return [
        (name, path if path.is_absolute() else directory / path) for name, path in wanted if path is not None
    ]
