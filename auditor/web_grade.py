"""The web grade: the landing page scored as Mozilla's HTTP Observatory (algorithm version 6) scores
it, from the HTTP evidence (measuring stays in auditor.scan; this only judges).

Each of the Observatory's twelve tests gives one result; its points (auditor.web_grade_rules) are
added to 100, bonuses only when the penalties alone leave 90 or more. The page is the last response
of the audited host's landing chain (https://host/ and its same-host redirects), as a browser, and
the Observatory, see it. Information beside the SSL Labs grade, not a clause of the policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import ada_url
import http_sf
from publicsuffixlist import PublicSuffixList

from auditor.model import (
    Cookie,
    Evidence,
    HttpResponse,
    WebGrade,
    WebModifier,
    WebProbe,
)
from auditor.targets import is_ip
from auditor.web_csp import judge_csp
from auditor.web_grade_rules import (
    ALGORITHM_VERSION,
    BASELINE,
    COOKIE_ORDER,
    MINIMUM_SCORE_FOR_BONUS,
    RULES,
    SRI_ORDER,
    TESTS,
    letter,
)

SIX_MONTHS = 15_552_000  # the Observatory's "six months" (15768000 less a white lie many sites rely on)
REFERRER_PRIVATE = ("no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin")
REFERRER_UNSAFE = ("origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade")
HTML_TYPES = {"text/html", "application/xhtml+xml"}
IGNORED_COOKIES = {"heroku-session-affinity"}  # mozilla/http-observatory issue 282
_PSL = PublicSuffixList(only_icann=True)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class Page:
    """What the tests read: the landing response and the extra probe, and facts from the TLS scan."""

    response: HttpResponse
    chain: list[HttpResponse]
    probe: WebProbe
    verified: bool  # a browser accepts the certificate (trusted chain, matching name)

    def header(self, name: str) -> str | None:
        """The header as Node.js (the Observatory's client) hands it over: repeated lines joined."""
        values = self.response.header(name)
        return ", ".join(values) if values else None


Verdict = tuple[str | None, str]  # (result name, reason); None: not judged (left out of the score)


def _hsts(page: Page) -> Verdict:
    if not page.verified:
        return "hsts-invalid-cert", "the certificate is not valid, so browsers ignore HSTS"
    value = page.header("strict-transport-security")
    if value is None:
        return "hsts-not-implemented", "no Strict-Transport-Security header"
    value = value[:1024]
    if "," in value:
        return "hsts-header-invalid", "Strict-Transport-Security sent more than once"
    max_age: float | None = None
    for parameter in (p.strip().lower() for p in value.split(";")):
        if parameter.startswith("max-age="):
            max_age = _parse_int(parameter[8:128])
    if max_age is None:
        return "hsts-header-invalid", f"no max-age in {_short(value)!r}"
    # An unreadable number passes, as JavaScript's NaN < x is false in the Observatory.
    if not math.isnan(max_age) and max_age < SIX_MONTHS:
        return "hsts-implemented-max-age-less-than-six-months", f"max-age={int(max_age)} (< {SIX_MONTHS})"
    return "hsts-implemented-max-age-at-least-six-months", f"{_short(value)!r}"


def _parse_int(text: str) -> float:
    """JavaScript's parseInt(text, 10): leading digits after optional space and sign, else NaN."""
    text = text.lstrip()
    sign = -1 if text.startswith("-") else 1
    digits = text[1:] if text[:1] in "+-" and text else text
    count = next((i for i, c in enumerate(digits) if not ("0" <= c <= "9")), len(digits))
    return sign * int(digits[:count]) if count else float("nan")


def _hsts_passes(page: Page) -> bool:
    return _hsts(page)[0] == "hsts-implemented-max-age-at-least-six-months"


def _csp(page: Page) -> Verdict:
    facts = page.probe.page
    verdict = judge_csp(
        page.response.header("content-security-policy"),
        facts.meta_csp if facts else [],
        bool(page.header("content-security-policy-report-only")),
    )
    return verdict.result, verdict.reason


def _samesite(cookie: Cookie) -> str | None:
    """SameSite as the Observatory's cookie jar keeps it: strict/lax/none, "unspecified" for any
    other value, None when absent (the last attribute wins)."""
    value: str | None = None
    for part in cookie.raw_attributes.split(";")[1:]:
        key, _, given = part.partition("=")
        if key.strip().lower() == "samesite":
            given = given.strip().lower()
            value = given if given in ("strict", "lax", "none") else "unspecified"
    return value


def _samesite_malformed(cookie: Cookie) -> bool:
    """A SameSite attribute without a value, or with one other than Lax, Strict or None."""
    for part in cookie.raw_attributes.split(";"):
        key, has_value, given = part.strip().partition("=")
        if key.strip().lower() == "samesite" and (
            not has_value or given.split("=")[0].strip().lower() not in ("lax", "strict", "none")
        ):
            return True
    return False


def _worse(new: str, old: str | None, order: tuple[str, ...]) -> str:
    if old is None or (order.index(new) if new in order else -1) > (order.index(old) if old in order else -1):
        return new
    return old


def _cookies(page: Page) -> Verdict:
    jar: dict[tuple[str, str, str], Cookie] = {}  # a later cookie replaces one of the same name, domain, path
    for response in page.chain:
        for cookie in response.cookies:
            if cookie.name and cookie.name not in IGNORED_COOKIES:
                jar[(cookie.name, (cookie.domain or "").lower().lstrip("."), cookie.path or "")] = cookie
    result: str | None = None
    why: list[str] = []
    for cookie in page.response.cookies:
        if _samesite_malformed(cookie):
            result = _worse("cookies-samesite-flag-invalid", result, COOKIE_ORDER)
            why.append(f"{cookie.name}: SameSite malformed")
    if not jar:
        return "cookies-not-found", "no cookies set on the landing page"
    hsts = _hsts_passes(page)
    missing_samesite = False
    for cookie in jar.values():
        name, samesite = cookie.name.lower(), _samesite(cookie)
        session, anticsrf = "login" in name or "sess" in name, "csrf" in name
        checks = [
            (
                not cookie.secure and samesite == "none",
                "cookies-samesite-flag-invalid",
                "SameSite=None without Secure",
            ),
            (
                not cookie.secure and hsts,
                "cookies-without-secure-flag-but-protected-by-hsts",
                "no Secure (HSTS)",
            ),
            (not cookie.secure and not hsts, "cookies-without-secure-flag", "no Secure"),
            (
                anticsrf and not samesite,
                "cookies-anticsrf-without-samesite-flag",
                "anti-CSRF without SameSite",
            ),
            (
                session and not cookie.secure and hsts,
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                "session cookie without Secure (HSTS)",
            ),
            (
                session and not cookie.secure and not hsts,
                "cookies-session-without-secure-flag",
                "session cookie without Secure",
            ),
            (
                session and not cookie.http_only,
                "cookies-session-without-httponly-flag",
                "session cookie without HttpOnly",
            ),
        ]
        for applies, outcome, text in checks:
            if applies:
                result = _worse(outcome, result, COOKIE_ORDER)
                why.append(f"{cookie.name}: {text}")
        missing_samesite = missing_samesite or not samesite
    names = ", ".join(sorted(c.name for c in jar.values()))
    if result is not None:
        return result, _short("; ".join(dict.fromkeys(why)))
    if missing_samesite:
        return (
            "cookies-secure-with-httponly-sessions",
            f"{_short(names)}: Secure, but SameSite missing on some",
        )
    return "cookies-secure-with-httponly-sessions-and-samesite", f"{_short(names)}: Secure and SameSite"


def _cors(page: Page) -> Verdict:
    answer = page.probe.cors
    if answer is None or answer.error is not None:
        return None, f"no answer to the CORS preflight ({answer.error if answer else 'not sent'})"
    if not answer.allow_origin:
        return (
            "cross-origin-resource-sharing-not-implemented",
            "no Access-Control-Allow-Origin to a foreign origin",
        )
    allowed = answer.allow_origin[:256].strip().lower()
    if allowed == "*":
        return (
            "cross-origin-resource-sharing-implemented-with-public-access",
            "Access-Control-Allow-Origin: *",
        )
    if answer.allow_origin == answer.origin and (answer.allow_credentials or "").strip().lower() == "true":
        return (
            "cross-origin-resource-sharing-implemented-with-universal-access",
            f"the foreign origin {answer.origin} is echoed, with credentials",
        )
    return (
        "cross-origin-resource-sharing-implemented-with-restricted-access",
        f"Access-Control-Allow-Origin: {_short(allowed)}",
    )


def _redirection(page: Page, tls_verified: bool) -> Verdict:
    route = [ada_url.URL(hop.url) for hop in page.probe.http_route]
    if not route and page.probe.error:
        return None, page.probe.error
    if not route:
        return "redirection-not-needed-no-http", "no answer on the plain-HTTP port"
    shown = " -> ".join(_short(u.href, 60) for u in route)
    if any(u.protocol == "https:" and u.hostname == route[0].hostname for u in route) and not tls_verified:
        return "redirection-invalid-cert", f"{shown}: the certificate is not valid"
    if len(route) == 1:
        return (
            "redirection-missing",
            f"{route[0].href} answers {page.probe.http_route[0].status} without redirecting",
        )
    if route[-1].protocol != "https:":
        return "redirection-not-to-https", f"{shown}: ends on http://"
    if route[1].protocol == "http:":
        return "redirection-not-to-https-on-initial-redirection", f"{shown}: first to another http:// URL"
    if route[0].protocol == "http:" and route[1].hostname != route[0].hostname:
        return "redirection-off-host-from-http", f"{shown}: first to another host, so its HSTS is never seen"
    return "redirection-to-https", shown


def _referrer(page: Page) -> Verdict:
    headers = page.response.header("referrer-policy")
    meta = page.probe.page.meta_referrer if page.probe.page else []
    if not headers and not meta:
        return "referrer-policy-not-implemented", "no Referrer-Policy header or <meta name=referrer>"
    data = ", ".join([*headers, *meta])  # a <meta> comes last, so it wins
    valid = [
        v.strip().lower() for v in data.split(",") if v.strip().lower() in REFERRER_PRIVATE + REFERRER_UNSAFE
    ]
    policy = valid[-1] if valid else ""
    if policy in REFERRER_PRIVATE:
        return "referrer-policy-private", policy
    if policy in REFERRER_UNSAFE:
        return "referrer-policy-unsafe", f"{policy} sends the full URL or origin to other sites"
    return "referrer-policy-header-invalid", f"no known policy in {_short(data)!r}"


def _domain(host: str | None) -> str | None:
    """The registrable domain (ICANN section of the Public Suffix List), None for an IP or a suffix."""
    if not host:
        return None
    host = host.strip("[]").lower()
    return None if is_ip(host) else _PSL.privatesuffix(host)


def _sri(page: Page) -> Verdict:
    mime = (page.header("content-type") or "").split(";", 1)[0]  # not lower-cased, as the Observatory
    if mime and mime not in HTML_TYPES:
        return "sri-not-implemented-response-not-html", f"the page is {_short(mime)}"
    facts = page.probe.page
    if facts is None or facts.error is not None:
        return None, f"the page could not be read ({facts.error if facts else 'not fetched'})"
    site = _domain(ada_url.URL(page.response.url).hostname)
    result: str | None = None
    foreign = False
    why: list[str] = []
    for script in facts.scripts:
        src = script.src
        protocol_relative = src.startswith("//") and src[2:3] not in ("", "/")
        absolute = src.startswith(("http://", "https://"))
        relative = not protocol_relative and not absolute
        same_site = True
        if absolute:
            try:
                same_site = _domain(ada_url.URL(src).hostname) == site
            except ValueError:
                same_site = False
        secure_scheme = relative or src.startswith("https://")
        if relative or (same_site and not protocol_relative):
            if script.integrity and secure_scheme and result is None:
                result = "sri-implemented-and-all-scripts-loaded-securely"
            continue
        foreign = True
        if script.integrity and not secure_scheme:
            outcome, text = (
                "sri-implemented-but-external-scripts-not-loaded-securely",
                "with SRI but not over https",
            )
        elif not script.integrity and secure_scheme:
            outcome, text = "sri-not-implemented-but-external-scripts-loaded-securely", "without SRI"
        elif not script.integrity:
            outcome, text = (
                "sri-not-implemented-and-external-scripts-not-loaded-securely",
                "without SRI, not over https",
            )
        else:
            continue
        result = _worse(outcome, result, SRI_ORDER)
        why.append(f"{_short(src, 80)} {text}")
    if facts.script_count == 0:
        return "sri-not-implemented-but-no-scripts-loaded", "no <script> on the page"
    if result is None:
        result = (
            "sri-implemented-and-external-scripts-loaded-securely"
            if foreign
            else "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
        )
    return result, _short(
        "; ".join(why)
    ) if why else f"{facts.script_count} script(s), none from another site"


def _xcto(page: Page) -> Verdict:
    value = page.header("x-content-type-options")
    if not value:
        return "x-content-type-options-not-implemented", "no X-Content-Type-Options header"
    if value[:256].strip().lower() == "nosniff":
        return "x-content-type-options-nosniff", "nosniff"
    return "x-content-type-options-header-invalid", f"{_short(value)!r} is not nosniff"


def _xfo(page: Page) -> Verdict:
    facts = page.probe.page
    csp = judge_csp(
        page.response.header("content-security-policy"),
        facts.meta_csp if facts else [],
        bool(page.header("content-security-policy-report-only")),
    )
    if csp.directives is not None and "frame-ancestors" in csp.directives:
        return (
            "x-frame-options-implemented-via-csp",
            f"frame-ancestors {' '.join(sorted(csp.directives['frame-ancestors']))}",
        )
    value = page.header("x-frame-options")
    if not value:
        return "x-frame-options-not-implemented", "no X-Frame-Options header nor CSP frame-ancestors"
    xfo = value[:1024].strip().lower()
    if xfo in ("deny", "sameorigin"):
        return "x-frame-options-sameorigin-or-deny", xfo.upper()
    if xfo.startswith("allow-from"):
        return "x-frame-options-allow-from-origin", _short(value)
    return "x-frame-options-header-invalid", f"{_short(value)!r} is not DENY or SAMEORIGIN"


def _corp(page: Page) -> Verdict:
    value = (page.header("cross-origin-resource-policy") or "")[:256].strip().lower()
    if not value:
        return "corp-not-implemented", "no Cross-Origin-Resource-Policy header"
    result = {
        "same-site": "corp-implemented-with-same-site",
        "same-origin": "corp-implemented-with-same-origin",
        "cross-origin": "corp-implemented-with-cross-origin",
    }.get(value, "corp-header-invalid")
    return result, _short(value)


def _token(value: str) -> str | None:
    """The policy token of a structured-field item (RFC 8941), as HTML parses COOP and COEP; None
    when the value is not one (a string, a list, garbage)."""
    try:
        parsed = http_sf.parse(value.encode("ascii"), tltype="item")  # an item: (value, parameters)
    except (UnicodeEncodeError, http_sf.StructuredFieldError, ValueError):
        return None
    item = parsed[0] if isinstance(parsed, tuple) else None
    return str(item) if isinstance(item, http_sf.Token) else None


def _policy_header(page: Page, name: str, prefix: str, known: tuple[str, ...]) -> Verdict:
    value = page.header(name)
    if not value or not value[:1024].strip():
        return f"{prefix}-not-implemented", f"no {name} header"
    token = _token(value[:1024].strip())
    if token in known:
        return f"{prefix}-implemented-with-{token}", token
    return f"{prefix}-header-invalid", f"{_short(value)!r} is not one of {', '.join(known)}"


def _coop(page: Page) -> Verdict:
    return _policy_header(
        page,
        "cross-origin-opener-policy",
        "coop",
        ("same-origin", "same-origin-allow-popups", "noopener-allow-popups", "unsafe-none"),
    )


def _coep(page: Page) -> Verdict:
    return _policy_header(
        page, "cross-origin-embedder-policy", "coep", ("require-corp", "credentialless", "unsafe-none")
    )


def _verified(evidence: Evidence, custom_ca: bool) -> bool:
    """A browser accepts the served certificate: trusted in the store it uses, for this name."""
    deployments = evidence.tls.certificates
    if not deployments:
        return False
    first = deployments[0]
    stores = [t for t in first.trust if t.store == ("custom" if custom_ca else "Mozilla")]
    return first.hostname_matches and bool(stores) and all(t.trusted for t in stores)


def _differences(page: Page) -> list[str]:
    notes: list[str] = []
    if page.response.redirect_not_followed:
        notes.append(
            f"the landing page redirects off the audited host, which is not followed: "
            f"{page.response.redirect_not_followed}"
        )
    if page.probe.route_note:
        notes.append(f"redirect route from http://: {page.probe.route_note}")
    if page.probe.page and page.probe.page.note:
        notes.append(f"page read in part: {page.probe.page.note}")
    if page.probe.error:
        notes.append(page.probe.error)
    return notes


def web_grade(evidence: Evidence | None, custom_ca: bool = False) -> WebGrade | None:
    """The Observatory's score and letter of the landing page; None when the HTTP probe did not
    run the web probe (no evidence for it)."""
    if evidence is None or evidence.http.web is None:
        return None
    chain = [r for r in evidence.http.landing() if r is not evidence.http.plain_http]
    status = chain[-1].status if chain else None
    if not chain or chain[-1].error is not None or status is None:
        why = chain[-1].error if chain else "no HTTPS response"
        return WebGrade(
            algorithm_version=ALGORITHM_VERSION, error=f"the site did not answer over HTTPS ({why})"
        )
    response = chain[-1]
    if status < 200 or (status >= 400 and status not in (401, 403)):
        return WebGrade(
            algorithm_version=ALGORITHM_VERSION,
            page=response.url,
            error=f"the page answers HTTP {response.status} (the Observatory grades 2xx, 3xx, 401, 403)",
        )
    verified = _verified(evidence, custom_ca)
    page = Page(response=response, chain=chain, probe=evidence.http.web, verified=verified)
    tests: dict[str, Callable[[], Verdict]] = {
        "content-security-policy": lambda: _csp(page),
        "cookies": lambda: _cookies(page),
        "cross-origin-embedder-policy": lambda: _coep(page),
        "cross-origin-opener-policy": lambda: _coop(page),
        "cross-origin-resource-sharing": lambda: _cors(page),
        "redirection": lambda: _redirection(page, verified),
        "referrer-policy": lambda: _referrer(page),
        "strict-transport-security": lambda: _hsts(page),
        "subresource-integrity": lambda: _sri(page),
        "x-content-type-options": lambda: _xcto(page),
        "x-frame-options": lambda: _xfo(page),
        "cross-origin-resource-policy": lambda: _corp(page),
    }
    modifiers: list[WebModifier] = []
    differences = _differences(page)
    for test in TESTS:
        result, reason = tests[test]()
        if result is None:
            differences.append(f"{test} not judged: {reason}")
            continue
        modifiers.append(WebModifier(test=test, result=result, points=RULES[result].points, reason=reason))
    return score(modifiers, page=response.url, differences=differences)


def score(
    modifiers: list[WebModifier], page: str | None = None, differences: list[str] | None = None
) -> WebGrade:
    """100 plus the modifiers; bonuses count only when the penalties alone leave 90 or more."""
    penalties = BASELINE + sum(m.points for m in modifiers if m.points < 0)
    with_bonus = BASELINE + sum(m.points for m in modifiers)
    total = max(with_bonus if penalties >= MINIMUM_SCORE_FOR_BONUS else penalties, 0)
    if penalties < MINIMUM_SCORE_FOR_BONUS:
        for m in modifiers:
            if m.points > 0:
                m.reason += f" (bonus not counted: {penalties} < {MINIMUM_SCORE_FOR_BONUS} before bonuses)"
    return WebGrade(
        letter=letter(total),
        score=total,
        algorithm_version=ALGORITHM_VERSION,
        page=page,
        modifiers=modifiers,
        differences=differences or [],
    )
