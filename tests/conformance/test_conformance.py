"""Conformance: local server configurations whose SSL Labs letter follows from the rating guide
(2009r), audited in one real `auditor audit` run. Each expected letter is argued beside its case.

All targets use the test PKI with `ca_bundle`, so trust is judged against that private CA (as
SSL Labs judges a public one); the trust cases break it on purpose. The side-by-side with
testssl.sh's own rating (about a minute per target) is bench/peers.py, not a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest

from tests.conftest import audit_local_targets
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, PythonTLSServer

HSTS_2Y = "max-age=63072000; includeSubDomains"
TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"


@dataclass
class Case:
    name: str
    expected: str
    why: str
    nginx: dict = field(default_factory=dict)  # type: ignore[type-arg]
    cert: dict = field(default_factory=dict)  # type: ignore[type-arg]
    python: bool = False  # the stdlib server: SHA-1 and 1024-bit certificates need OpenSSL security level 0
    serve_chain: bool = True
    host: str = "good.test"


CASES = [
    Case(
        "modern",
        "A+",
        "TLS 1.2+1.3, ECDHE AEAD only, HSTS 2 years: score 93 (100/90/90), no cap, no warning",
        {"tls13_ciphersuites": TLS13},
    ),
    Case(
        "tls10-tls11",
        "B",
        "TLS 1.0/1.1 offered: cap B (2020 change)",
        {
            "protocols": "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3",
            "seclevel0": True,
            "tls13_ciphersuites": TLS13,
            "ciphers": "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA",
        },
    ),
    Case(
        "rsa-kex-preferred",
        "B",
        "TLS 1.2 only with RSA key exchange first: reference browsers get no forward "
        "secrecy, cap B (2018 change); also no TLS 1.3 (warning, irrelevant under the cap)",
        {
            "protocols": "TLSv1.2",
            "ciphers": "AES256-GCM-SHA384:AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
        },
    ),
    Case(
        "cbc-only",
        "B",
        "only CBC suites: no AEAD, cap B (2020 change)",
        {"protocols": "TLSv1.2", "ciphers": "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256"},
    ),
    Case(
        "no-hsts",
        "A-",
        "modern but no HSTS: warning, A- (2009r)",
        {"hsts": None, "tls13_ciphersuites": TLS13},
    ),
    Case(
        "short-hsts",
        "A-",
        "HSTS max-age 1 day < 180 days: warning, A- (2009r)",
        {"hsts": "max-age=86400", "tls13_ciphersuites": TLS13},
    ),
    Case(
        "rsa-1024",
        "B",
        "1024-bit RSA key: key exchange score 80 and cap B (key below 2048 bits)",
        cert={"key": "rsa1024"},
        python=True,
    ),
    Case(
        "sha1-chain",
        "T",
        "SHA-1 signature in the chain: not trusted, T (2017 change)",
        cert={"hash": "sha1"},
        python=True,
    ),
    Case(
        "self-signed",
        "T",
        "self-signed certificate: not trusted, T",
        {"tls13_ciphersuites": TLS13},
        {"issuer": "self"},
    ),
    Case(
        "expired",
        "T",
        "expired certificate: not trusted, T",
        {"tls13_ciphersuites": TLS13},
        {"expired": True},
    ),
    Case(
        "wrong-host",
        "M",
        "certificate for another name: mismatch, M",
        {"tls13_ciphersuites": TLS13},
        {"hosts": ("other.test",)},
    ),
    Case(
        "incomplete-chain",
        "B",
        "intermediate not served: cap B (incomplete chain)",
        {"tls13_ciphersuites": TLS13},
        serve_chain=False,
    ),
    Case(
        "tls13-only",
        "A+",
        "TLS 1.3 only: the C cap needs neither TLS 1.2 nor TLS 1.3 offered (2009r Precisions; "
        "ssllabs-scan issues 815, 910, 930); modern otherwise, no cap, no warning",
        {"protocols": "TLSv1.3", "tls13_ciphersuites": TLS13},
    ),
    Case(
        "no-tls13",
        "A-",
        "TLS 1.2 only, otherwise modern: warning 'TLS 1.3 not supported', A- (2009r)",
        {"protocols": "TLSv1.2"},
    ),
]


@pytest.fixture(scope="module")
def graded(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("conformance")
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        for case in CASES:
            issued = pki.issue(f"conf-{case.name}", **case.cert)
            if case.python:
                server = stack.enter_context(
                    PythonTLSServer(
                        issued,
                        response_headers=[("Strict-Transport-Security", HSTS_2Y)],
                        serve_chain=case.serve_chain,
                        seclevel0=True,
                        ciphers="ECDHE+AESGCM:ECDHE+CHACHA20",
                    )
                )
                urls[case.name] = f"https://{case.host}:{server.port}/"
            else:
                options = {"hsts": HSTS_2Y, **case.nginx}
                site = stack.enter_context(
                    NginxSite(root / case.name, issued=issued, serve_chain=case.serve_chain, **options)
                )
                urls[case.name] = f"https://{case.host}:{site.https_port}/"
        run = audit_local_targets({name: (url, pki.root_path) for name, url in urls.items()}, root)
    assert "Traceback" not in run.stderr
    yield {t["target"]["name"]: t for t in run.report["targets"]}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_letter_matches_the_guide(case: Case, graded: dict) -> None:  # type: ignore[type-arg]
    result = graded[case.name]
    assert result["error"] is None, result["error"]
    grade = result["grade"]
    assert grade["letter"] == case.expected, (case.why, grade)
    grade_finding = next(f for f in result["findings"] if f["clause"] == "11.4-grade-a")
    assert grade_finding["status"] == ("pass" if case.expected in ("A+", "A") else "fail")
    if case.expected in ("T", "M"):
        assert grade["letter_ignoring_trust"] in ("A+", "A", "A-", "B")
    if case.expected == "A+":
        assert grade["caps"] == [] and grade["warnings"] == []
