"""The HTML report: one self-contained, mail-client-safe file for a whole run, verdict first.

Autoescaping is on: subjects, header values and cookie names come from the audited server. The
rendered document then passes reports.sanitize.html: a control character shows as "?", a bidi
control (U+202E) or zero-width character as the text "<U+202E>", never raw.
CSS is inlined into style attributes (css_inline) because mail clients drop <style> blocks;
there is no script and nothing is loaded from elsewhere. What the report says and in which order
(headline, sites worst first, words, local times, fixes for this site) lives in reports.view.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path

import css_inline
from jinja2 import Environment

from auditor.checks.clauses import CLAUSES
from auditor.model import AuditReport, Certificate
from auditor.reports import sanitize, view
from auditor.reports.templating import strict_environment
from auditor.suites import is_weak

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _days_left(cert: Certificate, now: datetime) -> int:
    return int((cert.not_after - now).total_seconds() // 86400)


def _yesno(value: bool | None, yes: str, no: str) -> str:
    return "not tested" if value is None else yes if value else no


def _environment(tz: tzinfo | None) -> Environment:
    env = strict_environment(TEMPLATES)
    env.globals.update(
        promise=lambda clause: CLAUSES.get(clause, ""),
        days_left=_days_left,
        weak=is_weak,
        yesno=_yesno,
        when=partial(view.local_time, tz=tz),
        headline=view.headline,
        ordered=view.ordered,
        verdict=view.verdict,
        verdict_label=view.verdict_label,
        violations=view.violations,
        name=view.display_name,
        grade_tone=view.grade_tone,
        findings=view.findings_worst_first,
        status_label=view.status_label,
        words=view.words,
        evidence=view.evidence_line,
        exposure=partial(view.exposure_line, tz=tz),
        timeline=partial(view.exposure_timeline, tz=tz),
        trust_chips=view.trust_chips,
        fixes=view.fixes,
        mozilla_rows=view.mozilla_rows,
        post_quantum=view.post_quantum,
        protocol_facts=view.protocol_facts,
        endpoint_rows=view.endpoint_rows,
        dns_rows=view.dns_rows,
    )
    return env


def render_html(report: AuditReport, tz: tzinfo | None = None) -> str:
    """The report as one HTML document; times in `tz` (default: this machine's zone, $TZ)."""
    html = _environment(tz).get_template("report.html.j2").render(report=report)
    return css_inline.inline(sanitize.html(html))
