"""The terminal view: verdict on top, then one rich table per target (clause, status, detail).

Everything that came from the audited server (or a stored report) is passed as rich Text (never
markup) after reports.sanitize made it one harmless line: a header value cannot move the cursor,
set the title or fake a verdict, and a bidi control is shown as <U+202E>, not obeyed.

Only a terminal gets boxes and tables, which wrap at its width. Logs, pipes and cron mail get one
line per fact, never wrapped, so that grep finds a verdict or a diagnostic whole.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from auditor.model import AuditReport, Status, TargetResult
from auditor.mozilla_profile import report_lines as mozilla_lines
from auditor.reports.sanitize import one_line
from auditor.reports.view import endpoint_lines, exposure_line, ordered
from auditor.reports.web_lines import report_lines as web_lines

STATUS_STYLE = {
    Status.PASS: ("PASS", "bold green"),
    Status.FAIL: ("FAIL", "bold red"),
    Status.WARN: ("WARN", "yellow"),
    Status.INFO: ("INFO", "cyan"),
    Status.ERROR: ("ERROR", "magenta"),
    Status.NOT_TESTED: ("NOT TESTED", "dim"),
}


def clean(text: str, limit: int = 200) -> str:
    """Untrusted text made safe for a terminal: one line, bounded (reports.sanitize.one_line)."""
    return one_line(text, limit)


def terminal_console(stream: TextIO) -> Console:
    """A console for the report; logs and pipes get 120 columns rather than rich's 80."""
    console = Console(file=stream, highlight=False)
    if not console.is_terminal:
        console = Console(file=stream, highlight=False, width=120)
    return console


def diagnostics_console(stream: TextIO | None = None) -> Console:
    """A console for progress notes and errors (stderr by default) that never wraps a line: rich
    otherwise wraps at 80 columns whenever the stream is not a terminal."""
    return Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)


def verdict_line(result: TargetResult) -> Text:
    # the name is the user's own (bounded generously); the error may quote the server
    name = clean(result.target.name or result.target.url, 2000)
    if result.error:
        return Text.assemble(
            ("NOT AUDITED ", "bold magenta"), (name, "bold"), f"  {clean(result.error, 1000)}"
        )
    grade = f"  grade {clean(result.grade.letter, 16)}" if result.grade else ""
    if result.compliant:
        return Text.assemble(("COMPLIANT ", "bold green"), (name, "bold"), grade)
    n = len(result.failed_clauses())
    return Text.assemble(
        ("NOT COMPLIANT ", "bold red"), (name, "bold"), f"  {n} violation{'s' if n != 1 else ''}{grade}"
    )


def grade_line(result: TargetResult) -> Text | None:
    """The letter with what capped it: the SSL Labs-style summary under the verdict."""
    g = result.grade
    if g is None:
        return None
    style = (
        "bold green" if g.letter in ("A+", "A") else "bold yellow" if g.letter in ("A-", "B") else "bold red"
    )
    line = Text.assemble(
        ("Grade ", "bold"),
        (clean(g.letter, 16), style),
        f"  score {g.score} (protocol "
        f"{g.categories.get('protocol')}, key exchange {g.categories.get('key_exchange')}, "
        f"cipher {g.categories.get('cipher')})",
    )
    if g.letter_ignoring_trust:
        line.append(f"  {clean(g.letter_ignoring_trust, 16)} if trust issues were ignored")
    for cap in g.caps:
        line.append(f"\n  capped at {clean(cap.grade, 16)}: {clean(cap.reason)}", style="dim")
    for warning in g.warnings:
        line.append(f"\n  warning: {clean(warning)}", style="dim")
    return line


def target_table(result: TargetResult) -> Table:
    table = Table(show_header=True, header_style="bold", expand=False, pad_edge=False)
    table.add_column("Clause", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Finding")
    for f in result.findings:
        label, style = STATUS_STYLE[f.status]
        detail = Text(clean(f.title, 120))
        if since := exposure_line(f):
            detail.append("\n" + clean(since, 120), style="bold")
        if f.status in (Status.FAIL, Status.WARN, Status.ERROR) and f.detail:
            detail.append("\n" + clean(f.detail, 240), style="dim")
        table.add_row(Text(clean(f.clause, 80)), Text(label, style=style), detail)
    return table


def total_line(report: AuditReport) -> Text:
    compliant = sum(1 for t in report.targets if t.compliant and not t.error)
    failing = sum(1 for t in report.targets if not t.compliant and not t.error)
    errors = sum(1 for t in report.targets if t.error)
    return Text.assemble(
        ("Policy verdict: ", "bold"),
        (f"{compliant} compliant", "green"),
        ", ",
        (f"{failing} not compliant", "red" if failing else ""),
        ", ",
        (f"{errors} not audited", "magenta" if errors else ""),
    )


def summary_lines(report: AuditReport) -> list[Text]:
    """The verdict summary: one line per target (COMPLIANT / NOT COMPLIANT / NOT AUDITED), then the total."""
    return [verdict_line(result) for result in report.targets] + [total_line(report)]


def print_summary(report: AuditReport, console: Console) -> None:
    """The summary alone (`audit --quiet`, `schedule --once`)."""
    for line in summary_lines(report):
        console.print(line, soft_wrap=True)


def render(report: AuditReport, console: Console) -> None:
    console.print(total_line(report), soft_wrap=True)
    for result in ordered(report.targets):  # worst first, as in the HTML and text reports
        parts: list[Text] = [verdict_line(result)]
        if (grade := grade_line(result)) is not None:
            parts.append(grade)
        parts += [Text(f"endpoint {clean(line, 300)}") for line in endpoint_lines(result)]
        parts += [Text(clean(line, 300), style="dim") for line in mozilla_lines(result)]
        parts += [
            Text(clean(line, 300), style="dim" if i else "") for i, line in enumerate(web_lines(result, True))
        ]
        if not console.is_terminal:
            _print_lines(parts, result, console)
            continue
        table = [target_table(result)] if result.findings else []
        console.print(Panel(Group(*parts, *table), expand=False))


def _print_lines(parts: list[Text], result: TargetResult, console: Console) -> None:
    """The plain layout for logs and pipes: a blank line, the verdict, the grade, one line per finding."""
    console.print()
    for part in parts:
        console.print(part, soft_wrap=True)
    width = max((len(clean(f.clause, 80)) for f in result.findings), default=0)
    for f in result.findings:
        label, style = STATUS_STYLE[f.status]
        line = Text.assemble(
            f"  {clean(f.clause, 80):<{width}}  ", (f"{label:<10}", style), "  ", clean(f.title, 120)
        )
        if since := exposure_line(f):
            line.append(f" ({clean(since, 120)})")
        if f.status in (Status.FAIL, Status.WARN, Status.ERROR) and f.detail:
            line.append(f" — {clean(f.detail, 240)}", style="dim")
        console.print(line, soft_wrap=True)
