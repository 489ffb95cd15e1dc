"""The Celery application both sides build from the same config: the scheduler publishes tasks
with it, `auditor worker` consumes them. Celery is imported here only, when fleet mode runs.

Delivery is at least once: a task is acknowledged after it ran (acks_late), a worker takes one
task at a time beyond those it runs (prefetch 1), and a task held by a worker that died is
delivered again after the visibility timeout (kombu's Redis transport restores unacknowledged
messages older than that; the sweep runs every `restore_interval`). Storing is idempotent by
(run, target), so a second delivery never stores twice (auditor.fleet.results).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from auditor.errors import AuditorError, ConfigError
from auditor.fleet.settings import FleetSettings

if TYPE_CHECKING:
    from celery import Celery

TASK = "auditor.fleet.audit_target"
EXTRA = "pip install 'tls-posture-auditor[fleet]'"


def restore_interval(settings: FleetSettings) -> int:
    """Seconds between two sweeps for tasks of dead workers: a quarter of the timeout, 1 to 10."""
    return int(min(10, max(1, settings.visibility_timeout // 4)))


def celery_app(settings: FleetSettings) -> Celery:
    try:
        # lazy: Celery and kombu (~0.3 s) only in fleet mode; the embedded mode never loads them
        from celery import Celery
    except ImportError:
        raise ConfigError(f"[fleet] broker is set but Celery is not installed ({EXTRA})") from None
    app = Celery("auditor", broker=settings.broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # results go to the history database, not to a result backend
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": restore_interval(settings),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        # Broker connection lost: the audits in progress finish and store (the results go to the
        # database, not the broker); their messages are restored to the queue, or gone with a
        # broker that kept none, and then reported as worker lost at the deadline.
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def check_broker(app: Celery, broker: str, timeout: float = 5.0) -> None:
    """AuditorError when the broker cannot be reached: the scheduler says so before it takes the
    night (a run whose tasks could not be queued would hold the night, and a retry be refused)."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
    except Exception as exc:  # noqa: BLE001  (kombu's errors vary by transport)
        shown = make_url(broker).render_as_string(hide_password=True) if "@" in broker else broker
        raise AuditorError(
            f"[fleet] broker {shown} cannot be reached ({type(exc).__name__}: {' '.join(str(exc).split())}); "
            "the night was not started: run it again once the broker is up"
        ) from None
