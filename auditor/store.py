"""History of scans and the tamper-evident evidence log (clause 11.6), in one database.

Every stored scan is an entry of an append-only hash chain: hash = sha256(previous hash + the
entry's canonical JSON). `verify()` recomputes the chain and names the first bad entry; pruning
old entries records the last pruned hash as the new anchor, so what is kept still verifies.
SQLite (WAL, transactions, owner-only file) by default; any SQLAlchemy URL works the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from auditor.errors import AuditorError
from auditor.model import TargetResult

GENESIS = "0" * 64

metadata = MetaData()
entries = Table(
    "evidence_log", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("target_url", String(512), nullable=False, index=True),
    Column("scanned_at", String(40), nullable=False),
    Column("grade", String(4)),
    Column("compliant", Boolean, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON of the TargetResult
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
# One row: where the kept chain starts (seq 0 and GENESIS until something is pruned) and where it
# ends, so a deleted last entry is noticed too.
chain_state = Table(
    "chain_state", metadata,
    Column("id", Integer, primary_key=True),
    Column("anchor_seq", Integer, nullable=False),
    Column("anchor_hash", String(64), nullable=False),
    Column("head_seq", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("pruned_entries", Integer, nullable=False),
)


class StoreError(AuditorError):
    """The history database cannot be used (locked, read-only, unreachable)."""


@dataclass(frozen=True)
class LogVerification:
    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    reason: str = ""


def canonical(result: TargetResult) -> str:
    """The bytes the hash covers: sorted keys, no whitespace, so the same result hashes the same."""
    return json.dumps(json.loads(result.model_dump_json()), sort_keys=True, separators=(",", ":"))


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _url(database: str) -> str:
    return database if "://" in database else f"sqlite:///{database}"


def _create_owner_only(database: str) -> None:
    if "://" in database:
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


class Store:
    def __init__(self, database: str) -> None:
        self.database = database
        try:
            _create_owner_only(database)
        except OSError as exc:
            raise StoreError(f"history database {database}: cannot create ({exc.strerror})") from None
        self.engine: Engine = create_engine(_url(database), connect_args={"timeout": 5}
                                            if "://" not in database else {})
        if "://" not in database:
            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.close()
        try:
            metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                if conn.execute(select(chain_state)).first() is None:
                    conn.execute(insert(chain_state).values(id=1, anchor_seq=0, anchor_hash=GENESIS, head_seq=0,
                                                            head_hash=GENESIS, pruned_entries=0))
        except SQLAlchemyError as exc:
            raise StoreError(self._explain(exc)) from None

    def _explain(self, exc: SQLAlchemyError) -> str:
        text = str(getattr(exc, "orig", exc)).splitlines()[0]
        if "locked" in text:
            text = "locked by another process"
        elif "readonly" in text or "read-only" in text:
            text = "read-only"
        return f"history database {self.database}: {text}"

    def append(self, results: list[TargetResult]) -> str:
        """Store results as chain entries in one transaction; returns the new head hash."""
        try:
            with self.engine.begin() as conn:
                state = conn.execute(select(chain_state).with_for_update()).one()
                seq, prev = state.head_seq, state.head_hash
                for result in results:
                    body = canonical(result)
                    seq += 1
                    digest = chain_hash(prev, body)
                    conn.execute(insert(entries).values(
                        seq=seq, target_url=result.target.url, scanned_at=result.started_at.isoformat(),
                        grade=result.grade.letter if result.grade else None, compliant=result.compliant,
                        failures=len(result.failed_clauses()), body=body, prev_hash=prev, hash=digest))
                    prev = digest
                conn.execute(update(chain_state).values(head_seq=seq, head_hash=prev))
                return prev
        except OperationalError as exc:
            raise StoreError(self._explain(exc)) from None

    def has_hash(self, digest: str) -> bool:
        """Is `digest` the hash of a kept entry, or the anchor (the last pruned one)?"""
        with self.engine.connect() as conn:
            if conn.execute(select(chain_state.c.anchor_hash)).scalar_one() == digest:
                return True
            return conn.execute(select(entries.c.seq).where(entries.c.hash == digest)).first() is not None

    def head(self) -> str:
        with self.engine.connect() as conn:
            return conn.execute(select(chain_state.c.head_hash)).scalar_one()

    def verify(self) -> LogVerification:
        """Recompute the chain from its anchor; the first entry that does not fit is named."""
        try:
            with self.engine.connect() as conn:
                state = conn.execute(select(chain_state)).one()
                rows = conn.execute(select(entries).order_by(entries.c.seq)).all()
        except SQLAlchemyError as exc:
            raise StoreError(self._explain(exc)) from None
        expected_seq, prev = state.anchor_seq, state.anchor_hash
        for row in rows:
            expected_seq += 1
            if row.seq != expected_seq:
                return LogVerification(False, len(rows), prev, expected_seq,
                                       f"entry {expected_seq} is missing (found {row.seq} next)")
            if row.prev_hash != prev:
                return LogVerification(False, len(rows), prev, row.seq, f"entry {row.seq} does not follow entry "
                                       f"{row.seq - 1} (previous hash differs: reordered, inserted or altered)")
            if chain_hash(prev, row.body) != row.hash:
                return LogVerification(False, len(rows), prev, row.seq,
                                       f"entry {row.seq} was altered (its content no longer matches its hash)")
            try:
                stored = json.loads(row.body)
                if stored["target"]["url"] != row.target_url or stored["compliant"] != row.compliant:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return LogVerification(False, len(rows), prev, row.seq,
                                       f"entry {row.seq} was altered (its columns disagree with its content)")
            prev = row.hash
        if expected_seq != state.head_seq or prev != state.head_hash:
            return LogVerification(False, len(rows), prev, expected_seq + 1 if expected_seq < state.head_seq
                                   else state.head_seq,
                                   f"the chain ends at entry {expected_seq}, but {state.head_seq} were written "
                                   "(entries deleted at the end, or the head altered)")
        return LogVerification(True, len(rows), prev)

    def prune(self, before: datetime) -> int:
        """Delete entries scanned before `before`; the last pruned hash becomes the anchor."""
        try:
            with self.engine.begin() as conn:
                old = conn.execute(select(entries.c.seq, entries.c.hash).where(entries.c.scanned_at <
                                   before.isoformat()).order_by(entries.c.seq)).all()
                if not old:
                    return 0
                # only a prefix of the chain can go: stop at the first entry that is recent
                first_kept = conn.execute(select(func.min(entries.c.seq)).where(
                    entries.c.scanned_at >= before.isoformat())).scalar()
                prefix = [r for r in old if first_kept is None or r.seq < first_kept]
                if not prefix:
                    return 0
                last = prefix[-1]
                conn.execute(entries.delete().where(entries.c.seq <= last.seq))
                conn.execute(update(chain_state).values(anchor_seq=last.seq, anchor_hash=last.hash,
                                                        pruned_entries=chain_state.c.pruned_entries + len(prefix)))
                return len(prefix)
        except OperationalError as exc:
            raise StoreError(self._explain(exc)) from None

    def latest(self, target_url: str, before_seq: int | None = None) -> tuple[int, TargetResult] | None:
        query = select(entries.c.seq, entries.c.body).where(entries.c.target_url == target_url)
        if before_seq is not None:
            query = query.where(entries.c.seq < before_seq)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(entries.c.seq.desc()).limit(1)).first()
        return (row.seq, TargetResult.model_validate_json(row.body)) if row else None

    def get(self, seq: int) -> TargetResult | None:
        with self.engine.connect() as conn:
            body = conn.execute(select(entries.c.body).where(entries.c.seq == seq)).scalar()
        return TargetResult.model_validate_json(body) if body else None

    def history(self, target_url: str | None = None, limit: int = 50) -> list:  # type: ignore[type-arg]
        query = select(entries.c.seq, entries.c.target_url, entries.c.scanned_at, entries.c.grade,
                       entries.c.compliant, entries.c.failures)
        if target_url:
            query = query.where(entries.c.target_url == target_url)
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(entries.c.seq.desc()).limit(limit)).all())


def retention_cutoff(months: int, now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    year, month = divmod(now.month - 1 - months, 12)
    day = min(now.day, 28)
    return now.replace(year=now.year + year, month=month + 1, day=day)
