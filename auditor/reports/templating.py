"""The jinja2 environment every HTML page of the auditor is rendered with (the report, the dashboard):
autoescaped everywhere, including templates given as strings, and strict about undefined names, so a
typo in a template fails a test instead of rendering an empty cell."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


def strict_environment(templates: Path) -> Environment:
    """Templates from `templates`, escaped and strict; the caller adds its globals and filters."""
    return Environment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
