"""Certificate Transparency and protocol facts (issue 15) against real servers on 127.0.0.1.

SCTs: cryptography parses the precertificate SCT extension but cannot build one, so the test
builds it byte by byte (RFC 6962 section 3.2): each SCT is signed with its own test log key (ECDSA
P-256) over the precertificate (the TBS without the SCT extension) and the issuer's key hash, and
added as an x509.UnrecognizedExtension; the signature is checked here before the leaf is served.
The TLS-extension SCTs are served by `openssl s_server -serverinfo`; a real OCSP response from the
test responder's signer (tests.harness.ocsp) is stapled by nginx (`ssl_stapling_file`).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auditor.checks import CheckContext, run_checks
from auditor.model import (
    AuditReport,
    CertificateTransparency,
    Evidence,
    Sct,
    Status,
    TlsEvidence,
    TrustStoreResult,
)
from auditor.reports.html import render_html
from auditor.reports.text import render_text
from auditor.scan.dh_size import target
from auditor.scan.ledger import ConnectionCounter
from auditor.scan.protocol_facts import probe
from tests import evidence_builders as b
from tests.conftest import run_cli
from tests.harness.ocsp import ocsp_response
from tests.harness.pki import Issued, TestPKI
from tests.harness.servers import NginxSite, OpenSSLServer, free_port

SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
EARLY = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass(frozen=True)
class TestLog:
    """A CT log of our own: its key, and its id (SHA-256 of the public key, RFC 6962 3.2)."""

    __test__ = False
    key: ec.EllipticCurvePrivateKey

    @property
    def log_id(self) -> bytes:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return sha256(der).digest()


LOGS = [TestLog(ec.generate_private_key(ec.SECP256R1())) for _ in range(3)]


def _u(n: int, size: int) -> bytes:
    return n.to_bytes(size, "big")


def _signed_sct(log: TestLog, when: datetime, precert_tbs: bytes, issuer_key_hash: bytes) -> bytes:
    """One v1 SCT for a precertificate entry, signed by `log` (ECDSA with SHA-256)."""
    millis = int(when.timestamp() * 1000)
    signed = (
        b"\x00\x00"  # version v1, signature_type certificate_timestamp
        + _u(millis, 8)
        + b"\x00\x01"  # entry_type precert_entry
        + issuer_key_hash
        + _u(len(precert_tbs), 3)
        + precert_tbs
        + b"\x00\x00"  # no extensions
    )
    signature = log.key.sign(signed, ec.ECDSA(hashes.SHA256()))
    return (
        b"\x00" + log.log_id + _u(millis, 8) + b"\x00\x00" + b"\x04\x03" + _u(len(signature), 2) + signature
    )


def sct_list(scts: list[bytes]) -> bytes:
    """A TLS SignedCertificateTimestampList."""
    body = b"".join(_u(len(s), 2) + s for s in scts)
    return _u(len(body), 2) + body


def _octet_string(data: bytes) -> bytes:
    length = len(data)
    encoded = bytes([length]) if length < 128 else bytes([0x82]) + _u(length, 2)
    return b"\x04" + encoded + data


def with_embedded_scts(pki: TestPKI, issued: Issued, logs: list[TestLog]) -> Issued:
    """`issued` re-signed by the intermediate with an SCT from each of `logs` embedded (files rewritten)."""
    cert = issued.cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    precert_tbs = builder.sign(pki.intermediate_key, hashes.SHA256()).tbs_certificate_bytes
    issuer_key_hash = sha256(
        pki.intermediate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    scts = [
        _signed_sct(log, EARLY + timedelta(minutes=i), precert_tbs, issuer_key_hash)
        for i, log in enumerate(logs)
    ]
    value = _octet_string(sct_list(scts))
    final = builder.add_extension(x509.UnrecognizedExtension(SCT_OID, value), critical=False).sign(
        pki.intermediate_key,
        hashes.SHA256(),
    )
    pem = final.public_bytes(serialization.Encoding.PEM)
    intermediate = pki.intermediate.public_bytes(serialization.Encoding.PEM)
    issued.cert_path.write_bytes(pem)
    issued.chain_path.write_bytes(pem + intermediate)
    return Issued(issued.name, issued.cert_path, issued.key_path, issued.chain_path, final)


def _audit(site: NginxSite, pki: TestPKI) -> dict[str, Any]:
    run = run_cli(
        "audit", "--ip", "127.0.0.1", "--ca-bundle", str(pki.root_path), "--http-port", "9",
        "--json", "-", "--quiet", site.url,
    )  # fmt: skip
    assert "Traceback" not in run.stderr, run.stderr
    found: dict[str, Any] = run.report["targets"][0]
    assert found["error"] is None, found["error"]
    return found


def _probe(port: int, highest: str = "TLS 1.3") -> tuple[Any, Any, ConnectionCounter]:
    counter = ConnectionCounter(timeout=5)
    facts, scts = probe(target("good.test", port, "127.0.0.1", 5), highest, counter)
    return facts, scts, counter


# ---------------------------------------------------------------- one site with everything on


@pytest.fixture(scope="module")
def full(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], int]]:
    """nginx serving a leaf with 3 embedded SCTs, stapling a good OCSP response, with a session
    cache and early data, and a second listener with HTTP/2: one real audit of the first."""
    directory = tmp_path_factory.mktemp("facts-full")
    issued = with_embedded_scts(pki, pki.issue("facts-sct"), LOGS)
    staple = directory / "staple.der"
    staple.write_bytes(ocsp_response(pki, issued.cert, "good"))
    h2_port = free_port()
    extra = (
        f"ssl_stapling on;\n    ssl_stapling_file {staple};\n    ssl_session_cache shared:facts:1m;\n"
        f"    ssl_early_data on;\n    listen 127.0.0.1:{h2_port} ssl http2;"
    )
    with NginxSite(directory / "nginx", issued=issued, extra_server=extra) as site:
        yield _audit(site, pki), h2_port


@pytest.fixture(scope="module")
def plain(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """nginx as the harness configures it (no tickets, no session cache, no stapling, no early
    data) with a leaf without SCTs: one real audit."""
    directory = tmp_path_factory.mktemp("facts-plain")
    with NginxSite(directory / "nginx", issued=pki.issue("facts-plain")) as site:
        yield _audit(site, pki)


def _tls(target_json: dict[str, Any]) -> TlsEvidence:
    return Evidence.model_validate(target_json["evidence"]).tls


def test_embedded_scts_are_read_with_their_logs_and_times(full: tuple[dict[str, Any], int]) -> None:
    ct = _tls(full[0]).certificates[0].ct
    assert ct is not None
    assert [s.log_id for s in ct.embedded] == [log.log_id.hex() for log in LOGS]
    assert [s.timestamp for s in ct.embedded] == [EARLY + timedelta(minutes=i) for i in range(3)]
    assert ct.tls_extension == []  # asked for in TLS 1.2, nginx sends none
    assert ct.ocsp == []  # a stapled response, without an SCT list


def test_a_leaf_without_scts_has_none_and_private_ca_is_only_informed(
    plain: dict[str, Any], full: tuple[dict[str, Any], int]
) -> None:
    ct = _tls(plain).certificates[0].ct
    assert ct is not None and ct.embedded == [] and ct.ocsp is None  # nothing stapled
    for target_json, count in ((plain, 0), (full[0], 3)):
        trusted = [f for f in target_json["findings"] if f["clause"] == "11.2-cert-trusted"]
        assert [f["result_id"] for f in trusted] == ["cert-trusted"]  # a private CA: no CT verdict
        assert any(
            e.startswith(f"certificate transparency: {count} SCTs from {count} logs (embedded {count},")
            and e.endswith("not required (private CA)")
            for e in trusted[0]["evidence"]
        )


def test_stapling_resumption_and_early_data_on_and_off(
    full: tuple[dict[str, Any], int], plain: dict[str, Any]
) -> None:
    on, off = _tls(full[0]).facts, _tls(plain).facts
    assert on is not None and off is not None
    assert (on.ocsp_stapling, on.resumption, on.resumption_protocol, on.resumed_with, on.early_data) == (
        True, True, "TLS 1.3", "ticket", True,
    )  # fmt: skip
    assert (off.ocsp_stapling, off.resumption, off.early_data) == (False, False, False)
    # TLS 1.2: nginx assigns session IDs (it cannot resume them without a cache), tickets are off
    assert (off.session_ids, off.session_tickets) == (True, False)
    assert _tls(full[0]).connections_by_phase["facts"] == 3  # counted under their own phase


def test_alpn_h2_only_where_http2_is_on(full: tuple[dict[str, Any], int]) -> None:
    report, h2_port = full
    facts = _tls(report).facts
    assert facts is not None and (facts.alpn, facts.http2, facts.alpn_protocol) == (
        "http/1.1",
        False,
        "TLS 1.2",
    )
    on, _, counter = _probe(h2_port)
    assert (on.alpn, on.http2) == ("h2", True)
    assert counter.by_phase == {"facts": 3}


def test_the_reports_show_the_facts(full: tuple[dict[str, Any], int]) -> None:
    report = AuditReport(
        generated_at=datetime.now(UTC),
        tool_version="test",
        targets=[
            AuditReport.model_validate(
                {"generated_at": EARLY, "tool_version": "t", "targets": [full[0]]}
            ).targets[0]
        ],
    )
    text = render_text(report)
    assert "  OCSP stapling: yes" in text
    assert "  Session resumption: yes (TLS 1.3, ticket)" in text
    assert "  0-RTT (TLS 1.3 early data): accepted" in text
    assert (
        "  SCTs (Certificate Transparency): 3 embedded, 0 by TLS extension, 0 in stapled OCSP; 3 distinct logs"
        in text
    )
    html = render_html(report)
    assert "Protocol details" in html and "http/1.1 (no HTTP/2)" in html


# ---------------------------------------------------------------- tickets, TLS 1.3 only, TLS-extension SCTs


def test_tls12_session_tickets_on_resume_with_a_ticket(pki: TestPKI, tmp_path: Path) -> None:
    extra = "ssl_conf_command Options SessionTicket;"  # undoes the harness's `ssl_session_tickets off`
    with NginxSite(
        tmp_path, issued=pki.issue("facts-tickets"), protocols="TLSv1.2", extra_server=extra
    ) as site:
        facts, _, _ = _probe(site.https_port, "TLS 1.2")
    assert (facts.session_tickets, facts.resumption, facts.resumed_with) == (True, True, "ticket")
    assert facts.early_data is None  # no 0-RTT in TLS 1.2


def test_tls13_only_leaves_alpn_and_tls_extension_scts_not_measured(pki: TestPKI, tmp_path: Path) -> None:
    with NginxSite(tmp_path, issued=pki.issue("facts-13"), protocols="TLSv1.3") as site:
        facts, scts, _ = _probe(site.https_port)
    assert facts.alpn is None and facts.http2 is None and scts.scts is None
    assert scts.note.startswith("TLS 1.2 refused")
    assert facts.resumption is False  # measured in TLS 1.3: no cache, no tickets


def test_scts_delivered_in_the_tls_extension(pki: TestPKI, tmp_path: Path) -> None:
    issued = pki.issue("facts-tlsext")
    when = datetime(2025, 6, 1, tzinfo=UTC)
    scts = [_signed_sct(log, when, b"tbs", b"\x00" * 32) for log in LOGS[:2]]
    data = sct_list(scts)
    info = tmp_path / "serverinfo.pem"
    der = struct.pack("!HH", 18, len(data)) + data
    info.write_text(
        "-----BEGIN SERVERINFO FOR signed_certificate_timestamp-----\n"
        + base64.encodebytes(der).decode()
        + "-----END SERVERINFO FOR signed_certificate_timestamp-----\n"
    )
    args = ["-serverinfo", str(info), "-alpn", "h2,http/1.1"]
    with OpenSSLServer(issued, args) as server:
        facts, found, counter = _probe(server.port, "TLS 1.3")
    assert found.scts == [Sct(log_id=log.log_id.hex(), timestamp=when) for log in LOGS[:2]]
    assert found.leaf_sha256 == issued.cert.fingerprint(hashes.SHA256()).hex()
    assert (facts.alpn, facts.http2) == ("h2", True)
    assert counter.total <= 3


# ---------------------------------------------------------------- the CT policy, judged


def _public(days: int, ct: CertificateTransparency) -> list[Any]:
    deployment = b.deployment(
        [b.cert(days_left=30, lifetime=days), b.cert("CN=Intermediate", issuer="CN=Root")]
    )
    deployment.ct = ct
    evidence = b.evidence(b.tls({"TLS 1.3": b.MODERN_13}, deployments=[deployment]))
    findings = run_checks(CheckContext(evidence=evidence, host="good.test"))
    return [(f.result_id, f.status) for f in findings if f.clause == "11.2-cert-trusted"]


def _scts(n: int) -> list[Sct]:
    return [Sct(log_id=f"{i:064x}", timestamp=EARLY) for i in range(n)]


@pytest.mark.parametrize(
    ("days", "embedded", "tls", "expected"),
    [
        (90, 2, [], []),  # 2 embedded suffice up to 180 days
        (90, 1, [], [("cert-ct-too-few-scts", Status.WARN)]),
        (398, 2, [], [("cert-ct-too-few-scts", Status.WARN)]),  # beyond 180 days: 3
        (398, 3, [], []),
        (398, 0, _scts(2), []),  # 2 by TLS extension suffice at any lifetime
        (90, 0, None, [("cert-ct-not-judged", Status.INFO)]),  # TLS extension not measured
    ],
)
def test_ct_policy_for_a_publicly_trusted_certificate(
    days: int, embedded: int, tls: list[Sct] | None, expected: list[tuple[str, Status]]
) -> None:
    ct = CertificateTransparency(embedded=_scts(embedded), tls_extension=tls)
    assert _public(days, ct) == [("cert-trusted", Status.PASS), *expected]


def test_same_log_twice_counts_once_and_private_ca_is_not_judged() -> None:
    twice = [Sct(log_id="ab" * 32, timestamp=EARLY)] * 3
    assert ("cert-ct-too-few-scts", Status.WARN) in _public(
        90, CertificateTransparency(embedded=twice, tls_extension=[])
    )
    deployment = b.deployment(stores=["custom"])
    deployment.ct = CertificateTransparency(tls_extension=[])
    deployment.trust.append(TrustStoreResult(store="Mozilla", trusted=False, error="unable to get issuer"))
    evidence = b.evidence(b.tls({"TLS 1.3": b.MODERN_13}, deployments=[deployment]))
    findings = run_checks(CheckContext(evidence=evidence, host="good.test", custom_ca=True))
    assert [f.result_id for f in findings if f.clause == "11.2-cert-trusted"] == ["cert-trusted"]
