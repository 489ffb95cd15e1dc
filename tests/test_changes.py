"""Change detection between two scans, and the renewal history on 11.2-cert-renewal (no network)."""

from __future__ import annotations

from datetime import UTC, timedelta

from auditor.changes import annotate_renewal, diff_results
from auditor.checks import CheckContext, run_checks
from auditor.config import Policy
from auditor.grading import grade
from auditor.model import Evidence, TargetRef, TargetResult
from tests import evidence_builders as b

REF = TargetRef(url="https://good.test/", host="good.test", port=443)


def audited(evidence: Evidence, days_later: float = 0) -> TargetResult:
    """A result as the audit makes it: real checks and grade over built evidence."""
    now = b.NOW + timedelta(days=days_later)
    letter = grade(evidence)
    findings = run_checks(
        CheckContext(evidence=evidence, policy=Policy(), host="good.test", grade=letter, now=now)
    )
    return TargetResult(
        target=REF,
        started_at=now,
        duration_s=1.0,
        grade=letter,
        findings=findings,
        compliant=not any(f.status == "fail" for f in findings),
        evidence=evidence,
    )


def with_leaf(days_left: float, fingerprint: str, *, suites: dict[str, list[str]] | None = None) -> Evidence:
    leaf = b.cert(days_left=days_left).model_copy(update={"sha256_fingerprint": fingerprint})
    chain = [leaf, b.cert("CN=Intermediate", issuer="CN=Root")]
    return b.evidence(b.tls(suites, deployments=[b.deployment(chain)]))


def kinds(changes) -> list[tuple[str, str, str | None, str | None]]:
    return [(c.kind, c.subject, c.before, c.after) for c in changes.changes]


def test_same_scan_twice_is_no_change() -> None:
    first = audited(with_leaf(60, "aa"))
    changes = diff_results(first, audited(with_leaf(60, "aa")), previous_id="7")
    assert changes.changes == [] and changes.previous_scan_id == "7" and changes.previous_scan_at == b.NOW


def test_protocol_suite_grade_and_clause_changes() -> None:
    before = audited(with_leaf(60, "aa"))
    weaker = {
        "TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
        "TLS 1.2": [*b.MODERN_12, "TLS_RSA_WITH_AES_128_GCM_SHA256"],
        "TLS 1.3": b.MODERN_13,
    }
    after = audited(with_leaf(60, "aa", suites=weaker))
    found = kinds(diff_results(before, after))
    assert ("protocol", "TLS 1.0", "rejected", "accepted") in found
    assert ("suite", "TLS_RSA_WITH_AES_128_GCM_SHA256", None, "accepted") in found
    assert ("clause", "11.3-protocols", "pass", "fail") in found
    assert ("clause", "11.3-no-rsa-kex", "pass", "fail") in found
    assert found[0][0] == "grade" and found[0][2] != found[0][3]
    back = kinds(diff_results(after, before))  # and the way back
    assert ("protocol", "TLS 1.0", "accepted", "rejected") in back
    assert ("suite", "TLS_RSA_WITH_AES_128_GCM_SHA256", "accepted", None) in back


def test_untestable_protocol_is_not_called_rejected() -> None:
    before = audited(with_leaf(60, "aa"))
    evidence = with_leaf(60, "aa")
    evidence.tls.protocols[0].supported = None  # SSL 2.0 could not be tested this time
    assert not [c for c in diff_results(before, audited(evidence)).changes if c.kind == "protocol"]


def test_certificate_replaced_names_both_expiry_dates() -> None:
    old = audited(with_leaf(20, "aa"))
    new = audited(with_leaf(90, "bb"), days_later=1)
    cert = next(c for c in diff_results(old, new).changes if c.kind == "certificate")
    assert cert.before == f"notAfter {b.NOW + timedelta(days=20):%Y-%m-%d %H:%M} UTC"
    assert cert.after == f"notAfter {b.NOW + timedelta(days=90):%Y-%m-%d %H:%M} UTC"
    assert cert.detail == "certificate replaced (renewed)"


def test_error_appears_and_clears_without_clause_noise() -> None:
    good = audited(with_leaf(60, "aa"))
    down = TargetResult(
        target=REF, started_at=b.NOW, duration_s=10.0, compliant=False, error="connection refused"
    )
    appeared = kinds(diff_results(good, down))
    assert appeared[0] == ("error", "audit", "audited", "connection refused")
    assert not [c for c in appeared if c[0] == "clause"]
    assert kinds(diff_results(down, good))[0] == ("error", "audit", "connection refused", "audited")


def _renewal(result: TargetResult):
    return next(f for f in result.findings if f.clause == "11.2-cert-renewal")


def test_renewal_failed_is_said_every_night_until_fixed() -> None:
    night1 = audited(with_leaf(25, "aa"))
    night2 = audited(with_leaf(24, "aa"), days_later=1)
    annotate_renewal(night1, night2)
    assert _renewal(night2).status == "fail" and "Renewal has failed" in _renewal(night2).detail
    night3 = audited(with_leaf(23, "aa"), days_later=2)
    annotate_renewal(night2, night3)
    assert "Renewal has failed" in _renewal(night3).detail
    assert _renewal(night3).detail.count("Renewal has failed") == 1  # said once per report, not accumulated
    fixed = audited(with_leaf(90, "bb"), days_later=3)
    annotate_renewal(night3, fixed)
    renewal = _renewal(fixed)
    assert renewal.status == "pass" and "Renewal has failed" not in renewal.detail
    assert any(
        line.startswith("renewed since the scan of") and "(the old certificate had 20 days left)" in line
        for line in renewal.evidence
    )


def test_same_leaf_with_time_to_spare_is_not_a_failure() -> None:
    night1, night2 = audited(with_leaf(60, "aa")), audited(with_leaf(59, "aa"), days_later=1)
    annotate_renewal(night1, night2)
    assert _renewal(night2).status == "pass" and "Renewal" not in _renewal(night2).detail
    annotate_renewal(None, night2)  # no history: nothing to add
    assert len(_renewal(night2).evidence) == 4


def test_plain_text_report_lists_changes_with_their_detail() -> None:
    """The email's text part is what some recipients read: it must say which protocol a suite was
    added under, not only that it was."""
    from auditor.model import AuditReport
    from auditor.reports.text import render_text

    before = audited(with_leaf(60, "aa"))
    after = audited(
        with_leaf(
            60,
            "aa",
            suites={"TLS 1.2": [*b.MODERN_12, "TLS_RSA_WITH_AES_128_GCM_SHA256"], "TLS 1.3": b.MODERN_13},
        )
    )
    after.changes = diff_results(before, after)
    text = render_text(AuditReport(generated_at=b.NOW, tool_version="t", targets=[after]), tz=UTC)
    assert f"Changes since {b.NOW:%Y-%m-%d %H:%M UTC}:" in text
    assert "  - suite TLS_RSA_WITH_AES_128_GCM_SHA256: - -> accepted (TLS 1.2)" in text
    assert "  - clause 11.3-no-rsa-kex: pass -> fail" in text
