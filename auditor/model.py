"""The one results model: evidence collected by the scanners, findings made from it, the
report that carries both. It is the in-memory result *and* the JSON contract (schema/).

Evidence holds facts only (what the server did); findings hold judgements (what that means for
a clause of the policy). Nothing in the evidence is trusted: it is text sent by the audited server.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Status(StrEnum):
    """How a clause fares. `error` = the check could not run; `not_tested` = no check yet/no data."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    ERROR = "error"
    NOT_TESTED = "not_tested"


# ---------------------------------------------------------------- TLS evidence

class CipherSuite(_Model):
    """One accepted cipher suite, with what it means (derived from the IANA name)."""

    name: str  # IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    openssl_name: str = ""
    key_exchange: str  # ECDHE, DHE, RSA, ECDH, DH, PSK, ANON, TLS13, ...
    encryption: str  # AES_256_GCM, CHACHA20_POLY1305, 3DES_EDE_CBC, RC4_128, NULL, ...
    bits: int  # symmetric key size in bits (0 for NULL)
    aead: bool
    forward_secret: bool
    anonymous: bool = False
    export: bool = False
    block_bits: int | None = None  # 64 for 3DES/IDEA/RC2 (SWEET32)
    ephemeral_group: str | None = None  # e.g. X25519, secp256r1, DH
    ephemeral_bits: int | None = None


class ProtocolSupport(_Model):
    """What the server does with one protocol version."""

    version: str  # "SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"
    supported: bool | None  # None: could not be tested (error recorded in TlsEvidence.errors)
    suites: list[CipherSuite] = Field(default_factory=list)
    # True when `suites` is in the server's preference order (fast engine); False: scanner order.
    in_server_order: bool = False
    # True/False: measured by offering the two favourites in both orders; None: not measured
    # (fewer than two suites, or an exhaustive --thorough scan).
    server_enforces_order: bool | None = None
    # The key-exchange group of the server's first (EC)DHE choice in this protocol, e.g. "X25519".
    preferred_group: str | None = None


class Certificate(_Model):
    """The facts of one X.509 certificate that the policy cares about."""

    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    signature_algorithm: str  # e.g. sha256WithRSAEncryption, ed25519
    signature_hash: str | None  # sha256, sha1, md5 ... None for Ed25519/Ed448
    key_type: str  # RSA, EC, Ed25519, Ed448, DSA
    key_bits: int
    key_curve: str | None = None
    subject_alt_names: list[str] = Field(default_factory=list)
    policy_oids: list[str] = Field(default_factory=list)
    is_ca: bool = False
    self_signed: bool = False
    sha256_fingerprint: str


class TrustStoreResult(_Model):
    store: str  # "Mozilla", "Apple", "Android", "Java", "Windows", "custom"
    version: str = ""
    trusted: bool
    error: str | None = None


class CertificateDeployment(_Model):
    """A certificate chain as served, and how it validates."""

    received_chain: list[Certificate]
    verified_chain: list[Certificate] = Field(default_factory=list)
    trust: list[TrustStoreResult] = Field(default_factory=list)
    hostname_matches: bool
    chain_in_order: bool | None = None
    chain_includes_root: bool | None = None
    ocsp_stapled: bool = False
    mozilla_ev: bool = False


class Vulnerabilities(_Model):
    """Answers of sslyze's vulnerability probes; None = not tested (see TlsEvidence.errors)."""

    heartbleed: bool | None = None
    ccs_injection: bool | None = None
    robot: str | None = None  # sslyze's RobotScanResultEnum name
    secure_renegotiation: bool | None = None
    client_renegotiation_dos: bool | None = None
    compression: bool | None = None
    fallback_scsv: bool | None = None


class HandshakeSimulation(_Model):
    """What one reference client negotiates with the server (or why it cannot connect)."""

    client: str
    reference: bool = False  # one of the reference browsers the grade judges by
    protocol: str | None = None
    suite: CipherSuite | None = None
    error: str | None = None


class TlsEvidence(_Model):
    protocols: list[ProtocolSupport] = Field(default_factory=list)
    certificates: list[CertificateDeployment] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)  # supported ECDH groups/curves
    vulnerabilities: Vulnerabilities = Field(default_factory=Vulnerabilities)
    errors: dict[str, str] = Field(default_factory=dict)  # scan phase -> why it failed
    simulations: list[HandshakeSimulation] = Field(default_factory=list)
    connections: int | None = None  # TCP connections the TLS scan opened (fast engine; None for --thorough)
    # phase -> connections: "connectivity", "suites", "batches", "order", "groups", "simulation",
    # and one per sslyze command ("certificate_info", "robot", ...)
    connections_by_phase: dict[str, int] = Field(default_factory=dict)

    def protocol(self, version: str) -> ProtocolSupport | None:
        return next((p for p in self.protocols if p.version == version), None)

    def accepted_suites(self) -> list[tuple[str, CipherSuite]]:
        return [(p.version, s) for p in self.protocols if p.supported for s in p.suites]


# ---------------------------------------------------------------- HTTP evidence

class Cookie(_Model):
    """One Set-Cookie line. The value is never kept: it may be a session secret."""

    name: str
    raw_attributes: str  # the line with its value replaced by "<redacted>"
    secure: bool
    http_only: bool
    same_site: str | None  # as sent ("Lax", "Strict", "None", or anything else)
    domain: str | None = None
    path: str | None = None


class HttpResponse(_Model):
    url: str
    status: int | None = None
    headers: list[tuple[str, str]] = Field(default_factory=list)  # Set-Cookie values redacted
    location: str | None = None
    cookies: list[Cookie] = Field(default_factory=list)
    insecure_references: list[str] = Field(default_factory=list)  # http:// sub-resources loaded
    insecure_form_actions: list[str] = Field(default_factory=list)  # forms posting to http://
    error: str | None = None

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class HttpEvidence(_Model):
    https: list[HttpResponse] = Field(default_factory=list)  # "/" first, then configured paths
    plain_http: HttpResponse | None = None


class Evidence(_Model):
    tls: TlsEvidence = Field(default_factory=TlsEvidence)
    http: HttpEvidence = Field(default_factory=HttpEvidence)


# ---------------------------------------------------------------- judgements

class Finding(_Model):
    clause: str  # an id from the clause table (checks/clauses.py)
    status: Status
    title: str
    detail: str = ""
    evidence: list[str] = Field(default_factory=list)  # the facts, one per line
    remediation: str | None = None  # what to change: nginx and Apache lines


class GradeCap(_Model):
    grade: str
    reason: str


class Grade(_Model):
    letter: str
    score: int
    categories: dict[str, int] = Field(default_factory=dict)
    caps: list[GradeCap] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    letter_ignoring_trust: str | None = None


class Change(_Model):
    """One difference between the previous scan of a target and this one."""

    kind: str  # "grade", "clause", "protocol", "suite", "certificate", "error"
    subject: str  # what changed: a clause id, a protocol, a suite name, "leaf certificate"
    before: str | None = None
    after: str | None = None
    detail: str = ""


class TargetChanges(_Model):
    previous_scan_at: datetime
    previous_scan_id: str | None = None
    changes: list[Change] = Field(default_factory=list)


class TargetRef(_Model):
    url: str
    host: str
    port: int
    ip: str | None = None
    name: str | None = None


class TargetResult(_Model):
    target: TargetRef
    started_at: datetime
    duration_s: float
    compliant: bool
    grade: Grade | None = None
    findings: list[Finding] = Field(default_factory=list)
    error: str | None = None  # why the target could not be audited
    evidence: Evidence | None = None
    changes: TargetChanges | None = None  # since the previous stored scan; None without history

    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status is Status.FAIL]

    def failed_clauses(self) -> list[str]:
        """The clause ids broken, once each, in report order: the number of violations."""
        return list(dict.fromkeys(f.clause for f in self.failures()))


class AuditReport(_Model):
    schema_version: str = SCHEMA_VERSION
    generated_at: datetime
    tool_version: str
    targets: list[TargetResult]
    meta: dict[str, Any] = Field(default_factory=dict)  # config file hash, command line

    @property
    def any_error(self) -> bool:
        return any(t.error for t in self.targets)

    @property
    def all_compliant(self) -> bool:
        return all(t.compliant for t in self.targets)
