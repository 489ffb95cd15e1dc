"""Facts the history gives the checks: whether the evidence log verified, and how long each
failing finding has been failing. Plain data, computed by the history layer (auditor.evidence_log,
auditor.exposure) and judged by auditor.checks, which so never import the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from auditor.model import Exposure, ExposurePoint

VULNERABILITIES = "11.4-vulnerabilities"
TIMELINE_LIMIT = 30  # points an Exposure carries (the latest): a month of nights, small in every report


@dataclass(frozen=True)
class LogVerification:
    """The outcome of recomputing the chain; `first_bad_seq` names the first entry that does not fit.
    `pruned_through`/`cutoff`: entries up to that seq were pruned, all scanned before `cutoff`."""

    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    reason: str = ""
    pruned_through: int = 0
    cutoff: str | None = None

    def summary(self) -> str:
        """What pruning removed, for messages (empty when nothing was)."""
        if not self.pruned_through or self.cutoff is None:
            return ""
        return (
            f"entries 1-{self.pruned_through} pruned under retention "
            f"(scanned before {self.cutoff[:16].replace('T', ' ')} UTC)"
        )


def row_key(name: str) -> str:
    return f"{VULNERABILITIES}/{name}"


@dataclass(frozen=True)
class Gap:
    """A stretch inside an episode when nobody looked: from the last scan before it to the next one."""

    after: datetime
    before: datetime
    why: str  # "missed scan", "not audited", "not judged"


@dataclass
class Episode:
    """One continuous failure of one key; `closed_at` is the first scan that judged it passing again."""

    key: str
    first_seen: datetime
    last_seen: datetime
    first_seq: int | None
    scans: int = 1
    closed_at: datetime | None = None
    gaps: list[Gap] = field(default_factory=list)
    points: list[ExposurePoint] = field(default_factory=list)  # failing scans and gaps, oldest first

    def __post_init__(self) -> None:
        if not self.points:
            self.points.append(ExposurePoint(at=self.first_seen, state="fail"))

    def fail(self, at: datetime) -> None:
        self.last_seen, self.scans = at, self.scans + 1
        self.points.append(ExposurePoint(at=at, state="fail"))

    def gap(self, gap: Gap, at: datetime) -> None:
        self.gaps.append(gap)
        self.points.append(ExposurePoint(at=at, state="gap", why=gap.why))

    @property
    def id(self) -> str:
        return f"{self.key}@{self.first_seen:%Y-%m-%dT%H:%MZ}"

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def remediated_in(self) -> timedelta | None:
        return None if self.closed_at is None else self.closed_at - self.first_seen

    def exposure(self) -> Exposure:
        return Exposure(
            episode=self.id,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            scans=self.scans,
            gaps=len(self.gaps),
            timeline=self.points[-TIMELINE_LIMIT:],
        )


@dataclass(frozen=True)
class ExposureHistory:
    """The episodes of one target up to the scan at hand (`now`, its time): what checks read."""

    now: datetime
    by_key: dict[str, list[Episode]]

    def open(self, key: str) -> Episode | None:
        """The episode still failing at this scan (seen failing by it), if any."""
        eps = self.by_key.get(key)
        return eps[-1] if eps and eps[-1].open and eps[-1].last_seen == self.now else None

    def open_rows(self) -> list[Episode]:
        """11.4-vulnerabilities rows present at this scan."""
        return [ep for key in self.by_key if key.startswith(VULNERABILITIES + "/") and (ep := self.open(key))]

    def unjudged_rows(self) -> list[Episode]:
        """Rows not yet seen passing again, but not judged by this scan (the clock cannot say)."""
        return [
            eps[-1]
            for key, eps in self.by_key.items()
            if key.startswith(VULNERABILITIES + "/") and eps[-1].open and eps[-1].last_seen != self.now
        ]

    def closed_rows(self) -> list[Episode]:
        return [
            ep
            for key, eps in self.by_key.items()
            if key.startswith(VULNERABILITIES + "/")
            for ep in eps
            if not ep.open
        ]


def span(delta: timedelta) -> str:
    """ "8 days", "5 h", "20 min": how long, in the largest unit that fits."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        return f"{seconds // 3600} h" + (
            f" {seconds % 3600 // 60} min" if seconds < 86400 and seconds % 3600 else ""
        )
    return f"{seconds // 60} min"
