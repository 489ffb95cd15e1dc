"""Small builders of Evidence for unit tests of the checks (no network).

By default the TLS evidence looks like the fast engine's (the default `auditor audit`): suites in
the server's order, that order measured as enforced, the preferred group, and a reference
browser's handshake simulation. `engine="thorough"` gives what an exhaustive --thorough scan
records instead: scanner order, enforcement not measured, no simulation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from auditor.model import (
    Certificate,
    CertificateDeployment,
    CipherSuite,
    Evidence,
    HandshakeSimulation,
    HttpEvidence,
    HttpResponse,
    PostQuantum,
    ProtocolSupport,
    TlsEvidence,
    TrustStoreResult,
    Vulnerabilities,
)
from auditor.scan.http import parse_set_cookie
from auditor.suites import describe

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
STORES = ["Mozilla", "Apple", "Android", "Java", "Windows"]


def cert(
    subject: str = "CN=good.test",
    *,
    issuer: str = "CN=Intermediate",
    days_left: float = 60,
    lifetime: int = 90,
    sig_hash: str | None = "sha256",
    sig_alg: str = "sha256WithRSAEncryption",
    policies: tuple[str, ...] = ("2.23.140.1.2.2",),
    sans: tuple[str, ...] = ("good.test",),
    self_signed: bool = False,
    key_type: str = "RSA",
    key_bits: int = 2048,
) -> Certificate:
    not_after = NOW + timedelta(days=days_left)
    return Certificate(
        subject=subject,
        issuer=subject if self_signed else issuer,
        serial="1",
        not_before=not_after - timedelta(days=lifetime),
        not_after=not_after,
        signature_algorithm=sig_alg,
        signature_hash=sig_hash,
        key_type=key_type,
        key_bits=key_bits,
        subject_alt_names=list(sans),
        policy_oids=list(policies),
        self_signed=self_signed,
        sha256_fingerprint="00",
    )


def deployment(
    chain: list[Certificate] | None = None,
    *,
    trusted: bool = True,
    matches: bool = True,
    stores: list[str] | None = None,
    error: str | None = None,
) -> CertificateDeployment:
    chain = chain or [cert(), cert("CN=Intermediate", issuer="CN=Root")]
    return CertificateDeployment(
        received_chain=chain,
        trust=[
            TrustStoreResult(
                store=s, trusted=trusted, error=None if trusted else (error or "unable to get issuer")
            )
            for s in (stores or STORES)
        ],
        hostname_matches=matches,
    )


MODERN_12 = [
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
]
MODERN_13 = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"]


VERSIONS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
REFERENCE_CLIENT = "Chrome (built evidence)"


def _group(name: str) -> str | None:
    """The key-exchange group a client gets with this suite: X25519 for (EC)DHE, DH for finite-field DHE."""
    if "DHE_" in name and "ECDHE" not in name:
        return "DH"
    return "X25519" if "ECDHE" in name or name.startswith(("TLS_AES", "TLS_CHACHA20")) else None


def _suite(name: str, dh_bits: int | None, engine: str) -> CipherSuite:
    group = _group(name) if engine == "fast" else None
    return describe(name, ephemeral_group=group, ephemeral_bits=dh_bits if group == "DH" else None)


def tls(
    suites: dict[str, list[str]] | None = None,
    *,
    deployments: list[CertificateDeployment] | None = None,
    vulns: Vulnerabilities | None = None,
    dh_bits: int | None = None,
    engine: str = "fast",
) -> TlsEvidence:
    """Suites per protocol, listed in the server's order (fast engine) or in scanner order (thorough)."""
    if engine not in ("fast", "thorough"):
        raise ValueError(f"engine must be 'fast' or 'thorough', not {engine!r}")
    suites = suites if suites is not None else {"TLS 1.2": MODERN_12, "TLS 1.3": MODERN_13}
    fast = engine == "fast"
    protocols = []
    for version in VERSIONS:
        names = suites.get(version, [])
        p = ProtocolSupport(
            version=version, supported=bool(names), suites=[_suite(n, dh_bits, engine) for n in names]
        )
        if fast and names:
            p.in_server_order = True
            p.server_enforces_order = True if len(names) > 1 else None
            p.preferred_group = next((_group(n) for n in names if _group(n)), None)
        protocols.append(p)
    simulations = []
    best = next((p for p in reversed(protocols) if p.supported and p.version.startswith("TLS")), None)
    if fast and best is not None:  # a reference browser offering everything gets the server's first choice
        simulations.append(
            HandshakeSimulation(
                client=REFERENCE_CLIENT, reference=True, protocol=best.version, suite=best.suites[0]
            )
        )
    return TlsEvidence(
        protocols=protocols,
        certificates=deployments if deployments is not None else [deployment()],
        groups=["X25519", "secp256r1"],
        vulnerabilities=vulns
        or Vulnerabilities(
            heartbleed=False,
            ccs_injection=False,
            robot="NOT_VULNERABLE_NO_ORACLE",
            secure_renegotiation=True,
            client_renegotiation_dos=False,
            compression=False,
            fallback_scsv=True,
        ),
        simulations=simulations,
        post_quantum=_post_quantum("TLS 1.3" in suites),
    )


def _post_quantum(tls13: bool) -> PostQuantum:
    """X25519MLKEM768 accepted and preferred with TLS 1.3 (11.3-quantum-resistance passes); none without it."""
    if not tls13:
        return PostQuantum(
            groups={"X25519MLKEM768": False, "SecP256r1MLKEM768": False, "SecP384r1MLKEM1024": False}
        )
    return PostQuantum(
        groups={"X25519MLKEM768": True, "SecP256r1MLKEM768": False, "SecP384r1MLKEM1024": False},
        chosen_beside_x25519="X25519MLKEM768",
        preferred=True,
        retry_for_hybrid=True,
    )


def page(
    url: str = "https://good.test/",
    *,
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    cookies: list[str] = (),
    mixed: list[str] = (),
    forms: list[str] = (),
) -> HttpResponse:  # type: ignore[assignment]
    heads = list(
        headers
        if headers is not None
        else [("Strict-Transport-Security", "max-age=63072000; includeSubDomains")]
    )
    parsed = [parse_set_cookie(c) for c in cookies]
    heads += [("Set-Cookie", c.raw_attributes) for c in parsed]
    return HttpResponse(
        url=url,
        status=status,
        headers=heads,
        cookies=parsed,
        insecure_references=list(mixed),
        insecure_form_actions=list(forms),
    )


def http(*pages: HttpResponse, plain: HttpResponse | None = None) -> HttpEvidence:
    if plain is None:
        plain = HttpResponse(url="http://good.test/", status=301, location="https://good.test/")
    return HttpEvidence(https=list(pages) or [page()], plain_http=plain)


def evidence(tls_evidence: TlsEvidence | None = None, http_evidence: HttpEvidence | None = None) -> Evidence:
    return Evidence(tls=tls_evidence or tls(), http=http_evidence or http())


def no_exposure():
    """A stored history with nothing failing (11.4-patch-window can judge: it passes)."""
    from auditor.exposure import ExposureHistory

    return ExposureHistory(NOW, {})
