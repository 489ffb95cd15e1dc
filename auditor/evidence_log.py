"""The evidence log's format (clause 11.6): an append-only hash chain, and how to verify it.

Entry n stores `body` (canonical JSON: sorted keys, no whitespace) and
`hash = sha256(hash of entry n-1 + body)`; entry 1 follows GENESIS. Two kinds of entry:

- a scan: the body is one TargetResult;
- a checkpoint: written when old entries are pruned (retention); it names the last pruned entry's
  seq and hash, which become the anchor the kept chain starts from. Because the checkpoint is itself
  an entry of the chain, deleting old entries without one (and moving the anchor) is detected.

The columns beside the body (target, time, grade, ...) exist for queries; verification recomputes
them from the body, so editing a column alone is detected too. This module is pure: the database
side is auditor.store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from auditor.model import TargetResult

GENESIS = "0" * 64
SCAN, CHECKPOINT = "scan", "checkpoint"


@dataclass(frozen=True)
class LogVerification:
    """The outcome of recomputing the chain; `first_bad_seq` names the first entry that does not fit."""

    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    reason: str = ""


class Row(Protocol):
    seq: int
    kind: str
    target_url: str
    scanned_at: str
    grade: str | None
    compliant: bool
    failures: int
    body: str
    prev_hash: str
    hash: str


def canonical_json(data: Any) -> str:  # noqa: ANN401
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical(result: TargetResult) -> str:
    """The bytes a scan entry's hash covers: the same result always hashes the same."""
    return canonical_json(json.loads(result.model_dump_json()))


def checkpoint_body(through_seq: int, through_hash: str, pruned: int, cutoff: datetime, at: datetime) -> str:
    return canonical_json({"checkpoint": {"pruned_through_seq": through_seq, "pruned_through_hash": through_hash,
                                          "pruned_entries": pruned, "cutoff": utc_text(cutoff),
                                          "recorded_at": utc_text(at)}})


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def utc_text(when: datetime | str) -> str:
    """One fixed-width UTC form, so stored times sort as text (naive times are taken as UTC)."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


def columns(body: str) -> dict[str, Any]:
    """The query columns of an entry, derived from its body (ValueError when the body is not an entry)."""
    try:
        data = json.loads(body)
        if set(data) == {"checkpoint"}:
            point = data["checkpoint"]
            return {"kind": CHECKPOINT, "target_url": "", "scanned_at": utc_text(point["recorded_at"]),
                    "grade": None, "compliant": True, "failures": 0}
        failed = {f["clause"] for f in data.get("findings", []) if f.get("status") == "fail"}
        return {"kind": SCAN, "target_url": data["target"]["url"], "scanned_at": utc_text(data["started_at"]),
                "grade": (data.get("grade") or {}).get("letter"), "compliant": bool(data["compliant"]),
                "failures": len(failed)}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an evidence-log entry ({type(exc).__name__})") from None


def _columns_match(row: Row, expected: dict[str, Any]) -> bool:
    try:
        same_time = utc_text(row.scanned_at) == expected["scanned_at"]
    except (ValueError, TypeError):
        return False
    return (same_time and row.kind == expected["kind"] and row.target_url == expected["target_url"]
            and row.grade == expected["grade"] and bool(row.compliant) == expected["compliant"]
            and row.failures == expected["failures"])


def verify_chain(rows: Iterable[Row], anchor_seq: int, anchor_hash: str, head_seq: int,
                 head_hash: str) -> LogVerification:
    """Recompute the chain from its anchor to its head. `rows` in seq order (streamed is fine)."""
    expected_seq, prev, count = anchor_seq, anchor_hash, 0
    checkpoint: tuple[int, str] | None = None  # the latest one seen: (pruned_through_seq, hash)

    def bad(seq: int, reason: str) -> LogVerification:
        return LogVerification(False, count, prev, seq, reason)

    for row in rows:
        count += 1
        expected_seq += 1
        if row.seq != expected_seq:
            return bad(expected_seq, f"entry {expected_seq} is missing (entry {row.seq} comes next)")
        if row.prev_hash != prev:
            return bad(row.seq, f"entry {row.seq} does not follow entry {row.seq - 1} "
                                "(its previous hash differs: entries reordered, inserted or replaced)")
        if chain_hash(prev, row.body) != row.hash:
            return bad(row.seq, f"entry {row.seq} was altered (its content no longer matches its hash)")
        try:
            expected = columns(row.body)
        except ValueError as exc:
            return bad(row.seq, f"entry {row.seq} was altered ({exc})")
        if not _columns_match(row, expected):
            return bad(row.seq, f"entry {row.seq} was altered (its columns disagree with its hashed content)")
        if expected["kind"] == CHECKPOINT:
            point = json.loads(row.body)["checkpoint"]
            checkpoint = (point["pruned_through_seq"], point["pruned_through_hash"])
        prev = row.hash
    if anchor_seq == 0 and anchor_hash != GENESIS:
        return bad(1, "the chain's start was altered (no pruning happened, yet it does not start at genesis)")
    if anchor_seq > 0 and checkpoint != (anchor_seq, anchor_hash):
        first = checkpoint[0] + 1 if checkpoint and checkpoint[0] < anchor_seq else 1
        return bad(first, f"entries up to {anchor_seq} are gone but no checkpoint in the log records their "
                          "pruning (deleted, or the start of the chain moved)")
    if expected_seq != head_seq or prev != head_hash:
        if expected_seq == head_seq:
            return bad(head_seq, f"entry {head_seq} is not the recorded head (replaced, or the head altered)")
        first = min(expected_seq, head_seq) + 1
        return bad(first, f"the chain ends at entry {expected_seq} but {head_seq} were written "
                          "(entries deleted or added at the end, or the recorded head altered)")
    return LogVerification(True, count, prev)


# ---------------------------------------------------------------- witness of printed heads
# The chain proves its entries consistent with each other, not that the database was not cut at its
# end or replaced whole. Every head printed in a report is also appended to a small text file beside
# the reports; each witnessed (seq, hash) must still be in the chain (or pruned before the anchor).
# The reports and emails that print the head are the copies an attacker cannot reach.

WITNESS_FILE = "evidence-log-heads.txt"


@dataclass(frozen=True)
class Witnessed:
    seq: int
    head: str
    database: str
    at: str


def record_head(directory: Path, database: str, seq: int, head: str, at: datetime) -> None:
    """Append one line `seq head time database` (owner-only file, append-only writes)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / WITNESS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{seq} {head} {utc_text(at)} {database}\n".encode())
    finally:
        os.close(fd)


def read_heads(directory: Path, database: str) -> list[Witnessed]:
    """The witnessed heads of `database` (lines of other databases, or unreadable ones, are skipped)."""
    try:
        lines = (directory / WITNESS_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[0].isdigit() and parts[3] == database:
            out.append(Witnessed(int(parts[0]), parts[1], database, parts[2]))
    return out


def check_heads(verification: LogVerification, witnessed: Iterable[Witnessed], hashes: dict[int, str],
                anchor_seq: int, anchor_hash: str) -> LogVerification:
    """Every witnessed head must still be the hash of its entry (`hashes`: seq -> hash of kept entries)."""
    if not verification.ok:
        return verification
    for w in sorted(witnessed, key=lambda w: w.seq):
        if w.seq < anchor_seq:
            continue  # pruned under retention, as a checkpoint records
        actual = anchor_hash if w.seq == anchor_seq else hashes.get(w.seq)
        when = w.at[:16].replace("T", " ")
        if actual is None:
            return replace(verification, ok=False, first_bad_seq=w.seq, reason=(
                f"entry {w.seq}, whose hash a report printed as the log's head on {when} UTC, is gone "
                "(the log was cut at its end or replaced)"))
        if actual != w.head:
            return replace(verification, ok=False, first_bad_seq=w.seq, reason=(
                f"entry {w.seq} is not the one a report printed as the log's head on {when} UTC "
                f"({w.head[:16]}...): the log was rewritten or replaced"))
    return verification
