"""Key exchange: 11.1-pfs (forward secrecy), 11.3-no-rsa-kex, 11.3-ecdhe-default."""

from __future__ import annotations

from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import remediation
from auditor.checks.evidence import SUITES, not_tested, why_not
from auditor.model import CipherSuite, ClauseId, Finding, Probe, Status

PFS_FIX = remediation(ClauseId.PFS, "pfs")


def _unenumerated(ctx: CheckContext) -> str | None:
    """Why the accepted suites may be incomplete (a pass would rest on what was never seen), or None."""
    tls = ctx.evidence.tls
    untested = [p.version for p in tls.protocols if p.supported is None]
    if untested or Probe.SCAN in tls.attempts:
        return why_not(tls, *SUITES, Probe.SCAN) or f"{', '.join(untested)} not tested"
    return None


def _legacy_suites(ctx: CheckContext) -> list[tuple[str, CipherSuite]]:
    return [(v, s) for v, s in ctx.evidence.tls.accepted_suites() if v != "TLS 1.3"]


def check_pfs(ctx: CheckContext) -> list[Finding]:
    tls = ctx.evidence.tls
    if not tls.protocols or all(p.supported is None for p in tls.protocols):
        title = "Cipher suites could not be enumerated"
        return [not_tested(ctx, ClauseId.PFS, "pfs-suites-unknown", title, *SUITES, Probe.SCAN)]
    legacy = _legacy_suites(ctx)
    static = [(v, s) for v, s in legacy if not s.forward_secret]
    if static:
        return [
            finding(
                ClauseId.PFS,
                "pfs-static-kex-accepted",
                Status.FAIL,
                "Suites without forward secrecy are accepted",
                f"{len(static)} accepted suite(s) use a static key exchange.",
                [f"{v}: {s.name}" for v, s in static],
                PFS_FIX,
            )
        ]
    preferred = [p for p in tls.protocols if p.supported and p.in_server_order and p.suites]
    for p in preferred:
        first = p.suites[0]
        if p.server_enforces_order is not False and not first.forward_secret:
            return [
                finding(
                    ClauseId.PFS,
                    "pfs-not-preferred",
                    Status.FAIL,
                    "Forward secrecy is not preferred",
                    f"The server's first choice in {p.version} is {first.name}.",
                    [f"{p.version} first: {first.name}"],
                    PFS_FIX,
                )
            ]
    facts = [f"{v}: {s.name}" for v, s in legacy] or ["only TLS 1.3 is accepted (always forward secret)"]
    if (why := _unenumerated(ctx)) is not None:
        return [
            finding(
                ClauseId.PFS,
                "pfs-suites-incomplete",
                Status.ERROR,
                "Cipher suites could not all be enumerated",
                why,
                facts,
            )
        ]
    return [
        finding(
            ClauseId.PFS,
            "pfs-all-suites",
            Status.PASS,
            "Every accepted suite has forward secrecy",
            "All accepted TLS 1.2-and-below suites use (EC)DHE; TLS 1.3 always does.",
            facts,
        )
    ]


def check_no_rsa_kex(ctx: CheckContext) -> list[Finding]:
    tls = ctx.evidence.tls
    if not tls.protocols or all(p.supported is None for p in tls.protocols):
        title = "Cipher suites could not be enumerated"
        return [not_tested(ctx, ClauseId.NO_RSA_KEX, "rsa-kex-suites-unknown", title, *SUITES, Probe.SCAN)]
    rsa = [(v, s) for v, s in tls.accepted_suites() if s.key_exchange == "RSA"]
    if rsa:
        return [
            finding(
                ClauseId.NO_RSA_KEX,
                "rsa-kex-accepted",
                Status.FAIL,
                "RSA key exchange is accepted",
                f"{len(rsa)} TLS_RSA_WITH_* suite(s) are accepted.",
                [f"{v}: {s.name}" for v, s in rsa],
                PFS_FIX,
            )
        ]
    if (why := _unenumerated(ctx)) is not None:
        return [
            finding(
                ClauseId.NO_RSA_KEX,
                "rsa-kex-suites-incomplete",
                Status.ERROR,
                "Cipher suites could not all be enumerated",
                why,
            )
        ]
    return [
        finding(
            ClauseId.NO_RSA_KEX,
            "rsa-kex-none",
            Status.PASS,
            "No RSA key exchange suite is accepted",
            evidence=[f"{len(tls.accepted_suites())} accepted suites, none TLS_RSA_WITH_*"],
        )
    ]


GROUPS_FIX = remediation(ClauseId.ECDHE_DEFAULT, "groups")


def check_ecdhe_default(ctx: CheckContext) -> list[Finding]:
    """What modern reference clients negotiate is ECDHE (or TLS 1.3 ECDHE) with a strong group."""
    tls = ctx.evidence.tls
    strong = set(ctx.policy.strong_groups)
    sims = [s for s in tls.simulations if s.reference]
    if not sims:
        return [
            finding(
                ClauseId.ECDHE_DEFAULT,
                "ecdhe-not-simulated",
                Status.NOT_TESTED,
                "No client simulation was run",
            )
        ]
    connected = [(s, s.suite) for s in sims if s.suite is not None]
    if not connected:
        # reference clients not tested (rather than unable to connect): the probe's typed attempt says why
        untested = why_not(tls, Probe.SIMULATIONS) if any(s.attempt is not None for s in sims) else ""
        return [
            finding(
                ClauseId.ECDHE_DEFAULT,
                "ecdhe-no-client-connected",
                Status.ERROR,
                "No reference client could connect",
                untested[:300] or "; ".join(f"{s.client}: {s.error}" for s in sims[:5]),
            )
        ]
    facts = [
        f"{s.client}: {s.protocol} {suite.name} group {suite.ephemeral_group or '-'}"
        for s, suite in connected
    ]
    facts.append(f"server groups: {', '.join(tls.groups) or '(none found)'}")
    problems = []
    for s, suite in connected:
        ecdhe = suite.key_exchange == "ECDHE" or (
            suite.key_exchange == "TLS13" and suite.ephemeral_group != "DH"
        )
        if not ecdhe:
            problems.append(f"{s.client} negotiates {suite.key_exchange}")
        elif suite.ephemeral_group not in strong:
            problems.append(f"{s.client} gets group {suite.ephemeral_group}")
    weak_groups = [g for g in tls.groups if g not in strong]
    if weak_groups:
        problems.append(f"weak groups offered: {', '.join(weak_groups)}")
    if problems:
        return [
            finding(
                ClauseId.ECDHE_DEFAULT,
                "ecdhe-not-default",
                Status.FAIL,
                "ECDHE with a strong group is not the default",
                "; ".join(problems[:6]),
                facts,
                GROUPS_FIX,
            )
        ]
    # A pass speaks for every reference client and every group: one that was not tested (a server
    # that stopped answering midway) leaves the clause open, whatever the others negotiated.
    missed = [s.client for s in sims if s.suite is None and s.attempt is not None]
    if missed or Probe.GROUPS in tls.attempts or Probe.SCAN in tls.attempts:
        return [
            finding(
                ClauseId.ECDHE_DEFAULT,
                "ecdhe-incomplete",
                Status.ERROR,
                "Not every reference client or group could be tested",
                why_not(tls, Probe.SIMULATIONS, Probe.GROUPS, Probe.SCAN)[:300]
                or f"not tested: {', '.join(missed)}",
                facts,
            )
        ]
    return [
        finding(
            ClauseId.ECDHE_DEFAULT,
            "ecdhe-default",
            Status.PASS,
            "Modern clients negotiate ECDHE with a strong group",
            f"{len(connected)} reference browsers simulated.",
            facts,
        )
    ]


CHECKS = [
    (ClauseId.PFS, check_pfs),
    (ClauseId.NO_RSA_KEX, check_no_rsa_kex),
    (ClauseId.ECDHE_DEFAULT, check_ecdhe_default),
]
