"""What `auditor demo` serves: a throwaway private CA and real HTTPS sites on 127.0.0.1.

It lives in the package because the demo ships with the tool; the servers that only tests need
(nginx, openssl s_server, tlslite, Node, SHA-1/MD5 certificates) live in tests/harness/.
"""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

POLICY_OIDS = {"dv": "2.23.140.1.2.1", "ov": "2.23.140.1.2.2", "ev": "2.23.140.1.1"}
ANY_POLICY = "2.5.29.32.0"
DEFAULT_BODY = "<!doctype html><html><head><title>test site</title></head><body><p>hello</p></body></html>"
HTTP_MODES = ("redirect", "content", "none")


@dataclass(frozen=True)
class Issued:
    """A leaf certificate and its files, as a server loads them."""

    name: str
    cert_path: Path  # leaf PEM only
    key_path: Path  # private key PEM (unencrypted PKCS#8)
    chain_path: Path  # leaf + intermediate: what a correctly configured server serves
    cert: x509.Certificate


def pem_key(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def root_builder(
    key: CertificateIssuerPrivateKeyTypes, subject: x509.Name, now: datetime
) -> x509.CertificateBuilder:
    """A self-signed root CA, valid ten years from yesterday (unsigned: the caller picks the hash)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def intermediate_builder(
    root_key: CertificateIssuerPrivateKeyTypes,
    root_subject: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    subject: x509.Name,
    now: datetime,
) -> x509.CertificateBuilder:
    """An intermediate CA for server certificates under the root, with anyPolicy so leaves carrying
    the CA/B policy OIDs validate under policy checking too (unsigned: the caller picks the hash)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root_subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(ANY_POLICY), None)]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
    )


class DemoPKI:
    """A root CA (P-384) and an intermediate CA (P-256, anyPolicy) in `directory`, issuing RSA leaves.

    `root_path` is the CA bundle the demo's targets name, so their certificates validate.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        root_subject = _name("Auditor Test Root CA", "Auditor Test")
        self.root = root_builder(self.root_key, root_subject, now).sign(self.root_key, hashes.SHA384())
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = intermediate_builder(
            self.root_key,
            root_subject,
            self.intermediate_key,
            _name("Auditor Test Intermediate CA", "Auditor Test"),
            now,
        ).sign(self.root_key, hashes.SHA384())
        self.root_path = self.directory / "root.pem"
        self.root_path.write_bytes(pem(self.root))

    def issue(
        self,
        name: str,
        *,
        hosts: Sequence[str],
        days_valid: int = 90,
        policy: str = "ov",
        subject_org: str | None = None,
    ) -> Issued:
        """An RSA 2048 leaf for `hosts` (CN = the first), signed by the intermediate with SHA-256."""
        now = datetime.now(UTC)
        leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        # digitalSignature + keyEncipherment (RSA key exchange)
        usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0], subject_org))
            .issuer_name(self.intermediate.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=days_valid))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(x509.ObjectIdentifier(POLICY_OIDS[policy]), None)]
                ),
                critical=False,
            )
            .sign(self.intermediate_key, hashes.SHA256())
        )
        key_path = self.directory / f"{name}.key"
        key_path.write_bytes(pem_key(leaf_key))
        cert_path = self.directory / f"{name}.pem"
        cert_path.write_bytes(pem(cert))
        chain_path = self.directory / f"{name}.chain.pem"
        chain_path.write_bytes(pem(cert) + pem(self.intermediate))
        return Issued(name=name, cert_path=cert_path, key_path=key_path, chain_path=chain_path, cert=cert)


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # scanners open many connections at once

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # scanners abort hundreds of handshakes: not an error worth printing


class _QuietHTTPServer6(_QuietHTTPServer):
    address_family = socket.AF_INET6


def _host_without_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class DemoSite:
    """An HTTPS server on the stdlib (`ssl` + `http.server`), with an optional plain-HTTP listener
    that redirects to it (`http_mode="redirect"`) or serves the same page (`"content"`).

    The TLS handshake runs lazily in each connection's thread, so a client that stalls or sends
    garbage costs one thread (and a timeout) and never blocks accept(). A context manager.
    """

    http_modes: ClassVar[tuple[str, ...]] = HTTP_MODES

    def __init__(
        self,
        issued: Issued,
        *,
        minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
        maximum_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
        ciphers: str | None = None,
        response_headers: Sequence[tuple[str, str]] = (),
        body: str = DEFAULT_BODY,
        status: int = 200,
        http_mode: str = "none",
        server_name: str = "good.test",
        bind: str = "127.0.0.1",
        client_timeout: float = 30.0,
    ) -> None:
        if http_mode not in self.http_modes:
            raise ValueError(f"http_mode must be one of {self.http_modes}, not {http_mode!r}")
        self.issued, self.server_name, self.bind = issued, server_name, bind
        self.minimum_version, self.maximum_version, self.ciphers = minimum_version, maximum_version, ciphers
        self.response_headers, self.body, self.status = list(response_headers), body, status
        self.http_mode, self.client_timeout = http_mode, client_timeout
        self.context = self._context()
        self._servers: list[ThreadingHTTPServer] = []
        self.port = 0
        self.http_port: int | None = None

    def _legacy(self) -> bool:
        """Does this site need OpenSSL 3's security level 0 (TLS 1.0/1.1, weak suites)?"""
        return self.minimum_version < ssl.TLSVersion.TLSv1_2

    def _context(self) -> ssl.SSLContext:
        """The server's TLS context: its own suite order preferred, the full chain served."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self._legacy():
            base = (self.ciphers or "DEFAULT").replace(":@SECLEVEL=0", "").replace("@SECLEVEL=0", "")
            context.set_ciphers(base + ":@SECLEVEL=0")
        elif self.ciphers:
            context.set_ciphers(self.ciphers)
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is what a legacy site shows
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = self.minimum_version
            context.maximum_version = self.maximum_version
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        context.load_cert_chain(self._certificate_file(), self.issued.key_path)
        return context

    def _certificate_file(self) -> Path:
        """What the server sends: the leaf and its intermediate."""
        return self.issued.chain_path

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    @property
    def http_url(self) -> str | None:
        return f"http://{self.server_name}:{self.http_port}/" if self.http_port else None

    def _handler(self, secure: bool) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = site.client_timeout  # also bounds the lazy TLS handshake

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _respond(self, send_body: bool) -> None:
                if not secure and site.http_mode == "redirect":
                    self.send_response(301)
                    host = _host_without_port(self.headers.get("Host") or site.server_name)
                    self.send_header("Location", f"https://{host}:{site.port}{self.path}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = site.body.encode()
                self.send_response(site.status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in site.response_headers:
                    self.send_header(name, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self._respond(send_body=True)

            def do_HEAD(self) -> None:
                self._respond(send_body=False)

        return Handler

    def start(self) -> None:
        if self._servers:
            return
        server_class = _QuietHTTPServer6 if ":" in self.bind else _QuietHTTPServer
        https = server_class((self.bind, 0), self._handler(True))
        https.socket = self.context.wrap_socket(https.socket, server_side=True, do_handshake_on_connect=False)
        self.port = https.server_address[1]
        self._servers.append(https)
        if self.http_mode != "none":
            plain = server_class((self.bind, 0), self._handler(False))
            self.http_port = plain.server_address[1]
            self._servers.append(plain)
        for server in self._servers:  # listening already: no need to poll before returning
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                daemon=True,
                name=f"{type(self).__name__}:{server.server_address[1]}",
            ).start()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
