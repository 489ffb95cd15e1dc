"""Odd but legal certificates and unusual URLs: audited honestly, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from sslyze import ScanCommand

from auditor.checks import CheckContext, run_checks
from auditor.model import Evidence, Status
from auditor.scan.tls import scan_tls
from tests.conftest import clause_statuses, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, PythonTLSServer


def _trust(pki: TestPKI, server_port: int, host: str) -> tuple[Status, str, Evidence]:
    tls = scan_tls(
        host, server_port, ip="127.0.0.1", ca_bundle=pki.root_path, commands={ScanCommand.CERTIFICATE_INFO}
    )
    evidence = Evidence(tls=tls)
    finding = next(
        f
        for f in run_checks(CheckContext(evidence=evidence, host=host, custom_ca=True))
        if f.clause == "11.2-cert-trusted"
    )
    return finding.status, finding.title, evidence


def test_no_subject_alt_name_fails_host_match(pki: TestPKI) -> None:
    with PythonTLSServer(pki.issue("nosan", san=False)) as server:
        status, title, evidence = _trust(pki, server.port, "good.test")
    assert status is Status.FAIL and "good.test" in title
    assert evidence.tls.certificates[0].received_chain[0].subject_alt_names == []


def test_fifty_sans_and_a_long_subject(pki: TestPKI) -> None:
    hosts = [f"host{i}.good.test" for i in range(49)] + ["good.test"]
    issued = pki.issue("many", hosts=hosts, subject_cn="c" * 64, subject_org="O" * 64)
    with PythonTLSServer(issued) as server:
        status, _, evidence = _trust(pki, server.port, "good.test")
    assert status is Status.PASS
    leaf = evidence.tls.certificates[0].received_chain[0]
    assert len(leaf.subject_alt_names) == 50 and "O" * 64 in leaf.subject


def test_idn_host_is_converted_to_punycode_for_sni(pki: TestPKI) -> None:
    punycode = "xn--bcher-kva.test"  # bücher.test
    with PythonTLSServer(pki.issue("idn", hosts=(punycode,)), server_name=punycode) as server:
        run = run_cli(
            "audit",
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--json",
            "-",
            f"https://bücher.test:{server.port}/",
        )
    target = run.report["targets"][0]
    assert target["error"] is None, target["error"]
    assert target["target"]["host"] == punycode
    assert clause_statuses(target)["11.2-cert-trusted"] == "pass"


def test_ipv6_literal_url(pki: TestPKI) -> None:
    with PythonTLSServer(pki.issue("v6", hosts=("::1",)), bind="::1") as server:
        run = run_cli(
            "audit",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--json",
            "-",
            f"https://[::1]:{server.port}/",
        )
    target = run.report["targets"][0]
    assert target["error"] is None, target["error"]
    assert target["target"]["host"] == "::1"
    assert clause_statuses(target)["11.2-cert-trusted"] == "pass"


def test_ip_address_instead_of_a_name_is_judged_honestly(pki: TestPKI) -> None:
    # The certificate names good.test, not 127.0.0.1: the host does not match, and the report says so.
    with PythonTLSServer(pki.issue("byip")) as server:
        run = run_cli(
            "audit",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--json",
            "-",
            f"https://127.0.0.1:{server.port}/",
        )
    target = run.report["targets"][0]
    assert target["error"] is None
    trusted = next(f for f in target["findings"] if f["clause"] == "11.2-cert-trusted")
    assert trusted["status"] == "fail" and "127.0.0.1" in trusted["title"]


def test_chain_in_wrong_order_is_still_audited(pki: TestPKI, tmp_path: Path) -> None:
    issued = pki.issue("disorder")
    # leaf, then the root, then the intermediate: legal bytes, wrong order
    chain = tmp_path / "disordered.pem"
    chain.write_bytes(
        issued.cert_path.read_bytes() + pki.root_path.read_bytes() + pki.intermediate_path.read_bytes()
    )
    disordered = issued.__class__(
        name=issued.name,
        cert_path=issued.cert_path,
        key_path=issued.key_path,
        chain_path=chain,
        cert=issued.cert,
    )
    with PythonTLSServer(disordered) as server:
        status, _, evidence = _trust(pki, server.port, "good.test")
    deployment = evidence.tls.certificates[0]
    assert len(deployment.received_chain) == 3
    assert deployment.chain_in_order is False
    assert status is Status.PASS  # clients still build the path; the order is reported as a fact


@pytest.mark.parametrize("text", ["https://good.test:0/", "https://exa mple.test/", "mailto:a@b"])
def test_bad_urls_never_crash(text: str) -> None:
    run = run_cli("audit", "--json", "-", text)
    assert run.code == 3 and "Traceback" not in run.stderr
    assert run.report["targets"][0]["error"]


def test_nginx_dual_certificate_site(pki: TestPKI, tmp_path: Path) -> None:
    rsa_leaf, ec_leaf = pki.issue("dual-rsa"), pki.issue("dual-ec", key="p256")
    with NginxSite(tmp_path, issued=rsa_leaf, dual_issued=ec_leaf) as site:
        status, _, evidence = _trust(pki, site.https_port, "good.test")
    assert status is Status.PASS
    assert {c.received_chain[0].key_type for c in evidence.tls.certificates} >= {"RSA"}


def test_terminal_escapes_from_the_server_are_not_printed(pki: TestPKI) -> None:
    evil = "\x1b[2J\x1b[31mCOMPLIANT\x1b[0m\x07"
    issued = pki.issue("ansi", subject_org="ACME\x1b]0;owned\x07")
    headers = [("Set-Cookie", f"{evil}=1; Path=/")]
    with PythonTLSServer(issued, response_headers=headers) as server:
        run = run_cli(
            "audit", "--ip", "127.0.0.1", "--ca-bundle", str(pki.root_path), "--http-port", "9", server.url
        )
    assert run.code == 1
    assert "\x1b" not in run.stdout and "\x07" not in run.stdout
    assert "?[31mCOMPLIANT?[0m" in run.stdout  # shown, defanged


def test_clean_strips_control_and_shows_bidi_characters() -> None:
    from auditor.reports.terminal import clean

    assert clean("a\x1b[1mb\rc\nd\u202ee") == "a?[1mb c d<U+202E>e"
    assert len(clean("x" * 500)) == 200
