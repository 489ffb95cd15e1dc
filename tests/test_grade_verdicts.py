"""Verdicts where the grade and the clause checks must follow the Precisions of
../shared/grading/ssllabs-rating.md and ../shared/policy/clauses.md, on real local servers scanned
in one `auditor audit` run, and the flaws the check and the grade judge by one shared rule
(auditor.flaws) agreeing on every case.

Not produced by a local server here, and tested on built evidence instead (tests/test_grading.py,
tests/test_checks.py): a non-reference client landing on 3DES (no reference browser profile lacks
what Java 8 offers except ChaCha20, which OpenSSL 1.0.1e lacks, and Debian's OpenSSL 3 has no 3DES);
a missing TLS_FALLBACK_SCSV (every OpenSSL here supports it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from auditor.checks import CheckContext, run_checks
from auditor.flaws import beast, insecure_renegotiation, lacks_secure_renegotiation
from auditor.grading import facts_from, grade
from auditor.grading_rules import CAPS, WARNINGS
from auditor.model import Evidence, Status, Vulnerabilities
from tests import evidence_builders as b
from tests.conftest import audit_local_targets, clause_statuses
from tests.harness.legacy import LegacyOpenSSLServer, legacy_openssl_available
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, PythonTLSServer
from tests.harness.tlslite_server import TlsliteServer

HSTS_2Y = "max-age=63072000; includeSubDomains"
TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
ROWS = {r.id: r for r in [*CAPS, *WARNINGS]}
SHA1_CAP = ROWS["sha1-chain"].wording
# TLS 1.0: RC4 first, CBC second (BEAST mitigated server-side); TLS 1.2: AES-GCM first, RC4 accepted.
LEGACY_ARGS = [
    "-serverpref",
    "-no_ssl2",
    "-no_ssl3",
    "-cipher",
    "ECDHE-RSA-AES256-GCM-SHA384:RC4-SHA:AES128-SHA",
]


def _python(issued) -> PythonTLSServer:  # type: ignore[no-untyped-def]
    return PythonTLSServer(
        issued,
        response_headers=[("Strict-Transport-Security", HSTS_2Y)],
        seclevel0=True,
        ciphers="ECDHE+AESGCM:ECDHE+CHACHA20",
    )


@pytest.fixture(scope="module")
def audited(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("verdicts")
    sha1_pki = TestPKI(root / "sha1-pki", intermediate_hash="sha1")
    rsa_pki = TestPKI(root / "rsa-pki", ca_keys="rsa")
    with ExitStack() as stack:
        targets: dict[str, tuple[str, Path]] = {}
        site = stack.enter_context(
            NginxSite(
                root / "tls13",
                issued=pki.issue("v-tls13"),
                protocols="TLSv1.3",
                tls13_ciphersuites=TLS13,
                hsts=HSTS_2Y,
            )
        )
        targets["tls13-only"] = (site.url, pki.root_path)
        server = stack.enter_context(_python(sha1_pki.issue("v-sha1-int")))
        targets["sha1-intermediate"] = (server.url, sha1_pki.root_path)
        server = stack.enter_context(_python(pki.issue("v-sha1-leaf", hash="sha1")))
        targets["sha1-leaf"] = (server.url, pki.root_path)
        tlslite = stack.enter_context(
            TlsliteServer(
                rsa_pki.issue("v-no-5746"),
                secure_renegotiation=False,
                response_headers=[("Strict-Transport-Security", HSTS_2Y)],
            )
        )
        targets["no-rfc5746"] = (tlslite.url, rsa_pki.root_path)
        runs = [audit_local_targets(targets, root)]
        if legacy_openssl_available():
            # OpenSSL 1.0.1e's s_server serves one connection at a time: audited as the README says
            # (connections_per_server = 1), so no simulation queues behind others into its deadline
            legacy = stack.enter_context(LegacyOpenSSLServer(rsa_pki.issue("v-legacy-rc4"), LEGACY_ARGS))
            one = {"legacy-rc4": (legacy.url, rsa_pki.root_path)}
            runs.append(audit_local_targets(one, root, scan="connections_per_server = 1\n"))
    for run in runs:
        assert "Traceback" not in run.stderr, run.stderr
    yield {t["target"]["name"]: t for run in runs for t in run.report["targets"]}


def _result(audited: dict, name: str) -> tuple[dict, Evidence]:  # type: ignore[type-arg]
    result = audited[name]
    assert result["error"] is None, result["error"]
    return result, Evidence.model_validate(result["evidence"])


def test_tls13_only_server_is_a_plus_and_only_warned_on_protocols(audited: dict) -> None:  # type: ignore[type-arg]
    result, evidence = _result(audited, "tls13-only")
    assert [p.version for p in evidence.tls.protocols if p.supported] == ["TLS 1.3"]
    g = result["grade"]
    assert (g["letter"], g["caps"], g["warnings"]) == ("A+", [], [])
    statuses = clause_statuses(result)
    assert statuses["11.3-protocols"] == "warn"
    assert statuses["5.4-transit"] == "pass"
    assert statuses["11.4-grade-a"] == "pass"


@pytest.mark.parametrize("name", ["sha1-intermediate", "sha1-leaf"])
def test_sha1_in_the_served_chain_is_t_for_its_own_reason(name: str, audited: dict) -> None:  # type: ignore[type-arg]
    result, evidence = _result(audited, name)
    hashes = [c.signature_hash for c in evidence.tls.certificates[0].received_chain]
    assert "sha1" in hashes
    assert ROWS["sha1-chain"].applies(facts_from(evidence, custom_ca=True))
    g = result["grade"]
    assert g["letter"] == "T" and g["letter_ignoring_trust"] == "A+"
    assert {"grade": "T", "reason": SHA1_CAP, "rule": "sha1-chain"} in g["caps"]


def test_server_without_rfc5746_is_a_warning_in_both(audited: dict) -> None:  # type: ignore[type-arg]
    result, evidence = _result(audited, "no-rfc5746")
    v = evidence.tls.vulnerabilities
    assert v.secure_renegotiation is False
    insecure = insecure_renegotiation(v)
    vuln = [f for f in result["findings"] if f["clause"] == "11.4-vulnerabilities"]
    said_insecure = any(f["status"] == "fail" and "Insecure renegotiation" in f["title"] for f in vuln)
    capped_f = ROWS["insecure-renegotiation"].wording in {c["reason"] for c in result["grade"]["caps"]}
    assert said_insecure is capped_f is (insecure is True)
    if insecure is False:  # client-initiated renegotiation refused: the A- warning, a warning in the check
        assert ROWS["no-secure-renegotiation"].wording in result["grade"]["warnings"]
        assert any(f["status"] == "warn" and "RFC 5746" in f["title"] for f in vuln)


def test_legacy_rc4_and_beast_follow_what_clients_negotiate(audited: dict) -> None:  # type: ignore[type-arg]
    if "legacy-rc4" not in audited:
        pytest.skip("../shared/legacy-openssl is absent (a clone outside its usual place)")
    result, evidence = _result(audited, "legacy-rc4")
    tls10 = evidence.tls.protocol("TLS 1.0")
    assert tls10 and tls10.supported and tls10.suites[0].encryption.startswith("RC4")
    facts = facts_from(evidence, custom_ca=True)
    # RC4 accepted (B), never negotiated by a reference browser with TLS 1.2 (no C)
    assert ROWS["rc4"].applies(facts) and not ROWS["rc4-modern"].applies(facts)
    # TLS 1.0's first choice is RC4: BEAST is mitigated server-side, for the check and the grade alike
    assert beast(evidence.tls) == [] and not facts.beast
    vuln = next(f for f in result["findings"] if f["clause"] == "11.4-vulnerabilities")
    assert "BEAST (CBC with TLS 1.0): not present" in vuln["evidence"]


# ---- one rule, two users: the check's row and the grade's row agree on every case


def _vulns(**kw) -> Vulnerabilities:  # noqa: ANN003
    base = {
        "heartbleed": False,
        "ccs_injection": False,
        "robot": "NOT_VULNERABLE_NO_ORACLE",
        "secure_renegotiation": True,
        "client_renegotiation_dos": False,
        "compression": False,
        "fallback_scsv": True,
    }
    return Vulnerabilities(**{**base, **kw})


def _check_says(ev: Evidence, flaw: str) -> bool:
    f = next(
        f
        for f in run_checks(CheckContext(evidence=ev, host="good.test", now=b.NOW))
        if f.clause == "11.4-vulnerabilities"
    )
    return f"{flaw}: PRESENT" in f.evidence


@pytest.mark.parametrize(
    ("secure", "client_initiated", "insecure", "warned"),
    [
        (True, True, False, False),  # RFC 5746: renegotiation is protected whoever starts it
        (False, True, True, False),  # the flaw: F, and a failure in the check
        (
            False,
            False,
            False,
            True,
        ),  # no RFC 5746, client renegotiation refused: A- warning, warning in the check
    ],
)
def test_renegotiation_one_rule(secure: bool, client_initiated: bool, insecure: bool, warned: bool) -> None:
    ev = b.evidence(
        b.tls(vulns=_vulns(secure_renegotiation=secure, client_renegotiation_dos=client_initiated))
    )
    g = grade(ev)
    assert _check_says(ev, "Insecure renegotiation") is insecure
    assert (ROWS["insecure-renegotiation"].wording in {c.reason for c in g.caps}) is insecure
    assert (ROWS["no-secure-renegotiation"].wording in g.warnings) is warned
    assert lacks_secure_renegotiation(ev.tls.vulnerabilities) is warned
    statuses = {
        f.status
        for f in run_checks(CheckContext(evidence=ev, host="good.test", now=b.NOW))
        if f.clause == "11.4-vulnerabilities"
    }
    assert statuses == ({Status.FAIL} if insecure else {Status.WARN} if warned else {Status.PASS})


CBC10 = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
RC4 = "TLS_ECDHE_RSA_WITH_RC4_128_SHA"


@pytest.mark.parametrize(
    ("suites", "engine", "expected"),
    [
        ({"TLS 1.0": [CBC10], "TLS 1.2": b.MODERN_12}, "fast", True),  # CBC is the server's first choice
        (
            {"TLS 1.0": [RC4, CBC10], "TLS 1.2": b.MODERN_12},
            "fast",
            False,
        ),  # RC4 first: mitigated server-side
        (
            {"TLS 1.0": [RC4, CBC10], "TLS 1.2": b.MODERN_12},
            "thorough",
            True,
        ),  # order unknown: a client can get CBC
        ({"SSL 3.0": [CBC10], "TLS 1.2": b.MODERN_12}, "fast", True),  # SSL 3.0 counts as TLS 1.0 does
        ({"TLS 1.1": [CBC10], "TLS 1.2": b.MODERN_12}, "fast", False),  # TLS 1.1 has explicit IVs
    ],
    ids=["tls10-cbc-first", "tls10-rc4-first", "tls10-order-unknown", "ssl3-cbc", "tls11-cbc"],
)
def test_beast_one_rule(suites: dict[str, list[str]], engine: str, expected: bool) -> None:
    ev = b.evidence(b.tls(suites, engine=engine))
    assert bool(beast(ev.tls)) is expected
    assert _check_says(ev, "BEAST (CBC with TLS 1.0)") is expected
    assert facts_from(ev).beast is expected
    assert (ROWS["beast"].wording in {c.reason for c in grade(ev).caps}) is expected
