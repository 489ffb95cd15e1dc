"""11.5-cookies (Secure, HttpOnly, SameSite, prefixes) and 12.3-cookie-consent."""

from __future__ import annotations

from auditor.model import Cookie, Finding, Status
from checks.base import CheckContext, finding, fix

COOKIE_FIX = fix(
    "proxy_cookie_flags ~ secure httponly samesite=lax;  # nginx 1.19.3+, for proxied applications",
    "Header always edit Set-Cookie ^(.*)$ \"$1; Secure; HttpOnly; SameSite=Lax\"",
    "Best fixed in the application's session settings; at the web server:",
)
CONSENT_FIX = ("Set only strictly necessary cookies before consent, and add those to "
               "[policy] cookie_allowlist in config.toml once reviewed.")


def cookie_problems(cookie: Cookie) -> list[str]:
    """Everything wrong with one cookie according to the policy and the prefix rules (RFC 6265bis)."""
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
    if cookie.name.startswith("__Host-"):
        if cookie.domain is not None or (cookie.path or "") != "/" or not cookie.secure:
            problems.append("__Host- prefix needs Secure, Path=/ and no Domain")
    elif cookie.name.startswith("__Secure-") and not cookie.secure:
        problems.append("__Secure- prefix needs Secure")
    return problems


def check_cookies(ctx: CheckContext) -> list[Finding]:
    pages = [r for r in ctx.evidence.http.https if r.error is None]
    if not pages:
        return [finding("11.5-cookies", Status.ERROR, "No HTTPS page could be fetched")]
    cookies = [(r.url, c) for r in pages for c in r.cookies]
    if not cookies:
        return [finding("11.5-cookies", Status.PASS, "No cookies are set on the audited pages",
                        f"{len(pages)} page(s) fetched; none sent Set-Cookie.", [r.url for r in pages])]
    bad = [(url, c, cookie_problems(c)) for url, c in cookies if cookie_problems(c)]
    facts = [f"{url}: Set-Cookie: {c.raw_attributes}" for url, c in cookies[:50]]
    if bad:
        detail = "; ".join(f"{c.name}: {', '.join(p)}" for _, c, p in bad[:10])
        return [finding("11.5-cookies", Status.FAIL, f"{len(bad)} of {len(cookies)} cookie(s) lack protection",
                        detail, facts, COOKIE_FIX)]
    return [finding("11.5-cookies", Status.PASS, f"All {len(cookies)} cookie(s) are Secure, HttpOnly, SameSite",
                    evidence=facts)]


def check_consent(ctx: CheckContext) -> list[Finding]:
    first = ctx.evidence.http.https[0] if ctx.evidence.http.https else None
    if first is None or first.error is not None:
        return [finding("12.3-cookie-consent", Status.ERROR, "The first page could not be fetched")]
    names = [c.name for c in first.cookies]
    if not names:
        return [finding("12.3-cookie-consent", Status.PASS, "No cookie is set before consent",
                        f"The first response of {first.url} sets no cookie.")]
    allow = ctx.policy.cookie_allowlist
    facts = [f"{first.url}: {c.raw_attributes}" for c in first.cookies]
    if allow:
        unexpected = [n for n in names if n not in allow]
        if unexpected:
            return [finding("12.3-cookie-consent", Status.FAIL,
                            f"{len(unexpected)} cookie(s) set before consent are not allow-listed",
                            ", ".join(unexpected), facts, CONSENT_FIX)]
        return [finding("12.3-cookie-consent", Status.PASS, "Only allow-listed cookies are set before consent",
                        ", ".join(names), facts)]
    return [finding("12.3-cookie-consent", Status.INFO, f"{len(names)} cookie(s) set before any interaction",
                    f"Review whether these are strictly necessary: {', '.join(names)}. "
                    "Add the reviewed ones to [policy] cookie_allowlist to turn this into a pass/fail check.",
                    facts)]


CHECKS = [("11.5-cookies", check_cookies), ("12.3-cookie-consent", check_consent)]
