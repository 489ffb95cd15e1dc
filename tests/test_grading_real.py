"""Every row of the grade table, and every 11.4-vulnerabilities row, that a local server can produce,
triggered by the evidence of a real scan of such a server (one `auditor audit` run over all of
them), and a real modern server that triggers none. tests/test_grading.py covers every row,
including the ones below that no local server can produce, on evidence built by hand.

Servers: nginx and Python's ssl (Debian's OpenSSL 3), OpenSSL 1.0.1e `s_server` from
../shared/legacy-openssl (SSL 2.0/3.0, Heartbleed, CCS, export, RC4, DES, 3DES; skipped with a reason
when that directory is absent) and tlslite-ng (weak DH groups, 3DES-only, SSL 3.0-only, no RFC 5746,
an RSA padding oracle). Rows are what the SSL Labs guide and ../shared/grading/ssllabs-rating.md say
they should be. The legacy server has no way to send HSTS, so each of its rows includes "hsts", and
it is always vulnerable to Heartbleed and CCS injection.

Rows no local server here can produce, and why:
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from auditor.grading import facts_from
from auditor.grading_rules import CAPS, WARNINGS
from auditor.model import Evidence
from tests.conftest import CliRun, run_cli
from tests.harness.legacy import LegacyOpenSSLServer, legacy_openssl_available
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, PythonTLSServer
from tests.harness.tlslite_server import TlsliteServer

HSTS_2Y = "max-age=63072000; includeSubDomains"
TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
MODERN = {"tls13_ciphersuites": TLS13}
LEGACY_ABSENT = "../shared/legacy-openssl is absent (a clone outside its usual place)"
# OpenSSL 1.0.1e pinned to TLS 1.2 (plus what a server adds), server order, a modern suite first
TLS12_ONLY = ["-serverpref", "-no_ssl2", "-no_ssl3", "-no_tls1", "-no_tls1_1"]
GCM = "ECDHE-RSA-AES128-GCM-SHA256"
BROKEN = {"heartbleed", "ccs", "no-tls13", "hsts"}  # every OpenSSL 1.0.1e server (see the module text)
BROKEN_VULNS = {"Heartbleed", "OpenSSL CCS injection"}

NOT_PRODUCIBLE = {
    "insecure-renegotiation": "needs a server accepting client-initiated renegotiation without RFC 5746: "
    "OpenSSL (1.0.1e too) implements RFC 5746, tlslite-ng refuses renegotiation",
    "crime": "needs TLS compression: Debian's OpenSSL 3 and the 1.0.1e build have no zlib, tlslite-ng has none",
    "rc4-modern": "no reference browser in auditor.clients offers RC4 (none has since 2016), and a server "
    "offering only RC4 leaves 1.0.1e's accepted suites to the fallback, tested in test_grading",
    "revoked": "needs an OCSP responder or a stapled response beside the server: produced on real servers "
    "in tests/test_revocation.py",
}
__doc__ += "".join(f"\n- {row}: {why}" for row, why in NOT_PRODUCIBLE.items()) + "\n"
VULN_NOT_PRODUCIBLE = {
    "Insecure renegotiation": NOT_PRODUCIBLE["insecure-renegotiation"],
    "TLS compression (CRIME)": NOT_PRODUCIBLE["crime"],
    "Weak elliptic curves (< 224 bits)": "OpenSSL 1.0.1e serves secp160r1 (-named_curve), but then the scan's "
    "ECDHE handshakes fail: no ECDHE suite and no group is recorded",
}


@dataclass
class Server:
    name: str
    rows: set[str]  # the table rows this server's evidence must trigger (and no others)
    nginx: dict = field(default_factory=dict)  # type: ignore[type-arg]
    cert: dict = field(default_factory=dict)  # type: ignore[type-arg]
    python: dict | None = None  # type: ignore[type-arg]  # the stdlib server, with these options
    dh_bits: int | None = None  # DH parameters of this size for DHE suites (OpenSSL 3 refuses any below
    # 1024 bits whatever its security level, so key-1024 is produced by a 768-bit RSA key there)
    serve_chain: bool = True
    rsa_ca: bool = False  # issued by an RSA CA (MD5 signatures and OpenSSL 1.0.1e need one)
    legacy: list[str] | None = None  # OpenSSL 1.0.1e s_server arguments (its DHE group: dh_bits or 2048)
    tlslite: dict | None = None  # type: ignore[type-arg]  # TlsliteServer options
    vulns: set[str] = field(
        default_factory=set
    )  # 11.4-vulnerabilities rows that must say PRESENT (no others)


SERVERS = [
    Server("modern", set(), MODERN),
    Server("tls13-only", set(), {"protocols": "TLSv1.3", **MODERN}),
    Server(
        "tls10-cbc-first",
        {"old-protocols", "beast"},
        {
            "protocols": "TLSv1 TLSv1.2 TLSv1.3",
            "seclevel0": True,
            **MODERN,
            "ciphers": "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384",
        },
        vulns={"BEAST (CBC with TLS 1.0)"},
    ),
    Server(
        "tls10-only",
        {"old-protocols", "beast", "no-tls12", "no-aead", "no-tls13"},
        python={"minimum_version": "TLSv1", "maximum_version": "TLSv1", "ciphers": "ECDHE-RSA-AES128-SHA"},
        vulns={"BEAST (CBC with TLS 1.0)"},
    ),
    Server(
        "rsa-kex",
        {"no-forward-secrecy", "no-tls13"},
        {"protocols": "TLSv1.2", "ciphers": "AES256-GCM-SHA384:AES128-GCM-SHA256"},
    ),
    Server(
        "cbc-only",
        {"no-aead", "no-tls13"},
        {"protocols": "TLSv1.2", "ciphers": "ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256"},
    ),
    Server(
        "null-suite",
        {"null-anon", "no-tls13"},
        {"protocols": "TLSv1.2", "seclevel0": True, "ciphers": "ECDHE-RSA-AES256-GCM-SHA384:NULL-SHA256"},
        vulns={"Export, NULL or anonymous suites (FREAK)"},
    ),
    Server("rsa-768-key", {"key-1024", "key-2048"}, cert={"key": "rsa768"}, python={}),
    Server(
        "dh-1024",
        {"key-2048"},
        python={"ciphers": "ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384"},
        dh_bits=1024,
    ),
    Server("rsa-1024-key", {"key-2048"}, cert={"key": "rsa1024"}, python={}),
    Server("md5-signed", {"md5-signature", "untrusted"}, cert={"hash": "md5"}, python={}, rsa_ca=True),
    # OpenSSL 3's verifier (sslyze's trust check) also rejects the SHA-1 signature: not trusted either way
    Server("sha1-signed", {"sha1-chain", "untrusted"}, cert={"hash": "sha1"}, python={}),
    Server("intermediate-missing", {"incomplete-chain"}, MODERN, serve_chain=False),
    Server("self-signed", {"untrusted"}, MODERN, {"issuer": "self"}),
    Server("expired", {"untrusted"}, MODERN, {"expired": True}),
    # sslyze validates the chain for the host name, so a mismatch is also "not trusted" (as SSL Labs
    # says "Trusted: No, mismatch"); the letter is M (tests/conformance)
    Server("wrong-host", {"mismatch", "untrusted"}, MODERN, {"hosts": ("other.test",)}),
    Server("no-tls13", {"no-tls13"}, {"protocols": "TLSv1.2"}),
    Server("no-hsts", {"hsts"}, {**MODERN, "hsts": None}),
    Server("short-hsts", {"hsts"}, {**MODERN, "hsts": "max-age=86400"}),
    # --- OpenSSL 1.0.1e (../shared/legacy-openssl)
    # SSL 2.0's DES-CBC3-MD5 is 3DES: a 64-bit block (SWEET32) at 112 bits (not weak)
    Server(
        "legacy-ssl2",
        {"ssl2", *BROKEN},
        legacy=["-cipher", f"{GCM}:DES-CBC3-MD5", "-serverpref", "-no_ssl3", "-no_tls1", "-no_tls1_1"],
        vulns={*BROKEN_VULNS, "SSL 2.0 (DROWN)", "SWEET32 (64-bit block ciphers)"},
    ),
    # SSL 3.0 beside TLS 1.2: POODLE; its only SSL 3.0 suite is CBC (BEAST); 1.0.1e predates the SCSV
    Server(
        "legacy-ssl3",
        {"poodle-ssl3", "beast", *BROKEN},
        legacy=[
            "-cipher",
            f"{GCM}:ECDHE-RSA-AES128-SHA",
            "-serverpref",
            "-no_ssl2",
            "-no_tls1",
            "-no_tls1_1",
        ],
        vulns={*BROKEN_VULNS, "POODLE (SSL 3.0)", "BEAST (CBC with TLS 1.0)", "Missing TLS_FALLBACK_SCSV"},
    ),
    # TLS 1.0-1.2 without TLS_FALLBACK_SCSV (1.0.1e predates it); TLS 1.0 gets only a CBC suite
    Server(
        "legacy-tls10-tls12",
        {"old-protocols", "beast", *BROKEN},
        legacy=["-cipher", f"{GCM}:ECDHE-RSA-AES128-SHA", "-serverpref", "-no_ssl2", "-no_ssl3"],
        vulns={*BROKEN_VULNS, "BEAST (CBC with TLS 1.0)", "Missing TLS_FALLBACK_SCSV"},
    ),
    Server(
        "legacy-export",
        {"export", "weak-suites", *BROKEN},
        legacy=["-cipher", f"{GCM}:EXP-DES-CBC-SHA", *TLS12_ONLY],
        vulns={*BROKEN_VULNS, "Export, NULL or anonymous suites (FREAK)", "SWEET32 (64-bit block ciphers)"},
    ),
    Server(
        "legacy-des",
        {"weak-suites", *BROKEN},
        legacy=["-cipher", f"{GCM}:EDH-RSA-DES-CBC-SHA", *TLS12_ONLY],
        vulns={*BROKEN_VULNS, "SWEET32 (64-bit block ciphers)"},
    ),
    Server(
        "legacy-rc4",
        {"rc4", *BROKEN},
        legacy=["-cipher", f"{GCM}:RC4-SHA", *TLS12_ONLY],
        vulns={*BROKEN_VULNS, "RC4"},
    ),
    # Safari 18 (a reference browser) still offers DES-CBC3-SHA last; the server's order puts it first
    Server(
        "legacy-3des-first",
        {"sweet32", "no-forward-secrecy", *BROKEN},
        legacy=["-cipher", f"DES-CBC3-SHA:{GCM}", *TLS12_ONLY],
        vulns={*BROKEN_VULNS, "SWEET32 (64-bit block ciphers)"},
    ),
    # --- tlslite-ng
    Server(
        "tlslite-dh-512",
        {"key-1024", "key-2048"},
        tlslite={"max_version": "TLSv1.3", "key_exchange": ["ecdhe_rsa", "dhe_rsa"]},
        dh_bits=512,
        vulns={"Weak Diffie-Hellman (Logjam)"},
    ),
    Server(
        "tlslite-dh-768",
        {"key-1024", "key-2048"},
        tlslite={"max_version": "TLSv1.3", "key_exchange": ["ecdhe_rsa", "dhe_rsa"]},
        dh_bits=768,
        vulns={"Weak Diffie-Hellman (Logjam)"},
    ),
    # Only Safari 18 connects (DES-CBC3-SHA, RSA key exchange); OpenSSL 3 cannot fetch the page, so HSTS is
    # unknown: no "HSTS missing" warning (never read unknown as missing), and no A+ either
    Server(
        "tlslite-3des-only",
        {"sweet32", "no-forward-secrecy", "no-aead", "no-tls13"},
        tlslite={"ciphers": ["3des"], "key_exchange": ["rsa"]},
        vulns={"SWEET32 (64-bit block ciphers)"},
    ),
    # SSL 3.0 only (CBC): OpenSSL 3 cannot fetch the page either (HSTS unknown, as above)
    Server(
        "tlslite-ssl3-only",
        {"ssl3-best", "poodle-ssl3", "no-tls12", "no-aead", "beast", "no-tls13"},
        tlslite={
            "min_version": "SSLv3",
            "max_version": "SSLv3",
            "ciphers": ["aes128"],
            "key_exchange": ["dhe_rsa"],
        },
        dh_bits=2048,
        vulns={"POODLE (SSL 3.0)", "BEAST (CBC with TLS 1.0)"},
    ),
    # no RFC 5746, but client-initiated renegotiation refused: the warning, not the flaw
    Server(
        "tlslite-no-rfc5746",
        {"no-secure-renegotiation"},
        tlslite={"max_version": "TLSv1.3", "secure_renegotiation": False},
    ),
    Server(
        "tlslite-robot",
        {"robot"},
        tlslite={"max_version": "TLSv1.3", "key_exchange": ["ecdhe_rsa", "rsa"], "rsa_padding_oracle": True},
        vulns={"ROBOT"},
    ),
]
ROWS = {r.id: r for r in [*CAPS, *WARNINGS]}
LEGACY = {s.name for s in SERVERS if s.legacy is not None}


def _python_server(issued, options: dict) -> PythonTLSServer:  # type: ignore[no-untyped-def, type-arg]
    opts = dict(options)
    for key in ("minimum_version", "maximum_version"):
        if key in opts:
            opts[key] = getattr(ssl.TLSVersion, opts[key])
    opts.setdefault("ciphers", "ECDHE+AESGCM:ECDHE+CHACHA20")
    return PythonTLSServer(
        issued, response_headers=[("Strict-Transport-Security", HSTS_2Y)], seclevel0=True, **opts
    )


def _start(server: Server, issued, root: Path, stack: ExitStack) -> str:  # type: ignore[no-untyped-def]
    """Start `server` in `stack`; its URL."""
    if server.legacy is not None:
        return stack.enter_context(
            LegacyOpenSSLServer(issued, server.legacy, dhparam_bits=server.dh_bits or 2048)
        ).url
    if server.tlslite is not None:
        return stack.enter_context(
            TlsliteServer(
                issued,
                dh_bits=server.dh_bits,
                **server.tlslite,
                response_headers=[("Strict-Transport-Security", HSTS_2Y)],
            )
        ).url
    if server.python is not None:
        python_server = _python_server(issued, server.python)
        if server.dh_bits:
            dh = root / f"dh{server.dh_bits}.pem"
            subprocess.run(
                ["openssl", "dhparam", "-out", str(dh), str(server.dh_bits)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            python_server.context.load_dh_params(str(dh))
        return stack.enter_context(python_server).url
    site = NginxSite(
        root / server.name, issued=issued, serve_chain=server.serve_chain, **{"hsts": HSTS_2Y, **server.nginx}
    )
    return stack.enter_context(site).url


def _audit(targets: dict[str, tuple[str, Path]], root: Path) -> CliRun:
    """tests.conftest.audit_local_targets with one connection per server: `s_server` serves one
    connection at a time, and sslyze reads a queued probe's timeout as "TLS_FALLBACK_SCSV supported"
    (and leaves TLS compression untested)."""
    entries = "".join(
        f'[[targets]]\nname = "{name}"\nurl = "{url}"\nip = "127.0.0.1"\n'
        f'ca_bundle = "{bundle}"\nhttp_port = 9\n'
        for name, (url, bundle) in targets.items()
    )
    config = root / "config.toml"
    config.write_text(
        f"[scan]\nconcurrency = 4\nconnections_per_server = 1\n[output]\nwrite_json = false\n{entries}"
    )
    return run_cli("audit", "--config", str(config), "--json", "-", "--quiet")


@pytest.fixture(scope="module")
def scanned(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("grade-rows")
    rsa_pki = TestPKI(root / "rsa-pki", ca_keys="rsa")
    servers = [s for s in SERVERS if s.legacy is None or legacy_openssl_available()]
    with ExitStack() as stack:
        targets: dict[str, tuple[str, Path]] = {}
        for server in servers:
            authority = rsa_pki if server.rsa_ca or server.legacy is not None else pki
            issued = authority.issue(f"row-{server.name}", **server.cert)
            targets[server.name] = (_start(server, issued, root, stack), authority.root_path)
        run = _audit(targets, root)
    assert "Traceback" not in run.stderr, run.stderr
    yield {t["target"]["name"]: t for t in run.report["targets"]}


def _result(server: Server, scanned: dict) -> dict:  # type: ignore[type-arg]
    if server.name in LEGACY and not legacy_openssl_available():
        pytest.skip(LEGACY_ABSENT)
    result = scanned[server.name]
    assert result["error"] is None, result["error"]
    return result  # type: ignore[no-any-return]


def _vuln_rows(result: dict) -> dict[str, str]:  # type: ignore[type-arg]
    """{row name: "PRESENT" | "not present" | "not tested"} from the 11.4-vulnerabilities finding."""
    finding = next(f for f in result["findings"] if f["clause"] == "11.4-vulnerabilities")
    rows = {}
    for line in finding["evidence"]:
        name, _, state = line.rpartition(": ")
        if state in ("PRESENT", "not present", "not tested"):
            rows[name] = state
    return rows


def test_every_row_is_produced_here_or_said_why_not() -> None:
    produced = set().union(*(s.rows for s in SERVERS))
    assert produced | set(NOT_PRODUCIBLE) == set(ROWS)
    assert not produced & set(NOT_PRODUCIBLE)


def test_every_vulnerability_row_is_produced_here_or_said_why_not(scanned: dict) -> None:  # type: ignore[type-arg]
    names = set(_vuln_rows(scanned["modern"]))
    produced = set().union(*(s.vulns for s in SERVERS))
    assert produced | set(VULN_NOT_PRODUCIBLE) == names
    assert not produced & set(VULN_NOT_PRODUCIBLE)


@pytest.mark.parametrize("server", SERVERS, ids=[s.name for s in SERVERS])
def test_real_evidence_triggers_exactly_its_rows(server: Server, scanned: dict) -> None:  # type: ignore[type-arg]
    result = _result(server, scanned)
    evidence = Evidence.model_validate(result["evidence"])
    facts = facts_from(evidence, custom_ca=True)
    triggered = {row_id for row_id, row in ROWS.items() if row.applies(facts)}
    assert triggered == server.rows
    grade = result["grade"]
    said = {c["reason"] for c in grade["caps"]} | set(grade["warnings"])
    assert {ROWS[r].wording for r in server.rows} <= said


@pytest.mark.parametrize("server", SERVERS, ids=[s.name for s in SERVERS])
def test_real_evidence_shows_exactly_its_vulnerabilities(server: Server, scanned: dict) -> None:  # type: ignore[type-arg]
    rows = _vuln_rows(_result(server, scanned))
    assert {name for name, state in rows.items() if state == "PRESENT"} == server.vulns
