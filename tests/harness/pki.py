"""A throwaway PKI (root -> intermediate -> leaves) for the tests (the demo has its own, smaller one:
auditor.demo_site.DemoPKI).

Real certificates, made with `cryptography`, so the audited servers are real TLS servers with
exactly the defects a test needs: expired, expiring, SHA-1, DV/OV/EV, wrong host, self-signed.
"""

from __future__ import annotations

import ipaddress
import subprocess
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from auditor.demo_site import (
    POLICY_OIDS,
    Issued,
    intermediate_builder,
    pem,
    pem_key,
    root_builder,
)

__all__ = ["KEY_TYPES", "POLICY_OIDS", "Issued", "PrivateKey", "TestPKI"]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

KEY_TYPES = ("rsa768", "rsa1024", "rsa2048", "rsa4096", "p256", "p384", "ed25519")
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# DER AlgorithmIdentifiers for SHA-1 and MD5 signatures, which cryptography's builders refuse to produce.
_LEGACY_ALGORITHM_ID = {
    ("sha1", "rsa"): bytes.fromhex(
        "300d06092a864886f70d0101050500"
    ),  # sha1WithRSAEncryption, NULL parameters
    ("sha1", "ec"): bytes.fromhex("300906072a8648ce3d0401"),  # ecdsa-with-SHA1, no parameters
    ("md5", "rsa"): bytes.fromhex("300d06092a864886f70d0101040500"),  # md5WithRSAEncryption, NULL parameters
}
_LEGACY_HASHES: dict[str, type[hashes.SHA1 | hashes.MD5]] = {
    "sha1": hashes.SHA1,
    "md5": hashes.MD5,
}


def _key(kind: str) -> PrivateKey:
    if kind == "rsa768":  # below cryptography's 1024-bit floor: the openssl CLI still makes one
        pem = subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:768"],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    if kind in ("rsa1024", "rsa2048", "rsa4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {kind!r}; expected one of {KEY_TYPES}")


def _name(cn: str, org: str | None = None) -> x509.Name:
    with warnings.catch_warnings():  # tests want over-long and hostile names; the CA/B limit is 64
        warnings.simplefilter("ignore", UserWarning)
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)]
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


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_split(data: bytes, pos: int) -> tuple[int, int]:
    """Return (start of content, end of element) for the DER element at `pos`."""
    length, pos = data[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        length, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
    return pos, pos + length


def _resign_legacy(cert: x509.Certificate, signer: PrivateKey, hash_name: str) -> x509.Certificate:
    """Re-sign `cert` with SHA-1 or MD5 by editing the DER: swap the TBS signature AlgorithmIdentifier,
    sign the new TBS with the raw key API (which still allows them) and reassemble. Keeps exact
    dates, serial, issuer and extensions, which `openssl x509 -req -sha1` cannot (it has only -days)."""
    kind = (
        "rsa"
        if isinstance(signer, rsa.RSAPrivateKey)
        else "ec"
        if isinstance(signer, ec.EllipticCurvePrivateKey)
        else "ed25519"
    )
    alg_id = _LEGACY_ALGORITHM_ID.get((hash_name, kind))
    if alg_id is None:
        raise ValueError(
            f"{hash_name} signatures need an {'RSA' if hash_name == 'md5' else 'RSA or ECDSA'} "
            f"signer, not {kind}"
        )
    tbs = cert.tbs_certificate_bytes
    content, _ = _der_split(tbs, 0)
    pos = content
    for _ in range(2):  # skip [0] version and serialNumber: the AlgorithmIdentifier comes next
        pos = _der_split(tbs, pos)[1]
    alg_end = _der_split(tbs, pos)[1]
    inner = tbs[content:pos] + alg_id + tbs[alg_end:]
    new_tbs = b"\x30" + _der_length(len(inner)) + inner
    algorithm = _LEGACY_HASHES[hash_name]()
    if isinstance(signer, rsa.RSAPrivateKey):
        signature = signer.sign(new_tbs, padding.PKCS1v15(), algorithm)
    else:
        assert isinstance(signer, ec.EllipticCurvePrivateKey)  # no legacy algorithm id for ed25519 above
        signature = signer.sign(new_tbs, ec.ECDSA(algorithm))
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = new_tbs + alg_id + bit_string
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(body)) + body)


class TestPKI:
    """A root CA and an intermediate CA in `directory`; issues leaves for the tests.

    `root_path` is the CA bundle a user passes with --ca-bundle. The intermediate carries
    anyPolicy so leaves with the CA/B policy OIDs validate under policy checking too.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        directory: Path,
        *,
        root_name: str = "Auditor Test Root CA",
        intermediate_name: str = "Auditor Test Intermediate CA",
        ca_keys: str = "ec",
        intermediate_hash: str = "sha384",
    ) -> None:
        """`ca_keys="rsa"` gives RSA 2048 CAs (what an MD5 signature needs) instead of P-384/P-256.
        `intermediate_hash="sha1"` has the root sign the intermediate with SHA-1 (a chain that still
        validates but that the grade must mark T), like `issue(hash=...)` does for leaves."""
        if ca_keys not in ("ec", "rsa"):
            raise ValueError(f"ca_keys must be 'ec' or 'rsa', not {ca_keys!r}")
        if intermediate_hash not in _HASHES and intermediate_hash not in _LEGACY_HASHES:
            raise ValueError(
                f"unknown intermediate_hash {intermediate_hash!r}; expected sha256, sha384, sha512, "
                "sha1 or md5"
            )
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        self.root_key = _key("p384" if ca_keys == "ec" else "rsa2048")
        root_subject = _name(root_name, "Auditor Test")
        self.root = root_builder(self.root_key, root_subject, now).sign(self.root_key, hashes.SHA384())
        self.intermediate_key = _key("p256" if ca_keys == "ec" else "rsa2048")
        intermediate = intermediate_builder(
            self.root_key, root_subject, self.intermediate_key, _name(intermediate_name, "Auditor Test"), now
        )
        if intermediate_hash in _LEGACY_HASHES:
            self.intermediate = _resign_legacy(
                intermediate.sign(self.root_key, hashes.SHA256()), self.root_key, intermediate_hash
            )
        else:
            self.intermediate = intermediate.sign(self.root_key, _HASHES[intermediate_hash]())
        self.root_path = self.directory / "root.pem"
        self.root_path.write_bytes(pem(self.root))
        self.intermediate_path = self.directory / "intermediate.pem"
        self.intermediate_path.write_bytes(pem(self.intermediate))
        self.intermediate_key_path = self.directory / "intermediate.key"
        self.intermediate_key_path.write_bytes(pem_key(self.intermediate_key))

    def issue(
        self,
        name: str,
        *,
        hosts: Sequence[str] = ("good.test",),
        days_valid: int = 90,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key: str = "rsa2048",
        hash: str = "sha256",  # noqa: A002  # the name tests pass (hash="sha1")
        policy: str | None = "ov",
        subject_cn: str | None = None,
        subject_org: str | None = None,
        san: bool = True,
        issuer: str = "intermediate",
        expired: bool = False,
        ocsp_url: str | None = None,
        ca_issuers_url: str | None = None,
    ) -> Issued:
        """Issue a leaf into `directory` as `{name}.pem`, `{name}.key` and `{name}.chain.pem`.

        `expired=True`: valid from 120 to 2 days ago (or pass `not_after` in the past). The CN
        defaults to the first host. `hash="sha1"` works for RSA/ECDSA signers, `hash="md5"` for RSA
        (see `_resign_legacy`). `ocsp_url` names an OCSP responder in the AIA extension
        (e.g. tests.harness.ocsp.OCSPResponder's url); `ca_issuers_url` names where the issuer can be
        fetched (AIA caIssuers), as public CAs do.
        """
        if hash not in _HASHES and hash not in _LEGACY_HASHES:
            raise ValueError(f"unknown hash {hash!r}; expected sha256, sha384, sha512, sha1 or md5")
        if policy is not None and policy not in POLICY_OIDS:
            raise ValueError(f"unknown policy {policy!r}; expected dv, ov, ev or None")
        if issuer not in ("intermediate", "root", "self"):
            raise ValueError(f"unknown issuer {issuer!r}; expected intermediate, root or self")
        now = datetime.now(UTC)
        if expired:
            not_before, not_after = now - timedelta(days=120), now - timedelta(days=2)
        not_before = not_before or now - timedelta(hours=1)
        not_after = not_after or now + timedelta(days=days_valid)
        leaf_key = _key(key)
        subject = _name(subject_cn or (hosts[0] if hosts else name), subject_org)
        signer_key: PrivateKey
        if issuer == "self":
            signer_key, issuer_name, issuer_pub = leaf_key, subject, leaf_key.public_key()
        elif issuer == "root":
            signer_key, issuer_name, issuer_pub = self.root_key, self.root.subject, self.root_key.public_key()
        else:
            signer_key, issuer_name = self.intermediate_key, self.intermediate.subject
            issuer_pub = self.intermediate_key.public_key()
        if isinstance(leaf_key, rsa.RSAPrivateKey):  # digitalSignature + keyEncipherment (RSA key exchange)
            usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        else:
            usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False)
        )
        if san and hosts:
            builder = builder.add_extension(_san(hosts), critical=False)
        access = [
            x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
            for method, url in (
                (AuthorityInformationAccessOID.OCSP, ocsp_url),
                (AuthorityInformationAccessOID.CA_ISSUERS, ca_issuers_url),
            )
            if url is not None
        ]
        if access:
            builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
        if policy is not None:
            builder = builder.add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(x509.ObjectIdentifier(POLICY_OIDS[policy]), None)]
                ),
                critical=False,
            )
        ed_signer = isinstance(signer_key, ed25519.Ed25519PrivateKey)
        if hash in _LEGACY_HASHES:
            cert = _resign_legacy(
                builder.sign(signer_key, None if ed_signer else hashes.SHA256()), signer_key, hash
            )
        else:
            cert = builder.sign(signer_key, None if ed_signer else _HASHES[hash]())
        key_path = self.directory / f"{name}.key"
        key_path.write_bytes(pem_key(leaf_key))
        cert_path = self.directory / f"{name}.pem"
        cert_path.write_bytes(pem(cert))
        chain_path = self.directory / f"{name}.chain.pem"
        chain_path.write_bytes(pem(cert) + (pem(self.intermediate) if issuer == "intermediate" else b""))
        return Issued(name=name, cert_path=cert_path, key_path=key_path, chain_path=chain_path, cert=cert)
