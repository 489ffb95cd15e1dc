"""The remediation clock (issue 18): how long each failing finding has been failing, derived only
from the stored scans of the evidence log (so `auditor verify-log` proves it) plus the scan at hand.

A finding's key is its clause id, and for 11.4-vulnerabilities also each flaw row
("11.4-vulnerabilities/BEAST (CBC with TLS 1.0)"). Scans of one target, oldest first, make episodes:
an episode opens at the first scan that saw the key fail and closes at the first later scan that
judged it passing. A scan that could not judge the key (the target not audited, the check not run,
or a rules version older than the check) and a missed scan (scans further apart than the expected
interval) are gaps: counted, shown, never taken as fixed. The clock measures exposure seen from
outside: from the first scan that saw a failure, not from when a flaw was published or when the
operator evaluated the patch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from auditor.facts import VULNERABILITIES, Episode, ExposureHistory, Gap, row_key
from auditor.model import Status, TargetResult

PRESENT, NOT_PRESENT = "PRESENT", "not present"  # the row states checks.vulnerabilities writes
JUDGED = (Status.PASS, Status.WARN, Status.INFO, Status.FAIL)
DEFAULT_INTERVAL = timedelta(hours=24)  # nightly: scans further apart than 1.5 intervals miss one
HISTORY_LIMIT = 1000  # stored scans read back at most (about three years of nights)


@dataclass(frozen=True)
class Scan:
    """One scan of a target as the clock sees it: which keys it judged, and which of them failed."""

    at: datetime
    seq: int | None  # None: the scan of this run, not stored yet
    audited: bool
    rules_version: int
    judged: frozenset[str]
    failing: frozenset[str]

    @classmethod
    def of(cls, result: TargetResult, seq: int | None = None, since: dict[str, int] | None = None) -> Scan:
        """`since`: the first rules version able to judge a key; an older scan did not judge it."""
        version = result.rules_version or 1
        judged: set[str] = set()
        failing: set[str] = set()
        for finding in result.findings:
            if finding.status in JUDGED:
                judged.add(finding.clause)
            if finding.status is Status.FAIL:
                failing.add(finding.clause)
            if finding.clause == VULNERABILITIES:
                for line in finding.evidence:  # the row lines: "<row>: PRESENT | not present | not tested"
                    name, _, state = line.rpartition(": ")
                    if name and state in (PRESENT, NOT_PRESENT):
                        judged.add(row_key(name))
                        if state == PRESENT:
                            failing.add(row_key(name))
        able = {key for key in judged if (since or {}).get(key, 1) <= version}
        return cls(
            result.started_at, seq, result.error is None, version, frozenset(able), frozenset(failing & able)
        )


def episodes(scans: Iterable[Scan], interval: timedelta = DEFAULT_INTERVAL) -> dict[str, list[Episode]]:
    """Every episode of every key, from scans oldest first."""
    found: dict[str, list[Episode]] = {}
    previous: Scan | None = None
    for scan in scans:
        missed = previous is not None and scan.at - previous.at > interval * 1.5
        for key, eps in found.items():
            current = eps[-1]
            if not current.open:
                continue
            if missed and previous is not None:  # the point stands where the missed scan was due
                current.gap(Gap(previous.at, scan.at, "missed scan"), previous.at + interval)
            if key in scan.failing:
                current.fail(scan.at)
            elif key in scan.judged:
                current.closed_at = scan.at
            elif previous is not None:
                current.gap(
                    Gap(previous.at, scan.at, "not judged" if scan.audited else "not audited"), scan.at
                )
        for key in scan.failing:
            eps = found.setdefault(key, [])
            if not eps or not eps[-1].open:
                eps.append(Episode(key, scan.at, scan.at, scan.seq))
        previous = scan
    return found


def history_of(
    current: TargetResult,
    stored: Iterator[tuple[int, TargetResult]],
    since: dict[str, int] | None = None,
    interval: timedelta = DEFAULT_INTERVAL,
    limit: int = HISTORY_LIMIT,
) -> ExposureHistory:
    """The exposure history of `current` given its target's stored scans, newest first. Reading
    stops at the first stored scan that judged passing every key failing now or at the previous
    scan (where those episodes began), so a long history is not read every night; an episode that
    was already failing at that scan is left out (its start was not read), never shown shorter."""
    now = Scan.of(current, None, since)
    pending = set(now.failing)
    older: list[Scan] = []
    cut = False
    for seq, result in stored:
        scan = Scan.of(result, seq, since)
        if not older:
            pending |= scan.failing  # so an episode this scan closes is read whole
        older.append(scan)
        pending -= scan.judged - scan.failing
        if not pending or len(older) >= limit:
            cut = True
            break
    found = episodes([*reversed(older), now], interval)
    if cut:
        found = {
            key: kept
            for key, eps in found.items()
            if (kept := [ep for ep in eps if ep.first_seen > older[-1].at])
        }
    return ExposureHistory(current.started_at, found)


def all_episodes(
    stored: Iterator[tuple[int, TargetResult]],
    since: dict[str, int] | None = None,
    interval: timedelta = DEFAULT_INTERVAL,
) -> dict[str, list[Episode]]:
    """Every episode of a target's stored scans (newest first, as Store.recent yields them)."""
    scans = [Scan.of(result, seq, since) for seq, result in stored]
    return episodes(reversed(scans), interval)
