"""The test harness itself: the throwaway PKI makes the certificates it promises, and the nginx,
openssl and Python servers really serve them (and the headers) on loopback."""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from tests.harness.legacy import LegacyOpenSSLServer, legacy_openssl_available
from tests.harness.pki import POLICY_OIDS, Issued, TestPKI
from tests.harness.servers import NginxSite, OpenSSLServer, PythonTLSServer, free_port
from tests.harness.tlslite_server import TlsliteServer

pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")

HOST = "good.test"
needs_nginx = pytest.mark.skipif(
    not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")), reason="nginx not installed"
)
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("harness-pki"))


@pytest.fixture(scope="module")
def leaf(pki: TestPKI) -> Issued:
    return pki.issue("harness-ov")


def trusting(pki: TestPKI, *, legacy: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.root_path))
    if legacy:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


def handshake(ctx: ssl.SSLContext, port: int, sni: str = HOST) -> tuple[str, x509.Certificate]:
    """Connect to 127.0.0.1 (never DNS) with `sni`; return the protocol and the leaf served."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return str(tls.version()), x509.load_der_x509_certificate(der)


def get(ctx: ssl.SSLContext, port: int, path: str = "/", **kwargs: Any) -> httpx.Response:
    with httpx.Client(verify=ctx, timeout=5, trust_env=False) as client:
        return client.get(
            f"https://127.0.0.1:{port}{path}",
            headers={"Host": HOST},
            extensions={"sni_hostname": HOST},
            **kwargs,
        )


def openssl_verify(pki: TestPKI, cert: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl",
            "verify",
            *extra,
            "-CAfile",
            str(pki.root_path),
            "-untrusted",
            str(pki.intermediate_path),
            str(cert),
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )


def ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType:
    return cert.extensions.get_extension_for_oid(oid).value


# --- PKI -------------------------------------------------------------------------------------


def test_default_leaf_has_the_usual_extensions(leaf: Issued, pki: TestPKI) -> None:
    cert = leaf.cert
    assert ext(cert, ExtensionOID.BASIC_CONSTRAINTS).ca is False  # type: ignore[attr-defined]
    usage = ext(cert, ExtensionOID.KEY_USAGE)
    assert usage.digital_signature and usage.key_encipherment  # type: ignore[attr-defined]
    assert list(ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)) == [ExtendedKeyUsageOID.SERVER_AUTH]  # type: ignore
    assert ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME).get_values_for_type(x509.DNSName) == [HOST]  # type: ignore[attr-defined]
    aki = ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER).key_identifier  # type: ignore[attr-defined]
    assert aki == ext(pki.intermediate, ExtensionOID.SUBJECT_KEY_IDENTIFIER).digest  # type: ignore[attr-defined]
    assert cert.issuer == pki.intermediate.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == HOST
    assert leaf.chain_path.read_bytes() == leaf.cert_path.read_bytes() + pki.intermediate_path.read_bytes()


@needs_openssl
def test_openssl_validates_default_leaf_with_policy_checking(leaf: Issued, pki: TestPKI) -> None:
    run = openssl_verify(
        pki,
        leaf.cert_path,
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-policy_check",
        "-explicit_policy",
        "-policy",
        POLICY_OIDS["ov"],
    )
    assert run.returncode == 0 and ": OK" in run.stdout, run.stdout + run.stderr
    other = TestPKI(pki.directory / "other-root")  # a different root must not validate it
    assert openssl_verify(other, leaf.cert_path).returncode != 0


@pytest.mark.parametrize("policy", ["dv", "ov", "ev", None])
def test_policy_oids(pki: TestPKI, policy: str | None) -> None:
    cert = pki.issue(f"policy-{policy}", policy=policy, key="p256").cert
    if policy is None:
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_oid(ExtensionOID.CERTIFICATE_POLICIES)
    else:
        oids = [p.policy_identifier.dotted_string for p in ext(cert, ExtensionOID.CERTIFICATE_POLICIES)]  # type: ignore[attr-defined]
        assert oids == [POLICY_OIDS[policy]]


@needs_openssl
@pytest.mark.parametrize(
    ("issuer", "key"), [("intermediate", "rsa2048"), ("root", "p256"), ("self", "rsa2048")]
)
def test_sha1_leaf_keeps_dates_issuer_and_extensions(pki: TestPKI, issuer: str, key: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    issued = pki.issue(
        f"sha1-{issuer}",
        hash="sha1",
        key=key,
        issuer=issuer,
        hosts=(HOST, "127.0.0.1"),
        not_before=now - timedelta(days=30),
        not_after=now + timedelta(days=10),
    )
    cert = issued.cert
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha1"
    assert cert.not_valid_before_utc == now - timedelta(days=30)
    assert cert.not_valid_after_utc == now + timedelta(days=10)
    san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.IPAddress)[0].exploded == "127.0.0.1"
    expected_issuer = {"intermediate": pki.intermediate, "root": pki.root}.get(issuer)
    assert cert.issuer == (expected_issuer.subject if expected_issuer else cert.subject)
    # the signature really verifies (openssl checks it; the default level-1 verifier still accepts SHA-1)
    ca = pki.root_path if issuer != "self" else issued.cert_path
    run = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(ca),
            "-untrusted",
            str(pki.intermediate_path),
            str(issued.cert_path),
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(issued.cert_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"Signature Algorithm: (sha1WithRSAEncryption|ecdsa-with-SHA1)", text), text
    assert "sha256" not in text.lower()


@needs_openssl
def test_md5_leaf_from_an_rsa_ca_and_a_768_bit_key(tmp_path: Path) -> None:
    rsa_pki = TestPKI(tmp_path / "rsa-pki", ca_keys="rsa")
    assert isinstance(rsa_pki.intermediate_key, rsa.RSAPrivateKey) and isinstance(
        rsa_pki.root_key, rsa.RSAPrivateKey
    )
    issued = rsa_pki.issue("md5", hash="md5", key="rsa768", hosts=(HOST,))
    assert (
        issued.cert.signature_hash_algorithm is not None
        and issued.cert.signature_hash_algorithm.name == "md5"
    )
    assert issued.cert.public_key().key_size == 768  # type: ignore[union-attr]
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(issued.cert_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Signature Algorithm: md5WithRSAEncryption" in text and "(768 bit)" in text
    # the signature is a real one by the intermediate: verifies once MD5 is allowed (security level 0)
    run = subprocess.run(
        [
            "openssl",
            "verify",
            "-auth_level",
            "0",
            "-CAfile",
            str(rsa_pki.root_path),
            "-untrusted",
            str(rsa_pki.intermediate_path),
            str(issued.cert_path),
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    with pytest.raises(ValueError, match="md5 signatures need an RSA signer"):
        TestPKI(tmp_path / "ec-pki").issue("md5-ec", hash="md5")
    with pytest.raises(ValueError, match="ca_keys"):
        TestPKI(tmp_path / "bad", ca_keys="dsa")


def test_expired_and_expiring(pki: TestPKI) -> None:
    now = datetime.now(UTC)
    expired = pki.issue(
        "expired", not_before=now - timedelta(days=100), not_after=now - timedelta(days=3)
    ).cert
    assert expired.not_valid_after_utc < now
    expiring = pki.issue("expiring", days_valid=10).cert
    assert abs(expiring.not_valid_after_utc - now - timedelta(days=10)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("key", "kind", "size"),
    [
        ("rsa1024", rsa.RSAPublicKey, 1024),
        ("rsa4096", rsa.RSAPublicKey, 4096),
        ("p384", ec.EllipticCurvePublicKey, 384),
        ("ed25519", ed25519.Ed25519PublicKey, None),
    ],
)
def test_key_types(pki: TestPKI, key: str, kind: type, size: int | None) -> None:
    public = pki.issue(f"key-{key}", key=key).cert.public_key()
    assert isinstance(public, kind)
    if size:
        assert isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        assert public.key_size == size


def test_hostile_subject_no_san_ip_hosts_and_self_signed(pki: TestPKI) -> None:
    hostile = pki.issue(
        "hostile", subject_cn="<script>alert(1)</script>", subject_org='"><img src=x>', san=False
    )
    assert (
        hostile.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == "<script>alert(1)</script>"
    )
    with pytest.raises(x509.ExtensionNotFound):
        hostile.cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    ip = pki.issue("by-ip", hosts=("127.0.0.1", "::1", HOST)).cert
    san = ext(ip, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]  # type: ignore
    assert san.get_values_for_type(x509.DNSName) == [HOST]  # type: ignore[attr-defined]
    selfsigned = pki.issue("self", issuer="self")
    assert selfsigned.cert.issuer == selfsigned.cert.subject
    assert selfsigned.chain_path.read_bytes() == selfsigned.cert_path.read_bytes()


def test_bad_arguments_are_refused(pki: TestPKI) -> None:
    for kwargs in ({"key": "rsa512"}, {"hash": "md5"}, {"policy": "qv"}, {"issuer": "nobody"}):
        with pytest.raises(ValueError):
            pki.issue("bad", **kwargs)  # type: ignore[arg-type]


def test_sslyze_validates_the_default_leaf(pki: TestPKI, leaf: Issued) -> None:
    sslyze = pytest.importorskip("sslyze")
    with PythonTLSServer(leaf) as server:
        location = sslyze.ServerNetworkLocation(HOST, server.port, ip_address="127.0.0.1")
        request = sslyze.ServerScanRequest(
            server_location=location,
            scan_commands={sslyze.ScanCommand.CERTIFICATE_INFO},
            scan_commands_extra_arguments=sslyze.ScanCommandsExtraArguments(
                certificate_info=sslyze.CertificateInfoExtraArgument(custom_ca_file=pki.root_path)
            ),
        )
        scanner = sslyze.Scanner()
        scanner.queue_scans([request])
        result = next(iter(scanner.get_results()))
    assert result.scan_result is not None
    attempt = result.scan_result.certificate_info
    assert attempt.status == sslyze.ScanCommandAttemptStatusEnum.COMPLETED, attempt.error_trace
    deployment = attempt.result.certificate_deployments[0]
    custom = [r for r in deployment.path_validation_results if r.trust_store.name == "Supplied CA file"]
    assert custom and custom[0].was_validation_successful, custom
    assert [c.subject for c in custom[0].verified_certificate_chain] == [
        leaf.cert.subject,
        pki.intermediate.subject,
        pki.root.subject,
    ]
    assert deployment.received_chain_has_valid_order and not deployment.verified_chain_has_sha1_signature


# --- nginx -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx_site(leaf: Issued) -> Iterator[NginxSite]:
    cookies = ["sid=abc; Path=/; Secure; HttpOnly; SameSite=Lax", 'pref="dark"; Path=/', "cost=$5; Path=/"]
    body = '<html><body><img src="http://cdn.good.test/x.png"><script src="http://evil.test/a.js"></script></body></html>'
    with NginxSite(
        issued=leaf, cookies=cookies, body=body, extra_headers={"X-Frame-Options": "DENY"}
    ) as site:
        yield site


@needs_nginx
def test_nginx_default_site_validates_and_serves_modern_tls(nginx_site: NginxSite, pki: TestPKI) -> None:
    version, cert = handshake(trusting(pki), nginx_site.https_port)
    assert version in ("TLSv1.2", "TLSv1.3")
    assert cert.serial_number == nginx_site.issued.cert.serial_number
    assert nginx_site.url == f"https://good.test:{nginx_site.https_port}/"
    legacy = trusting(pki, legacy=True)
    legacy.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        handshake(legacy, nginx_site.https_port)


@needs_nginx
def test_nginx_headers_cookies_and_body(nginx_site: NginxSite, pki: TestPKI) -> None:
    response = get(trusting(pki), nginx_site.https_port)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert (
        response.headers.get_list("set-cookie") == nginx_site.cookies
    )  # each its own line, quotes and $ intact
    assert response.headers["x-frame-options"] == "DENY"
    assert response.text == nginx_site.body
    assert get(trusting(pki), nginx_site.https_port, "/nginx.conf").status_code == 404  # config is not served


@needs_nginx
def test_nginx_http_listener_redirects_to_https(nginx_site: NginxSite) -> None:
    assert nginx_site.http_port and nginx_site.http_url == f"http://good.test:{nginx_site.http_port}/"
    with httpx.Client(timeout=5, trust_env=False) as client:
        response = client.get(f"http://127.0.0.1:{nginx_site.http_port}/path?q=1", headers={"Host": HOST})
    assert response.status_code == 301
    assert response.headers["location"] == f"https://good.test:{nginx_site.https_port}/path?q=1"


@needs_nginx
def test_nginx_missing_intermediate_fails_verification(pki: TestPKI, leaf: Issued) -> None:
    with NginxSite(issued=leaf, serve_chain=False, http_mode="none", hsts=None) as site:
        assert site.http_port is None and site.http_url is None
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            handshake(trusting(pki), site.https_port)
        relaxed = trusting(pki)
        relaxed.load_verify_locations(cafile=str(pki.intermediate_path))  # the chain the server should send
        relaxed.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        assert handshake(relaxed, site.https_port)[1] == leaf.cert


@needs_nginx
def test_nginx_http_content_and_http_redirect_modes(pki: TestPKI, leaf: Issued) -> None:
    body = '<a href="http://good.test/login">login</a>'
    with (
        NginxSite(issued=leaf, http_mode="content", body=body, hsts=None) as content,
        NginxSite(issued=leaf, http_mode="http-redirect") as elsewhere,
        httpx.Client(timeout=5, trust_env=False) as client,
    ):
        plain = client.get(f"http://127.0.0.1:{content.http_port}/", headers={"Host": HOST})
        assert plain.status_code == 200 and plain.text == body
        assert "strict-transport-security" not in get(trusting(pki), content.https_port).headers
        hop = client.get(f"http://127.0.0.1:{elsewhere.http_port}/x", headers={"Host": HOST})
        assert hop.status_code == 301 and hop.headers["location"].startswith("http://")


@needs_nginx
def test_nginx_legacy_protocols_dual_certificates_and_tls13_suites(pki: TestPKI, leaf: Issued) -> None:
    ec_leaf = pki.issue("harness-ec", key="p256")
    with NginxSite(
        issued=leaf,
        dual_issued=ec_leaf,
        protocols="TLSv1 TLSv1.2 TLSv1.3",
        seclevel0=True,
        ciphers="ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256",
        tls13_ciphersuites="TLS_CHACHA20_POLY1305_SHA256",
        http_mode="none",
    ) as site:
        tls10 = trusting(pki, legacy=True)
        tls10.maximum_version = ssl.TLSVersion.TLSv1
        tls10.set_ciphers("ECDHE-RSA-AES128-SHA:@SECLEVEL=0")
        version, cert = handshake(tls10, site.https_port)
        assert version == "TLSv1" and cert == leaf.cert
        ecdsa = trusting(pki)
        ecdsa.maximum_version = ssl.TLSVersion.TLSv1_2
        ecdsa.set_ciphers("ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
        assert handshake(ecdsa, site.https_port)[1] == ec_leaf.cert
        with (
            socket.create_connection(("127.0.0.1", site.https_port), timeout=5) as raw,
            trusting(pki).wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            assert tls.version() == "TLSv1.3" and tls.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256"  # type: ignore


@needs_nginx
def test_nginx_bad_config_raises_with_the_error_log(leaf: Issued) -> None:
    site = NginxSite(issued=leaf, ciphers="NOT-A-CIPHER", http_mode="none")
    with pytest.raises(RuntimeError, match=r"(?s)nginx did not start.*SSL_CTX_set_cipher_list"):
        site.start()
    assert site.proc is None


@needs_nginx
def test_nginx_start_stop_leaves_no_process(leaf: Issued) -> None:
    site = NginxSite(issued=leaf)
    site.start()
    assert site.proc is not None
    pgid = site.proc.pid
    with socket.create_connection(("127.0.0.1", site.https_port), timeout=5):
        pass
    site.stop()
    site.stop()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", site.https_port), timeout=1).close()
    assert not site.directory.exists()  # its own temp directory is removed


# --- openssl s_server ------------------------------------------------------------------------


@needs_openssl
def test_openssl_server_negotiates_tls10_when_forced(pki: TestPKI, leaf: Issued) -> None:
    with OpenSSLServer(leaf, ["-tls1", "-cipher", "AES128-SHA:ECDHE-RSA-AES128-SHA@SECLEVEL=0"]) as server:
        assert server.url == f"https://good.test:{server.port}/"
        ctx = trusting(pki, legacy=True)
        ctx.maximum_version = ssl.TLSVersion.TLSv1
        version, cert = handshake(ctx, server.port)  # the chain is sent: validates against the root
        assert version == "TLSv1" and cert == leaf.cert
        with pytest.raises(ssl.SSLError):
            handshake(trusting(pki), server.port)  # a modern client refuses it
        response = get(ctx, server.port)
        assert response.status_code == 200 and "s_server" in response.text


@needs_openssl
def test_openssl_server_bad_arguments_raise_with_stderr(leaf: Issued) -> None:
    server = OpenSSLServer(leaf, ["-no-such-flag"])
    with pytest.raises(RuntimeError, match=r"(?s)did not start.*no-such-flag"):
        server.start()
    assert server.proc is None


# --- Python ssl server -----------------------------------------------------------------------


def test_python_server_serves_headers_and_redirects(pki: TestPKI, leaf: Issued) -> None:
    headers = [
        ("Strict-Transport-Security", "max-age=31536000"),
        ("Set-Cookie", "a=1; Secure"),
        ("Set-Cookie", "b=2; HttpOnly"),
    ]
    server = PythonTLSServer(
        leaf, response_headers=headers, body="<p>teapot</p>", status=418, http_mode="redirect"
    )
    server.start()
    try:
        response = get(trusting(pki), server.port)
        assert response.status_code == 418 and response.text == "<p>teapot</p>"
        assert response.headers["strict-transport-security"] == "max-age=31536000"
        assert response.headers.get_list("set-cookie") == ["a=1; Secure", "b=2; HttpOnly"]
        with httpx.Client(timeout=5, trust_env=False) as client:
            hop = client.get(f"http://127.0.0.1:{server.http_port}/p?x=1", headers={"Host": f"{HOST}:80"})
        assert hop.status_code == 301 and hop.headers["location"] == f"https://good.test:{server.port}/p?x=1"
    finally:
        server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_python_server_survives_garbage_and_aborted_handshakes(pki: TestPKI, leaf: Issued) -> None:
    with PythonTLSServer(leaf, client_timeout=2) as server:
        stalled = socket.create_connection(("127.0.0.1", server.port))  # connects, never speaks
        for i in range(150):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                if i % 3 == 0:
                    sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plain HTTP on the TLS port
                elif i % 3 == 1:
                    sock.sendall(b"\x16\x03\x01\x00\x10" + os.urandom(16))  # a broken ClientHello
        for _ in range(20):  # a real ClientHello, then the client hangs up mid-handshake
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            hello = trusting(pki).wrap_bio(incoming, outgoing, server_hostname=HOST)
            with pytest.raises(ssl.SSLWantReadError):
                hello.do_handshake()
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(outgoing.read())
        assert get(trusting(pki), server.port).status_code == 200
        stalled.close()


def test_python_server_legacy_versions_and_cipher_choice(pki: TestPKI, leaf: Issued) -> None:
    with PythonTLSServer(
        leaf,
        minimum_version=ssl.TLSVersion.TLSv1,
        maximum_version=ssl.TLSVersion.TLSv1_1,
        ciphers="ECDHE-RSA-AES256-SHA",
    ) as server:
        ctx = trusting(pki, legacy=True)
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            assert tls.version() == "TLSv1.1" and tls.cipher()[0] == "ECDHE-RSA-AES256-SHA"  # type: ignore


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --- legacy OpenSSL 1.0.1e s_server ----------------------------------------------------------


needs_legacy = pytest.mark.skipif(
    not legacy_openssl_available(),
    reason="../shared/legacy-openssl is absent (a clone outside its usual place)",
)


@pytest.fixture(scope="module")
def rsa_leaf(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestPKI, Issued]:
    rsa_pki = TestPKI(tmp_path_factory.mktemp("harness-rsa-pki"), ca_keys="rsa")
    return rsa_pki, rsa_pki.issue("harness-legacy")


def s_client(port: int, *args: str) -> str:
    """Debian's `openssl s_client` output (both streams) for one handshake: it prints the DH size,
    which Python's ssl does not."""
    run = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", HOST, *args],
        input="",
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    return run.stdout + run.stderr


@needs_legacy
@needs_openssl
def test_legacy_server_serves_chain_and_page(rsa_leaf: tuple[TestPKI, Issued]) -> None:
    rsa_pki, issued = rsa_leaf
    with LegacyOpenSSLServer(issued, ["-cipher", "ALL:eNULL:EXPORT:SSLv2"]) as server:
        assert server.url == f"https://good.test:{server.port}/"
        version, cert = handshake(trusting(rsa_pki), server.port)  # validates: the intermediate is sent
        assert version == "TLSv1.2" and cert == issued.cert
        response = get(trusting(rsa_pki), server.port)
        assert response.status_code == 200 and "s_server" in response.text
        assert "Heartbeat" not in response.text
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


@needs_legacy
@needs_openssl
def test_legacy_server_without_chain_fails_validation(rsa_leaf: tuple[TestPKI, Issued]) -> None:
    rsa_pki, issued = rsa_leaf
    with (
        LegacyOpenSSLServer(issued, serve_chain=False) as server,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        handshake(trusting(rsa_pki), server.port)


@needs_legacy
@needs_openssl
@pytest.mark.parametrize("bits", [None, 1024])
def test_legacy_server_dh_group_size(rsa_leaf: tuple[TestPKI, Issued], bits: int | None) -> None:
    with LegacyOpenSSLServer(rsa_leaf[1], ["-cipher", "DHE-RSA-AES128-SHA"], dhparam_bits=bits) as server:
        out = s_client(server.port, "-tls1_2", "-cipher", "DHE-RSA-AES128-SHA:@SECLEVEL=0")
    if bits:
        assert f"Server Temp Key: DH, {bits} bits" in out
    else:  # 1.0.1e's built-in 512-bit group, which OpenSSL 3 refuses even at security level 0
        assert "dh key too small" in out and "Server Temp Key" not in out


@needs_legacy
def test_legacy_server_bad_arguments_raise_with_stderr(rsa_leaf: tuple[TestPKI, Issued]) -> None:
    server = LegacyOpenSSLServer(rsa_leaf[1], ["-no-such-flag"])
    with pytest.raises(RuntimeError, match=r"(?s)did not start.*no-such-flag"):
        server.start()
    assert server.proc is None


# --- tlslite-ng server -----------------------------------------------------------------------


def tlslite_handshake(
    port: int, *, version: tuple[int, int], ciphers: list[str]
) -> tuple[tuple[int, int], str]:
    """A tlslite-ng client pinned to one version: reaches SSL 3.0 and 3DES, which Debian's OpenSSL 3 cannot."""
    with warnings.catch_warnings():  # tlslite's package import pulls in the deprecated asyncore
        warnings.simplefilter("ignore", DeprecationWarning)
        from tlslite.api import HandshakeSettings, TLSConnection

    settings = HandshakeSettings()
    settings.minVersion = settings.maxVersion = version
    settings.cipherNames = ciphers
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        tls = TLSConnection(raw)
        tls.handshakeClientCert(settings=settings, serverName=HOST)
        result = (tls.version, tls.getCipherName())
        tls.close()
    return result


def test_tlslite_server_serves_page_headers_and_chain(pki: TestPKI, leaf: Issued) -> None:
    with TlsliteServer(leaf, response_headers=[("Strict-Transport-Security", "max-age=63072000")]) as server:
        assert server.url == f"https://good.test:{server.port}/"
        version, cert = handshake(trusting(pki), server.port)
        assert version == "TLSv1.2" and cert == leaf.cert
        response = get(trusting(pki), server.port)
        assert (
            response.status_code == 200
            and response.headers["strict-transport-security"] == "max-age=63072000"
        )
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_tlslite_server_ssl3_and_3des(leaf: Issued) -> None:
    with TlsliteServer(leaf, min_version="SSLv3", max_version="TLSv1.2", ciphers=["3des"]) as server:
        assert tlslite_handshake(server.port, version=(3, 0), ciphers=["3des"]) == ((3, 0), "3des")
        assert tlslite_handshake(server.port, version=(3, 3), ciphers=["3des"]) == ((3, 3), "3des")
        with pytest.raises(Exception, match=r"(?i)handshake_failure|insufficient"):
            tlslite_handshake(server.port, version=(3, 3), ciphers=["aes128"])


@needs_openssl
def test_tlslite_server_dh_group_and_renegotiation(pki: TestPKI, leaf: Issued) -> None:
    with TlsliteServer(leaf, key_exchange=["dhe_rsa"], dh_bits=1024) as server:
        # OpenSSL 3 offers the RFC 7919 groups; the server ignores them, as one older than that RFC does
        out = s_client(server.port, "-tls1_2", "-cipher", "DHE-RSA-AES128-SHA:@SECLEVEL=0")
        assert "Server Temp Key: DH, 1024 bits" in out and "Secure Renegotiation IS supported" in out
    with TlsliteServer(leaf, secure_renegotiation=False) as server:
        out = s_client(server.port, "-tls1_2", "-legacy_renegotiation")  # OpenSSL 3 refuses it otherwise
        assert "Secure Renegotiation IS NOT supported" in out and "Cipher is ECDHE-RSA" in out


def test_tlslite_server_bad_settings_raise_with_stderr(leaf: Issued) -> None:
    server = TlsliteServer(leaf, ciphers=["no-such-cipher"])
    with pytest.raises(RuntimeError, match=r"(?s)did not start.*no-such-cipher"):
        server.start()
    assert server.proc is None
    with pytest.raises(ValueError, match="unknown version"):
        TlsliteServer(leaf, max_version="TLSv9")


# --- what ships: the harness stays out of the wheel, the demo's site stays in -------------------

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_the_auditor_package_and_not_the_harness() -> None:
    """pyproject's package list (what `pip wheel .` packs) has auditor and its subpackages only, and
    no module of auditor/ imports the tests' harness."""
    import tomllib

    from setuptools import find_packages  # type: ignore[import-untyped]  # setuptools ships no types

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=include["include"])
    assert "auditor" in packages and "auditor.checks" in packages and "auditor.reports" in packages
    assert not [p for p in packages if not p.startswith("auditor")], packages
    assert "auditor.testing" not in packages and not (ROOT / "auditor" / "testing").exists()
    importing = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "auditor").rglob("*.py")
        if re.search(r"^\s*(from|import) tests\b", path.read_text(), re.MULTILINE)
    ]
    assert importing == []


def test_demo_site_serves_a_modern_and_a_legacy_site(tmp_path: Path) -> None:
    """What `auditor demo` starts: a policy-kept site behind a redirect, and a TLS 1.0 site."""
    from auditor.demo_site import DemoPKI, DemoSite

    demo_pki = DemoPKI(tmp_path)
    issued = demo_pki.issue("shop", hosts=("shop.demo.test",), policy="ov", subject_org="Demo Shop K.K.")
    assert issued.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Demo Shop K.K."
    good = DemoSite(issued, server_name="shop.demo.test", http_mode="redirect", body="<p>shop</p>")
    legacy = DemoSite(
        demo_pki.issue("legacy", hosts=("legacy.demo.test",), policy="dv"),
        minimum_version=ssl.TLSVersion.TLSv1,
        maximum_version=ssl.TLSVersion.TLSv1,
        server_name="legacy.demo.test",
    )
    ctx = ssl.create_default_context(cafile=str(demo_pki.root_path))
    with good, legacy:
        version, leaf_cert = handshake(ctx, good.port, "shop.demo.test")
        assert version == "TLSv1.3" and leaf_cert == issued.cert
        with httpx.Client(trust_env=False) as client:
            answer = client.get(f"http://127.0.0.1:{good.http_port}/x")
        assert answer.status_code == 301
        assert answer.headers["location"] == f"https://127.0.0.1:{good.port}/x"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = ssl.create_default_context(cafile=str(demo_pki.root_path))
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
        assert handshake(old, legacy.port, "legacy.demo.test")[0] == "TLSv1"
