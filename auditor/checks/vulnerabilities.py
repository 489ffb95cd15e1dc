"""11.4-vulnerabilities: sslyze's probes plus flaws inferred from the accepted suites.

Each rule is a row: (name, test on the evidence, what it shows). Inferred rows say which suite
or protocol they rest on, so the report carries its own evidence.
"""

from __future__ import annotations

from collections.abc import Callable

from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import remediation
from auditor.checks.evidence import CORE, why_not
from auditor.flaws import beast, insecure_renegotiation, lacks_secure_renegotiation
from auditor.model import ClauseId, Finding, Probe, Status, TlsEvidence
from auditor.protocol_names import LEGACY_PROTOCOLS

VULN_FIX = remediation(ClauseId.VULNERABILITIES, "upgrade")


def _suites(tls: TlsEvidence, test: Callable, versions: set[str] | None = None) -> list[str]:  # type: ignore[type-arg]
    return [
        f"{v}: {s.name}" for v, s in tls.accepted_suites() if (versions is None or v in versions) and test(s)
    ]


def _probe(value: bool | None, vulnerable_when: bool, label: str) -> tuple[bool | None, list[str]]:
    if value is None:
        return None, []
    return value == vulnerable_when, [
        f"{label}: {'vulnerable' if value == vulnerable_when else 'not vulnerable'}"
    ]


def _supported(tls: TlsEvidence, version: str) -> bool | None:
    p = tls.protocol(version)
    return None if p is None else p.supported


def _rules(tls: TlsEvidence) -> list[tuple[str, bool | None, list[str]]]:
    v = tls.vulnerabilities
    rows: list[tuple[str, bool | None, list[str]]] = []
    rows.append(("Heartbleed", *_probe(v.heartbleed, True, "heartbeat probe")))
    rows.append(("OpenSSL CCS injection", *_probe(v.ccs_injection, True, "early CCS probe")))
    robot = None if v.robot is None or v.robot.startswith("UNKNOWN") else v.robot.startswith("VULNERABLE")
    rows.append(("ROBOT", robot, [f"ROBOT oracle: {v.robot}"] if v.robot else []))
    insecure = insecure_renegotiation(v)
    reneg = (
        f"secure renegotiation (RFC 5746): {v.secure_renegotiation}, "
        f"client-initiated renegotiation accepted: {v.client_renegotiation_dos}"
    )
    rows.append(("Insecure renegotiation", insecure, [] if insecure is None else [reneg]))
    rows.append(("TLS compression (CRIME)", *_probe(v.compression, True, "TLS compression")))
    if v.fallback_scsv is not None:
        rows.append(
            (
                "Missing TLS_FALLBACK_SCSV",
                not v.fallback_scsv and _downgrade_below_tls12(tls),
                [f"TLS_FALLBACK_SCSV {'supported' if v.fallback_scsv else 'not supported'}"],
            )
        )
    elif (scsv := tls.attempts.get(Probe.TLS_FALLBACK_SCSV)) and _downgrade_below_tls12(tls):
        rows.append(("Missing TLS_FALLBACK_SCSV", None, [f"TLS_FALLBACK_SCSV not tested: {scsv.why()}"]))
    ssl3 = _supported(tls, "SSL 3.0")
    rows.append(("POODLE (SSL 3.0)", ssl3, ["SSL 3.0 accepted"] if ssl3 else []))
    ssl2 = _supported(tls, "SSL 2.0")
    rows.append(("SSL 2.0 (DROWN)", ssl2, ["SSL 2.0 accepted"] if ssl2 else []))
    cbc_old = beast(tls)
    rows.append(("BEAST (CBC with TLS 1.0)", bool(cbc_old), cbc_old))
    sweet = _suites(tls, lambda s: s.block_bits == 64)
    rows.append(("SWEET32 (64-bit block ciphers)", bool(sweet), sweet[:5]))
    rc4 = _suites(tls, lambda s: s.encryption.startswith("RC4"))
    rows.append(("RC4", bool(rc4), rc4[:5]))
    weak = _suites(tls, lambda s: s.export or s.anonymous or s.bits == 0)
    rows.append(("Export, NULL or anonymous suites (FREAK)", bool(weak), weak[:5]))
    logjam = [
        f"{ver}: {s.name} with {s.ephemeral_bits or f'at most {s.ephemeral_bits_max}'}-bit DH"
        for ver, s in tls.accepted_suites()
        if s.key_exchange == "DHE" and (s.ephemeral_bits or s.ephemeral_bits_max or 1024) < 1024
    ]
    rows.append(("Weak Diffie-Hellman (Logjam)", bool(logjam), logjam[:5]))
    weak_curves = [g for g in tls.groups if any(size in g for size in WEAK_CURVE_SIZES)]
    rows.append(("Weak elliptic curves (< 224 bits)", bool(weak_curves), weak_curves[:5]))
    return rows


def _downgrade_below_tls12(tls: TlsEvidence) -> bool:
    """Could a forced fallback land below TLS 1.2? Only then does TLS_FALLBACK_SCSV matter: with TLS 1.2
    and 1.3 alone, TLS 1.3's downgrade sentinel (RFC 8446 section 4.1.3) protects modern clients."""
    supported = [p.version for p in tls.protocols if p.supported]
    return len(supported) > 1 and any(v in LEGACY_PROTOCOLS for v in supported)


def _scsv_info(tls: TlsEvidence) -> list[Finding]:
    """The missing TLS_FALLBACK_SCSV that does not count (TLS 1.2 and 1.3 only): said, as information."""
    v = tls.vulnerabilities
    supported = [p.version for p in tls.protocols if p.supported]
    if v.fallback_scsv is not False or _downgrade_below_tls12(tls) or len(supported) < 2:
        return []
    return [
        finding(
            ClauseId.VULNERABILITIES,
            "fallback-scsv-not-needed",
            Status.INFO,
            "TLS_FALLBACK_SCSV not supported (not a flaw here)",
            "Only TLS 1.2 and TLS 1.3 are offered: a downgrade cannot reach an older protocol, and "
            "TLS 1.3's downgrade sentinel (RFC 8446 section 4.1.3) protects clients that speak it.",
            [f"protocols: {', '.join(supported)}", "TLS_FALLBACK_SCSV not supported"],
        )
    ]


# Curve names carrying a size under 224 bits (secp160r1, secp192r1, sect163k1, sect193r1, ...).
WEAK_CURVE_SIZES = ("160", "163", "192", "193")


def _dh_below_2048(tls: TlsEvidence) -> list[str]:
    """DH groups of 1024-2047 bits: not Logjam-breakable today, but below the 2048-bit floor (a warning)."""
    return [
        f"{ver}: {s.name} with {s.ephemeral_bits}-bit DH"
        for ver, s in tls.accepted_suites()
        if s.key_exchange == "DHE" and s.ephemeral_bits and 1024 <= s.ephemeral_bits < 2048
    ]


def check_vulnerabilities(ctx: CheckContext) -> list[Finding]:
    """The verdict on every row, plus, as information, a missing TLS_FALLBACK_SCSV that does not count."""
    return [_verdict(ctx.evidence.tls), *_scsv_info(ctx.evidence.tls)]


def _verdict(tls: TlsEvidence) -> Finding:
    rows = _rules(tls)
    present = [(name, facts) for name, hit, facts in rows if hit]
    untested = [name for name, hit, _ in rows if hit is None]
    facts = [
        f"{name}: {'PRESENT' if hit else 'not present' if hit is False else 'not tested'}"
        for name, hit, _ in rows
    ]
    if present:
        detail_facts = [f"{name}: {fact}" for name, fs in present for fact in fs]
        return finding(
            ClauseId.VULNERABILITIES,
            "vulnerable",
            Status.FAIL,
            f"Exposed to {', '.join(name for name, _ in present)}",
            f"{len(present)} published flaw(s) apply to this server.",
            detail_facts + facts,
            VULN_FIX,
        )
    if untested and (stopped := why_not(tls, Probe.SCAN)):  # no probe result is worth a pass
        return finding(
            ClauseId.VULNERABILITIES,
            "vulns-untested-unanswered",
            Status.ERROR,
            f"{', '.join(untested)} not tested",
            stopped,
            facts,
        )
    if untested:
        return finding(
            ClauseId.VULNERABILITIES,
            "vulns-partly-untested",
            Status.WARN,
            f"No flaw found, but {', '.join(untested)} not tested",
            why_not(tls, *CORE)[:300],
            facts,
        )
    if weak_dh := _dh_below_2048(tls):
        return finding(
            ClauseId.VULNERABILITIES,
            "dh-below-2048",
            Status.WARN,
            "Diffie-Hellman groups below 2048 bits",
            "Not exploitable like Logjam (< 1024 bits), but weaker than the 2048-bit floor.",
            weak_dh[:5] + facts,
            VULN_FIX,
        )
    if lacks_secure_renegotiation(tls.vulnerabilities):
        return finding(
            ClauseId.VULNERABILITIES,
            "secure-renegotiation-missing",
            Status.WARN,
            "Secure renegotiation (RFC 5746) is not supported",
            "Client-initiated renegotiation is refused, so this is not insecure renegotiation, but "
            "renegotiation is not protected by RFC 5746 (SSL Labs: A- warning).",
            facts,
            VULN_FIX,
        )
    return finding(
        ClauseId.VULNERABILITIES,
        "no-known-vulnerability",
        Status.PASS,
        f"None of {len(rows)} known flaws found",
        evidence=facts,
    )


CHECKS = [(ClauseId.VULNERABILITIES, check_vulnerabilities)]
