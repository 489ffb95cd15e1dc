"""What every check receives and returns. Checks are pure functions of evidence: no network."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from auditor.config import Policy
from auditor.evidence_log import LogVerification
from auditor.exposure import ExposureHistory
from auditor.model import Evidence, Finding, Grade, Status


@dataclass(frozen=True)
class CheckContext:
    evidence: Evidence
    policy: Policy = field(default_factory=Policy)
    host: str = ""
    custom_ca: bool = False  # the target is audited against its own CA bundle
    grade: Grade | None = None  # computed before the checks (auditor.grading)
    evidence_log: LogVerification | None = None  # the history's chain, verified before this run
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    exposure: ExposureHistory | None = (
        None  # the stored history's episodes (None: no history, on-demand audit)
    )


def finding(
    clause: str,
    status: Status,
    title: str,
    detail: str = "",
    evidence: list[str] | None = None,
    remediation: str | None = None,
) -> Finding:
    return Finding(
        clause=clause,
        status=status,
        title=title,
        detail=detail,
        evidence=evidence or [],
        remediation=remediation,
    )


def fix(nginx: str, apache: str, note: str = "") -> str:
    """A remediation: the nginx lines, the Apache lines, and a sentence when they need one."""
    text = f"nginx:\n{nginx}\nApache:\n{apache}"
    return f"{note}\n{text}" if note else text
