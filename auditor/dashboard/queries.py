"""What the dashboard reads from the history store, shaped for its pages.

Read-only: the store is opened with create=False and only selected from. Stored entries never change
(the log is append-only), so a parsed scan is cached by its seq; the overview is rebuilt only when
the chain's head moves; the evidence-log verification (a walk of the whole chain) is redone at most
every `verify_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from auditor.changes import diff_results, leaf
from auditor.checks.clauses import CLAUSES
from auditor.config import Config
from auditor.errors import StoreError
from auditor.evidence_log import SCAN
from auditor.facts import LogVerification
from auditor.grading_rules import ALL_LETTERS
from auditor.model import ClauseId, Finding, Status, TargetChanges, TargetResult
from auditor.reports import view
from auditor.store import Store, entries
from auditor.targets import TargetError, parse_url

PARSED_CACHE = 512  # parsed scans kept (a site page reads about 30)
GRID_DAYS = 30  # the clause-by-day grid: the last month
CHART_SCANS = 120  # the grade chart: the last 120 scans (four months of nights)
_RANK = {view.FAILING: 0, view.NOT_AUDITED: 1, view.COMPLIANT: 2}
_LETTER_RANK = {letter: i for i, letter in enumerate(ALL_LETTERS)}


@dataclass(frozen=True)
class SiteRow:
    """One site of the fleet overview, from its newest stored scan (seq None: never scanned)."""

    url: str
    name: str
    verdict: str  # view.FAILING, NOT_AUDITED, COMPLIANT
    verdict_label: str
    letter: str | None
    tone: str  # the grade badge's colour (view.grade_tone)
    failing: list[str]
    expiry_days: int | None  # days the leaf certificate has left (negative: expired)
    scanned_at: datetime | None
    seq: int | None
    error: str | None

    def worst_first(self) -> tuple[int, int, int, str]:
        """Broken policy first, then unaudited, then compliant; within each, the worse grade and
        more broken clauses first."""
        letter_rank = _LETTER_RANK.get(self.letter or "", len(ALL_LETTERS))
        return (_RANK[self.verdict], -letter_rank, -len(self.failing), self.name.lower())


@dataclass(frozen=True)
class Overview:
    rows: list[SiteRow]
    counts: dict[str, int]  # per verdict
    head: str


@dataclass(frozen=True)
class GradePoint:
    at: datetime
    letter: str | None  # None: no grade (not audited, or withheld)
    seq: int


@dataclass(frozen=True)
class ClauseRow:
    clause: str
    promise: str
    cells: list[Status | None]  # one per day of SitePage.days; None: no verdict that day


@dataclass
class SitePage:
    row: SiteRow
    latest: TargetResult | None
    findings: list[Finding]
    changes: TargetChanges | None
    previous_seq: int | None
    grades: list[GradePoint]  # oldest first
    days: list[date]
    grid: list[ClauseRow]
    scans: list[tuple[int, datetime, str | None, bool]] = field(default_factory=list)  # newest first


def days_left(result: TargetResult, now: datetime) -> int | None:
    cert = leaf(result)
    return None if cert is None else int((cert.not_after - now).total_seconds() // 86400)


def site_row(
    url: str, name: str | None, seq: int | None, result: TargetResult | None, now: datetime
) -> SiteRow:
    """The overview's row of a site, from its newest stored scan `seq` (None: none stored)."""
    if result is None:  # never scanned, or its newest entry cannot be read (verification names it)
        return SiteRow(
            url=url,
            name=name or url,
            verdict=view.NOT_AUDITED,
            verdict_label="NOT AUDITED",
            letter=None,
            tone="none",
            failing=[],
            expiry_days=None,
            scanned_at=None,
            seq=seq,
            error="never scanned" if seq is None else f"stored scan {seq} cannot be read (see verify-log)",
        )
    return SiteRow(
        url=url,
        name=name or view.display_name(result),
        verdict=view.verdict(result),
        verdict_label=view.verdict_label(result),
        letter=result.grade.letter if result.grade else None,
        tone=view.grade_tone(result),
        failing=result.failed_clauses(),
        expiry_days=days_left(result, now),
        scanned_at=result.started_at,
        seq=seq,
        error=result.error,
    )


def matches(row: SiteRow, verdict: str | None, clause: str | None, letter: str | None) -> bool:
    """The overview's filters (None: any); letter "none" matches a site without a grade."""
    if verdict and row.verdict != verdict:
        return False
    if clause and clause not in row.failing:
        return False
    return not letter or (row.letter or "none") == letter


class History:
    """The store as the dashboard reads it, shared by the request threads."""

    def __init__(self, store: Store, config: Config, clock: Callable[[], datetime] | None = None) -> None:
        self.store, self.config = store, config
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._parsed: OrderedDict[int, TargetResult] = OrderedDict()
        self._overview: Overview | None = None
        self._verified: tuple[float, str, LogVerification] | None = None
        self.names = {_normal(t.url): t.name for t in config.targets}

    # ------------------------------------------------------------ reading

    def scan(self, seq: int) -> TargetResult | None:
        with self._lock:
            if seq in self._parsed:
                self._parsed.move_to_end(seq)
                return self._parsed[seq]
        result = self.store.get(seq)
        if result is not None:
            with self._lock:
                self._parsed[seq] = result
                while len(self._parsed) > PARSED_CACHE:
                    self._parsed.popitem(last=False)
        return result

    def _select(self, query: object) -> list[tuple[object, ...]]:
        try:
            with self.store.engine.connect() as conn:
                return [tuple(row) for row in conn.execute(query)]  # type: ignore[call-overload]
        except SQLAlchemyError as exc:
            message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StoreError(f"history database {self.store.name}: {message}") from None

    def latest_seqs(self) -> dict[str, int]:
        """Each stored target's newest scan."""
        query = (
            select(entries.c.target_url, func.max(entries.c.seq))
            .where(entries.c.kind == SCAN)
            .group_by(entries.c.target_url)
        )
        return {str(url): int(str(seq)) for url, seq in self._select(query)}

    # ------------------------------------------------------------ pages

    def overview(self) -> Overview:
        """Every stored target and every configured one, from its newest scan; rebuilt when the head moves."""
        head = self.store.head()
        cached = self._overview
        if cached is not None and cached.head == head:
            return cached
        now = self.clock()
        latest = self.latest_seqs()
        urls = list(dict.fromkeys([*self.names, *latest]))
        rows = [
            site_row(url, self.names.get(url), latest.get(url), self._scan_or_none(latest.get(url)), now)
            for url in urls
        ]
        rows.sort(key=SiteRow.worst_first)
        counts = {kind: sum(1 for r in rows if r.verdict == kind) for kind in _RANK}
        self._overview = Overview(rows, counts, head)
        return self._overview

    def _scan_or_none(self, seq: int | None) -> TargetResult | None:
        if seq is None:
            return None
        try:
            return self.scan(seq)
        except StoreError:  # a damaged entry: verification names it; the site shows as not audited
            return None

    def site(self, url: str) -> SitePage | None:
        """The site page's data, or None when the target is neither stored nor configured."""
        now = self.clock()
        scans = [
            (int(str(seq)), _when(at), None if grade is None else str(grade), bool(ok))
            for seq, at, grade, ok in self._select(
                select(entries.c.seq, entries.c.scanned_at, entries.c.grade, entries.c.compliant)
                .where(entries.c.kind == SCAN, entries.c.target_url == url)
                .order_by(entries.c.seq.desc())
                .limit(CHART_SCANS)
            )
        ]
        if not scans and url not in self.names:
            return None
        latest_seq = scans[0][0] if scans else None
        latest = self._scan_or_none(latest_seq)
        row = site_row(url, self.names.get(url), latest_seq, latest, now)
        previous_seq = next((seq for seq, *_ in scans[1:]), None)
        previous = self._scan_or_none(previous_seq)
        changes = diff_results(previous, latest, str(previous_seq)) if latest and previous else None
        days, grid = self._grid(scans, now)
        return SitePage(
            row=row,
            latest=latest,
            findings=view.findings_worst_first(latest) if latest else [],
            changes=changes,
            previous_seq=previous_seq,
            grades=[GradePoint(at, grade, seq) for seq, at, grade, _ in reversed(scans)],
            days=days,
            grid=grid,
            scans=scans,
        )

    def _grid(
        self, scans: Iterable[tuple[int, datetime, str | None, bool]], now: datetime
    ) -> tuple[list[date], list[ClauseRow]]:
        """Each clause's status on each of the last GRID_DAYS days (UTC), from the day's last scan."""
        today = now.astimezone(UTC).date()
        days = [today - timedelta(days=n) for n in range(GRID_DAYS - 1, -1, -1)]
        last_of_day: dict[date, int] = {}
        for seq, at, _, _ in scans:  # newest first: the first one seen is the day's last
            last_of_day.setdefault(at.astimezone(UTC).date(), seq)
        statuses: dict[date, dict[ClauseId, Status]] = {}
        for day in days:
            result = self._scan_or_none(last_of_day.get(day))
            if result is not None and result.error is None:
                statuses[day] = result.clause_statuses()
        seen = {clause for per_day in statuses.values() for clause in per_day}
        rows = [
            ClauseRow(clause, promise, [statuses.get(day, {}).get(clause) for day in days])
            for clause, promise in CLAUSES.items()
            if clause in seen
        ]
        return days, rows

    def verification(self) -> LogVerification:
        """The evidence log checked as `auditor verify-log` checks it (against the witnessed heads),
        at most every [serve] verify_seconds, and again whenever the head moves."""
        head = self.store.head()
        now = time.monotonic()
        cached = self._verified
        if cached is not None and cached[1] == head and now - cached[0] < self.config.serve.verify_seconds:
            return cached[2]
        result = self.store.verify_with_heads(
            self.config.output.directory, self.config.history.retention_months
        )
        self._verified = (now, head, result)
        return result


def _normal(url: str) -> str:
    try:
        return parse_url(url).url
    except TargetError:
        return url


def _when(value: object) -> datetime:
    """A stored scanned_at (fixed-width UTC text) as a datetime."""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
