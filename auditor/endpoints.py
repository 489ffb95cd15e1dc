"""One site, several addresses: the target's verdict from the verdicts of its endpoints.

SSL Labs grades every address of a name; the policy promises section 11 for the whole site, so
one backend left on an old configuration breaks it. The target is as good as its worst endpoint:
not compliant if any endpoint is not, the lowest letter, and for each clause the worst endpoint's
findings, saying on which endpoints they hold when the endpoints disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.grading_rules import worst_letter
from auditor.model import (
    WORST_FIRST,
    ClauseId,
    EndpointResult,
    Finding,
    Status,
    TargetResult,
    clause_statuses,
)

Audited = Sequence[tuple[str, TargetResult]]  # (address, that address's result), in address order


def merge_endpoints(results: Audited) -> TargetResult:
    """The target's result from each address's result. One address: that result, with its endpoint."""
    if len(results) == 1:
        address, only = results[0]
        return only.model_copy(update={"endpoints": [_endpoint(address, only, set())]})
    audited = [(a, r) for a, r in results if r.error is None]
    statuses = {a: clause_statuses(r.findings) for a, r in audited}
    clauses = list(dict.fromkeys(f.clause for _, r in audited for f in r.findings))
    differing = {c for c in clauses if len({_signature(r.findings, c) for _, r in audited}) > 1}

    letters = [r.grade.letter for _, r in audited if r.grade is not None]
    lowest = worst_letter(letters)
    graded = next(((a, r) for a, r in audited if r.grade is not None and r.grade.letter == lowest), None)
    base_address, base = graded or (audited[0] if audited else results[0])

    merged: list[Finding] = []
    for clause in clauses:
        worst_address, worst = min(audited, key=lambda ar: _rank(statuses[ar[0]].get(clause)))
        if clause not in differing:
            merged += [f for f in worst.findings if f.clause == clause]
            continue
        status = statuses[worst_address].get(clause)
        per_endpoint = "per endpoint: " + ", ".join(
            f"{a} {(statuses[a].get(clause) or Status.NOT_TESTED).value}" for a, _ in audited
        )
        # every distinct way the clause fares at its worst (TLS 1.0 here, RC4 there), each naming its
        # endpoints; the endpoint that gives the target its letter speaks for its group
        groups: dict[tuple[tuple[str, str], ...], list[tuple[str, TargetResult]]] = {}
        for address, result in audited:
            if statuses[address].get(clause) == status:
                groups.setdefault(_signature(result.findings, clause), []).append((address, result))
        seen: set[tuple[str, str]] = set()
        for group in groups.values():
            speaker = next((r for a, r in group if a == base_address), group[0][1])
            for f in speaker.findings:
                key = _key(f)
                if f.clause != clause or key in seen:
                    continue
                seen.add(key)
                # a finding every endpoint shares (a fact of the name, such as its CAA records) names none
                holding = [
                    a for a, r in audited if any(_key(g) == key for g in r.findings if g.clause == clause)
                ]
                title = f.title
                if len(holding) < len(results):
                    title = f"{f.title} on {len(holding)} of {len(results)} endpoints: {', '.join(holding)}"
                merged.append(f.model_copy(update={"title": title, "evidence": [*f.evidence, per_endpoint]}))

    failed = [(a, r) for a, r in results if r.error is not None]
    error = "; ".join(f"{a}: {r.error}" for a, r in failed) or None
    if failed and audited:
        error = f"{len(failed)} of {len(results)} endpoints not audited ({error})"
    return base.model_copy(
        update={
            "target": base.target.model_copy(update={"ip": None}),
            "compliant": not failed and all(r.compliant for _, r in results),
            "findings": merged,
            "error": error,
            "endpoints": [_endpoint(a, r, differing) for a, r in results],
        }
    )


def _rank(status: Status | None) -> int:
    """Worst first; a clause an endpoint has no finding for ranks as not tested."""
    return WORST_FIRST.index(status or Status.NOT_TESTED)


def _signature(findings: Sequence[Finding], clause: ClauseId) -> tuple[tuple[str, str], ...]:
    """How a clause fares on one endpoint, for telling whether endpoints agree: outcome ids (titles
    of older findings), not wording or evidence."""
    return tuple(sorted((f.status.value, f.result_id or f.title) for f in findings if f.clause == clause))


def _key(f: Finding) -> tuple[str, str]:
    """One outcome of a clause: its status and result id (the title of an older finding)."""
    return f.status.value, f.result_id or f.title


def _endpoint(address: str, result: TargetResult, differing: set[ClauseId]) -> EndpointResult:
    return EndpointResult(
        address=address,
        compliant=result.compliant,
        letter=result.grade.letter if result.grade else None,
        error=result.error,
        findings=[f for f in result.findings if f.clause in differing],
        duration_s=result.duration_s,
    )
