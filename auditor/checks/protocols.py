"""Protocol versions: 11.3-protocols and 5.4-transit (the same TLS 1.2 floor for personal data)."""

from __future__ import annotations

from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import remediation
from auditor.checks.evidence import not_tested
from auditor.model import ClauseId, Finding, Probe, Status
from auditor.protocol_names import LEGACY_PROTOCOLS

PROTOCOL_FIX = remediation(ClauseId.PROTOCOLS, "protocols")
FORM_FIX = remediation(ClauseId.TRANSIT, "forms")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _protocol_problems(ctx: CheckContext) -> tuple[list[str], list[str], list[str]]:
    """(accepted forbidden versions, missing required versions, untested versions)."""
    tls = ctx.evidence.tls
    bad, missing, untested = [], [], []
    for version in ctx.policy.forbidden_protocols:
        p = tls.protocol(version)
        if p is None or p.supported is None:
            untested.append(version)
        elif p.supported:
            bad.append(version)
    for version in ctx.policy.required_protocols:
        p = tls.protocol(version)
        if p is None or p.supported is None:
            untested.append(version)
        elif not p.supported:
            missing.append(version)
    return bad, missing, untested


def _facts(ctx: CheckContext) -> list[str]:
    return [
        f"{p.version}: "
        + ("accepted" if p.supported else "rejected" if p.supported is False else "not tested")
        for p in ctx.evidence.tls.protocols
    ]


def _untested(
    ctx: CheckContext, clause: ClauseId, result_id: str, versions: list[str], facts: list[str]
) -> Finding:
    """The clause is `error`: these protocol versions were not tested (why: their suite probes)."""
    probes = [Probe.suites(v) for v in versions]
    return not_tested(
        ctx, clause, result_id, f"Could not test {', '.join(versions)}", *probes, Probe.SCAN, evidence=facts
    )


def _tls13_only(ctx: CheckContext, missing: list[str]) -> bool:
    """TLS 1.3 accepted and TLS 1.2 the only required version missing: stricter than the floor (Precisions)."""
    tls13 = ctx.evidence.tls.protocol("TLS 1.3")
    return missing == ["TLS 1.2"] and tls13 is not None and tls13.supported is True


def check_protocols(ctx: CheckContext) -> list[Finding]:
    bad, missing, untested = _protocol_problems(ctx)
    facts = _facts(ctx)
    if not bad and _tls13_only(ctx, missing):
        if untested:
            return [_untested(ctx, ClauseId.PROTOCOLS, "protocols-untested", untested, facts)]
        return [
            finding(
                ClauseId.PROTOCOLS,
                "protocols-tls13-only",
                Status.WARN,
                "Only TLS 1.3 accepted; TLS 1.2 not enabled",
                "Stricter than the policy's floor, but the policy promises TLS 1.2 and TLS 1.3: clients "
                "without TLS 1.3 (older Android, Java 8, embedded stacks) cannot connect.",
                facts,
                PROTOCOL_FIX,
            )
        ]
    if bad or missing:
        parts = []
        if bad:
            parts.append(f"{', '.join(bad)} accepted")
        if missing:
            parts.append(f"{', '.join(missing)} not offered")
        return [
            finding(
                ClauseId.PROTOCOLS,
                "protocols-forbidden-accepted" if bad else "protocols-required-missing",
                Status.FAIL,
                _sentence("; ".join(parts)),
                f"The policy requires {' and '.join(ctx.policy.required_protocols)} only.",
                facts,
                PROTOCOL_FIX,
            )
        ]
    if untested:
        return [_untested(ctx, ClauseId.PROTOCOLS, "protocols-untested", untested, facts)]
    return [
        finding(
            ClauseId.PROTOCOLS,
            "protocols-ok",
            Status.PASS,
            f"Only {' and '.join(ctx.policy.required_protocols)} accepted",
            evidence=facts,
        )
    ]


def check_transit(ctx: CheckContext) -> list[Finding]:
    bad, _, untested = _protocol_problems(ctx)
    floor = [v for v in bad if v in LEGACY_PROTOCOLS]
    forms = [(r.url, a) for r in ctx.evidence.http.https for a in r.insecure_form_actions]
    problems = []
    if floor:
        problems.append(f"personal data could travel over {', '.join(floor)}")
    if forms:
        problems.append(f"{len(forms)} form(s) post to http://")
    facts = _facts(ctx) + [f"form on {page} posts to {action}" for page, action in forms]
    if problems:
        return [
            finding(
                ClauseId.TRANSIT,
                "transit-old-protocol" if floor else "transit-form-over-http",
                Status.FAIL,
                _sentence("; ".join(problems)),
                "Personal data must only be sent over TLS 1.2 or later.",
                facts,
                PROTOCOL_FIX if floor else FORM_FIX,
            )
        ]
    if untested:
        return [_untested(ctx, ClauseId.TRANSIT, "transit-protocols-untested", untested, facts)]
    fetched = [r for r in ctx.evidence.http.https if r.error is None]
    if not fetched:  # no page was read: its forms are unknown, never "none post to http://"
        errors = [f"{r.url}: {r.error}" for r in ctx.evidence.http.https] or ["no HTTPS page was fetched"]
        return [
            finding(
                ClauseId.TRANSIT,
                "transit-no-page",
                Status.ERROR,
                "The audited pages could not be fetched",
                "Nothing below TLS 1.2, but the forms of the pages were not checked.",
                facts + errors,
            )
        ]
    return [
        finding(
            ClauseId.TRANSIT,
            "transit-ok",
            Status.PASS,
            "Nothing below TLS 1.2; no form posts to http://",
            f"{len(fetched)} audited page(s) checked for insecure form targets.",
            facts,
        )
    ]


CHECKS = [(ClauseId.PROTOCOLS, check_protocols), (ClauseId.TRANSIT, check_transit)]
