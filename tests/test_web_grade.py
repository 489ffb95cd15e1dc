"""The web grade (Mozilla HTTP Observatory rules, algorithm 6): the CSP parser, the scoring rule,
the evidence its probe collects from a real nginx, and where the grade shows (reports, diff,
history). The score of whole configurations is tests/conformance/test_web_conformance.py.

The judging tests build evidence by hand: judging is a pure function of the evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.changes import diff_results
from auditor.model import (
    AuditReport,
    HttpResponse,
    PageFacts,
    RedirectHop,
    TargetRef,
    TargetResult,
    WebGrade,
    WebModifier,
    WebProbe,
)
from auditor.reports.html import render_html
from auditor.reports.junit import to_junit
from auditor.reports.text import render_text
from auditor.scan.http import probe_http
from auditor.web_csp import InvalidPolicy, judge_csp, parse_csp
from auditor.web_grade import score, web_grade
from auditor.web_grade_rules import RULES, TESTS, letter
from tests.conftest import run_cli
from tests.evidence_builders import deployment, evidence, http, page, tls
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite

# ---------------------------------------------------------------- CSP, parsed


def test_a_later_policy_narrows_the_first() -> None:
    """Two policies are both enforced: only what both allow stays (http: of the first is dropped)."""
    csp = parse_csp(["script-src 'self' http://cdn.example.com", "script-src 'self'"])
    assert csp.directives["script-src"] == {"'self'"}


def test_an_empty_source_list_is_none() -> None:
    assert parse_csp(["default-src; img-src 'self'"]).directives["default-src"] == {"'none'"}


@pytest.mark.parametrize("policy", ["default-src 'self'; script-src 'self'; default-src 'none'", "a b"])
def test_unparseable_policies(policy: str) -> None:
    with pytest.raises(InvalidPolicy):
        parse_csp([policy])
    assert judge_csp([policy], [], False).result == "csp-header-invalid"


def test_unsafe_inline_beside_a_nonce_is_ignored_but_not_alone() -> None:
    """Parsed, not substring-matched: 'unsafe-inline' is ignored by browsers beside a nonce."""
    with_nonce = judge_csp(["default-src 'self'; script-src 'self' 'nonce-abc' 'unsafe-inline'"], [], False)
    alone = judge_csp(["default-src 'self'; script-src 'self' 'unsafe-inline'"], [], False)
    assert (with_nonce.result, alone.result) == (
        "csp-implemented-with-no-unsafe",
        "csp-implemented-with-unsafe-inline",
    )


def test_strict_dynamic_needs_a_nonce() -> None:
    assert (
        judge_csp(["default-src 'self'; script-src 'strict-dynamic'"], [], False).result
        == "csp-header-invalid"
    )


def test_unset_script_src_allows_everything() -> None:
    assert judge_csp(["img-src 'self'"], [], False).result == "csp-implemented-with-unsafe-inline"


def test_passive_http_only_and_style_only() -> None:
    passive = judge_csp(["default-src 'self'; img-src 'self' http://img.example.com"], [], False)
    style = judge_csp(["default-src 'self'; style-src 'self' 'unsafe-inline'"], [], False)
    assert passive.result == "csp-implemented-with-insecure-scheme-in-passive-content-only"
    assert style.result == "csp-implemented-with-unsafe-inline-in-style-src-only"


def test_repeated_report_uri_is_noted_not_invalid() -> None:
    verdict = judge_csp(["default-src 'self'; report-uri /a; report-uri /b"], [], False)
    assert verdict.result == "csp-implemented-but-duplicate-directives"


def test_frame_ancestors_in_meta_and_report_only_alone() -> None:
    """<meta> cannot carry frame-ancestors; Report-Only enforces nothing."""
    assert judge_csp([], ["frame-ancestors 'none'"], False).result == "csp-not-implemented"
    assert judge_csp([], [], True).result == "csp-not-implemented-but-reporting-enabled"
    assert (
        judge_csp(["default-src 'none'"], [], True).result
        == "csp-implemented-with-no-unsafe-default-src-none"
    )


# ---------------------------------------------------------------- the score


def _mods(*points: int) -> list[WebModifier]:
    return [WebModifier(test="t", result="r", points=p, reason="") for p in points]


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ((-10, 5, 10), (105, "A+")),  # 90 before bonuses: they count
        ((-15, 5, 10), (85, "A-")),  # 85: they do not
        ((-25, -5, -20), (50, "C")),
        ((-100, -50), (0, "F")),  # never below 0
        ((-11,), (89, "A-")),  # floored to 85 for the letter, the score stays 89
        ((-76,), (24, "F")),
        ((-75,), (25, "D-")),
    ],
)
def test_bonuses_only_from_90_and_the_letter_bands(
    points: tuple[int, ...], expected: tuple[int, str]
) -> None:
    graded = score(_mods(*points))
    assert (graded.score, graded.letter) == expected


def test_the_table_covers_every_test_with_its_own_results() -> None:
    assert {rule.test for rule in RULES.values()} == set(TESTS) and len(TESTS) == 12
    assert letter(100) == letter(160) == "A+" and letter(90) == "A" and letter(0) == "F"


# ---------------------------------------------------------------- judging evidence


def _judged(*responses: HttpResponse, probe: WebProbe | None = None, trusted: bool = True) -> dict[str, str]:
    ev = evidence(tls(deployments=[deployment(trusted=trusted)]), http(*responses))
    ev.http.web = probe or WebProbe(
        page=PageFacts(url="https://good.test/", content_type="text/html"),
        http_route=[
            RedirectHop(url="http://good.test/", status=301),
            RedirectHop(url="https://good.test/", status=200),
        ],
    )
    graded = web_grade(ev)
    assert graded is not None and graded.letter is not None
    return {m.test: m.result for m in graded.modifiers}


def test_cookies_are_judged_by_name_and_flags() -> None:
    results = _judged(page(cookies=["csrftoken=1; Secure"]))
    assert results["cookies"] == "cookies-anticsrf-without-samesite-flag"
    results = _judged(page(cookies=["pref=1; Secure; SameSite=None"]))
    assert results["cookies"] == "cookies-secure-with-httponly-sessions-and-samesite"
    results = _judged(page(cookies=["pref=1; SameSite=None"], headers=[]))
    assert results["cookies"] == "cookies-samesite-flag-invalid"


def test_repeated_headers_are_joined_as_the_observatory_reads_them() -> None:
    """Node.js joins repeated lines with ", ": nosniff twice is not nosniff, HSTS twice is invalid."""
    results = _judged(
        page(
            headers=[
                ("X-Content-Type-Options", "nosniff"),
                ("X-Content-Type-Options", "nosniff"),
                ("Strict-Transport-Security", "max-age=63072000"),
                ("Strict-Transport-Security", "max-age=63072000"),
            ]
        )
    )
    assert results["x-content-type-options"] == "x-content-type-options-header-invalid"
    assert results["strict-transport-security"] == "hsts-header-invalid"


def test_off_host_first_redirect_and_untrusted_certificate() -> None:
    probe = WebProbe(
        http_route=[
            RedirectHop(url="http://good.test/", status=301),
            RedirectHop(url="https://www.good.test/"),
        ],
        route_note="another host",
    )
    assert _judged(page(), probe=probe)["redirection"] == "redirection-off-host-from-http"
    untrusted = _judged(page(), trusted=False)
    assert untrusted["strict-transport-security"] == "hsts-invalid-cert"
    assert untrusted["redirection"] == "redirection-invalid-cert"


def test_scripts_from_other_sites() -> None:
    def sri(*srcs: tuple[str, bool]) -> str:
        from auditor.model import ScriptTag

        facts = PageFacts(
            url="https://www.good.test/",
            content_type="text/html",
            script_count=len(srcs),
            scripts=[ScriptTag(src=s, integrity=i) for s, i in srcs],
        )
        return _judged(page("https://www.good.test/"), probe=WebProbe(page=facts))["subresource-integrity"]

    assert (
        sri(("https://static.good.test/a.js", False))
        == "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    )
    assert (
        sri(("https://cdn.other.example/a.js", True))
        == "sri-implemented-and-external-scripts-loaded-securely"
    )
    assert (
        sri(("//cdn.other.example/a.js", True)) == "sri-implemented-but-external-scripts-not-loaded-securely"
    )
    assert (
        sri(("/a.js", True), ("https://cdn.other.example/a.js", False))
        == "sri-not-implemented-but-external-scripts-loaded-securely"
    )


def test_an_error_page_is_not_graded() -> None:
    ev = evidence(http_evidence=http(page(status=500)))
    ev.http.web = WebProbe()
    graded = web_grade(ev)
    assert graded is not None and graded.letter is None and "500" in (graded.error or "")


# ---------------------------------------------------------------- the probe, on a real nginx


def test_probe_reads_meta_scripts_cors_and_the_route(pki: TestPKI, tmp_path: Path) -> None:
    body = (
        '<html><head><meta http-equiv="content-security-policy" content="default-src \'self\'">'
        '<meta name="referrer" content="same-origin"></head><body><script>1</script>'
        '<script src="https://cdn.other.example/x.js" integrity="sha384-x"></script></body></html>'
    )
    echo = "add_header Access-Control-Allow-Origin $http_origin always;"
    with NginxSite(tmp_path / "site", issued=pki.issue("web-probe"), body=body, extra_server=echo) as site:
        found = probe_http("good.test", site.https_port, ip="127.0.0.1", http_port=site.http_port, timeout=5)
    web = found.web
    assert web is not None and web.page is not None and web.cors is not None
    assert web.page.meta_csp == ["default-src 'self'"] and web.page.meta_referrer == ["same-origin"]
    assert web.page.script_count == 2 and [(s.src, s.integrity) for s in web.page.scripts] == [
        ("https://cdn.other.example/x.js", True)
    ]
    assert web.cors.allow_origin == web.cors.origin == "https://http-observatory.security.mozilla.org"
    assert [(h.url, h.status) for h in web.http_route] == [
        (f"http://good.test:{site.http_port}/", 301),
        (f"https://good.test:{site.https_port}/", 200),
    ]


def test_route_stops_at_another_host(pki: TestPKI, tmp_path: Path) -> None:
    with NginxSite(tmp_path / "site", issued=pki.issue("web-route"), http_mode="http-redirect") as site:
        found = probe_http("good.test", site.https_port, ip="127.0.0.1", http_port=site.http_port, timeout=5)
    assert found.web is not None
    assert [h.url for h in found.web.http_route] == [
        f"http://good.test:{site.http_port}/",
        "http://elsewhere.test/",
    ]
    assert found.web.http_route[-1].status is None and "another host" in (found.web.route_note or "")


# ---------------------------------------------------------------- where it shows


def _result(letter_: str | None, reason: str = "no CSP", scanned: datetime | None = None) -> TargetResult:
    grade = (
        None
        if letter_ is None
        else WebGrade(
            letter=letter_,
            score=50,
            page="https://good.test/",
            modifiers=[
                WebModifier(
                    test="content-security-policy", result="csp-not-implemented", points=-25, reason=reason
                )
            ],
        )
    )
    return TargetResult(
        target=TargetRef(url="https://good.test/", host="good.test", port=443),
        started_at=scanned or datetime.now(UTC),
        duration_s=1.0,
        compliant=True,
        web_grade=grade,
    )


def test_every_report_shows_the_web_grade_and_cleans_server_text() -> None:
    report = AuditReport(
        generated_at=datetime.now(UTC),
        tool_version="t",
        targets=[_result("C", reason="'evil\x1b[31m\u202e' is not nosniff")],
    )
    text = render_text(report)
    assert "Web grade C (score 50" in text and "-25  content-security-policy: csp-not-implemented" in text
    assert "\x1b" not in text and "\u202e" not in text
    assert "Web grade C" in render_html(report) and "csp-not-implemented" in render_html(report)
    assert 'name="web_grade" value="C"' in to_junit(report)


def test_a_changed_web_letter_is_a_change() -> None:
    changes = diff_results(_result("C"), _result("A+")).changes
    assert [(c.kind, c.before, c.after) for c in changes] == [("web grade", "C", "A+")]
    assert diff_results(_result(None), _result("A+")).changes == []  # a scan from before the web grade


def test_history_lists_the_web_letter(tmp_path: Path) -> None:
    from auditor.store import Store

    database = tmp_path / "history.sqlite"
    store = Store(str(database))
    store.append([_result("B+")])
    store.close()
    (tmp_path / "config.toml").write_text(f'[history]\ndatabase = "{database}"\n')
    run = run_cli("history", "--config", str(tmp_path / "config.toml"))
    assert run.code == 0, run.stderr
    assert "web" in run.stdout and "B+" in run.stdout


def test_a_silent_server_costs_the_web_probe_two_timeouts_at_most() -> None:
    """Page, preflight and route each wait for a server that never answers: without the overall
    budget that is three timeouts; a slow server must not spend the target's whole deadline."""
    import time

    import httpx

    from auditor.model import HttpEvidence
    from auditor.scan.web_probe import (
        BUDGET_TIMEOUTS,
        follow_route,
        probe_web,
        web_host,
    )
    from tests.hostile.rawservers import RawServer, tarpit

    with RawServer(tarpit) as silent:
        landing = HttpResponse(
            url=f"http://good.test:{silent.port}/", status=200, headers=[("Content-Type", "text/html")]
        )
        plain = HttpResponse(
            url="http://good.test:1/", status=301, location=f"http://good.test:{silent.port}/next"
        )
        started = time.monotonic()
        host = web_host("good.test", "127.0.0.1", silent.port, 1, None, timeout=1.0, max_body=10_000)
        http_evidence = HttpEvidence(https=[landing])
        with httpx.HTTPTransport() as transport:
            http_evidence.web = probe_web(transport, http_evidence, host)
            http_evidence.plain_http = plain
            follow_route(transport, http_evidence, host)
        elapsed = time.monotonic() - started
        probe = http_evidence.web
    assert elapsed < BUDGET_TIMEOUTS * 1.0 + 0.6, elapsed
    assert probe.page is not None and probe.page.error is not None
    assert "budget" in (probe.route_note or "") + (probe.cors.error if probe.cors else ""), probe


def test_the_web_probe_opens_no_extra_connection(pki: TestPKI, tmp_path: Path) -> None:
    """Rate limiters count connections: the page and the preflight reuse the clauses' HTTPS
    connection (the plain-HTTP probe would evict it from the pool if they came after)."""
    from tests.hostile.rawservers import RateLimiter, RawServer

    with NginxSite(tmp_path / "site", issued=pki.issue("web-conns"), http_mode="none") as site:
        counter = RateLimiter(site.https_port, allow=1000, window=1.0)
        with RawServer(counter) as proxy:
            found = probe_http("good.test", proxy.port, ip="127.0.0.1", http_port=9, timeout=5)
    assert found.web is not None and found.web.page is not None and found.web.page.error is None
    assert found.web.cors is not None and found.web.cors.status == 405
    assert counter.forwarded == 1
