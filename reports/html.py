"""The HTML report: one self-contained, mail-client-safe file for a whole run.

Autoescaping is on: subjects, header values and cookie names come from the audited server.
CSS is inlined into style attributes (css_inline) because mail clients drop <style> blocks;
there is no script and nothing is loaded from elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from auditor.model import AuditReport, Certificate, CertificateDeployment, TargetResult
from auditor.suites import is_weak
from checks.certificate import validation_level
from checks.clauses import CLAUSES

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _grade_class(result: TargetResult) -> str:
    if result.grade is None:
        return "g-none"
    letter = result.grade.letter
    return "g-good" if letter in ("A+", "A") else "g-mid" if letter in ("A-", "B") else "g-bad"


def _days_left(cert: Certificate, now: datetime) -> int:
    return int((cert.not_after - now).total_seconds() // 86400)


def _yesno(value: bool | None, yes: str, no: str) -> str:
    return "not tested" if value is None else yes if value else no


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True,
                      default_for_string=True), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(
        promise=lambda clause: CLAUSES.get(clause, ""),
        level=lambda dep: validation_level(dep) if isinstance(dep, CertificateDeployment) else "",
        days_left=_days_left,
        weak=is_weak,
        yesno=_yesno,
        grade_class=_grade_class,
    )
    return env


def render_html(report: AuditReport) -> str:
    html = _environment().get_template("report.html.j2").render(report=report)
    return css_inline.inline(html)
