"""The scan judged against Mozilla's server-side TLS guidelines (modern, intermediate).

The guideline is data: auditor/guidelines/mozilla-6.0.json is a copy of Mozilla's published
https://ssl-config.mozilla.org/guidelines/6.0.json (repository mozilla/ssl-config-generator,
src/static/guidelines/6.0.json, commit f196de9 of 2026-03-25, MPL-2.0). Any guideline file of that
format loads (`load_guideline`), sslyze's own 5.7 copy included, which the oracle test uses to compare
like with like.

Judged as sslyze's `--mozilla_config` does (sslyze/mozilla_tls_profile/tls_config_checker.py), with
sslyze's issue keys: protocols, TLS 1.3 and older suites, supported groups, smallest ECDH and DH sizes,
the certificate (path validation, key type, curve, RSA size, signature, lifetime) and the flaws sslyze
adds (compression, CCS injection, Heartbleed, ROBOT, insecure renegotiation, TLS_FALLBACK_SCSV).
Beyond sslyze: the hybrid post-quantum groups the server accepts count among its groups (sslyze cannot
see them), and the HSTS max-age and OCSP stapling the guideline asks for are judged (sslyze leaves
both out). Not judged: the Extended Master Secret extension, which sslyze requires and the scan does
not measure.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from auditor.hsts import hsts_verdict
from auditor.model import (
    CertificateDeployment,
    Evidence,
    MozillaConformance,
    MozillaDeviation,
    Probe,
    TargetResult,
)

GUIDELINE = Path(__file__).parent / "guidelines" / "mozilla-6.0.json"
PROFILES = ("intermediate", "modern")
# Mozilla's protocol names for ours.
_VERSIONS = {
    "SSL 2.0": "SSLv2",
    "SSL 3.0": "SSLv3",
    "TLS 1.0": "TLSv1",
    "TLS 1.1": "TLSv1.1",
    "TLS 1.2": "TLSv1.2",
    "TLS 1.3": "TLSv1.3",
}
# ANSI X9.62 names in the guideline -> the TLS registry's (SECG) names the evidence uses.
_CURVES = {"prime256v1": "secp256r1", "prime192v1": "secp192r1"}
_KEY_TYPES = {"EC": "ecdsa", "RSA": "rsa"}


class MozillaConfiguration(BaseModel):
    """One configuration of the guideline file (fields the judgement needs; the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")

    certificate_curves: list[str]
    certificate_signatures: list[str]
    certificate_types: list[str]
    ciphers: dict[str, list[str]]
    ciphersuites: list[str]
    dh_param_size: int | None
    ecdh_param_size: int | None
    hsts_min_age: int
    maximum_certificate_lifespan: int
    ocsp_staple: bool
    recommended_certificate_lifespan: int | None = None
    rsa_key_size: int | None
    server_preferred_order: bool
    tls_curves: list[str]
    tls_versions: list[str]


class Guideline(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: float
    href: str
    configurations: dict[str, MozillaConfiguration]

    @property
    def label(self) -> str:
        return f"{self.version:.1f}"


@cache
def load_guideline(path: Path = GUIDELINE) -> Guideline:
    return Guideline.model_validate(json.loads(path.read_text(encoding="utf-8")))


def _secg(names: list[str]) -> set[str]:
    return {_CURVES.get(n, n) for n in names}


def _ecdh_bits(group: str | None, bits: int | None) -> int | None:
    """An ECDH key size as sslyze counts it (OpenSSL reports 253 bits for X25519, sslyze adds 3)."""
    if bits is None or group in (None, "DH"):
        return None
    return bits + 3 if group == "X25519" and bits == 253 else bits


def _certificates(
    deployments: list[CertificateDeployment],
    config: MozillaConfiguration,
    issues: dict[str, str],
    advice: list[str],
) -> None:
    types, signatures = set(), set()
    for deployment in deployments:
        if not deployment.received_chain:
            continue
        leaf = deployment.received_chain[0]
        if not deployment.verified_chain:
            issues["certificate_path_validation"] = f"Certificate path validation failed for {leaf.subject}."
        types.add(_KEY_TYPES.get(leaf.key_type, leaf.key_type))
        if leaf.key_type == "EC" and leaf.key_curve not in _secg(config.certificate_curves):
            issues["certificate_curves"] = (
                f"Certificate curve is {leaf.key_curve}, should be one of "
                f"{sorted(_secg(config.certificate_curves))}."
            )
        if leaf.key_type == "RSA" and config.rsa_key_size and leaf.key_bits < config.rsa_key_size:
            issues["rsa_key_size"] = (
                f"RSA key size is {leaf.key_bits}, minimum allowed is {config.rsa_key_size}."
            )
        signatures.add(leaf.signature_algorithm)
        lifespan = (leaf.not_after - leaf.not_before).days
        if lifespan > config.maximum_certificate_lifespan:
            issues["maximum_certificate_lifespan"] = (
                f"Certificate life span is {lifespan} days, should be less "
                f"than {config.maximum_certificate_lifespan}."
            )
        elif config.recommended_certificate_lifespan and lifespan > config.recommended_certificate_lifespan:
            advice.append(
                f"{deployment.label()} certificate: life span {lifespan} days; Mozilla recommends "
                f"{config.recommended_certificate_lifespan}."
            )
    if types and not types & set(config.certificate_types):
        issues["certificate_types"] = (
            f"Deployed certificate types are {sorted(types)}, should have at least one "
            f"of {config.certificate_types}."
        )
    if signatures and not signatures & set(config.certificate_signatures):
        issues["certificate_signatures"] = (
            f"Deployed certificate signatures are {sorted(signatures)}, should have "
            f"at least one of {config.certificate_signatures}."
        )


def _protocols(
    evidence: Evidence, config: MozillaConfiguration, issues: dict[str, str], not_judged: list[str]
) -> None:
    tls = evidence.tls
    untested = [p.version for p in tls.protocols if p.supported is None]
    if untested:
        not_judged.append(f"protocols and suites: {', '.join(untested)} not tested")
    supported = [p for p in tls.protocols if p.supported]
    extra_versions = sorted(
        {_VERSIONS.get(p.version, p.version) for p in supported} - set(config.tls_versions)
    )
    if extra_versions:
        issues["tls_versions"] = f"TLS versions {extra_versions} are supported, but should be rejected."
    tls13 = {s.name for p in supported if p.version == "TLS 1.3" for s in p.suites}
    if extra := sorted(tls13 - set(config.ciphersuites)):
        issues["ciphersuites"] = f"TLS 1.3 cipher suites {extra} are supported, but should be rejected."
    older = {s.name for p in supported if p.version != "TLS 1.3" for s in p.suites}
    if extra := sorted(older - set(config.ciphers.get("iana", []))):
        issues["ciphers"] = f"Cipher suites {extra} are supported, but should be rejected."
    suites = [s for p in supported for s in p.suites]
    ecdh = [b for s in suites if (b := _ecdh_bits(s.ephemeral_group, s.ephemeral_bits)) is not None]
    if config.ecdh_param_size and ecdh and min(ecdh) < config.ecdh_param_size:
        issues["ecdh_param_size"] = (
            f"ECDH parameter size is {min(ecdh)}, should be superior or equal to {config.ecdh_param_size}."
        )
    dh = [
        b
        for s in suites
        if s.ephemeral_group == "DH" or s.ephemeral_bits_max is not None
        if (b := s.ephemeral_bits or s.ephemeral_bits_max)
    ]
    if config.dh_param_size and dh and min(dh) < config.dh_param_size:
        issues["dh_param_size"] = (
            f"DH parameter size is {min(dh)}, should be superior or equal to {config.dh_param_size}."
        )


def _groups(
    evidence: Evidence,
    config: MozillaConfiguration,
    issues: dict[str, str],
    not_judged: list[str],
    advice: list[str],
) -> None:
    tls = evidence.tls
    allowed = _secg(config.tls_curves)
    hybrids = tls.post_quantum.accepted if tls.post_quantum is not None else []
    supported = set(tls.groups) | set(hybrids)
    if (groups := tls.attempts.get(Probe.GROUPS)) is not None:
        not_judged.append(f"groups: {groups.why()}")
    if extra := sorted(supported - allowed):
        issues["tls_curves"] = f"TLS curves {extra} are supported, but should be rejected."
    missing_hybrids = [g for g in config.tls_curves if "MLKEM" in g and g not in hybrids]
    if missing_hybrids and tls.post_quantum is not None:
        advice.append(
            f"Mozilla lists {', '.join(missing_hybrids)} first among its groups; the server does not "
            "accept it (OpenSSL 3.5 or later serves it)."
        )


def _vulnerabilities(evidence: Evidence, issues: dict[str, str], not_judged: list[str]) -> None:
    v = evidence.tls.vulnerabilities
    flaws = {
        "tls_vulnerability_compression": (
            v.compression,
            True,
            "Server is vulnerable to TLS compression attacks.",
        ),
        "tls_vulnerability_ccs_injection": (
            v.ccs_injection,
            True,
            "Server is vulnerable to the OpenSSL CCS injection attack.",
        ),
        "tls_vulnerability_heartbleed": (
            v.heartbleed,
            True,
            "Server is vulnerable to the OpenSSL Heartbleed attack.",
        ),
        "tls_vulnerability_renegotiation": (
            v.secure_renegotiation,
            False,
            "Server is vulnerable to the insecure renegotiation attack.",
        ),
    }
    for key, (value, bad, text) in flaws.items():
        if value is None:
            not_judged.append(f"{key.removeprefix('tls_vulnerability_')}: not tested")
        elif value is bad:
            issues[key] = text
    if v.robot is None:
        not_judged.append("robot: not tested")
    elif v.robot == "VULNERABLE_STRONG_ORACLE":
        issues["tls_vulnerability_robot"] = "Server is vulnerable to the ROBOT attack."
    if v.fallback_scsv is False:  # None: one protocol, nothing to fall back to (or no answer: errors say so)
        issues["tls_vulnerability_fallback_scsv"] = (
            "Server is vulnerable to TLS downgrade attacks because it does "
            "not support the TLS_FALLBACK_SCSV mechanism."
        )


def _no_ocsp_responder(deployment: CertificateDeployment) -> bool:
    """The leaf names no OCSP responder (auditor.scan.revocation recorded that): nothing to staple."""
    return any(
        r.source == "responder" and r.status == "not_checked" and r.responder is None
        for r in deployment.revocation
    )


def _http(
    evidence: Evidence,
    config: MozillaConfiguration,
    issues: dict[str, str],
    not_judged: list[str],
    advice: list[str],
) -> None:
    verdict = hsts_verdict(evidence.http)
    if verdict.first is None:
        not_judged.append("HSTS: no HTTPS response was fetched")
    elif verdict.max_age is None:
        issues["hsts_min_age"] = (
            "HSTS header is missing."
            if verdict.header is None
            else "HSTS header is invalid (RFC 6797), so browsers ignore it."
        )
    elif verdict.max_age < config.hsts_min_age:
        issues["hsts_min_age"] = (
            f"HSTS max-age is {verdict.max_age}, should be superior or equal to {config.hsts_min_age}."
        )
    if not config.ocsp_staple:
        return
    for deployment in evidence.tls.certificates:
        if deployment.ocsp_stapled:
            continue
        if _no_ocsp_responder(deployment):
            advice.append(f"{deployment.label()} certificate: no OCSP responder named, so nothing to staple.")
        else:
            issues["ocsp_staple"] = f"The {deployment.label()} certificate's OCSP response is not stapled."


def judge(evidence: Evidence, profile: str, guideline: Guideline | None = None) -> MozillaConformance:
    """Conformance of the scanned server to one configuration ("intermediate", "modern")."""
    guideline = guideline or load_guideline()
    config = guideline.configurations[profile]
    issues: dict[str, str] = {}
    not_judged: list[str] = []
    advice: list[str] = []
    if evidence.tls.certificates:
        _certificates(evidence.tls.certificates, config, issues, advice)
    else:
        not_judged.append("certificate: no certificate was read")
    _protocols(evidence, config, issues, not_judged)
    _groups(evidence, config, issues, not_judged, advice)
    _vulnerabilities(evidence, issues, not_judged)
    _http(evidence, config, issues, not_judged, advice)
    deviations = [MozillaDeviation(key=key, detail=detail) for key, detail in issues.items()]
    return MozillaConformance(
        profile=profile,
        guideline_version=guideline.label,
        conformant=False if deviations else (None if not_judged else True),
        deviations=deviations,
        not_judged=not_judged,
        advice=advice,
    )


def judge_all(evidence: Evidence | None) -> list[MozillaConformance]:
    """Both configurations of the bundled guideline; none for a target that was not scanned."""
    if evidence is None:
        return []
    judged = []
    for profile in PROFILES:
        try:
            judged.append(judge(evidence, profile))
        except Exception as exc:  # noqa: BLE001  (a bug here must not cost the audit its result)
            judged.append(
                MozillaConformance(
                    profile=profile,
                    guideline_version=load_guideline().label,
                    conformant=None,
                    not_judged=[f"the check failed: {type(exc).__name__}: {exc}"[:300]],
                )
            )
    return judged


def summary(conformance: MozillaConformance) -> str:
    """One line for a report: the verdict and the deviations' keys."""
    name = f"Mozilla {conformance.profile} {conformance.guideline_version}"
    if conformance.conformant:
        return f"{name}: conformant"
    if conformance.conformant is None:
        return f"{name}: no deviation found; not judged: {'; '.join(conformance.not_judged)}"
    keys = ", ".join(d.key for d in conformance.deviations)
    return f"{name}: {len(conformance.deviations)} deviation(s): {keys}"


def gate(results: list[TargetResult], profile: str) -> list[str]:
    """`--mozilla-profile`: one line per audited target that does not conform to `profile` (a
    deviation, or something not judged); empty when every audited target conforms."""
    lines = []
    for result in results:
        if result.error:
            continue  # not audited: its own exit code (3) says so
        found = next((c for c in result.mozilla if c.profile == profile), None)
        if found is None:
            lines.append(f"{result.target.url}: Mozilla {profile}: not judged")
        elif not found.conformant:
            lines.append(f"{result.target.url}: {summary(found)}")
    return lines


def report_lines(result: TargetResult, details: bool = False) -> list[str]:
    """The Mozilla section of a report: one line per configuration, and with `details` each
    deviation, what was not judged and the advice, indented below it."""
    lines = []
    for conformance in result.mozilla:
        lines.append(summary(conformance))
        if details:
            lines += [f"  - {d.key}: {d.detail}" for d in conformance.deviations]
            lines += [f"  - advice: {a}" for a in conformance.advice]
    return lines
