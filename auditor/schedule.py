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
import socket
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from auditor.app import Plan, RunOutcome, log_summary, run, stderr_line
from auditor.config import Config, config_digest, load_config
from auditor.cron import make_trigger
from auditor.errors import AuditorError, ConfigError
from auditor.fleet.coordinator import run_fleet
from auditor.fleet.settings import fleet_settings
from auditor.locations import check_database_place, check_witness_place, ensure_writable
from auditor.model import AuditReport, ReportMeta
from auditor.reports import formats
from auditor.reports.formats import ReportFile
from auditor.reports.json_report import run_stem
from auditor.safe_files import UnsafePath, check_directory, open_own_file
from auditor.store import Store, create_owner_only, display_name

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


def run_nightly(config_path: str, clock: Callable[[], datetime] | None = None) -> RunOutcome:
    """The nightly job: verify the log, prune it (retention), audit every target, store the results
    with their changes, write and mail the report (auditor.app.run). Prints nothing: the caller
    shows the outcome (`schedule --once` on stdout/stderr, the service in its log). Raises, before
    scanning, when the history cannot be opened or an output path cannot be written; after the
    scan, a failure to prune, store or write is recorded on the outcome and the report still goes
    out. `clock`: the scan's time (tests simulate nights with it; default: now). In fleet mode
    ([fleet] broker) the workers audit and store (auditor.fleet); a night another scheduler sharing
    the database took already is an AuditorError."""
    config = load_config(Path(config_path))
    fleet = fleet_settings(config, config_path)
    directory = config.output.directory
    ensure_writable(directory, "output.directory", directory=True)
    for name, path in formats.configured(config.output):  # [output] junit / sarif / csv
        ensure_writable(path, f"output.{name}")
    check_database_place(config)
    with Store(config.history.database) as store:
        check_witness_place(config)

        def files(report: AuditReport) -> list[ReportFile]:
            stem = run_stem("nightly", report.generated_at)
            return [
                ReportFile(directory / f"{stem}.json", "json", "output.directory"),
                ReportFile(directory / f"{stem}.html", "html", "output.directory"),
                ReportFile(directory / "latest.json", "json", "output.directory"),
                *(
                    ReportFile(path, name, f"output.{name}")
                    for name, path in formats.configured(config.output)
                ),
            ]

        plan = Plan(
            config,
            meta=ReportMeta(
                config_sha256=config_digest(Path(config_path)), config_path=config_path, run="nightly"
            ),
            store=store,
            prune=True,
            files=files,
            mail="as-configured",
            stop=RUN.stopping,  # after SIGTERM a failed mail attempt is not retried
            guard=RUN.store,
            clock=clock,
        )
        if fleet is not None:
            return run_fleet(plan, store, fleet)
        return run(config.targets, plan)


def nightly_job(config_path: str) -> int | None:
    """What the scheduler calls: run_nightly, then its summary in the log (stderr: one line per
    target, the total, where things were written); a failure is one line (the service keeps running
    and tries again the next night). Returns the run's exit status, None when it failed."""
    RUN.begin()
    try:
        outcome = run_nightly(config_path)
    except AuditorError as exc:
        stderr_line(f"auditor: nightly run failed: {exc}")
        return None
    except Exception as exc:  # noqa: BLE001  (a bug must not stop the service)
        stderr_line(f"auditor: nightly run failed: internal error: {type(exc).__name__}: {exc}")
        return None
    finally:
        RUN.end()
    log_summary(outcome, stderr_line)
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
        self.handle: TextIO | None = None

    def __enter__(self) -> SchedulerLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_directory(self.path.parent)
            handle = os.fdopen(open_own_file(self.path, os.O_RDWR), "r+")
        except UnsafePath as exc:
            raise AuditorError(f"refusing the scheduler lock {self.path}: {exc.strerror}") from None
        except OSError as exc:
            raise AuditorError(f"cannot create the scheduler lock {self.path} ({exc.strerror})") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AuditorError(
                f"another scheduler (pid {holder}) already uses {display_name(self.database)}; "
                "refusing to start"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle:
            self.handle.seek(0)
            self.handle.truncate()
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def scheduler_lock(config: Config) -> AbstractContextManager[object]:
    """The lock file of the embedded mode; fleet mode locks each night in the database instead
    (auditor.fleet.results.claim_night), so schedulers on several machines may share it."""
    return nullcontext() if config.fleet.broker else SchedulerLock(config.history.database)


def _jobstore_url(database: str) -> str:
    """The job store: a second SQLite file beside the history (or the same server for a URL)."""
    if "://" in database:
        return database
    create_owner_only(Path(database + ".jobs"))
    return f"sqlite:///{database}.jobs"


def build_scheduler(config: Config, config_path: Path) -> BackgroundScheduler:
    """A paused BackgroundScheduler holding the nightly job. An existing job keeps its stored next
    run time (that is how a night missed while the machine was off is caught up, once: coalesce);
    a changed cron, timezone or grace time in the config replaces the stored one."""
    schedule = config.schedule
    trigger = make_trigger(schedule.cron, schedule.timezone)
    args = (str(config_path.resolve()),)
    defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": schedule.misfire_grace_time}
    # fleet mode: every scheduler machine keeps its own schedule in the shared database
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())
    table = f"apscheduler_jobs_{host}"[:63] if config.fleet.broker else "apscheduler_jobs"
    scheduler = BackgroundScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(url=_jobstore_url(config.history.database), tablename=table)
        },
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


def next_runs(config: Config, count: int = 5) -> list[datetime]:
    trigger = make_trigger(config.schedule.cron, config.schedule.timezone)
    runs, previous, now = [], None, datetime.now(UTC)
    for _ in range(count):
        nxt = trigger.get_next_fire_time(previous, previous or now)
        if nxt is None:
            break
        runs.append(nxt)
        previous = nxt
    return runs


def serve(config: Config, config_path: Path, log: Callable[[str], None]) -> int:
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
    with scheduler_lock(config):
        scheduler = build_scheduler(config, config_path)
        job = scheduler.get_job(JOB_ID)
        when = job.next_run_time
        late = (datetime.now(UTC) - when).total_seconds()
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
