"""The certificate clauses: 11.2-cert-trusted, -validation-level, -signature, -renewal.

Every certificate the server serves is judged (a dual RSA/ECDSA site serves two, to different
clients); with more than one, each finding names its certificate ("RSA 2048: ...").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from auditor.caa import CaaVerdict, judge_certificate
from auditor.chain import incomplete_chain, no_known_issuer
from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import VALUES, remediation
from auditor.checks.evidence import not_tested
from auditor.facts import span
from auditor.model import (
    Certificate,
    CertificateDeployment,
    CertificateTransparency,
    ClauseId,
    Finding,
    Probe,
    RevocationStatus,
    Sct,
    Status,
)

CHAIN_FIX = remediation(ClauseId.CERT_TRUSTED, "chain")
REISSUE_FIX = remediation(ClauseId.CERT_TRUSTED, "reissue")
PRIVATE_CA_HINT = VALUES["PRIVATE_CA_HINT"]
UNKNOWN_CA_FIX = remediation(ClauseId.CERT_TRUSTED, "unknown-ca")
LEVEL_FIX = remediation(ClauseId.CERT_VALIDATION_LEVEL, "level")
SIGNATURE_FIX = remediation(ClauseId.CERT_SIGNATURE, "signature")
REVOKED_FIX = remediation(ClauseId.CERT_TRUSTED, "revoked")
RENEW_FIX = remediation(ClauseId.CERT_RENEWAL, "renew")
CT_FIX = remediation(ClauseId.CERT_TRUSTED, "ct")
CAA_FIX = remediation(ClauseId.CERT_TRUSTED, "caa")
STAPLING_FIX = remediation(ClauseId.CERT_TRUSTED, "stapling")
CAA_MISSING_FIX = remediation(ClauseId.CERT_TRUSTED, "caa-missing")
# The stores whose trust makes a certificate publicly trusted, so subject to browsers' CT policies.
PUBLIC_STORES = ("Mozilla", "Apple", "Android", "Java", "Windows")
CT_RULE = (
    "Chrome's CT policy (https://googlechrome.github.io/CertificateTransparency/ct_policy.html) and "
    "Apple's (https://support.apple.com/en-us/103214) want SCTs from distinct logs: embedded, 2 for a "
    "certificate valid at most 180 days and 3 beyond; or 2 delivered by the TLS extension or stapled OCSP"
)


def _deployments(ctx: CheckContext) -> list[CertificateDeployment]:
    return [d for d in ctx.evidence.tls.certificates if d.received_chain]


def _labels(deployments: list[CertificateDeployment]) -> list[str]:
    """ "RSA 2048", "EC P-256"; two certificates of one kind are told apart by their serial."""
    labels = [d.label() for d in deployments]
    return [
        f"{label} (serial {d.received_chain[0].serial[:16]})" if labels.count(label) > 1 else label
        for label, d in zip(labels, deployments, strict=True)
    ]


def _each(
    clause: ClauseId, ctx: CheckContext, judge: Callable[[CheckContext, CertificateDeployment], Finding]
) -> list[Finding]:
    """`judge` applied to every served certificate; with several, each finding names its own."""
    deployments = _deployments(ctx)
    if not deployments:
        return _missing(clause, ctx)
    findings = [judge(ctx, d) for d in deployments]
    if len(deployments) == 1:
        return findings
    return [
        f.model_copy(
            update={
                "title": f"{label}: {f.title}",
                "evidence": [f"certificate: {label}, {d.received_chain[0].subject}", *f.evidence],
            }
        )
        for f, d, label in zip(findings, deployments, _labels(deployments), strict=True)
    ]


def _missing(clause: ClauseId, ctx: CheckContext) -> list[Finding]:
    title = "The certificate could not be retrieved"
    return [
        not_tested(
            ctx,
            clause,
            "cert-not-retrieved",
            title,
            Probe.CERTIFICATE_INFO,
            otherwise="no certificate was received",
        )
    ]


def _describe(cert: Certificate) -> str:
    return f"{cert.subject} (issuer {cert.issuer})"


def revocation_line(r: RevocationStatus) -> str:
    """One evidence line per revocation answer; only a verified "revoked" is judged."""
    source = (
        "stapled OCSP response" if r.source == "stapled" else f"OCSP responder {r.responder or ''}".strip()
    )
    produced = f", produced {r.produced_at:%Y-%m-%d %H:%M} UTC" if r.produced_at else ""
    if r.status == "good":
        return f"revocation: good ({source}{produced})"
    if r.status == "revoked":
        when = f" on {r.revoked_at:%Y-%m-%d}" if r.revoked_at else ""
        return f"revocation: REVOKED{when}, reason {r.reason or 'unspecified'} ({source}{produced})"
    if r.status == "unknown":
        return f"revocation: unknown to the {source} (not judged)"
    if r.status == "not_checked":
        return f"revocation: not checked: {r.reason}"
    return f"revocation: {source} not usable: {r.reason} (not judged)"


def check_trusted(ctx: CheckContext) -> list[Finding]:
    """Trust of every served certificate, then Certificate Transparency where the CT policy applies,
    then what the name's CAA records say of the certificates' issuers."""
    return _each(ClauseId.CERT_TRUSTED, ctx, _trusted) + _each_ct(ctx) + _each_caa(ctx) + _stapling(ctx)


def _stapling(ctx: CheckContext) -> list[Finding]:
    """With [policy] require_ocsp_stapling: a warning when the server staples no OCSP response (a fact
    the scan measures, auditor.scan.protocol_facts; not judged otherwise)."""
    facts = ctx.evidence.tls.facts
    if not ctx.policy.require_ocsp_stapling or facts is None or facts.ocsp_stapling is not False:
        return []
    return [
        finding(
            ClauseId.CERT_TRUSTED,
            "ocsp-not-stapled",
            Status.WARN,
            "No OCSP response is stapled",
            "[policy] require_ocsp_stapling is set, and the server sent no OCSP response with its "
            "certificate when asked (status_request): each client must ask the CA itself.",
            ["OCSP stapling: no"],
            STAPLING_FIX,
        )
    ]


def _caa_verdict(ctx: CheckContext, dep: CertificateDeployment) -> CaaVerdict | None:
    """None: CAA was not looked up (addresses given) or the lookup failed."""
    caa = ctx.evidence.dns.caa if ctx.evidence.dns else None
    if caa is None or caa.error is not None:
        return None
    leaf = dep.received_chain[0]
    return judge_certificate(caa, ctx.host, leaf.issuer, leaf.subject_alt_names, ctx.dns.ca_identifiers)


def caa_line(ctx: CheckContext, dep: CertificateDeployment) -> str | None:
    """The name's CAA records and what they say of this certificate's issuer, in one evidence line."""
    caa = ctx.evidence.dns.caa if ctx.evidence.dns else None
    if caa is None:
        return None
    if caa.error is not None:
        return f"CAA: not judged ({caa.error})"
    records = "; ".join(f'{r.flags} {r.tag} "{r.value}"' for r in caa.records)
    where = f"CAA at {caa.owner}: {records}" if caa.owner else "CAA: no record"
    verdict = _caa_verdict(ctx, dep)
    return f"{where} ({verdict.reason})" if verdict else where


def _each_caa(ctx: CheckContext) -> list[Finding]:
    """A warning for each certificate whose issuer the CAA records do not permit, or when the name has no
    CAA record and [dns] require_caa is set. A warning, not a failure: a CA checks CAA when it issues,
    and the records may have changed since; but the next renewal from that CA will be refused."""
    caa = ctx.evidence.dns.caa if ctx.evidence.dns else None
    if caa is None:
        return []
    if caa.error is not None:
        if not ctx.dns.require_caa:
            return []
        return [
            finding(
                ClauseId.CERT_TRUSTED,
                "caa-not-judged",
                Status.INFO,
                "CAA records could not be looked up",
                f"[dns] require_caa is set, but {caa.error}.",
                [f"CAA: {caa.error}"],
            )
        ]
    if caa.owner is None:
        if not ctx.dns.require_caa:
            return []
        return [
            finding(
                ClauseId.CERT_TRUSTED,
                "caa-missing",
                Status.WARN,
                f"No CAA record for {ctx.host}",
                "[dns] require_caa is set: the name (or a parent up to the top-level domain) should "
                "name the CAs allowed to issue for it (RFC 8659), so that no other CA will.",
                ["CAA: no record"],
                CAA_MISSING_FIX,
            )
        ]
    deployments = _deployments(ctx)
    out = []
    for dep, label in zip(deployments, _labels(deployments), strict=True):
        verdict = _caa_verdict(ctx, dep)
        if verdict is None or verdict.permitted is not False:
            continue
        title = "CAA records do not permit the CA that issued the certificate"
        out.append(
            finding(
                ClauseId.CERT_TRUSTED,
                "caa-ca-not-permitted",
                Status.WARN,
                f"{label}: {title}" if len(deployments) > 1 else title,
                f"{verdict.reason}. A CA checks CAA when it issues, so the records may have changed "
                "since; but this CA will refuse the next renewal.",
                [line for line in [caa_line(ctx, dep), f"leaf: {_describe(dep.received_chain[0])}"] if line],
                CAA_FIX,
            )
        )
    return out


def _logs(scts: list[Sct] | None) -> int:
    return len({s.log_id for s in scts or []})


def ct_line(ct: CertificateTransparency) -> str:
    """The SCTs of a certificate in one evidence line: per delivery, and the distinct logs."""

    def count(scts: list[Sct] | None, absent: str) -> str:
        return absent if scts is None else str(len(scts))

    every = ct.embedded + (ct.tls_extension or []) + (ct.ocsp or [])
    return (
        f"certificate transparency: {len(every)} SCTs from {_logs(every)} logs (embedded {len(ct.embedded)}, "
        f"TLS extension {count(ct.tls_extension, 'not measured')}, stapled OCSP {count(ct.ocsp, 'none stapled')})"
    )


def _publicly_trusted(dep: CertificateDeployment) -> bool:
    return any(t.trusted and t.store in PUBLIC_STORES for t in dep.trust)


def _each_ct(ctx: CheckContext) -> list[Finding]:
    """A finding for each publicly trusted certificate that falls short of the CT policy (or whose SCTs
    could not all be read); a compliant or privately issued one shows its SCTs in the trust evidence only."""
    deployments = _deployments(ctx)
    out = []
    for dep, label in zip(deployments, _labels(deployments), strict=True):
        if (found := _ct(dep)) is not None:
            named = len(deployments) > 1
            out.append(found.model_copy(update={"title": f"{label}: {found.title}"}) if named else found)
    return out


def _ct(dep: CertificateDeployment) -> Finding | None:
    ct = dep.ct
    if ct is None or not _publicly_trusted(dep):
        return None
    leaf = dep.received_chain[0]
    days = (leaf.not_after - leaf.not_before).total_seconds() / 86400
    embedded_needed = 2 if days <= 180 else 3
    delivered = (ct.tls_extension or []) + (ct.ocsp or [])
    if _logs(ct.embedded) >= embedded_needed or _logs(delivered) >= 2:
        return None
    facts = [
        ct_line(ct),
        f"lifetime: {days:.0f} days, so {embedded_needed} embedded SCTs from distinct logs are needed",
        *([ct.note] if ct.note else []),
    ]
    have = f"it has {_logs(ct.embedded)} embedded and {_logs(delivered)} delivered by TLS extension or OCSP"
    if ct.tls_extension is None:
        return finding(
            ClauseId.CERT_TRUSTED,
            "cert-ct-not-judged",
            Status.INFO,
            "Certificate Transparency not judged: the SCTs of the TLS extension were not measured",
            f"{CT_RULE}; {have}.",
            facts,
        )
    return finding(
        ClauseId.CERT_TRUSTED,
        "cert-ct-too-few-scts",
        Status.WARN,
        "Too few SCTs for browsers' Certificate Transparency policy",
        f"{CT_RULE}; {have}. Chrome and Safari reject such a certificate.",
        facts,
        CT_FIX,
    )


def _trusted(ctx: CheckContext, dep: CertificateDeployment) -> Finding:
    leaf = dep.received_chain[0]
    if ctx.custom_ca:
        stores = [t for t in dep.trust if t.store == "custom"]
        required = "the configured CA bundle"
    else:
        stores = [t for t in dep.trust if t.store in ctx.policy.trust_stores]
        required = ", ".join(ctx.policy.trust_stores)
    facts = [f"leaf: {_describe(leaf)}", f"chain sent: {len(dep.received_chain)} certificate(s)"]
    # the stores the verdict rests on first; the others are listed for information only
    facts += [
        f"{t.store} {t.version if t.version != 'N/A' else ''}".strip()
        + f": {'trusted' if t.trusted else 'NOT trusted'}"
        + (f" ({t.error})" if t.error and not t.trusted else "")
        + ("" if t in stores else " (not judged)")
        for t in sorted(dep.trust, key=lambda t: t not in stores)
    ]
    facts += [revocation_line(r) for r in dep.revocation]
    if dep.ct is not None:
        facts.append(ct_line(dep.ct) + ("" if _publicly_trusted(dep) else "; not required (private CA)"))
    if (line := caa_line(ctx, dep)) is not None:
        facts.append(line)
    problems: list[tuple[str, str, str]] = []  # (result id, title, detail), the most serious first
    if (revoked := dep.revoked()) is not None:
        problems.append(
            (
                "cert-revoked",
                "The certificate is revoked",
                revocation_line(revoked).removeprefix("revocation: ") + ".",
            )
        )
    if not dep.hostname_matches:
        problems.append(
            (
                "cert-name-mismatch",
                f"The certificate does not name {ctx.host}",
                f"subjectAltName: {', '.join(leaf.subject_alt_names) or '(none)'}",
            )
        )
    if ctx.now > leaf.not_after:
        problems.append(
            ("cert-expired", "The certificate has expired", f"notAfter {leaf.not_after:%Y-%m-%d %H:%M} UTC")
        )
    elif ctx.now < leaf.not_before:
        problems.append(
            (
                "cert-not-yet-valid",
                "The certificate is not yet valid",
                f"notBefore {leaf.not_before:%Y-%m-%d} UTC",
            )
        )
    untrusted = [t for t in stores if not t.trusted]
    if not stores or untrusted:
        names = ", ".join(t.store for t in untrusted) or required
        top = dep.received_chain[-1]
        if incomplete_chain(dep, custom_ca=ctx.custom_ca):
            where = (
                f"a client can fetch it from {leaf.ca_issuers[0]} (AIA caIssuers), but must not have to"
                if leaf.ca_issuers
                else "the configured CA bundle does not hold it"
            )
            problems.append(
                (
                    "cert-chain-incomplete",
                    "The chain is incomplete: the intermediate certificate is missing",
                    f"only the leaf was sent: its issuer {leaf.issuer} must follow it ({where}); "
                    f"untrusted by {names}",
                )
            )
        elif leaf.self_signed:
            problems.append(("cert-self-signed", "The certificate is self-signed", f"untrusted by {names}"))
        elif not ctx.custom_ca and untrusted and all(no_known_issuer(t.error) for t in untrusted):
            fetch = (
                ""
                if len(dep.received_chain) > 1
                else ", and the leaf names no place to fetch it (AIA caIssuers)"
            )
            problems.append(
                (
                    "cert-unknown-ca",
                    "The certificate is issued by an unknown CA",
                    f"{top.issuer} is in none of {names}{fetch}. {PRIVATE_CA_HINT}",
                )
            )
        else:
            problems.append(
                (
                    "cert-untrusted",
                    f"The chain is not trusted by {names}",
                    next((t.error for t in untrusted if t.error), "") or "",
                )
            )
    if problems:
        title = (
            problems[0][1]
            if len(problems) == 1
            else f"{len(problems)} trust problems: " + "; ".join(p[1] for p in problems)
        )
        kinds = {p[0] for p in problems}
        remedy = (
            REVOKED_FIX
            if "cert-revoked" in kinds
            else CHAIN_FIX
            if "cert-chain-incomplete" in kinds
            else UNKNOWN_CA_FIX
            if "cert-unknown-ca" in kinds
            else REISSUE_FIX
        )
        detail = " ".join(p[2] for p in problems if p[2])
        return finding(ClauseId.CERT_TRUSTED, problems[0][0], Status.FAIL, title, detail, facts, remedy)
    return finding(
        ClauseId.CERT_TRUSTED,
        "cert-trusted",
        Status.PASS,
        f"Trusted by {required}, host name matches",
        f"The chain validates and the certificate names {ctx.host}.",
        facts,
    )


def check_validation_level(ctx: CheckContext) -> list[Finding]:
    return _each(ClauseId.CERT_VALIDATION_LEVEL, ctx, _validation_level)


def _validation_level(ctx: CheckContext, dep: CertificateDeployment) -> Finding:
    level = dep.validation_level()
    leaf = dep.received_chain[0]
    facts = [f"certificatePolicies: {', '.join(leaf.policy_oids) or '(none)'}", f"subject: {leaf.subject}"]
    allowed = ctx.policy.validation_levels
    if level in allowed:
        return finding(
            ClauseId.CERT_VALIDATION_LEVEL,
            "cert-level-ok",
            Status.PASS,
            f"{level} certificate",
            f"The certificate's policy identifies it as {level}.",
            facts,
        )
    detail = (
        "No CA/Browser Forum policy OID is present, so the identity verification cannot be shown."
        if level == "unknown"
        else f"The certificate is {level}; the policy requires {' or '.join(allowed)}."
    )
    return finding(
        ClauseId.CERT_VALIDATION_LEVEL,
        "cert-level-insufficient",
        Status.FAIL,
        f"{level} certificate, not {'/'.join(allowed)}",
        detail,
        facts,
        LEVEL_FIX,
    )


def check_signature(ctx: CheckContext) -> list[Finding]:
    return _each(ClauseId.CERT_SIGNATURE, ctx, _signature)


def _signature(ctx: CheckContext, dep: CertificateDeployment) -> Finding:
    chain = [c for c in dep.received_chain if not c.self_signed] or dep.received_chain[:1]
    facts, weak = [], []
    for cert in chain:
        algo = cert.signature_hash or cert.signature_algorithm
        facts.append(f"{cert.subject}: {cert.signature_algorithm}")
        eddsa = cert.signature_hash is None and cert.signature_algorithm.lower() in {"ed25519", "ed448"}
        if not eddsa and (cert.signature_hash or "").lower() not in ctx.policy.signature_hashes:
            weak.append(f"{cert.subject} is signed with {algo}")
    if weak:
        return finding(
            ClauseId.CERT_SIGNATURE,
            "cert-signature-weak",
            Status.FAIL,
            "Weak certificate signature",
            "; ".join(weak),
            facts,
            SIGNATURE_FIX,
        )
    return finding(
        ClauseId.CERT_SIGNATURE,
        "cert-signature-strong",
        Status.PASS,
        "Leaf and intermediates signed with SHA-256 or stronger",
        "The root is not judged: its signature is not used by clients.",
        facts,
    )


def check_renewal(ctx: CheckContext) -> list[Finding]:
    return _each(ClauseId.CERT_RENEWAL, ctx, _renewal)


def _renewal(ctx: CheckContext, dep: CertificateDeployment) -> Finding:
    leaf = dep.received_chain[0]
    left = leaf.not_after - ctx.now
    days_left = left.total_seconds() / 86400
    lifetime = leaf.not_after - leaf.not_before
    if ctx.policy.renewal_fraction is not None:
        window = lifetime * ctx.policy.renewal_fraction
        rule = (
            f"renew when {ctx.policy.renewal_fraction:.0%} of the {lifetime.days}-day lifetime remains "
            f"({window.total_seconds() / 86400:.0f} days)"
        )
    else:
        window = timedelta(days=ctx.policy.renewal_days)
        rule = f"renew at least {ctx.policy.renewal_days} days before expiry"
    facts = [
        f"notBefore {leaf.not_before:%Y-%m-%d %H:%M} UTC",
        f"notAfter {leaf.not_after:%Y-%m-%d %H:%M} UTC",
        f"days left: {days_left:.1f}",
        f"rule applied: {rule}",
    ]
    due = leaf.not_after - window  # the clock of a late renewal: how long past the day it was due
    late = f"renewal {span(ctx.now - due)} overdue (due {due:%Y-%m-%d})"
    if left < window:
        facts.append(
            f"{late}: due {due:%Y-%m-%d %H:%M} UTC, notAfter minus the "
            f"{window.total_seconds() / 86400:.0f}-day renewal window"
        )
    if left.total_seconds() <= 0:
        return finding(
            ClauseId.CERT_RENEWAL,
            "cert-expired",
            Status.FAIL,
            f"The certificate has expired: {late}",
            f"It expired {-days_left:.0f} days ago; renewal failed.",
            facts,
            RENEW_FIX,
        )
    if left < window:
        return finding(
            ClauseId.CERT_RENEWAL,
            "cert-renewal-overdue",
            Status.FAIL,
            f"Only {days_left:.0f} days left: {late}",
            f"Policy: {rule}. The certificate should already have been replaced.",
            facts,
            RENEW_FIX,
        )
    return finding(
        ClauseId.CERT_RENEWAL,
        "cert-renewal-ok",
        Status.PASS,
        f"{days_left:.0f} days left",
        f"Policy: {rule}.",
        facts,
    )


CHECKS = [
    (ClauseId.CERT_TRUSTED, check_trusted),
    (ClauseId.CERT_VALIDATION_LEVEL, check_validation_level),
    (ClauseId.CERT_SIGNATURE, check_signature),
    (ClauseId.CERT_RENEWAL, check_renewal),
]
