"""Policy checks: each module turns evidence into findings for its clause ids.

Adding a check: give the clause its entry in clauses.toml and its member in model.ClauseId; write
a function `(CheckContext) -> list[Finding]` in the module of its area and list it with its clause
in that module's CHECKS (one check per clause: tests/test_clause_data.py); add its test.
"""

from __future__ import annotations

from auditor.checks import (
    certificate,
    cookies,
    evidence_log,
    grade,
    http_headers,
    key_exchange,
    patch_window,
    preference,
    protocols,
    quantum,
    transport,
    vulnerabilities,
)
from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import CLAUSES
from auditor.model import Finding, Status

ALL_CHECKS = [
    *transport.CHECKS,
    *key_exchange.CHECKS,
    *quantum.CHECKS,
    *certificate.CHECKS,
    *protocols.CHECKS,
    *preference.CHECKS,
    *vulnerabilities.CHECKS,
    *patch_window.CHECKS,
    *grade.CHECKS,
    *http_headers.CHECKS,
    *cookies.CHECKS,
    *evidence_log.CHECKS,
]


def run_checks(ctx: CheckContext) -> list[Finding]:
    """Every finding for every clause, in the clause table's order; none is left out."""
    found: list[Finding] = []
    for clause, check in ALL_CHECKS:
        try:
            found.extend(check(ctx))
        except Exception as exc:  # noqa: BLE001  (a check bug must not hide the other clauses)
            found.append(
                finding(
                    clause,
                    "check-failed",
                    Status.ERROR,
                    "The check failed",
                    f"{check.__name__}: {type(exc).__name__}: {exc}"[:300],
                )
            )
    order = {c: i for i, c in enumerate(CLAUSES)}
    return sorted(found, key=lambda f: order.get(f.clause, len(order)))


__all__ = ["ALL_CHECKS", "CLAUSES", "CheckContext", "run_checks"]
