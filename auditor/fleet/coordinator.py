"""The scheduler's side of a fleet run: take the night in the database, queue one task per target,
wait until every target has a stored result or the run deadline passed, and hand the one report
to the same pipeline as the embedded mode (auditor.app.run: show, witness, write, mail).

The workers annotate and store each result themselves (auditor.fleet.results), so the pipeline
only witnesses the log's head. A target with no result by the deadline is stored and reported as
"not audited: worker lost", never left out.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from auditor import __version__
from auditor.app import Plan, RunOutcome, run
from auditor.config import Config, Schedule, Target
from auditor.cron import make_trigger
from auditor.errors import StoreError
from auditor.facts import LogVerification
from auditor.fleet.engine import TASK, celery_app, check_broker
from auditor.fleet.results import (
    claim_night,
    finish_night,
    prepare,
    store_result,
    stored_count,
    stored_seqs,
)
from auditor.fleet.settings import FleetSettings
from auditor.model import AuditReport, ReportMeta, TargetRef, TargetResult
from auditor.store import Store
from auditor.targets import TargetError, parse_url

POLL_SECONDS = 0.5
WORKER_LOST = (
    "not audited: worker lost (no result from a worker by the run deadline, [fleet] run_deadline = {:g} s)"
)


def night_of(schedule: Schedule, now: datetime) -> datetime:
    """The scheduled time a run started at `now` belongs to: the latest [schedule] cron time in the
    last day (or misfire grace time, if longer), else `now` to the minute. Two schedulers firing for
    the same night, or cron starting `schedule --once` on two machines, name the same night."""
    trigger = make_trigger(schedule.cron, schedule.timezone)
    window = timedelta(seconds=max(86400, schedule.misfire_grace_time))
    night, fire = None, trigger.get_next_fire_time(None, now - window)
    for _ in range(100_000):  # a cron line firing every second: one day of fire times at most
        if fire is None or fire > now:
            break
        night, fire = fire, trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return (night or now.replace(second=0, microsecond=0)).astimezone(UTC)


def _lost(target: Target, why: str) -> TargetResult:
    try:
        parsed = parse_url(target.url)
        ref = TargetRef(url=parsed.url, host=parsed.host, port=parsed.port, ip=target.ip, name=target.name)
    except (TargetError, ValueError):
        ref = TargetRef(url=target.url, host="", port=0, ip=target.ip, name=target.name)
    return TargetResult(target=ref, started_at=datetime.now(UTC), duration_s=0.0, compliant=False, error=why)


class Coordinator:
    """Plan.audit for a fleet run: the same signature as auditor.audit.run_audit."""

    def __init__(self, store: Store, settings: FleetSettings, run_id: str) -> None:
        self.store, self.settings, self.run_id = store, settings, run_id

    def audit(
        self,
        targets: Sequence[Target],
        config: Config,
        on_phase: Callable[[str, str], None] | None = None,
        on_result: Callable[[TargetResult], None] | None = None,
        meta: ReportMeta | None = None,
        evidence_log: LogVerification | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> AuditReport:
        deadline = time.monotonic() + self.settings.run_deadline
        unqueued = self._enqueue(targets, evidence_log)
        for index, why in unqueued.items():
            store_result(self.store, config, self.run_id, index, _lost(targets[index], why))
        self._wait(len(targets), deadline)
        seqs = stored_seqs(self.store, self.run_id)
        for index in sorted(set(range(len(targets))) - set(seqs)):
            lost = _lost(targets[index], WORKER_LOST.format(self.settings.run_deadline))
            store_result(self.store, config, self.run_id, index, lost)  # a late worker's result may win
        seqs = stored_seqs(self.store, self.run_id)
        results = []
        for index in range(len(targets)):
            result = self.store.get(seqs[index])
            if result is None:
                raise StoreError(f"history database {self.store.name}: entry {seqs[index]} is gone")
            results.append(result)
            if on_result:
                on_result(result)
        return AuditReport(
            generated_at=clock() if clock else datetime.now(UTC),
            tool_version=__version__,
            targets=results,
            meta=meta or ReportMeta(),
        )

    def _enqueue(self, targets: Sequence[Target], evidence_log: LogVerification | None) -> dict[int, str]:
        """Publish one task per target; returns the targets that could not be queued, with why."""
        app = celery_app(self.settings)
        log = dataclasses.asdict(evidence_log) if evidence_log else None
        failed: dict[int, str] = {}
        for index, target in enumerate(targets):
            try:
                app.send_task(
                    TASK,
                    args=[self.run_id, index, target.model_dump(mode="json"), log],
                    queue=self.settings.queue,
                )
            except Exception as exc:  # noqa: BLE001  (kombu's connection errors vary by transport)
                failed[index] = f"not audited: the task could not be queued ({type(exc).__name__}: {exc})"
        return failed

    def _wait(self, count: int, deadline: float) -> None:
        while stored_count(self.store, self.run_id) < count and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)


def run_fleet(plan: Plan, store: Store, settings: FleetSettings) -> RunOutcome:
    """The nightly run in fleet mode: claim the night (AuditorError when another scheduler has it),
    then auditor.app.run with the workers auditing and storing."""
    prepare(store)
    check_broker(celery_app(settings), settings.broker)
    run_id = uuid.uuid4().hex
    now = plan.clock() if plan.clock else datetime.now(UTC)
    claim_night(store, night_of(plan.config.schedule, now), run_id, settings.queue)
    coordinator = Coordinator(store, settings, run_id)
    outcome = run(
        plan.config.targets, dataclasses.replace(plan, audit=coordinator.audit, stored_by_audit=True)
    )
    finish_night(store, run_id)
    return outcome
