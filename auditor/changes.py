"""What changed between two scans of one target, and what history says about renewal."""

from __future__ import annotations

from auditor.model import Change, Status, TargetChanges, TargetResult

_WORST = [Status.FAIL, Status.ERROR, Status.WARN, Status.INFO, Status.PASS, Status.NOT_TESTED]


def _clause_statuses(result: TargetResult) -> dict[str, Status]:
    out: dict[str, Status] = {}
    for f in result.findings:
        if f.clause not in out or _WORST.index(f.status) < _WORST.index(out[f.clause]):
            out[f.clause] = f.status
    return out


def _suites(result: TargetResult) -> dict[str, set[str]]:
    if result.evidence is None:
        return {}
    return {p.version: {s.name for s in p.suites} for p in result.evidence.tls.protocols if p.supported}


def _leaf(result: TargetResult):  # noqa: ANN202
    if result.evidence and result.evidence.tls.certificates and result.evidence.tls.certificates[0].received_chain:
        return result.evidence.tls.certificates[0].received_chain[0]
    return None


def diff_results(previous: TargetResult, current: TargetResult, previous_id: str | None = None) -> TargetChanges:
    changes: list[Change] = []
    if (previous.error is None) != (current.error is None):
        changes.append(Change(kind="error", subject="audit", before=previous.error or "audited",
                              after=current.error or "audited"))
    before_grade = previous.grade.letter if previous.grade else None
    after_grade = current.grade.letter if current.grade else None
    if before_grade != after_grade:
        changes.append(Change(kind="grade", subject="grade", before=before_grade, after=after_grade))
    old, new = _clause_statuses(previous), _clause_statuses(current)
    for clause in sorted(set(old) | set(new)):
        if old.get(clause) != new.get(clause):
            changes.append(Change(kind="clause", subject=clause, before=old[clause].value if clause in old else None,
                                  after=new[clause].value if clause in new else None))
    old_suites, new_suites = _suites(previous), _suites(current)
    for version in sorted(set(old_suites) | set(new_suites)):
        if version not in old_suites:
            changes.append(Change(kind="protocol", subject=version, before="rejected", after="accepted"))
        elif version not in new_suites:
            changes.append(Change(kind="protocol", subject=version, before="accepted", after="rejected"))
        else:
            for name in sorted(new_suites[version] - old_suites[version]):
                changes.append(Change(kind="suite", subject=name, before=None, after="accepted", detail=version))
            for name in sorted(old_suites[version] - new_suites[version]):
                changes.append(Change(kind="suite", subject=name, before="accepted", after=None, detail=version))
    old_leaf, new_leaf = _leaf(previous), _leaf(current)
    if old_leaf and new_leaf and old_leaf.sha256_fingerprint != new_leaf.sha256_fingerprint:
        changes.append(Change(kind="certificate", subject="leaf certificate",
                              before=f"expires {old_leaf.not_after:%Y-%m-%d}", after=f"expires {new_leaf.not_after:%Y-%m-%d}",
                              detail="certificate replaced (renewed)" if new_leaf.not_after > old_leaf.not_after
                              else "certificate replaced"))
    return TargetChanges(previous_scan_at=previous.started_at, previous_scan_id=previous_id, changes=changes)


def annotate_renewal(previous: TargetResult | None, current: TargetResult) -> None:
    """A failing 11.2-cert-renewal with the same leaf as last time means automatic renewal failed:
    say so on the finding, every night until a new certificate is served."""
    old_leaf, new_leaf = (_leaf(previous) if previous else None), _leaf(current)
    if old_leaf is None or new_leaf is None or old_leaf.sha256_fingerprint != new_leaf.sha256_fingerprint:
        return
    for finding in current.findings:
        if finding.clause == "11.2-cert-renewal" and finding.status is Status.FAIL:
            finding.detail += (f" Renewal has failed: the same certificate was already served at the previous "
                               f"scan ({previous.started_at:%Y-%m-%d %H:%M} UTC) and has not been replaced.")
            finding.evidence.append(f"unchanged since {previous.started_at:%Y-%m-%d}: sha256 "
                                    f"{new_leaf.sha256_fingerprint[:16]}...")
