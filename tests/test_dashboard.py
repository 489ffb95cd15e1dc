"""`auditor serve`: the dashboard over a history of real audits of local nginx sites (one of them
hostile), served by a real uvicorn process, read with httpx and loaded in headless Chromium.

One history and two servers for the whole module: an open one on loopback, and one that asks for
a token or basic auth. Chromium runs once per page (it takes one URL per run)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import html5lib
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import run_cli
from tests.harness import chromium
from tests.harness.dashboard_server import Dashboard
from tests.harness.pki import TestPKI
from tests.harness.process_server import free_port
from tests.harness.servers import NginxSite

pytestmark = pytest.mark.skipif(
    not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")), reason="nginx is not installed"
)
needs_chromium = pytest.mark.skipif(chromium.find() is None, reason="chromium is not installed")

# What a hostile server sends, to be shown as text: a script that would rewrite the page if it ran,
# a tag with a handler, and a bidi override that would reverse what is read.
SCRIPT = "<script>document.body.innerHTML='PWNED'</script>"
IMG = "<img src=x onerror=document.title='PWNED'>"
RLO = "\u202e"
TOKEN, USER, PASSWORD = "s3cret-token-for-tests", "ops", "correct horse"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


@dataclass
class Fleet:
    config: Path
    good: str
    weak: str
    hostile: str
    down: str
    open: Dashboard
    guarded: Dashboard


def _config(path: Path, targets: dict[str, tuple[str, Path]], extra: str = "") -> Path:
    """A config beside the others (the same relative history database and output directory)."""
    entries = "".join(
        f'[[targets]]\nname = "{name}"\nurl = "{url}"\nip = "127.0.0.1"\nca_bundle = "{bundle}"\nhttp_port = 9\n'
        for name, (url, bundle) in targets.items()
    )
    path.write_text(f"{extra}[scan]\nconcurrency = 4\n{entries}")
    return path


@pytest.fixture(scope="module")
def fleet(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("dashboard")
    good_cert = pki.issue("dash-good", hosts=("good.test",))
    weak_cert = pki.issue("dash-weak", hosts=("weak.test",), days_valid=12)
    hostile_cert = pki.issue(
        "dash-hostile",
        hosts=("hostile.test",),
        subject_org=f"{SCRIPT}{RLO}evil",
        subject_cn=f"hostile.test{IMG}",
    )
    good = NginxSite(issued=good_cert, server_name="good.test")
    hostile = NginxSite(
        issued=hostile_cert, server_name="hostile.test", cookies=[f"{SCRIPT}{RLO}=1; Path=/"], hsts=None
    )
    weak_port = free_port()

    def weak(hsts: str | None) -> NginxSite:
        return NginxSite(
            issued=weak_cert,
            server_name="weak.test",
            protocols="TLSv1 TLSv1.1 TLSv1.2",
            seclevel0=True,
            hsts=hsts,
            https_port=weak_port,
        )

    down = f"https://down.test:{free_port()}/"
    with good, hostile:
        targets = {
            "good": (good.url, pki.root_path),
            "weak": (f"https://weak.test:{weak_port}/", pki.root_path),
            "hostile": (hostile.url, pki.root_path),
            "down": (down, pki.root_path),
        }
        config = _config(directory / "config.toml", targets)
        for hsts in ("max-age=63072000", None):  # two nights: the weak site drops HSTS in between
            with weak(hsts):
                run = run_cli("audit", "--config", str(config), "--store", "--quiet")
            assert run.code == 3, run.stderr  # the down site cannot be audited
    guarded_config = _config(
        directory / "guarded.toml",
        targets,
        '[serve]\ntoken_env = "DASH_TOKEN"\nusername = "ops"\npassword_env = "DASH_PASSWORD"\n',
    )
    with (
        Dashboard(config) as open_server,
        Dashboard(guarded_config, {"DASH_TOKEN": TOKEN, "DASH_PASSWORD": PASSWORD}) as guarded,
    ):
        yield Fleet(config, good.url, targets["weak"][0], hostile.url, down, open_server, guarded)


def get(fleet: Fleet, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(fleet.open.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]


def site_link(url: str) -> str:
    return "/site?" + urlencode({"url": url})


def texts(document: str) -> str:
    """What a reader sees: the text of the parsed page (html5lib reads as a browser does)."""
    return "".join(html5lib.parse(document, namespaceHTMLElements=False).itertext())


def named(tree: Any, name: str) -> list[Any]:
    """The elements called `name`, in any namespace (html5lib puts SVG in its own)."""
    return [el for el in tree.iter() if isinstance(el.tag, str) and el.tag.rsplit("}", 1)[-1] == name]


def test_every_page_is_served_with_a_strict_policy(fleet: Fleet) -> None:
    for path in ("/", site_link(fleet.weak), "/metrics", "/dashboard.css", "/no-such-page"):
        response = get(fleet, path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "server" not in response.headers  # no uvicorn banner
    assert get(fleet, "/no-such-page").status_code == 404
    assert get(fleet, site_link("https://never.test/")).status_code == 404


def test_overview_counts_and_sites_worst_first(fleet: Fleet) -> None:
    page = get(fleet, "/")
    assert page.status_code == 200
    tree = html5lib.parse(page.text, namespaceHTMLElements=False)
    counts = {
        card.get("class", "").split()[1]: int(card.find("span").text)
        for card in tree.iter("a")
        if "card" in card.get("class", "").split()
    }
    assert counts == {"card-failing": 2, "card-not_audited": 1, "card-compliant": 1}
    rows = [row for row in tree.iter("tr") if "site" in row.get("class", "").split()]
    verdicts = [row.get("class", "").split()[1] for row in rows]
    assert verdicts == ["v-failing", "v-failing", "v-not_audited", "v-compliant"]
    urls = [row.find(".//div[@class='url']").text for row in rows]
    assert urls[2:] == [fleet.down, fleet.good] and set(urls[:2]) == {fleet.weak, fleet.hostile}
    weak = rows[urls.index(fleet.weak)]
    weak_text = "".join(weak.itertext())
    assert "11.3-protocols" in weak_text and "11.5-hsts" in weak_text  # failing clauses
    assert "11 d" in weak_text  # days until the certificate expires (12 days valid)
    assert "connection refused" in "".join(rows[2].itertext())


def test_filters_by_verdict_clause_and_letter(fleet: Fleet) -> None:
    compliant = get(fleet, "/", params={"verdict": "compliant"}).text
    assert fleet.good in compliant and fleet.weak not in compliant and fleet.down not in compliant
    protocols = get(fleet, "/", params={"clause": "11.3-protocols"}).text
    assert fleet.weak in protocols and fleet.good not in protocols and fleet.hostile not in protocols
    cookies = get(fleet, "/", params={"clause": "11.5-cookies", "verdict": "failing"}).text
    assert fleet.hostile in cookies and fleet.weak not in cookies
    ungraded = get(fleet, "/", params={"grade": "none"}).text
    assert fleet.down in ungraded and fleet.good not in ungraded
    letter = get(fleet, "/", params={"verdict": "compliant"})
    good_letter = re.search(r'class="badge g-good">([^<]+)<', letter.text)
    assert good_letter
    by_letter = get(fleet, "/", params={"grade": good_letter.group(1)}).text
    assert fleet.good in by_letter and fleet.down not in by_letter
    nothing = get(fleet, "/", params={"clause": "11.1-pfs"}).text
    assert "No site matches these filters." in nothing
    assert 'value="11.1-pfs" selected' in nothing  # the form keeps what was asked
    for name, typo in (("grade", "ZZ"), ("clause", "11.9-bogus"), ("verdict", "green")):
        refused = get(fleet, "/", params={name: typo})  # a typo must not read as "every site matches"
        assert refused.status_code == 400, name
        assert (
            f"unknown {name} &#39;{typo}&#39;" in refused.text or f"unknown {name} '{typo}'" in refused.text
        )


def test_site_page_chart_grid_findings_changes_and_reports(fleet: Fleet) -> None:
    page = get(fleet, site_link(fleet.weak))
    assert page.status_code == 200
    tree = html5lib.parse(page.text, namespaceHTMLElements=False)
    charts = named(tree, "svg")  # one wide, one for phones (CSS shows one)
    assert len(charts) == 2
    for svg in charts:
        assert len(named(svg, "circle")) == 2  # one dot per scan
        assert "Grade of weak" in "".join(named(svg, "title")[0].itertext())
    text = texts(page.text)
    assert "Clauses, day by day" in text and "11.3-protocols" in text
    assert "Current findings" in text and "TLS 1.1: " in text  # the evidence, line by line
    changes = tree.find(".//table[@class='grid']")
    assert changes is not None and "11.5-hsts" in "".join(changes.itertext())  # HSTS went away
    assert "evidence log" in text.lower() and "verified" in text
    scans = re.findall(r'href="/scan/(\d+)"', page.text)
    assert len(set(scans)) == 2
    report = get(fleet, f"/scan/{scans[0]}")
    assert report.status_code == 200 and "TLS policy audit" in report.text
    policy = report.headers["content-security-policy"]
    assert "'unsafe-hashes' 'sha256-" in policy and "unsafe-inline" not in policy and "script" not in policy
    assert get(fleet, "/scan/999999").status_code == 404


def test_hostile_text_is_shown_never_obeyed(fleet: Fleet) -> None:
    page = get(fleet, site_link(fleet.hostile)).text
    tree = html5lib.parse(page, namespaceHTMLElements=False)
    assert not [el.tag for el in tree.iter() if el.tag in ("script", "img")]
    assert not [el for el in tree.iter() if any(name.startswith("on") for name in el.attrib)]
    text = "".join(tree.itertext())
    # shown as text, as the certificate's DN spells it (RFC 4514 escapes < and >)
    assert "\\<script\\>document.body.innerHTML='PWNED'\\</script\\>" in text
    assert "onerror=document.title" in text
    assert RLO not in page and "<U+202E>" in text  # the bidi override named, not applied


def test_metrics_parse(fleet: Fleet) -> None:
    response = get(fleet, "/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families, response.text
    samples = [sample for family in families.values() for sample in family.samples]
    assert any(fleet.weak in sample.labels.values() for sample in samples)  # per-target series


def test_access_control_on_every_route(fleet: Fleet) -> None:
    base = fleet.guarded.url
    for path in ("/", "/metrics", site_link(fleet.good), "/dashboard.css"):
        refused = httpx.get(base + path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert refused.headers["content-security-policy"] == CSP
    assert httpx.get(base + "/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(base + "/", params={"token": "wrong"}).status_code == 401
    assert httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(base + "/", auth=(USER, PASSWORD)).status_code == 200
    assert httpx.get(base + "/", auth=(USER, "wrong")).status_code == 401
    assert httpx.get(base + "/", auth=("root", PASSWORD)).status_code == 401
    assert httpx.get(base + "/", headers={"Authorization": "Basic !!!"}).status_code == 401
    swap = httpx.get(base + "/", params={"token": TOKEN, "verdict": "compliant"})
    assert (
        swap.status_code == 303 and swap.headers["location"] == "/?verdict=compliant"
    )  # the token leaves the URL
    cookie = swap.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and TOKEN not in cookie
    name, value = cookie.split(";")[0].split("=", 1)
    assert httpx.get(base + "/", cookies={name: value}).status_code == 200
    assert httpx.get(base + "/", cookies={name: "0" * len(value)}).status_code == 401


def test_a_non_loopback_bind_needs_access_control(fleet: Fleet, tmp_path: Path) -> None:
    port = str(free_port())
    refused = run_cli("serve", "--config", str(fleet.config), "--bind", f"0.0.0.0:{port}")
    assert refused.code == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "refusing to serve on 0.0.0.0" in refused.stderr and "token_env" in refused.stderr
    guarded = fleet.config.with_name("guarded.toml")
    unset = run_cli("serve", "--config", str(guarded), "--bind", f"0.0.0.0:{port}", env={"DASH_TOKEN": ""})
    assert unset.code == 2 and "DASH_TOKEN is not set" in unset.stderr, unset.stderr
    assert run_cli("serve", "--config", str(fleet.config), "--bind", "nonsense").code == 2


@needs_chromium
def test_pages_in_a_real_browser(fleet: Fleet) -> None:
    overview = chromium.load(fleet.open.url + "/")
    assert not overview.console, overview.console  # no CSP violation, no error
    tree = html5lib.parse(overview.dom, namespaceHTMLElements=False)
    rows = [
        row.find(".//div[@class='url']").text for row in tree.iter("tr") if "site" in row.get("class", "")
    ]
    assert rows[2:] == [fleet.down, fleet.good]  # worst first, as the browser shows them

    hostile = chromium.load(fleet.open.url + site_link(fleet.hostile))
    assert not hostile.console, hostile.console
    tree = html5lib.parse(hostile.dom, namespaceHTMLElements=False)
    assert named(tree, "svg") and named(tree, "polyline")
    assert "PWNED" not in (tree.find(".//title").text or "")  # the payload never ran
    assert "Fleet overview" in hostile.dom  # ...and never replaced the page
    assert "onerror=document.title" in "".join(tree.itertext())
    assert not [el for el in tree.iter() if el.tag in ("script", "img")]

    scan = re.search(r'href="/scan/(\d+)"', hostile.dom)
    assert scan
    report = chromium.load(f"{fleet.open.url}/scan/{scan.group(1)}")
    assert not report.console, report.console  # every inline style of the report is allowed by hash
    assert "TLS policy audit" in report.dom

    # the token flow in a browser: ?token= is swapped for a cookie and the page loads without it
    guarded = chromium.load(f"{fleet.guarded.url}/?token={TOKEN}")
    assert "Fleet overview" in guarded.dom and TOKEN not in guarded.dom
