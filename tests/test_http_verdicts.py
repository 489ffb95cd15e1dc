"""HTTP-side verdicts on real servers (nginx, the stdlib TLS server) on loopback: HSTS validity
(RFC 6797 6.1), every response a browser sees (the port-80 answer, same-host HTTPS redirects,
the final page), mixed content as the W3C spec counts it, and cookie names and deletions
(RFC 6265bis). The evidence comes from the real HTTP probe; the checks and the grade judge it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditor.checks import run_checks
from auditor.checks.base import CheckContext
from auditor.grading import facts_from, grade
from auditor.grading_rules import WARNINGS
from auditor.model import Evidence, Finding, HttpEvidence, Status
from auditor.scan.http import MAX_REDIRECTS, probe_http
from tests import evidence_builders as b
from tests.conftest import clause_statuses, run_cli
from tests.harness.pki import Issued, TestPKI
from tests.harness.servers import NginxSite, PythonTLSServer

HSTS_WARNING = next(rule.wording for rule in WARNINGS if rule.id == "hsts")
HSTS_2Y = "max-age=63072000; includeSubDomains"
CLOSED_PORT = 9  # discard: nothing listens on loopback, so plain HTTP is refused at once
SiteFactory = Callable[..., NginxSite]  # starts an nginx site with these NginxSite options
PageFactory = Callable[[str], HttpEvidence]  # serves this HTML body and probes it


@pytest.fixture(scope="module")
def issued(pki: TestPKI) -> Issued:
    return pki.issue("http-verdicts")


def _probe(https_port: int, http_port: int | None = None, paths: list[str] | None = None) -> HttpEvidence:
    return probe_http(
        "good.test", https_port, ip="127.0.0.1", http_port=http_port or CLOSED_PORT, paths=paths, timeout=5.0
    )


def _judge(http: HttpEvidence) -> tuple[dict[str, Finding], Evidence]:
    """The findings (worst per clause) of real HTTP evidence beside a compliant TLS scan."""
    evidence = b.evidence(http_evidence=http)
    found: dict[str, Finding] = {}
    order = [Status.FAIL, Status.ERROR, Status.WARN, Status.INFO, Status.PASS, Status.NOT_TESTED]
    for f in run_checks(CheckContext(evidence=evidence, host="good.test", grade=grade(evidence))):
        if f.clause not in found or order.index(f.status) < order.index(found[f.clause].status):
            found[f.clause] = f
    return found, evidence


@pytest.fixture
def site(issued: Issued, tmp_path: Path) -> Iterator[SiteFactory]:
    """Start an nginx site with the given options; stopped after the test."""
    started: list[NginxSite] = []

    def start(**options: object) -> NginxSite:
        running = NginxSite(tmp_path / f"site{len(started)}", issued=issued, **options)  # type: ignore[arg-type]
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


# ---------------------------------------------------------------- item 1: HSTS validity


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("max-age=31536000; max-age=0", "more than once: max-age"),
        ('max-age="31536000; includeSubDomains', "unclosed quote"),
        ("max-age=31536000; includeSubDomains; includesubdomains", "more than once: includesubdomains"),
        ("max-age=31536000, includeSubDomains", "unexpected ','"),
        ("max-age=1y", "digits only"),
        ("max-age=31536000; includeSubDomains=yes", "takes no value"),
    ],
)
def test_invalid_hsts_fails_and_the_grade_warns(site: SiteFactory, header: str, why: str) -> None:
    running = site(hsts=header)
    found, evidence = _judge(_probe(running.https_port))
    hsts = found["11.5-hsts"]
    assert hsts.status is Status.FAIL and hsts.title == "HSTS invalid"
    assert why in hsts.detail and header in " ".join(hsts.evidence)
    assert facts_from(evidence).hsts_max_age is None
    letter = grade(evidence)
    assert HSTS_WARNING in letter.warnings and letter.letter == "A-"


@pytest.mark.parametrize(
    ("header", "max_age"),
    [
        ('MAX-AGE = 31536000 ;; IncludeSubDomains; preload; future-directive="a;b"', 31536000),
        ('max-age="63072000"', 63072000),
    ],
)
def test_valid_hsts_in_any_case_and_spacing_passes(site: SiteFactory, header: str, max_age: int) -> None:
    running = site(hsts=header)
    found, evidence = _judge(_probe(running.https_port))
    assert found["11.5-hsts"].status is Status.PASS, found["11.5-hsts"]
    assert facts_from(evidence).hsts_max_age == max_age and grade(evidence).letter == "A+"


def test_only_the_first_of_two_hsts_headers_counts(site: SiteFactory) -> None:
    good_then_bad = site(hsts=HSTS_2Y, extra_headers={"Strict-Transport-Security": "max-age=0; max-age=0"})
    bad_then_good = site(hsts="max-age=0; max-age=0", extra_headers={"Strict-Transport-Security": HSTS_2Y})
    first_good, evidence = _judge(_probe(good_then_bad.https_port))
    assert first_good["11.5-hsts"].status is Status.PASS
    assert "2 HSTS headers sent" in " ".join(first_good["11.5-hsts"].evidence)
    assert grade(evidence).letter == "A+"
    first_bad, evidence = _judge(_probe(bad_then_good.https_port))
    assert first_bad["11.5-hsts"].status is Status.FAIL and first_bad["11.5-hsts"].title == "HSTS invalid"
    assert HSTS_WARNING in grade(evidence).warnings


# ---------------------------------------------------------------- item 9: every response a browser sees

REDIRECT_TO_HOME = (
    "location = / { return 302 /home; }\n"
    '    location = /home { add_header Strict-Transport-Security "max-age=63072000" always; '
    "try_files /index.html =404; }"
)


def test_hsts_only_after_a_same_host_redirect_warns_naming_the_response(site: SiteFactory) -> None:
    running = site(hsts=None, extra_server=REDIRECT_TO_HOME)
    http = _probe(running.https_port)
    assert [r.url for r in http.https] == [running.url, f"{running.url}home"]
    assert http.https[1].redirected_from == running.url and http.https[0].status == 302
    found, evidence = _judge(http)
    hsts = found["11.5-hsts"]
    assert hsts.status is Status.WARN and f"{running.url}home" in hsts.title
    # the grade reads the first response, as SSL Labs does: no HSTS there
    assert HSTS_WARNING in grade(evidence).warnings


def test_a_cookie_on_the_plain_http_redirect_fails_and_counts_before_consent(site: SiteFactory) -> None:
    running = site(extra_http='add_header Set-Cookie "tracker=1; Secure; HttpOnly; SameSite=Lax" always;')
    http = _probe(running.https_port, running.http_port)
    assert http.plain_http is not None and http.plain_http.status == 301
    found, _ = _judge(http)
    cookies = found["11.5-cookies"]
    assert (
        cookies.status is Status.FAIL
        and "plain HTTP" in cookies.detail
        and running.http_url in cookies.detail
    )
    consent = found["12.3-cookie-consent"]
    assert consent.status is Status.INFO and "tracker" in consent.detail


COOKIE_ON_LOGIN = (
    "location = / { return 302 /login; }\n"
    '    location = /login { add_header Set-Cookie "sid=abc; Path=/" always; '
    'add_header Strict-Transport-Security "max-age=63072000" always; try_files /index.html =404; }'
)


def test_cookies_on_a_same_host_redirect_target_are_judged(site: SiteFactory) -> None:
    running = site(extra_server=COOKIE_ON_LOGIN)
    found, _ = _judge(_probe(running.https_port))
    cookies = found["11.5-cookies"]
    assert cookies.status is Status.FAIL and f"sid on {running.url}login" in cookies.detail
    assert "no Secure" in cookies.detail
    consent = found["12.3-cookie-consent"]
    assert consent.status is Status.INFO and "sid" in consent.detail
    assert found["11.5-hsts"].status is Status.PASS  # the first response (the 302) carries HSTS


def test_redirects_to_another_host_are_never_followed(site: SiteFactory) -> None:
    running = site(extra_server="location = / { return 302 https://elsewhere.test/; }")
    http = _probe(running.https_port)
    assert len(http.https) == 1
    assert "another host" in (http.https[0].redirect_not_followed or "")


def test_same_host_redirects_stop_after_the_limit(site: SiteFactory) -> None:
    hops = "\n    ".join(f"location = /r{i} {{ return 302 /r{i + 1}; }}" for i in range(10))
    running = site(extra_server=f"location = / {{ return 302 /r0; }}\n    {hops}")
    http = _probe(running.https_port)
    assert len(http.https) == 1 + MAX_REDIRECTS
    assert "more than 5 redirects" in (http.https[-1].redirect_not_followed or "")


def test_a_redirect_loop_stops(site: SiteFactory) -> None:
    running = site(extra_server="location = / { return 302 /a; }\n    location = /a { return 302 /; }")
    http = _probe(running.https_port)
    assert [r.url for r in http.https] == [running.url, f"{running.url}a"]
    assert "loop" in (http.https[-1].redirect_not_followed or "")


# ---------------------------------------------------------------- item 10: mixed content


@pytest.fixture
def page(issued: Issued) -> Iterator[PageFactory]:
    """Serve one HTML body over HTTPS (stdlib server) and return the probe's evidence of it."""
    servers: list[PythonTLSServer] = []

    def serve(body: str) -> HttpEvidence:
        server = PythonTLSServer(issued, body=body, response_headers=[("Strict-Transport-Security", HSTS_2Y)])
        server.start()
        servers.append(server)
        return _probe(server.port)

    yield serve
    for server in servers:
        server.stop()


NOT_LOADED = (
    '<html><head><link rel=canonical href="http://good.test/">'
    '<link rel="alternate" hreflang=en href="http://good.test/en"></head>'
    '<body><a href="http://good.test/other">x</a><svg><a href="http://good.test/svg-link">y</a></svg>'
    "<style>@namespace svg url(http://www.w3.org/2000/svg);</style>"
    '<noscript><img src="http://cdn.test/pixel.gif"></noscript></body></html>'
)


def test_links_that_are_never_loaded_are_not_mixed_content(page: PageFactory) -> None:
    http = page(NOT_LOADED)
    assert http.https[0].insecure_references == []
    found, _ = _judge(http)
    assert found["11.1-tls-enforced"].status is Status.PASS


@pytest.mark.parametrize(
    ("body", "loaded"),
    [
        (
            '<head><base href="http://static.good.test/"></head><body><img src="logo.png"></body>',
            "http://static.good.test/logo.png",
        ),
        ("<style>body { background: url('http://cdn.test/bg.png') }</style>", "http://cdn.test/bg.png"),
        ('<style>@import "http://cdn.test/theme.css";</style>', "http://cdn.test/theme.css"),
        (
            "<style>@font-face { font-family: x; src: url(http://cdn.test/f.woff2) }</style>",
            "http://cdn.test/f.woff2",
        ),
        (
            '<div style="background-image: url(&quot;http://cdn.test/div.png&quot;)">x</div>',
            "http://cdn.test/div.png",
        ),
        ('<svg><image href="http://cdn.test/svg.png"/></svg>', "http://cdn.test/svg.png"),
        (
            '<svg xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="http://cdn.test/xl.png"/></svg>',
            "http://cdn.test/xl.png",
        ),
        (
            '<img src="/a.png" srcset="https://ok.test/a.png 1x, http://cdn.test/a,2x.png 2x">',
            "http://cdn.test/a,2x.png",
        ),
        ('<link rel="preload" as="image" href="http://cdn.test/hero.png">', "http://cdn.test/hero.png"),
        ('<link rel="ICON" href="http://cdn.test/favicon.ico">', "http://cdn.test/favicon.ico"),
    ],
)
def test_what_the_page_loads_is_mixed_content(page: PageFactory, body: str, loaded: str) -> None:
    http = page(f"<!doctype html><html>{body}</html>")
    assert http.https[0].insecure_references == [loaded]
    found, _ = _judge(http)
    tls = found["11.1-tls-enforced"]
    assert tls.status is Status.FAIL and loaded in " ".join(tls.evidence)


def test_mixed_content_on_the_page_a_redirect_leads_to_fails(site: SiteFactory) -> None:
    running = site(
        body='<html><body><script src="http://cdn.test/app.js"></script></body></html>',
        extra_server=REDIRECT_TO_HOME,
    )
    http = _probe(running.https_port)
    assert http.https[0].insecure_references == [] and http.https[1].insecure_references == [
        "http://cdn.test/app.js"
    ]
    found, _ = _judge(http)
    assert found["11.1-tls-enforced"].status is Status.FAIL
    assert f"{running.url}home: http://cdn.test/app.js" in found["11.1-tls-enforced"].evidence


def test_a_page_too_deeply_nested_is_judged_in_part_and_says_so(page: PageFactory) -> None:
    """html5lib's tree building is O(elements x depth): 100 000 nested tags would take hours."""
    started = time.monotonic()
    http = page(
        '<img src="http://cdn.test/early.png">' + "<div>" * 100_000 + '<img src="http://cdn.test/deep.png">'
    )
    assert time.monotonic() - started < 30
    response = http.https[0]
    assert response.insecure_references == ["http://cdn.test/early.png"]
    assert "nested deeper than 512" in (response.partial_analysis or "")
    found, _ = _judge(page("<div>" * 100_000 + '<img src="http://cdn.test/deep.png">'))
    assert found["11.1-tls-enforced"].status is Status.WARN
    assert "judged in part only" in " ".join(found["11.1-tls-enforced"].evidence)


def test_a_relative_form_action_under_an_http_base_posts_in_clear(page: PageFactory) -> None:
    http = page(
        '<html><head><base href="http://good.test/app/"></head><body>'
        '<form action="login" method="post"></form><form action="" method="post"></form>'
        '<form action="https://good.test/search"></form></body></html>'
    )
    response = http.https[0]
    assert response.insecure_form_actions == ["http://good.test/app/login"]
    found, _ = _judge(http)
    assert found["5.4-transit"].status is Status.FAIL
    assert "http://good.test/app/login" in " ".join(found["5.4-transit"].evidence)


# ---------------------------------------------------------------- item 11: cookie names and deletions


def test_a_cookie_without_equals_has_no_name_and_its_value_never_appears(site: SiteFactory) -> None:
    running = site(cookies=["S3CRETT0KEN; Path=/"])
    http = _probe(running.https_port)
    (cookie,) = http.https[0].cookies
    assert cookie.name == "" and cookie.raw_attributes == "<redacted>; Path=/"
    found, evidence = _judge(http)
    assert found["11.5-cookies"].status is Status.FAIL and "(nameless cookie)" in found["11.5-cookies"].detail
    text = evidence.model_dump_json() + "".join(f.model_dump_json() for f in found.values())
    assert "S3CRETT0KEN" not in text


@pytest.mark.parametrize(
    "cookie",
    [
        "__host-sid=1; Secure; HttpOnly; SameSite=Lax; Path=/; Domain=good.test",
        "__SECURE-id=1; HttpOnly; SameSite=Lax",
    ],
)
def test_cookie_prefixes_match_case_insensitively(site: SiteFactory, cookie: str) -> None:
    found, _ = _judge(_probe(site(cookies=[cookie]).https_port))
    assert found["11.5-cookies"].status is Status.FAIL and "prefix" in found["11.5-cookies"].detail


def test_deletion_cookies_are_reported_not_failed(site: SiteFactory) -> None:
    running = site(
        cookies=[
            "old=; Max-Age=0",
            "older=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/",
            "sid=1; Secure; HttpOnly; SameSite=Lax",
        ]
    )
    found, _ = _judge(_probe(running.https_port))
    cookies = found["11.5-cookies"]
    assert cookies.status is Status.PASS, cookies
    facts = " ".join(cookies.evidence)
    assert "deletes cookie old" in facts and "deletes cookie older" in facts
    consent = found["12.3-cookie-consent"]
    assert "sid" in consent.detail and "old" not in consent.detail


# ---------------------------------------------------------------- end to end: the real CLI


def test_cli_reports_invalid_hsts_and_port_80_cookies_with_the_grade(
    site: SiteFactory, pki: TestPKI, tmp_path: Path
) -> None:
    invalid = site(
        hsts="max-age=31536000; max-age=0", tls13_ciphersuites="TLS_AES_256_GCM_SHA384", http_mode="none"
    )
    port80 = site(
        tls13_ciphersuites="TLS_AES_256_GCM_SHA384",
        extra_http='add_header Set-Cookie "visit=1; HttpOnly; SameSite=Lax" always;',
    )
    targets = [("invalid-hsts", invalid, CLOSED_PORT), ("port80-cookie", port80, port80.http_port)]
    config = tmp_path / "config.toml"
    config.write_text(
        "[scan]\nconcurrency = 2\n[output]\nwrite_json = false\n"
        + "".join(
            f'[[targets]]\nname = "{name}"\nurl = "{s.url}"\nip = "127.0.0.1"\nca_bundle = "{pki.root_path}"\n'
            f"http_port = {http_port}\n"
            for name, s, http_port in targets
        )
    )
    run = run_cli("audit", "--config", str(config), "--json", "-", "--quiet")
    assert "Traceback" not in run.stderr, run.stderr
    results = {t["target"]["name"]: t for t in run.report["targets"]}
    invalid_result = results["invalid-hsts"]
    assert invalid_result["error"] is None
    hsts = next(f for f in invalid_result["findings"] if f["clause"] == "11.5-hsts")
    assert hsts["status"] == "fail" and hsts["title"] == "HSTS invalid" and "max-age" in hsts["detail"]
    assert invalid_result["grade"]["letter"] == "A-" and HSTS_WARNING in invalid_result["grade"]["warnings"]
    port80_result = results["port80-cookie"]
    statuses = clause_statuses(port80_result)
    assert statuses["11.5-cookies"] == "fail" and statuses["12.3-cookie-consent"] == "info"
    assert statuses["11.5-hsts"] == "pass" and statuses["11.1-tls-enforced"] == "pass"
    assert port80_result["grade"]["letter"] == "A+"
    assert run.code == 1  # both targets break a clause


def test_an_https_page_redirecting_to_plain_http_fails_tls_enforced(site: SiteFactory) -> None:
    """The browser is sent back to an unencrypted URL: the site is not served over TLS only."""
    running = site(extra_server="location = / { return 302 http://good.test/login; }")
    found, _ = _judge(_probe(running.https_port))
    verdict = found["11.1-tls-enforced"]
    assert verdict.status is Status.FAIL
    assert verdict.title == "An HTTPS page redirects to plain HTTP"
    assert any("Location: http://good.test/login" in line for line in verdict.evidence)
