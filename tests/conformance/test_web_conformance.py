"""Conformance of the web grade: real nginx configurations, each header right, missing or wrong,
audited in one real `auditor audit` run; each expected score is argued beside its case from the
HTTP Observatory's scoring rules (algorithm 6: src/grader/charts.js and src/analyzer/tests/*).

The arithmetic: start at 100, add every modifier; the bonuses count only when the penalties alone
leave 90 or more; letters by the grade chart (100+ A+, 90 A, 85 A-, 80 B+, 70 B, 65 B-, 60 C+,
50 C, 45 C-, 40 D+, 30 D, 25 D-, below F).

Every site serves its plain-HTTP port (redirecting to HTTPS unless the case says otherwise), HSTS
for two years and the test PKI's certificate (trusted through `ca_bundle`, so "valid" as for a
browser), and no CSP, X-Content-Type-Options, X-Frame-Options, cookies or scripts unless the case
adds them. BASE is that site: CSP not implemented -25, X-Content-Type-Options not implemented -5,
X-Frame-Options not implemented -20, everything else 0: 50, C.
GOOD adds "Content-Security-Policy: default-src 'self'; frame-ancestors 'self'" (no unsafe +5,
X-Frame-Options via frame-ancestors +5) and "X-Content-Type-Options: nosniff" (0): no penalty,
so 100 + 10 = 110, A+. Most cases start from GOOD and change one thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite

GOOD = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
}
PAGE = "<!doctype html><html><head><title>t</title>{head}</head><body><p>hello</p>{body}</body></html>"


@dataclass
class Case:
    name: str
    score: int
    letter: str
    why: str
    headers: dict[str, str] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)  # test -> expected Observatory result
    site: dict = field(default_factory=dict)  # type: ignore[type-arg]  # other NginxSite options
    head: str = ""
    body: str = ""
    cert: dict = field(default_factory=dict)  # type: ignore[type-arg]


CASES = [
    Case(
        "base",
        50,
        "C",
        "no CSP -25, no X-Content-Type-Options -5, no X-Frame-Options -20: 100-50 = 50",
        results={
            "content-security-policy": "csp-not-implemented",
            "x-content-type-options": "x-content-type-options-not-implemented",
            "x-frame-options": "x-frame-options-not-implemented",
            "redirection": "redirection-to-https",
            "strict-transport-security": "hsts-implemented-max-age-at-least-six-months",
            "cookies": "cookies-not-found",
            "subresource-integrity": "sri-not-implemented-but-no-scripts-loaded",
            "cross-origin-resource-sharing": "cross-origin-resource-sharing-not-implemented",
        },
    ),
    Case(
        "good",
        110,
        "A+",
        "GOOD: no penalty, CSP +5, frame-ancestors +5: 110",
        GOOD,
        {
            "content-security-policy": "csp-implemented-with-no-unsafe",
            "x-frame-options": "x-frame-options-implemented-via-csp",
        },
    ),
    Case(
        "best",
        160,
        "A+",
        "no penalty, every bonus: CSP default-src 'none' +10, frame-ancestors +5, "
        "Referrer-Policy +5, CORP +10, COOP +10, COEP +10, Secure SameSite HttpOnly session cookie +5, SRI on a "
        "same-site script +5 (nosniff, HSTS, redirect, CORS 0): 100+60 = 160",
        {
            "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; form-action 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Embedder-Policy": "require-corp",
        },
        {
            "content-security-policy": "csp-implemented-with-no-unsafe-default-src-none",
            "cookies": "cookies-secure-with-httponly-sessions-and-samesite",
            "subresource-integrity": "sri-implemented-and-all-scripts-loaded-securely",
            "cross-origin-opener-policy": "coop-implemented-with-same-origin",
        },
        site={"cookies": ["sessionid=x; Path=/; Secure; HttpOnly; SameSite=Strict"]},
        body='<script src="/app.js" integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC">'
        "</script>",
    ),
    Case(
        "csp-unsafe-inline",
        80,
        "B+",
        "GOOD but script-src 'unsafe-inline': -20 leaves 80 < 90, so the "
        "frame-ancestors +5 is not counted: 80",
        {
            **GOOD,
            "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'self'",
        },
        {"content-security-policy": "csp-implemented-with-unsafe-inline"},
    ),
    Case(
        "csp-nonce-strict-dynamic",
        115,
        "A+",
        "'unsafe-inline' and https: beside a nonce and 'strict-dynamic' are "
        "ignored by browsers (parsed, not matched as text): default-src 'none' +10, X-Frame-Options DENY +5: 115",
        {
            "Content-Security-Policy": "default-src 'none'; script-src 'nonce-r4nd0m' 'strict-dynamic' "
            "'unsafe-inline' https:; object-src 'none'",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        },
        {
            "content-security-policy": "csp-implemented-with-no-unsafe-default-src-none",
            "x-frame-options": "x-frame-options-sameorigin-or-deny",
        },
    ),
    Case(
        "csp-insecure-scheme",
        80,
        "B+",
        "default-src allows http://cdn.example.com: insecure scheme -20; "
        "80 < 90, frame-ancestors bonus not counted: 80",
        {
            **GOOD,
            "Content-Security-Policy": "default-src 'self' http://cdn.example.com; frame-ancestors 'self'",
        },
        {"content-security-policy": "csp-implemented-with-insecure-scheme"},
    ),
    Case(
        "csp-report-only",
        75,
        "B",
        "Report-Only enforces nothing: -25; X-Frame-Options DENY +5 not counted (75 < 90): 75",
        {
            "Content-Security-Policy-Report-Only": "default-src 'self'",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        },
        {"content-security-policy": "csp-not-implemented-but-reporting-enabled"},
    ),
    Case(
        "csp-duplicate-directive",
        75,
        "B",
        "default-src twice in one policy: the Observatory calls it invalid, "
        "-25; X-Frame-Options DENY +5 not counted: 75",
        {
            "Content-Security-Policy": "default-src 'self'; default-src 'none'",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        },
        {"content-security-policy": "csp-header-invalid"},
    ),
    Case(
        "csp-meta",
        110,
        "A+",
        "a CSP in <meta http-equiv> counts as a header: no unsafe +5, X-Frame-Options DENY +5: 110",
        {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"},
        {"content-security-policy": "csp-implemented-with-no-unsafe"},
        head='<meta http-equiv="Content-Security-Policy" content="default-src \'self\'">',
    ),
    Case(
        "xcto-wrong",
        105,
        "A+",
        "X-Content-Type-Options: sniff is not nosniff, -5; 95 >= 90 so the +10 of GOOD count: 105",
        {**GOOD, "X-Content-Type-Options": "sniff"},
        {"x-content-type-options": "x-content-type-options-header-invalid"},
    ),
    Case(
        "xfo-wrong",
        55,
        "C",
        "X-Frame-Options: ALLOWALL is not recognised -20, no CSP -25, nosniff 0: 55",
        {"X-Frame-Options": "ALLOWALL", "X-Content-Type-Options": "nosniff"},
        {"x-frame-options": "x-frame-options-header-invalid"},
    ),
    Case(
        "hsts-short",
        100,
        "A+",
        "HSTS max-age one day < six months: -10 leaves exactly 90, so GOOD's +10 counts: 100",
        GOOD,
        {"strict-transport-security": "hsts-implemented-max-age-less-than-six-months"},
        site={"hsts": "max-age=86400"},
    ),
    Case(
        "hsts-missing",
        80,
        "B+",
        "no HSTS -20 leaves 80 < 90: GOOD's +10 not counted: 80",
        GOOD,
        {"strict-transport-security": "hsts-not-implemented"},
        site={"hsts": None},
    ),
    Case(
        "cookie-session-insecure",
        70,
        "B",
        "session cookie without Secure (HSTS protects: -10) and without "
        "HttpOnly (-30): the worse, -30, counts; 70 < 90, no bonus: 70",
        GOOD,
        {"cookies": "cookies-session-without-httponly-flag"},
        site={"cookies": ["sessionid=1; Path=/"]},
    ),
    Case(
        "cookie-samesite-wrong",
        80,
        "B+",
        "SameSite=Bogus: -20; 80 < 90, no bonus: 80",
        GOOD,
        {"cookies": "cookies-samesite-flag-invalid"},
        site={"cookies": ["pref=1; Path=/; Secure; SameSite=Bogus"]},
    ),
    Case(
        "cookie-good",
        115,
        "A+",
        "a Secure SameSite=Lax cookie: +5 on GOOD's 110: 115",
        GOOD,
        {"cookies": "cookies-secure-with-httponly-sessions-and-samesite"},
        site={"cookies": ["pref=1; Path=/; Secure; SameSite=Lax"]},
    ),
    Case(
        "cors-universal",
        50,
        "C",
        "the foreign Origin echoed with credentials: universal access -50; no bonus: 50",
        GOOD,
        {"cross-origin-resource-sharing": "cross-origin-resource-sharing-implemented-with-universal-access"},
        site={
            "extra_server": "add_header Access-Control-Allow-Origin $http_origin always;\n"
            "    add_header Access-Control-Allow-Credentials true always;"
        },
    ),
    Case(
        "cors-public",
        110,
        "A+",
        "Access-Control-Allow-Origin * is public content: 0: 110",
        {**GOOD, "Access-Control-Allow-Origin": "*"},
        {"cross-origin-resource-sharing": "cross-origin-resource-sharing-implemented-with-public-access"},
    ),
    Case(
        "redirect-missing",
        80,
        "B+",
        "plain HTTP serves the page: redirection missing -20, no bonus: 80",
        GOOD,
        {"redirection": "redirection-missing"},
        site={"http_mode": "content"},
    ),
    Case(
        "redirect-to-http",
        80,
        "B+",
        "http:// redirects to http://elsewhere.test: not to https -20 (the route "
        "ends on http://), no bonus: 80",
        GOOD,
        {"redirection": "redirection-not-to-https"},
        site={"http_mode": "http-redirect"},
    ),
    Case(
        "referrer-unsafe",
        105,
        "A+",
        "Referrer-Policy unsafe-url -5; 95 >= 90, GOOD's +10 counts: 105",
        {**GOOD, "Referrer-Policy": "unsafe-url"},
        {"referrer-policy": "referrer-policy-unsafe"},
    ),
    Case(
        "referrer-meta",
        115,
        "A+",
        "<meta name=referrer content=no-referrer> counts like the header: +5: 115",
        GOOD,
        {"referrer-policy": "referrer-policy-private"},
        head='<meta name="referrer" content="no-referrer">',
    ),
    Case(
        "sri-external-http",
        50,
        "C",
        "a script from another site over http://, no integrity: -50, no bonus: 50",
        GOOD,
        {"subresource-integrity": "sri-not-implemented-and-external-scripts-not-loaded-securely"},
        body='<script src="http://cdn.other.example/lib.js"></script>',
    ),
    Case(
        "sri-external-https",
        105,
        "A+",
        "a script from another site over https without integrity: -5; 95 >= 90, GOOD's +10 counts: 105",
        GOOD,
        {"subresource-integrity": "sri-not-implemented-but-external-scripts-loaded-securely"},
        body='<script src="https://cdn.other.example/lib.js"></script>',
    ),
    Case(
        "isolation-headers-at-90",
        110,
        "A+",
        "COOP as a quoted string is no token: invalid -5; CORP bogus: "
        "invalid -5; that leaves exactly 90, so the bonuses count: COEP +10 and GOOD's +10: 90+20 = 110",
        {
            **GOOD,
            "Cross-Origin-Opener-Policy": '"same-origin"',
            "Cross-Origin-Resource-Policy": "bogus",
            "Cross-Origin-Embedder-Policy": "require-corp",
        },
        {
            "cross-origin-opener-policy": "coop-header-invalid",
            "cross-origin-resource-policy": "corp-header-invalid",
            "cross-origin-embedder-policy": "coep-implemented-with-require-corp",
        },
    ),
    Case(
        "invalid-cert",
        60,
        "C+",
        "a self-signed certificate: HSTS cannot work -20 and the redirect meets an "
        "invalid certificate -20; 60 < 90, no bonus: 60",
        GOOD,
        {"strict-transport-security": "hsts-invalid-cert", "redirection": "redirection-invalid-cert"},
        cert={"issuer": "self"},
    ),
]


@pytest.fixture(scope="module")
def graded(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("web-conformance")
    entries = []
    with ExitStack() as stack:
        for case in CASES:
            issued = pki.issue(f"web-{case.name}", **case.cert)
            site = stack.enter_context(
                NginxSite(
                    root / case.name,
                    issued=issued,
                    extra_headers=case.headers,
                    body=PAGE.format(head=case.head, body=case.body),
                    **case.site,
                )
            )
            entries.append(
                f'[[targets]]\nname = "{case.name}"\nurl = "{site.url}"\nip = "127.0.0.1"\n'
                f'ca_bundle = "{pki.root_path}"\nhttp_port = {site.http_port}\n'
            )
        config = Path(root) / "config.toml"
        config.write_text("[scan]\nconcurrency = 4\n[output]\nwrite_json = false\n" + "".join(entries))
        run = run_cli("audit", "--config", str(config), "--json", "-", "--quiet", timeout=600)
    assert "Traceback" not in run.stderr, run.stderr
    yield {t["target"]["name"]: t for t in run.report["targets"]}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_web_grade_follows_the_observatory_rules(case: Case, graded: dict) -> None:  # type: ignore[type-arg]
    result = graded[case.name]
    assert result["error"] is None, result["error"]
    web = result["web_grade"]
    results = {m["test"]: m["result"] for m in web["modifiers"]}
    assert len(results) == 12, web  # every Observatory test judged
    for test, expected in case.results.items():
        assert results[test] == expected, (case.why, test, web)
    assert (web["score"], web["letter"]) == (case.score, case.letter), (case.why, web)
