"""The web grade section of the text-like reports (text, terminal, JUnit): a summary line and, with
`details`, one line per Observatory test and per difference from the Observatory's own view.
Lines are raw: each report cleans them for its medium (reports.sanitize)."""

from __future__ import annotations

from auditor.model import TargetResult, WebGrade


def summary(grade: WebGrade) -> str:
    if grade.letter is None:
        return f"Web grade: not graded ({grade.error})"
    return (
        f"Web grade {grade.letter} (score {grade.score}, Mozilla HTTP Observatory rules v{grade.algorithm_version}"
        + (f", {grade.page}" if grade.page else "")
        + ")"
    )


def modifier_line(points: int, test: str, result: str, reason: str) -> str:
    return f"{points:+4d}  {test}: {result} ({reason})"


def report_lines(result: TargetResult, details: bool = False) -> list[str]:
    grade = result.web_grade
    if grade is None:
        return []
    lines = [summary(grade)]
    if details:
        lines += [f"  {modifier_line(m.points, m.test, m.result, m.reason)}" for m in grade.modifiers]
        lines += [f"  note: {d}" for d in grade.differences]
    return lines


def letter(result: TargetResult) -> str | None:
    return result.web_grade.letter if result.web_grade else None
