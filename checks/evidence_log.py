"""11.6-evidence-log: the hash-chained evidence log verifies (auditor.store.Store.verify)."""

from __future__ import annotations

from auditor.model import Finding, Status
from checks.base import CheckContext, finding

CLAUSE = "11.6-evidence-log"


def check_evidence_log(ctx: CheckContext) -> list[Finding]:
    log = ctx.evidence_log
    if log is None:
        return [finding(CLAUSE, Status.NOT_TESTED, "No evidence log for this run",
                        "On-demand audits are not logged; `auditor schedule` (or `audit --store`) keeps the log.")]
    facts = [f"entries: {log.entries}", f"head: {log.head}"]
    if log.ok:
        return [finding(CLAUSE, Status.PASS, "The evidence log verifies",
                        "Every entry's hash covers its content and the previous entry's hash.", facts)]
    return [finding(CLAUSE, Status.FAIL, f"The evidence log is broken at entry {log.first_bad_seq}", log.reason, facts,
                    "Treat the log as tampered with: keep the database file for investigation, compare the head "
                    "hash with those printed in earlier reports, and restore from a backup.")]


CHECKS = [(CLAUSE, check_evidence_log)]
