"""The dashboard's pages rendered from templates/ (jinja2, autoescaped).

Everything shown came from an audited server or from a database others may write, so, as in the
HTML report, autoescaping is on and the rendered page passes reports.sanitize.html: a bidi
control (U+202E) or zero-width character shows as "<U+202E>", a control character as "?".
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment

from auditor import __version__
from auditor.checks.clauses import CLAUSES
from auditor.dashboard.chart import NARROW, WIDE, grade_chart
from auditor.facts import span
from auditor.grading_rules import ALL_LETTERS
from auditor.model import Status
from auditor.reports import sanitize, view
from auditor.reports.templating import strict_environment

TEMPLATES = Path(__file__).resolve().parent / "templates"
STYLESHEET = TEMPLATES / "dashboard.css"
STATUS_MARK = {
    Status.PASS: "✓",
    Status.FAIL: "✗",
    Status.WARN: "!",
    Status.ERROR: "?",
    Status.INFO: "i",
    Status.NOT_TESTED: "-",
}


def link(path: str, **query: str | None) -> str:
    """A dashboard URL with its query (None values left out)."""
    params = {key: value for key, value in query.items() if value}
    return path + ("?" + urlencode(params) if params else "")


def expiry(days: int | None) -> str:
    if days is None:
        return "—"
    if days < 0:
        return f"expired {-days} d ago"
    return f"{days} d"


def ago(moment: datetime | None) -> str:
    """ "3 h ago": how old a scan is, beside its local time."""
    if moment is None:
        return "never"
    return f"{span(datetime.now(UTC) - moment)} ago"


def _environment() -> Environment:
    env = strict_environment(TEMPLATES)
    env.globals.update(
        version=__version__,
        clauses=CLAUSES,
        letters=ALL_LETTERS,
        link=link,
        when=view.local_time,
        ago=ago,
        expiry=expiry,
        chart=grade_chart,
        wide=WIDE,
        narrow=NARROW,
        mark=STATUS_MARK,
        status_label=view.status_label,
        words=view.words,
        evidence=view.evidence_line,
        exposure=view.exposure_line,
    )
    return env


ENVIRONMENT = _environment()


def render(template: str, **context: Any) -> str:
    return sanitize.html(ENVIRONMENT.get_template(template).render(**context))
