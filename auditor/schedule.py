"""Nightly scans: APScheduler 3 with a persistent SQLAlchemy job store, so a night missed while
the machine was off runs once at start-up (coalesce, misfire grace), never twice at once
(max_instances=1, plus a lock file against a second scheduler on the same database).
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from auditor.errors import AuditorError, ConfigError

JOB_ID = "nightly-audit"


def make_trigger(cron: str, tz: str):  # noqa: ANN201
    """A CronTrigger from 5 crontab fields, or 6 with seconds first (handy to test)."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(cron, timezone=tz)
    if len(fields) == 6:
        second, minute, hour, day, month, dow = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=dow,
                           timezone=tz)
    raise ValueError(f"expected 5 fields (or 6 with seconds first), got {len(fields)}")


def record_run(report, config, store) -> str:  # noqa: ANN001
    """Attach changes since the previous scan and the renewal verdict, then append to the log.
    Returns the new head hash (also put in report.meta, for the report and the email)."""
    from auditor.changes import annotate_renewal, diff_results

    for result in report.targets:
        previous = store.latest(result.target.url)
        if previous is not None:
            seq, old = previous
            result.changes = diff_results(old, result, previous_id=str(seq))
            annotate_renewal(old, result)
    head = store.append(report.targets)
    report.meta["evidence_log_head"] = head
    return head


def _should_notify(report, notify: str) -> bool:  # noqa: ANN001
    if notify == "always":
        return True
    if notify == "on-failure":
        return any(t.error or not t.compliant for t in report.targets)
    return any(t.changes is None or t.changes.changes for t in report.targets)  # on-change (first run counts)


def nightly_job(config_path: str) -> str:
    """The scheduled job: audit every target, store, prune, write and mail the report."""
    from auditor.audit import config_digest, run_audit
    from auditor.config import load_config
    from auditor.store import Store, retention_cutoff
    from reports.html import render_html
    from reports.json_report import to_json, write_atomic

    config = load_config(Path(config_path))
    store = Store(config.history.database)
    verification = store.verify()
    report = run_audit(config.targets, config, meta={"config_sha256": config_digest(Path(config_path)),
                                                     "config_path": config_path, "run": "nightly"},
                       evidence_log=verification)
    head = record_run(report, config, store)
    pruned = store.prune(retention_cutoff(config.history.retention_months))
    report.meta["pruned_entries"] = pruned
    stamp = report.generated_at.strftime("%Y%m%dT%H%M%SZ")
    directory = config.output.directory
    write_atomic(directory / f"nightly-{stamp}.json", to_json(report))
    write_atomic(directory / f"nightly-{stamp}.html", render_html(report))
    write_atomic(directory / "latest.json", to_json(report))
    if config.email is not None and _should_notify(report, config.email.notify):
        from auditor.commands.audit import mail_report
        from auditor.errors import MailError

        try:
            mail_report(report, config)
        except MailError as exc:
            print(f"auditor: {exc}", flush=True)
    print(f"auditor: nightly run stored {len(report.targets)} result(s); evidence log head {head}", flush=True)
    return head


class SchedulerLock:
    """An exclusive lock beside the history database: a second scheduler refuses to start."""

    def __init__(self, database: str) -> None:
        name = database if "://" not in database else str(Path.home() / ".auditor-scheduler")
        self.path = Path(name + ".lock")
        self.handle = None

    def __enter__(self) -> "SchedulerLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+")  # noqa: SIM115
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise AuditorError(f"another scheduler (pid {holder}) already uses {self.path.with_suffix('')}; "
                               "refusing to start") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def _jobstore_url(database: str) -> str:
    return database if "://" in database else f"sqlite:///{database}.jobs"


def build_scheduler(config, config_path: Path):  # noqa: ANN001, ANN201
    """A paused BackgroundScheduler holding the nightly job. An existing job keeps its stored next
    run time (that is how a missed night is caught up); a changed cron replaces the trigger."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    schedule = config.schedule
    trigger = make_trigger(schedule.cron, schedule.timezone)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=_jobstore_url(config.history.database))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": schedule.misfire_grace_time},
        timezone=schedule.timezone,
    )
    scheduler.start(paused=True)
    job = scheduler.get_job(JOB_ID)
    if job is None:
        scheduler.add_job(nightly_job, trigger, args=[str(config_path.resolve())], id=JOB_ID, name="nightly audit")
    elif str(job.trigger) != str(trigger) or job.args != (str(config_path.resolve()),):
        scheduler.modify_job(JOB_ID, args=[str(config_path.resolve())])
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
    """Run until SIGTERM/SIGINT; a scan in progress is finished and stored before exiting."""
    if not config.targets:
        raise ConfigError(f"{config_path}: no [[targets]] to audit")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with SchedulerLock(config.history.database):
        scheduler = build_scheduler(config, config_path)
        job = scheduler.get_job(JOB_ID)
        log(f"auditor: scheduler started; next run {job.next_run_time:%Y-%m-%d %H:%M:%S %Z} "
            f"({config.schedule.cron}, {config.schedule.timezone})")
        scheduler.resume()
        stop.wait()
        log("auditor: stopping; waiting for a scan in progress to be stored")
        scheduler.shutdown(wait=True)
    log("auditor: scheduler stopped")
    return 0
