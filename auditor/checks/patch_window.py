"""11.4-patch-window: a published TLS flaw (a present 11.4-vulnerabilities row) must be gone within
`[policy] patch_window_hours` (24 h) of the first scan that saw it.

The clock comes from the stored history (auditor.exposure): the auditor measures exposure as seen
from outside, from the first scan that saw the flaw; it cannot know when the flaw was published or
when the operator evaluated the patch, so a finding here is about exposure, not about diligence.
"""

from __future__ import annotations

from datetime import timedelta

from auditor.checks.base import CheckContext, finding
from auditor.config import Policy
from auditor.facts import VULNERABILITIES, Episode, ExposureHistory, span
from auditor.model import ClauseId, Finding, Status, TargetResult

CLAUSE = ClauseId.PATCH_WINDOW
MEASURES = (
    "The auditor measures exposure seen from outside, from the first scan that saw the flaw; it cannot "
    "tell when the flaw was published or when the operator evaluated the patch."
)


def _row(ep: Episode) -> str:
    return ep.key.removeprefix(VULNERABILITIES + "/")


def _line(ep: Episode, now_seen: bool = True) -> str:
    gaps = f", {len(ep.gaps)} gap(s) without a verdict" if ep.gaps else ""
    state = "present" if now_seen else "not judged by this scan, last seen present"
    return (
        f"{_row(ep)}: {state} since {ep.first_seen:%Y-%m-%d %H:%M} UTC "
        f"({span(ep.last_seen - ep.first_seen)}, {ep.scans} scan(s){gaps})"
    )


def check_patch_window(ctx: CheckContext) -> list[Finding]:
    history = ctx.exposure
    if history is None:
        return [
            finding(
                CLAUSE,
                "patch-window-no-history",
                Status.NOT_TESTED,
                "No scan history to measure the patch window",
                "This clause is judged from the stored history (`auditor schedule`, or `auditor audit "
                "--store`); an on-demand audit has none. " + MEASURES,
            )
        ]
    window = timedelta(hours=ctx.policy.patch_window_hours)
    hours = f"{ctx.policy.patch_window_hours:g} h"
    present = sorted(history.open_rows(), key=lambda ep: ep.first_seen)
    unjudged = history.unjudged_rows()
    facts = [_line(ep) for ep in present] + [_line(ep, now_seen=False) for ep in unjudged]
    facts += [
        f"{_row(ep)}: present {ep.first_seen:%Y-%m-%d %H:%M} UTC, gone at the scan of "
        f"{ep.closed_at:%Y-%m-%d %H:%M} UTC (remediated in {span(ep.remediated_in or timedelta())})"
        for ep in history.closed_rows()
    ][-5:]
    facts.append(f"window: {hours} ([policy] patch_window_hours)")
    late = [ep for ep in present if history.now - ep.first_seen > window]
    if late:
        oldest = late[0]
        return [
            finding(
                CLAUSE,
                "patch-window-exceeded",
                Status.FAIL,
                f"{', '.join(_row(ep) for ep in late)} still present after the {hours} window",
                f"First seen {span(history.now - oldest.first_seen)} ago, "
                f"{span(history.now - oldest.first_seen - window)} past the window. " + MEASURES,
                facts,
                "Patch or reconfigure now (see 11.4-vulnerabilities for the fix).",
            )
        ]
    if present:
        left = min(ep.first_seen + window - history.now for ep in present)
        return [
            finding(
                CLAUSE,
                "patch-window-open",
                Status.WARN,
                f"{', '.join(_row(ep) for ep in present)} present: {span(left)} left in the {hours} window",
                "Within the window since the first scan that saw it. " + MEASURES,
                facts,
            )
        ]
    if unjudged:
        return [
            finding(
                CLAUSE,
                "patch-window-not-judged",
                Status.NOT_TESTED,
                "This scan could not judge flaws seen present before",
                "The clock keeps running: a scan without a verdict is a gap, never a fix. " + MEASURES,
                facts,
            )
        ]
    return [
        finding(CLAUSE, "patch-window-no-flaw", Status.PASS, "No published flaw present", MEASURES, facts)
    ]


CHECKS = [(CLAUSE, check_patch_window)]


RENEWAL = ClauseId.CERT_RENEWAL
EVIDENCE_LOG = ClauseId.EVIDENCE_LOG


def judge_with_history(result: TargetResult, history: ExposureHistory, policy: Policy) -> None:
    """Once the stored history is read (after the checks, before the verdict is printed and stored):
    judge this clause from it, give every failing finding its exposure, say on 11.2-cert-renewal how
    late the renewal is, and recompute the verdict."""
    if result.error is not None or result.evidence is None:
        return
    ctx = CheckContext(evidence=result.evidence, policy=policy, now=result.started_at, exposure=history)
    judged = check_patch_window(ctx)
    log = next((f for f in result.findings if f.clause == EVIDENCE_LOG), None)
    if log is not None and log.status is Status.FAIL:
        judged[0].evidence.append("the evidence log failed verification: this clock cannot be proven from it")
    at = next((i for i, f in enumerate(result.findings) if f.clause == CLAUSE), len(result.findings))
    result.findings[at : at + 1] = judged
    for found in result.findings:
        if found.status is Status.FAIL and (episode := history.open(found.clause)) is not None:
            found.exposure = episode.exposure()
            if found.clause == RENEWAL:
                found.evidence.append(
                    f"renewal late: failing since {episode.first_seen:%Y-%m-%d %H:%M} UTC "
                    f"({span(episode.last_seen - episode.first_seen)}, {episode.scans} scan(s))"
                )
    result.compliant = not any(f.status is Status.FAIL for f in result.findings)
