"""Is a served leaf revoked? Read its stapled OCSP response, and ask the OCSP responder the
certificate names (AIA) when no stapled answer is usable.

The responder query runs in daemon threads beside the rest of the TLS scan, starting as soon as
the certificate is known; `RevocationLookup.apply` waits for it at most `timeout` seconds after it
began, so a slow or dead responder is reported (status "error"), never a blocked audit. Requests
go only to the URL in the certificate (no proxy, no redirect), and only for a chain that Mozilla or
the configured CA bundle trusts: the URL was then chosen by a CA, not by the audited server, which
could otherwise make the auditor POST to any address. An answer counts only when verified (signed by
the issuer or a responder it delegated to, for this certificate, current).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import nassl.ocsp_response
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID
from nassl import _nassl
from sslyze.plugins.certificate_info.trust_stores.trust_store import TrustStore
from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import TrustStoresRepository

from auditor.model import Attempt, AttemptErrorReason, CertificateDeployment, RevocationStatus
from auditor.scan.attempts import from_http, summary

Reason = AttemptErrorReason

_nassl_verify = nassl.ocsp_response.verify_ocsp_response


def _verify_stapled_for_sslyze(ocsp_response: _nassl.OCSP_RESPONSE, trust_store_path: Path) -> None:
    """sslyze 6.3 catches only "certificate verify error" from nassl's check of a stapled response
    (sslyze issue 191); a bad signature ("signature failure") escaped and lost the whole
    certificate_info result, so a server stapling a broken response hid its certificates. Any
    OpenSSL failure now means "not trusted" there; the response is judged here anyway."""
    try:
        _nassl_verify(ocsp_response, trust_store_path)
    except _nassl.OpenSSLError as exc:
        raise nassl.ocsp_response.OcspResponseNotTrustedError(str(exc), trust_store_path) from None


nassl.ocsp_response.verify_ocsp_response = _verify_stapled_for_sslyze

MAX_RESPONSE_BYTES = 64 * 1024  # real OCSP responses are 1-5 KiB
CLOCK_SKEW = timedelta(minutes=5)
USER_AGENT = "tls-posture-auditor (OCSP revocation check)"

# A served chain (leaf first) and the DER of the OCSP response stapled with it, if any.
Served = tuple[list[x509.Certificate], bytes | None]


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The OCSP responder URLs in the certificate's Authority Information Access extension."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def find_issuer(leaf: x509.Certificate, candidates: Iterable[x509.Certificate]) -> x509.Certificate | None:
    """The certificate whose key signed `leaf` (by name and by signature)."""
    for candidate in candidates:
        if candidate.subject != leaf.issuer:
            continue
        try:
            leaf.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return candidate
    return None


def _verify_signature(
    key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _names_signer(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """Does the response's ResponderID (by name or by key hash) designate `cert`?"""
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_id = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest  # SHA-1 of the key bits
    return response.responder_key_hash == key_id


def _signer_problem(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime) -> str | None:
    """Why the response's signature cannot be trusted, or None when the issuer or a responder it
    delegated to (id-kp-OCSPSigning, issued by the issuer, valid now; RFC 6960 section 4.2.2.2) signed it."""
    try:
        algorithm = response.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return f"unsupported signature algorithm {response.signature_algorithm_oid.dotted_string}"
    if _names_signer(response, issuer):
        if _verify_signature(issuer.public_key(), response.signature, response.tbs_response_bytes, algorithm):
            return None
        return "bad signature (the responder is the issuer, but its key did not sign this response)"
    delegates = [c for c in response.certificates if _names_signer(response, c)]
    if not delegates:
        return "signed by a responder that is neither the issuer nor a certificate the response includes"
    for delegate in delegates:
        if find_issuer(delegate, [issuer]) is None:
            return (
                f"the responder certificate {delegate.subject.rfc4514_string()} was not issued by the issuer"
            )
        try:
            usage = list(delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        except (x509.ExtensionNotFound, ValueError):
            usage = []
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usage:
            return "the responder certificate lacks the OCSP signing extended key usage"
        if not delegate.not_valid_before_utc <= now <= delegate.not_valid_after_utc:
            return "the responder certificate is not valid now"
        if _verify_signature(
            delegate.public_key(), response.signature, response.tbs_response_bytes, algorithm
        ):
            return None
    return "bad signature (the delegated responder's key did not sign this response)"


def _single_for(
    response: ocsp.OCSPResponse, leaf: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse | None:
    """The response's entry for `leaf` (serial, issuer name hash and key hash all matching)."""
    for single in response.responses:
        if single.serial_number != leaf.serial_number:
            continue
        try:  # the request builder computes the CertID hashes with the response's own algorithm
            expected = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, single.hash_algorithm).build()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if (single.issuer_name_hash, single.issuer_key_hash) == (
            expected.issuer_name_hash,
            expected.issuer_key_hash,
        ):
            return single
    return None


def judge_response(
    der: bytes,
    leaf: x509.Certificate,
    issuer: x509.Certificate | None,
    source: Literal["stapled", "responder"],
    now: datetime | None = None,
    responder: str | None = None,
) -> RevocationStatus:
    """One OCSP response, verified, as a RevocationStatus."""
    now = now or datetime.now(UTC)

    def error(reason: str) -> RevocationStatus:
        return RevocationStatus(source=source, status="error", reason=reason, responder=responder)

    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        return error(f"not a valid OCSP response ({exc})"[:200])
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return error(f"the responder answered {response.response_status.name.lower()}")
    if issuer is None:
        return error("the issuer's certificate was not sent, so the response cannot be verified")
    try:
        single = _single_for(response, leaf, issuer)
        if single is None:
            return error("the response is not about this certificate (no matching certificate id)")
        if (problem := _signer_problem(response, issuer, now)) is not None:
            return error(problem)
        this_update, next_update = single.this_update_utc, single.next_update_utc
    except ValueError as exc:  # a malformed field cryptography parses lazily
        return error(f"malformed OCSP response ({exc})"[:200])
    if this_update > now + CLOCK_SKEW:
        return error(f"thisUpdate {this_update:%Y-%m-%d %H:%M} UTC is in the future")
    if next_update is not None and next_update < now - CLOCK_SKEW:
        return error(f"stale response: nextUpdate {next_update:%Y-%m-%d %H:%M} UTC has passed")
    status = single.certificate_status
    revoked = status is ocsp.OCSPCertStatus.REVOKED
    reason = None
    if revoked:
        flag = single.revocation_reason
        reason = "unspecified" if flag is None else _camel(flag.name)
    return RevocationStatus(
        source=source,
        status="revoked" if revoked else "good" if status is ocsp.OCSPCertStatus.GOOD else "unknown",
        reason=reason
        if revoked
        else (
            "the responder does not know this certificate" if status is ocsp.OCSPCertStatus.UNKNOWN else None
        ),
        responder=responder,
        produced_at=response.produced_at_utc,
        this_update=this_update,
        next_update=next_update,
        revoked_at=single.revocation_time_utc if revoked else None,
    )


def _camel(name: str) -> str:
    """ReasonFlags.key_compromise -> keyCompromise, the RFC 5280 spelling."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def query_responder(
    url: str, leaf: x509.Certificate, issuer: x509.Certificate, timeout: float, deadline: float | None = None
) -> RevocationStatus:
    """POST an OCSP request to `url` (RFC 6960 appendix A.1) and judge the answer. Never raises."""
    import httpx  # lazy: only a certificate without a usable stapled answer needs it (~60 ms to import)

    deadline = deadline if deadline is not None else time.monotonic() + timeout

    def error(reason: str, attempt: Attempt | None = None) -> RevocationStatus:
        return RevocationStatus(
            source="responder", status="error", reason=reason, responder=url, attempt=attempt
        )

    def unanswered(kind: Reason, reason: str) -> RevocationStatus:
        """No usable answer at all: the question stays open (typed for the reader, not judged)."""
        return error(reason, Attempt.failed(kind, reason))

    if not url.lower().startswith(("http://", "https://")):
        return error("the OCSP URL is not http(s)")
    request = (
        ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()  # noqa: S303
    )  # SHA-1 CertID: RFC 5019
    body = bytearray()
    try:
        with (
            httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout) as client,
            client.stream(
                "POST",
                url,
                content=request.public_bytes(serialization.Encoding.DER),
                headers={
                    "Content-Type": "application/ocsp-request",
                    "Accept": "application/ocsp-response",
                    "User-Agent": USER_AGENT,
                },
            ) as reply,
        ):
            if reply.status_code != 200:
                return unanswered(Reason.MALFORMED_ANSWER, f"HTTP {reply.status_code} from the responder")
            for chunk in reply.iter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    return unanswered(
                        Reason.MALFORMED_ANSWER, f"response larger than {MAX_RESPONSE_BYTES // 1024} KiB"
                    )
                if time.monotonic() > deadline:
                    return unanswered(Reason.TIMEOUT, f"no complete answer within {timeout:g} s")
    except (httpx.HTTPError, OSError, ValueError) as exc:
        attempt = from_http(exc)  # a ValueError is an unusable URL: not the responder's doing either
        if isinstance(exc, httpx.TimeoutException):
            return error(f"no answer within {timeout:g} s", attempt)
        return error(f"unreachable ({type(exc).__name__}: {exc})"[:200], attempt)
    return judge_response(bytes(body), leaf, issuer, "responder", responder=url)


@dataclass
class _LeafCheck:
    """The revocation answers for one served leaf, filled in by its own thread."""

    url: str | None = None
    results: list[RevocationStatus] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class RevocationLookup:
    """Revocation of every served leaf, found in daemon threads while the rest of the scan runs."""

    def __init__(
        self, *, host: str, timeout: float, query_responders: bool = True, ca_bundle: Path | None = None
    ) -> None:
        """`host`: the name the chain must be valid for; `ca_bundle`: the target's private CA, trusted
        beside Mozilla's store and searched for a leaf's issuer."""
        self.host, self.timeout, self.query_responders, self.ca_bundle = (
            host,
            timeout,
            query_responders,
            ca_bundle,
        )
        self.extra_issuers = bundle_certificates(ca_bundle)
        self._checks: dict[str, _LeafCheck] = {}  # leaf SHA-256 (hex) -> its answers
        self._known = threading.Event()  # the served chains are known and their checks started
        self._started: float | None = None

    def start(self, served: Callable[[], list[Served]]) -> None:
        """Call `served()` (it may wait for the certificate jobs) in a thread, then check each leaf."""

        def run() -> None:
            try:
                chains = served()
            except Exception:  # noqa: BLE001  (the certificate jobs failed: TlsEvidence.attempts says why)
                chains = []
            self._started = time.monotonic()
            for chain, stapled in chains:
                if not chain:
                    continue
                key = chain[0].fingerprint(hashes.SHA256()).hex()
                if key in self._checks:
                    continue
                check = self._checks[key] = _LeafCheck()
                threading.Thread(
                    target=self._check, args=(check, chain, stapled), daemon=True, name="ocsp"
                ).start()
            self._known.set()

        threading.Thread(target=run, daemon=True, name="ocsp-start").start()

    def _check(self, check: _LeafCheck, chain: list[x509.Certificate], stapled: bytes | None) -> None:
        try:
            leaf = chain[0]
            issuer = find_issuer(leaf, [*chain[1:], *self.extra_issuers])
            if stapled is not None:
                check.results.append(judge_response(stapled, leaf, issuer, "stapled"))
                if check.results[-1].status != "error":
                    return  # a verified stapled answer is what browsers use: no query
            urls = ocsp_urls(leaf)
            if not urls:
                check.results.append(
                    RevocationStatus(
                        source="responder",
                        status="not_checked",
                        reason="the certificate names no OCSP responder",
                    )
                )
            elif not self.query_responders:
                check.results.append(
                    RevocationStatus(
                        source="responder",
                        status="not_checked",
                        responder=urls[0],
                        reason="OCSP queries are off ([scan] ocsp = false)",
                    )
                )
            elif issuer is None:
                check.results.append(
                    RevocationStatus(
                        source="responder",
                        status="not_checked",
                        responder=urls[0],
                        reason="the issuer's certificate was not sent, so no OCSP request can be made",
                    )
                )
            elif not self._trusted(chain):
                check.results.append(
                    RevocationStatus(
                        source="responder",
                        status="not_checked",
                        responder=urls[0],
                        reason="the chain is not trusted (Mozilla or the CA bundle) for this host, so its OCSP "
                        "URL was not chosen by a trusted CA: not asked",
                    )
                )
            else:
                check.url = urls[0]
                check.results.append(
                    query_responder(
                        urls[0], leaf, issuer, self.timeout, deadline=time.monotonic() + self.timeout
                    )
                )
        except Exception as exc:  # noqa: BLE001  (a certificate cryptography cannot handle: reported, never raised)
            check.results.append(
                RevocationStatus(
                    source="responder", status="error", reason=f"{type(exc).__name__}: {exc}"[:200]
                )
            )
        finally:
            check.done.set()

    def _trusted(self, chain: list[x509.Certificate]) -> bool:
        """Does Mozilla's store or the CA bundle validate `chain` for the host (sslyze's own check)?"""
        try:
            subject: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(self.host))
        except ValueError:
            subject = x509.DNSName(self.host)
        pem = [c.public_bytes(serialization.Encoding.PEM).decode() for c in chain]
        stores = [TrustStoresRepository.get_default().get_main_store()]
        if self.extra_issuers and self.ca_bundle is not None:
            stores.append(TrustStore(self.ca_bundle, "custom", "N/A"))
        for store in stores:
            try:
                if store.verify_certificate_chain(pem, subject).was_validation_successful:  # type: ignore[arg-type]
                    return True
            except Exception:  # noqa: BLE001, S112 - a chain the verifier cannot parse is not trusted
                continue
        return False

    def apply(self, deployments: Sequence[CertificateDeployment]) -> None:
        """Set each deployment's `revocation`, waiting at most `timeout` s after the checks began."""
        if not self._known.wait(self.timeout):
            return
        deadline = (self._started or time.monotonic()) + self.timeout + 0.5
        for deployment in deployments:
            if not deployment.received_chain:
                continue
            check = self._checks.get(deployment.received_chain[0].sha256_fingerprint)
            if check is None:
                continue
            finished = check.done.wait(max(0.0, deadline - time.monotonic()))
            results = list(check.results)
            if not finished:
                why = f"no answer within {self.timeout:g} s"
                results.append(
                    RevocationStatus(
                        source="responder",
                        status="error",
                        responder=check.url,
                        reason=why,
                        attempt=Attempt.failed(Reason.TIMEOUT, why),
                    )
                )
            deployment.revocation = results


def bundle_certificates(path: Path | None) -> list[x509.Certificate]:
    """The certificates of a CA bundle (issuer candidates for a leaf the server sent alone)."""
    if path is None:
        return []
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return []


def served_from_jobs(futures: object) -> Callable[[], list[Served]]:
    """Served chains from sslyze's certificate_info job futures (fast engine), once they finish."""

    def served() -> list[Served]:
        if not isinstance(futures, list):  # queuing failed (an attempt, not futures)
            return []
        chains: list[Served] = []
        for future in futures:
            if not isinstance(future, Future):
                continue
            try:
                pem_chain, stapled, _ca_file, sni_used = future.result().get_result()
            except Exception:  # noqa: BLE001, S112 - a failed handshake (e.g. no RSA suite): other jobs cover it
                continue
            if sni_used and pem_chain:
                chain = [x509.load_pem_x509_certificate(pem.encode()) for pem in pem_chain]
                chains.append((chain, stapled.as_der_bytes() if stapled is not None else None))
        return chains

    return served


def served_from_result(cert_info: Any) -> Callable[[], list[Served]]:
    """Served chains from a finished sslyze CertificateInfoScanResult (thorough engine)."""

    def served() -> list[Served]:
        if cert_info is None:
            return []
        return [
            (
                list(d.received_certificate_chain),
                d.ocsp_response.public_bytes(serialization.Encoding.DER)
                if d.ocsp_response is not None
                else None,
            )
            for d in cert_info.certificate_deployments
        ]

    return served


def attempt_of(deployments: Sequence[CertificateDeployment]) -> Attempt | None:
    """The OCSP queries' attempt (Probe.OCSP): None when every responder asked gave an answer (or none
    was asked); else the first failure's reason, naming each responder that gave none."""
    return summary((r.responder or "responder", r.attempt) for d in deployments for r in d.revocation)
