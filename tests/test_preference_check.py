"""Unit tests of 11.3-aes256gcm-first (checks/preference.py): pure evidence in, one finding out."""

from __future__ import annotations

import pytest

from auditor.checks import CheckContext
from auditor.checks.preference import CLAUSE, check_aes256gcm_first, first_choice_ok
from auditor.model import Attempt, AttemptErrorReason, Evidence, Finding, Probe, Status
from auditor.suites import describe
from tests import evidence_builders as b

RSA_256 = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
ECDSA_256 = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"


def _evidence(suites: dict[str, list[str]], enforces: bool | None = True) -> Evidence:
    """Evidence as the fast engine records it: suites in the server's order, enforcement measured."""
    tls = b.tls(suites)
    for p in tls.protocols:
        if p.supported:
            p.in_server_order = enforces is not False
            p.server_enforces_order = enforces if len(p.suites) > 1 else None
    return b.evidence(tls)


def _check(ev: Evidence) -> Finding:
    found = check_aes256gcm_first(CheckContext(evidence=ev, host="good.test"))
    assert len(found) == 1 and found[0].clause == CLAUSE
    return found[0]


@pytest.mark.parametrize("tls12_first", [RSA_256, ECDSA_256])
def test_pass_when_aes256gcm_first_everywhere_and_order_enforced(tls12_first: str) -> None:
    f = _check(
        _evidence({"TLS 1.2": [tls12_first, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], "TLS 1.3": b.MODERN_13})
    )
    assert f.status is Status.PASS
    assert f"TLS 1.2 first choice: {tls12_first} (server order enforced)" in f.evidence
    assert "TLS 1.3 first choice: TLS_AES_256_GCM_SHA384 (server order enforced)" in f.evidence
    assert f.remediation is None


@pytest.mark.parametrize(
    ("protocol", "first", "why"),
    [
        ("TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "AES-128 preferred"),
        ("TLS 1.2", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ChaCha20 preferred"),
        ("TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "CBC first"),
        ("TLS 1.2", "TLS_RSA_WITH_AES_256_GCM_SHA384", "AES-256-GCM but static RSA key exchange"),
        ("TLS 1.2", "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "AES-256-GCM but DHE, not ECDHE"),
        ("TLS 1.3", "TLS_AES_128_GCM_SHA256", "TLS 1.3 AES-128 preferred"),
        ("TLS 1.3", "TLS_CHACHA20_POLY1305_SHA256", "TLS 1.3 ChaCha20 preferred"),
    ],
)
def test_fail_names_the_protocol_and_its_first_choice(protocol: str, first: str, why: str) -> None:
    suites = {"TLS 1.2": [RSA_256, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], "TLS 1.3": b.MODERN_13}
    suites[protocol] = [first] + [s for s in suites[protocol] if s != first]
    f = _check(_evidence(suites))
    assert f.status is Status.FAIL, why
    assert f"{protocol}: first choice is {first}" in f.detail
    assert any(line.startswith(f"{protocol} first choice: {first}") for line in f.evidence)


def test_legacy_protocol_fails_because_its_first_choice_is_cbc() -> None:
    f = _check(
        _evidence(
            {
                "TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"],
                "TLS 1.2": [RSA_256],
                "TLS 1.3": b.MODERN_13,
            }
        )
    )
    assert f.status is Status.FAIL
    assert f.detail == "TLS 1.0: first choice is TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"


def test_client_order_fails_even_with_aes256gcm_listed_first() -> None:
    f = _check(_evidence({"TLS 1.2": b.MODERN_12, "TLS 1.3": b.MODERN_13}, enforces=False))
    assert f.status is Status.FAIL
    assert "TLS 1.2: the server follows the client's order" in f.detail
    assert "TLS 1.3: the server follows the client's order" in f.detail


def test_remediation_gives_exact_nginx_and_apache_lines() -> None:
    f = _check(_evidence({"TLS 1.2": b.MODERN_12[::-1]}))
    fix = f.remediation or ""
    nginx, apache = fix.split("Apache:\n")
    assert "nginx:\nssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" in nginx
    assert "ssl_prefer_server_ciphers on;" in nginx
    assert "ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384:" in nginx
    assert "SSLCipherSuite ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" in apache
    assert "SSLCipherSuite TLSv1.3 TLS_AES_256_GCM_SHA384:" in apache
    assert "SSLHonorCipherOrder on" in apache
    # every suite the fix lists first really is what the check wants first
    first12 = nginx.split("ssl_ciphers ", 1)[1].split(":", 1)[0]
    assert first12 == "ECDHE-ECDSA-AES256-GCM-SHA384"


def test_order_not_measured_is_not_tested_and_single_suite_is_enough() -> None:
    unordered = b.evidence(
        b.tls({"TLS 1.2": b.MODERN_12}, engine="thorough")
    )  # scanner order, no enforcement measured
    assert _check(unordered).status is Status.NOT_TESTED
    single = _evidence({"TLS 1.2": [RSA_256], "TLS 1.3": ["TLS_AES_256_GCM_SHA384"]})
    assert _check(single).status is Status.PASS  # one suite per protocol: nothing else to prefer


def test_unconfirmed_enforcement_warns() -> None:
    ev = _evidence({"TLS 1.2": b.MODERN_12, "TLS 1.3": b.MODERN_13}, enforces=None)
    f = _check(ev)
    assert f.status is Status.WARN and "TLS 1.2" in f.detail


def test_nothing_accepted_is_an_error_with_the_scan_errors() -> None:
    ev = b.evidence(b.tls({}))
    ev.tls.attempts[Probe.SUITES_TLS_1_2] = Attempt.failed(
        AttemptErrorReason.CONNECTION_FAILED, "ConnectionToServerFailed: boom"
    )
    f = _check(ev)
    assert f.status is Status.ERROR and "boom" in f.detail


@pytest.mark.parametrize(
    ("version", "name", "ok"),
    [
        ("TLS 1.3", "TLS_AES_256_GCM_SHA384", True),
        ("TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", True),
        ("TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_256_CCM", False),
        ("TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", False),
        ("TLS 1.2", "TLS_RSA_WITH_AES_256_GCM_SHA384", False),
        ("TLS 1.3", "TLS_AES_128_GCM_SHA256", False),
    ],
)
def test_first_choice_class(version: str, name: str, ok: bool) -> None:
    assert first_choice_ok(version, describe(name)) is ok
