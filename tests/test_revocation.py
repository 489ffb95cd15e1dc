"""Revocation (11.2-cert-trusted, grade T): stapled OCSP responses served by a real nginx
(`ssl_stapling_file`), and a real OCSP responder over HTTP on 127.0.0.1 named in the leaf's AIA
extension, counting its requests. Responses are built and signed with cryptography's x509.ocsp."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from auditor.checks import CheckContext, run_checks
from auditor.grading_rules import CAPS
from auditor.model import Evidence, RevocationStatus
from auditor.scan.revocation import judge_response
from auditor.scan.tls import scan_tls
from tests.conftest import CliRun, run_cli
from tests.harness.ocsp import OCSPResponder, delegated_responder, ocsp_response
from tests.harness.pki import Issued, TestPKI
from tests.harness.servers import NginxSite, PythonTLSServer, free_port

REVOKED_CAP = next(r.wording for r in CAPS if r.id == "revoked")
TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"


@pytest.fixture
def responder(pki: TestPKI) -> OCSPResponder:
    with OCSPResponder(pki) as running:
        yield running  # type: ignore[misc]


def _audit(url: str, pki: TestPKI, directory: Path, scan: str = "") -> dict:  # type: ignore[type-arg]
    """One real `auditor audit` of `url` on 127.0.0.1 with `scan` lines added to [scan]; its JSON target."""
    config = directory / "config.toml"
    config.write_text(
        f'[scan]\n{scan}\n[output]\nwrite_json = false\n[[targets]]\nurl = "{url}"\n'
        f'ip = "127.0.0.1"\nca_bundle = "{pki.root_path}"\nhttp_port = 9\n'
    )
    run: CliRun = run_cli("audit", "--config", str(config), "--json", "-", "--quiet")
    assert "Traceback" not in run.stderr, run.stderr
    target = run.report["targets"][0]
    assert target["error"] is None, target["error"]
    return target  # type: ignore[no-any-return]


def _trusted(target: dict) -> dict:  # type: ignore[type-arg]
    return next(f for f in target["findings"] if f["clause"] == "11.2-cert-trusted")


def _revocation(target: dict) -> list[RevocationStatus]:  # type: ignore[type-arg]
    return Evidence.model_validate(target["evidence"]).tls.certificates[0].revocation


def _stapling_site(directory: Path, issued: Issued, response: bytes) -> NginxSite:
    staple = directory / "staple.der"
    staple.write_bytes(response)
    return NginxSite(
        directory / "nginx",
        issued=issued,
        tls13_ciphersuites=TLS13,
        extra_server=f"ssl_stapling on;\n    ssl_stapling_file {staple};",
    )


# ---------------------------------------------------------------- stapled


def test_stapled_good_passes_and_the_responder_is_not_asked(
    pki: TestPKI, responder: OCSPResponder, tmp_path: Path
) -> None:
    issued = pki.issue("staple-good", ocsp_url=responder.url)
    with _stapling_site(tmp_path, issued, ocsp_response(pki, issued.cert, "good")) as site:
        target = _audit(site.url, pki, tmp_path)
    assert [(r.source, r.status) for r in _revocation(target)] == [("stapled", "good")]
    assert _trusted(target)["status"] == "pass"
    assert any(e.startswith("revocation: good (stapled OCSP response") for e in _trusted(target)["evidence"])
    assert responder.requests == 0  # a verified stapled answer is enough, as for browsers
    assert target["grade"]["letter"] in ("A+", "A")


def test_stapled_revoked_fails_and_grades_t(pki: TestPKI, tmp_path: Path) -> None:
    issued = pki.issue("staple-revoked")
    with _stapling_site(tmp_path, issued, ocsp_response(pki, issued.cert, "revoked")) as site:
        target = _audit(site.url, pki, tmp_path)
    trusted = _trusted(target)
    assert trusted["status"] == "fail" and trusted["title"] == "The certificate is revoked"
    assert "reason keyCompromise (stapled OCSP response" in trusted["detail"]
    assert target["grade"]["letter"] == "T" and not target["compliant"]
    assert REVOKED_CAP in {c["reason"] for c in target["grade"]["caps"]}


def test_forged_stapled_response_is_not_believed_and_the_responder_is_asked(
    pki: TestPKI, responder: OCSPResponder, tmp_path: Path
) -> None:
    issued = pki.issue("staple-forged", ocsp_url=responder.url)
    forged = ocsp_response(pki, issued.cert, "revoked", tamper=True)
    with _stapling_site(tmp_path, issued, forged) as site:
        target = _audit(site.url, pki, tmp_path)
    stapled, asked = _revocation(target)
    assert (stapled.source, stapled.status) == ("stapled", "error") and "bad signature" in (
        stapled.reason or ""
    )
    assert (asked.source, asked.status) == ("responder", "good") and responder.requests == 1
    assert _trusted(target)["status"] == "pass" and target["grade"]["letter"] != "T"


# ---------------------------------------------------------------- the responder the certificate names


def test_responder_good(pki: TestPKI, responder: OCSPResponder, tmp_path: Path) -> None:
    with PythonTLSServer(pki.issue("resp-good", ocsp_url=responder.url)) as server:
        target = _audit(server.url, pki, tmp_path)
    [answer] = _revocation(target)
    assert (answer.source, answer.status, answer.responder) == ("responder", "good", responder.url)
    assert answer.produced_at is not None and answer.next_update is not None
    assert responder.requests == 1
    assert _trusted(target)["status"] == "pass"
    assert f"revocation: good (OCSP responder {responder.url}" in " ".join(_trusted(target)["evidence"])


def test_responder_revoked_fails_and_grades_t(pki: TestPKI, responder: OCSPResponder, tmp_path: Path) -> None:
    issued = pki.issue("resp-revoked", ocsp_url=responder.url)
    responder.statuses[issued.cert.serial_number] = "revoked"
    with PythonTLSServer(issued) as server:
        target = _audit(server.url, pki, tmp_path)
    trusted = _trusted(target)
    assert trusted["status"] == "fail" and "revoked" in trusted["title"]
    assert any(e.startswith("revocation: REVOKED on ") and responder.url in e for e in trusted["evidence"])
    assert target["grade"]["letter"] == "T"
    assert REVOKED_CAP in {c["reason"] for c in target["grade"]["caps"]}


def test_responder_unknown_or_garbage_is_reported_not_failed(pki: TestPKI, responder: OCSPResponder) -> None:
    unknown = pki.issue("resp-unknown", ocsp_url=responder.url)
    responder.statuses[unknown.cert.serial_number] = "unknown"
    with PythonTLSServer(unknown) as server:
        tls = scan_tls("good.test", server.port, ip="127.0.0.1", ca_bundle=pki.root_path)
    assert [r.status for r in tls.certificates[0].revocation] == ["unknown"]
    responder.garbage = True
    with PythonTLSServer(pki.issue("resp-garbage", ocsp_url=responder.url)) as server:
        tls = scan_tls("good.test", server.port, ip="127.0.0.1", ca_bundle=pki.root_path)
    [answer] = tls.certificates[0].revocation
    assert answer.status == "error" and "not a valid OCSP response" in (answer.reason or "")
    trusted = next(
        f
        for f in run_checks(CheckContext(evidence=Evidence(tls=tls), host="good.test", custom_ca=True))
        if f.clause == "11.2-cert-trusted"
    )
    assert trusted.status.value == "pass"
    assert any("not usable" in e and "(not judged)" in e for e in trusted.evidence)


def test_slow_responder_is_reported_and_does_not_hold_the_audit(
    pki: TestPKI, responder: OCSPResponder, tmp_path: Path
) -> None:
    responder.delay = 30.0
    with PythonTLSServer(pki.issue("resp-slow", ocsp_url=responder.url)) as server:
        started = time.monotonic()
        target = _audit(server.url, pki, tmp_path, "timeout = 2")
        elapsed = time.monotonic() - started
    [answer] = _revocation(target)
    assert answer.status == "error" and answer.reason == "no answer within 2 s"
    assert responder.requests == 1
    assert elapsed < 20, f"the audit waited {elapsed:.1f} s for a responder that answers after 30 s"
    assert _trusted(target)["status"] == "pass"


def test_unreachable_responder_is_reported(pki: TestPKI, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/ocsp"
    with PythonTLSServer(pki.issue("resp-dead", ocsp_url=dead)) as server:
        target = _audit(server.url, pki, tmp_path, "timeout = 2")
    [answer] = _revocation(target)
    assert answer.status == "error" and (answer.reason or "").startswith("unreachable")
    assert _trusted(target)["status"] == "pass"


def test_ocsp_off_in_the_config_makes_no_request(
    pki: TestPKI, responder: OCSPResponder, tmp_path: Path
) -> None:
    issued = pki.issue("resp-off", ocsp_url=responder.url)
    responder.statuses[issued.cert.serial_number] = "revoked"
    with PythonTLSServer(issued) as server:
        off = _audit(server.url, pki, tmp_path, "ocsp = false")
        assert responder.requests == 0
        on = _audit(server.url, pki, tmp_path, "ocsp = true")  # the same audit asks when allowed
        assert responder.requests == 1
    [answer] = _revocation(off)
    assert answer.status == "not_checked" and answer.reason == "OCSP queries are off ([scan] ocsp = false)"
    assert _trusted(off)["status"] == "pass" and _trusted(on)["status"] == "fail"


def test_untrusted_chain_never_makes_the_auditor_post_to_its_url(
    pki: TestPKI, responder: OCSPResponder
) -> None:
    # Without the CA bundle nothing trusts the test CA: the OCSP URL is the server's choice, not a CA's.
    with PythonTLSServer(pki.issue("resp-untrusted", ocsp_url=responder.url)) as server:
        tls = scan_tls("good.test", server.port, ip="127.0.0.1")
        with_bundle = scan_tls("good.test", server.port, ip="127.0.0.1", ca_bundle=pki.root_path)
    [answer] = tls.certificates[0].revocation
    assert answer.status == "not_checked" and "not trusted" in (answer.reason or "")
    assert [r.status for r in with_bundle.certificates[0].revocation] == ["good"]
    assert responder.requests == 1  # the trusted scan's request only


def test_thorough_engine_asks_the_responder_too(pki: TestPKI, responder: OCSPResponder) -> None:
    issued = pki.issue("resp-thorough", ocsp_url=responder.url)
    responder.statuses[issued.cert.serial_number] = "revoked"
    with PythonTLSServer(issued) as server:
        tls = scan_tls("good.test", server.port, ip="127.0.0.1", ca_bundle=pki.root_path, thorough=True)
    assert [r.status for r in tls.certificates[0].revocation] == ["revoked"]


# ---------------------------------------------------------------- verifying a response (no network)


@pytest.fixture(scope="module")
def leaf(pki: TestPKI) -> x509.Certificate:
    return pki.issue("verify-leaf").cert


def test_delegated_responder_signature_is_accepted(pki: TestPKI, leaf: x509.Certificate) -> None:
    der = ocsp_response(pki, leaf, "revoked", responder=delegated_responder(pki))
    assert judge_response(der, leaf, pki.intermediate, "stapled").status == "revoked"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no-ocsp-signing-usage", "lacks the OCSP signing extended key usage"),
        ("tampered", "bad signature"),
        ("other-certificate", "not about this certificate"),
        ("stale", "stale response"),
        ("future", "is in the future"),
    ],
)
def test_unverifiable_responses_are_errors_not_verdicts(
    pki: TestPKI, leaf: x509.Certificate, case: str, expected: str
) -> None:
    now = datetime.now(UTC)
    der = {
        "no-ocsp-signing-usage": lambda: ocsp_response(
            pki, leaf, "revoked", responder=delegated_responder(pki, ocsp_signing=False)
        ),
        "tampered": lambda: ocsp_response(pki, leaf, "revoked", tamper=True),
        "other-certificate": lambda: ocsp_response(pki, pki.issue("verify-other").cert, "revoked"),
        "stale": lambda: ocsp_response(
            pki, leaf, "revoked", this_update=now - timedelta(days=9), next_update=now - timedelta(days=2)
        ),
        "future": lambda: ocsp_response(pki, leaf, "revoked", this_update=now + timedelta(hours=2)),
    }[case]()
    answer = judge_response(der, leaf, pki.intermediate, "stapled")
    assert answer.status == "error" and expected in (answer.reason or "")
