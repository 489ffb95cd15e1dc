"""What changed between two scans of one target, and what history says about certificate renewal
(11.2-cert-renewal: "history shows the leaf replaced before the window")."""

from __future__ import annotations

from auditor.model import Certificate, Change, EndpointResult, Status, TargetChanges, TargetResult

_WORST = [Status.FAIL, Status.ERROR, Status.WARN, Status.INFO, Status.PASS, Status.NOT_TESTED]
RENEWAL = "11.2-cert-renewal"


def clause_statuses(result: TargetResult) -> dict[str, Status]:
    """The worst status of each clause."""
    out: dict[str, Status] = {}
    for f in result.findings:
        if f.clause not in out or _WORST.index(f.status) < _WORST.index(out[f.clause]):
            out[f.clause] = f.status
    return out


def _protocols(result: TargetResult) -> dict[str, set[str] | None]:
    """Accepted protocols with their suites; None for a rejected one. Untested ones are left out."""
    if result.evidence is None:
        return {}
    return {
        p.version: ({s.name for s in p.suites} if p.supported else None)
        for p in result.evidence.tls.protocols
        if p.supported is not None
    }


def _web_letter(result: TargetResult) -> str | None:
    return result.web_grade.letter if result.web_grade else None


def _web_detail(previous: TargetResult, current: TargetResult) -> str:
    """The Observatory tests whose result changed, e.g. "content-security-policy: csp-not-implemented ->
    csp-implemented-with-no-unsafe"."""
    old = {m.test: m.result for m in previous.web_grade.modifiers} if previous.web_grade else {}
    new = {m.test: m.result for m in current.web_grade.modifiers} if current.web_grade else {}
    moved = [
        f"{test}: {old.get(test, '-')} -> {new.get(test, '-')}"
        for test in [*new, *(t for t in old if t not in new)]
        if old.get(test) != new.get(test)
    ]
    scores = [
        g.score for g in (previous.web_grade, current.web_grade) if g is not None and g.score is not None
    ]
    head = f"score {scores[0]} -> {scores[1]}" if len(scores) == 2 else ""
    return "; ".join(x for x in (head, *moved) if x)


def _endpoint_state(e: EndpointResult) -> str:
    """ "grade F, not compliant": how one address fared."""
    verdict = "not audited" if e.error else "compliant" if e.compliant else "not compliant"
    return f"grade {e.letter}, {verdict}" if e.letter else verdict


def _endpoint_changes(previous: TargetResult, current: TargetResult) -> list[Change]:
    """A change on one endpoint is a change, even when the target's worst letter stays: an address's
    grade or verdict, an address added or gone. A scan from before endpoints were recorded has none
    to compare; one same address on both sides is the target itself (its own changes say it)."""
    old = {e.address: e for e in previous.endpoints}
    new = {e.address: e for e in current.endpoints}
    if not old or not new or (len(old) == len(new) == 1 and old.keys() == new.keys()):
        return []
    changes = []
    for address in [*new, *(a for a in old if a not in new)]:
        before = _endpoint_state(old[address]) if address in old else None
        after = _endpoint_state(new[address]) if address in new else None
        if before != after:
            detail = "address added" if before is None else "address gone" if after is None else ""
            changes.append(
                Change(kind="endpoint", subject=address, before=before, after=after, detail=detail)
            )
    return changes


def leaf(result: TargetResult) -> Certificate | None:
    """The leaf certificate of the first deployment served, if the scan got that far."""
    if (
        result.evidence
        and result.evidence.tls.certificates
        and result.evidence.tls.certificates[0].received_chain
    ):
        return result.evidence.tls.certificates[0].received_chain[0]
    return None


def diff_results(
    previous: TargetResult, current: TargetResult, previous_id: str | None = None
) -> TargetChanges:
    """The differences a reader of the nightly report wants to see, in a fixed order: audit error,
    grade, endpoints, web grade, clause statuses, protocols, suites, leaf certificate."""
    changes: list[Change] = []
    if (previous.error is None) != (current.error is None):
        changes.append(
            Change(
                kind="error",
                subject="audit",
                before=previous.error or "audited",
                after=current.error or "audited",
                detail="the target could not be audited" if current.error else "audited again",
            )
        )
    before_grade = previous.grade.letter if previous.grade else None
    after_grade = current.grade.letter if current.grade else None
    if before_grade != after_grade:
        changes.append(Change(kind="grade", subject="grade", before=before_grade, after=after_grade))
    changes += _endpoint_changes(previous, current)
    before_web, after_web = _web_letter(previous), _web_letter(current)
    if before_web != after_web and (previous.web_grade is not None or previous.error is not None):
        # a scan from before the web grade existed has none: that is no change of the site
        changes.append(
            Change(
                kind="web grade",
                subject="web grade",
                before=before_web,
                after=after_web,
                detail=_web_detail(previous, current),
            )
        )
    if previous.error is None and current.error is None:  # an unaudited side has no clauses to compare
        old, new = clause_statuses(previous), clause_statuses(current)
        for clause in [*new, *(c for c in old if c not in new)]:
            if old.get(clause) != new.get(clause):
                changes.append(
                    Change(
                        kind="clause",
                        subject=clause,
                        before=old[clause].value if clause in old else None,
                        after=new[clause].value if clause in new else None,
                    )
                )
    old_protocols, new_protocols = _protocols(previous), _protocols(current)
    for version in [v for v in new_protocols if v in old_protocols]:
        before, after = old_protocols[version], new_protocols[version]
        if (before is None) != (after is None):
            changes.append(
                Change(
                    kind="protocol",
                    subject=version,
                    before="rejected" if before is None else "accepted",
                    after="rejected" if after is None else "accepted",
                )
            )
        elif before is not None and after is not None:
            changes += [
                Change(kind="suite", subject=name, before=None, after="accepted", detail=version)
                for name in sorted(after - before)
            ]
            changes += [
                Change(kind="suite", subject=name, before="accepted", after=None, detail=version)
                for name in sorted(before - after)
            ]
    old_leaf, new_leaf = leaf(previous), leaf(current)
    if old_leaf and new_leaf and old_leaf.sha256_fingerprint != new_leaf.sha256_fingerprint:
        renewed = new_leaf.not_after > old_leaf.not_after
        changes.append(
            Change(
                kind="certificate",
                subject="leaf certificate",
                before=f"notAfter {old_leaf.not_after:%Y-%m-%d %H:%M} UTC",
                after=f"notAfter {new_leaf.not_after:%Y-%m-%d %H:%M} UTC",
                detail="certificate replaced (renewed)" if renewed else "certificate replaced",
            )
        )
    return TargetChanges(previous_scan_at=previous.started_at, previous_scan_id=previous_id, changes=changes)


def annotate_renewal(previous: TargetResult | None, current: TargetResult) -> None:
    """Add what history knows to the 11.2-cert-renewal finding of `current`, given the last stored scan
    that saw a certificate:

    - the leaf was replaced: record the renewal (old and new notAfter, days the old one had left);
    - same leaf and the finding fails (inside the window, or expired): automatic renewal has failed;
      said every night until a new certificate is served.
    """
    old_leaf, new_leaf = (leaf(previous) if previous else None), leaf(current)
    renewal = next((f for f in current.findings if f.clause == RENEWAL), None)
    if previous is None or old_leaf is None or new_leaf is None or renewal is None:
        return
    if old_leaf.sha256_fingerprint != new_leaf.sha256_fingerprint:
        if new_leaf.not_after > old_leaf.not_after:
            left = (old_leaf.not_after - current.started_at).total_seconds() / 86400
            renewal.evidence.append(
                f"renewed since the scan of {previous.started_at:%Y-%m-%d %H:%M} UTC: notAfter "
                f"{old_leaf.not_after:%Y-%m-%d} -> {new_leaf.not_after:%Y-%m-%d} "
                f"(the old certificate had {left:.0f} days left)"
            )
        return
    if renewal.status is Status.FAIL:
        renewal.detail = (renewal.detail + " " if renewal.detail else "") + (
            f"Renewal has failed: the same certificate was already served at the scan of "
            f"{previous.started_at:%Y-%m-%d %H:%M} UTC and has not been replaced."
        )
        renewal.evidence.append(
            f"unchanged since {previous.started_at:%Y-%m-%d %H:%M} UTC: sha256 "
            f"{new_leaf.sha256_fingerprint[:16]}..."
        )
