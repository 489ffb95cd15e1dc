"""The plain-text report: the alternative part of the email, readable in any mail client.

Same order as the HTML report (reports.view): the headline, the sites worst first, then each
site with its failures first, their evidence whole, and fixes written for that site.
Every field from the server or the report file is one harmless line (reports.sanitize), and
the whole text passes reports.sanitize.block once more: a crafted report cannot reach a terminal.
"""

from __future__ import annotations

from datetime import tzinfo

from auditor.model import AuditReport, Status, TargetResult
from auditor.mozilla_profile import report_lines as mozilla_lines
from auditor.reports import view
from auditor.reports.sanitize import block
from auditor.reports.terminal import clean
from auditor.reports.web_lines import report_lines as web_lines

LONG = 1000  # bound for a line that came from the audited server: only a hostile one is longer


def _summary_line(t: TargetResult) -> str:
    name = clean(view.display_name(t), LONG)
    label = f"{view.verdict_label(t):13}"
    if t.error:
        return f"{label} {name}: {clean(t.error, LONG)}"
    grade = f"grade {clean(t.grade.letter, 16)}" if t.grade else "not graded"
    counted = f"{view.violations(t)}, " if view.verdict(t) == view.FAILING else ""
    return f"{label} {name}  ({counted}{grade})"


def _site(t: TargetResult, tz: tzinfo | None) -> list[str]:
    lines = [
        "",
        f"== {view.verdict_label(t)}: {clean(view.display_name(t), LONG)} ({clean(t.target.url, LONG)})",
    ]
    if endpoints := view.endpoint_lines(t):
        lines += ["Endpoints:", *(f"  {clean(line, LONG)}" for line in endpoints)]
    if t.error:
        return [*lines, f"Not audited: {clean(t.error, LONG)}"]
    if t.changes and t.changes.changes:
        lines.append(f"Changes since {view.local_time(t.changes.previous_scan_at, tz)}:")
        lines += [
            f"  - {clean(c.kind, 40)} {clean(c.subject)}: {clean(c.before or '-')} -> {clean(c.after or '-')}"
            + (f" ({clean(c.detail, LONG)})" if c.detail else "")
            for c in t.changes.changes
        ]
    if t.grade:
        lines.append(f"Grade {clean(t.grade.letter, 16)} (score {t.grade.score})")
        lines += [f"  capped at {clean(c.grade, 16)}: {clean(c.reason, LONG)}" for c in t.grade.caps]
        lines += [f"  warning: {clean(w, LONG)}" for w in t.grade.warnings]
    lines += [clean(line, LONG) for line in mozilla_lines(t, details=True)]
    lines += [clean(line, LONG) for line in web_lines(t, details=True)]
    if dns := view.dns_rows(t):
        lines.append("DNS:")
        lines += [f"  {clean(label, 80)}: {clean(value, LONG)}" for label, value in dns]
    if facts := view.protocol_facts(t):
        lines.append("Protocol details:")
        lines += [f"  {clean(label, 80)}: {clean(value, LONG)}" for label, value in facts]
    for f in view.findings_worst_first(t):
        lines.append(f"  [{view.words(f.status).upper():10}] {clean(f.clause, 80)}: {clean(f.title, LONG)}")
        if since := view.exposure_line(f, tz):
            lines.append(f"               {clean(since, LONG)}")
        if f.status in (Status.FAIL, Status.ERROR, Status.WARN):
            if f.detail:
                lines.append(f"               {clean(f.detail, LONG)}")
            lines += [f"               - {clean(view.evidence_line(e), LONG)}" for e in f.evidence]
    for fix in view.fixes(t):
        lines += [
            "",
            f"Fix {clean(', '.join(fix.clauses), LONG)}:",
            *(f"    {clean(line, LONG)}" for line in fix.note.splitlines()),
        ]
        for server, snippet in (("nginx", fix.nginx), ("Apache", fix.apache)):
            if snippet:
                lines += [f"  {server}:", *(f"    {clean(line, LONG)}" for line in snippet.splitlines())]
    return lines


def render_text(report: AuditReport, tz: tzinfo | None = None) -> str:
    """The report as plain text; times in `tz` (default: this machine's zone, $TZ)."""
    sites = view.ordered(report.targets)
    headline = view.headline(report.targets)
    lines = [
        f"TLS policy audit, {view.local_time(report.generated_at, tz)}",
        "",
        headline.text + (f" ({headline.detail})" if headline.detail else ""),
        "",
    ]
    lines += [_summary_line(t) for t in sites]
    for t in sites:
        lines += _site(t, tz)
    if report.meta.evidence_log_head:
        lines += ["", f"Evidence log head: {clean(report.meta.evidence_log_head, 100)}"]
    lines += ["", f"auditor {clean(report.tool_version, 100)}"]
    return block("\n".join(lines) + "\n")
