"""11.5-cookies (Secure, HttpOnly, SameSite, prefixes) and 12.3-cookie-consent.

Judged on every response a browser sees: the plain-HTTP answer (a cookie set there travels in
clear), each same-host HTTPS redirect and the final page. A deletion cookie (Max-Age <= 0 or
Expires in the past) stores nothing: it is reported, never failed.
"""

from __future__ import annotations

from datetime import datetime

from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import remediation
from auditor.model import ClauseId, Cookie, Finding, HttpResponse, Status

COOKIE_FIX = remediation(ClauseId.COOKIES, "cookies")
CONSENT_FIX = remediation(ClauseId.COOKIE_CONSENT, "consent")
PLAIN_HTTP_PROBLEM = "set over plain HTTP (sent in clear; cannot be Secure)"


def shown_name(cookie: Cookie) -> str:
    """How a report names a cookie; a nameless one's text is its value, never shown."""
    return cookie.name or "(nameless cookie)"


def is_deletion(cookie: Cookie, now: datetime) -> bool:
    """Does this Set-Cookie only delete a cookie? Max-Age wins over Expires (RFC 6265bis 5.6.2)."""
    if cookie.max_age is not None:
        return cookie.max_age <= 0
    return cookie.expires is not None and cookie.expires <= now


def cookie_problems(cookie: Cookie) -> list[str]:
    """Everything wrong with one cookie according to the policy and the prefix rules (RFC 6265bis:
    the prefixes match case-insensitively)."""
    problems = []
    if not cookie.secure:
        problems.append("no Secure")
    if not cookie.http_only:
        problems.append("no HttpOnly")
    same_site = (cookie.same_site or "").strip().lower()
    if cookie.same_site is None:
        problems.append("no SameSite")
    elif same_site == "none":
        if not cookie.secure:
            problems.append("SameSite=None without Secure")
    elif same_site not in {"lax", "strict"}:
        problems.append(f"invalid SameSite={cookie.same_site}")
    name = cookie.name.lower()
    if name.startswith("__host-"):
        if cookie.domain is not None or (cookie.path or "") != "/" or not cookie.secure:
            problems.append("__Host- prefix needs Secure, Path=/ and no Domain")
    elif name.startswith("__secure-") and not cookie.secure:
        problems.append("__Secure- prefix needs Secure")
    return problems


def _seen(ctx: CheckContext) -> list[tuple[HttpResponse, Cookie]]:
    """Every cookie a browser receives: the plain-HTTP answer first, then the HTTPS responses."""
    http = ctx.evidence.http
    responses = [http.plain_http] if http.plain_http is not None and http.plain_http.error is None else []
    responses += [r for r in http.https if r.error is None]
    return [(r, c) for r in responses for c in r.cookies]


def _deletion_fact(url: str, cookie: Cookie) -> str:
    return f"{url}: deletes cookie {shown_name(cookie)} (Max-Age/Expires in the past): not judged"


def _fetch_errors(ctx: CheckContext) -> str:
    return (
        "; ".join(f"{r.url}: {r.error}" for r in ctx.evidence.http.https if r.error)
        or "no HTTPS page was fetched"
    )


def check_cookies(ctx: CheckContext) -> list[Finding]:
    pages = [r for r in ctx.evidence.http.https if r.error is None]
    if not pages:
        return [
            finding(
                ClauseId.COOKIES,
                "cookies-no-page",
                Status.ERROR,
                "No HTTPS page could be fetched",
                _fetch_errors(ctx),
            )
        ]
    seen = _seen(ctx)
    if not seen:
        return [
            finding(
                ClauseId.COOKIES,
                "cookies-none-set",
                Status.PASS,
                "No cookies are set on the audited pages",
                f"{len(pages)} HTTPS response(s) and the plain-HTTP answer fetched; none sent Set-Cookie.",
                [r.url for r in pages],
            )
        ]
    judged: list[tuple[str, Cookie, list[str]]] = []
    facts: list[str] = []
    for response, cookie in seen:
        if is_deletion(cookie, ctx.now):
            facts.append(_deletion_fact(response.url, cookie))
            continue
        over_http = response.url.startswith("http:")
        problems = ([PLAIN_HTTP_PROBLEM] if over_http else []) + cookie_problems(cookie)
        judged.append((response.url, cookie, problems))
        facts.append(f"{response.url}: Set-Cookie: {cookie.raw_attributes}")
    facts = facts[:50]
    bad = [(url, c, p) for url, c, p in judged if p]
    if bad:
        detail = "; ".join(f"{shown_name(c)} on {url}: {', '.join(p)}" for url, c, p in bad[:10])
        return [
            finding(
                ClauseId.COOKIES,
                "cookies-unprotected",
                Status.FAIL,
                f"{len(bad)} of {len(judged)} cookie(s) lack protection",
                detail,
                facts,
                COOKIE_FIX,
            )
        ]
    if not judged:
        return [
            finding(
                ClauseId.COOKIES,
                "cookies-deletions-only",
                Status.PASS,
                "Only deletion cookies are set",
                "Every Set-Cookie deletes a cookie (Max-Age <= 0 or Expires in the past): nothing is stored.",
                facts,
            )
        ]
    return [
        finding(
            ClauseId.COOKIES,
            "cookies-protected",
            Status.PASS,
            f"All {len(judged)} cookie(s) are Secure, HttpOnly, SameSite",
            evidence=facts,
        )
    ]


def check_consent(ctx: CheckContext) -> list[Finding]:
    first = ctx.evidence.http.https[0] if ctx.evidence.http.https else None
    if first is None or first.error is not None:
        return [
            finding(
                ClauseId.COOKIE_CONSENT,
                "consent-no-page",
                Status.ERROR,
                "The first page could not be fetched",
                _fetch_errors(ctx),
            )
        ]
    landing = ctx.evidence.http.landing()
    stored = [(r.url, c) for r in landing for c in r.cookies if not is_deletion(c, ctx.now)]
    facts = [f"{url}: {c.raw_attributes}" for url, c in stored]
    facts += [_deletion_fact(r.url, c) for r in landing for c in r.cookies if is_deletion(c, ctx.now)]
    names = list(dict.fromkeys(c.name for _, c in stored))
    shown = ", ".join(n or "(nameless cookie)" for n in names)
    if not names:
        return [
            finding(
                ClauseId.COOKIE_CONSENT,
                "consent-no-cookie",
                Status.PASS,
                "No cookie is set before consent",
                f"The first visit ({', '.join(r.url for r in landing)}) stores no cookie.",
                facts,
            )
        ]
    allow = ctx.policy.cookie_allowlist
    if allow:
        unexpected = [n for n in names if n not in allow]
        if unexpected:
            return [
                finding(
                    ClauseId.COOKIE_CONSENT,
                    "consent-not-allowlisted",
                    Status.FAIL,
                    f"{len(unexpected)} cookie(s) set before consent are not allow-listed",
                    ", ".join(n or "(nameless cookie)" for n in unexpected),
                    facts,
                    CONSENT_FIX,
                )
            ]
        return [
            finding(
                ClauseId.COOKIE_CONSENT,
                "consent-allowlisted-only",
                Status.PASS,
                "Only allow-listed cookies are set before consent",
                shown,
                facts,
            )
        ]
    return [
        finding(
            ClauseId.COOKIE_CONSENT,
            "consent-cookies-listed",
            Status.INFO,
            f"{len(names)} cookie(s) set before any interaction",
            f"Review whether these are strictly necessary: {shown}. "
            "Add the reviewed ones to [policy] cookie_allowlist to turn this into a pass/fail check.",
            facts,
        )
    ]


CHECKS = [(ClauseId.COOKIES, check_cookies), (ClauseId.COOKIE_CONSENT, check_consent)]
