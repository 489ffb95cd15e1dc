"""The evidence log (clause 11.6) against tampering with the real database file: every kind of
change makes verification fail and names the first bad entry; pruning keeps it verifiable and is
itself recorded; a killed or concurrent writer never corrupts it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from auditor.errors import AuditorError
from auditor.evidence_log import GENESIS, WITNESS_FILE, canonical, columns, record_head
from auditor.model import TargetRef, TargetResult
from auditor.store import Store, StoreError, chain_hash, display_name, retention_cutoff
from tests import evidence_builders as b
from tests.conftest import ROOT, run_cli
from tests.harness import postgres_server


def result(i: int, when: datetime | None = None) -> TargetResult:
    return TargetResult(
        target=TargetRef(url=f"https://site{i % 2}.test/", host=f"site{i % 2}.test", port=443),
        started_at=when or datetime.now(UTC),
        duration_s=1.0,
        compliant=i % 3 != 0,
        evidence=b.evidence(),
    )


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite"
    store = Store(str(path))
    for i in range(1, 6):
        store.append([result(i)])
    store.close()
    return path


def _sql(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)


def _verify(path: Path):
    store = Store(str(path), create=False)
    try:
        return store.verify()
    finally:
        store.close()


def _row(conn: sqlite3.Connection, seq: int) -> tuple:  # type: ignore[type-arg]
    return conn.execute("SELECT body, prev_hash, hash FROM evidence_log WHERE seq = ?", (seq,)).fetchone()


def _insert(conn: sqlite3.Connection, seq: int, prev: str, body: str) -> str:
    """Write an entry exactly as the store would: consistent columns, correct hash."""
    digest = chain_hash(prev, body)
    cols = columns(body)
    conn.execute(
        "INSERT INTO evidence_log (seq, kind, target_url, scanned_at, grade, compliant, failures, body, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            cols["kind"],
            cols["target_url"],
            cols["scanned_at"],
            cols["grade"],
            cols["compliant"],
            cols["failures"],
            body,
            prev,
            digest,
        ),
    )
    return digest


def test_intact_log_verifies_and_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    store = Store(str(path))
    store.append([result(1), result(2)])
    # while it is open, SQLite's WAL and shared-memory files hold recent entries: owner-only too
    for name in ("history.sqlite", "history.sqlite-wal", "history.sqlite-shm"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    check = store.verify()
    assert check.ok and check.entries == 2 and check.head == store.head()
    store.close()


def test_altered_content(db: Path) -> None:
    _sql(
        db,
        "UPDATE evidence_log SET body = replace(body, '\"compliant\":true', '\"compliant\":false') WHERE seq = 2",
    )
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 2 and "altered" in check.reason


@pytest.mark.parametrize(
    "column, value",
    [
        ("compliant", "NOT compliant"),
        ("grade", "'A+'"),
        ("failures", "7"),
        ("target_url", "'https://other.test/'"),
        ("scanned_at", "'2020-01-01'"),
    ],
)
def test_altered_column_only(db: Path, column: str, value: str) -> None:
    _sql(db, f"UPDATE evidence_log SET {column} = {value} WHERE seq = 3")  # noqa: S608  (tampering on purpose)
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 3 and "columns disagree" in check.reason


def test_deleted_entry(db: Path) -> None:
    _sql(db, "DELETE FROM evidence_log WHERE seq = 3")
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 3 and "missing" in check.reason


def test_deleted_last_entry(db: Path) -> None:
    _sql(db, "DELETE FROM evidence_log WHERE seq = 5")
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 5


def test_deleted_last_entry_and_head_rewound(db: Path, tmp_path: Path) -> None:
    """Hiding the deletion by rewinding the recorded head verifies on its own: that is what the heads
    printed in reports are for (the witness file beside them, and verify-log --expect-head)."""
    store = Store(str(db), create=False)
    record_head(tmp_path / "out", store.name, 5, store.head(), datetime.now(UTC))
    assert store.verify_with_heads(tmp_path / "out").ok
    assert stat.S_IMODE((tmp_path / "out" / WITNESS_FILE).stat().st_mode) == 0o600
    with sqlite3.connect(db) as conn:
        prev = conn.execute("SELECT hash FROM evidence_log WHERE seq = 4").fetchone()[0]
        conn.execute("DELETE FROM evidence_log WHERE seq = 5")
        conn.execute("UPDATE chain_state SET head_seq = 4, head_hash = ?", (prev,))
    assert store.verify().ok  # the chain alone cannot tell
    check = store.verify_with_heads(tmp_path / "out")
    assert not check.ok and check.first_bad_seq == 5 and "is gone" in check.reason
    store.close()


def test_deleted_oldest_entries_with_the_anchor_moved(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        two = conn.execute("SELECT hash FROM evidence_log WHERE seq = 2").fetchone()[0]
        conn.execute("DELETE FROM evidence_log WHERE seq <= 2")
        conn.execute("UPDATE chain_state SET anchor_seq = 2, anchor_hash = ?", (two,))
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 1 and "no checkpoint" in check.reason


def test_reordered_entries(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        two, three = _row(conn, 2), _row(conn, 3)
        conn.execute("UPDATE evidence_log SET body=?, prev_hash=?, hash=? WHERE seq = 2", three)
        conn.execute("UPDATE evidence_log SET body=?, prev_hash=?, hash=? WHERE seq = 3", two)
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 2 and "does not follow" in check.reason


def test_inserted_entry_even_with_a_correct_hash(db: Path) -> None:
    """A forged entry made exactly like a real one (valid result, right columns, right hash) passes
    itself, but the entry it displaced no longer follows it."""
    with sqlite3.connect(db) as conn:
        for seq in (5, 4, 3):
            conn.execute("UPDATE evidence_log SET seq = seq + 1 WHERE seq = ?", (seq,))
        _insert(conn, 3, _row(conn, 2)[2], canonical(result(7)))
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 4 and "does not follow" in check.reason


def test_entry_appended_behind_the_stores_back(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        _insert(conn, 6, _row(conn, 5)[2], canonical(result(6)))
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 6


def test_verify_log_command_exit_codes(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[history]\ndatabase = "{db}"\n')
    run = run_cli("verify-log", "--config", str(config))
    assert run.code == 0 and "intact: 5 entries" in run.stdout
    head = run.stdout.split("head ")[1].strip()
    assert run_cli("verify-log", "--config", str(config), "--expect-head", head).code == 0
    assert run_cli("verify-log", "--config", str(config), "--expect-head", "f" * 64).code == 5
    _sql(db, "UPDATE evidence_log SET body = body || ' ' WHERE seq = 4")
    run = run_cli("verify-log", "--config", str(config))
    assert run.code == 5 and run.stderr.startswith("evidence log BROKEN at entry 4: entry 4 was altered")
    db.unlink()
    run = run_cli("verify-log", "--config", str(config))
    assert run.code == 5 and "no history database" in run.stderr and not db.exists()


def test_pruning_keeps_the_rest_verifiable_and_is_recorded(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "h.sqlite"))
    now = datetime.now(UTC)
    store.append([result(1, now - timedelta(days=800)), result(2, now - timedelta(days=799))])
    store.append([result(3, now - timedelta(days=400)), result(4)])
    head = store.head()
    assert store.prune(retention_cutoff(24, now)) == 2
    check = store.verify()
    assert check.ok and check.entries == 3 and store.checkpoints() == 1  # 2 scans kept + the checkpoint
    assert check.pruned_through == 2 and check.summary().startswith("entries 1-2 pruned under retention")
    assert store.has_hash(head) and store.head() != head  # old report heads still found
    assert [r.seq for r in store.history()] == [4, 3]
    # with a 12-month retention configured, a later prune removes more, recorded by a second checkpoint
    assert store.prune(retention_cutoff(12, now)) == 1
    check = store.verify(retention_months=12)
    assert check.ok and check.entries == 3 and store.checkpoints() == 2
    # ... but the same prune under the policy's 24 months deleted an entry the window keeps
    inside = store.verify()
    assert (
        not inside.ok
        and inside.first_bad_seq == 6
        and "inside the 24-month retention window" in inside.reason
    )
    assert store.prune(retention_cutoff(12, now)) == 0
    store.close()
    with sqlite3.connect(tmp_path / "h.sqlite") as conn:  # the checkpoint cannot be removed quietly
        body = json.loads(
            conn.execute(
                "SELECT body FROM evidence_log WHERE kind = 'checkpoint' ORDER BY seq DESC"
            ).fetchone()[0]
        )
        assert body["checkpoint"]["pruned_through_seq"] == 3 and body["checkpoint"]["pruned_entries"] == 1
        assert body["checkpoint"]["pruned_from_seq"] == 3  # the range: 3..3
        conn.execute("DELETE FROM evidence_log WHERE seq = 6")
    assert not _verify(tmp_path / "h.sqlite").ok


def test_retention_cutoff_never_moves_back(tmp_path: Path) -> None:
    """A checkpoint's cutoff is computed a moment before its recorded time; verification accepts it
    only if the cutoff lies a whole window before that time, so the cutoff may never move back as
    time advances (it did across midnight at month ends, when the day was clamped to 28)."""
    utc = UTC
    for months, start in (
        (1, datetime(2027, 3, 26, tzinfo=utc)),
        (24, datetime(2028, 1, 26, tzinfo=utc)),
        (24, datetime(2028, 2, 27, tzinfo=utc)),
    ):
        times = [start + timedelta(minutes=37 * i) for i in range(8 * 24 * 60 // 37)]
        cutoffs = [retention_cutoff(months, t) for t in times]
        assert cutoffs == sorted(cutoffs), months
    store = Store(str(tmp_path / "h.sqlite"))
    before, at = datetime(2028, 1, 28, 23, 59, 59, tzinfo=utc), datetime(2028, 1, 29, 0, 0, 1, tzinfo=utc)
    store.append([result(1, before - timedelta(days=800)), result(2, before)])
    assert store.prune(retention_cutoff(24, before), now=at) == 1
    assert store.verify(now=at + timedelta(days=1)).ok
    store.close()


def test_locked_database_is_a_clear_error(db: Path) -> None:
    holder = sqlite3.connect(db, timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"^history database .*: locked by another process"):
            Store(str(db)).append([result(9)])
        started = time.monotonic()  # readers neither write nor wait for the writer (WAL)
        assert _verify(db).ok and time.monotonic() - started < 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    check = _verify(db)
    assert check.ok and check.entries == 5  # nothing half-written
    assert isinstance(StoreError("x"), AuditorError)


def test_read_only_database_is_a_clear_error(db: Path) -> None:
    store = Store(str(db))
    store.close()
    # SQLite's own read-only refusal (root ignores file modes, so ask SQLite directly)
    event.listen(store.engine, "connect", lambda conn, _: conn.execute("PRAGMA query_only = ON"))
    with pytest.raises(StoreError, match=r"^history database .*: read-only"):
        store.append([result(9), result(10)])
    reader = Store(str(db), create=False)  # readers never write: a read-only log still verifies
    event.listen(reader.engine, "connect", lambda conn, _: conn.execute("PRAGMA query_only = ON"))
    reader.close()
    assert reader.verify().ok and reader.verify().entries == 5 and len(reader.history()) == 5


_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _as_nobody(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_NOBODY, sys.executable, "-m", "auditor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
    )


def test_history_this_user_may_not_write_is_read_but_never_written() -> None:
    """For real file permissions the tests run the CLI as `nobody` (root ignores file modes): a
    history owned by someone else, in a directory this user cannot write, as an auditor's copy is."""
    import shutil
    import tempfile

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the CLI as another user")
    probe = subprocess.run(
        [*_NOBODY, sys.executable, "-c", "import auditor"],
        cwd=ROOT,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if probe.returncode != 0:
        pytest.skip("the user nobody cannot run this checkout's Python")
    base = Path(tempfile.mkdtemp(prefix="auditor-ro-"))
    try:
        base.chmod(0o755)
        store = Store(str(base / "history.sqlite"))
        store.append([result(1), result(2), result(3)])
        head = store.head()
        store.close()
        (base / "history.sqlite").chmod(0o644)  # readable by others, writable by its owner only
        (base / "out").mkdir(mode=0o777)
        (base / "out").chmod(0o777)
        (base / "config.toml").write_text(
            '[history]\ndatabase = "history.sqlite"\n[output]\ndirectory = "out"\n'
            '[[targets]]\nurl = "https://127.0.0.1:1/"\n'
        )
        (base / "config.toml").chmod(0o644)
        before = (base / "history.sqlite").read_bytes()

        verify = _as_nobody("verify-log", "--config", "config.toml", cwd=base)
        assert verify.returncode == 0 and f"3 entries, head {head}" in verify.stdout, verify.stderr
        listing = _as_nobody("history", "--config", "config.toml", cwd=base)
        assert listing.returncode == 0 and "https://site0.test/" in listing.stdout, listing.stderr
        for command in (["audit", "--store"], ["schedule", "--once"]):
            run = _as_nobody(*command, "--config", "config.toml", cwd=base)
            assert run.returncode == 3, (command, run.stderr)
            assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
            assert "history.sqlite" in run.stderr and (
                "read-only" in run.stderr or "Permission denied" in run.stderr
            )
        assert (base / "history.sqlite").read_bytes() == before  # nothing half-written
        assert sorted(p.name for p in base.iterdir()) == ["config.toml", "history.sqlite", "out"]
        (base / "history.sqlite").chmod(0o600)  # as the auditor creates it: others may not even read it
        unreadable = _as_nobody("verify-log", "--config", "config.toml", cwd=base)
        assert unreadable.returncode == 3 and unreadable.stderr.count("\n") == 1
        assert (
            "history database history.sqlite: cannot open (may this user read the file" in unreadable.stderr
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_missing_database_is_not_created_by_readers(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[history]\ndatabase = "none.sqlite"\n')
    for command in ("history", "diff"):
        run = run_cli(command, "--config", str(config))
        assert run.code == 3 and "no history database at" in run.stderr and len(run.stderr.splitlines()) == 1
    assert not (tmp_path / "none.sqlite").exists()


_WRITER = """
import sys
from tests.test_evidence_log import result
from auditor.store import Store
store = Store(sys.argv[1])
print("ready", flush=True)
for i in range(int(sys.argv[2])):
    store.append([result(i), result(i + 1)])
"""


def _writer(path: Path, count: int) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(count)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def test_killed_writer_never_corrupts_earlier_entries(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    for delay in (0.3, 0.7):
        writer = _writer(path, 10_000)
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        writer.stdout.close()
        check = _verify(path)
        assert check.ok and check.entries > 0 and check.entries % 2 == 0  # whole scans only


def test_concurrent_writers_queue_instead_of_racing(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    Store(str(path)).close()
    writers = [_writer(path, 25) for _ in range(3)]
    for w in writers:
        assert w.wait(timeout=60) == 0
        w.stdout.close()
    check = _verify(path)
    assert check.ok and check.entries == 3 * 25 * 2


def test_config_accepts_a_database_url(tmp_path: Path) -> None:
    """A SQLAlchemy URL is used as is (SQLite here; postgresql://... the same way); a password in it
    never reaches messages or reports."""
    url = f"sqlite:///{tmp_path / 'url.sqlite'}"
    store = Store(url)
    store.append([result(1)])
    assert store.verify().ok and store.name == url
    store.close()
    assert (
        display_name("postgresql://auditor:s3cret@db.example/history")
        == "postgresql://auditor:***@db.example/history"
    )
    with pytest.raises(StoreError, match=r"^history database nosuch://x: unknown database kind 'nosuch'"):
        Store("nosuch://x")


def test_processes_opening_a_new_postgresql_history_at_once_all_succeed(postgres: str) -> None:
    """Two schedulers (or fleet workers) starting together on an empty PostgreSQL history: each saw no
    table and one CREATE failed ("relation already exists", "duplicate key value"); the schema is
    now created under an advisory lock, once. (Without the lock about one trial in three failed.)"""
    for trial in range(3):
        database = postgres_server.create_database(postgres, f"created_at_once_{trial}")
        at = time.time() + 2  # every process imported by then: they open the history at the same moment
        opener = (
            "import time; from auditor.store import Store; "
            f"time.sleep(max(0, {at} - time.time())); Store({database!r}).close()"
        )
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", opener], stderr=subprocess.PIPE, text=True, env=environment
            )
            for _ in range(6)
        ]
        errors = [proc.communicate(timeout=60)[1] for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * 6, errors
        with Store(database) as store:
            assert store.verify().ok and store.head() == GENESIS


def test_postgresql_is_a_url_away(postgres: str, tmp_path: Path) -> None:
    store = Store(postgres)
    now = datetime.now(UTC)
    store.append([result(1, now - timedelta(days=800)), result(2)])
    writers = [_writer(postgres, 10) for _ in range(2)]  # type: ignore[arg-type]
    assert all(w.wait(timeout=60) == 0 for w in writers)
    for w in writers:
        w.stdout.close()
    assert store.prune(retention_cutoff(24, now)) == 1
    check = store.verify()
    assert check.ok and check.entries == 1 + 2 * 10 * 2 + 1
    config = tmp_path / "config.toml"
    config.write_text(f'[history]\ndatabase = "{postgres}"\n')
    assert run_cli("verify-log", "--config", str(config)).code == 0
    with store.engine.begin() as conn:  # tamper through the server
        conn.exec_driver_sql("UPDATE evidence_log SET grade = 'A+' WHERE seq = 5")
    run = run_cli("verify-log", "--config", str(config))
    assert run.code == 5 and "BROKEN at entry 5" in run.stderr
    store.close()
