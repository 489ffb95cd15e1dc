"""`auditor worker`: a Celery worker that audits the targets the scheduler queues and stores each
result in the shared history (auditor.fleet.results), on any machine with the same config.

The pool is threads: an audit waits on the network nearly all the time and the engine already
runs its connections in threads, so threads give the concurrency without a process (and a
database connection pool, and the judging modules' memory) per slot; prefork would only pay off
for CPU-bound tasks. One database engine is shared by the worker's threads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from auditor.audit import audit_target
from auditor.config import Config, Target
from auditor.errors import ConfigError, StoreError
from auditor.facts import LogVerification
from auditor.fleet.engine import TASK, celery_app
from auditor.fleet.results import already_done, open_store, store_result
from auditor.fleet.settings import fleet_settings
from auditor.store import Store

log = logging.getLogger("auditor.worker")


def audit_and_store(
    config: Config,
    store: Store,
    run_id: str,
    index: int,
    target: dict[str, Any],
    evidence_log: dict[str, Any] | None,
) -> bool:
    """One task: audit the target with the engine, then store it unless this run already holds it."""
    verification = LogVerification(**evidence_log) if evidence_log else None
    parsed = Target.model_validate(target)
    if (why := already_done(store, run_id, index)) is not None:
        log.info("run %s: target %d %s: not audited again, %s", run_id, index, parsed.url, why)
        return False
    log.info("run %s: auditing target %d %s", run_id, index, parsed.url)
    result = audit_target(parsed, config, evidence_log=verification)
    stored = store_result(store, config, run_id, index, result)
    log.info(
        "run %s: target %d %s", run_id, index, "stored" if stored else "was already stored (delivered twice)"
    )
    return stored


def run_worker(config: Config, config_path: Path, concurrency: int) -> int:
    """Consume the fleet queue until stopped (SIGTERM: finish the tasks in progress; Celery's warm
    shutdown). Raises ConfigError when the config has no [fleet] broker."""
    settings = fleet_settings(config, str(config_path))
    if settings is None:
        raise ConfigError(f"{config_path}: `auditor worker` needs [fleet] broker (a redis:// URL)")
    store = open_store(config.history.database)
    app = celery_app(settings)

    @app.task(  # type: ignore[untyped-decorator]
        name=TASK, autoretry_for=(StoreError,), retry_backoff=True, max_retries=5
    )
    def audit_task(
        run_id: str, index: int, target: dict[str, Any], evidence_log: dict[str, Any] | None
    ) -> None:
        audit_and_store(config, store, run_id, index, target, evidence_log)

    logging.basicConfig(level=logging.INFO, format="auditor: %(name)s: %(message)s")
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--queues={settings.queue}",
                f"--hostname=auditor-{os.getpid()}@%h",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        store.close()
    return 0
