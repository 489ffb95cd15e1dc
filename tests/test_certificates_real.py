"""The certificate clauses on real servers: each defect is a real certificate served over TLS
on 127.0.0.1, scanned by the sslyze adapter, judged by the checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sslyze import ScanCommand

from auditor.checks import CheckContext, run_checks
from auditor.model import Evidence, Status
from auditor.scan.tls import scan_tls
from tests.harness.pki import Issued, TestPKI
from tests.harness.servers import PythonTLSServer


def _judge(
    pki: TestPKI, issued: Issued, *, host: str = "good.test", serve_chain: bool = True, custom_ca: bool = True
) -> dict[str, tuple[Status, str, list[str]]]:
    with PythonTLSServer(issued, serve_chain=serve_chain) as server:
        tls = scan_tls(
            host,
            server.port,
            ip="127.0.0.1",
            ca_bundle=pki.root_path if custom_ca else None,
            commands={ScanCommand.CERTIFICATE_INFO},
        )
    ctx = CheckContext(evidence=Evidence(tls=tls), host=host, custom_ca=custom_ca)
    return {f.clause: (f.status, f.title, f.evidence) for f in run_checks(ctx) if f.clause.startswith("11.2")}


def test_valid_ov_certificate_passes_all_certificate_clauses(pki: TestPKI) -> None:
    result = _judge(pki, pki.issue("ok-ov", policy="ov"))
    assert {c: s for c, (s, _, _) in result.items()} == {
        "11.2-cert-trusted": Status.PASS,
        "11.2-cert-validation-level": Status.PASS,
        "11.2-cert-signature": Status.PASS,
        "11.2-cert-renewal": Status.PASS,
    }


def test_ev_is_recognised(pki: TestPKI) -> None:
    status, title, _ = _judge(pki, pki.issue("ok-ev", policy="ev"))["11.2-cert-validation-level"]
    assert status is Status.PASS and title.startswith("EV")


@pytest.mark.parametrize(("policy", "label"), [("dv", "DV"), (None, "unknown")])
def test_dv_or_no_policy_fails_validation_level(pki: TestPKI, policy: str | None, label: str) -> None:
    status, title, evidence = _judge(pki, pki.issue(f"lvl-{label}", policy=policy))[
        "11.2-cert-validation-level"
    ]
    assert status is Status.FAIL and title.startswith(label)
    if policy == "dv":
        assert "2.23.140.1.2.1" in evidence[0]


def test_expiring_in_10_days_fails_renewal_but_stays_trusted(pki: TestPKI) -> None:
    result = _judge(pki, pki.issue("expiring", days_valid=10))
    assert result["11.2-cert-renewal"][0] is Status.FAIL and "10 days left" in result["11.2-cert-renewal"][1]
    assert result["11.2-cert-trusted"][0] is Status.PASS


def test_expired_fails_renewal_and_trust(pki: TestPKI) -> None:
    now = datetime.now(UTC)
    result = _judge(
        pki, pki.issue("expired", not_before=now - timedelta(days=100), not_after=now - timedelta(days=3))
    )
    assert result["11.2-cert-renewal"][0] is Status.FAIL and "expired" in result["11.2-cert-renewal"][1]
    assert result["11.2-cert-trusted"][0] is Status.FAIL and "expired" in result["11.2-cert-trusted"][1]


def test_sha1_leaf_fails_signature(pki: TestPKI) -> None:
    status, _, evidence = _judge(pki, pki.issue("sha1", hash="sha1"))["11.2-cert-signature"]
    assert status is Status.FAIL
    assert any("SHA1" in e.upper() for e in evidence)


def test_wrong_host_fails_trust_naming_the_host(pki: TestPKI) -> None:
    status, title, _evidence = _judge(pki, pki.issue("wrong-host", hosts=("other.test",)))[
        "11.2-cert-trusted"
    ]
    assert status is Status.FAIL and "good.test" in title


def test_missing_intermediate_is_an_incomplete_chain(pki: TestPKI) -> None:
    status, title, _ = _judge(pki, pki.issue("no-chain"), serve_chain=False)["11.2-cert-trusted"]
    assert status is Status.FAIL and "incomplete" in title


def test_private_ca_is_untrusted_by_public_stores(pki: TestPKI) -> None:
    status, _title, evidence = _judge(pki, pki.issue("private"), custom_ca=False)["11.2-cert-trusted"]
    assert status is Status.FAIL and "Mozilla" in " ".join(evidence)


def test_self_signed_is_named(pki: TestPKI) -> None:
    status, title, _ = _judge(pki, pki.issue("self", issuer="self"))["11.2-cert-trusted"]
    assert status is Status.FAIL and "self-signed" in title


@pytest.mark.parametrize("key", ["p384", "rsa4096", "ed25519"])
def test_unusual_key_types_are_scanned(pki: TestPKI, key: str) -> None:
    result = _judge(pki, pki.issue(f"key-{key}", key=key))
    assert result["11.2-cert-trusted"][0] is Status.PASS, result["11.2-cert-trusted"]
