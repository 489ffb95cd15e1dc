"""The HTML report from real audits: content, mail-client safety, and untrusted text shown as text.
The HTML is read with a real parser (html5lib), as a browser or mail client would read it."""

from __future__ import annotations

from pathlib import Path

import html5lib

from tests.conftest import run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'


def test_hostile_server_text_is_escaped(pki: TestPKI, tmp_path: Path) -> None:
    issued = pki.issue("xss", hosts=("good.test",), subject_cn=IMG, subject_org=SCRIPT)
    headers = [
        ("Set-Cookie", f"{SCRIPT}=1; Path=/"),
        ("Set-Cookie", f"x{IMG}=2; Secure"),
        ("Strict-Transport-Security", f"max-age=10{IMG}"),
        ("Server", SCRIPT),
    ]
    with PythonTLSServer(issued, response_headers=headers) as server:
        html_path = tmp_path / "report.html"
        run = run_cli(
            "audit",
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--html",
            str(html_path),
            server.url,
        )
    assert run.code == 1, run.stderr
    html = html_path.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    assert not [el.tag for el in tree.iter() if el.tag in ("script", "img")]
    assert not [el for el in tree.iter() if any(name.startswith("on") for name in el.attrib)]
    assert SCRIPT in "".join(tree.itertext()) and IMG in "".join(tree.itertext())  # the text, as sent


def test_report_content_and_mail_safety(pki: TestPKI, tmp_path: Path) -> None:
    issued = pki.issue("html-legacy", policy="dv", days_valid=20)
    with PythonTLSServer(issued, response_headers=[("Set-Cookie", "sid=1; Path=/")]) as server:
        json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
        run = run_cli(
            "audit",
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--json",
            str(json_path),
            "--html",
            str(html_path),
            server.url,
        )
    assert run.code == 1
    html = html_path.read_text()
    # verdict and grade first, then the clause table, the sections, the fixes, the metadata
    order = [
        html.index(s)
        for s in (
            "NOT COMPLIANT",
            "Policy clauses</h3>",
            "How to fix</h3>",
            "Certificate</h3>",
            "Protocols and cipher suites</h3>",
            "Client handshake simulation</h3>",
            "HTTP</h3>",
            "Vulnerabilities</h3>",
            "Scan metadata</h2>",
        )
    ]
    assert order == sorted(order)
    assert "11.2-cert-validation-level" in html and "DV certificate" in html
    assert (
        "add_header Strict-Transport-Security" in html
        and "Header always set Strict-Transport-Security" in html
    )
    assert "Changes since the previous scan" not in html  # no history: the section is absent, not faked
    # mail-client safe: styles inlined, no <style>, no script, nothing loaded from elsewhere
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    tags = {el.tag for el in tree.iter()}
    assert not tags & {"style", "script", "link", "img", "iframe", "object"}
    assert any(el.get("style") for el in tree.iter())
    assert not [el.get(a) for el in tree.iter() for a in ("src", "href") if el.get(a)]
    # `auditor report` renders the same report from the saved JSON, without scanning
    again = tmp_path / "again.html"
    rerun = run_cli("report", str(json_path), "--html", str(again), "--text", "-")
    assert rerun.code == 0, rerun.stderr
    assert again.read_text() == html
    assert "NOT COMPLIANT" in rerun.stdout and "11.5-cookies" in rerun.stdout


def test_report_command_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a report"}')
    run = run_cli("report", str(bad), "--html", str(tmp_path / "x.html"))
    assert run.code == 2 and "not an auditor JSON report" in run.stderr and "Traceback" not in run.stderr
    assert run_cli("report", str(tmp_path / "missing.json"), "--html", "x.html").code == 2
