"""Every row of the grade table that a local server can produce, triggered by the evidence of a
real scan of such a server (one `auditor audit` run over all of them), and a real modern server
that triggers none. tests/test_grading.py covers every row, including the ones below that no
local server can produce, on evidence built by hand.

Rows no local server here can produce, and why:
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from auditor.grading import facts_from
from auditor.grading_rules import CAPS, WARNINGS
from auditor.model import Evidence
from auditor.testing.pki import TestPKI
from auditor.testing.servers import NginxSite, PythonTLSServer
from tests.conftest import audit_local_targets

HSTS_2Y = "max-age=63072000; includeSubDomains"
TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
MODERN = {"tls13_ciphersuites": TLS13}

NOT_PRODUCIBLE = {
    "ssl2": "SSL 2.0 left OpenSSL in 1.1.0; no server on this machine speaks it",
    "ssl3-best": "Debian's OpenSSL 3 is built without SSL 3.0 (no-ssl3)",
    "poodle-ssl3": "Debian's OpenSSL 3 is built without SSL 3.0 (no-ssl3)",
    "heartbleed": "needs OpenSSL 1.0.1-1.0.1f; nothing that old is packaged",
    "ccs": "needs OpenSSL before 1.0.1h; nothing that old is packaged",
    "robot": "needs a server with an RSA padding oracle; OpenSSL has none",
    "insecure-renegotiation": "OpenSSL always supports secure renegotiation (RFC 5746)",
    "no-secure-renegotiation": "OpenSSL always supports secure renegotiation (RFC 5746)",
    "export": "export suites left OpenSSL in 1.1.0",
    "weak-suites": "DES and the 40/56-bit suites left OpenSSL in 1.1.0",
    "rc4": "Debian's OpenSSL 3 has no RC4 suites ('no cipher match' even at @SECLEVEL=0)",
    "rc4-modern": "Debian's OpenSSL 3 has no RC4 suites ('no cipher match' even at @SECLEVEL=0)",
    "sweet32": "Debian's OpenSSL 3 has no 3DES suites ('no cipher match' even at @SECLEVEL=0)",
    "crime": "Debian's OpenSSL 3 is built without zlib: TLS compression cannot be enabled",
}
__doc__ += "".join(f"\n- {row}: {why}" for row, why in NOT_PRODUCIBLE.items()) + "\n"


@dataclass
class Server:
    name: str
    rows: set[str]  # the table rows this server's evidence must trigger (and no others)
    nginx: dict = field(default_factory=dict)  # type: ignore[type-arg]
    cert: dict = field(default_factory=dict)  # type: ignore[type-arg]
    python: dict | None = None  # type: ignore[type-arg]  # the stdlib server, with these options
    dh_bits: int | None = None  # DH parameters of this size for DHE suites (OpenSSL 3 refuses any below
    # 1024 bits whatever its security level, so key-1024 is produced by a 768-bit RSA key instead)
    serve_chain: bool = True
    rsa_ca: bool = False  # issued by an RSA CA (MD5 signatures exist only for RSA)


SERVERS = [
    Server("modern", set(), MODERN),
    Server("tls10-cbc-first", {"old-protocols", "beast"},
           {"protocols": "TLSv1 TLSv1.2 TLSv1.3", "seclevel0": True, **MODERN,
            "ciphers": "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384"}),
    Server("tls10-only", {"old-protocols", "beast", "no-tls12", "no-aead", "no-tls13"},
           python={"minimum_version": "TLSv1", "maximum_version": "TLSv1", "ciphers": "ECDHE-RSA-AES128-SHA"}),
    Server("rsa-kex", {"no-forward-secrecy", "no-tls13"},
           {"protocols": "TLSv1.2", "ciphers": "AES256-GCM-SHA384:AES128-GCM-SHA256"}),
    Server("cbc-only", {"no-aead", "no-tls13"},
           {"protocols": "TLSv1.2", "ciphers": "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256"}),
    Server("null-suite", {"null-anon", "no-tls13"},
           {"protocols": "TLSv1.2", "seclevel0": True, "ciphers": "ECDHE-RSA-AES256-GCM-SHA384:NULL-SHA256"}),
    Server("rsa-768-key", {"key-1024", "key-2048"}, cert={"key": "rsa768"}, python={}),
    Server("dh-1024", {"key-2048"},
           python={"ciphers": "ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384"}, dh_bits=1024),
    Server("rsa-1024-key", {"key-2048"}, cert={"key": "rsa1024"}, python={}),
    Server("md5-signed", {"md5-signature", "untrusted"}, cert={"hash": "md5"}, python={}, rsa_ca=True),
    Server("intermediate-missing", {"incomplete-chain"}, MODERN, serve_chain=False),
    Server("self-signed", {"untrusted"}, MODERN, {"issuer": "self"}),
    Server("expired", {"untrusted"}, MODERN, {"expired": True}),
    # sslyze validates the chain for the host name, so a mismatch is also "not trusted" (as SSL Labs
    # says "Trusted: No, mismatch"); the letter is M (tests/conformance)
    Server("wrong-host", {"mismatch", "untrusted"}, MODERN, {"hosts": ("other.test",)}),
    Server("no-tls13", {"no-tls13"}, {"protocols": "TLSv1.2"}),
    Server("no-hsts", {"hsts"}, {**MODERN, "hsts": None}),
    Server("short-hsts", {"hsts"}, {**MODERN, "hsts": "max-age=86400"}),
]
ROWS = {r.id: r for r in [*CAPS, *WARNINGS]}



def _python_server(issued, options: dict) -> PythonTLSServer:  # type: ignore[no-untyped-def, type-arg]
    import ssl

    opts = dict(options)
    for key in ("minimum_version", "maximum_version"):
        if key in opts:
            opts[key] = getattr(ssl.TLSVersion, opts[key])
    opts.setdefault("ciphers", "ECDHE+AESGCM:ECDHE+CHACHA20")
    return PythonTLSServer(issued, response_headers=[("Strict-Transport-Security", HSTS_2Y)], seclevel0=True, **opts)


@pytest.fixture(scope="module")
def scanned(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("grade-rows")
    rsa_pki = TestPKI(root / "rsa-pki", ca_keys="rsa")
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        bundles: dict[str, Path] = {}
        for server in SERVERS:
            authority = rsa_pki if server.rsa_ca else pki
            bundles[server.name] = authority.root_path
            issued = authority.issue(f"row-{server.name}", **server.cert)
            if server.python is not None:
                python_server = _python_server(issued, server.python)
                if server.dh_bits:
                    dh = root / f"dh{server.dh_bits}.pem"
                    subprocess.run(["openssl", "dhparam", "-out", str(dh), str(server.dh_bits)],
                                   check=True, capture_output=True, timeout=120)
                    python_server.context.load_dh_params(str(dh))
                running = stack.enter_context(python_server)
                port = running.port
            else:
                running = stack.enter_context(NginxSite(root / server.name, issued=issued, serve_chain=server.serve_chain,
                                                        **{"hsts": HSTS_2Y, **server.nginx}))
                port = running.https_port
            urls[server.name] = f"https://good.test:{port}/"
        run = audit_local_targets({name: (url, bundles[name]) for name, url in urls.items()}, root)
    assert "Traceback" not in run.stderr, run.stderr
    yield {t["target"]["name"]: t for t in run.report["targets"]}


def test_every_row_is_produced_here_or_said_why_not() -> None:
    produced = set().union(*(s.rows for s in SERVERS))
    assert produced | set(NOT_PRODUCIBLE) == set(ROWS)
    assert not produced & set(NOT_PRODUCIBLE)


@pytest.mark.parametrize("server", SERVERS, ids=[s.name for s in SERVERS])
def test_real_evidence_triggers_exactly_its_rows(server: Server, scanned: dict) -> None:  # type: ignore[type-arg]
    result = scanned[server.name]
    assert result["error"] is None, result["error"]
    evidence = Evidence.model_validate(result["evidence"])
    facts = facts_from(evidence, custom_ca=True)
    triggered = {row_id for row_id, row in ROWS.items() if row.applies(facts)}
    assert triggered == server.rows
    grade = result["grade"]
    said = {c["reason"] for c in grade["caps"]} | set(grade["warnings"])
    assert {ROWS[r].wording for r in server.rows} <= said
