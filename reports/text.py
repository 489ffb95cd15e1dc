"""The plain-text report: the alternative part of the email, readable in any mail client."""

from __future__ import annotations

from auditor.model import AuditReport, Status
from reports.terminal import clean


def render_text(report: AuditReport) -> str:
    lines = [f"TLS policy audit, {report.generated_at:%Y-%m-%d %H:%M UTC}", ""]
    for t in report.targets:
        name = clean(t.target.name or t.target.url)
        if t.error:
            lines.append(f"NOT AUDITED  {name}: {clean(t.error)}")
            continue
        verdict = "COMPLIANT" if t.compliant else f"{len(t.failed_clauses())} VIOLATION(S)"
        grade = f"grade {t.grade.letter}" if t.grade else "not graded"
        lines.append(f"{verdict}  {name}  ({grade})")
    for t in report.targets:
        if t.error:
            continue
        lines += ["", f"== {clean(t.target.name or t.target.url)} ({t.target.url})"]
        if t.changes and t.changes.changes:
            lines.append(f"Changes since {t.changes.previous_scan_at:%Y-%m-%d %H:%M UTC}:")
            lines += [f"  - {c.kind} {clean(c.subject)}: {clean(c.before or '-')} -> {clean(c.after or '-')}"
                      + (f" ({clean(c.detail, 160)})" if c.detail else "") for c in t.changes.changes]
        if t.grade:
            lines.append(f"Grade {t.grade.letter} (score {t.grade.score})")
            lines += [f"  capped at {c.grade}: {c.reason}" for c in t.grade.caps]
            lines += [f"  warning: {w}" for w in t.grade.warnings]
        for f in t.findings:
            lines.append(f"  [{f.status.value.upper():10}] {f.clause}: {clean(f.title, 160)}")
        for f in t.findings:
            if f.status is Status.FAIL and f.remediation:
                lines += ["", f"Fix {f.clause}:", *("    " + clean(line, 300) for line in f.remediation.splitlines())]
    if report.meta.get("evidence_log_head"):
        lines += ["", f"Evidence log head: {report.meta['evidence_log_head']}"]
    lines += ["", f"auditor {report.tool_version}"]
    return "\n".join(lines) + "\n"
