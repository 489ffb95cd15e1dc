"""The grade-over-time chart as plain geometry, drawn by templates/site.html.j2 as inline SVG.

Server-side and script-free: the page must work under a CSP without script-src. Letters are
levels (A+ on top, T and M below F, as ALL_LETTERS ranks them); time runs left to right in
proportion; a scan without a grade (not audited, or withheld) breaks the line and is marked
on the bottom axis, so a gap is never drawn as a grade.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from auditor.dashboard.queries import GradePoint
from auditor.grading_rules import ALL_LETTERS

# Two sizes of the same chart: the page shows one per screen width (a CSS media query), so the
# letters keep a readable size on a phone instead of the wide chart shrunk to a third.
WIDE, NARROW = (960, 240), (400, 240)
LEFT, RIGHT, TOP, BOTTOM = 40, 22, 12, 40  # margins: letters on the left, dates below
GOOD, MID = {"A+", "A"}, {"A-", "B"}


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    tone: str  # "good", "mid", "bad", "none"
    label: str  # the tooltip (an SVG <title>)
    seq: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    lines: list[str]  # polyline "x,y x,y" runs between ungraded scans
    dots: list[Dot]
    levels: list[tuple[float, str]]  # (y, letter): the horizontal guides
    ticks: list[tuple[float, str]]  # (x, date): the time axis
    baseline: float  # where ungraded scans are marked
    left: int  # where the plot starts and ends (the guides' ends)
    right: int


def tone(letter: str | None) -> str:
    if letter is None:
        return "none"
    return "good" if letter in GOOD else "mid" if letter in MID else "bad"


def grade_chart(points: Sequence[GradePoint], size: tuple[int, int] = WIDE) -> Chart:
    """The chart of `points` (oldest first), `size` (width, height) in SVG user units."""
    width, height = size
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    step = plot_h / len(ALL_LETTERS)
    level_y = {letter: round(TOP + step * (i + 0.5), 1) for i, letter in enumerate(ALL_LETTERS)}
    baseline = float(height - BOTTOM + 12)
    levels = [(y, letter) for letter, y in level_y.items()]
    if not points:
        return Chart(width, height, [], [], levels, [], baseline, LEFT, width - RIGHT)
    start, end = points[0].at, points[-1].at
    span = (end - start).total_seconds()

    def x_of(at: datetime) -> float:
        if span <= 0:
            return LEFT + plot_w / 2
        return round(LEFT + plot_w * (at - start).total_seconds() / span, 1)

    dots, lines, run = [], [], []
    for point in points:
        x = x_of(point.at)
        graded = point.letter in level_y
        y = level_y.get(point.letter or "", baseline)
        label = f"{point.at:%Y-%m-%d %H:%M} UTC: " + (
            f"grade {point.letter}" if graded else "no grade (not audited)"
        )
        dots.append(Dot(x, y, tone(point.letter) if graded else "none", label, point.seq))
        if graded:
            run.append(f"{x},{y}")
        elif run:
            lines.append(" ".join(run))
            run = []
    if run:
        lines.append(" ".join(run))
    ticks = _ticks(start, end, x_of, 4 if width > 600 else 2)
    return Chart(width, height, lines, dots, levels, ticks, baseline, LEFT, width - RIGHT)


def _ticks(
    start: datetime, end: datetime, x_of: Callable[[datetime], float], count: int
) -> list[tuple[float, str]]:
    """`count + 1` dates along the time axis, evenly spread (fewer when they would repeat)."""
    if end <= start:
        return [(x_of(start), f"{start:%Y-%m-%d}")]
    moments = [start + (end - start) * i / count for i in range(count + 1)]
    labels = [f"{m:%m-%d}" if (end - start).days < 365 else f"{m:%Y-%m}" for m in moments]
    ticks: list[tuple[float, str]] = []
    for moment, label in zip(moments, labels, strict=True):
        if not ticks or ticks[-1][1] != label:
            ticks.append((x_of(moment), label))
    return ticks
