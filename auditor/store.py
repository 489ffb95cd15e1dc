"""The history database: every stored scan, as an entry of the evidence log (auditor.evidence_log).

SQLite by default (a file, WAL, owner-only, no set-up); any SQLAlchemy URL (postgresql://...) works
the same way. Every write is one transaction, so a crash or kill at any moment loses at most the
scan being stored and never touches earlier entries. Problems are StoreError, one line.

A damaged database (an empty file, a file that is not SQLite, the auditor's tables or chain state
gone, an entry that cannot be read) still opens: verification then reports the log broken, so the
run's report says so (11.6) instead of the run dying; only what truly needs the data refuses.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine import Row as SqlRow
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from auditor.config import is_url
from auditor.errors import StoreError
from auditor.evidence_log import (
    CHECKPOINT,
    DEFAULT_RETENTION_MONTHS,
    GENESIS,
    SCAN,
    canonical,
    chain_hash,
    check_expected_head,
    check_heads,
    checkpoint_body,
    columns,
    parse_scan,
    read_heads,
    retention_cutoff,
    utc_text,
    verify_chain,
)
from auditor.facts import LogVerification
from auditor.model import TargetResult

__all__ = ["GENESIS", "LogVerification", "Store", "StoreError", "canonical", "chain_hash", "retention_cutoff"]

metadata = MetaData()
entries = Table(
    "evidence_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False, server_default=SCAN),
    Column("target_url", String(512), nullable=False, index=True),
    Column("scanned_at", String(40), nullable=False),  # UTC, fixed width: sorts as text
    Column("grade", String(4)),
    Column("compliant", Boolean, nullable=False),
    Column("failures", Integer, nullable=False),  # clauses failed
    Column("body", Text, nullable=False),  # canonical JSON; what the hash covers
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
# One row: where the kept chain starts (seq 0 and GENESIS until something is pruned) and where it
# ends, so deleting the last entries is noticed too.
chain_state = Table(
    "chain_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("anchor_seq", Integer, nullable=False),
    Column("anchor_hash", String(64), nullable=False),
    Column("head_seq", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("pruned_entries", Integer, nullable=False),
)


def display_name(database: str) -> str:
    """The database for messages and reports: a path, or the URL without its password."""
    if not is_url(database):
        return database
    try:
        return make_url(database).render_as_string(hide_password=True)
    except ArgumentError:
        return database.split("://", 1)[0] + "://..."


def create_owner_only(path: Path) -> None:
    """Create `path` (and its directory) readable by its owner only, if it does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)


SQLITE_HEADER = b"SQLite format 3\x00"
EMPTY_FILE = "the database file is empty (0 bytes): truncated, or replaced by an empty file"


def file_damage(path: Path) -> str | None:
    """Why the file at `path` cannot hold a log (empty, not SQLite), or None. An unreadable file is
    left for SQLite to explain."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError:
        return None
    if not header:
        return EMPTY_FILE
    if header != SQLITE_HEADER:
        return "the file is not a SQLite database (overwritten or replaced)"
    return None


def _text(raw: bytes) -> str | bytes:
    """SQLite TEXT as str; bytes when it is not UTF-8, so verification reports the entry damaged
    instead of the driver raising in the middle of the chain."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _open_read_only(path: str) -> sqlite3.Connection:
    """Readers (history, diff, verify-log) open the file read-only, so they work for a user who may
    not write it (an auditor's copy, a read-only mount). SQLite needs the WAL's -shm file to read a
    WAL database; when it is absent and cannot be created (an unwritable directory), no writer has
    the database open (a writer keeps both files while it runs), so the file alone is complete and
    is read as immutable."""
    uri = "file:" + urllib.parse.quote(os.path.abspath(path))
    conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=5, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        wal_in_use = Path(path + "-shm").exists() or Path(path + "-wal").exists()
        if wal_in_use or "locked" in str(exc) or "busy" in str(exc):
            raise
    return sqlite3.connect(uri + "?immutable=1", uri=True, check_same_thread=False)


SCHEMA_LOCK_KEY = 0x61756469  # "audi": the advisory lock of the history's schema (PostgreSQL)


class Store:
    """The history and evidence log. `create=False` for commands that only read: a missing database
    is then an error instead of a new empty log. `damage` says why the log is broken before any entry
    is read (verify() reports it, nothing is appended). A writer that finds an existing file holding
    no log (empty, or without the auditor's tables) starts a new log in it, and `restarted` keeps
    what it found, so this run's verification still fails (as a rebuilt chain will later, against
    the witnessed heads)."""

    def __init__(self, database: str, *, create: bool = True) -> None:
        self.database = database
        self.name = display_name(database)
        self.damage: str | None = None
        self.restarted: str | None = None
        self.usable = True  # the auditor's tables are there to read
        existed = False
        if not is_url(database):
            path = Path(database)
            if path.exists():
                existed, found = True, file_damage(path)
                if found == EMPTY_FILE and create:
                    self.restarted = found
                elif found:
                    self.damage, self.usable = found, False
            if not path.exists():
                if not create:
                    raise StoreError(
                        f"no history database at {database} (nothing stored yet: run "
                        "`auditor schedule --once` or `auditor audit --store`)"
                    )
                try:
                    create_owner_only(path)
                except OSError as exc:
                    raise StoreError(f"history database {database}: cannot create ({exc.strerror})") from None
        try:
            self.engine: Engine = self._engine(database, read_only=not create)
            if self.usable:
                with self._guard():
                    self._prepare(create, existed)
        except NoSuchModuleError:
            raise StoreError(
                f"history database {self.name}: unknown database kind "
                f"{database.split('://', 1)[0]!r} (use a file path, or a SQLAlchemy URL)"
            ) from None
        except ArgumentError as exc:
            raise StoreError(f"history database {self.name}: not a database URL ({exc})") from None
        except ImportError as exc:
            raise StoreError(
                f"history database {self.name}: its database driver is not installed ({exc.name}; "
                "e.g. pip install 'psycopg[binary]' for postgresql+psycopg://)"
            ) from None

    @staticmethod
    def _engine(database: str, *, read_only: bool = False) -> Engine:
        if is_url(database):
            return create_engine(database, pool_pre_ping=True)
        if read_only:
            engine = create_engine(f"sqlite:///{database}", creator=lambda: _open_read_only(database))
        else:
            engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 5})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
            dbapi_connection.text_factory = _text
            if read_only:
                return
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Writers take the write lock up front, so two writers queue instead of racing for seq.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

        return engine

    def _prepare(self, create: bool, existed: bool) -> None:
        tables = set(inspect(self.engine).get_table_names())
        if not {"evidence_log", "chain_state"} <= tables:
            no_log = (
                "it holds no evidence log (the auditor's tables are gone, or the path names another database)"
            )
            if not create:  # a configured history without a log: emptied, or another database put there
                self.damage, self.usable = no_log, False
                return
            if existed:  # a file this process did not just create
                self.restarted = self.restarted or no_log
            with self._write() as conn:
                self._schema_lock(conn)
                metadata.create_all(conn)  # checks again, under the lock: a concurrent creator finished
        elif "kind" not in {c["name"] for c in inspect(self.engine).get_columns("evidence_log")}:
            with self._write() as conn:  # databases from before checkpoints: every entry is a scan
                conn.execute(
                    text(f"ALTER TABLE evidence_log ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT '{SCAN}'")
                )
        with self._read() as conn:
            if conn.execute(select(chain_state)).first() is not None:
                return  # readers never write (a read-only copy of the log verifies too)
        gone = "the chain state (where the chain starts and ends) is gone"
        if not create:
            self.damage = gone
            return
        with self._write() as conn:
            self._schema_lock(conn)
            if conn.execute(select(chain_state)).first() is None:
                if conn.execute(select(entries.c.seq).limit(1)).first() is not None:
                    self.damage = gone  # restarting the chain at 0 would bury what happened
                    return
                conn.execute(
                    insert(chain_state).values(
                        id=1,
                        anchor_seq=0,
                        anchor_hash=GENESIS,
                        head_seq=0,
                        head_hash=GENESIS,
                        pruned_entries=0,
                    )
                )

    def _schema_lock(self, conn: Connection) -> None:
        """Serialize creating the tables and the chain state between processes that open a new
        PostgreSQL history at once (two schedulers, fleet workers starting together): each would
        otherwise see no table and the second CREATE fail. SQLite's write transaction already
        serializes them. Held until the transaction ends."""
        if self.engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})

    def close(self) -> None:
        """Close the connections now. The engine sits in a reference cycle (its event listeners), so
        left to the garbage collector a process may end with the connection open and the SQLite
        -wal and -shm files left beside the database."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ errors and transactions

    def _explain(self, exc: SQLAlchemyError) -> str:
        message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        low = message.lower()
        if "locked" in low or "busy" in low:
            message = "locked by another process (try again later)"
        elif "readonly" in low or "read-only" in low:
            message = "read-only (the file or its directory is not writable by this user)"
        elif "not a database" in low:
            message = "not a SQLite database"
        elif "unable to open" in low:
            message = "cannot open (may this user read the file, and write its directory?)"
        return f"history database {self.name}: {message}"

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreError(self._explain(exc)) from None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction: all of it is stored, or none of it."""
        with self._guard(), self.engine.execution_options(write=True).begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """One read transaction: a consistent snapshot, never blocking a writer (WAL)."""
        with self._guard(), self.engine.begin() as conn:
            yield conn

    # ------------------------------------------------------------ writing

    def _broken(self) -> StoreError:
        return StoreError(
            f"history database {self.name} is broken: {self.damage} (keep it for investigation; "
            "`auditor verify-log` says more)"
        )

    def _require(self) -> None:
        if not self.usable:
            raise self._broken()

    def _require_writable(self) -> None:
        """Nothing is appended to a damaged log (a new log this writer started is fine)."""
        if self.damage:
            raise self._broken()

    def _append_body(self, conn: Connection, seq: int, prev: str, body: str) -> str:
        digest = chain_hash(prev, body)
        conn.execute(insert(entries).values(seq=seq, body=body, prev_hash=prev, hash=digest, **columns(body)))
        return digest

    def append(self, results: list[TargetResult]) -> str:
        """Store results as chain entries in one transaction; returns the new head hash."""
        self._require_writable()
        with self._write() as conn:
            state = conn.execute(select(chain_state).with_for_update()).one()
            return self._append_locked(conn, state, results)

    def append_once(self, result: TargetResult, claim: Callable[[Connection, int], bool]) -> int | None:
        """Store one result unless `claim(conn, seq)` says it is already stored; the claim runs in the
        same transaction, under the chain lock (so concurrent writers queue), and records that `seq`
        holds it (a fleet task delivered twice stores once). Returns the seq, None when claimed before."""
        self._require_writable()
        with self._write() as conn:
            state = conn.execute(select(chain_state).with_for_update()).one()
            seq: int = state.head_seq + 1
            if not claim(conn, seq):
                return None
            self._append_locked(conn, state, [result])
        return seq

    def _append_locked(self, conn: Connection, state: SqlRow[Any], results: list[TargetResult]) -> str:
        seq: int = state.head_seq
        prev: str = state.head_hash
        for result in results:
            seq += 1
            prev = self._append_body(conn, seq, prev, canonical(result))
        conn.execute(update(chain_state).values(head_seq=seq, head_hash=prev))
        return prev

    def prune(self, before: datetime, now: datetime | None = None) -> int:
        """Delete the entries older than `before` (only a prefix of the chain can go) and record a
        checkpoint entry naming the range deleted and the cutoff; its last entry becomes the chain's
        anchor. Verification accepts it only when `before` is a whole retention window before `now`."""
        self._require_writable()
        cutoff = utc_text(before)
        with self._write() as conn:
            state = conn.execute(select(chain_state).with_for_update()).one()
            first_kept = conn.execute(
                select(func.min(entries.c.seq)).where(entries.c.scanned_at >= cutoff)
            ).scalar()
            query = select(entries.c.seq, entries.c.hash).where(entries.c.scanned_at < cutoff)
            if first_kept is not None:
                query = query.where(entries.c.seq < first_kept)
            last = conn.execute(query.order_by(entries.c.seq.desc()).limit(1)).first()
            if last is None:
                return 0
            count = conn.execute(
                select(func.count()).select_from(entries).where(entries.c.seq <= last.seq)
            ).scalar_one()
            conn.execute(entries.delete().where(entries.c.seq <= last.seq))
            body = checkpoint_body(
                last.seq,
                last.hash,
                count,
                before,
                now or datetime.now(UTC),
                from_seq=state.anchor_seq + 1,
            )
            head = self._append_body(conn, state.head_seq + 1, state.head_hash, body)
            conn.execute(
                update(chain_state).values(
                    anchor_seq=last.seq,
                    anchor_hash=last.hash,
                    head_seq=state.head_seq + 1,
                    head_hash=head,
                    pruned_entries=chain_state.c.pruned_entries + count,
                )
            )
        return count

    # ------------------------------------------------------------ reading

    def _state(self, conn: Connection) -> SqlRow[Any] | None:
        """The chain state row, or None when it is damaged (missing, doubled, mistyped)."""
        states = conn.execute(select(chain_state)).all()
        if len(states) != 1:
            return None
        state = states[0]
        seqs_ok = all(isinstance(v, int) and v >= 0 for v in (state.anchor_seq, state.head_seq))
        hashes_ok = all(isinstance(v, str) and len(v) == 64 for v in (state.anchor_hash, state.head_hash))
        return state if seqs_ok and hashes_ok else None

    def verify(
        self, retention_months: int = DEFAULT_RETENTION_MONTHS, now: datetime | None = None
    ) -> LogVerification:
        """Recompute the whole chain (streamed) from its anchor; names the first bad entry. Checkpoints
        must have pruned only entries older than `retention_months` (the configured retention)."""
        if self.damage:
            return LogVerification(False, 0, GENESIS, None, f"history database {self.name}: {self.damage}")
        with self._read() as conn:
            state = self._state(conn)
            if state is None:
                return LogVerification(
                    False,
                    0,
                    GENESIS,
                    None,
                    "the chain state (where the chain starts and "
                    "ends) is damaged: not exactly one well-formed row",
                )
            rows = conn.execution_options(yield_per=200).execute(select(entries).order_by(entries.c.seq))
            result = verify_chain(
                rows,
                state.anchor_seq,
                state.anchor_hash,
                state.head_seq,
                state.head_hash,
                retention_months=retention_months,
                now=now,
            )
        if self.restarted and result.ok:
            return LogVerification(
                False,
                result.entries,
                result.head,
                None,
                f"history database {self.name}: {self.restarted}; a new log was started in it",
            )
        return result

    def verify_with_heads(
        self,
        directory: Path,
        retention_months: int = DEFAULT_RETENTION_MONTHS,
        expect_head: str | None = None,
        now: datetime | None = None,
    ) -> LogVerification:
        """verify(), then every head witnessed in `directory` (see evidence_log.record_head) must still
        be in the chain or have been pruned under retention; so must `expect_head` (a head from a report)."""
        result = self.verify(retention_months, now)
        witnessed = read_heads(directory, self.name)
        if not result.ok or not (witnessed or expect_head):
            return result
        with self._read() as conn:
            state = self._state(conn)
            hashes = dict(conn.execute(select(entries.c.seq, entries.c.hash)).all())
        if state is None:  # damaged since verify() read it: verify() says so the next time
            return result
        result = check_heads(result, witnessed, hashes, state.anchor_seq, state.anchor_hash)
        if expect_head:
            result = check_expected_head(result, expect_head.strip().lower(), witnessed, hashes)
        return result

    def seq_of(self, digest: str) -> int | None:
        return (self.locate(digest) or (None, None))[0]

    def locate(self, digest: str) -> tuple[int, str] | None:
        """(seq, scanned_at) of the kept entry with this hash: what the witness file records."""
        self._require()
        with self._read() as conn:
            row = conn.execute(
                select(entries.c.seq, entries.c.scanned_at).where(entries.c.hash == digest)
            ).first()
        return (row.seq, row.scanned_at) if row else None

    def head(self) -> str:
        self._require()
        with self._read() as conn:
            head: str = conn.execute(select(chain_state.c.head_hash)).scalar_one()
        return head

    def has_hash(self, digest: str) -> bool:
        """Is `digest` the hash of a kept entry, or the anchor (the last pruned one)? (`verify-log
        --expect-head` asks more: verify_with_heads(expect_head=...).)"""
        self._require()
        with self._read() as conn:
            if conn.execute(select(chain_state.c.anchor_hash)).scalar_one() == digest:
                return True
            return conn.execute(select(entries.c.seq).where(entries.c.hash == digest)).first() is not None

    def recent(
        self, target_url: str, before_seq: int | None = None, skipped: list[int] | None = None
    ) -> Iterator[tuple[int, TargetResult]]:
        """Stored scans of one target, newest first, parsed one at a time. A damaged entry is passed
        over (its seq added to `skipped`): verification reports it, and the run goes on."""
        self._require()
        seq = before_seq
        while True:
            query = select(entries.c.seq, entries.c.body).where(
                entries.c.kind == SCAN, entries.c.target_url == target_url
            )
            if seq is not None:
                query = query.where(entries.c.seq < seq)
            with self._read() as conn:
                row = conn.execute(query.order_by(entries.c.seq.desc()).limit(1)).first()
            if row is None:
                return
            seq = row.seq
            parsed = _parse_scan(row.body)
            if isinstance(parsed, str):
                if skipped is not None:
                    skipped.append(row.seq)
                continue
            yield row.seq, parsed

    def latest(
        self, target_url: str, before_seq: int | None = None, skipped: list[int] | None = None
    ) -> tuple[int, TargetResult] | None:
        return next(self.recent(target_url, before_seq, skipped), None)

    def get(self, seq: int) -> TargetResult | None:
        self._require()
        with self._read() as conn:
            body = conn.execute(
                select(entries.c.body).where(entries.c.seq == seq, entries.c.kind == SCAN)
            ).scalar()
        if not body:
            return None
        parsed = _parse_scan(body)
        if isinstance(parsed, str):
            raise StoreError(
                f"history database {self.name}: scan {seq} is damaged ({parsed}); "
                "`auditor verify-log` says more"
            )
        return parsed

    def history(self, target_url: str | None = None, limit: int = 50) -> list[SqlRow[*tuple[Any, ...]]]:
        """Scan rows (seq, target_url, scanned_at, grade, compliant, failures), newest first."""
        self._require()
        query = select(
            entries.c.seq,
            entries.c.target_url,
            entries.c.scanned_at,
            entries.c.grade,
            entries.c.compliant,
            entries.c.failures,
        ).where(entries.c.kind == SCAN)
        if target_url:
            query = query.where(entries.c.target_url == target_url)
        with self._read() as conn:
            return list(conn.execute(query.order_by(entries.c.seq.desc()).limit(limit)).all())

    def checkpoints(self) -> int:
        self._require()
        with self._read() as conn:
            return conn.execute(
                select(func.count()).select_from(entries).where(entries.c.kind == CHECKPOINT)
            ).scalar_one()


def _parse_scan(body: object) -> TargetResult | str:
    """A stored scan, or why it cannot be read."""
    try:
        return parse_scan(body)
    except ValueError as exc:
        return str(exc)
