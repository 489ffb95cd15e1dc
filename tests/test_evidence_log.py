"""The evidence log (clause 11.6) against tampering with the real database file: every kind of
change makes verification fail and names the first bad entry; pruning keeps it verifiable."""

from __future__ import annotations

import sqlite3
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from auditor.errors import AuditorError
from auditor.model import TargetRef, TargetResult
from auditor.store import Store, StoreError, chain_hash
from tests import evidence_builders as b
from tests.conftest import run_cli


def result(i: int, when: datetime | None = None) -> TargetResult:
    return TargetResult(target=TargetRef(url=f"https://site{i % 2}.test/", host=f"site{i % 2}.test", port=443),
                        started_at=when or datetime.now(timezone.utc), duration_s=1.0, compliant=i % 3 != 0,
                        evidence=b.evidence())


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite"
    store = Store(str(path))
    for i in range(1, 6):
        store.append([result(i)])
    store.engine.dispose()
    return path


def _sql(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)


def _verify(path: Path):  # noqa: ANN202
    return Store(str(path)).verify()


def test_intact_log_verifies_and_file_is_owner_only(db: Path) -> None:
    check = _verify(db)
    assert check.ok and check.entries == 5
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_altered_content(db: Path) -> None:
    _sql(db, "UPDATE evidence_log SET body = replace(body, '\"compliant\":true', '\"compliant\":false') WHERE seq = 2")
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 2 and "altered" in check.reason


def test_altered_column_only(db: Path) -> None:
    _sql(db, "UPDATE evidence_log SET compliant = NOT compliant WHERE seq = 3")
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 3


def test_deleted_entry(db: Path) -> None:
    _sql(db, "DELETE FROM evidence_log WHERE seq = 3")
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 3 and "missing" in check.reason


def test_deleted_last_entry(db: Path) -> None:
    _sql(db, "DELETE FROM evidence_log WHERE seq = 5")
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 5


def test_reordered_entries(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        two = conn.execute("SELECT body, prev_hash, hash FROM evidence_log WHERE seq = 2").fetchone()
        three = conn.execute("SELECT body, prev_hash, hash FROM evidence_log WHERE seq = 3").fetchone()
        conn.execute("UPDATE evidence_log SET body=?, prev_hash=?, hash=? WHERE seq = 2", three)
        conn.execute("UPDATE evidence_log SET body=?, prev_hash=?, hash=? WHERE seq = 3", two)
    check = _verify(db)
    assert not check.ok and check.first_bad_seq == 2


def test_inserted_entry_even_with_a_correct_hash(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        for seq in (5, 4, 3):
            conn.execute("UPDATE evidence_log SET seq = seq + 1 WHERE seq = ?", (seq,))
        prev = conn.execute("SELECT hash FROM evidence_log WHERE seq = 2").fetchone()[0]
        body = '{"forged": true}'
        conn.execute("INSERT INTO evidence_log (seq, target_url, scanned_at, grade, compliant, failures, body, "
                     "prev_hash, hash) VALUES (3, 'https://site1.test/', '2026-01-01', 'A+', 1, 0, ?, ?, ?)",
                     (body, prev, chain_hash(prev, body)))
    check = _verify(db)
    assert not check.ok and check.first_bad_seq in (3, 4)


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
    assert run.code == 5 and "BROKEN at entry 4" in run.stderr


def test_pruning_keeps_the_rest_verifiable(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "h.sqlite"))
    old = datetime.now(timezone.utc) - timedelta(days=800)
    store.append([result(1, old), result(2, old + timedelta(days=1))])
    store.append([result(3), result(4)])
    head = store.head()
    assert store.prune(datetime.now(timezone.utc) - timedelta(days=730)) == 2
    check = store.verify()
    assert check.ok and check.entries == 2 and check.head == head
    assert store.has_hash(head)


def test_locked_database_is_a_clear_error(db: Path) -> None:
    holder = sqlite3.connect(db, timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            Store(str(db)).append([result(9)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _verify(db).ok and _verify(db).entries == 5  # nothing half-written
    assert isinstance(StoreError("x"), AuditorError)
