"""The HTML and text reports read verdict first (issue 12, item 8), proven on one real run over
four local targets: a compliant site, a site graded A+ that still breaks the policy, a legacy site
and one that refuses connections. The HTML is read with a real parser (html5lib), styles with tinycss2.
"""

from __future__ import annotations

import json
import ssl
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

import html5lib
import pytest
import tinycss2

from auditor.commands.demo import LEGACY_CIPHERS, MODERN_CIPHERS
from tests.conftest import run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer, free_port

GREEN = "#15803d"  # the pass colour of the report
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
GOOD_COOKIE = ("Set-Cookie", "__Host-session=1; Path=/; Secure; HttpOnly; SameSite=Lax")
ORDER = ["dvshop", "legacy", "down", "shop"]  # failing (config order kept), not audited, compliant
TOKYO = {"TZ": "Asia/Tokyo"}


@dataclass
class Run:
    report: dict  # type: ignore[type-arg]
    html: str
    text: str
    ports: dict[str, tuple[int, int]]  # name -> (https port, plain-HTTP port)

    def target(self, name: str) -> dict:  # type: ignore[type-arg]
        return next(t for t in self.report["targets"] if t["target"]["name"] == name)


@pytest.fixture(scope="module")
def run(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("layout")
    shop = PythonTLSServer(
        pki.issue("layout-shop", hosts=("shop.test",)),
        ciphers=MODERN_CIPHERS,
        response_headers=[HSTS, GOOD_COOKIE],
        http_mode="redirect",
        server_name="shop.test",
    )
    # the issue's case: an A+ grade (modern TLS, HSTS) on a site that breaks the policy (DV, bare cookie)
    dvshop = PythonTLSServer(
        pki.issue("layout-dv", hosts=("dvshop.test",), policy="dv"),
        ciphers=MODERN_CIPHERS,
        response_headers=[HSTS, ("Set-Cookie", "sid=1; Path=/")],
        http_mode="redirect",
        server_name="dvshop.test",
    )
    legacy = PythonTLSServer(
        pki.issue("layout-legacy", hosts=("legacy.test",), policy="dv", days_valid=20),
        minimum_version=ssl.TLSVersion.TLSv1,
        maximum_version=ssl.TLSVersion.TLSv1_2,
        ciphers=LEGACY_CIPHERS,
        response_headers=[("Set-Cookie", "session=1; Path=/")],
        body="<html><body><img src='http://legacy.test/logo.png'></body></html>",
        http_mode="content",
        server_name="legacy.test",
    )
    with shop, dvshop, legacy:
        entries = "".join(
            f'[[targets]]\nname = "{name}"\nurl = "https://{name}.test:{s.port}/"\nip = "127.0.0.1"\n'
            f'ca_bundle = "{pki.root_path}"\nhttp_port = {s.http_port}\n'
            for name, s in (("shop", shop), ("dvshop", dvshop))
        )
        entries += f'[[targets]]\nname = "down"\nurl = "https://down.test:{free_port()}/"\nip = "127.0.0.1"\n'
        entries += (
            f'[[targets]]\nname = "legacy"\nurl = "https://legacy.test:{legacy.port}/"\nip = "127.0.0.1"\n'
            f'ca_bundle = "{pki.root_path}"\nhttp_port = {legacy.http_port}\n'
        )
        config = tmp / "config.toml"
        config.write_text(f"[scan]\nconcurrency = 4\n[output]\nwrite_json = false\n{entries}")
        html_path, json_path = tmp / "r.html", tmp / "r.json"
        audit = run_cli(
            "audit",
            "--config",
            str(config),
            "--json",
            str(json_path),
            "--html",
            str(html_path),
            "--quiet",
            env=TOKYO,
        )
        ports = {
            name: (s.port, s.http_port)
            for name, s in (("shop", shop), ("dvshop", dvshop), ("legacy", legacy))
        }
    assert audit.code == 3, audit.stderr  # a target not audited outranks the policy failures
    text = run_cli("report", str(json_path), "--text", "-", env=TOKYO)
    assert text.code == 0, text.stderr
    return Run(json.loads(json_path.read_text()), html_path.read_text(), text.stdout, ports)


# ---------------------------------------------------------------- reading the HTML


def _tree(html: str) -> Element:
    return html5lib.parse(html, namespaceHTMLElements=False)


def _text(el: Element) -> str:
    return " ".join("".join(el.itertext()).split())


def _classed(root: Element, name: str) -> list[Element]:
    return [el for el in root.iter() if name in (el.get("class") or "").split()]


def _style(el: Element) -> dict[str, str]:
    """The inlined style attribute, parsed as CSS declarations."""
    declarations = tinycss2.parse_declaration_list(
        el.get("style") or "", skip_comments=True, skip_whitespace=True
    )
    return {
        d.lower_name: tinycss2.serialize(d.value).strip().lower()
        for d in declarations
        if d.type == "declaration"
    }


def _sections(root: Element) -> dict[str, list[Element]]:
    """Each site's part of the page: what follows its <h2> up to the next <h2>."""
    h2s = list(root.iter("h2"))
    parent = next(el for el in root.iter() if h2s[0] in list(el))
    out: dict[str, list[Element]] = {}
    current: list[Element] | None = None
    for child in parent:
        if child.tag == "h2":
            current = out.setdefault(_text(child), [])
        elif current is not None:
            current.append(child)
    return out


def _within(section: list[Element], cls: str) -> list[Element]:
    return [el for part in section for el in _classed(part, cls)]


def _row(section: list[Element], label: str) -> list[Element]:
    """The cells of a two-column row whose first cell says `label`."""
    return next(
        cells
        for part in section
        for tr in part.iter("tr")
        if len(cells := list(tr)) == 2 and _text(cells[0]) == label
    )


# ---------------------------------------------------------------- the HTML report


def test_one_headline_then_failing_and_unaudited_sites_first(run: Run) -> None:
    root = _tree(run.html)
    (headline,) = _classed(root, "hl-text")
    assert _text(headline) == "2 of 4 sites break the policy"
    assert _text(_classed(root, "hl-detail")[0]) == "1 could not be audited, 1 is compliant"
    rows = _classed(root, "site")
    assert [_text(_classed(row, "sname")[0]) for row in rows] == ORDER
    everything = list(root.iter())
    assert everything.index(headline) < everything.index(rows[0])
    assert [h for h in _sections(root) if h in ORDER] == ORDER  # the detailed sections, same order
    assert _text(root.find(".//title")) == "TLS policy audit: 2 of 4 sites break the policy"


def test_the_verdict_dominates_and_a_plus_beside_violations_is_not_green(run: Run) -> None:
    assert run.target("dvshop")["grade"]["letter"] == "A+" and not run.target("dvshop")["compliant"]
    assert run.target("shop")["grade"]["letter"] == "A+" and run.target("shop")["compliant"]
    rows = dict(zip(ORDER, _classed(_tree(run.html), "site"), strict=True))
    verdicts = {name: _classed(row, "vlabel")[0] for name, row in rows.items()}
    badges = {name: _classed(row, "badge")[0] for name, row in rows.items()}
    assert {name: _text(v) for name, v in verdicts.items()} == {
        "dvshop": "NOT COMPLIANT",
        "legacy": "NOT COMPLIANT",
        "down": "NOT AUDITED",
        "shop": "COMPLIANT",
    }
    assert "2 violations" in _text(rows["dvshop"])
    for name in ORDER:  # the verdict comes first and is at least as large as the letter
        assert _text(rows[name]).index(_text(verdicts[name])) < _text(rows[name]).index(_text(badges[name]))
        assert int(_style(verdicts[name])["font-size"].removesuffix("px")) >= int(
            _style(badges[name])["font-size"].removesuffix("px")
        )
    assert _text(badges["dvshop"]) == "A+" and _text(badges["shop"]) == "A+"
    assert _style(badges["shop"])["background"] == GREEN  # the same letter on a compliant site is green...
    assert GREEN not in _style(badges["dvshop"]).values()  # ...and never beside a broken policy
    assert _style(verdicts["dvshop"])["color"] != GREEN and _style(verdicts["shop"])["color"] == GREEN


def test_trust_stores_not_judged_are_grey_and_say_so(run: Run) -> None:
    """A private CA (--ca-bundle): only the bundle is judged; the public stores are listed, grey."""
    section = _sections(_tree(run.html))["dvshop"]
    chips = {_text(chip): _style(chip) for chip in _classed(_row(section, "Trust")[1], "st")}
    assert chips.keys() == {
        "custom: trusted",
        "Android: not judged",
        "Apple: not judged",
        "Java: not judged",
        "Mozilla: not judged",
        "Windows: not judged",
    }
    assert chips["custom: trusted"]["background"] == "#dcfce7"
    reds = {"#b91c1c", "#fee2e2", "#991b1b"}
    for label, style in chips.items():
        if label.endswith("not judged"):
            assert not reds & set(style.values()) and style["background"] == "#e5e7eb", label


def test_every_evidence_line_is_shown_whole(run: Run) -> None:
    section = _sections(_tree(run.html))["legacy"]
    shown = Counter(_text(line) for line in _within(section, "evl"))
    facts = Counter(" ".join(e.split()) for f in run.target("legacy")["findings"] for e in f["evidence"])
    assert shown == facts
    assert "BEAST (CBC with TLS 1.0): PRESENT" in shown  # the 10th line of its finding: not cut away


def test_enum_values_read_as_words(run: Run) -> None:
    sections = _sections(_tree(run.html))
    words = {
        "NOT_VULNERABLE_NO_ORACLE": "not vulnerable (no oracle)",
        "NOT_VULNERABLE_RSA_NOT_SUPPORTED": "not vulnerable (no RSA key exchange)",
    }
    for name in ("shop", "dvshop", "legacy"):
        robot = run.target(name)["evidence"]["tls"]["vulnerabilities"]["robot"]
        assert _text(_row(sections[name], "ROBOT")[1]) == words[robot], name
    labels = {_text(chip) for chip in _classed(_tree(run.html), "st")}
    assert "not tested" in labels and not any("_" in label for label in labels)


def test_times_are_local_with_their_zone(run: Run) -> None:
    generated = datetime.fromisoformat(run.report["generated_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    root = _tree(run.html)
    assert _text(root.find(".//h1")) == f"TLS policy audit · {generated:%Y-%m-%d %H:%M} JST"
    leaf = run.target("legacy")["evidence"]["tls"]["certificates"][0]["received_chain"][0]
    until = datetime.fromisoformat(leaf["not_after"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{until:%Y-%m-%d %H:%M} JST" in _text(root)
    assert run.text.splitlines()[0] == f"TLS policy audit, {generated:%Y-%m-%d %H:%M} JST"


def test_fixes_name_the_site_and_its_ports_and_differ_per_clause(run: Run) -> None:
    port, http_port = run.ports["legacy"]
    section = _sections(_tree(run.html))["legacy"]
    fixes = {
        _text(_classed(fix, "fixhead")[0]): [_text(pre) for pre in fix.iter("pre")]
        for fix in _within(section, "fix")
    }
    snippets = [s for pres in fixes.values() for s in pres]
    assert len(snippets) == len(set(snippets)), "a snippet is repeated"
    assert "example.com" not in run.html
    # the same change fixes both clauses: shown once, under both
    pfs = next(pres for head, pres in fixes.items() if head.startswith("11.1-pfs, 11.3-no-rsa-kex:"))
    assert f"listen {port} ssl; server_name legacy.test; ssl_ciphers" in pfs[0]
    assert pfs[1].startswith(f"<VirtualHost *:{port}> ServerName legacy.test SSLCipherSuite")
    redirect = next(pres for head, pres in fixes.items() if "plain HTTP" in head)
    assert f"listen {http_port};" in redirect[0] and "server_name legacy.test;" in redirect[0]
    assert f"https://$host:{port}$request_uri" in redirect[0]
    assert redirect[1].startswith(f"<VirtualHost *:{http_port}>")
    assert f"Redirect permanent / https://legacy.test:{port}/" in redirect[1]
    hsts = fixes["11.5-hsts: HSTS missing"]
    assert f"listen {port} ssl; server_name legacy.test; add_header Strict-Transport-Security" in hsts[0]


# ---------------------------------------------------------------- the text report and the mail subject


def test_text_report_is_verdict_first(run: Run) -> None:
    lines = run.text.splitlines()
    assert lines[2] == "2 of 4 sites break the policy (1 could not be audited, 1 is compliant)"
    legacy = run.target("legacy")
    broken = len({f["clause"] for f in legacy["findings"] if f["status"] == "fail"})
    assert lines[4] == "NOT COMPLIANT dvshop  (2 violations, grade A+)"
    assert lines[5] == f"NOT COMPLIANT legacy  ({broken} violations, grade {legacy['grade']['letter']})"
    assert lines[6] == f"NOT AUDITED   down: {run.target('down')['error']}"
    assert lines[7] == "COMPLIANT     shop  (grade A+)"
    heads = [line for line in lines if line.startswith("== ")]
    assert [h.split(": ", 1)[1].split(" ")[0] for h in heads] == ORDER
    assert "               - BEAST (CBC with TLS 1.0): PRESENT" in lines
    port = run.ports["legacy"][0]
    assert f"    <VirtualHost *:{port}>" in lines and "        server_name legacy.test;" in lines
    assert "        ssl_protocols TLSv1.2 TLSv1.3;" in lines


def test_mail_subject_names_the_failing_sites_and_their_worst_letter(run: Run) -> None:
    from auditor.model import AuditReport
    from auditor.reports.email import subject_for

    report = AuditReport.model_validate(run.report)
    legacy = run.target("legacy")["grade"]["letter"]
    assert legacy != "A+"  # worse than dvshop's A+: the letter the subject must carry
    failed = sum(
        len({f["clause"] for f in t["findings"] if f["status"] == "fail"}) for t in run.report["targets"]
    )
    assert subject_for(report, "[auditor] {target}: {grade}, {verdict}") == (
        f"[auditor] dvshop.test, legacy.test: {legacy}, {failed} violations, 1 not audited (down.test)"
    )


# ---------------------------------------------------------------- the wording, without servers


def test_headline_wording() -> None:
    from auditor.model import Finding, Status, TargetRef, TargetResult
    from auditor.reports.view import headline

    def site(*, ok: bool = True, error: str | None = None) -> TargetResult:
        findings = [] if ok else [Finding(clause="11.5-hsts", status=Status.FAIL, title="HSTS missing")]
        return TargetResult(
            target=TargetRef(url="https://a.test/", host="a.test", port=443),
            started_at=datetime.now(UTC),
            duration_s=1,
            compliant=ok and not error,
            error=error,
            findings=findings,
        )

    assert headline([site(ok=False)]).text == "The site breaks the policy"
    assert headline([site(), site()]).text == "All 2 sites are compliant"
    assert headline([site(), site(error="refused")]).text == "1 of 2 sites could not be audited"
    assert headline([site(), site(error="refused")]).detail == "1 is compliant"
    assert headline([site(ok=False), site(ok=False), site()]).text == "2 of 3 sites break the policy"


def test_times_without_a_zone_abbreviation_show_the_offset_and_long_lines_keep_both_ends() -> None:
    from auditor.reports.view import evidence_line, local_time

    moment = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert local_time(moment, ZoneInfo("America/Sao_Paulo")) == "2026-01-15 09:00 UTC-03:00"  # tzname "-03"
    assert local_time(moment, timezone(timedelta(0))) == "2026-01-15 12:00 UTC"
    line = "Set-Cookie: " + "x" * 5000 + " (not judged)"
    shown = evidence_line(line)
    assert len(shown) <= 1000 and shown.startswith("Set-Cookie: ") and shown.endswith("(not judged)")
