"""Unit tests of the policy checks on evidence built in memory (no network): every clause can
pass and every clause can fail."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.checks import CheckContext, run_checks
from auditor.checks.clauses import CLAUSES
from auditor.config import Policy
from auditor.facts import ExposureHistory, LogVerification
from auditor.grading import grade
from auditor.model import (
    Attempt,
    AttemptErrorReason,
    ClauseId,
    Evidence,
    Finding,
    Grade,
    HandshakeSimulation,
    HttpResponse,
    Status,
    Vulnerabilities,
    clause_statuses,
)
from auditor.suites import describe
from tests import evidence_builders as b


def statuses(ev: Evidence, **ctx_kwargs: Any) -> dict[str, Status]:
    """The worst status per clause."""
    ctx = CheckContext(evidence=ev, host="good.test", now=b.NOW, **ctx_kwargs)
    return {clause.value: status for clause, status in clause_statuses(run_checks(ctx)).items()}


def no_exposure() -> ExposureHistory:
    """A stored history with nothing failing (11.4-patch-window can judge: it passes)."""
    return ExposureHistory(b.NOW, {})


def findings(ev: Evidence, clause: str, **ctx_kwargs: Any) -> list[Finding]:
    ctx = CheckContext(evidence=ev, host="good.test", now=b.NOW, **ctx_kwargs)
    return [f for f in run_checks(ctx) if f.clause == clause]


def test_compliant_site_passes_every_clause() -> None:
    """Fast-engine evidence of a compliant site, its grade, and a verified evidence log: every clause
    passes, none is left untested."""
    ev = b.evidence()
    log = LogVerification(ok=True, entries=3, head="00" * 32)
    result = statuses(ev, grade=grade(ev), evidence_log=log, exposure=no_exposure())
    assert result == dict.fromkeys(CLAUSES, Status.PASS)


def test_every_finding_names_a_clause_and_failures_carry_remediation() -> None:
    ev = b.evidence(
        b.tls({"TLS 1.0": ["TLS_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.2": ["TLS_RSA_WITH_AES_256_GCM_SHA384"]}),
        b.http(
            b.page(headers=[], cookies=["sid=1"]), plain=HttpResponse(url="http://good.test/", status=200)
        ),
    )
    for f in run_checks(CheckContext(evidence=ev, host="good.test", now=b.NOW)):
        assert f.clause in CLAUSES
        if f.status is Status.FAIL:
            assert f.remediation and f.evidence, f.clause


# ---- 11.1-tls-enforced
@pytest.mark.parametrize(
    ("plain", "expected"),
    [
        (HttpResponse(url="http://good.test/", status=301, location="https://good.test/"), Status.PASS),
        (HttpResponse(url="http://good.test/", status=308, location="https://good.test/x"), Status.PASS),
        (HttpResponse(url="http://good.test/", status=302, location="https://good.test/"), Status.WARN),
        (HttpResponse(url="http://good.test/", status=301, location="http://other.test/"), Status.FAIL),
        (HttpResponse(url="http://good.test/", status=200), Status.FAIL),
        (HttpResponse(url="http://good.test/", error="connection refused"), Status.PASS),
    ],
)
def test_tls_enforced_plain_http(plain: HttpResponse, expected: Status) -> None:
    assert statuses(b.evidence(http_evidence=b.http(b.page(), plain=plain)))["11.1-tls-enforced"] is expected


def test_mixed_content_fails_tls_enforced() -> None:
    ev = b.evidence(http_evidence=b.http(b.page(mixed=["http://cdn.test/app.js"])))
    fs = findings(ev, "11.1-tls-enforced")
    assert any(f.status is Status.FAIL and "http://cdn.test/app.js" in " ".join(f.evidence) for f in fs)


# ---- 11.1-pfs and 11.3-no-rsa-kex
def test_static_rsa_fails_pfs_and_rsa_kex() -> None:
    ev = b.evidence(
        b.tls({"TLS 1.2": [*b.MODERN_12, "TLS_RSA_WITH_AES_256_GCM_SHA384"], "TLS 1.3": b.MODERN_13})
    )
    result = statuses(ev)
    assert result["11.1-pfs"] is Status.FAIL
    assert result["11.3-no-rsa-kex"] is Status.FAIL
    assert "TLS_RSA_WITH_AES_256_GCM_SHA384" in " ".join(findings(ev, "11.3-no-rsa-kex")[0].evidence)


def test_pfs_fails_when_server_prefers_a_static_suite_first() -> None:
    ev = b.evidence(b.tls({"TLS 1.2": ["TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384", *b.MODERN_12]}))
    assert statuses(ev)["11.1-pfs"] is Status.FAIL  # ECDH (static) is not forward secret


def test_tls13_only_passes_pfs() -> None:
    assert statuses(b.evidence(b.tls({"TLS 1.3": b.MODERN_13})))["11.1-pfs"] is Status.PASS


# ---- 11.3-protocols and 5.4-transit
def test_old_protocol_fails_protocols_and_transit() -> None:
    ev = b.evidence(
        b.tls(
            {
                "TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
                "TLS 1.2": b.MODERN_12,
                "TLS 1.3": b.MODERN_13,
            }
        )
    )
    result = statuses(ev)
    assert result["11.3-protocols"] is Status.FAIL
    assert result["5.4-transit"] is Status.FAIL


def test_tls13_only_warns_protocols_and_passes_transit() -> None:
    ev = b.evidence(b.tls({"TLS 1.3": b.MODERN_13}))
    f = findings(ev, "11.3-protocols")
    assert [(x.status, x.title) for x in f] == [(Status.WARN, "Only TLS 1.3 accepted; TLS 1.2 not enabled")]
    assert statuses(ev)["5.4-transit"] is Status.PASS
    # an old protocol beside TLS 1.3 alone still fails
    ev = b.evidence(b.tls({"TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.3": b.MODERN_13}))
    assert statuses(ev)["11.3-protocols"] is Status.FAIL


def test_missing_tls13_fails_protocols_only() -> None:
    result = statuses(b.evidence(b.tls({"TLS 1.2": b.MODERN_12})))
    assert result["11.3-protocols"] is Status.FAIL
    assert result["5.4-transit"] is Status.PASS


def test_form_posting_to_http_fails_transit() -> None:
    ev = b.evidence(http_evidence=b.http(b.page(forms=["http://good.test/contact"])))
    assert statuses(ev)["5.4-transit"] is Status.FAIL


def test_untested_protocol_is_an_error_not_a_pass() -> None:
    t = b.tls()
    t.protocols[2].supported = None  # TLS 1.0 could not be tested
    assert statuses(b.evidence(t))["11.3-protocols"] is Status.ERROR


# ---- certificates
def test_untrusted_chain_fails() -> None:
    ev = b.evidence(b.tls(deployments=[b.deployment(trusted=False)]))
    assert statuses(ev)["11.2-cert-trusted"] is Status.FAIL


def test_wrong_host_fails_trust() -> None:
    ev = b.evidence(b.tls(deployments=[b.deployment(matches=False)]))
    f = findings(ev, "11.2-cert-trusted")[0]
    assert f.status is Status.FAIL and "good.test" in f.title


def test_incomplete_chain_is_named() -> None:
    """Leaf alone, its issuer fetchable (AIA caIssuers) or the operator's CA bundle given: incomplete."""
    fetchable = b.cert().model_copy(update={"ca_issuers": ["http://ca.example.test/intermediate.crt"]})
    f = findings(
        b.evidence(b.tls(deployments=[b.deployment([fetchable], trusted=False)])), "11.2-cert-trusted"
    )[0]
    assert f.status is Status.FAIL and "incomplete" in f.title and "http://ca.example.test/" in f.detail
    dep = b.deployment([b.cert()], trusted=False, stores=["custom"])
    f = findings(b.evidence(b.tls(deployments=[dep])), "11.2-cert-trusted", custom_ca=True)[0]
    assert f.status is Status.FAIL and "incomplete" in f.title


def test_leaf_from_an_unknown_ca_is_not_called_incomplete() -> None:
    """A private-CA leaf sent alone, audited without its CA bundle: its CA is unknown (SSL Labs: T),
    and the finding says how to audit against a private CA."""
    no_issuer = "validation failed: candidates exhausted: all candidates exhausted with no interior errors"
    ev = b.evidence(b.tls(deployments=[b.deployment([b.cert()], trusted=False, error=no_issuer)]))
    f = findings(ev, "11.2-cert-trusted")[0]
    assert f.status is Status.FAIL and f.title == "The certificate is issued by an unknown CA"
    assert "CN=Intermediate is in none of Mozilla" in f.detail and "--ca-bundle" in f.detail
    assert "ca_bundle" in (f.remediation or "")


def test_custom_ca_is_used_instead_of_public_stores() -> None:
    dep = b.deployment(trusted=False)
    dep.trust.append(dep.trust[0].model_copy(update={"store": "custom", "trusted": True, "error": None}))
    assert statuses(b.evidence(b.tls(deployments=[dep])), custom_ca=True)["11.2-cert-trusted"] is Status.PASS
    assert statuses(b.evidence(b.tls(deployments=[dep])))["11.2-cert-trusted"] is Status.FAIL
    # the evidence leads with the store the verdict rests on; the public ones are marked as not judged
    evidence = findings(b.evidence(b.tls(deployments=[dep])), "11.2-cert-trusted", custom_ca=True)[0].evidence
    trust = [line for line in evidence if "trusted" in line]
    assert trust[0] == "custom: trusted"
    assert all(line.endswith("(not judged)") for line in trust[1:]) and len(trust) == len(dep.trust)


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        (("2.23.140.1.2.2",), Status.PASS),  # OV
        (("2.23.140.1.1",), Status.PASS),  # EV
        (("2.23.140.1.2.1",), Status.FAIL),  # DV
        ((), Status.FAIL),  # no policy
    ],
)
def test_validation_level(policies: tuple[str, ...], expected: Status) -> None:
    ev = b.evidence(
        b.tls(deployments=[b.deployment([b.cert(policies=policies), b.cert("CN=I", issuer="CN=R")])])
    )
    assert statuses(ev)["11.2-cert-validation-level"] is expected


def test_dv_allowed_when_policy_says_so() -> None:
    ev = b.evidence(b.tls(deployments=[b.deployment([b.cert(policies=("2.23.140.1.2.1",))])]))
    policy = Policy(validation_levels=["DV", "OV", "EV"])
    assert statuses(ev, policy=policy)["11.2-cert-validation-level"] is Status.PASS


def test_sha1_intermediate_fails_signature_but_root_is_ignored() -> None:
    chain = [b.cert(), b.cert("CN=I", issuer="CN=R", sig_hash="sha1", sig_alg="sha1WithRSAEncryption")]
    assert (
        statuses(b.evidence(b.tls(deployments=[b.deployment(chain)])))["11.2-cert-signature"] is Status.FAIL
    )
    root = b.cert("CN=R", self_signed=True, sig_hash="sha1", sig_alg="sha1WithRSAEncryption")
    chain = [b.cert(), b.cert("CN=I", issuer="CN=R"), root]
    assert (
        statuses(b.evidence(b.tls(deployments=[b.deployment(chain)])))["11.2-cert-signature"] is Status.PASS
    )


def test_ed25519_signature_passes() -> None:
    chain = [b.cert(sig_hash=None, sig_alg="ed25519", key_type="Ed25519", key_bits=256)]
    assert (
        statuses(b.evidence(b.tls(deployments=[b.deployment(chain)])))["11.2-cert-signature"] is Status.PASS
    )


@pytest.mark.parametrize(
    ("days_left", "expected"), [(60, Status.PASS), (31, Status.PASS), (10, Status.FAIL), (-1, Status.FAIL)]
)
def test_renewal_days_window(days_left: float, expected: Status) -> None:
    ev = b.evidence(b.tls(deployments=[b.deployment([b.cert(days_left=days_left)])]))
    assert statuses(ev)["11.2-cert-renewal"] is expected


def test_renewal_fraction_rule_is_applied_and_named() -> None:
    # 47-day certificate with 20 days left: fine by a third of lifetime (15.7 d), not by 30 days.
    ev = b.evidence(b.tls(deployments=[b.deployment([b.cert(days_left=20, lifetime=47)])]))
    assert statuses(ev)["11.2-cert-renewal"] is Status.FAIL
    f = findings(ev, "11.2-cert-renewal", policy=Policy(renewal_fraction=1 / 3))[0]
    assert f.status is Status.PASS and any("lifetime" in e for e in f.evidence)


# ---- vulnerabilities
@pytest.mark.parametrize(
    "vulns",
    [
        Vulnerabilities(heartbleed=True),
        Vulnerabilities(ccs_injection=True),
        Vulnerabilities(robot="VULNERABLE_STRONG_ORACLE"),
        Vulnerabilities(secure_renegotiation=False, client_renegotiation_dos=True),
        Vulnerabilities(compression=True),
    ],
)
def test_probe_vulnerabilities_fail(vulns: Vulnerabilities) -> None:
    assert statuses(b.evidence(b.tls(vulns=vulns)))["11.4-vulnerabilities"] is Status.FAIL


@pytest.mark.parametrize(
    ("suites", "name"),
    [
        ({"TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.2": b.MODERN_12}, "BEAST"),
        ({"TLS 1.2": [*b.MODERN_12, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"]}, "SWEET32"),
        ({"TLS 1.2": [*b.MODERN_12, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"]}, "RC4"),
        ({"TLS 1.2": [*b.MODERN_12, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"]}, "Export"),
        ({"SSL 3.0": ["TLS_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.2": b.MODERN_12}, "POODLE"),
        ({"TLS 1.2": [*b.MODERN_12, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"]}, "Logjam"),
    ],
)
def test_inferred_vulnerabilities_fail(suites: dict[str, list[str]], name: str) -> None:
    ev = b.evidence(b.tls(suites, dh_bits=768))
    f = findings(ev, "11.4-vulnerabilities")[0]
    assert f.status is Status.FAIL and name in f.title


@pytest.mark.parametrize(
    ("suites", "expected"),
    [
        ({"TLS 1.2": b.MODERN_12, "TLS 1.3": b.MODERN_13}, Status.INFO),  # RFC 8446 4.1.3 sentinel: info only
        ({"TLS 1.1": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.2": b.MODERN_12}, Status.FAIL),
        (
            {
                "TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
                "TLS 1.1": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
            },
            Status.FAIL,
        ),
        ({"TLS 1.2": b.MODERN_12}, Status.PASS),  # one protocol: nothing to fall back to
    ],
)
def test_missing_fallback_scsv_counts_only_below_tls12(
    suites: dict[str, list[str]], expected: Status
) -> None:
    vulns = Vulnerabilities(
        heartbleed=False,
        ccs_injection=False,
        robot="NOT_VULNERABLE_NO_ORACLE",
        secure_renegotiation=True,
        client_renegotiation_dos=False,
        compression=False,
        fallback_scsv=False,
    )
    fs = findings(b.evidence(b.tls(suites, vulns=vulns)), "11.4-vulnerabilities")
    scsv_flaw = any(f.status is Status.FAIL and "Missing TLS_FALLBACK_SCSV" in f.title for f in fs)
    assert scsv_flaw is (expected is Status.FAIL)
    if expected is Status.INFO:
        assert [f.status for f in fs] == [Status.PASS, Status.INFO]
        assert "RFC 8446" in fs[1].detail
    if expected is Status.PASS:
        assert [f.status for f in fs] == [Status.PASS]


# ---- HSTS
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=63072000; includeSubDomains; preload", Status.PASS),
        ("max-age=20000000", Status.WARN),
        ("max-age=86400", Status.FAIL),
        ("includeSubDomains", Status.FAIL),
        (None, Status.FAIL),
    ],
)
def test_hsts(header: str | None, expected: Status) -> None:
    headers = [("Strict-Transport-Security", header)] if header else []
    assert statuses(b.evidence(http_evidence=b.http(b.page(headers=headers))))["11.5-hsts"] is expected


def test_hsts_reports_include_subdomains_and_preload() -> None:
    ev = b.evidence(
        http_evidence=b.http(b.page(headers=[("Strict-Transport-Security", "max-age=63072000; preload")]))
    )
    f = findings(ev, "11.5-hsts")[0]
    assert "includeSubDomains: no" in f.evidence and "preload: yes" in f.evidence


# ---- cookies
@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("sid=abc; Secure; HttpOnly; SameSite=Lax; Path=/", Status.PASS),
        ("sid=abc; Secure; HttpOnly; SameSite=Strict", Status.PASS),
        ("sid=abc; Secure; HttpOnly; SameSite=None", Status.PASS),
        ("sid=abc; HttpOnly; SameSite=None", Status.FAIL),
        ("sid=abc; Secure; SameSite=Lax", Status.FAIL),
        ("sid=abc; Secure; HttpOnly", Status.FAIL),
        ("__Host-sid=abc; Secure; HttpOnly; SameSite=Lax; Path=/; Domain=good.test", Status.FAIL),
        ("__Host-sid=abc; Secure; HttpOnly; SameSite=Lax; Path=/", Status.PASS),
        ("__Secure-id=1; HttpOnly; SameSite=Lax", Status.FAIL),
    ],
)
def test_cookie_attributes(cookie: str, expected: Status) -> None:
    assert statuses(b.evidence(http_evidence=b.http(b.page(cookies=[cookie]))))["11.5-cookies"] is expected


def test_cookie_values_never_reach_findings() -> None:
    ev = b.evidence(http_evidence=b.http(b.page(cookies=["sid=SECRETVALUE; Secure"])))
    text = " ".join(f.model_dump_json() for f in run_checks(CheckContext(evidence=ev, host="good.test")))
    assert "SECRETVALUE" not in text and "sid=<redacted>" in text


def test_cookie_consent_info_then_allowlist() -> None:
    ev = b.evidence(
        http_evidence=b.http(
            b.page(cookies=["sid=1; Secure; HttpOnly; SameSite=Lax", "_ga=2; Secure; HttpOnly; SameSite=Lax"])
        )
    )
    assert statuses(ev)["12.3-cookie-consent"] is Status.INFO
    assert statuses(ev, policy=Policy(cookie_allowlist=["sid"]))["12.3-cookie-consent"] is Status.FAIL
    assert statuses(ev, policy=Policy(cookie_allowlist=["sid", "_ga"]))["12.3-cookie-consent"] is Status.PASS


# ---- 11.3-aes256gcm-first
def _ordered(suites: dict[str, list[str]], enforces: bool | None = True) -> Evidence:
    t = b.tls(suites)
    for p in t.protocols:
        if p.supported:
            p.in_server_order = enforces is not False
            p.server_enforces_order = enforces
    return b.evidence(t)


def test_aes256gcm_first_passes_when_first_in_every_protocol() -> None:
    assert (
        statuses(_ordered({"TLS 1.2": b.MODERN_12, "TLS 1.3": b.MODERN_13}))["11.3-aes256gcm-first"]
        is Status.PASS
    )


def test_chacha_or_aes128_first_fails() -> None:
    ev = _ordered({"TLS 1.2": b.MODERN_12[1:] + b.MODERN_12[:1], "TLS 1.3": b.MODERN_13})
    f = findings(ev, "11.3-aes256gcm-first")[0]
    assert f.status is Status.FAIL and "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" in f.detail
    ev = _ordered({"TLS 1.2": b.MODERN_12, "TLS 1.3": ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"]})
    assert statuses(ev)["11.3-aes256gcm-first"] is Status.FAIL


def test_client_order_fails_and_unknown_order_is_not_tested() -> None:
    assert statuses(_ordered({"TLS 1.2": b.MODERN_12}, enforces=False))["11.3-aes256gcm-first"] is Status.FAIL
    unordered = b.evidence(
        b.tls({"TLS 1.2": b.MODERN_12}, engine="thorough")
    )  # exhaustive scan: no order measured
    assert statuses(unordered)["11.3-aes256gcm-first"] is Status.NOT_TESTED


# ---- 11.3-ecdhe-default and 11.4-grade-a
def _simulated(suite: str, group: str | None) -> Evidence:
    ev = b.evidence()
    ev.tls.simulations = [
        HandshakeSimulation(
            client="Chrome", reference=True, protocol="TLS 1.2", suite=describe(suite, ephemeral_group=group)
        )
    ]
    return ev


def test_ecdhe_default() -> None:
    assert statuses(_simulated("TLS_AES_128_GCM_SHA256", "X25519"))["11.3-ecdhe-default"] is Status.PASS
    assert (
        statuses(_simulated("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DH"))["11.3-ecdhe-default"] is Status.FAIL
    )
    assert (
        statuses(_simulated("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "secp224r1"))["11.3-ecdhe-default"]
        is Status.FAIL
    )


def test_ecdhe_default_is_open_while_a_reference_client_is_untested() -> None:
    """One client negotiated ECDHE, another was never answered (a server that stopped answering):
    the pass would speak for a client nobody saw, so the clause is error; a proven failure stands."""
    untested = HandshakeSimulation(
        client="Firefox",
        reference=True,
        error="not tested: the server stopped answering after 2 connections",
        attempt=Attempt.failed(AttemptErrorReason.SERVER_STOPPED_ANSWERING, "stopped after 2 connections"),
    )
    ev = _simulated("TLS_AES_128_GCM_SHA256", "X25519")
    ev.tls.simulations.append(untested)
    verdict = findings(ev, "11.3-ecdhe-default")[0]
    assert (verdict.status, verdict.result_id) == (Status.ERROR, "ecdhe-incomplete"), verdict
    assert "Firefox" in verdict.detail
    failing = _simulated("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DH")
    failing.tls.simulations.append(untested)
    assert statuses(failing)["11.3-ecdhe-default"] is Status.FAIL


def test_grade_check_follows_the_policy_minimum() -> None:
    ev = b.evidence()
    assert statuses(ev, grade=Grade(letter="A-", score=90))["11.4-grade-a"] is Status.FAIL
    assert statuses(ev, grade=Grade(letter="A", score=90))["11.4-grade-a"] is Status.PASS
    assert (
        statuses(ev, grade=Grade(letter="T", score=90, letter_ignoring_trust="A+"))["11.4-grade-a"]
        is Status.FAIL
    )
    assert (
        statuses(ev, grade=Grade(letter="B", score=70), policy=Policy(minimum_grade="B"))["11.4-grade-a"]
        is Status.PASS
    )


def test_a_crashing_check_is_an_error_on_its_own_clause(monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor import checks

    def boom(ctx: CheckContext) -> list[Finding]:
        raise RuntimeError("bug")

    ev = b.evidence()
    before = run_checks(CheckContext(evidence=ev, host="good.test", now=b.NOW))
    registered = [i for i, (clause, _) in enumerate(checks.ALL_CHECKS) if clause == "11.5-hsts"]
    assert len(registered) == 1
    patched = list(checks.ALL_CHECKS)
    patched[registered[0]] = (ClauseId.HSTS, boom)  # the real HSTS check crashes; every other check runs
    monkeypatch.setattr(checks, "ALL_CHECKS", patched)
    after = run_checks(CheckContext(evidence=ev, host="good.test", now=b.NOW))
    hsts = [f for f in after if f.clause == "11.5-hsts"]
    assert [(f.status, f.result_id, f.title, f.detail) for f in hsts] == [
        (Status.ERROR, "check-failed", "The check failed", "boom: RuntimeError: bug")
    ]
    assert [f for f in after if f.clause != "11.5-hsts"] == [f for f in before if f.clause != "11.5-hsts"]


def test_dh_1024_is_a_warning_and_weak_curves_fail() -> None:
    ev = b.evidence(b.tls({"TLS 1.2": [*b.MODERN_12, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"]}, dh_bits=1024))
    f = findings(ev, "11.4-vulnerabilities")[0]
    assert f.status is Status.WARN and "1024-bit DH" in " ".join(f.evidence)
    t = b.tls()
    t.groups = ["X25519", "secp192r1"]
    f = findings(b.evidence(t), "11.4-vulnerabilities")[0]
    assert f.status is Status.FAIL and "Weak elliptic curves" in f.title


def test_ocsp_stapling_is_judged_only_when_the_policy_asks() -> None:
    """Stapling is a fact shown beside the grade; [policy] require_ocsp_stapling turns its absence into
    a warning under 11.2-cert-trusted (with the fix), and a stapling server stays clean."""
    from auditor.model import ProtocolFacts

    ev = b.evidence()
    ev.tls.facts = ProtocolFacts(ocsp_stapling=False)
    assert not [f for f in findings(ev, "11.2-cert-trusted") if f.result_id == "ocsp-not-stapled"]
    asked = Policy(require_ocsp_stapling=True)
    (warned,) = [
        f for f in findings(ev, "11.2-cert-trusted", policy=asked) if f.result_id == "ocsp-not-stapled"
    ]
    assert warned.status is Status.WARN and "ssl_stapling on;" in (warned.remediation or "")
    assert statuses(ev, policy=asked)["11.2-cert-trusted"] is Status.WARN
    ev.tls.facts = ProtocolFacts(ocsp_stapling=True)
    assert statuses(ev, policy=asked)["11.2-cert-trusted"] is Status.PASS
    ev.tls.facts = ProtocolFacts(ocsp_stapling=None)  # not measured: no verdict from a missing fact
    assert statuses(ev, policy=asked)["11.2-cert-trusted"] is Status.PASS
