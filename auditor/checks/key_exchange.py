"""Key exchange: 11.1-pfs (forward secrecy), 11.3-no-rsa-kex, 11.3-ecdhe-default."""

from __future__ import annotations

from auditor.model import Finding, Status
from auditor.checks.base import CheckContext, finding, fix

MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
)

PFS_FIX = fix(
    f"ssl_ciphers {MODERN_CIPHERS};\nssl_prefer_server_ciphers on;",
    f"SSLCipherSuite {MODERN_CIPHERS}\nSSLHonorCipherOrder on",
    "Offer only (EC)DHE suites for TLS 1.2 and below, and enforce the server's order.",
)


def _unenumerated(ctx: CheckContext) -> str | None:
    """Why the accepted suites may be incomplete (a pass would rest on what was never seen), or None."""
    tls = ctx.evidence.tls
    untested = [p.version for p in tls.protocols if p.supported is None]
    if untested:
        return f"{', '.join(untested)} not tested"
    return tls.errors.get("unanswered")


def _legacy_suites(ctx: CheckContext):  # noqa: ANN202
    return [(v, s) for v, s in ctx.evidence.tls.accepted_suites() if v != "TLS 1.3"]


def check_pfs(ctx: CheckContext) -> list[Finding]:
    tls = ctx.evidence.tls
    if not tls.protocols or all(p.supported is None for p in tls.protocols):
        return [
            finding(
                "11.1-pfs",
                Status.ERROR,
                "Cipher suites could not be enumerated",
                "; ".join(tls.errors.values()),
            )
        ]
    legacy = _legacy_suites(ctx)
    static = [(v, s) for v, s in legacy if not s.forward_secret]
    if static:
        return [
            finding(
                "11.1-pfs",
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
                    "11.1-pfs",
                    Status.FAIL,
                    "Forward secrecy is not preferred",
                    f"The server's first choice in {p.version} is {first.name}.",
                    [f"{p.version} first: {first.name}"],
                    PFS_FIX,
                )
            ]
    facts = [f"{v}: {s.name}" for v, s in legacy] or ["only TLS 1.3 is accepted (always forward secret)"]
    if (why := _unenumerated(ctx)) is not None:
        return [finding("11.1-pfs", Status.ERROR, "Cipher suites could not all be enumerated", why, facts)]
    return [
        finding(
            "11.1-pfs",
            Status.PASS,
            "Every accepted suite has forward secrecy",
            "All accepted TLS 1.2-and-below suites use (EC)DHE; TLS 1.3 always does.",
            facts,
        )
    ]


def check_no_rsa_kex(ctx: CheckContext) -> list[Finding]:
    tls = ctx.evidence.tls
    if not tls.protocols or all(p.supported is None for p in tls.protocols):
        return [finding("11.3-no-rsa-kex", Status.ERROR, "Cipher suites could not be enumerated")]
    rsa = [(v, s) for v, s in tls.accepted_suites() if s.key_exchange == "RSA"]
    if rsa:
        return [
            finding(
                "11.3-no-rsa-kex",
                Status.FAIL,
                "RSA key exchange is accepted",
                f"{len(rsa)} TLS_RSA_WITH_* suite(s) are accepted.",
                [f"{v}: {s.name}" for v, s in rsa],
                PFS_FIX,
            )
        ]
    if (why := _unenumerated(ctx)) is not None:
        return [finding("11.3-no-rsa-kex", Status.ERROR, "Cipher suites could not all be enumerated", why)]
    return [
        finding(
            "11.3-no-rsa-kex",
            Status.PASS,
            "No RSA key exchange suite is accepted",
            evidence=[f"{len(tls.accepted_suites())} accepted suites, none TLS_RSA_WITH_*"],
        )
    ]


GROUPS_FIX = fix(
    "ssl_ecdh_curve X25519:prime256v1:secp384r1;\n"
    + f"ssl_ciphers {MODERN_CIPHERS};\nssl_prefer_server_ciphers on;",
    "SSLOpenSSLConfCmd Curves X25519:prime256v1:secp384r1\n"
    + f"SSLCipherSuite {MODERN_CIPHERS}\nSSLHonorCipherOrder on",
    "Prefer ECDHE suites and offer only strong groups:",
)


def check_ecdhe_default(ctx: CheckContext) -> list[Finding]:
    """What modern reference clients negotiate is ECDHE (or TLS 1.3 ECDHE) with a strong group."""
    tls = ctx.evidence.tls
    strong = set(ctx.policy.strong_groups)
    sims = [s for s in tls.simulations if s.reference]
    if not sims:
        return [finding("11.3-ecdhe-default", Status.NOT_TESTED, "No client simulation was run")]
    connected = [s for s in sims if s.suite is not None]
    if not connected:
        return [
            finding(
                "11.3-ecdhe-default",
                Status.ERROR,
                "No reference client could connect",
                "; ".join(f"{s.client}: {s.error}" for s in sims[:5]),
            )
        ]
    facts = [
        f"{s.client}: {s.protocol} {s.suite.name} group {s.suite.ephemeral_group or '-'}" for s in connected
    ]
    facts.append(f"server groups: {', '.join(tls.groups) or '(none found)'}")
    problems = []
    for s in connected:
        ecdhe = s.suite.key_exchange == "ECDHE" or (
            s.suite.key_exchange == "TLS13" and s.suite.ephemeral_group != "DH"
        )
        if not ecdhe:
            problems.append(f"{s.client} negotiates {s.suite.key_exchange}")
        elif s.suite.ephemeral_group not in strong:
            problems.append(f"{s.client} gets group {s.suite.ephemeral_group}")
    weak_groups = [g for g in tls.groups if g not in strong]
    if weak_groups:
        problems.append(f"weak groups offered: {', '.join(weak_groups)}")
    if problems:
        return [
            finding(
                "11.3-ecdhe-default",
                Status.FAIL,
                "ECDHE with a strong group is not the default",
                "; ".join(problems[:6]),
                facts,
                GROUPS_FIX,
            )
        ]
    return [
        finding(
            "11.3-ecdhe-default",
            Status.PASS,
            "Modern clients negotiate ECDHE with a strong group",
            f"{len(connected)} reference browsers simulated.",
            facts,
        )
    ]


CHECKS = [
    ("11.1-pfs", check_pfs),
    ("11.3-no-rsa-kex", check_no_rsa_kex),
    ("11.3-ecdhe-default", check_ecdhe_default),
]
