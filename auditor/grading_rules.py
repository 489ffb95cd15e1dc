"""The SSL Labs rating as data: score tables, caps and warnings (SSL Server Rating Guide 2009r,
2025-05-16, with the grading changes Qualys announced in 2014-2020; see
../shared/grading/ssllabs-rating.md). A change in the guide is a change of one row here.

Each cap and warning row: (id, letter, the guide's wording, predicate over GradeFacts).
Choices where the guide leaves room are said in the row's wording.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from auditor.model import CipherSuite

# ---------------------------------------------------------------- scores
PROTOCOL_SCORES = {"SSL 2.0": 0, "SSL 3.0": 80, "TLS 1.0": 90, "TLS 1.1": 95, "TLS 1.2": 100, "TLS 1.3": 100}
# (upper bound exclusive, score): the first row whose bound exceeds the RSA-equivalent bits
KEY_EXCHANGE_SCORES = [(512, 20), (1024, 40), (2048, 80), (4096, 90), (10**9, 100)]
# (upper bound exclusive, score) on a suite's symmetric key bits; 0 bits (NULL) scores 0
CIPHER_SCORES = [(1, 0), (128, 20), (256, 80), (10**9, 100)]
WEIGHTS = {"protocol": 0.3, "key_exchange": 0.3, "cipher": 0.4}
LETTERS = [(80, "A"), (65, "B"), (50, "C"), (35, "D"), (20, "E"), (0, "F")]
# Grade order, best first; caps and letters are compared by position here.
ORDER = ["A+", "A", "A-", "B", "C", "D", "E", "F"]
# Every letter a grade can have, best first: T (not trusted) and M (name mismatch) rank below F.
ALL_LETTERS = [*ORDER, "T", "M"]
HSTS_A_PLUS = 15552000  # 180 days
# The rating guide these rows follow, recorded in every grade (Grade.rating_rules) beside the check rules'
# version: the guide's version, then the year of the latest Qualys grading change applied.
RATING_RULES = "ssllabs-2009r+2020"
# The cap (A: no A+) when no HTTPS page was fetched, so HSTS is unknown: not a row of the guide.
HSTS_UNMEASURED = "hsts-unmeasured"
# EC key sizes and their RSA-equivalent strength (NIST SP 800-57 table 2), for key-exchange scoring.
EC_TO_RSA = [(160, 1024), (224, 2048), (256, 3072), (384, 7680), (512, 15360)]


@dataclass
class GradeFacts:
    """What the rules look at, derived once from the evidence (see grading.facts_from)."""

    protocols: set[str] = field(default_factory=set)
    best_protocol: str | None = None
    suites: list[tuple[str, CipherSuite]] = field(default_factory=list)  # (version, suite)
    cert_key_type: str | None = None
    cert_key_bits: int = 0
    cert_rsa_equivalent: int = 0
    min_dh_bits: int | None = None  # smallest finite-field DHE group accepted
    min_kex_rsa_equivalent: int | None = None
    signature_hashes: list[str] = field(default_factory=list)  # leaf + intermediates
    trusted: bool | None = None
    trust_reason: str = ""
    hostname_matches: bool = True
    incomplete_chain: bool = False
    revoked: bool = False  # a verified OCSP answer (stapled or from the responder) says revoked
    heartbleed: bool = False
    ccs_injection: bool = False
    robot: bool = False
    insecure_renegotiation: bool = False  # auditor.flaws.insecure_renegotiation, shared with the check
    lacks_secure_renegotiation: bool = False  # no RFC 5746, the flaw not shown (auditor.flaws)
    compression: bool = False
    reference_non_fs: list[str] = field(default_factory=list)  # reference browsers without FS
    # reference browsers negotiating a 64-bit block cipher / RC4 with TLS 1.1+ (grading._reference_negotiations)
    reference_3des_modern: list[str] = field(default_factory=list)
    reference_rc4_modern: list[str] = field(default_factory=list)
    hsts_max_age: int | None = None
    hsts_measured: bool = True  # False: no HTTPS page was fetched, so HSTS is unknown (never "missing")
    beast: bool = False  # auditor.flaws.beast, shared with the check

    def any_suite(self, test: Callable[[CipherSuite], bool], versions: set[str] | None = None) -> bool:
        return any(test(s) for v, s in self.suites if versions is None or v in versions)


@dataclass(frozen=True)
class Rule:
    id: str
    letter: str  # the cap (F, C, B, T, M) or "A-" for a warning
    wording: str
    applies: Callable[[GradeFacts], bool]


def _weak_bits(s: CipherSuite) -> bool:
    return 0 < s.bits < 112


CAPS: list[Rule] = [
    Rule("ssl2", "F", "SSL 2.0 is supported", lambda f: "SSL 2.0" in f.protocols),
    Rule("ssl3-best", "F", "SSL 3.0 is the best protocol supported", lambda f: f.best_protocol == "SSL 3.0"),
    Rule("heartbleed", "F", "Vulnerable to Heartbleed", lambda f: f.heartbleed),
    Rule("ccs", "F", "Vulnerable to the OpenSSL CCS injection (CVE-2014-0224)", lambda f: f.ccs_injection),
    Rule("robot", "F", "Vulnerable to ROBOT (RSA padding oracle)", lambda f: f.robot),
    Rule(
        "insecure-renegotiation",
        "F",
        "Insecure client-initiated renegotiation is supported",
        lambda f: f.insecure_renegotiation,
    ),
    Rule(
        "export", "F", "Export cipher suites are supported (FREAK)", lambda f: f.any_suite(lambda s: s.export)
    ),
    Rule(
        "null-anon",
        "F",
        "NULL or anonymous cipher suites are supported",
        lambda f: f.any_suite(lambda s: s.bits == 0 or s.anonymous),
    ),
    Rule(
        "weak-suites",
        "F",
        "Cipher suites weaker than 112 bits are supported",
        lambda f: f.any_suite(_weak_bits),
    ),
    Rule(
        "key-1024",
        "F",
        "Certificate key or DH parameters below 1024 bits",
        lambda f: 0 < f.cert_rsa_equivalent < 1024 or (f.min_dh_bits is not None and f.min_dh_bits < 1024),
    ),
    Rule(
        "md5-signature",
        "F",
        "Certificate signed with MD5 or MD2",
        lambda f: any(h in ("md5", "md2") for h in f.signature_hashes),
    ),
    # SSL Labs and testssl.sh cap only when neither is offered: a TLS 1.3-only server gets an A (Precisions)
    Rule(
        "no-tls12",
        "C",
        "Neither TLS 1.2 nor TLS 1.3 is supported",
        lambda f: bool(f.protocols) and not {"TLS 1.2", "TLS 1.3"} & f.protocols,
    ),
    Rule("poodle-ssl3", "C", "SSL 3.0 is supported (POODLE)", lambda f: "SSL 3.0" in f.protocols),
    Rule(
        "crime",
        "C",
        "TLS compression is enabled (CRIME); the 2009 guide said B, later practice says C: we use C",
        lambda f: f.compression,
    ),
    # RC4, as Qualys graded it from May 2015 (blog 2015-08-24 "No Change to RC4 Grading in September"):
    # C when RC4 is *used* with TLS 1.1/1.2, B when it is accepted only where old clients land on it.
    # "Used" = negotiated in the reference browsers' simulations (ssllabs-scan issues 190, 339), not
    # merely accepted: an RC4 suite listed after AES-GCM for TLS 1.2 is row "rc4" (B), not this one.
    Rule(
        "rc4-modern",
        "C",
        "RC4 is negotiated by reference browsers with TLS 1.1 or newer",
        lambda f: bool(f.reference_rc4_modern),
    ),
    # SWEET32 (January 2017 changes): C when a 64-bit block cipher is negotiated with TLS 1.1+ by the
    # reference browsers; a non-reference client (an old Java) landing on 3DES does not cap (Precisions).
    Rule(
        "sweet32",
        "C",
        "A 64-bit block cipher (3DES) is negotiated by reference browsers with TLS 1.1 or newer (SWEET32)",
        lambda f: bool(f.reference_3des_modern),
    ),
    Rule(
        "old-protocols",
        "B",
        "TLS 1.0 or TLS 1.1 is supported",
        lambda f: bool({"TLS 1.0", "TLS 1.1"} & f.protocols),
    ),
    Rule(
        "no-forward-secrecy",
        "B",
        "No forward secrecy with the reference browsers",
        lambda f: bool(f.reference_non_fs),
    ),
    Rule(
        "no-aead",
        "B",
        "No AEAD cipher suite is supported",
        lambda f: bool(f.suites) and not f.any_suite(lambda s: s.aead),
    ),
    # "Servers that support RC4 are capped at B" (2014 changes): accepted in any protocol, used or not.
    Rule("rc4", "B", "RC4 is supported", lambda f: f.any_suite(lambda s: s.encryption.startswith("RC4"))),
    Rule(
        "key-2048",
        "B",
        "Certificate key or DH parameters below 2048 bits",
        lambda f: 0 < f.cert_rsa_equivalent < 2048 or (f.min_dh_bits is not None and f.min_dh_bits < 2048),
    ),
    Rule("incomplete-chain", "B", "The certificate chain is incomplete", lambda f: f.incomplete_chain),
    # BEAST as auditor.flaws.beast judges it. The 2009d guide stopped requiring server-side mitigation, and
    # SSL 3.0/TLS 1.0 already cap at C/B, so this row never lowers a letter: it names the flaw among the caps.
    Rule("beast", "B", "SSL 3.0 or TLS 1.0 negotiates a CBC suite (BEAST)", lambda f: f.beast),
    Rule("untrusted", "T", "The certificate is not trusted", lambda f: f.trusted is False),
    Rule("revoked", "T", "The certificate is revoked (OCSP)", lambda f: f.revoked),
    # 2017 change: SHA-1 anywhere below the root is T, also in a chain that validates against a private CA.
    Rule(
        "sha1-chain",
        "T",
        "SHA-1 signature in the served chain (leaf or intermediate)",
        lambda f: "sha1" in f.signature_hashes,
    ),
    Rule("mismatch", "M", "The certificate does not match the host name", lambda f: not f.hostname_matches),
]

WARNINGS: list[Rule] = [
    Rule(
        "no-tls13",
        "A-",
        "TLS 1.3 is not supported",
        lambda f: bool(f.protocols) and "TLS 1.3" not in f.protocols,
    ),
    Rule(
        "hsts",
        "A-",
        "HSTS is missing, invalid or shorter than 180 days",
        lambda f: f.hsts_measured and (f.hsts_max_age is None or f.hsts_max_age < HSTS_A_PLUS),
    ),
    Rule(
        "no-secure-renegotiation",
        "A-",
        "Secure renegotiation is not supported",
        lambda f: f.lacks_secure_renegotiation,
    ),
]


def worst_letter(letters: list[str]) -> str | None:
    """The lowest of `letters` (ALL_LETTERS order); None when none is a grade letter."""
    known = [letter for letter in letters if letter in ALL_LETTERS]
    return max(known, key=ALL_LETTERS.index) if known else None
