"""The certificate clauses: 11.2-cert-trusted, -validation-level, -signature, -renewal."""

from __future__ import annotations

from datetime import timedelta

from auditor.model import Certificate, CertificateDeployment, Finding, Status
from checks.base import CheckContext, finding, fix

EV_OID = "2.23.140.1.1"
OV_OID = "2.23.140.1.2.2"
IV_OID = "2.23.140.1.2.3"
DV_OID = "2.23.140.1.2.1"

CHAIN_FIX = fix(
    "ssl_certificate /etc/ssl/example.com/fullchain.pem;  # leaf first, then the intermediates",
    "SSLCertificateFile /etc/ssl/example.com/fullchain.pem  # Apache 2.4.8+: leaf + intermediates",
    "Serve the leaf followed by every intermediate CA certificate.",
)
REISSUE_FIX = fix(
    "ssl_certificate /etc/ssl/example.com/fullchain.pem;\nssl_certificate_key /etc/ssl/example.com/privkey.pem;",
    "SSLCertificateFile /etc/ssl/example.com/fullchain.pem\nSSLCertificateKeyFile /etc/ssl/example.com/privkey.pem",
    "Obtain a certificate from a publicly trusted CA that names this host, then install it:",
)
LEVEL_FIX = ("Buy an OV (organisation-validated) or EV certificate from a CA that verifies the company's "
             "identity, and install it with the ssl_certificate (nginx) / SSLCertificateFile (Apache) lines.")
SIGNATURE_FIX = "Reissue the certificate (and use a CA whose intermediates are) signed with SHA-256 or stronger."
RENEW_FIX = ("Renew now (e.g. `certbot renew --force-renewal`), reload the server (`systemctl reload nginx` / "
             "`apachectl graceful`), and check why automatic renewal did not run (`systemctl list-timers certbot*`).")


def _deployment(ctx: CheckContext) -> CertificateDeployment | None:
    certs = ctx.evidence.tls.certificates
    return certs[0] if certs and certs[0].received_chain else None


def _missing(clause: str, ctx: CheckContext) -> list[Finding]:
    reason = ctx.evidence.tls.errors.get("certificate_info", "no certificate was received")
    return [finding(clause, Status.ERROR, "The certificate could not be retrieved", reason)]


def _describe(cert: Certificate) -> str:
    return f"{cert.subject} (issuer {cert.issuer})"


def check_trusted(ctx: CheckContext) -> list[Finding]:
    dep = _deployment(ctx)
    if dep is None:
        return _missing("11.2-cert-trusted", ctx)
    leaf = dep.received_chain[0]
    if ctx.custom_ca:
        stores = [t for t in dep.trust if t.store == "custom"]
        required = "the configured CA bundle"
    else:
        stores = [t for t in dep.trust if t.store in ctx.policy.trust_stores]
        required = ", ".join(ctx.policy.trust_stores)
    facts = [f"leaf: {_describe(leaf)}", f"chain sent: {len(dep.received_chain)} certificate(s)"]
    # the stores the verdict rests on first; the others are listed for information only
    facts += [f"{t.store} {t.version if t.version != 'N/A' else ''}".strip()
              + f": {'trusted' if t.trusted else 'NOT trusted'}"
              + (f" ({t.error})" if t.error and not t.trusted else "")
              + ("" if t in stores else " (not judged)") for t in sorted(dep.trust, key=lambda t: t not in stores)]
    problems: list[tuple[str, str]] = []
    if not dep.hostname_matches:
        problems.append((f"The certificate does not name {ctx.host}",
                         f"subjectAltName: {', '.join(leaf.subject_alt_names) or '(none)'}"))
    if ctx.now > leaf.not_after:
        problems.append(("The certificate has expired", f"notAfter {leaf.not_after:%Y-%m-%d %H:%M} UTC"))
    elif ctx.now < leaf.not_before:
        problems.append(("The certificate is not yet valid", f"notBefore {leaf.not_before:%Y-%m-%d} UTC"))
    untrusted = [t for t in stores if not t.trusted]
    if not stores or untrusted:
        names = ", ".join(t.store for t in untrusted) or required
        if len(dep.received_chain) == 1 and not leaf.self_signed:
            problems.append(("The chain is incomplete: the intermediate certificate is missing",
                             f"only the leaf was sent; untrusted by {names}"))
        elif leaf.self_signed:
            problems.append(("The certificate is self-signed", f"untrusted by {names}"))
        else:
            problems.append((f"The chain is not trusted by {names}",
                             next((t.error for t in untrusted if t.error), "") or ""))
    if problems:
        title = problems[0][0] if len(problems) == 1 else f"{len(problems)} trust problems: " + "; ".join(
            p[0] for p in problems)
        remedy = CHAIN_FIX if "incomplete" in title else REISSUE_FIX
        return [finding("11.2-cert-trusted", Status.FAIL, title, " ".join(p[1] for p in problems if p[1]),
                        facts, remedy)]
    return [finding("11.2-cert-trusted", Status.PASS, f"Trusted by {required}, host name matches",
                    f"The chain validates and the certificate names {ctx.host}.", facts)]


def validation_level(dep: CertificateDeployment) -> str:
    leaf = dep.received_chain[0]
    oids = set(leaf.policy_oids)
    if EV_OID in oids or dep.mozilla_ev:
        return "EV"
    if OV_OID in oids:
        return "OV"
    if IV_OID in oids:
        return "IV"
    if DV_OID in oids:
        return "DV"
    return "unknown"


def check_validation_level(ctx: CheckContext) -> list[Finding]:
    dep = _deployment(ctx)
    if dep is None:
        return _missing("11.2-cert-validation-level", ctx)
    level = validation_level(dep)
    leaf = dep.received_chain[0]
    facts = [f"certificatePolicies: {', '.join(leaf.policy_oids) or '(none)'}", f"subject: {leaf.subject}"]
    allowed = ctx.policy.validation_levels
    if level in allowed:
        return [finding("11.2-cert-validation-level", Status.PASS, f"{level} certificate",
                        f"The certificate's policy identifies it as {level}.", facts)]
    detail = ("No CA/Browser Forum policy OID is present, so the identity verification cannot be shown."
              if level == "unknown" else f"The certificate is {level}; the policy requires {' or '.join(allowed)}.")
    return [finding("11.2-cert-validation-level", Status.FAIL, f"{level} certificate, not {'/'.join(allowed)}",
                    detail, facts, LEVEL_FIX)]


def check_signature(ctx: CheckContext) -> list[Finding]:
    dep = _deployment(ctx)
    if dep is None:
        return _missing("11.2-cert-signature", ctx)
    chain = [c for c in dep.received_chain if not c.self_signed] or dep.received_chain[:1]
    facts, weak = [], []
    for cert in chain:
        algo = cert.signature_hash or cert.signature_algorithm
        facts.append(f"{cert.subject}: {cert.signature_algorithm}")
        eddsa = cert.signature_hash is None and cert.signature_algorithm.lower() in {"ed25519", "ed448"}
        if not eddsa and (cert.signature_hash or "").lower() not in ctx.policy.signature_hashes:
            weak.append(f"{cert.subject} is signed with {algo}")
    if weak:
        return [finding("11.2-cert-signature", Status.FAIL, "Weak certificate signature", "; ".join(weak),
                        facts, SIGNATURE_FIX)]
    return [finding("11.2-cert-signature", Status.PASS, "Leaf and intermediates signed with SHA-256 or stronger",
                    "The root is not judged: its signature is not used by clients.", facts)]


def check_renewal(ctx: CheckContext) -> list[Finding]:
    dep = _deployment(ctx)
    if dep is None:
        return _missing("11.2-cert-renewal", ctx)
    leaf = dep.received_chain[0]
    left = leaf.not_after - ctx.now
    days_left = left.total_seconds() / 86400
    lifetime = leaf.not_after - leaf.not_before
    if ctx.policy.renewal_fraction is not None:
        window = lifetime * ctx.policy.renewal_fraction
        rule = (f"renew when {ctx.policy.renewal_fraction:.0%} of the {lifetime.days}-day lifetime remains "
                f"({window.total_seconds() / 86400:.0f} days)")
    else:
        window = timedelta(days=ctx.policy.renewal_days)
        rule = f"renew at least {ctx.policy.renewal_days} days before expiry"
    facts = [f"notBefore {leaf.not_before:%Y-%m-%d %H:%M} UTC", f"notAfter {leaf.not_after:%Y-%m-%d %H:%M} UTC",
             f"days left: {days_left:.1f}", f"rule applied: {rule}"]
    if left.total_seconds() <= 0:
        return [finding("11.2-cert-renewal", Status.FAIL, "The certificate has expired",
                        f"It expired {-days_left:.0f} days ago; renewal failed.", facts, RENEW_FIX)]
    if left < window:
        return [finding("11.2-cert-renewal", Status.FAIL, f"Only {days_left:.0f} days left: renewal is overdue",
                        f"Policy: {rule}. The certificate should already have been replaced.", facts, RENEW_FIX)]
    return [finding("11.2-cert-renewal", Status.PASS, f"{days_left:.0f} days left", f"Policy: {rule}.", facts)]


CHECKS = [("11.2-cert-trusted", check_trusted), ("11.2-cert-validation-level", check_validation_level),
          ("11.2-cert-signature", check_signature), ("11.2-cert-renewal", check_renewal)]
