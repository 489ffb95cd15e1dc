"""The evidence log's format (clause 11.6): an append-only hash chain, and how to verify it.

Entry n stores `body` (canonical JSON: sorted keys, no whitespace) and
`hash = sha256(hash of entry n-1 + body)`; entry 1 follows GENESIS. Two kinds of entry:

- a scan: the body is one TargetResult;
- a checkpoint: written when old entries are pruned (retention); it names the pruned range (first
  and last seq, the last one's hash, how many), the cutoff they were all scanned before, and when
  it was written. The last pruned entry becomes the anchor the kept chain starts from. Because the
  checkpoint is itself an entry of the chain, deleting old entries without one (and moving the
  anchor) is detected; because its cutoff must lie a whole retention window before its own time,
  and that time may not lie in the future, a checkpoint cannot excuse deleting recent entries.

Whoever can write the database can still forge a checkpoint that claims recent entries were old.
What catches that is outside the database: the heads printed in reports, also appended to a
witness file (below), each with the time its entry was scanned. A witnessed head that is gone
although it was scanned after the cutoff was deleted, not pruned.

The columns beside the body (target, time, grade, ...) exist for queries; verification recomputes
them from the body, so editing a column alone is detected too. A damaged entry (a body that is not
text, not JSON, not a valid scan result or checkpoint) is reported as a broken log, never raised.
This module is pure: the database side is auditor.store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from auditor.facts import LogVerification
from auditor.model import Status, TargetResult
from auditor.safe_files import open_own_file

GENESIS = "0" * 64
SCAN, CHECKPOINT = "scan", "checkpoint"
DEFAULT_RETENTION_MONTHS = 24  # the policy's (clause 11.6)
CLOCK_SKEW = timedelta(minutes=10)  # how far in the future a checkpoint's time may lie (clock corrections)


class Row(Protocol):
    seq: int
    kind: str
    target_url: str
    scanned_at: str
    grade: str | None
    compliant: bool
    failures: int
    body: str
    prev_hash: object  # text in an intact log; verification says so when a damaged one holds else
    hash: object


class Checkpoint(BaseModel):
    """A checkpoint's content. Strict: a checkpoint with a missing or mistyped field is damaged."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    pruned_through_seq: int = Field(ge=1)
    pruned_through_hash: str = Field(pattern="^[0-9a-f]{64}$")
    pruned_entries: int = Field(ge=1)
    pruned_from_seq: int | None = Field(default=None, ge=1)  # absent in checkpoints of earlier versions
    cutoff: AwareDatetime
    recorded_at: AwareDatetime


class _CheckpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    checkpoint: Checkpoint


class NotAnEntry(ValueError):
    """A stored body that is not an evidence-log entry; the message says why."""


@dataclass(frozen=True)
class Entry:
    """A body understood: its query columns, and its checkpoint when it is one."""

    columns: dict[str, Any]
    checkpoint: Checkpoint | None = None


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical(result: TargetResult) -> str:
    """The bytes a scan entry's hash covers: the same result always hashes the same."""
    return canonical_json(json.loads(result.model_dump_json()))


def checkpoint_body(
    through_seq: int,
    through_hash: str,
    pruned: int,
    cutoff: datetime,
    at: datetime,
    from_seq: int | None = None,
) -> str:
    point: dict[str, Any] = {
        "pruned_through_seq": through_seq,
        "pruned_through_hash": through_hash,
        "pruned_entries": pruned,
        "cutoff": utc_text(cutoff),
        "recorded_at": utc_text(at),
    }
    if from_seq is not None:
        point["pruned_from_seq"] = from_seq
    return canonical_json({"checkpoint": point})


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def utc_text(when: datetime | str) -> str:
    """One fixed-width UTC form, so stored times sort as text (naive times are taken as UTC)."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def retention_cutoff(months: int, now: datetime | None = None) -> datetime:
    """`months` calendar months before `now`; a day the month lacks (31 April, 29 February) becomes
    the start of the next month. Never decreases as `now` advances, so a checkpoint's cutoff
    computed a moment before its recorded time is always within the window of that time."""
    now = now or datetime.now(UTC)
    year, month = divmod(now.month - 1 - months, 12)
    year, month = now.year + year, month + 1
    try:
        return now.replace(year=year, month=month)
    except ValueError:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return now.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def _problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def parse_scan(body: object) -> TargetResult:
    """A stored scan's result, or ValueError saying why the body is not one."""
    if not isinstance(body, str | bytes):
        raise NotAnEntry(f"its body is stored as {type(body).__name__}, not text")
    try:
        return TargetResult.model_validate_json(body)
    except ValidationError as exc:
        raise NotAnEntry(f"not a valid scan result: {_problem(exc)}") from None


def parse_entry(body: object) -> Entry:
    """Understand a body, or ValueError saying why it is not an evidence-log entry."""
    if not isinstance(body, str):
        raise NotAnEntry(f"its body is stored as {type(body).__name__}, not text")
    try:
        if body.startswith('{"checkpoint":'):
            point = _CheckpointBody.model_validate_json(body).checkpoint
            return Entry(
                {
                    "kind": CHECKPOINT,
                    "target_url": "",
                    "scanned_at": utc_text(point.recorded_at),
                    "grade": None,
                    "compliant": True,
                    "failures": 0,
                },
                point,
            )
        result = TargetResult.model_validate_json(body)
    except ValidationError as exc:
        kind = "checkpoint" if body.startswith('{"checkpoint":') else "scan result"
        raise NotAnEntry(f"not a valid {kind}: {_problem(exc)}") from None
    failed = {f.clause for f in result.findings if f.status is Status.FAIL}
    return Entry(
        {
            "kind": SCAN,
            "target_url": result.target.url,
            "scanned_at": utc_text(result.started_at),
            "grade": result.grade.letter if result.grade else None,
            "compliant": result.compliant,
            "failures": len(failed),
        }
    )


def columns(body: str) -> dict[str, Any]:
    """The query columns of an entry, derived from its body (ValueError when the body is not an entry)."""
    return parse_entry(body).columns


def _columns_match(row: Row, expected: dict[str, Any]) -> bool:
    try:
        same_time = utc_text(row.scanned_at) == expected["scanned_at"]
    except (ValueError, TypeError):
        return False
    return bool(
        same_time
        and row.kind == expected["kind"]
        and row.target_url == expected["target_url"]
        and row.grade == expected["grade"]
        and bool(row.compliant) == expected["compliant"]
        and row.failures == expected["failures"]
    )


def _checkpoint_problem(
    seq: int, point: Checkpoint, previous: Checkpoint | None, retention_months: int, now: datetime
) -> str | None:
    """Why checkpoint entry `seq` cannot be a retention prune, or None when it can."""
    if point.pruned_through_seq >= seq:
        return f"entry {seq}, a checkpoint, claims to prune entries up to {point.pruned_through_seq}, not before itself"
    if point.pruned_from_seq is not None and (
        point.pruned_from_seq > point.pruned_through_seq
        or point.pruned_entries != point.pruned_through_seq - point.pruned_from_seq + 1
    ):
        return f"entry {seq}, a checkpoint, records a pruned range that does not add up"
    if previous is not None and (
        point.pruned_through_seq <= previous.pruned_through_seq
        or (point.pruned_from_seq is not None and point.pruned_from_seq != previous.pruned_through_seq + 1)
    ):
        return f"entry {seq}, a checkpoint, does not continue the pruning of the checkpoint before it"
    if point.recorded_at > now + CLOCK_SKEW:
        return (
            f"entry {seq}, a checkpoint, is dated {utc_text(point.recorded_at)[:16]} UTC, in the future "
            "(a forged date, to make recent entries look old)"
        )
    window = retention_cutoff(retention_months, point.recorded_at)
    if point.cutoff > window:
        return (
            f"entry {seq}, a checkpoint, prunes entries scanned up to {utc_text(point.cutoff)[:16]} UTC, inside "
            f"the {retention_months}-month retention window (only entries scanned before "
            f"{utc_text(window)[:16]} UTC could go): entries the policy keeps were deleted"
        )
    return None


def verify_chain(
    rows: Iterable[Row],
    anchor_seq: int,
    anchor_hash: str,
    head_seq: int,
    head_hash: str,
    *,
    retention_months: int = DEFAULT_RETENTION_MONTHS,
    now: datetime | None = None,
) -> LogVerification:
    """Recompute the chain from its anchor to its head. `rows` in seq order (streamed is fine).
    Every checkpoint must be a retention prune: its cutoff a whole window before its (past) time."""
    now = now or datetime.now(UTC)
    expected_seq, prev, count = anchor_seq, anchor_hash, 0
    checkpoint: Checkpoint | None = None  # the latest one seen

    def bad(seq: int, reason: str) -> LogVerification:
        return LogVerification(False, count, prev, seq, reason)

    for row in rows:
        count += 1
        expected_seq += 1
        if row.seq != expected_seq:
            return bad(expected_seq, f"entry {expected_seq} is missing (entry {row.seq} comes next)")
        if not (isinstance(row.prev_hash, str) and isinstance(row.hash, str)):
            return bad(row.seq, f"entry {row.seq} is damaged (its hashes are not stored as text)")
        if row.prev_hash != prev:
            return bad(
                row.seq,
                f"entry {row.seq} does not follow entry {row.seq - 1} "
                "(its previous hash differs: entries reordered, inserted or replaced)",
            )
        try:
            entry = parse_entry(row.body)
        except ValueError as exc:
            if isinstance(row.body, str) and chain_hash(prev, row.body) != row.hash:
                return bad(row.seq, f"entry {row.seq} was altered (its content no longer matches its hash)")
            return bad(row.seq, f"entry {row.seq} is damaged ({exc})")
        if chain_hash(prev, row.body) != row.hash:
            return bad(row.seq, f"entry {row.seq} was altered (its content no longer matches its hash)")
        if not _columns_match(row, entry.columns):
            return bad(row.seq, f"entry {row.seq} was altered (its columns disagree with its hashed content)")
        if entry.checkpoint is not None:
            problem = _checkpoint_problem(row.seq, entry.checkpoint, checkpoint, retention_months, now)
            if problem:
                return bad(row.seq, problem)
            checkpoint = entry.checkpoint
        prev = row.hash
    if anchor_seq == 0 and anchor_hash != GENESIS:
        return bad(1, "the chain's start was altered (no pruning happened, yet it does not start at genesis)")
    anchored = checkpoint is not None and (checkpoint.pruned_through_seq, checkpoint.pruned_through_hash) == (
        anchor_seq,
        anchor_hash,
    )
    if anchor_seq > 0 and not anchored:
        first = (
            checkpoint.pruned_through_seq + 1
            if checkpoint and checkpoint.pruned_through_seq < anchor_seq
            else 1
        )
        return bad(
            first,
            f"entries up to {anchor_seq} are gone but no checkpoint in the log records their "
            "pruning (deleted, or the start of the chain moved)",
        )
    if expected_seq != head_seq or prev != head_hash:
        if expected_seq == head_seq:
            return bad(head_seq, f"entry {head_seq} is not the recorded head (replaced, or the head altered)")
        first = min(expected_seq, head_seq) + 1
        return bad(
            first,
            f"the chain ends at entry {expected_seq} but {head_seq} were written "
            "(entries deleted or added at the end, or the recorded head altered)",
        )
    cutoff = utc_text(checkpoint.cutoff) if anchor_seq > 0 and checkpoint is not None else None
    return LogVerification(True, count, prev, pruned_through=anchor_seq, cutoff=cutoff)


# ---------------------------------------------------------------- witness of printed heads
# The chain proves its entries consistent with each other, not that the database was not cut at its
# end, replaced whole, or emptied down to a forged checkpoint. Every head printed in a report is also
# appended to a small text file beside the reports, with the time its entry was scanned; each
# witnessed (seq, hash) must still be in the chain, or have been pruned: below the anchor AND
# scanned before the checkpoint's cutoff. The reports and emails that print the head are copies an
# attacker cannot reach; the witness file is the copy on this machine, out of reach of whoever can
# write only the database (keep it so: another owner, or append-only).

WITNESS_FILE = "evidence-log-heads.txt"


@dataclass(frozen=True)
class Witnessed:
    seq: int
    head: str
    database: str
    at: str  # when the head entry was scanned (the time retention goes by), UTC text


def record_head(directory: Path, database: str, seq: int, head: str, at: datetime | str) -> None:
    """Append one line `seq head time database` (owner-only file, append-only writes); `at` is when
    the head entry was scanned, which is what retention pruning goes by. Never through a link, and
    only into this user's own regular file (auditor.safe_files): OSError otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = open_own_file(directory / WITNESS_FILE, os.O_WRONLY | os.O_APPEND)
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
        if len(parts) != 4 or not parts[0].isdigit() or parts[3] != database:
            continue
        try:
            at = utc_text(parts[2])
        except (ValueError, TypeError):
            continue
        out.append(Witnessed(int(parts[0]), parts[1], database, at))
    return out


def _when(w: Witnessed) -> str:
    return w.at[:16].replace("T", " ")


def check_heads(
    verification: LogVerification,
    witnessed: Iterable[Witnessed],
    hashes: dict[int, str],
    anchor_seq: int,
    anchor_hash: str,
) -> LogVerification:
    """Every witnessed head must still be the hash of its entry (`hashes`: seq -> hash of kept entries),
    or have been pruned under retention: at or below the anchor, scanned before the cutoff."""
    if not verification.ok:
        return verification
    for w in sorted(witnessed, key=lambda w: w.seq):
        if w.seq <= anchor_seq and w.seq > 0:
            if w.seq == anchor_seq and w.head != anchor_hash:
                return replace(
                    verification,
                    ok=False,
                    first_bad_seq=w.seq,
                    reason=(
                        f"entry {w.seq} is not the one a report printed as the log's head (scanned {_when(w)} UTC, "
                        f"{w.head[:16]}...): the log was rewritten or replaced"
                    ),
                )
            if verification.cutoff is None or w.at >= verification.cutoff:
                return replace(
                    verification,
                    ok=False,
                    first_bad_seq=w.seq,
                    reason=(
                        f"entry {w.seq}, whose hash a report printed as the log's head (scanned {_when(w)} UTC), is gone: "
                        "a checkpoint claims it was pruned, but it is inside the retention window "
                        "(the log was emptied or cut, and the checkpoint forged)"
                    ),
                )
            continue
        actual = anchor_hash if w.seq == anchor_seq else hashes.get(w.seq)
        if actual is None:
            return replace(
                verification,
                ok=False,
                first_bad_seq=w.seq,
                reason=(
                    f"entry {w.seq}, whose hash a report printed as the log's head (scanned {_when(w)} UTC), is gone "
                    "(the log was cut at its end or replaced)"
                ),
            )
        if actual != w.head:
            return replace(
                verification,
                ok=False,
                first_bad_seq=w.seq,
                reason=(
                    f"entry {w.seq} is not the one a report printed as the log's head (scanned {_when(w)} UTC, "
                    f"{w.head[:16]}...): the log was rewritten or replaced"
                ),
            )
    return verification


def check_expected_head(
    verification: LogVerification, digest: str, witnessed: Iterable[Witnessed], hashes: dict[int, str]
) -> LogVerification:
    """`verify-log --expect-head`: a head from a report must be a kept entry's hash, or a head the
    witness file shows was scanned before the cutoff (pruned under retention). The anchor's hash
    alone proves nothing: a forged checkpoint names whatever hash it likes."""
    if not verification.ok or digest in hashes.values():
        return verification
    old = [
        w
        for w in witnessed
        if w.head == digest
        and w.seq <= verification.pruned_through
        and verification.cutoff is not None
        and w.at < verification.cutoff
    ]
    if old:
        return verification
    return replace(
        verification,
        ok=False,
        first_bad_seq=None,
        reason=(
            f"head {digest} from an earlier report is not in the chain"
            + (
                " (a checkpoint claims it was pruned, but nothing shows it was scanned before the retention cutoff)"
                if verification.pruned_through
                else ""
            )
        ),
    )
