"""A throwaway PKI (root -> intermediate -> leaves) for the tests and the demo.

Real certificates, made with `cryptography`, so the audited servers are real TLS servers with
exactly the defects a test needs: expired, expiring, SHA-1, DV/OV/EV, wrong host, self-signed.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

POLICY_OIDS = {"dv": "2.23.140.1.2.1", "ov": "2.23.140.1.2.2", "ev": "2.23.140.1.1"}
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@dataclass(frozen=True)
class Issued:
    name: str
    cert_path: Path  # leaf PEM only
    key_path: Path
    chain_path: Path  # leaf + intermediate: what a correctly configured server serves
    cert: x509.Certificate


def _key(kind: str):  # noqa: ANN202
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {kind!r}")


def _pem_key(key) -> bytes:  # noqa: ANN001
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


class TestPKI:
    """A root CA and an intermediate CA in `directory`; issues leaves for tests and the demo."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, *, root_name: str = "Auditor Test Root CA",
                 intermediate_name: str = "Auditor Test Intermediate CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.now(timezone.utc)
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        root_subject = _name(root_name, "Auditor Test")
        self.root = (
            x509.CertificateBuilder()
            .subject_name(root_subject).issuer_name(root_subject)
            .public_key(self.root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key()), critical=False)
            .sign(self.root_key, hashes.SHA384())
        )
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name(intermediate_name, "Auditor Test")).issuer_name(root_subject)
            .public_key(self.intermediate_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"),
                                                                            None)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.intermediate_key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()),
                           critical=False)
            .sign(self.root_key, hashes.SHA384())
        )
        self.root_path = self.directory / "root.pem"
        self.root_path.write_bytes(_pem(self.root))
        self.intermediate_path = self.directory / "intermediate.pem"
        self.intermediate_path.write_bytes(_pem(self.intermediate))
        self.intermediate_key_path = self.directory / "intermediate.key"
        self.intermediate_key_path.write_bytes(_pem_key(self.intermediate_key))

    def issue(self, name: str, *, hosts: Sequence[str] = ("good.test",), days_valid: int = 90,
              not_before: datetime | None = None, not_after: datetime | None = None, key: str = "rsa2048",
              hash: str = "sha256", policy: str | None = "ov", subject_cn: str | None = None,  # noqa: A002
              subject_org: str | None = None, san: bool = True, issuer: str = "intermediate") -> Issued:
        """Issue a leaf. `hash="sha1"` goes through the openssl CLI (cryptography refuses SHA-1)."""
        now = datetime.now(timezone.utc)
        not_before = not_before or now - timedelta(hours=1)
        not_after = not_after or now + timedelta(days=days_valid)
        leaf_key = _key(key)
        subject = _name(subject_cn or (hosts[0] if hosts else name), subject_org)
        if issuer == "self":
            signer_key, issuer_name, issuer_pub = leaf_key, subject, leaf_key.public_key()
        elif issuer == "root":
            signer_key, issuer_name, issuer_pub = self.root_key, self.root.subject, self.root_key.public_key()
        else:
            signer_key, issuer_name = self.intermediate_key, self.intermediate.subject
            issuer_pub = self.intermediate_key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer_name)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False)
        )
        if isinstance(leaf_key, rsa.RSAPrivateKey):
            usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
        else:
            usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
        if san and hosts:
            builder = builder.add_extension(_san(hosts), critical=False)
        if policy is not None:
            builder = builder.add_extension(x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(POLICY_OIDS[policy]), None)]), critical=False)
        key_path = self.directory / f"{name}.key"
        key_path.write_bytes(_pem_key(leaf_key))
        cert_path = self.directory / f"{name}.pem"
        if hash == "sha1":
            cert = self._sign_sha1(builder, leaf_key, name)
        else:
            algorithm = None if isinstance(signer_key, ed25519.Ed25519PrivateKey) else _HASHES[hash]()
            cert = builder.sign(signer_key, algorithm)
        cert_path.write_bytes(_pem(cert))
        chain_path = self.directory / f"{name}.chain.pem"
        chain = _pem(cert) + (_pem(self.intermediate) if issuer == "intermediate" else b"")
        chain_path.write_bytes(chain)
        return Issued(name=name, cert_path=cert_path, key_path=key_path, chain_path=chain_path, cert=cert)

    def _sign_sha1(self, builder: x509.CertificateBuilder, leaf_key, name: str) -> x509.Certificate:  # noqa: ANN001
        """Sign the leaf with SHA-1: a CSR carrying the builder's extensions, signed by the openssl CLI."""
        draft = builder.sign(self.intermediate_key, hashes.SHA256())
        csr = x509.CertificateSigningRequestBuilder().subject_name(draft.subject)
        for ext in draft.extensions:
            if ext.oid not in (x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER,):
                csr = csr.add_extension(ext.value, critical=ext.critical)
        csr_path = self.directory / f"{name}.csr"
        csr_path.write_bytes(csr.sign(leaf_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        out = self.directory / f"{name}.sha1.pem"
        days = max(1, (draft.not_valid_after_utc - datetime.now(timezone.utc)).days)
        proc = subprocess.run(
            ["openssl", "x509", "-req", "-in", str(csr_path), "-CA", str(self.intermediate_path),
             "-CAkey", str(self.intermediate_key_path), "-sha1", "-days", str(days), "-set_serial",
             str(draft.serial_number), "-copy_extensions", "copyall", "-out", str(out)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"openssl could not sign with SHA-1: {proc.stderr.strip()}")
        return x509.load_pem_x509_certificate(out.read_bytes())
