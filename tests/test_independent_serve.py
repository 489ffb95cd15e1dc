"""Independent tests of the dashboard (`auditor serve`) and the Prometheus metrics (issue 17,
sections 3 and 4), written from the issue and the README alone.

One module-scoped history: two `audit --store` runs over five local targets (compliant; breaking
the policy with letter A-; untrusted, letter T; hostile text in its certificate subject and a
cookie name; a closed port), then one open dashboard and one behind a token, as real uvicorn
processes. What the pages and /metrics show is checked against the JSON report of the last run,
the issued certificates and `auditor history`."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree.ElementTree import Element

import html5lib
import httpx
import pytest
from cryptography import x509

from tests.conftest import CliRun, clause_statuses, run_cli
from tests.harness import chromium
from tests.harness.dashboard_server import Dashboard
from tests.harness.pki import TestPKI
from tests.harness.process_server import free_port
from tests.harness.servers import NginxSite

pytestmark = [
    pytest.mark.skipif(
        not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")), reason="nginx not installed"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("starlette") is None
        or importlib.util.find_spec("prometheus_client") is None,
        reason="the serve and metrics extras are not installed",
    ),
]

HOSTILE_ORG = "<script>alert(1)</script>\u202eevil"
HOSTILE_COOKIE = "<img src=x onerror=alert(2)>=1; Path=/"  # no Secure/HttpOnly/SameSite: 11.5-cookies fails
TOKEN = "independent-dashboard-token"
LETTER_ORDER = ["M", "T", "F", "E", "D", "C", "B", "A-", "A", "A+"]  # worst first


@dataclass
class History:
    config: Path
    directory: Path
    urls: dict[str, str]  # name -> URL
    chains: dict[str, Path]  # name -> the PEM chain the site serves
    report: dict[str, Any]  # latest.json of the second run
    runs: list[CliRun]
    textfile: Path  # [metrics] textfile

    def target(self, name: str) -> dict[str, Any]:
        return next(t for t in self.report["targets"] if t["target"]["url"] == self.urls[name])

    def verdict(self, name: str) -> str:
        target = self.target(name)
        return "not_audited" if target["error"] else "compliant" if target["compliant"] else "failing"

    def letter(self, name: str) -> str | None:
        grade = self.target(name)["grade"]
        return grade["letter"] if grade else None


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> History:
    directory = tmp_path_factory.mktemp("independent-serve")
    directory.chmod(0o700)
    issued = {
        "good": pki.issue("ind-serve-good", hosts=["good.test"]),
        "bad": pki.issue("ind-serve-bad", hosts=["bad.test"], days_valid=20),
        "evil": pki.issue("ind-serve-evil", hosts=["evil.test"], subject_org=HOSTILE_ORG),
        "untrusted": pki.issue("ind-serve-untrusted", hosts=["untrusted.test"], issuer="self"),
    }
    sites = {
        "good": NginxSite(issued=issued["good"], server_name="good.test"),
        "bad": NginxSite(issued=issued["bad"], server_name="bad.test", protocols="TLSv1.2", hsts=None),
        "evil": NginxSite(issued=issued["evil"], server_name="evil.test", cookies=[HOSTILE_COOKIE]),
        "untrusted": NginxSite(issued=issued["untrusted"], server_name="untrusted.test"),
    }
    urls = {name: site.url for name, site in sites.items()} | {"dead": f"https://dead.test:{free_port()}/"}
    textfile = directory / "textfile" / "auditor.prom"
    textfile.parent.mkdir()
    entries = "".join(
        f'[[targets]]\nname = "{name}"\nurl = "{url}"\nip = "127.0.0.1"\nca_bundle = "{pki.root_path}"\n'
        "http_port = 9\n"
        for name, url in urls.items()
    )
    config = directory / "config.toml"
    config.write_text(
        '[scan]\nconcurrency = 5\ntimeout = 5\n[output]\ndirectory = "out"\n'
        f'[history]\ndatabase = "history.sqlite"\n[metrics]\ntextfile = "{textfile}"\n{entries}'
    )
    with contextlib.ExitStack() as stack:
        for site in sites.values():
            stack.enter_context(site)
        runs = [run_cli("audit", "--config", str(config), "--store", "--quiet") for _ in range(2)]
    report = json.loads((directory / "out" / "latest.json").read_text())
    chains = {name: issued[name].chain_path for name in issued}
    return History(config, directory, urls, chains, report, runs, textfile)


@pytest.fixture(scope="module")
def dashboard(history: History) -> Iterator[Dashboard]:
    with Dashboard(history.config) as server:
        yield server


@pytest.fixture(scope="module")
def guarded(history: History) -> Iterator[Dashboard]:
    config = history.directory / "guarded.toml"
    config.write_text(history.config.read_text() + '[serve]\ntoken_env = "INDEPENDENT_DASHBOARD_TOKEN"\n')
    with Dashboard(config, {"INDEPENDENT_DASHBOARD_TOKEN": TOKEN}) as server:
        yield server


def _get(server: Dashboard, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(server.url + path, timeout=30, **kwargs)


def _page(response: httpx.Response) -> Element:
    assert response.status_code == 200, response.text[:500]
    root: Element = html5lib.parse(response.text, namespaceHTMLElements=False)
    return root


def _text(element: Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _listed_sites(root: Element) -> list[str]:
    """The URLs of the sites an overview lists, in page order (one per row)."""
    urls: list[str] = []
    for row in root.iter("tr"):
        for link in row.iter("a"):
            href = link.get("href", "")
            if href.startswith("/site?"):
                urls.append(parse_qs(urlsplit(href).query)["url"][0])
                break
    return urls


def _overview(server: Dashboard, **query: str) -> list[str]:
    return _listed_sites(_page(_get(server, "/?" + urlencode(query))))


def _scan_ids(history: History, name: str) -> list[int]:
    run = run_cli("history", history.urls[name], "--config", str(history.config))
    assert run.code == 0, run.stderr
    return [
        int(m.group(1))
        for line in run.stdout.splitlines()
        if history.urls[name] in line
        if (m := re.search(r"(\d+)", line))
    ]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families  # lazy: the metrics extra

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# --- the overview -------------------------------------------------------------------------------


def test_overview_counts_equal_the_stored_verdicts(history: History, dashboard: Dashboard) -> None:
    root = _page(_get(dashboard, "/"))
    shown: dict[str, int] = {}
    for element in root.iter():
        match = re.fullmatch(r"(\d+) ?(compliant|breaking the policy|not audited)", _text(element), re.I)
        if match:
            shown[match.group(2).lower()] = int(match.group(1))
    verdicts = [history.verdict(name) for name in history.urls]
    assert shown == {
        "compliant": verdicts.count("compliant"),
        "breaking the policy": verdicts.count("failing"),
        "not audited": verdicts.count("not_audited"),
    }
    assert sorted(_listed_sites(root)) == sorted(history.urls.values())


def test_overview_lists_sites_worst_first(history: History, dashboard: Dashboard) -> None:
    """Breaking the policy, then not audited, then compliant (the report's order); a worse letter
    first within a verdict."""
    names = {url: name for name, url in history.urls.items()}
    listed = [names[url] for url in _overview(dashboard)]
    groups = ["failing", "not_audited", "compliant"]
    assert [groups.index(history.verdict(n)) for n in listed] == sorted(
        groups.index(history.verdict(n)) for n in listed
    ), listed
    failing = [n for n in listed if history.verdict(n) == "failing"]
    assert {"bad", "evil", "untrusted"} == set(failing)
    ranks = [LETTER_ORDER.index(history.letter(n) or "M") for n in failing]
    assert ranks == sorted(ranks), [(n, history.letter(n)) for n in failing]


def test_filters_by_clause_and_letter_give_exactly_the_matching_sites(
    history: History, dashboard: Dashboard
) -> None:
    failing: dict[str, set[str]] = {}
    letters: dict[str, set[str]] = {}
    for target in history.report["targets"]:
        url = target["target"]["url"]
        for clause, status in clause_statuses(target).items():
            if status == "fail":
                failing.setdefault(clause, set()).add(url)
        if target["grade"]:
            letters.setdefault(target["grade"]["letter"], set()).add(url)
    assert {"11.5-cookies", "11.3-protocols", "11.2-cert-trusted"} <= set(failing)
    for clause, urls in failing.items():
        assert set(_overview(dashboard, clause=clause)) == urls, clause
    for letter, urls in letters.items():
        assert set(_overview(dashboard, grade=letter)) == urls, letter
    both = failing["11.5-cookies"] & letters[history.letter("evil") or ""]
    assert set(_overview(dashboard, clause="11.5-cookies", grade=history.letter("evil") or "")) == both


def test_each_verdict_count_links_to_exactly_its_sites(history: History, dashboard: Dashboard) -> None:
    """Following a count's link lists as many sites as the count says."""
    root = _page(_get(dashboard, "/"))
    followed = 0
    for link in root.iter("a"):
        match = re.fullmatch(r"(\d+) ?(compliant|breaking the policy|not audited)", _text(link), re.I)
        if match and link.get("href"):
            assert len(_listed_sites(_page(_get(dashboard, link.get("href", ""))))) == int(match.group(1))
            followed += 1
    assert followed == 3


# --- the site page and the stored reports --------------------------------------------------------


@pytest.mark.parametrize("name", ["bad", "dead"])
def test_site_chart_has_one_point_per_stored_scan(history: History, dashboard: Dashboard, name: str) -> None:
    scans = _scan_ids(history, name)
    assert len(scans) == 2
    root = _page(_get(dashboard, "/site?" + urlencode({"url": history.urls[name]})))
    charts = [e for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith("svg")]
    assert charts, "no SVG chart"
    for chart in charts:
        dots = [e for e in chart.iter() if isinstance(e.tag, str) and e.tag.endswith("circle")]
        assert len(dots) == len(scans)
    links = {a.get("href") for a in root.iter("a")}
    assert {f"/scan/{i}" for i in scans} <= links


def test_a_scan_link_returns_that_scans_report(history: History, dashboard: Dashboard) -> None:
    newest = max(_scan_ids(history, "bad"))
    response = _get(dashboard, f"/scan/{newest}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert history.urls["bad"] in response.text
    assert history.urls["good"] not in response.text


# --- headers, methods, hostile text ------------------------------------------------------------


def _csp(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def test_every_response_has_a_strict_csp_and_safe_headers(history: History, dashboard: Dashboard) -> None:
    root = _page(_get(dashboard, "/"))
    stylesheets = [link.get("href", "") for link in root.iter("link") if link.get("rel") == "stylesheet"]
    scan = max(_scan_ids(history, "evil"))
    responses = [
        _get(dashboard, "/"),
        _get(dashboard, "/?clause=11.5-cookies"),
        _get(dashboard, "/site?" + urlencode({"url": history.urls["evil"]})),
        _get(dashboard, f"/scan/{scan}"),
        _get(dashboard, "/metrics"),
        *[_get(dashboard, href) for href in stylesheets],
        _get(dashboard, "/no-such-page"),
        _get(dashboard, "/scan/987654"),
        _get(dashboard, "/site?" + urlencode({"url": "https://never-audited.test/"})),
        httpx.post(dashboard.url + "/", timeout=30),
    ]
    assert [r.status_code for r in responses[-4:]] == [404, 404, 404, 405]
    for response in responses:
        where = f"{response.request.method} {response.request.url}"
        csp = _csp(response.headers.get("content-security-policy", ""))
        scripts = csp.get("script-src", csp.get("default-src"))
        assert scripts == ["'none'"], (where, csp)
        assert csp.get("frame-ancestors") == ["'none'"] and csp.get("base-uri") == ["'none'"], where
        assert response.headers.get("x-content-type-options") == "nosniff", where
        assert response.headers.get("referrer-policy") == "no-referrer", where


def test_read_only_head_works_and_writes_are_refused(dashboard: Dashboard) -> None:
    head = httpx.head(dashboard.url + "/", timeout=30)
    assert head.status_code == 200 and head.content == b""
    for method in ("POST", "PUT", "DELETE"):
        assert httpx.request(method, dashboard.url + "/metrics", timeout=30).status_code == 405, method


def test_hostile_server_text_is_shown_inert(history: History, dashboard: Dashboard) -> None:
    scan = max(_scan_ids(history, "evil"))
    pages = {
        path: _get(dashboard, path).text
        for path in ("/", "/site?" + urlencode({"url": history.urls["evil"]}), f"/scan/{scan}")
    }
    for path, text in pages.items():
        assert "<script>alert(1)" not in text and "<img src=x" not in text, path
        assert "\u202e" not in text, path
    site = _text(_page(_get(dashboard, "/site?" + urlencode({"url": history.urls["evil"]}))))
    assert "<script>alert(1)</script><U+202E>evil" in site.replace("\\", "")


@pytest.mark.skipif(chromium.find() is None, reason="chromium not installed")
def test_chromium_renders_the_hostile_site_page_without_script_or_csp_violation(
    history: History, dashboard: Dashboard
) -> None:
    loaded = chromium.load(dashboard.url + "/site?" + urlencode({"url": history.urls["evil"]}))
    dom = loaded.dom.lower()
    assert "<script" not in dom and "onerror=" not in dom
    assert "<svg" in dom and "<circle" in dom
    assert not [line for line in loaded.console if "Content Security Policy" in line or "Refused" in line], (
        loaded.console
    )


# --- access control -----------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "bind"), [("flag", "192.0.2.1:8080"), ("config", "[2001:db8::1]:8080")])
def test_a_non_loopback_bind_without_access_control_is_refused(
    history: History, bind: str, where: str
) -> None:
    """Documentation addresses (RFC 5737, RFC 3849), no address of this machine: nothing could listen
    there even if the refusal were missing."""
    config = history.directory / f"bind-{where}.toml"
    config.write_text(
        history.config.read_text() + (f'[serve]\nbind = "{bind}"\n' if where == "config" else "")
    )
    run = run_cli(
        "serve", "--config", str(config), *(["--bind", bind] if where == "flag" else []), timeout=60
    )
    assert run.code == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor:"), run.stderr


def test_a_token_named_but_unset_stops_the_start(history: History) -> None:
    config = history.directory / "unset-token.toml"
    config.write_text(history.config.read_text() + '[serve]\ntoken_env = "INDEPENDENT_UNSET_TOKEN"\n')
    run = run_cli("serve", "--config", str(config), "--bind", f"127.0.0.1:{free_port()}", timeout=60)
    assert run.code == 2 and "INDEPENDENT_UNSET_TOKEN" in run.stderr, run.stdout + run.stderr


def test_with_a_token_every_route_asks_for_it(history: History, guarded: Dashboard) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    page = _page(_get(guarded, "/", headers=bearer))
    stylesheets = [link.get("href", "") for link in page.iter("link") if link.get("rel") == "stylesheet"]
    for path in ("/", "/metrics", "/site?" + urlencode({"url": history.urls["good"]}), *stylesheets):
        refused = _get(guarded, path)
        assert refused.status_code in (401, 403), path
        assert "content-security-policy" in refused.headers
        assert history.urls["good"] not in refused.text
        assert _get(guarded, path, headers={"Authorization": "Bearer wrong"}).status_code in (401, 403)
    assert _get(guarded, "/", headers=bearer).status_code == 200
    metrics = _get(guarded, "/metrics", headers=bearer)
    assert metrics.status_code == 200 and _samples(metrics.text)
    with httpx.Client(base_url=guarded.url, timeout=30, follow_redirects=True) as browser:
        assert browser.get("/?" + urlencode({"token": TOKEN})).status_code == 200
        assert browser.get("/metrics").status_code == 200  # the cookie it set


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_parse_and_follow_the_naming_conventions(dashboard: Dashboard) -> None:
    from prometheus_client.parser import text_string_to_metric_families  # lazy: the metrics extra

    response = _get(dashboard, "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(response.text))
    assert families
    for family in families:
        assert re.fullmatch(r"auditor_[a-z0-9_]+", family.name), family.name
        assert family.documentation, family.name
        if family.type == "gauge":
            assert not family.name.endswith("_total"), family.name
        if "timestamp" in family.name or "expiry" in family.name:
            assert family.name.endswith("_timestamp_seconds"), family.name
        if "duration" in family.name:
            assert family.name.endswith("_seconds"), family.name
        assert not re.search(r"_(milliseconds|ms|minutes|hours|days|percent)(_|$)", family.name), family.name


def _earliest_not_after(chain: Path) -> float:
    certificates = x509.load_pem_x509_certificates(chain.read_bytes())
    return min(c.not_valid_after_utc.timestamp() for c in certificates)


def test_metric_values_equal_the_report_and_the_certificates(history: History, dashboard: Dashboard) -> None:
    samples = _samples(_get(dashboard, "/metrics").text)
    counts = {"compliant": 0, "noncompliant": 0, "not_audited": 0}
    for name, url in history.urls.items():
        target, labels = history.target(name), (("target", url),)
        audited = target["error"] is None
        counts["not_audited" if not audited else "compliant" if target["compliant"] else "noncompliant"] += 1
        assert samples[("auditor_target_compliant", labels)] == (1 if target["compliant"] else 0), name
        assert samples[("auditor_target_audited", labels)] == (1 if audited else 0), name
        started = datetime.fromisoformat(target["started_at"].replace("Z", "+00:00")).timestamp()
        assert abs(samples[("auditor_last_scan_timestamp_seconds", labels)] - started) < 1, name
        if target["grade"]:
            letter, score = target["grade"]["letter"], target["grade"]["score"]
            assert samples[("auditor_grade_score", (("letter", letter), ("target", url)))] == score, name
        for clause, status in clause_statuses(target).items():
            key = ("auditor_clause_status", (("clause", clause), ("status", status), ("target", url)))
            assert samples.get(key) == 1, (name, clause, status)
        if name in history.chains:
            expiry = samples[("auditor_certificate_earliest_expiry_timestamp_seconds", labels)]
            assert expiry == pytest.approx(_earliest_not_after(history.chains[name]), abs=1), name
    assert (
        "auditor_certificate_earliest_expiry_timestamp_seconds",
        (("target", history.urls["dead"]),),
    ) not in samples
    for state, count in counts.items():
        assert samples[("auditor_targets", (("state", state),))] == count, state
    assert samples[("auditor_evidence_log_verified", ())] == 1


def test_metrics_command_and_textfile_give_what_metrics_serves(
    history: History, dashboard: Dashboard
) -> None:
    """`auditor metrics` on stdout, and the [metrics] textfile the stored audits rewrote."""
    served = _samples(_get(dashboard, "/metrics").text)
    printed = run_cli("metrics", "--config", str(history.config))
    assert printed.code == 0, printed.stderr
    assert _samples(printed.stdout) == served
    assert all(run.code == 3 for run in history.runs), [r.stderr for r in history.runs]  # the closed port
    assert _samples(history.textfile.read_text()) == served
    assert history.textfile.stat().st_mode & 0o777 == 0o644


def test_metrics_textfile_is_replaced_atomically(history: History, tmp_path: Path) -> None:
    target = tmp_path / "node_exporter" / "auditor.prom"
    target.parent.mkdir()
    target.write_text("# the previous scrape\n")
    before = target.stat().st_ino
    run = run_cli("metrics", "--config", str(history.config), "--textfile", str(target))
    assert run.code == 0, run.stderr
    assert target.stat().st_ino != before  # a new file renamed over the old one, never rewritten in place
    assert [p.name for p in target.parent.iterdir()] == ["auditor.prom"]  # no temporary file left
    assert _samples(target.read_text())[("auditor_evidence_log_verified", ())] == 1
    assert target.stat().st_mode & 0o777 == 0o644


def test_metrics_textfile_that_cannot_be_written_is_one_line_and_exit_3(
    history: History, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    run = run_cli("metrics", "--config", str(history.config), "--textfile", str(blocker / "auditor.prom"))
    assert run.code == 3, run.stdout + run.stderr
    assert run.stderr.strip().startswith("auditor:") and len(run.stderr.strip().splitlines()) == 1


def _chart_points(server: Dashboard, url: str) -> int:
    root = _page(_get(server, "/site?" + urlencode({"url": url})))
    chart = next(e for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith("svg"))
    return sum(1 for e in chart.iter() if isinstance(e.tag, str) and e.tag.endswith("circle"))


def test_the_dashboard_is_live_and_a_tampered_log_shows_everywhere(history: History, tmp_path: Path) -> None:
    """On a copy of the history (the other tests keep the intact one), with `verify_seconds = 0`: a
    scan stored while the dashboard runs shows without a restart and the grown log still verifies;
    after a row is altered the gauge turns to 0 and the dashboard names the entry, as `verify-log`
    does."""
    copy = tmp_path / "copy"
    copy.mkdir(mode=0o700)
    shutil.copytree(history.directory / "out", copy / "out")
    source = sqlite3.connect(history.directory / "history.sqlite")
    target = sqlite3.connect(copy / "history.sqlite")
    with contextlib.closing(source), contextlib.closing(target):
        source.backup(target)
    config = copy / "config.toml"
    text = re.sub(r"\[metrics\]\ntextfile = .*\n", "", history.config.read_text())
    config.write_text(text + "[serve]\nverify_seconds = 0\n")
    dead = history.urls["dead"]
    with Dashboard(config) as live:
        assert "evidence log verified" in _text(_page(_get(live, "/"))).lower()
        assert _chart_points(live, dead) == 2
        stored = run_cli("audit", dead, "--ip", "127.0.0.1", "--config", str(config), "--store", "--quiet")
        assert stored.code == 3, stored.stdout + stored.stderr
        assert _chart_points(live, dead) == 3
        assert "evidence log verified" in _text(_page(_get(live, "/"))).lower()

        with contextlib.closing(sqlite3.connect(copy / "history.sqlite")) as db:
            db.execute("UPDATE evidence_log SET grade = 'A+' WHERE seq = 2")
            db.commit()
        overview = _text(_page(_get(live, "/"))).lower()
        site = _text(_page(_get(live, "/site?" + urlencode({"url": history.urls["good"]})))).lower()
        served = _samples(_get(live, "/metrics").text)
    assert "evidence log verified" not in overview and "entry 2" in overview
    assert "entry 2" in site
    assert served[("auditor_evidence_log_verified", ())] == 0
    printed = run_cli("metrics", "--config", str(config))
    assert printed.code == 0, printed.stderr
    assert _samples(printed.stdout)[("auditor_evidence_log_verified", ())] == 0


@pytest.mark.skipif(chromium.find() is None, reason="chromium not installed")
def test_chromium_renders_a_stored_report_under_the_csp_without_violation(
    history: History, dashboard: Dashboard
) -> None:
    """The stored report's inline styles are allowed by hash: none may be refused."""
    loaded = chromium.load(f"{dashboard.url}/scan/{max(_scan_ids(history, 'evil'))}")
    assert "<script" not in loaded.dom.lower() and "onerror=" not in loaded.dom.lower()
    assert history.urls["evil"] in loaded.dom
    assert not [line for line in loaded.console if "Content Security Policy" in line or "Refused" in line], (
        loaded.console
    )
