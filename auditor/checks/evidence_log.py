"""11.6-evidence-log: the hash-chained evidence log verifies (auditor.evidence_log).

Pure: the run verifies the log before auditing and passes the outcome in CheckContext.evidence_log;
None means this run keeps no history (an on-demand `auditor audit` of URLs).
"""

from __future__ import annotations

from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import remediation
from auditor.model import ClauseId, Finding, Status

CLAUSE = ClauseId.EVIDENCE_LOG
FIX = remediation(ClauseId.EVIDENCE_LOG, "tampered")


def check_evidence_log(ctx: CheckContext) -> list[Finding]:
    log = ctx.evidence_log
    if log is None:
        return [
            finding(
                CLAUSE,
                "evidence-log-none",
                Status.NOT_TESTED,
                "No evidence log for this run",
                "On-demand audits are not logged; `auditor schedule` (or `auditor audit --store`) keeps the "
                "hash-chained log.",
            )
        ]
    facts = [f"entries verified: {log.entries}", f"head before this run: {log.head}"]
    if log.summary():
        facts.append(log.summary())
    if log.ok:
        return [
            finding(
                CLAUSE,
                "evidence-log-intact",
                Status.PASS,
                "The evidence log verifies",
                "Every entry's hash covers its content and the previous entry's hash, from the chain's "
                "anchor to its recorded head; only entries older than the retention window were pruned, "
                "and every head printed in a report is still there or was pruned as old.",
                facts,
            )
        ]
    where = f" at entry {log.first_bad_seq}" if log.first_bad_seq is not None else ""
    return [
        finding(
            CLAUSE,
            "evidence-log-broken",
            Status.FAIL,
            f"The evidence log is broken{where}",
            log.reason,
            facts,
            FIX,
        )
    ]


CHECKS = [(CLAUSE, check_evidence_log)]
