"""The evidence log against an attacker who can write the history database but not the witness file
(evidence-log-heads.txt) nor the reports already sent, and against single damaged rows. Real SQLite
files written by the real storing code (record_run), tampered with through sqlite3 as an attacker
would, judged by the real CLI: `verify-log`, and `audit --store` / `schedule --once` / `diff`,
which must still write (and mail) their report with a failing 11.6-evidence-log finding."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditor.app import record_run
from auditor.config import load_config
from auditor.evidence_log import WITNESS_FILE, canonical_json, chain_hash, utc_text
from auditor.model import AuditReport
from auditor.store import Store, retention_cutoff
from tests.conftest import CliRun, clause_statuses, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer
from tests.test_email import PASSWORD, smtp  # noqa: F401  (the real SMTP server fixture)
from tests.test_evidence_log import result

NOW = datetime.now(UTC)
OLD_NIGHTS = [NOW - timedelta(days=d) for d in (940, 850, 790)]  # beyond 24 months: pruned by retention
KEPT_NIGHTS = [NOW - timedelta(days=d) for d in (300, 200, 100, 10)]
LAST_NIGHT = NOW - timedelta(days=1)  # after the nightly prune
# Entries: old nights 1-6 (pruned; heads 2, 4, 6 witnessed), kept nights 7-14 (heads 8, 10, 12, 14),
# the retention checkpoint 15, the last night 16-17 (head 17).
HEAD_SEQ = 17


@pytest.fixture(scope="module")
def site(pki: TestPKI) -> Iterator[PythonTLSServer]:
    with PythonTLSServer(pki.issue("evidence-attacks")) as server:
        yield server


def _config(base: Path, target: str = "", mail: str = "") -> Path:
    path = base / "config.toml"
    path.write_text(f'[history]\ndatabase = "history.sqlite"\n[output]\ndirectory = "out"\n{mail}{target}')
    return path


def _night(config: Path, store: Store, when: datetime, urls: tuple[str, str]) -> None:
    """One night stored exactly as `schedule` stores it: results appended, the head witnessed."""
    scans = [result(0, when), result(1, when + timedelta(minutes=1))]
    for scan, url in zip(scans, urls, strict=True):
        scan.target.url = url
    report = AuditReport(generated_at=when + timedelta(minutes=5), tool_version="test", targets=scans)
    record_run(report, load_config(config), store)


@pytest.fixture()
def history(tmp_path: Path) -> Path:
    """Two years and a half of nights, pruned by retention as the nightly job does; the config."""
    config = _config(tmp_path)
    return _build(config, ("https://site0.test/", "https://site1.test/"))


def _build(config: Path, urls: tuple[str, str]) -> Path:
    store = Store(str(config.parent / "history.sqlite"))
    for when in OLD_NIGHTS + KEPT_NIGHTS:
        _night(config, store, when, urls)
    assert store.prune(retention_cutoff(24)) == 6
    _night(config, store, LAST_NIGHT, urls)
    assert store.verify().ok and store.verify().entries == HEAD_SEQ - 6
    store.close()
    return config


def _db(config: Path) -> Path:
    return config.parent / "history.sqlite"


def _hash(conn: sqlite3.Connection, seq: int) -> str:
    return conn.execute("SELECT hash FROM evidence_log WHERE seq = ?", (seq,)).fetchone()[0]


def _append(
    conn: sqlite3.Connection, body: str, kind: str, target_url: str, scanned_at: str
) -> tuple[int, str]:
    """Append `body` at the head with a correct hash and columns, moving the recorded head."""
    seq, prev = conn.execute("SELECT head_seq, head_hash FROM chain_state").fetchone()
    digest = chain_hash(prev, body)
    conn.execute(
        "INSERT INTO evidence_log (seq, kind, target_url, scanned_at, grade, compliant, failures, body, "
        "prev_hash, hash) VALUES (?, ?, ?, ?, NULL, 1, 0, ?, ?, ?)",
        (seq + 1, kind, target_url, scanned_at, body, prev, digest),
    )
    conn.execute("UPDATE chain_state SET head_seq = ?, head_hash = ?", (seq + 1, digest))
    return seq + 1, digest


def _forge_checkpoint(db: Path, through: int, cutoff: datetime, recorded_at: datetime) -> str:
    """The attack: delete entries up to `through`, append a correctly hashed checkpoint that claims
    retention pruned them (a consistent range), move the anchor. Returns the head the last report printed."""
    with sqlite3.connect(db) as conn:
        anchor, printed = conn.execute("SELECT anchor_seq, head_hash FROM chain_state").fetchone()
        through_hash = _hash(conn, through)
        conn.execute("DELETE FROM evidence_log WHERE seq <= ?", (through,))
        body = canonical_json(
            {
                "checkpoint": {
                    "pruned_from_seq": anchor + 1,
                    "pruned_through_seq": through,
                    "pruned_through_hash": through_hash,
                    "pruned_entries": through - anchor,
                    "cutoff": utc_text(cutoff),
                    "recorded_at": utc_text(recorded_at),
                }
            }
        )
        _append(conn, body, "checkpoint", "", utc_text(recorded_at))
        conn.execute("UPDATE chain_state SET anchor_seq = ?, anchor_hash = ?", (through, through_hash))
    return printed


def _verify(config: Path, *args: str) -> CliRun:
    run = run_cli("verify-log", "--config", str(config), *args)
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    return run


# ---------------------------------------------------------------- what retention may do


def test_a_history_pruned_by_retention_verifies_with_its_old_heads(history: Path) -> None:
    run = _verify(history)
    assert run.code == 0, run.stderr
    assert (
        f"intact: {HEAD_SEQ - 6} entries" in run.stdout and "entries 1-6 pruned under retention" in run.stdout
    )
    heads = (history.parent / "out" / WITNESS_FILE).read_text().splitlines()
    assert [line.split()[0] for line in heads] == ["2", "4", "6", "8", "10", "12", "14", "17"]
    for line in heads[
        :3
    ]:  # heads of pruned nights, older than the window: a report holding one still verifies
        assert _verify(history, "--expect-head", line.split()[1]).code == 0


# ---------------------------------------------------------------- an attacker with the database only


def test_emptied_log_with_a_forged_checkpoint_is_tampering(history: Path) -> None:
    """Issue 13 item 1: every entry deleted, one correctly hashed checkpoint naming the last head as
    its anchor, chain_state updated. The heads witnessed inside the window are gone: exit 5."""
    printed = _forge_checkpoint(_db(history), HEAD_SEQ, retention_cutoff(24, NOW), NOW)
    run = _verify(history)
    assert run.code == 5
    assert run.stderr.startswith(
        "evidence log BROKEN at entry 8: entry 8, whose hash a report printed as the log's head (scanned "
    )
    assert "a checkpoint claims it was pruned, but it is inside the retention window" in run.stderr
    assert _verify(history, "--expect-head", printed).code == 5


def test_emptied_log_verified_away_from_the_witness_file(history: Path) -> None:
    """On a copy of the database (no witness file), the head a report printed still exposes it; with
    nothing from outside, an emptied log looks like 24 idle months, and verify-log says how much went."""
    printed = _forge_checkpoint(_db(history), HEAD_SEQ, retention_cutoff(24, NOW), NOW)
    (history.parent / "out" / WITNESS_FILE).unlink()
    run = _verify(history, "--expect-head", printed)
    assert run.code == 5 and f"head {printed} from an earlier report is not in the chain" in run.stderr
    assert "nothing shows it was scanned before the retention cutoff" in run.stderr
    alone = _verify(history)
    assert alone.code == 0 and "1 entries, head " in alone.stdout
    assert f"entries 1-{HEAD_SEQ} pruned under retention (scanned before " in alone.stdout


def test_recent_entries_cut_below_the_last_night_are_tampering(history: Path) -> None:
    """Delete the kept nights (7-14) and the legitimate checkpoint's predecessors, keep the last night:
    a second checkpoint that continues the first one's range correctly still cannot hide them."""
    _forge_checkpoint(_db(history), 14, retention_cutoff(24, NOW), NOW)
    run = _verify(history)
    assert run.code == 5 and run.stderr.startswith("evidence log BROKEN at entry 8: entry 8, whose hash")


@pytest.mark.parametrize(
    "cutoff, recorded_at, reason",
    [
        (NOW - timedelta(days=1), NOW, "inside the 24-month retention window"),
        (NOW, NOW + timedelta(days=800), "in the future"),
    ],
    ids=["recent-cutoff", "future-date"],
)
def test_a_checkpoint_that_prunes_inside_the_window_is_refused_without_any_witness(
    history: Path, cutoff: datetime, recorded_at: datetime, reason: str
) -> None:
    _forge_checkpoint(_db(history), HEAD_SEQ, cutoff, recorded_at)
    (history.parent / "out" / WITNESS_FILE).unlink()
    run = _verify(history)
    assert run.code == 5 and run.stderr.startswith(
        f"evidence log BROKEN at entry {HEAD_SEQ + 1}: entry {HEAD_SEQ + 1}, a checkpoint,"
    )
    assert reason in run.stderr


def test_a_rebuilt_chain_is_caught_by_the_witnessed_heads(history: Path) -> None:
    """A verdict changed in a kept entry and every later hash recomputed: consistent, but not the
    chain whose heads the reports printed. The verdict is flipped whatever it was stored as (storing
    recomputes it from the findings), and the body must really change: a no-op edit rebuilds the
    very same chain, which is intact."""
    with sqlite3.connect(_db(history)) as conn:
        prev = _hash(conn, 8)
        for seq, body in conn.execute(
            "SELECT seq, body FROM evidence_log WHERE seq > 8 ORDER BY seq"
        ).fetchall():
            if seq == 9:
                scan = json.loads(body)
                flipped = not scan["compliant"]
                scan["compliant"] = flipped
                edited = canonical_json(scan)
                assert edited != body
                body = edited
            digest = chain_hash(prev, body)
            conn.execute(
                "UPDATE evidence_log SET body = ?, hash = ?, prev_hash = ? WHERE seq = ?",
                (body, digest, prev, seq),
            )
            prev = digest
        conn.execute("UPDATE evidence_log SET compliant = ? WHERE seq = 9", (int(flipped),))
        conn.execute("UPDATE chain_state SET head_hash = ?", (prev,))
    run = _verify(history)
    assert run.code == 5 and "BROKEN at entry 10: entry 10 is not the one a report printed" in run.stderr


# ---------------------------------------------------------------- damage: verify-log says broken (5)


def _blob_body(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE evidence_log SET body = CAST(body AS BLOB) WHERE seq = 16")


def _not_utf8_body(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE evidence_log SET body = CAST(x'7b22ff7d' AS TEXT) WHERE seq = 16")


def _checkpoint_missing_fields(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        body = canonical_json({"checkpoint": {"recorded_at": utc_text(NOW)}})
        _append(conn, body, "checkpoint", "", utc_text(NOW))


def _scan_missing_fields(db: Path) -> None:
    """A correctly hashed scan of the audited target, with most of a result missing."""
    with sqlite3.connect(db) as conn:
        url = conn.execute("SELECT target_url FROM evidence_log WHERE seq = 16").fetchone()[0]
        body = canonical_json(
            {"compliant": True, "started_at": utc_text(NOW - timedelta(hours=1)), "target": {"url": url}}
        )
        _append(conn, body, "scan", url, utc_text(NOW - timedelta(hours=1)))


def _empty_file(db: Path) -> None:
    db.write_bytes(b"")


def _chain_state_gone(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM chain_state")


def _tables_gone(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE evidence_log")
        conn.execute("DROP TABLE chain_state")


def _not_sqlite(db: Path) -> None:
    db.write_bytes(b"this is not a database\n" * 100)


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "blob-body": (
        _blob_body,
        "BROKEN at entry 16: entry 16 is damaged (its body is stored as bytes, not text)",
    ),
    "not-utf8-body": (_not_utf8_body, "BROKEN at entry 16: entry 16 is damaged (its body is stored as bytes"),
    "checkpoint-missing-fields": (
        _checkpoint_missing_fields,
        (
            "BROKEN at entry 18: entry 18 is damaged (not a valid "
            "checkpoint: checkpoint.pruned_through_seq: Field "
            "required)"
        ),
    ),
    "scan-missing-fields": (
        _scan_missing_fields,
        ("BROKEN at entry 18: entry 18 is damaged (not a valid scan result: target.host: Field required)"),
    ),
    "empty-file": (_empty_file, "the database file is empty (0 bytes)"),
    "chain-state-gone": (_chain_state_gone, "the chain state (where the chain starts and ends) is gone"),
    "tables-gone": (_tables_gone, "it holds no evidence log"),
    "not-sqlite": (_not_sqlite, "the file is not a SQLite database"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_log_is_broken_for_verify_log_and_readers_do_not_crash(history: Path, damage: str) -> None:
    spoil, message = DAMAGE[damage]
    spoil(_db(history))
    run = _verify(history)
    assert run.code == 5 and run.stderr.startswith("evidence log BROKEN") and message in run.stderr, (
        run.stderr
    )
    assert len(run.stderr.strip().splitlines()) == 1
    for command in (["history"], ["diff", "https://site0.test/"]):
        other = run_cli(*command, "--config", str(history))
        assert "Traceback" not in other.stderr and "internal error" not in other.stderr, (
            command,
            other.stderr,
        )
        assert other.code in (0, 3), (
            command,
            other.code,
            other.stderr,
        )  # listed, or "history database ... broken"


def test_diff_passes_over_a_damaged_scan_and_says_so(history: Path) -> None:
    _scan_missing_fields(_db(history))  # entry 18, a scan of site0 (entry 16's target)
    run = run_cli("diff", "https://site0.test/", "--config", str(history))
    assert run.code == 0, run.stderr
    assert run.stdout.startswith("scans 13 -> 16 of https://site0.test/")
    assert "damaged scan(s) 18 passed over" in run.stderr
    bad = run_cli("diff", "--config", str(history), "--scan", "16", "--scan", "18")
    assert bad.code == 3 and "scan 18 is damaged (not a valid scan result" in bad.stderr


# ---------------------------------------------------------------- damage: the run still reports it


def _finding(report: dict) -> dict:  # type: ignore[type-arg]
    return next(f for f in report["targets"][0]["findings"] if f["clause"] == "11.6-evidence-log")


def _emptied(db: Path) -> None:
    _forge_checkpoint(db, HEAD_SEQ, retention_cutoff(24, NOW), NOW)


FORGED = "a checkpoint claims it was pruned, but it is inside the retention window"
SPOILED = {**DAMAGE, "emptied-log": (_emptied, FORGED)}


# Nothing can be appended to these: the scan is reported (and mailed), storing it fails on its own (exit 3).
STORE_REFUSED = {"not-sqlite", "chain-state-gone"}


@pytest.mark.parametrize(
    "damage",
    [
        "emptied-log",
        "blob-body",
        "checkpoint-missing-fields",
        "scan-missing-fields",
        "empty-file",
        "tables-gone",
        *sorted(STORE_REFUSED),
    ],
)
def test_a_damaged_log_fails_11_6_in_reports_that_are_still_written_and_mailed(
    site: PythonTLSServer,
    pki: TestPKI,
    tmp_path: Path,
    smtp,  # noqa: F811  (the fixture imported above)
    damage: str,
) -> None:
    """A damaged log never costs the night its report: 11.6 fails, saying why, in the report written
    and mailed. An empty file, or one whose tables are gone, gets a new log (the witnessed heads keep
    the loss visible); a file that is no database, or a log without its chain state, is kept as found."""
    inbox, port = smtp
    expected = (3,) if damage in STORE_REFUSED else (0, 1)
    target = (
        f'[[targets]]\nurl = "{site.url}"\nip = "127.0.0.1"\nca_bundle = "{pki.root_path}"\nhttp_port = 9\n'
    )
    mail = (
        f'[email]\nhost = "127.0.0.1"\nport = {port}\nusername = "auditor"\npassword_env = "AUDITOR_TEST_PW"\n'
        f'from = "auditor@example.test"\nto = ["privacy@example.test"]\nca_bundle = "{pki.root_path}"\n'
        'notify = "always"\n'
    )
    config = _build(_config(tmp_path, target, mail), (site.url, "https://site1.test/"))
    spoil, message = SPOILED[damage]
    spoil(_db(config))
    why = message.split(": ", 1)[-1] if message.startswith("BROKEN") else message

    stored = run_cli("audit", "--config", str(config), "--store", "--json", str(tmp_path / "a.json"), "-q")
    assert stored.code in expected, stored.stderr
    assert "internal error" not in stored.stderr and "Traceback" not in stored.stderr
    finding = _finding(json.loads((tmp_path / "a.json").read_text()))
    assert finding["status"] == "fail" and why in finding["detail"], finding

    night = run_cli("schedule", "--config", str(config), "--once", env={"AUDITOR_TEST_PW": PASSWORD})
    assert night.code in expected, night.stderr
    assert "internal error" not in night.stdout + night.stderr and "Traceback" not in night.stderr
    report = json.loads((config.parent / "out" / "latest.json").read_text())
    assert clause_statuses(report["targets"][0])["11.6-evidence-log"] == "fail"
    assert len(inbox.messages) == 1  # the night the log is damaged is a night the mail goes out
    assert _verify(config).code == 5  # and the damage stays visible
