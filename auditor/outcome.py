"""What a finished run tells its operator, the same for `auditor audit` and `auditor schedule`
(`--once`, and every night of the service): one verdict line per target and a total, one line per
thing written or sent, and the exit status, which is all that cron and CI read.

A run never loses the results it obtained: storing them in the history, writing each report file
and mailing are separate steps, and a failure of one (a locked database, a full disk, a bug) is one
line and exit status 3 (4 for the mail) while the others still happen (issue 13, item 9).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.text import Text

from auditor.cli import EXIT_MAIL, EXIT_OK, EXIT_POLICY, EXIT_UNREACHABLE
from auditor.config import Config
from auditor.errors import AuditorError, MailError
from auditor.model import AuditReport

T = TypeVar("T")


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
    store_error: str | None = None  # the results are not in the history (reports and mail went out)
    write_errors: list[str] = field(default_factory=list)  # report files that could not be written
    warnings: list[str] = field(default_factory=list)  # lines that do not change the exit status

    def exit_code(self) -> int:
        return exit_code(
            self.report,
            mail_failed=self.mail_error is not None,
            not_kept=self.store_error is not None or bool(self.write_errors),
        )

    def problem_lines(self) -> list[str]:
        """What went wrong after the scan, one line each, printed even with --quiet."""
        lines = [f"auditor: {problem}" for problem in self.write_errors]
        if self.store_error is not None:
            lines.append(f"auditor: the results were NOT stored in the history: {self.store_error}")
        lines += [f"auditor: {warning}" for warning in self.warnings]
        if self.mail_error is not None:
            lines.append(f"auditor: {self.mail_error}")
        return lines

    def location_lines(self) -> list[str]:
        """One line per file written, the history and the mail: where to look afterwards."""
        lines = [f"report written: {path}" for path in self.written]
        if self.stored is not None:
            lines.append(
                f"history: stored {self.stored.results} result(s) in {self.stored.database}; "
                f"evidence log head {self.stored.head}"
            )
        if self.mailed_to:
            lines.append(f"report mailed to {', '.join(self.mailed_to)}")
        return lines


def exit_code(report: AuditReport, *, mail_failed: bool = False, not_kept: bool = False) -> int:
    """3 a target was not audited, or the results could not be stored or a report file written,
    which wins over 4 the mail failed, which wins over 1 the policy is broken; 0 only when every
    target was audited, is compliant, and everything asked for was stored, written and mailed."""
    if not_kept or any(t.error for t in report.targets):
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
    from auditor.reports.terminal import verdict_line

    return [verdict_line(result) for result in report.targets] + [total_line(report)]


def print_summary(report: AuditReport, console: Console) -> None:
    for line in summary_lines(report):
        console.print(line, soft_wrap=True)


def announce(outcome: RunOutcome, log: Callable[[str], None], *, quiet: bool = False) -> None:
    """Where things went, one line each (not with --quiet), and what failed (always)."""
    if not quiet:
        for line in outcome.location_lines():
            log(line)
    for line in outcome.problem_lines():
        log(line)


def keep_step(outcome: RunOutcome, step: Callable[[], T]) -> T | None:
    """Run one step of storing the results in the history. Its failure, whatever it is (a locked
    database, a full disk, a damaged row, a bug), becomes `outcome.store_error` and the later steps
    are skipped; it is never raised, so the report is still printed, written and mailed."""
    if outcome.store_error is not None:
        return None
    try:
        return step()
    except AuditorError as exc:
        outcome.store_error = str(exc)
    except OSError as exc:
        outcome.store_error = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    except Exception as exc:  # noqa: BLE001  (the results obtained must survive any failure of storing)
        outcome.store_error = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
    outcome.report.meta["not_stored"] = outcome.store_error  # the written and mailed report says so
    return None


def write_file(outcome: RunOutcome, path: Path, render: Callable[[], str], option: str) -> None:
    """Render and write one report file (atomically, owner-only), recording it on the outcome; a
    failure is one line in `outcome.write_errors` and the other files are still written."""
    from auditor.reports.json_report import write_atomic

    try:
        write_atomic(path, render())
    except OSError as exc:
        outcome.write_errors.append(f"{option}: cannot write {str(path)!r} ({exc.strerror or exc})")
    except Exception as exc:  # noqa: BLE001  (one report that cannot be rendered must not cost the others)
        outcome.write_errors.append(
            f"{option}: cannot write {str(path)!r} (internal error: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())})"
        )
    else:
        outcome.written.append(path)


def log_summary(outcome: RunOutcome, log: Callable[[str], None]) -> None:
    """The summary and the locations as plain lines, for a log (the scheduler's stderr, the journal)."""
    for line in summary_lines(outcome.report):
        log(line.plain)
    announce(outcome, log)


def stderr_line(line: str) -> None:
    """One diagnostic line on stderr, flushed (the service's log, cron's mail)."""
    print(line, file=sys.stderr, flush=True)


def mail_report(report: AuditReport, config: Config, stop: threading.Event | None = None) -> None:
    """Render and send (HTML, text and the JSON attached); MailError when it cannot be sent. Once
    `stop` is set (the scheduler's SIGTERM) a failed attempt is not retried."""
    from auditor.reports.email import send_report
    from auditor.reports.html import render_html
    from auditor.reports.json_report import to_json
    from auditor.reports.text import render_text

    assert config.email is not None
    send_report(
        report,
        config.email,
        html=render_html(report),
        text=render_text(report),
        json_text=to_json(report),
        stop=stop,
    )


def deliver(outcome: RunOutcome, config: Config, stop: threading.Event | None = None) -> None:
    """Mail the report, recording on the outcome where it went or why it did not (never raises MailError)."""
    assert config.email is not None
    try:
        mail_report(outcome.report, config, stop)
    except MailError as exc:  # the report is on disk all the same; the exit status says 4
        outcome.mail_error = str(exc)
    else:
        outcome.mailed_to = list(config.email.to)
