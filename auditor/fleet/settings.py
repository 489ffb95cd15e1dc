"""What fleet mode takes from the config: the broker, a history every machine shares, and the
two time limits (how long a dead worker's task stays invisible, how long a run waits)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from auditor.config import Config, is_url
from auditor.errors import ConfigError


@dataclass(frozen=True)
class FleetSettings:
    broker: str
    queue: str
    visibility_timeout: float  # seconds before an unacknowledged task is delivered again
    run_deadline: float  # seconds the coordinator waits for every target's result


def _is_postgresql(database: str) -> bool:
    if not is_url(database):
        return False
    try:
        return make_url(database).get_backend_name() == "postgresql"
    except ArgumentError:
        return False


def fleet_settings(config: Config, source: str = "config") -> FleetSettings | None:
    """The fleet settings, or None for the embedded mode ([fleet] broker unset). ConfigError when
    the history is not a PostgreSQL URL: the workers on other machines store into it."""
    fleet = config.fleet
    if fleet.broker is None:
        return None
    if not _is_postgresql(config.history.database):
        raise ConfigError(
            f"{source}: [fleet] broker is set, so history.database must be a PostgreSQL URL that the "
            "scheduler and every worker reach (postgresql+psycopg://user@host/db), not "
            f"{config.history.database!r}"
        )
    scan = config.scan
    visibility = fleet.visibility_timeout or max(10.0, 2 * scan.target_timeout)
    # one worker at scan.concurrency gets through the run in this time, plus one redelivery
    rounds = math.ceil(max(1, len(config.targets)) / scan.concurrency)
    deadline = fleet.run_deadline or visibility + scan.target_timeout * rounds
    return FleetSettings(fleet.broker, fleet.queue, visibility, deadline)
