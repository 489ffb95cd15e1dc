"""OCSP for the tests: signed responses built with cryptography (to staple with nginx's
`ssl_stapling_file`), and a real OCSP responder over HTTP on 127.0.0.1 that counts its requests.

Responses are signed by the test PKI's intermediate (the leaves' issuer) or by a delegated
responder certificate it issues, exactly as a CA's responder does.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.harness.pki import PrivateKey, TestPKI

Status = Literal["good", "revoked", "unknown"]
_STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


def delegated_responder(pki: TestPKI, *, ocsp_signing: bool = True) -> tuple[x509.Certificate, PrivateKey]:
    """A responder certificate the intermediate issues (id-kp-OCSPSigning unless `ocsp_signing=False`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    usage = [ExtendedKeyUsageOID.OCSP_SIGNING if ocsp_signing else ExtendedKeyUsageOID.SERVER_AUTH]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Auditor Test OCSP Responder")]))
        .issuer_name(pki.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .sign(pki.intermediate_key, hashes.SHA256())
    )
    return cert, key


def _signer(
    pki: TestPKI,
    responder: tuple[x509.Certificate, PrivateKey] | None,
) -> tuple[x509.Certificate, PrivateKey]:
    return responder if responder is not None else (pki.intermediate, pki.intermediate_key)


def _sign(
    builder: ocsp.OCSPResponseBuilder,
    pki: TestPKI,
    responder: tuple[x509.Certificate, PrivateKey] | None,
    tamper: bool = False,
) -> bytes:
    cert, key = _signer(pki, responder)
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, cert)
    if responder is not None:
        builder = builder.certificates([cert])
    der = builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)
    if tamper:  # without included certificates the signature ends the DER: flip its last bit
        assert responder is None
        der = der[:-1] + bytes([der[-1] ^ 1])
    return der


def ocsp_response(
    pki: TestPKI,
    leaf: x509.Certificate,
    status: Status = "good",
    *,
    reason: x509.ReasonFlags | None = x509.ReasonFlags.key_compromise,
    this_update: datetime | None = None,
    next_update: datetime | None = None,
    responder: tuple[x509.Certificate, PrivateKey] | None = None,
    tamper: bool = False,
) -> bytes:
    """A DER OCSP response about `leaf` (issued by the PKI's intermediate), valid for a day by default.
    `responder`: sign as that delegated responder; `tamper`: break the signature (a forgery)."""
    now = datetime.now(UTC)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf,
        issuer=pki.intermediate,
        algorithm=hashes.SHA1(),  # noqa: S303  # the CertID hash every responder accepts (RFC 6960)
        cert_status=_STATUS[status],
        this_update=this_update or now - timedelta(minutes=10),
        next_update=next_update or now + timedelta(days=1),
        revocation_time=now - timedelta(days=1) if status == "revoked" else None,
        revocation_reason=reason if status == "revoked" else None,
    )
    return _sign(builder, pki, responder, tamper)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class OCSPResponder:
    """A real OCSP responder on 127.0.0.1 (POST, RFC 6960 appendix A.1) for the PKI's intermediate.

    `statuses` maps a leaf serial number to its status (others get `default`); `delay` seconds
    pass before each answer (a slow responder); `garbage=True` answers bytes that are no OCSP
    response. `requests` counts the requests received, so a test can prove none was made.
    """

    def __init__(
        self, pki: TestPKI, *, default: Status = "good", delay: float = 0.0, garbage: bool = False
    ) -> None:
        self.pki, self.default, self.delay, self.garbage = pki, default, delay, garbage
        self.statuses: dict[int, Status] = {}
        self.requests = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("start() the responder first: its port is chosen then")
        return f"http://127.0.0.1:{self._server.server_address[1]}/ocsp"

    def answer(self, body: bytes) -> bytes:
        """The DER response to one DER request."""
        if self.garbage:
            return b"this is not an OCSP response"
        try:
            request = ocsp.load_der_ocsp_request(body)
        except ValueError:
            unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            )
            return unsuccessful.public_bytes(Encoding.DER)
        status = self.statuses.get(request.serial_number, self.default)
        now = datetime.now(UTC)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=_STATUS[status],
            this_update=now - timedelta(minutes=10),
            next_update=now + timedelta(days=1),
            revocation_time=now - timedelta(days=1) if status == "revoked" else None,
            revocation_reason=x509.ReasonFlags.key_compromise if status == "revoked" else None,
        )
        return _sign(builder, self.pki, None)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        responder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                with responder._lock:
                    responder.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if responder.delay:
                    time.sleep(responder.delay)
                data = responder.answer(body)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/ocsp-response")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up waiting (the slow-responder test)
                    pass

        return Handler

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = _Server(("127.0.0.1", 0), self._handler())
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name="OCSPResponder",
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
