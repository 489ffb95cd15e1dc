"""One run of the auditor, the same for `auditor audit`, `auditor demo` and the nightly job
(`schedule --once` and the service): audit, read the history, show the verdict, store, write the
report files, mail, and tell the operator what happened, with the exit status cron and CI read.

A run never loses the results it obtained: storing them in the history, writing each report file
and mailing are separate steps, and a failure of one (a locked database, a full disk, a bug) is one
line and exit status 3 (4 for the mail) while the others still happen (issue 13, item 9).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from auditor.audit import JUDGING, PhaseCallback, run_audit, warm_up, warmed
from auditor.config import Config, Email, Policy, Target
from auditor.errors import EXIT_MAIL, EXIT_OK, EXIT_POLICY, EXIT_UNREACHABLE, AuditorError, MailError
from auditor.evidence_log import WITNESS_FILE, record_head, retention_cutoff
from auditor.facts import LogVerification
from auditor.model import AuditReport, ReportMeta, TargetResult
from auditor.reports import formats
from auditor.reports.formats import ReportFile
from auditor.safe_files import write_atomic

if TYPE_CHECKING:
    from auditor.store import Store

T = TypeVar("T")
# What the run needs once the scan is over, imported in a thread while the scan waits on the network
# (auditor.audit.warm_up): the judging modules, the terminal summary (rich) and the mailer.
AFTER_THE_SCAN = (*JUDGING, "auditor.reports.terminal", "auditor.reports.email")
MailWhen = Literal["never", "always", "as-configured"]  # as-configured: [email] notify decides


def _no_files(report: AuditReport) -> list[ReportFile]:
    return []


def _show_nothing(report: AuditReport) -> None:
    return None


def _store_now(step: Callable[[], str]) -> str:
    return step()


@dataclass
class Plan:
    """What a run does besides auditing. `show` prints the verdict once the history is read (it
    judges renewal and the patch window) and before anything is stored; `files` names the report
    files from the finished report (the nightly names them by its time); `guard` wraps the storing
    step (the service's RunState, so a second signal waits for a commit under way)."""

    config: Config
    meta: ReportMeta = field(default_factory=ReportMeta)
    store: Store | None = None
    prune: bool = False  # the nightly job: prune the evidence log under retention first
    files: Callable[[AuditReport], list[ReportFile]] = _no_files
    show: Callable[[AuditReport], None] = _show_nothing
    mail: MailWhen = "never"
    stop: threading.Event | None = None  # set (SIGTERM): a failed mail attempt is not retried
    guard: Callable[[Callable[[], str]], str] = _store_now
    on_phase: PhaseCallback | None = None
    on_result: Callable[[TargetResult], None] | None = None
    progress: AbstractContextManager[object] = field(default_factory=nullcontext)
    clock: Callable[[], datetime] | None = None  # the scan's time (tests simulate nights)
    audit: Callable[..., AuditReport] = run_audit  # fleet mode: the coordinator (auditor.fleet)
    stored_by_audit: bool = False  # the audit annotated and stored each result (fleet workers): witness only


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


def run(targets: Sequence[Target], plan: Plan) -> RunOutcome:
    """Audit `targets`, then keep the results as `plan` says; each step after the scan records its
    failure on the outcome instead of raising."""
    config, store = plan.config, plan.store
    warm_up(AFTER_THE_SCAN)  # one thread, first: the scan's own warm_up() then finds it under way
    verification, pruned, warnings = None, 0, []
    if store is not None:
        verification, pruned, prune_error = check_history(store, config, prune=plan.prune)
        warnings += [prune_error] if prune_error else []
    with plan.progress:
        report = plan.audit(
            targets,
            config,
            on_phase=plan.on_phase,
            on_result=plan.on_result,
            meta=plan.meta,
            evidence_log=verification,
            clock=plan.clock,
        )
    if plan.prune:
        report.meta.pruned_entries = pruned
    outcome = RunOutcome(report, warnings=warnings)
    # The order that never loses a run: the verdict (history read first: it judges renewal), then
    # storing, then the files (which carry the stored head), then the mail.
    if store is not None and not plan.stored_by_audit:
        keep_step(outcome, lambda: annotate_from_history(report, store, config.policy))
    plan.show(report)
    if store is not None:
        keep = witness_run if plan.stored_by_audit else append_run
        head = keep_step(outcome, lambda: plan.guard(lambda: keep(report, config, store)))
        if head is not None:
            outcome.stored = Stored(len(report.targets), store.name, head)
            if config.metrics.textfile is not None:
                outcome.warnings += refresh_metrics(store, config, config.metrics.textfile)
    for wanted in plan.files(report):
        write_file(outcome, wanted)
    if config.email is not None and _mails(plan.mail, report, config.email):
        deliver(outcome, config.email, plan.stop)
    return outcome


def check_history(store: Store, config: Config, *, prune: bool) -> tuple[LogVerification, int, str | None]:
    """The evidence log verified against the witnessed heads (what 11.6 judges), after pruning
    entries past retention when asked and the log is intact (a broken log is kept whole, for
    investigation). Returns the verification, the entries pruned, and why pruning failed (a
    locked or full database: tried again next run, the scan goes on)."""
    directory, months = config.output.directory, config.history.retention_months
    verification = store.verify_with_heads(directory, months)
    if not (prune and verification.ok):
        return verification, 0, None
    try:
        pruned = store.prune(retention_cutoff(months))
    except AuditorError as exc:
        return verification, 0, f"the history was not pruned (retention; tried again next run): {exc}"
    if pruned:
        verification = store.verify_with_heads(directory, months)
    return verification, pruned, None


def annotate_from_history(report: AuditReport, store: Store, policy: Policy) -> None:
    """The changes since each target's previous stored scan, what history says about renewal, and
    the remediation clock: each failing finding's exposure and 11.4-patch-window (`policy`: the
    configured window, so `audit --store` and the nightly run judge alike). Reads only, and the
    newest stored scan once: the verdict printed before storing includes them."""
    # lazy: the judging modules load during the scan (auditor.audit.warm_up), not before its first
    # handshake; only a run that stores reads the history
    from auditor.changes import annotate_renewal, diff_results, leaf
    from auditor.checks.clauses import SINCE
    from auditor.checks.patch_window import judge_with_history
    from auditor.exposure import history_of

    for result in report.targets:
        url = result.target.url
        stored = store.recent(url)
        previous = next(stored, None)
        newest_first = chain([previous], stored) if previous is not None else stored
        judge_with_history(result, history_of(result, newest_first, SINCE), policy)
        if previous is None:
            continue
        seq, old = previous
        result.changes = diff_results(old, result, previous_id=str(seq))
        # renewal is judged against the last scan that saw a certificate (an unreachable night is skipped)
        with_leaf = (
            old
            if leaf(old)
            else next((r for _, r in islice(store.recent(url, before_seq=seq), 60) if leaf(r)), None)
        )
        annotate_renewal(with_leaf, result)


def append_run(report: AuditReport, config: Config, store: Store) -> str:
    """Append all results to the evidence log in one transaction and witness the new head; returns
    it, also put in report.meta (the report and the email print it)."""
    return witness_run(report, config, store, store.append(report.targets))


def witness_run(report: AuditReport, config: Config, store: Store, head: str | None = None) -> str:
    """Record the log's head (default: the current one) in the report and the witness file."""
    head = head or store.head()
    report.meta.evidence_log_head = head
    report.meta.evidence_log = store.name
    try:
        # the head entry's own scan time: what retention goes by, so a pruned head is told from a deleted one
        seq, scanned_at = store.locate(head) or (0, report.generated_at)
        record_head(config.output.directory, store.name, seq, head, scanned_at)
    except OSError as exc:  # the scans are stored; only this copy of the head is missing
        stderr_line(
            f"auditor: cannot record the evidence log head in {config.output.directory / WITNESS_FILE}: "
            f"{exc.strerror or exc}"
        )
    return head


def record_run(report: AuditReport, config: Config, store: Store) -> str:
    """Read the history into the report, then append it: both storing steps, for callers that
    need no verdict in between. Returns the new head."""
    annotate_from_history(report, store, config.policy)
    return append_run(report, config, store)


def refresh_metrics(store: Store, config: Config, path: Path) -> list[str]:
    """Rewrite [metrics] textfile from the history just stored (node_exporter's textfile collector).
    A failure is one warning line and leaves the exit status alone: nothing obtained is lost (the
    results are stored; `auditor metrics --textfile` writes the file again), and the stale file's
    auditor_last_scan_timestamp_seconds is what monitoring alerts on."""
    try:
        # lazy: prometheus_client only for runs that keep a textfile (`auditor audit` starts without it)
        from auditor.metrics import write_textfile

        directory, months = config.output.directory, config.history.retention_months
        write_textfile(path, store, heads_directory=directory, retention_months=months)
    except OSError as exc:
        return [f"[metrics] textfile {str(path)!r} not rewritten: {exc.strerror or exc}"]
    except Exception as exc:  # noqa: BLE001  (the report files and the mail still go out)
        return [f"[metrics] textfile {str(path)!r} not rewritten: {' '.join(str(exc).split())}"]
    return []


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


def announce(outcome: RunOutcome, log: Callable[[str], None], *, quiet: bool = False) -> None:
    """Where things went, one line each (not with --quiet), and what failed (always)."""
    if not quiet:
        for line in outcome.location_lines():
            log(line)
    for line in outcome.problem_lines():
        log(line)


def log_summary(outcome: RunOutcome, log: Callable[[str], None]) -> None:
    """The summary and the locations as plain lines, for a log (the scheduler's stderr, the journal)."""
    warmed()
    from auditor.reports.terminal import summary_lines  # lazy: loaded during the scan (AFTER_THE_SCAN)

    for line in summary_lines(outcome.report):
        log(line.plain)
    announce(outcome, log)


def stderr_line(line: str) -> None:
    """One diagnostic line on stderr, flushed (the service's log, cron's mail)."""
    print(line, file=sys.stderr, flush=True)


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
    outcome.report.meta.not_stored = outcome.store_error  # the written and mailed report says so
    return None


def write_file(outcome: RunOutcome, wanted: ReportFile) -> None:
    """Render one report and write it (atomically, owner-only; or on stdout), recording it on the
    outcome; a failure is one line in `outcome.write_errors` and the other files are still written."""
    path = wanted.path
    if path is None:
        text = formats.render(outcome.report, wanted.format)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        write_atomic(path, formats.render(outcome.report, wanted.format))
    except OSError as exc:
        outcome.write_errors.append(f"{wanted.option}: cannot write {str(path)!r} ({exc.strerror or exc})")
    except Exception as exc:  # noqa: BLE001  (one report that cannot be rendered must not cost the others)
        outcome.write_errors.append(
            f"{wanted.option}: cannot write {str(path)!r} (internal error: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())})"
        )
    else:
        outcome.written.append(path)


def should_notify(report: AuditReport, notify: str) -> bool:
    """[email] notify: always, on-failure (a target failing or not audited), or on-change (a
    target's result differs from its previous stored scan; a first scan counts)."""
    if notify == "always":
        return True
    if notify == "on-failure":
        return any(t.error or not t.compliant for t in report.targets)
    return any(t.changes is None or t.changes.changes for t in report.targets)  # on-change


def _mails(when: MailWhen, report: AuditReport, settings: Email) -> bool:
    return when == "always" or (when == "as-configured" and should_notify(report, settings.notify))


def mail_report(report: AuditReport, settings: Email, stop: threading.Event | None = None) -> None:
    """Render and send (HTML, text and the JSON attached); MailError when it cannot be sent. Once
    `stop` is set (the scheduler's SIGTERM) a failed attempt is not retried."""
    warmed()
    from auditor.reports.email import send_report  # lazy: loaded during the scan (AFTER_THE_SCAN)

    send_report(
        report,
        settings,
        html=formats.render(report, "html"),
        text=formats.render(report, "text"),
        json_text=formats.render(report, "json"),
        stop=stop,
    )


def deliver(outcome: RunOutcome, settings: Email, stop: threading.Event | None = None) -> None:
    """Mail the report, recording on the outcome where it went or why it did not (never raises MailError)."""
    try:
        mail_report(outcome.report, settings, stop)
    except MailError as exc:  # the report is on disk all the same; the exit status says 4
        outcome.mail_error = str(exc)
    else:
        outcome.mailed_to = list(settings.to)
