"""What a finished run tells its operator, the same for `auditor audit` and `auditor schedule`
(`--once`, and every night of the service): one verdict line per target and a total, one line per
thing written or sent, and the exit status, which is all that cron and CI read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.text import Text

from auditor.cli import EXIT_MAIL, EXIT_OK, EXIT_POLICY, EXIT_UNREACHABLE
from auditor.config import Config
from auditor.errors import MailError
from auditor.model import AuditReport


@dataclass
class Stored:
    """What `--store` (or the nightly job) appended to the history."""

    results: int
    database: str
    head: str


@dataclass
class RunOutcome:
    """A finished run: the report and what was done with it."""

    report: AuditReport
    written: list[Path] = field(default_factory=list)
    stored: Stored | None = None
    mailed_to: list[str] = field(default_factory=list)
    mail_error: str | None = None

    def exit_code(self) -> int:
        return exit_code(self.report, mail_failed=self.mail_error is not None)

    def location_lines(self) -> list[str]:
        """One line per file written, the history and the mail: where to look afterwards."""
        lines = [f"report written: {path}" for path in self.written]
        if self.stored is not None:
            lines.append(f"history: stored {self.stored.results} result(s) in {self.stored.database}; "
                         f"evidence log head {self.stored.head}")
        if self.mailed_to:
            lines.append(f"report mailed to {', '.join(self.mailed_to)}")
        return lines


def exit_code(report: AuditReport, *, mail_failed: bool = False) -> int:
    """3 a target was not audited, which wins over 4 the mail failed, which wins over 1 the policy
    is broken; 0 only when every target was audited, is compliant and the mail (if any) went out."""
    if any(t.error for t in report.targets):
        return EXIT_UNREACHABLE
    if mail_failed:
        return EXIT_MAIL
    if not all(t.compliant for t in report.targets):
        return EXIT_POLICY
    return EXIT_OK


def total_line(report: AuditReport) -> Text:
    compliant = sum(1 for t in report.targets if t.compliant and not t.error)
    failing = sum(1 for t in report.targets if not t.compliant and not t.error)
    errors = sum(1 for t in report.targets if t.error)
    return Text.assemble(("Policy verdict: ", "bold"), (f"{compliant} compliant", "green"), ", ",
                         (f"{failing} not compliant", "red" if failing else ""), ", ",
                         (f"{errors} not audited", "magenta" if errors else ""))


def summary_lines(report: AuditReport) -> list[Text]:
    """The verdict summary: one line per target (COMPLIANT / NOT COMPLIANT / NOT AUDITED), then the total."""
    from reports.terminal import verdict_line

    return [verdict_line(result) for result in report.targets] + [total_line(report)]


def print_summary(report: AuditReport, console: Console) -> None:
    for line in summary_lines(report):
        console.print(line, soft_wrap=True)


def announce(outcome: RunOutcome, log: Callable[[str], None], *, quiet: bool = False) -> None:
    """Where things went, one line each (not with --quiet), and a mail failure (always)."""
    if not quiet:
        for line in outcome.location_lines():
            log(line)
    if outcome.mail_error is not None:
        log(f"auditor: {outcome.mail_error}")


def log_summary(outcome: RunOutcome, log: Callable[[str], None]) -> None:
    """The summary and the locations as plain lines, for a log (the scheduler's stderr, the journal)."""
    for line in summary_lines(outcome.report):
        log(line.plain)
    announce(outcome, log)


def stderr_line(line: str) -> None:
    """One diagnostic line on stderr, flushed (the service's log, cron's mail)."""
    print(line, file=sys.stderr, flush=True)


def mail_report(report: AuditReport, config: Config) -> None:
    """Render and send (HTML, text and the JSON attached); MailError when it cannot be sent."""
    from reports.email import send_report
    from reports.html import render_html
    from reports.json_report import to_json
    from reports.text import render_text

    assert config.email is not None
    send_report(report, config.email, html=render_html(report), text=render_text(report), json_text=to_json(report))


def deliver(outcome: RunOutcome, config: Config) -> None:
    """Mail the report, recording on the outcome where it went or why it did not (never raises MailError)."""
    assert config.email is not None
    try:
        mail_report(outcome.report, config)
    except MailError as exc:  # the report is on disk all the same; the exit status says 4
        outcome.mail_error = str(exc)
    else:
        outcome.mailed_to = list(config.email.to)
