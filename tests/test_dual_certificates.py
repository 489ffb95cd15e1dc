"""A dual RSA/ECDSA site serves two certificates, each to the clients that ask for it: every one
is judged, and the grade takes the worst. Real nginx sites on 127.0.0.1 (and one stdlib server:
OpenSSL 3 in nginx refuses to load a 1024-bit RSA key), all audited in one `auditor audit` run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from auditor.grading import facts_from
from auditor.grading_rules import CAPS
from auditor.model import Evidence
from tests.conftest import audit_local_targets, clause_statuses
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, PythonTLSServer

TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
# name -> (options of the RSA leaf, options of the ECDSA leaf)
SITES: dict[str, tuple[dict, dict]] = {  # type: ignore[type-arg]
    "both-good": ({}, {}),
    "rsa-expired": ({"expired": True}, {}),
    "rsa-1024": ({"key": "rsa1024"}, {}),
    "ec-dv": ({}, {"policy": "dv"}),
    "ec-wrong-host": ({}, {"hosts": ("other.test",)}),
}
WORDING = {r.id: r.wording for r in CAPS}


@pytest.fixture(scope="module")
def audited(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("dual")
    with ExitStack() as stack:
        urls = {}
        for name, (rsa_options, ec_options) in SITES.items():
            rsa_leaf = pki.issue(f"dual-{name}-rsa", **rsa_options)
            ec_leaf = pki.issue(f"dual-{name}-ec", key="p256", **ec_options)
            if name == "rsa-1024":  # nginx loads certificates before its @SECLEVEL=0 applies
                server = PythonTLSServer(rsa_leaf, seclevel0=True, ciphers="ECDHE+AESGCM:ECDHE+CHACHA20")
                server.context.load_cert_chain(
                    ec_leaf.chain_path, ec_leaf.key_path
                )  # OpenSSL keeps one per key type
                urls[name] = (stack.enter_context(server).url, pki.root_path)
                continue
            site = stack.enter_context(
                NginxSite(root / name, issued=rsa_leaf, dual_issued=ec_leaf, tls13_ciphersuites=TLS13)
            )
            urls[name] = (site.url, pki.root_path)
        run = audit_local_targets(urls, root)
    assert "Traceback" not in run.stderr, run.stderr
    yield {t["target"]["name"]: t for t in run.report["targets"]}


def _findings(target: dict, clause: str) -> dict[str, dict]:  # type: ignore[type-arg]
    """The clause's findings keyed by the certificate they name ("RSA 2048", "EC P-256")."""
    return {f["title"].split(":", 1)[0]: f for f in target["findings"] if f["clause"] == clause}


def test_sslyze_reports_both_certificates_of_a_dual_nginx_site(audited: dict) -> None:  # type: ignore[type-arg]
    evidence = Evidence.model_validate(audited["both-good"]["evidence"])
    assert sorted(d.label() for d in evidence.tls.certificates) == ["EC P-256", "RSA 2048"]
    for clause in (
        "11.2-cert-trusted",
        "11.2-cert-signature",
        "11.2-cert-renewal",
        "11.2-cert-validation-level",
    ):
        findings = _findings(audited["both-good"], clause)
        assert set(findings) == {"RSA 2048", "EC P-256"}, clause
        assert {f["status"] for f in findings.values()} == {"pass"}
        assert findings["EC P-256"]["evidence"][0].startswith("certificate: EC P-256, CN=good.test")
    assert audited["both-good"]["grade"]["letter"] in ("A+", "A")


def test_expired_rsa_beside_a_good_ecdsa_certificate_fails_and_grades_t(audited: dict) -> None:  # type: ignore[type-arg]
    target = audited["rsa-expired"]
    trusted = _findings(target, "11.2-cert-trusted")
    assert trusted["RSA 2048"]["status"] == "fail" and "expired" in trusted["RSA 2048"]["title"]
    assert trusted["EC P-256"]["status"] == "pass"
    renewal = _findings(target, "11.2-cert-renewal")
    assert renewal["RSA 2048"]["status"] == "fail" and renewal["EC P-256"]["status"] == "pass"
    assert clause_statuses(target)["11.2-cert-trusted"] == "fail" and not target["compliant"]
    assert target["grade"]["letter"] == "T"
    assert WORDING["untrusted"] in {c["reason"] for c in target["grade"]["caps"]}


def test_rsa_1024_beside_ecdsa_lowers_the_grade_by_the_weaker_key(audited: dict) -> None:  # type: ignore[type-arg]
    target = audited["rsa-1024"]
    evidence = Evidence.model_validate(target["evidence"])
    assert sorted(d.label() for d in evidence.tls.certificates) == ["EC P-256", "RSA 1024"]
    facts = facts_from(evidence, custom_ca=True)
    assert (facts.cert_key_type, facts.cert_key_bits) == ("RSA", 1024)
    assert target["grade"]["letter"] == "B"
    assert WORDING["key-2048"] in {c["reason"] for c in target["grade"]["caps"]}


def test_dv_ecdsa_beside_ov_rsa_fails_validation_level_naming_it(audited: dict) -> None:  # type: ignore[type-arg]
    level = _findings(audited["ec-dv"], "11.2-cert-validation-level")
    assert (
        level["EC P-256"]["status"] == "fail"
        and level["EC P-256"]["title"] == "EC P-256: DV certificate, not OV/EV"
    )
    assert level["RSA 2048"]["status"] == "pass"


def test_ecdsa_for_another_host_gives_m(audited: dict) -> None:  # type: ignore[type-arg]
    target = audited["ec-wrong-host"]
    trusted = _findings(target, "11.2-cert-trusted")
    assert trusted["EC P-256"]["status"] == "fail" and "good.test" in trusted["EC P-256"]["title"]
    assert trusted["RSA 2048"]["status"] == "pass"
    assert target["grade"]["letter"] == "M"
