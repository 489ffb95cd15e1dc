"""What every check receives and returns. Checks are pure functions of evidence: no network."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from auditor.config import Dns, Policy
from auditor.facts import ExposureHistory, LogVerification
from auditor.model import ClauseId, Evidence, Finding, Grade, Status


@dataclass(frozen=True)
class CheckContext:
    evidence: Evidence
    policy: Policy = field(default_factory=Policy)
    host: str = ""
    custom_ca: bool = False  # the target is audited against its own CA bundle
    grade: Grade | None = None  # computed before the checks (auditor.grading)
    evidence_log: LogVerification | None = None  # the history's chain, verified before this run
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    exposure: ExposureHistory | None = (
        None  # the stored history's episodes (None: no history, on-demand audit)
    )
    dns: Dns = field(default_factory=Dns)  # [dns]: require_caa, ca_identifiers (11.2-cert-trusted)


def finding(
    clause: ClauseId,
    result_id: str,
    status: Status,
    title: str,
    detail: str = "",
    evidence: list[str] | None = None,
    remediation: str | None = None,
) -> Finding:
    """A finding; `result_id` names the outcome in kebab case (e.g. "hsts-max-age-short") and keeps
    one status: history diffs and tests match on it, never on the wording of the title."""
    return Finding(
        clause=clause,
        result_id=result_id,
        status=status,
        title=title,
        detail=detail,
        evidence=evidence or [],
        remediation=remediation,
    )
