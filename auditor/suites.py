"""What a cipher suite name means: key exchange, cipher, strength.

Every judgement about suites (PFS, RSA kex, AEAD, SWEET32, RC4, export) reads these fields, so
they are derived in exactly one place, from the IANA name that sslyze and nassl both report.
"""

from __future__ import annotations

from auditor.model import CipherSuite

TLS13_SUITES = {
    "TLS_AES_256_GCM_SHA384": ("AES_256_GCM", 256),
    "TLS_CHACHA20_POLY1305_SHA256": ("CHACHA20_POLY1305", 256),
    "TLS_AES_128_GCM_SHA256": ("AES_128_GCM", 128),
    "TLS_AES_128_CCM_SHA256": ("AES_128_CCM", 128),
    "TLS_AES_128_CCM_8_SHA256": ("AES_128_CCM_8", 128),
}

# SSL 2.0 suites (sslyze's names): always RSA key exchange; cipher and strength as their TLS kin.
SSL2_SUITES = {
    "SSL_CK_RC4_128_WITH_MD5": ("RC4_128", 128),
    "SSL_CK_RC4_128_EXPORT40_WITH_MD5": ("RC4_40", 40),
    "SSL_CK_RC4_64_WITH_MD5": ("RC4_64", 64),
    "SSL_CK_RC2_128_CBC_WITH_MD5": ("RC2_CBC_128", 128),
    "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5": ("RC2_CBC_40", 40),
    "SSL_CK_IDEA_128_CBC_WITH_MD5": ("IDEA_CBC", 128),
    "SSL_CK_DES_64_CBC_WITH_MD5": ("DES_CBC", 56),
    "SSL_CK_DES_192_EDE3_CBC_WITH_MD5": ("3DES_EDE_CBC", 112),
}
# 3DES: SSL Labs counts its effective strength (meet-in-the-middle), not the 168-bit key OpenSSL reports.
TRIPLE_DES_BITS = 112

# Key-exchange prefixes that give forward secrecy.
_FORWARD_SECRET = {"ECDHE", "DHE", "TLS13"}
# Ciphers whose block is 64 bits (SWEET32).
_64_BIT_BLOCK = ("3DES", "DES", "IDEA", "RC2")
_AEAD_MARKERS = ("GCM", "CCM", "CHACHA20_POLY1305", "POLY1305")


def _split(name: str) -> tuple[str, str]:
    """('ECDHE_RSA', 'AES_256_GCM_SHA384') from 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'."""
    body = name.removeprefix("TLS_").removeprefix("SSL_")
    if "_WITH_" in body:
        kex, enc = body.split("_WITH_", 1)
        return kex, enc
    return "RSA", body


def key_exchange_of(name: str) -> str:
    """The key-exchange family: ECDHE, DHE, RSA, ECDH, DH, PSK, SRP, ANON or TLS13."""
    if name in TLS13_SUITES:
        return "TLS13"
    if name in SSL2_SUITES:
        return "RSA"
    kex, _ = _split(name)
    if "anon" in kex.lower():
        return "ANON"
    head = kex.split("_")[0].upper()
    if head in {"ECDHE", "DHE", "RSA", "ECDH", "DH", "PSK", "SRP", "KRB5", "ECCPWD", "GOSTR341112"}:
        return head
    if head == "EDH":
        return "DHE"
    return head


def describe(
    name: str,
    *,
    openssl_name: str = "",
    bits: int | None = None,
    ephemeral_group: str | None = None,
    ephemeral_bits: int | None = None,
) -> CipherSuite:
    """A CipherSuite model from an IANA suite name (and what the scanner measured)."""
    if name in TLS13_SUITES:
        encryption, default_bits = TLS13_SUITES[name]
    elif name in SSL2_SUITES:
        encryption, default_bits = SSL2_SUITES[name]
    else:
        _, enc = _split(name)
        # drop the MAC: the last component (SHA, SHA256, SHA384, MD5) unless the cipher is AEAD
        parts = enc.split("_")
        if parts[-1] in {"SHA", "SHA256", "SHA384", "MD5", "NULL"} and len(parts) > 1:
            parts = parts[:-1]
        encryption = "_".join(parts)
        default_bits = _bits_from_encryption(encryption)
    kex = key_exchange_of(name)
    upper = name.upper()
    if encryption.startswith("3DES"):
        bits = TRIPLE_DES_BITS  # whatever key size the scanner reports (sslyze: 168)
    block_bits = 64 if any(encryption.startswith(c) for c in _64_BIT_BLOCK) else None
    return CipherSuite(
        name=name,
        openssl_name=openssl_name,
        key_exchange=kex,
        encryption=encryption,
        bits=default_bits if bits is None else bits,
        aead=any(m in encryption for m in _AEAD_MARKERS),
        forward_secret=kex in _FORWARD_SECRET,
        anonymous=kex == "ANON",
        export="EXPORT" in upper,
        block_bits=block_bits,
        ephemeral_group=ephemeral_group,
        ephemeral_bits=ephemeral_bits,
    )


def _bits_from_encryption(encryption: str) -> int:
    if encryption.startswith("NULL") or encryption == "":
        return 0
    if encryption.startswith("3DES"):
        return TRIPLE_DES_BITS
    for token in encryption.split("_"):
        if token.isdigit() and int(token) >= 40:
            return int(token)
    if encryption.startswith("CHACHA20"):
        return 256
    if encryption.startswith("DES40"):
        return 40
    if encryption.startswith("DES"):
        return 56
    if encryption.startswith(("IDEA", "SEED")):
        return 128
    return 128


def is_chacha(name: str) -> bool:
    """A ChaCha20-Poly1305 suite (IANA or OpenSSL name): the one OpenSSL's PrioritizeChaCha promotes."""
    return "CHACHA20" in name.upper()


def is_aes256_aead(suite: CipherSuite) -> bool:
    """The policy's 'AES-GCM 256-bit or stronger' class (clause 11.3-aes256gcm-first)."""
    return suite.aead and suite.bits >= 256 and suite.encryption.startswith("AES_256_GCM")


def is_weak(suite: CipherSuite) -> list[str]:
    """Why a suite is weak (empty when it is not): the reasons the reports flag it for."""
    reasons = []
    if suite.bits == 0 or suite.encryption.startswith("NULL"):
        reasons.append("NULL encryption")
    if suite.anonymous:
        reasons.append("anonymous (no authentication)")
    if suite.export:
        reasons.append("export-grade (FREAK)")
    if suite.encryption.startswith("RC4"):
        reasons.append("RC4")
    if suite.block_bits == 64:
        reasons.append("64-bit block cipher (SWEET32)")
    if 0 < suite.bits < 112:
        reasons.append(f"{suite.bits}-bit key")
    if not suite.forward_secret and not suite.anonymous:
        reasons.append("no forward secrecy")
    return reasons
