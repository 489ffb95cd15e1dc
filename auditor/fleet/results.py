"""Fleet bookkeeping in the shared history database, beside the evidence log.

`fleet_results` says which chain entry holds each target of a run: its primary key (run, target)
is claimed in the same transaction that appends the entry, under the chain lock (Store.append_once),
so a task delivered twice stores once. `fleet_runs` is the scheduler's lock across machines: the
night is its primary key, claimed by INSERT, so two schedulers sharing the database never run the
same night twice.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from auditor import __version__
from auditor.app import annotate_from_history
from auditor.config import Config
from auditor.errors import AuditorError, StoreError
from auditor.evidence_log import utc_text
from auditor.model import AuditReport, TargetResult
from auditor.store import Store

metadata = MetaData()
fleet_runs = Table(
    "fleet_runs",
    metadata,
    # the scheduled time (UTC, or the minute of a run) and the [fleet] queue: one fleet's night
    Column("night", String(300), primary_key=True),
    Column("run_id", String(32), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
)
fleet_results = Table(
    "fleet_results",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("target_index", Integer, primary_key=True),
    Column("target_url", String(512), nullable=False),
    Column("seq", Integer, nullable=False),  # the evidence log entry that holds the result
    Column("stored_by", String(255), nullable=False),
)


def machine() -> str:
    """Who stored a result: host and process (two workers on one machine are told apart)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def _database(store: Store) -> Iterator[Connection]:
    try:
        with store.engine.begin() as conn:
            yield conn
    except IntegrityError:
        raise
    except SQLAlchemyError as exc:
        message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(f"history database {store.name}: {message}") from None


def prepare(store: Store) -> None:
    """Create the fleet tables if missing (two machines creating them at once: one wins)."""
    try:
        with _database(store) as conn:
            metadata.create_all(conn)
    except (IntegrityError, StoreError):
        with _database(store) as conn:  # the other one's tables are there now
            metadata.create_all(conn)


def open_store(database: str, attempts: int = 3) -> Store:
    """The shared history with the fleet tables. Workers starting together on a new database race to
    create the tables: the loser's error is tried again."""
    for attempt in range(1, attempts + 1):
        try:
            store = Store(database)
            prepare(store)
            return store
        except StoreError:
            if attempt == attempts:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def store_result(store: Store, config: Config, run_id: str, index: int, result: TargetResult) -> bool:
    """Judge `result` against its history as the embedded run does (changes, renewal, patch window),
    then append it unless this run already holds this target. True when this call stored it."""
    annotate_from_history(
        AuditReport(generated_at=datetime.now(UTC), tool_version=__version__, targets=[result]),
        store,
        config.policy,
    )
    key = (fleet_results.c.run_id == run_id) & (fleet_results.c.target_index == index)

    def claim(conn: Connection, seq: int) -> bool:
        if conn.execute(select(fleet_results.c.seq).where(key)).first() is not None:
            return False
        conn.execute(
            insert(fleet_results).values(
                run_id=run_id, target_index=index, target_url=result.target.url, seq=seq, stored_by=machine()
            )
        )
        return True

    return store.append_once(result, claim) is not None


def stored_seqs(store: Store, run_id: str) -> dict[int, int]:
    """target index -> evidence log seq, for the targets of the run stored so far."""
    with _database(store) as conn:
        rows = conn.execute(
            select(fleet_results.c.target_index, fleet_results.c.seq).where(fleet_results.c.run_id == run_id)
        ).all()
    return {row.target_index: row.seq for row in rows}


def already_done(store: Store, run_id: str, index: int) -> str | None:
    """Why a task need not be audited: its target is stored for this run already (a redelivery), or
    the run is over (a task left on the queue past the run deadline). None: audit it."""
    with _database(store) as conn:
        if conn.execute(
            select(fleet_results.c.seq).where(
                (fleet_results.c.run_id == run_id) & (fleet_results.c.target_index == index)
            )
        ).first():
            return "already stored for this run (delivered twice)"
        finished = conn.execute(select(fleet_runs.c.finished_at).where(fleet_runs.c.run_id == run_id)).first()
    if finished is not None and finished.finished_at is not None:
        return f"its run ended at {finished.finished_at} (a task left on the queue)"
    return None


def release_night(store: Store, run_id: str) -> None:
    """Give the night back (the run could not start: its broker was unreachable), so it can be run again."""
    with _database(store) as conn:
        conn.execute(delete(fleet_runs).where(fleet_runs.c.run_id == run_id))


def stored_count(store: Store, run_id: str) -> int:
    """How many targets of the run are stored so far (the scheduler's poll: one number, not the rows)."""
    with _database(store) as conn:
        counted = conn.execute(
            select(func.count()).select_from(fleet_results).where(fleet_results.c.run_id == run_id)
        ).scalar_one()
    return int(counted)


def claim_night(store: Store, night: datetime, run_id: str, queue: str) -> None:
    """Take the night of the fleet that `queue` names for this run; AuditorError when another
    scheduler took it first. Fleets with queues of their own (several configs sharing one
    database) each have their night."""
    key = f"{utc_text(night)} {queue}"
    try:
        with _database(store) as conn:
            conn.execute(
                insert(fleet_runs).values(
                    night=key, run_id=run_id, host=machine(), started_at=utc_text(datetime.now(UTC))
                )
            )
    except IntegrityError:
        with _database(store) as conn:
            holder = conn.execute(select(fleet_runs).where(fleet_runs.c.night == key)).first()
        who = (
            f"{holder.host} (fleet run {holder.run_id}, started {holder.started_at})" if holder else "another"
        )
        raise AuditorError(
            f"the run scheduled for {utc_text(night)} (queue {queue}) was already taken by {who}; "
            "not running it twice"
        ) from None


def finish_night(store: Store, run_id: str) -> None:
    with _database(store) as conn:
        conn.execute(
            update(fleet_runs)
            .where(fleet_runs.c.run_id == run_id)
            .values(finished_at=utc_text(datetime.now(UTC)))
        )
