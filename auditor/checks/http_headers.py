"""11.5-hsts: Strict-Transport-Security as browsers obey it: the first HTTPS response's first
header, valid by RFC 6797 section 6.1, with the policy's max-age floors. An invalid header is
ignored by browsers, so it counts as missing; a valid one only on a later same-host response
(after a redirect) protects only the browsers that get that far: warn, naming the response.
"""

from __future__ import annotations

from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import remediation
from auditor.hsts import Hsts, HstsVerdict, hsts_verdict, parse_sts
from auditor.model import ClauseId, Finding, Status

CLAUSE = ClauseId.HSTS
HSTS_FIX = remediation(ClauseId.HSTS, "hsts")


def _describe(parsed: Hsts) -> str:
    return "valid" if parsed.valid else f"invalid: {parsed.error}"


def _facts(verdict: HstsVerdict, ctx: CheckContext) -> list[str]:
    """The header of every HTTPS response that sent one, and how a browser reads it."""
    facts = []
    for response in ctx.evidence.http.https:
        values = response.header("strict-transport-security")
        if response.error is None and values:
            where = f" (redirected from {response.redirected_from})" if response.redirected_from else ""
            facts.append(
                f"{response.url}{where}: Strict-Transport-Security: {values[0]} "
                f"[{_describe(parse_sts(values[0]))}]"
            )
            if len(values) > 1:
                facts.append(
                    f"{response.url}: {len(values)} HSTS headers sent; browsers use the first (RFC 6797 8.1)"
                )
    if verdict.first is not None and verdict.header is None:
        facts.insert(0, f"GET {verdict.first.url} -> {verdict.first.status}: no Strict-Transport-Security")
    return facts


def _only_later(verdict: HstsVerdict, facts: list[str], why_first: str, ctx: CheckContext) -> list[Finding]:
    """No usable header on the first response, a valid one on a later same-host response."""
    later = verdict.later_valid[0]
    parsed = parse_sts(later.header("strict-transport-security")[0])
    max_age = parsed.max_age or 0
    status = Status.FAIL if max_age < ctx.policy.hsts_fail_below else Status.WARN
    return [
        finding(
            CLAUSE,
            "hsts-only-later-short" if status is Status.FAIL else "hsts-only-later",
            status,
            f"HSTS only on a later response ({later.url})",
            f"{why_first} A valid header (max-age={max_age}) comes only on {later.url}, reached by "
            f"redirect: browsers that do not get that far, or a stripping attacker on the first "
            f"request, are not protected.",
            facts,
            HSTS_FIX,
        )
    ]


def check_hsts(ctx: CheckContext) -> list[Finding]:
    verdict = hsts_verdict(ctx.evidence.http)
    if verdict.first is None:
        errors = "; ".join(f"{r.url}: {r.error}" for r in ctx.evidence.http.https)
        return [finding(CLAUSE, "hsts-no-page", Status.ERROR, "No HTTPS page could be fetched", errors)]
    page, parsed = verdict.first, verdict.parsed
    facts = _facts(verdict, ctx)
    if parsed is None or not parsed.valid:
        if parsed is None:
            plain = ctx.evidence.http.plain_http
            over_http = (
                plain is not None and plain.error is None and bool(plain.header("strict-transport-security"))
            )
            title = "HSTS missing"
            why = f"The first HTTPS response ({page.url}) has no Strict-Transport-Security header" + (
                "; it is sent over plain HTTP only, where browsers ignore it." if over_http else "."
            )
        else:
            title = "HSTS invalid"
            why = (
                f"The Strict-Transport-Security header of {page.url} is invalid ({parsed.error}), so browsers "
                f"ignore it (RFC 6797 section 6.1): it counts as missing."
            )
        if verdict.later_valid:
            return _only_later(verdict, facts, why, ctx)
        return [
            finding(
                CLAUSE,
                "hsts-missing" if parsed is None else "hsts-invalid",
                Status.FAIL,
                title,
                why,
                facts,
                HSTS_FIX,
            )
        ]
    max_age = parsed.max_age or 0
    facts += [
        f"includeSubDomains: {'yes' if parsed.include_subdomains else 'no'}",
        f"preload: {'yes' if parsed.preload else 'no'}",
    ]
    p = ctx.policy
    if max_age < p.hsts_fail_below:
        return [
            finding(
                CLAUSE,
                "hsts-max-age-short",
                Status.FAIL,
                f"HSTS max-age {max_age} is too short",
                f"The policy requires at least {p.hsts_fail_below} s (fails below), {p.hsts_min_age} s "
                f"recommended.",
                facts,
                HSTS_FIX,
            )
        ]
    if max_age < p.hsts_min_age:
        return [
            finding(
                CLAUSE,
                "hsts-max-age-below-recommended",
                Status.WARN,
                f"HSTS max-age {max_age} is below {p.hsts_min_age}",
                "Accepted, but shorter than the recommended one year.",
                facts,
                HSTS_FIX,
            )
        ]
    extras = ", ".join(
        x for x, on in (("includeSubDomains", parsed.include_subdomains), ("preload", parsed.preload)) if on
    )
    return [
        finding(
            CLAUSE,
            "hsts-ok",
            Status.PASS,
            f"HSTS max-age={max_age}" + (f" with {extras}" if extras else ""),
            f"The first HTTPS response ({page.url}) sends a valid HSTS header with a long enough max-age.",
            facts,
        )
    ]


CHECKS = [(CLAUSE, check_hsts)]
