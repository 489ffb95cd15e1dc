"""11.4-grade-a: the SSL Labs-compatible grade (auditor.grading) is at least the policy's minimum."""

from __future__ import annotations

from auditor.checks.base import CheckContext, finding
from auditor.checks.evidence import not_tested
from auditor.grading import at_least, withheld
from auditor.model import ClauseId, Finding, Status

CLAUSE = ClauseId.GRADE_A


def check_grade(ctx: CheckContext) -> list[Finding]:
    g = ctx.grade
    if g is None and (why := withheld(ctx.evidence.tls)) is not None:
        return [not_tested(ctx, CLAUSE, "grade-withheld", why[:1].upper() + why[1:])]
    if g is None:
        return [finding(CLAUSE, "grade-missing", Status.NOT_TESTED, "No grade was computed")]
    facts = [
        f"grade {g.letter} (score {g.score}: protocol {g.categories.get('protocol')}, key exchange "
        f"{g.categories.get('key_exchange')}, cipher {g.categories.get('cipher')})"
    ]
    facts += [f"cap {c.grade}: {c.reason}" for c in g.caps]
    facts += [f"warning: {w}" for w in g.warnings]
    if g.letter_ignoring_trust:
        facts.append(f"if trust issues were ignored: {g.letter_ignoring_trust}")
    minimum = ctx.policy.minimum_grade
    if at_least(g.letter, minimum):
        return [
            finding(
                CLAUSE,
                "grade-meets-minimum",
                Status.PASS,
                f"Grade {g.letter}",
                f"At least {minimum}, as the policy promises.",
                facts,
            )
        ]
    reasons = "; ".join(c.reason for c in g.caps) or "; ".join(g.warnings) or f"score {g.score}"
    return [
        finding(
            CLAUSE,
            "grade-below-minimum",
            Status.FAIL,
            f"Grade {g.letter}, below {minimum}",
            reasons,
            facts,
            "Fix the findings of the other clauses listed as caps above: each cap names the "
            "configuration change (see their remediations).",
        )
    ]


CHECKS = [(CLAUSE, check_grade)]
