"""Nightly scans: APScheduler 3 with a persistent SQLAlchemy job store, so a night missed while
the machine was off runs once at start-up (coalesce, misfire grace), never twice at once
(max_instances=1, plus a lock file against a second scheduler on the same database).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

from auditor.errors import AuditorError, ConfigError

JOB_ID = "nightly-audit"


class RunState:
    """Where the service's nightly run stands, so that a second signal says the truth about it:
    before the history commit the run is abandoned unstored, a commit under way is waited for,
    after it only the rest (report files, mail) is abandoned. `stopping` is set by the first
    signal: a mail attempt in progress keeps its deadline, no other is made."""

    def __init__(self) -> None:
        self.storing = threading.Lock()
        self.stopping = threading.Event()
        self.running = False
        self.stored = False

    def begin(self) -> None:
        self.running, self.stored = True, False

    def end(self) -> None:
        self.running = False

    def store(self, step: Callable[[], str]) -> str:
        """Run the storing step; a second signal meanwhile waits for it to finish."""
        with self.storing:
            head = step()
            self.stored = True
            return head

    def abandon(self, wait: float = 30.0) -> str:
        """The line to log before the process ends now; from here on no run can store anything
        (the storing lock is kept)."""
        if not self.running:
            return "auditor: second signal: stopping now"
        if not self.storing.acquire(timeout=wait):
            return (
                "auditor: second signal: stopping now, while the run in progress is being stored "
                "(`auditor history` tells whether it was)"
            )
        if self.stored:
            return (
                "auditor: second signal: stopping now; the run in progress is already stored in the history "
                "(what is left of it, report files or mail, is abandoned)"
            )
        return "auditor: second signal: abandoning the scan in progress (it is not stored)"


RUN = RunState()


_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]  # crontab numbering: 0 and 7 are Sunday


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field in APScheduler 3's terms. APScheduler 3 reads the numbers as
    0 = Monday (its issue 286), so `1-5` would run Tuesday to Saturday: numbers become day names."""
    items = []
    for item in field.lower().split(","):
        spec, _, step = item.partition("/")
        if spec != "*" and not spec.replace("-", "").isdigit():
            items.append(item)  # names (mon-fri) mean the same to both
            continue
        first, _, last = (spec if spec != "*" else "0-6").partition("-")
        low, high = int(first), int(last or (6 if step else first))
        if not (0 <= low <= 7 and 0 <= high <= 7 and low <= high) or (step and not step.isdigit()):
            raise ValueError(f"day of week {item!r}: use 0-7 (0 and 7 are Sunday) or names")
        if spec == "*" and not step:
            items.append("*")
            continue
        items += [_CRON_DAYS[d] for d in range(low, high + 1, int(step or 1))]
    return ",".join(dict.fromkeys(items))


def make_trigger(cron: str, tz: str):  # noqa: ANN201
    """A CronTrigger from 5 crontab fields, or 6 with seconds first (handy to test), with crontab's
    meaning of weekday numbers."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ValueError(f"expected 5 fields (or 6 with seconds first), got {len(fields)}")
    second, minute, hour, day, month, dow = fields
    return CronTrigger(
        second=second,
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(dow),
        timezone=tz,
    )


def record_run(report, config, store) -> str:  # noqa: ANN001
    """Attach to each result the changes since its previous stored scan and what history says about
    renewal, then append all results to the evidence log in one transaction. Returns the new head
    hash, also put in report.meta (the report and the email print it)."""
    annotate_from_history(report, store, config.policy)
    return append_run(report, config, store)


def annotate_from_history(report, store, policy) -> None:  # noqa: ANN001
    """The changes since each target's previous stored scan, what history says about renewal, and
    the remediation clock: each failing finding's exposure and 11.4-patch-window (`policy`: the
    configured window, so `audit --store` and the nightly run judge alike). Reads only: the verdict
    printed before storing includes them."""
    from auditor.changes import annotate_renewal, diff_results, leaf
    from auditor.exposure import history_of
    from auditor.checks.clauses import SINCE
    from auditor.checks.patch_window import judge_with_history

    for result in report.targets:
        judge_with_history(result, history_of(result, store.recent(result.target.url), SINCE), policy)
        history = store.recent(result.target.url)
        previous = next(history, None)
        if previous is None:
            continue
        seq, old = previous
        result.changes = diff_results(old, result, previous_id=str(seq))
        # renewal is judged against the last scan that saw a certificate (an unreachable night is skipped)
        with_leaf = old if leaf(old) else next((r for _, r in islice(history, 60) if leaf(r)), None)
        annotate_renewal(with_leaf, result)


def append_run(report, config, store) -> str:  # noqa: ANN001
    """Append all results to the evidence log in one transaction and witness the new head; returns it."""
    from auditor.evidence_log import WITNESS_FILE, record_head

    head = store.append(report.targets)
    report.meta["evidence_log_head"] = head
    report.meta["evidence_log"] = store.name
    try:
        # the head entry's own scan time: what retention goes by, so a pruned head is told from a deleted one
        seq, scanned_at = store.locate(head) or (0, report.generated_at)
        record_head(config.output.directory, store.name, seq, head, scanned_at)
    except OSError as exc:  # the scans are stored; only this copy of the head is missing
        print(
            f"auditor: cannot record the evidence log head in {config.output.directory / WITNESS_FILE}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
            flush=True,
        )
    return head


def _should_notify(report, notify: str) -> bool:  # noqa: ANN001
    if notify == "always":
        return True
    if notify == "on-failure":
        return any(t.error or not t.compliant for t in report.targets)
    return any(t.changes is None or t.changes.changes for t in report.targets)  # on-change (first run counts)


def run_nightly(config_path: str, clock: Callable[[], datetime] | None = None):  # noqa: ANN201  (RunOutcome)
    """The nightly job: verify the log, prune it (retention), audit every target, store the results
    with their changes, write and mail the report. Prints nothing: the caller shows the outcome
    (`schedule --once` on stdout/stderr, the service in its log). Raises, before scanning, when the
    history cannot be opened or an output path cannot be written; after the scan, a failure to
    prune, store or write is recorded on the outcome and the report still goes out. `clock`: the
    scan's time (tests simulate nights with it; default: now)."""
    from auditor.audit import config_digest, run_audit
    from auditor.config import load_config
    from auditor.locations import (
        check_database_place,
        check_witness_place,
        ensure_writable,
    )
    from auditor.outcome import RunOutcome, Stored, deliver, keep_step, write_file
    from auditor.store import Store, retention_cutoff
    from auditor.reports import formats
    from auditor.reports.html import render_html
    from auditor.reports.json_report import run_stem, to_json

    config = load_config(Path(config_path))
    directory = config.output.directory
    ensure_writable(directory, "output.directory", directory=True)
    for name, path in formats.configured(config.output):  # [output] junit / sarif / csv
        ensure_writable(path, f"output.{name}")
    check_database_place(config)
    store = Store(config.history.database)
    check_witness_place(config)
    months = config.history.retention_months
    verification = store.verify_with_heads(directory, months)
    pruned, prune_error = 0, None
    if verification.ok:  # a broken log is kept whole, for investigation
        try:
            pruned = store.prune(retention_cutoff(months))
        except AuditorError as exc:  # a locked or full database: tried again next run, the scan goes on
            prune_error = f"the history was not pruned (retention; tried again next run): {exc}"
        if pruned:
            verification = store.verify_with_heads(directory, months)
    report = run_audit(
        config.targets,
        config,
        meta={
            "config_sha256": config_digest(Path(config_path)),
            "config_path": config_path,
            "run": "nightly",
        },
        evidence_log=verification,
        clock=clock,
    )
    report.meta["pruned_entries"] = pruned
    outcome = RunOutcome(report, warnings=[prune_error] if prune_error else [])
    keep_step(outcome, lambda: annotate_from_history(report, store, config.policy))
    head = keep_step(outcome, lambda: RUN.store(lambda: append_run(report, config, store)))
    if head is not None:
        outcome.stored = Stored(len(report.targets), store.name, head)
    stem = run_stem("nightly", report.generated_at)
    for path, render in (
        (directory / f"{stem}.json", lambda: to_json(report)),
        (directory / f"{stem}.html", lambda: render_html(report)),
        (directory / "latest.json", lambda: to_json(report)),
    ):
        write_file(outcome, path, render, "output.directory")
    for name, path in formats.configured(config.output):  # [output] junit / sarif / csv
        write_file(outcome, path, lambda name=name: formats.render(report, name), f"output.{name}")
    if config.email is not None and _should_notify(report, config.email.notify):
        deliver(outcome, config, RUN.stopping)  # after SIGTERM a failed attempt is not retried
    return outcome


def nightly_job(config_path: str) -> int | None:
    """What the scheduler calls: run_nightly, then its summary in the log (stderr: one line per
    target, the total, where things were written); a failure is one line (the service keeps running
    and tries again the next night). Returns the run's exit status, None when it failed."""
    from auditor.outcome import log_summary
    from auditor.outcome import stderr_line as _log

    RUN.begin()
    try:
        outcome = run_nightly(config_path)
    except AuditorError as exc:
        _log(f"auditor: nightly run failed: {exc}")
        return None
    except Exception as exc:  # noqa: BLE001  (a bug must not stop the service)
        _log(f"auditor: nightly run failed: internal error: {type(exc).__name__}: {exc}")
        return None
    finally:
        RUN.end()
    log_summary(outcome, _log)
    return outcome.exit_code()


class SchedulerLock:
    """An exclusive lock (flock) beside the history database: a second scheduler, or `--once` while
    the service runs, refuses to start. With a database URL the lock file is in ~/.cache/auditor,
    so it guards one machine only. The lock file is opened without following links and only when it
    is this user's own regular file (auditor.safe_files): a link planted in its place is refused,
    never truncated through."""

    def __init__(self, database: str) -> None:
        if "://" in database:
            digest = hashlib.sha256(database.encode()).hexdigest()[:16]
            self.path = Path.home() / ".cache" / "auditor" / f"scheduler-{digest}.lock"
        else:
            self.path = Path(database + ".lock")
        self.database = database
        self.handle = None

    def __enter__(self) -> "SchedulerLock":
        from auditor.safe_files import UnsafePath, check_directory, open_own_file
        from auditor.store import display_name

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_directory(self.path.parent)
            self.handle = os.fdopen(open_own_file(self.path, os.O_RDWR), "r+")
        except UnsafePath as exc:
            raise AuditorError(f"refusing the scheduler lock {self.path}: {exc.strerror}") from None
        except OSError as exc:
            raise AuditorError(f"cannot create the scheduler lock {self.path} ({exc.strerror})") from None
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.handle.read().strip() or "unknown"
            self.handle.close()
            raise AuditorError(
                f"another scheduler (pid {holder}) already uses {display_name(self.database)}; "
                "refusing to start"
            ) from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle:
            self.handle.seek(0)
            self.handle.truncate()
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def _jobstore_url(database: str) -> str:
    """The job store: a second SQLite file beside the history (or the same server for a URL)."""
    if "://" in database:
        return database
    from auditor.store import create_owner_only

    create_owner_only(Path(database + ".jobs"))
    return f"sqlite:///{database}.jobs"


def build_scheduler(config, config_path: Path):  # noqa: ANN001, ANN201
    """A paused BackgroundScheduler holding the nightly job. An existing job keeps its stored next
    run time (that is how a night missed while the machine was off is caught up, once: coalesce);
    a changed cron, timezone or grace time in the config replaces the stored one."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    schedule = config.schedule
    trigger = make_trigger(schedule.cron, schedule.timezone)
    args = (str(config_path.resolve()),)
    defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": schedule.misfire_grace_time}
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=_jobstore_url(config.history.database))},
        job_defaults=defaults,
        timezone=schedule.timezone,
    )
    scheduler.start(paused=True)
    job = scheduler.get_job(JOB_ID)
    if job is None:
        scheduler.add_job(nightly_job, trigger, args=args, id=JOB_ID, name="nightly audit", **defaults)
        return scheduler
    stale = {k: v for k, v in {**defaults, "args": args}.items() if getattr(job, k) != v}
    if stale:
        scheduler.modify_job(JOB_ID, **stale)
    if repr(job.trigger) != repr(trigger):
        scheduler.reschedule_job(JOB_ID, trigger=trigger)
    return scheduler


def next_runs(config, count: int = 5) -> list[datetime]:  # noqa: ANN001
    trigger = make_trigger(config.schedule.cron, config.schedule.timezone)
    runs, previous, now = [], None, datetime.now(timezone.utc)
    for _ in range(count):
        nxt = trigger.get_next_fire_time(previous, previous or now)
        if nxt is None:
            break
        runs.append(nxt)
        previous = nxt
    return runs


def serve(config, config_path: Path, log: Callable[[str], None]) -> int:  # noqa: ANN001
    """Run until SIGTERM/SIGINT. A scan in progress is finished and stored before exiting, its mail
    gets no retry (the attempt in progress ends by its deadline); a second signal ends the process
    at once and says whether the run was stored (the store writes in one transaction)."""
    if not config.targets:
        raise ConfigError(f"{config_path}: no [[targets]] to audit")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="auditor: %(name)s: %(message)s")
    stop = RUN.stopping
    stop.clear()

    def on_signal(*_: object) -> None:
        if stop.is_set():
            log(RUN.abandon())
            os._exit(130)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    with SchedulerLock(config.history.database):
        scheduler = build_scheduler(config, config_path)
        job = scheduler.get_job(JOB_ID)
        when = job.next_run_time
        late = (datetime.now(timezone.utc) - when).total_seconds()
        note = ""
        if late > 0:
            note = (
                " (missed while stopped: runs now)"
                if late <= job.misfire_grace_time
                else " (missed by more than misfire_grace_time: skipped)"
            )
        log(
            f"auditor: scheduler started; next run {when:%Y-%m-%d %H:%M:%S %Z}{note} "
            f"({config.schedule.cron}, {config.schedule.timezone})"
        )
        scheduler.resume()
        stop.wait()
        log("auditor: stopping; waiting for a scan in progress to be stored")
        scheduler.shutdown(wait=True)
    log("auditor: scheduler stopped")
    return 0
