"""cryptography certificates -> the model's Certificate: only the facts the policy judges."""

from __future__ import annotations

from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

from auditor.model import Certificate

E = TypeVar("E", bound=x509.ExtensionType)


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except Exception:  # noqa: BLE001  (undecodable attribute values from a hostile server)
        return repr(name)


def _key(cert: x509.Certificate) -> tuple[str, int, str | None]:
    try:
        key = cert.public_key()
    except Exception:  # noqa: BLE001  (a key type cryptography cannot load is reported, not raised)
        return "unknown", 0, None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    return type(key).__name__, 0, None


def _extension(cert: x509.Certificate, kind: type[E]) -> E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def describe_certificate(cert: x509.Certificate) -> Certificate:
    key_type, key_bits, curve = _key(cert)
    sans: list[str] = []
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is not None:
        sans = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    policies = _extension(cert, x509.CertificatePolicies)
    policy_oids = [p.policy_identifier.dotted_string for p in policies] if policies else []
    constraints = _extension(cert, x509.BasicConstraints)
    access = _extension(cert, x509.AuthorityInformationAccess)
    ca_issuers = [
        d.access_location.value
        for d in access or []
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]
    try:
        hash_alg = cert.signature_hash_algorithm
        signature_hash = hash_alg.name if hash_alg else None
    except Exception:  # noqa: BLE001  (an algorithm cryptography does not know, e.g. MD2)
        signature_hash = "unknown"
    try:
        sig_name = cert.signature_algorithm_oid._name  # noqa: SLF001 - the readable name
    except Exception:  # noqa: BLE001  (no readable name: the dotted OID)
        sig_name = cert.signature_algorithm_oid.dotted_string
    return Certificate(
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        signature_algorithm=sig_name,
        signature_hash=signature_hash,
        key_type=key_type,
        key_bits=key_bits,
        key_curve=curve,
        subject_alt_names=sans,
        policy_oids=policy_oids,
        ca_issuers=ca_issuers,
        is_ca=bool(constraints and constraints.ca),
        self_signed=cert.subject == cert.issuer,
        sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
    )
