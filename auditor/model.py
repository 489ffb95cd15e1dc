"""The one results model: evidence collected by the scanners, findings made from it, the
report that carries both. It is the in-memory result *and* the JSON contract (schema/).

Evidence holds facts only (what the server did); findings hold judgements (what that means for
a clause of the policy). Nothing in the evidence is trusted: it is text sent by the audited server.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

SCHEMA_VERSION = "1.1"  # 1.1: endpoints[], evidence.dns


# CA/Browser Forum certificate policy identifiers, strongest first (Baseline Requirements 7.1.6.1)
CABF_POLICY_OIDS = {
    "EV": "2.23.140.1.1",
    "OV": "2.23.140.1.2.2",
    "IV": "2.23.140.1.2.3",
    "DV": "2.23.140.1.2.1",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Status(StrEnum):
    """How a clause fares. `error` = the check could not run; `not_tested` = no check yet/no data."""

    PASS = "pass"  # noqa: S105 (a status, not a password)
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    ERROR = "error"
    NOT_TESTED = "not_tested"


# Worst first: which status a clause shows when its findings differ (TargetResult.clause_statuses).
WORST_FIRST = (Status.FAIL, Status.ERROR, Status.WARN, Status.INFO, Status.PASS, Status.NOT_TESTED)


class ClauseId(StrEnum):
    """The policy's clause ids, in report order: the data of each is in auditor/checks/clauses.toml
    (same ids, same order: tests/test_clause_data.py). A StrEnum, so JSON and the stored history keep
    the plain strings."""

    TLS_ENFORCED = "11.1-tls-enforced"
    PFS = "11.1-pfs"
    CERT_TRUSTED = "11.2-cert-trusted"
    CERT_VALIDATION_LEVEL = "11.2-cert-validation-level"
    CERT_SIGNATURE = "11.2-cert-signature"
    CERT_RENEWAL = "11.2-cert-renewal"
    PROTOCOLS = "11.3-protocols"
    AES256GCM_FIRST = "11.3-aes256gcm-first"
    NO_RSA_KEX = "11.3-no-rsa-kex"
    ECDHE_DEFAULT = "11.3-ecdhe-default"
    QUANTUM_RESISTANCE = "11.3-quantum-resistance"
    VULNERABILITIES = "11.4-vulnerabilities"
    PATCH_WINDOW = "11.4-patch-window"
    GRADE_A = "11.4-grade-a"
    HSTS = "11.5-hsts"
    COOKIES = "11.5-cookies"
    EVIDENCE_LOG = "11.6-evidence-log"
    TRANSIT = "5.4-transit"
    COOKIE_CONSENT = "12.3-cookie-consent"


# Every protocol version the scanners name, oldest first; the ones older than TLS 1.2 are below the
# policy's floor (11.3-protocols, 5.4-transit) and are what a downgrade can land on.


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
    # The DH group was not measured but is at most this size: the scanning client refused it as too
    # small and the raw probe could not read it (auditor.scan.dh_size). Never "unknown, so fine".
    ephemeral_bits_max: int | None = None


class ProtocolSupport(_Model):
    """What the server does with one protocol version."""

    version: str  # "SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"
    supported: bool | None  # None: could not be tested (why: TlsEvidence.attempts)
    suites: list[CipherSuite] = Field(default_factory=list)
    # True when `suites` is in the server's preference order (fast engine); False: scanner order.
    in_server_order: bool = False
    # True/False: measured by offering the two favourites in both orders; None: not measured
    # (fewer than two suites, or an exhaustive --thorough scan).
    server_enforces_order: bool | None = None
    # The key-exchange group of the server's first (EC)DHE choice in this protocol, e.g. "X25519".
    preferred_group: str | None = None
    # True: the server enforces its order but gives ChaCha20-Poly1305 to a client that lists it first
    # (OpenSSL PrioritizeChaCha); False: it does not; None: not measured (no ChaCha20 suite below
    # another one in the server's order, or the order is the client's).
    chacha_priority: bool | None = None


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
    # AIA caIssuers: where a client can fetch the issuer when the server does not send it
    ca_issuers: list[str] = Field(default_factory=list)
    is_ca: bool = False
    self_signed: bool = False
    sha256_fingerprint: str


class TrustStoreResult(_Model):
    store: str  # "Mozilla", "Apple", "Android", "Java", "Windows", "custom"
    version: str = ""
    trusted: bool
    error: str | None = None


class RevocationStatus(_Model):
    """One answer on whether a leaf is revoked: a stapled OCSP response, or the OCSP responder the
    certificate names (AIA). Only a response verified (signature by the issuer or its delegated
    responder, matching certificate id, current thisUpdate/nextUpdate) says good/revoked/unknown;
    anything else is `error`, with the reason. `not_checked`: no request was made, and why."""

    source: Literal["stapled", "responder"]
    status: Literal["good", "revoked", "unknown", "error", "not_checked"]
    reason: str | None = None  # revoked: the CRL reason (e.g. keyCompromise); error/not_checked: why
    responder: str | None = None  # the URL asked (source "responder")
    # Set when the responder gave no usable answer at all (down, timed out, HTTP error): the question is
    # open. None for an answer received (verified or not, the `status` says) and for stapled ones.
    attempt: Attempt | None = None
    produced_at: datetime | None = None
    this_update: datetime | None = None
    next_update: datetime | None = None
    revoked_at: datetime | None = None


class Sct(_Model):
    """One signed certificate timestamp: a Certificate Transparency log's promise to publish the
    certificate. Its signature is not verified (no list of log keys is kept)."""

    log_id: str  # hex SHA-256 of the log's public key
    timestamp: datetime


class CertificateTransparency(_Model):
    """A leaf's SCTs by delivery (auditor.scan.sct). None: that delivery was not measured (why: `note`)."""

    embedded: list[Sct] = Field(default_factory=list)  # the precertificate SCT extension of the leaf
    tls_extension: list[Sct] | None = None  # signed_certificate_timestamp in a TLS 1.2 ServerHello
    ocsp: list[Sct] | None = None  # the SCT list extension of the stapled OCSP response; None: none stapled
    note: str | None = None


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
    # stapled first, then the responder when it was asked (no valid stapled answer)
    revocation: list[RevocationStatus] = Field(default_factory=list)
    ct: CertificateTransparency | None = None  # None: not collected (an older report)

    def label(self) -> str:
        """Which certificate this is, as a reader tells a dual RSA/ECDSA site's apart: "RSA 2048", "EC P-256"."""
        if not self.received_chain:
            return "no certificate"
        leaf = self.received_chain[0]
        curves = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        if leaf.key_type == "EC":
            return f"EC {curves.get(leaf.key_curve or '', leaf.key_curve or leaf.key_bits)}"
        return leaf.key_type if leaf.key_type in ("Ed25519", "Ed448") else f"{leaf.key_type} {leaf.key_bits}"

    def validation_level(self) -> str:
        """EV, OV, IV, DV or "unknown": what the leaf's CA/Browser Forum policy OID (or Mozilla's EV
        list) says the CA verified. Read by the check and shown by the reports, never re-derived."""
        if not self.received_chain:
            return "unknown"
        oids = set(self.received_chain[0].policy_oids)
        if CABF_POLICY_OIDS["EV"] in oids or self.mozilla_ev:
            return "EV"
        return next((level for level, oid in CABF_POLICY_OIDS.items() if oid in oids), "unknown")

    def revoked(self) -> RevocationStatus | None:
        """The verified answer saying revoked, if any."""
        return next((r for r in self.revocation if r.status == "revoked"), None)


class Vulnerabilities(_Model):
    """Answers of sslyze's vulnerability probes; None = not tested (why: TlsEvidence.attempts)."""

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
    # Set when this client's handshake was not tested (no complete answer, the server stopped answering);
    # None when it completed or failed on its own (`error` alone: this client cannot connect, a fact).
    attempt: Attempt | None = None

    @model_validator(mode="before")
    @classmethod
    def _attempt_from_error(cls, data: Any) -> Any:
        """Reports written before typed attempts say "not tested: <why>" in `error`: typed on load."""
        text = str(data.get("error") or "") if isinstance(data, dict) else ""
        if text.startswith("not tested:") and data.get("attempt") is None:
            reason = _legacy_reason("simulations", text)
            data = {**data, "attempt": Attempt.failed(reason, text.removeprefix("not tested: "))}
        return data

    # Post-quantum (11.3-quantum-resistance): nassl cannot send hybrid groups, so `suite` is what this
    # client gets without them. `hybrid_offered`: the hybrid group the real client offers by default, with a
    # key share (None: it offers none); `hybrid_selected`: the group the server picks from the real client's
    # groups and key shares, measured by a raw ClientHello (auditor.scan.post_quantum); None: not measured.
    hybrid_offered: str | None = None
    hybrid_selected: str | None = None

    @property
    def quantum_resistant(self) -> bool | None:
        """Does this client get a hybrid post-quantum key exchange? None: it offers none, or not measured."""
        if self.hybrid_offered is None or self.hybrid_selected is None:
            return None
        return "MLKEM" in self.hybrid_selected


class PostQuantum(_Model):
    """Hybrid post-quantum key exchange with TLS 1.3 (auditor.scan.post_quantum). Every value None
    means not tested (why: `error`)."""

    # hybrid group (X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024) -> the server accepts it
    # (a ClientHello offering only that group, without a key share, draws a HelloRetryRequest naming it)
    groups: dict[str, bool | None] = Field(default_factory=dict)
    # The group the server picks when a client offers the first accepted hybrid beside X25519 with a key
    # share for each (as Chrome and Firefox do); `preferred` says whether it is the hybrid.
    chosen_beside_x25519: str | None = None
    preferred: bool | None = None
    # The same offer with a key share for X25519 only: True when the server asks (HelloRetryRequest) for
    # the hybrid anyway, so clients that predicted only X25519 get it too.
    retry_for_hybrid: bool | None = None
    error: str | None = None

    @property
    def accepted(self) -> list[str]:
        return [g for g, ok in self.groups.items() if ok]


class ProtocolFacts(_Model):
    """What SSL Labs shows beside the grade and no clause judges (auditor.scan.protocol_facts).
    None: not measured (why: `notes`)."""

    ocsp_stapling: bool | None = None  # a stapled OCSP response came with a served certificate
    alpn: str | None = None  # the protocol the server selected when offered "h2, http/1.1"
    http2: bool | None = None  # it selected h2
    alpn_protocol: str | None = None  # the TLS version ALPN was read over
    session_ids: bool | None = None  # TLS 1.2: the ServerHello assigns a session ID
    session_tickets: bool | None = None  # TLS 1.2: the server acknowledges the session ticket extension
    resumption: bool | None = None  # a second connection resumed the first one's session
    resumption_protocol: str | None = None  # the TLS version resumption was tried with
    resumed_with: Literal["session id", "ticket"] | None = None  # how (TLS 1.3: always a ticket)
    early_data: bool | None = None  # TLS 1.3 0-RTT: the server accepted early data on resumption
    notes: list[str] = Field(default_factory=list)


class Probe(StrEnum):
    """One evidence-collecting step of the TLS scan, as a key of TlsEvidence.attempts. The sslyze-backed
    ones carry sslyze's ScanCommand value; SCAN is the scan as a whole (the server stopped answering
    partway, so no result after that point is worth a pass)."""

    SCAN = "scan"
    SUITES_SSL_2_0 = "suites_ssl_2_0"
    SUITES_SSL_3_0 = "suites_ssl_3_0"
    SUITES_TLS_1_0 = "suites_tls_1_0"
    SUITES_TLS_1_1 = "suites_tls_1_1"
    SUITES_TLS_1_2 = "suites_tls_1_2"
    SUITES_TLS_1_3 = "suites_tls_1_3"
    GROUPS = "groups"
    CERTIFICATE_INFO = "certificate_info"
    HEARTBLEED = "heartbleed"
    OPENSSL_CCS_INJECTION = "openssl_ccs_injection"
    ROBOT = "robot"
    SESSION_RENEGOTIATION = "session_renegotiation"
    TLS_COMPRESSION = "tls_compression"
    TLS_FALLBACK_SCSV = "tls_fallback_scsv"
    # Our own probes beside sslyze's (each records its attempt when it did not complete):
    SIMULATIONS = "simulations"  # reference clients' handshakes (auditor.scan.simulate)
    POST_QUANTUM = "post_quantum"  # hybrid ML-KEM groups (auditor.scan.post_quantum)
    DH_SIZES = "dh_sizes"  # the size of DH groups the scanning client refused (auditor.scan.dh_size)
    OCSP = "ocsp"  # the OCSP responders asked (auditor.scan.revocation)
    FACTS = "facts"  # ALPN, session resumption, 0-RTT (auditor.scan.protocol_facts)

    @classmethod
    def suites(cls, version: str) -> Probe:
        """The suite enumeration of one protocol version ("TLS 1.2" -> SUITES_TLS_1_2)."""
        return cls("suites_" + version.lower().replace(" ", "_").replace(".", "_"))


class AttemptStatus(StrEnum):
    """How a probe ended, as sslyze's ScanCommandAttemptStatusEnum says it."""

    COMPLETED = "completed"
    ERROR = "error"
    NOT_SCHEDULED = "not_scheduled"  # not asked for (an exact --thorough command set)


class AttemptErrorReason(StrEnum):
    """Why a probe gave no result: what a reader needs to tell a flaky network from a hostile server
    from our own bug (auditor.scan.attempts classifies the exceptions)."""

    SERVER_STOPPED_ANSWERING = "server_stopped_answering"  # the ledger stopped: rate limiter, firewall
    TIMEOUT = "timeout"  # a connection got no complete answer within the timeout
    NO_ANSWER = "no_answer"  # closed, reset or silent at every try, so nothing was learnt
    CONNECTION_FAILED = "connection_failed"  # reset or rejected before an answer (sslyze: refused too)
    CONNECTION_REFUSED = "connection_refused"  # nothing listens on the port (a closed port is a fact)
    MALFORMED_ANSWER = "malformed_answer"  # an answer outside the protocol (not HTTP, oversized headers)
    CLIENT_CERTIFICATE_NEEDED = "client_certificate_needed"
    SCANNER_BUG = "scanner_bug"  # an unexpected exception in sslyze or in our own probe


class Attempt(_Model):
    """The outcome of one probe (sslyze's ScanCommandAttempt without the result, which is the evidence)."""

    status: AttemptStatus
    reason: AttemptErrorReason | None = None  # set when status is error
    detail: str = ""  # what happened, in one line: an exception's message, the ledger's note

    @model_validator(mode="after")
    def _reason_iff_error(self) -> Attempt:
        if (self.status is AttemptStatus.ERROR) != (self.reason is not None):
            raise ValueError("an attempt has a reason exactly when its status is error")
        return self

    @classmethod
    def failed(cls, reason: AttemptErrorReason, detail: str = "") -> Attempt:
        return cls(status=AttemptStatus.ERROR, reason=reason, detail=detail[:300])

    def why(self) -> str:
        """Why this probe gave no result, in words: "server stopped answering: <detail>"."""
        words = (self.reason or self.status).replace("_", " ")
        return f"{words}: {self.detail}" if self.detail else words


def _legacy_probe(key: str) -> Probe:
    """The probe an old `errors` key named: "suites TLS 1.2", an sslyze command value, "unanswered"."""
    if key.startswith("suites "):
        return Probe.suites(key.removeprefix("suites "))
    if key.endswith("_cipher_suites"):  # sslyze's commands of --thorough
        return Probe("suites_" + key.removesuffix("_cipher_suites"))
    return {"unanswered": Probe.SCAN, "elliptic_curves": Probe.GROUPS}.get(key) or Probe(key)


def _legacy_reason(key: str, text: str) -> AttemptErrorReason:
    """The reason an old free-text error stood for (the texts auditor <= this version wrote)."""
    if key == "unanswered" or "stopped answering" in text:
        return AttemptErrorReason.SERVER_STOPPED_ANSWERING
    if text.startswith("not tested:") or "no complete answer" in text or "TimedOut" in text:
        return AttemptErrorReason.TIMEOUT  # an Unanswered that was not the ledger's stop: one deadline
    if text.startswith("TLS_FALLBACK_SCSV not tested"):
        return AttemptErrorReason.NO_ANSWER
    if text.startswith("CLIENT_CERTIFICATE_NEEDED"):
        return AttemptErrorReason.CLIENT_CERTIFICATE_NEEDED
    if text.startswith(("CONNECTIVITY_ISSUE", "ConnectionToServerFailed", "ServerRejectedTlsHandshake")):
        return AttemptErrorReason.CONNECTION_FAILED
    return AttemptErrorReason.SCANNER_BUG


def legacy_http_attempt(text: str) -> Attempt:
    """The attempt an old HttpResponse.error stood for (the texts auditor.scan.http wrote)."""
    if text == "timed out":
        reason = AttemptErrorReason.TIMEOUT
    elif text == "connection refused":
        reason = AttemptErrorReason.CONNECTION_REFUSED
    elif text.startswith("the HTTP probe failed"):
        reason = AttemptErrorReason.SCANNER_BUG
    elif text.startswith("response headers larger than"):
        reason = AttemptErrorReason.MALFORMED_ANSWER
    else:  # another httpx error: reset, TLS failure, a non-HTTP answer (not told apart before)
        reason = AttemptErrorReason.CONNECTION_FAILED
    return Attempt.failed(reason, text)


def legacy_attempts(errors: dict[str, str]) -> dict[Probe, Attempt]:
    """The old `errors` (scan phase -> why it failed) as typed attempts; an unknown phase is refused."""
    return {
        _legacy_probe(key): Attempt.failed(_legacy_reason(key, text), text.removeprefix("not tested: "))
        for key, text in errors.items()
    }


class TlsEvidence(_Model):
    protocols: list[ProtocolSupport] = Field(default_factory=list)
    certificates: list[CertificateDeployment] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)  # supported ECDH groups/curves
    vulnerabilities: Vulnerabilities = Field(default_factory=Vulnerabilities)
    # The probes that did not complete (error or not scheduled); a probe absent here completed.
    attempts: dict[Probe, Attempt] = Field(default_factory=dict)
    simulations: list[HandshakeSimulation] = Field(default_factory=list)
    post_quantum: PostQuantum | None = None  # None: not probed (an exact --thorough command set)
    facts: ProtocolFacts | None = None  # None: not probed (an older report, or --thorough)
    connections: int | None = None  # TCP connections the TLS scan opened (fast engine; None for --thorough)
    # phase -> connections: "connectivity", "suites", "batches", "order", "groups", "simulation",
    # "facts" (auditor.scan.protocol_facts), and one per sslyze command ("certificate_info", "robot", ...)
    connections_by_phase: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_errors(cls, data: Any) -> Any:
        """Reports and stored scans written before attempts carry `errors`: they load as attempts."""
        if isinstance(data, dict) and "errors" in data:
            data = dict(data)
            data["attempts"] = {**legacy_attempts(data.pop("errors") or {}), **data.get("attempts", {})}
        return data

    def attempt(self, probe: Probe) -> Attempt:
        """How `probe` ended: the recorded attempt, or completed when none was recorded."""
        return self.attempts.get(probe) or Attempt(status=AttemptStatus.COMPLETED)

    def protocol(self, version: str) -> ProtocolSupport | None:
        return next((p for p in self.protocols if p.version == version), None)

    def accepted_suites(self) -> list[tuple[str, CipherSuite]]:
        return [(p.version, s) for p in self.protocols if p.supported for s in p.suites]


# ---------------------------------------------------------------- HTTP evidence


class Cookie(_Model):
    """One Set-Cookie line. The value is never kept: it may be a session secret."""

    name: str  # "" for a line without "=": its whole text is the value (RFC 6265bis 5.6), never kept
    raw_attributes: str  # the line with its value replaced by "<redacted>"
    secure: bool
    http_only: bool
    same_site: str | None  # as sent ("Lax", "Strict", "None", or anything else)
    domain: str | None = None
    path: str | None = None
    max_age: int | None = None  # the Max-Age a browser applies (the last valid one); <= 0 deletes the cookie
    expires: datetime | None = (
        None  # the Expires date as a browser parses it (UTC); ignored when max_age is set
    )


class HttpResponse(_Model):
    url: str
    status: int | None = None
    # Set on a response reached by following a same-host HTTPS redirect: the URL whose Location led here.
    redirected_from: str | None = None
    # Why a redirect of this response was not followed (another host, plain http://, the hop limit...).
    redirect_not_followed: str | None = None
    headers: list[tuple[str, str]] = Field(default_factory=list)  # Set-Cookie values redacted
    location: str | None = None
    cookies: list[Cookie] = Field(default_factory=list)
    insecure_references: list[str] = Field(default_factory=list)  # http:// sub-resources loaded
    insecure_form_actions: list[str] = Field(default_factory=list)  # forms posting to http://
    # Why the two lists above judge only part of the page (size cap, slow body, nesting too deep).
    partial_analysis: str | None = None
    error: str | None = None  # why there is no response, in words (kept for the reports)
    attempt: Attempt | None = None  # the same, typed: set exactly when `error` is

    @model_validator(mode="before")
    @classmethod
    def _attempt_from_error(cls, data: Any) -> Any:
        """Reports written before typed attempts carry `error` only: it loads as an attempt too."""
        if isinstance(data, dict) and data.get("error") and data.get("attempt") is None:
            data = {**data, "attempt": legacy_http_attempt(data["error"])}
        return data

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class ScriptTag(_Model):
    """One <script src> of the landing page (Subresource Integrity)."""

    src: str  # as written in the page (at most 2,000 characters)
    integrity: bool  # a non-empty integrity attribute


class PageFacts(_Model):
    """What the landing page's HTML says that a header could say too, and its scripts: read by the
    web grade as Mozilla's HTTP Observatory reads them (auditor.scan.web_probe)."""

    url: str
    content_type: str | None = None  # the media type, lower case, without parameters
    meta_csp: list[str] = Field(default_factory=list)  # <meta http-equiv="Content-Security-Policy" content>
    meta_referrer: list[str] = Field(default_factory=list)  # <meta name="referrer" content>
    script_count: int = 0  # every <script>, inline ones included
    scripts: list[ScriptTag] = Field(default_factory=list)  # the <script src> ones (at most 200)
    note: str | None = None  # why only part of the page was read
    error: str | None = None  # why the page could not be read


class CorsAnswer(_Model):
    """The answer to a CORS preflight (OPTIONS with an Origin) for the landing page."""

    url: str
    origin: str  # the Origin sent
    status: int | None = None
    allow_origin: str | None = None  # Access-Control-Allow-Origin, repeated ones joined with ", "
    allow_credentials: str | None = None  # Access-Control-Allow-Credentials, likewise
    error: str | None = None


class RedirectHop(_Model):
    url: str
    status: int | None = None  # None: not fetched (another host), or no answer (see WebProbe.route_note)


class WebProbe(_Model):
    """What the web grade needs beyond the clauses' evidence: the landing page's HTML, a CORS
    preflight, and the whole redirect route from http://host/ (auditor.scan.web_probe)."""

    page: PageFacts | None = None  # None: the landing response is no page (an error, or not HTML)
    cors: CorsAnswer | None = None
    # http://host/ first, then each Location followed (on the audited host only); empty: no plain-HTTP answer
    http_route: list[RedirectHop] = Field(default_factory=list)
    route_note: str | None = None  # why the route stops where it does, when it is not at a final answer
    error: str | None = None  # why the probe failed (what it had collected is kept)


class HttpEvidence(_Model):
    # Every HTTPS response a browser sees: "/" first, then its same-host redirect hops (redirected_from
    # set), then each configured path followed by its own hops.
    https: list[HttpResponse] = Field(default_factory=list)
    plain_http: HttpResponse | None = None  # the answer on the plain-HTTP port (typically the redirect)
    web: WebProbe | None = None  # for the web grade; None: not probed

    def landing(self) -> list[HttpResponse]:
        """The responses of a first visit to "/", before any interaction: the plain-HTTP answer,
        the first HTTPS response and the same-host redirects it leads through."""
        out = [self.plain_http] if self.plain_http is not None and self.plain_http.error is None else []
        for index, response in enumerate(self.https):
            if index > 0 and response.redirected_from is None:
                break
            out.append(response)
        return out


# ---------------------------------------------------------------- DNS evidence


class CaaRecord(_Model):
    """One CAA resource record (RFC 8659 §4.1), as served."""

    flags: int
    tag: str  # "issue", "issuewild", "iodef", ...
    value: str

    @property
    def critical(self) -> bool:
        return bool(self.flags & 0x80)


class CaaFacts(_Model):
    """The relevant CAA RRset of the name (RFC 8659 §3): the first one found climbing from the name
    towards its top-level domain (auditor.scan.dns_facts)."""

    owner: str | None = None  # the name the records were found at; None: no CAA record (or the lookup failed)
    records: list[CaaRecord] = Field(default_factory=list)
    error: str | None = None  # the lookup failed (timeout, SERVFAIL): unknown, never "no CAA"

    def issuers(self, wildcard: bool = False) -> list[str] | None:
        """The CA domains allowed to issue (RFC 8659 §4.2, §4.3): None when any CA may (no record of
        the kind); an empty list when an `issue ";"` forbids every CA."""
        issue = [r for r in self.records if r.tag.lower() == "issue"]
        if wildcard:
            issue = [r for r in self.records if r.tag.lower() == "issuewild"] or issue
        if not issue:
            return None
        # "ca.example; account=..." -> "ca.example"
        return [d for d in (r.value.split(";", 1)[0].strip().lower() for r in issue) if d]


class DnsFacts(_Model):
    """What DNS said about the target's name, asked once per target."""

    # where the addresses came from: the system resolver, the [dns] nameservers, or the target itself
    # (`ips`, `--ip`, or a URL whose host is an address: then no DNS query is made)
    source: Literal["system", "nameservers", "given"]
    addresses: list[str] = Field(default_factory=list)  # every address audited, IPv4 first
    caa: CaaFacts | None = None  # None: not looked up (the addresses were given)


class Evidence(_Model):
    tls: TlsEvidence = Field(default_factory=TlsEvidence)
    http: HttpEvidence = Field(default_factory=HttpEvidence)
    dns: DnsFacts | None = None  # None: an older report


# ---------------------------------------------------------------- judgements


class ExposurePoint(_Model):
    """One step of an episode's timeline: a scan that saw the finding fail, or a gap (no verdict)."""

    at: datetime  # the scan's time; for a missed scan, the last scan before it
    state: Literal["fail", "gap"]
    why: str | None = None  # a gap's reason: "missed scan", "not audited", "not judged"


class Exposure(_Model):
    """How long a failing finding has been failing, derived from the stored scans (auditor.exposure)."""

    episode: str  # stable id: the finding's key and its first-seen time
    first_seen: datetime  # the first scan of this episode that saw it fail
    last_seen: datetime  # the latest scan that saw it fail (this one)
    scans: int  # scans that saw it fail in this episode (gaps are not counted)
    gaps: int = 0  # missed nights or scans that could not judge it, inside the episode
    timeline: list[ExposurePoint] = Field(default_factory=list)  # the episode's last 30 points, oldest first


class Finding(_Model):
    clause: ClauseId
    # The outcome, stable across wording changes (e.g. "hsts-max-age-short"): one id, one status, one
    # clause. History diffs and tests match on it. None: a report written before ids were recorded.
    result_id: str | None = Field(None, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    status: Status
    title: str
    detail: str = ""
    evidence: list[str] = Field(default_factory=list)  # the facts, one per line
    remediation: str | None = None  # what to change: nginx and Apache lines
    exposure: Exposure | None = None  # failing findings of a stored history: failing since when


def clause_statuses(findings: Iterable[Finding]) -> dict[ClauseId, Status]:
    """The worst status of each clause (WORST_FIRST), in the findings' order: how a clause fares."""
    out: dict[ClauseId, Status] = {}
    for f in findings:
        if f.clause not in out or WORST_FIRST.index(f.status) < WORST_FIRST.index(out[f.clause]):
            out[f.clause] = f.status
    return out


class GradeCap(_Model):
    grade: str
    reason: str
    rule: str | None = None  # the row id in auditor.grading_rules (e.g. "rc4"); None: an older report


class Grade(_Model):
    letter: str
    score: int
    categories: dict[str, int] = Field(default_factory=dict)
    caps: list[GradeCap] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    letter_ignoring_trust: str | None = None
    # The rating guide the rules follow (auditor.grading_rules.RATING_RULES), beside the check rules'
    # TargetResult.rules_version; None: an older report.
    rating_rules: str | None = None


class WebModifier(_Model):
    """One test of the web grade: the Observatory's test id and result name, and its points."""

    test: str  # e.g. "content-security-policy"
    result: str  # e.g. "csp-implemented-with-unsafe-inline"
    points: int  # the score modifier (bonuses count only when the penalties leave 90 or more)
    reason: str  # what was seen, in one line


class WebGrade(_Model):
    """The landing page scored as Mozilla's HTTP Observatory scores it (auditor.web_grade): 100,
    plus every modifier; bonuses only when the penalties alone leave 90 or more. Information beside
    the SSL Labs grade, not a clause. `letter` None: not graded (why: `error`)."""

    letter: str | None = None
    score: int | None = None
    algorithm_version: int = 6  # the Observatory's ALGORITHM_VERSION these rules follow
    page: str | None = None  # the URL judged
    modifiers: list[WebModifier] = Field(default_factory=list)
    differences: list[str] = Field(
        default_factory=list
    )  # where this run sees less than the Observatory would
    error: str | None = None


class Change(_Model):
    """One difference between the previous scan of a target and this one."""

    kind: str  # "grade", "endpoint", "clause", "protocol", "suite", "certificate", "error"
    subject: str  # what changed: a clause id, a protocol, a suite name, "leaf certificate"
    before: str | None = None
    after: str | None = None
    detail: str = ""


class TargetChanges(_Model):
    previous_scan_at: datetime
    previous_scan_id: str | None = None
    changes: list[Change] = Field(default_factory=list)


class MozillaDeviation(_Model):
    """One way the server departs from a Mozilla server-side TLS configuration."""

    key: str  # sslyze's issue key where sslyze judges it too (tls_versions, ciphers, ...), else hsts_min_age, ocsp_staple
    detail: str


class MozillaConformance(_Model):
    """The scan judged against one configuration of Mozilla's server-side TLS guidelines
    (auditor.mozilla_profile). `conformant` None: no deviation found, but something was not measured."""

    profile: str  # "modern", "intermediate"
    guideline_version: str  # "6.0"
    conformant: bool | None
    deviations: list[MozillaDeviation] = Field(default_factory=list)
    not_judged: list[str] = Field(default_factory=list)  # what could not be judged, and why
    advice: list[str] = Field(default_factory=list)  # recommendations that are not deviations


class TargetRef(_Model):
    url: str
    host: str
    port: int
    ip: str | None = None
    name: str | None = None


class EndpointResult(_Model):
    """One address of the target's name, audited on its own (auditor.endpoints merges them)."""

    address: str
    compliant: bool
    letter: str | None = None  # None: not graded (why: `error`)
    error: str | None = None  # why this address could not be audited
    # its findings on the clauses where the endpoints disagree (the target's findings are the worst's)
    findings: list[Finding] = Field(default_factory=list)
    duration_s: float


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
    # Mozilla's server-side TLS configurations (intermediate, modern), judged from the evidence
    mozilla: list[MozillaConformance] = Field(default_factory=list)
    web_grade: WebGrade | None = None  # Mozilla HTTP Observatory's score of the landing page
    # which auditor and which check rules produced this result (a stored entry's clocks restart on upgrades)
    auditor_version: str | None = None
    rules_version: int | None = (
        None  # auditor.exposure.RULES_VERSION; None: before versions were recorded (1)
    )
    # every address of the name, audited one after the other; empty: an older report
    endpoints: list[EndpointResult] = Field(default_factory=list)

    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status is Status.FAIL]

    def failed_clauses(self) -> list[str]:
        """The clause ids broken, once each, in report order: the number of violations."""
        return list(dict.fromkeys(f.clause for f in self.failures()))

    def clause_statuses(self) -> dict[ClauseId, Status]:
        """The worst status of each clause (WORST_FIRST), in the findings' order."""
        return clause_statuses(self.findings)


class ReportMeta(_Model):
    """Where a report came from and what became of its results; only what is known is written."""

    config_sha256: str | None = None  # the config file that produced the report
    config_path: str | None = None
    run: Literal["nightly"] | None = None  # the scheduler's job (absent: `auditor audit`)
    demo: bool | None = None  # `auditor demo`'s throwaway sites
    evidence_log: str | None = None  # the history the results were appended to
    evidence_log_head: str | None = None  # its head hash after this run
    pruned_entries: int | None = None  # entries the nightly run pruned under retention
    not_stored: str | None = None  # why the results are NOT in the history

    @model_serializer(mode="wrap")
    def _known_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class AuditReport(_Model):
    schema_version: str = SCHEMA_VERSION
    generated_at: datetime
    tool_version: str
    targets: list[TargetResult]
    meta: ReportMeta = Field(default_factory=ReportMeta)

    @property
    def any_error(self) -> bool:
        return any(t.error for t in self.targets)

    @property
    def all_compliant(self) -> bool:
        return all(t.compliant for t in self.targets)
