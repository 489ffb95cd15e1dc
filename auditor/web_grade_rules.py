"""The rules of the web grade as data: each result of Mozilla's HTTP Observatory (algorithm version 6)
with its score modifier, the letter bands, and the bonus threshold.

Source of every number: the Observatory's scoring table and grade chart, repository
mdn/mdn-http-observatory, src/grader/charts.js (SCORE_TABLE, GRADE_CHART,
MINIMUM_SCORE_FOR_EXTRA_CREDIT) and src/constants.js (ALGORITHM_VERSION = 6), read at commit
94042bb (2026-08-20, after "add COOP + COEP scoring"); the rules are also on MDN's page "HTTP
Observatory scoring methodology". The descriptions are ours.
"""

from __future__ import annotations

from typing import NamedTuple

ALGORITHM_VERSION = 6
BASELINE = 100
MINIMUM_SCORE_FOR_BONUS = 90  # bonuses count only when the penalties alone leave at least this
SOURCE = "mdn/mdn-http-observatory src/grader/charts.js @94042bb"

# (lowest score, letter), best first; a score is first floored to a multiple of 5 (100 and more: A+)
LETTER_BANDS: tuple[tuple[int, str], ...] = (
    (100, "A+"),
    (90, "A"),
    (85, "A-"),
    (80, "B+"),
    (70, "B"),
    (65, "B-"),
    (60, "C+"),
    (50, "C"),
    (45, "C-"),
    (40, "D+"),
    (30, "D"),
    (25, "D-"),
    (0, "F"),
)


class Rule(NamedTuple):
    test: str  # the Observatory's test id
    points: int
    meaning: str


# The Observatory's tests in its own order (src/constants.js ALL_TESTS).
TESTS = (
    "content-security-policy",
    "cookies",
    "cross-origin-embedder-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-sharing",
    "redirection",
    "referrer-policy",
    "strict-transport-security",
    "subresource-integrity",
    "x-content-type-options",
    "x-frame-options",
    "cross-origin-resource-policy",
)

RULES: dict[str, Rule] = {
    # Content-Security-Policy
    "csp-implemented-with-no-unsafe-default-src-none": Rule(
        "content-security-policy", 10, "CSP with default-src 'none' and nothing unsafe"
    ),
    "csp-implemented-with-no-unsafe": Rule(
        "content-security-policy", 5, "CSP without 'unsafe-inline' or 'unsafe-eval'"
    ),
    "csp-implemented-with-unsafe-inline-in-style-src-only": Rule(
        "content-security-policy", 0, "CSP allows unsafe sources in style-src only"
    ),
    "csp-implemented-with-insecure-scheme-in-passive-content-only": Rule(
        "content-security-policy", -10, "CSP lets images or media load over http"
    ),
    "csp-implemented-with-unsafe-eval": Rule("content-security-policy", -10, "CSP allows 'unsafe-eval'"),
    "csp-implemented-with-unsafe-inline": Rule(
        "content-security-policy", -20, "CSP allows inline or overly broad scripts or objects"
    ),
    "csp-implemented-with-insecure-scheme": Rule(
        "content-security-policy", -20, "CSP lets resources load over http"
    ),
    "csp-implemented-but-duplicate-directives": Rule(
        "content-security-policy", 0, "CSP repeats report-uri or report-to"
    ),
    "csp-header-invalid": Rule("content-security-policy", -25, "CSP cannot be parsed"),
    "csp-not-implemented": Rule("content-security-policy", -25, "no CSP"),
    "csp-not-implemented-but-reporting-enabled": Rule(
        "content-security-policy", -25, "only Content-Security-Policy-Report-Only"
    ),
    # Cookies
    "cookies-secure-with-httponly-sessions-and-samesite": Rule(
        "cookies", 5, "every cookie Secure and SameSite, session cookies HttpOnly"
    ),
    "cookies-secure-with-httponly-sessions": Rule(
        "cookies", 0, "every cookie Secure, session cookies HttpOnly (SameSite missing)"
    ),
    "cookies-not-found": Rule("cookies", 0, "no cookies"),
    "cookies-without-secure-flag-but-protected-by-hsts": Rule(
        "cookies", -5, "a cookie without Secure, but HSTS keeps it off http"
    ),
    "cookies-session-without-secure-flag-but-protected-by-hsts": Rule(
        "cookies", -10, "a session cookie without Secure, but HSTS keeps it off http"
    ),
    "cookies-without-secure-flag": Rule("cookies", -20, "a cookie without Secure"),
    "cookies-samesite-flag-invalid": Rule("cookies", -20, "a SameSite value other than Strict, Lax or None"),
    "cookies-anticsrf-without-samesite-flag": Rule("cookies", -20, "an anti-CSRF cookie without SameSite"),
    "cookies-session-without-httponly-flag": Rule("cookies", -30, "a session cookie without HttpOnly"),
    "cookies-session-without-secure-flag": Rule("cookies", -40, "a session cookie without Secure"),
    # Cross-Origin Resource Sharing
    "cross-origin-resource-sharing-not-implemented": Rule(
        "cross-origin-resource-sharing", 0, "no CORS access"
    ),
    "cross-origin-resource-sharing-implemented-with-public-access": Rule(
        "cross-origin-resource-sharing", 0, "CORS: public content (Access-Control-Allow-Origin: *)"
    ),
    "cross-origin-resource-sharing-implemented-with-restricted-access": Rule(
        "cross-origin-resource-sharing", 0, "CORS restricted to specific origins"
    ),
    "cross-origin-resource-sharing-implemented-with-universal-access": Rule(
        "cross-origin-resource-sharing", -50, "CORS reflects any origin with credentials"
    ),
    # Redirection
    "redirection-all-redirects-preloaded": Rule(
        "redirection", 0, "every host redirected to is HSTS-preloaded"
    ),
    "redirection-to-https": Rule("redirection", 0, "http:// redirects to https:// on the same host first"),
    "redirection-not-needed-no-http": Rule("redirection", 0, "no plain-HTTP answer: no redirect needed"),
    "redirection-off-host-from-http": Rule(
        "redirection", -5, "the first redirect from http:// goes to another host"
    ),
    "redirection-not-to-https-on-initial-redirection": Rule(
        "redirection", -10, "the first redirect from http:// stays on http://"
    ),
    "redirection-not-to-https": Rule("redirection", -20, "the redirects do not end on https://"),
    "redirection-missing": Rule("redirection", -20, "http:// does not redirect"),
    "redirection-invalid-cert": Rule("redirection", -20, "invalid certificate on the redirect route"),
    # Referrer-Policy
    "referrer-policy-private": Rule("referrer-policy", 5, "a private Referrer-Policy"),
    "referrer-policy-not-implemented": Rule("referrer-policy", 0, "no Referrer-Policy"),
    "referrer-policy-unsafe": Rule("referrer-policy", -5, "an unsafe Referrer-Policy"),
    "referrer-policy-header-invalid": Rule("referrer-policy", -5, "a Referrer-Policy that is not recognised"),
    # Strict-Transport-Security
    "hsts-preloaded": Rule("strict-transport-security", 5, "HSTS-preloaded"),
    "hsts-implemented-max-age-at-least-six-months": Rule(
        "strict-transport-security", 0, "HSTS max-age of six months or more"
    ),
    "hsts-implemented-max-age-less-than-six-months": Rule(
        "strict-transport-security", -10, "HSTS max-age under six months"
    ),
    "hsts-not-implemented": Rule("strict-transport-security", -20, "no HSTS"),
    "hsts-header-invalid": Rule("strict-transport-security", -20, "an HSTS header that is not recognised"),
    "hsts-not-implemented-no-https": Rule("strict-transport-security", -20, "no HTTPS, so no HSTS"),
    "hsts-invalid-cert": Rule("strict-transport-security", -20, "invalid certificate, so HSTS cannot work"),
    # Subresource Integrity
    "sri-implemented-and-all-scripts-loaded-securely": Rule(
        "subresource-integrity", 5, "SRI used, every script from the same site"
    ),
    "sri-implemented-and-external-scripts-loaded-securely": Rule(
        "subresource-integrity", 5, "SRI on external scripts, all over https"
    ),
    "sri-not-implemented-response-not-html": Rule("subresource-integrity", 0, "not an HTML page"),
    "sri-not-implemented-but-no-scripts-loaded": Rule("subresource-integrity", 0, "no scripts"),
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": Rule(
        "subresource-integrity", 0, "no SRI, every script from the same site"
    ),
    "sri-not-implemented-but-external-scripts-loaded-securely": Rule(
        "subresource-integrity", -5, "external scripts without SRI (over https)"
    ),
    "sri-implemented-but-external-scripts-not-loaded-securely": Rule(
        "subresource-integrity", -20, "external scripts over http or protocol-relative (with SRI)"
    ),
    "sri-not-implemented-and-external-scripts-not-loaded-securely": Rule(
        "subresource-integrity", -50, "external scripts over http or protocol-relative, without SRI"
    ),
    "html-not-parseable": Rule("subresource-integrity", -20, "the HTML cannot be parsed"),
    # X-Content-Type-Options
    "x-content-type-options-nosniff": Rule("x-content-type-options", 0, "X-Content-Type-Options: nosniff"),
    "x-content-type-options-not-implemented": Rule("x-content-type-options", -5, "no X-Content-Type-Options"),
    "x-content-type-options-header-invalid": Rule(
        "x-content-type-options", -5, "an X-Content-Type-Options that is not recognised"
    ),
    # X-Frame-Options
    "x-frame-options-implemented-via-csp": Rule(
        "x-frame-options", 5, "framing restricted by CSP frame-ancestors"
    ),
    "x-frame-options-sameorigin-or-deny": Rule("x-frame-options", 5, "X-Frame-Options SAMEORIGIN or DENY"),
    "x-frame-options-allow-from-origin": Rule("x-frame-options", 0, "X-Frame-Options ALLOW-FROM"),
    "x-frame-options-not-implemented": Rule("x-frame-options", -20, "no X-Frame-Options nor frame-ancestors"),
    "x-frame-options-header-invalid": Rule(
        "x-frame-options", -20, "an X-Frame-Options that is not recognised"
    ),
    # Cross-Origin-Resource-Policy
    "corp-header-invalid": Rule("cross-origin-resource-policy", -5, "a CORP that is not recognised"),
    "corp-implemented-with-cross-origin": Rule("cross-origin-resource-policy", 0, "CORP cross-origin"),
    "corp-implemented-with-same-origin": Rule("cross-origin-resource-policy", 10, "CORP same-origin"),
    "corp-implemented-with-same-site": Rule("cross-origin-resource-policy", 10, "CORP same-site"),
    "corp-not-implemented": Rule("cross-origin-resource-policy", 0, "no CORP"),
    # Cross-Origin-Embedder-Policy
    "coep-implemented-with-require-corp": Rule("cross-origin-embedder-policy", 10, "COEP require-corp"),
    "coep-implemented-with-credentialless": Rule("cross-origin-embedder-policy", 10, "COEP credentialless"),
    "coep-implemented-with-unsafe-none": Rule("cross-origin-embedder-policy", 0, "COEP unsafe-none"),
    "coep-not-implemented": Rule("cross-origin-embedder-policy", 0, "no COEP"),
    "coep-header-invalid": Rule("cross-origin-embedder-policy", -5, "a COEP that is not recognised"),
    # Cross-Origin-Opener-Policy
    "coop-implemented-with-same-origin": Rule("cross-origin-opener-policy", 10, "COOP same-origin"),
    "coop-implemented-with-same-origin-allow-popups": Rule(
        "cross-origin-opener-policy", 10, "COOP same-origin-allow-popups"
    ),
    "coop-implemented-with-noopener-allow-popups": Rule(
        "cross-origin-opener-policy", 10, "COOP noopener-allow-popups"
    ),
    "coop-implemented-with-unsafe-none": Rule("cross-origin-opener-policy", 0, "COOP unsafe-none"),
    "coop-not-implemented": Rule("cross-origin-opener-policy", 0, "no COOP"),
    "coop-header-invalid": Rule("cross-origin-opener-policy", -5, "a COOP that is not recognised"),
}

# Worst-wins orders where a test meets several problems (best first), from the analyzers' `goodness`
# lists (src/analyzer/tests/cookies.js, subresource-integrity.js).
COOKIE_ORDER = (
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
)
SRI_ORDER = (
    "sri-implemented-and-all-scripts-loaded-securely",
    "sri-implemented-and-external-scripts-loaded-securely",
    "sri-implemented-but-external-scripts-not-loaded-securely",
    "sri-not-implemented-but-external-scripts-loaded-securely",
    "sri-not-implemented-and-external-scripts-not-loaded-securely",
    "sri-not-implemented-response-not-html",
)


def letter(score: int) -> str:
    """The letter of a score (GRADE_CHART: floor to a multiple of 5, 100 and above is A+)."""
    floored = min(max(score, 0) // 5 * 5, 100)
    return next(band for low, band in LETTER_BANDS if floored >= low)
