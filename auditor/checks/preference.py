"""11.3-aes256gcm-first: in each accepted protocol, the server's first choice is a 256-bit AES-GCM
suite (TLS 1.3: TLS_AES_256_GCM_SHA384; TLS 1.2: ECDHE-*-AES256-GCM-SHA384), and the server
enforces its own order (otherwise a client's order decides, and nothing is promised). A server
that gives ChaCha20-Poly1305 to clients listing it first (OpenSSL PrioritizeChaCha) still enforces
its order (clauses.md precision): it passes, and the finding says so.

Protocols older than TLS 1.2 have no GCM suite, so accepting one fails here too ("CBC first"),
as well as in 11.3-protocols. The order comes from the fast enumerator (ProtocolSupport.suites
with in_server_order); a --thorough scan measures no order and is reported as not tested."""

from __future__ import annotations

from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import remediation
from auditor.checks.evidence import SUITES, not_tested, why_not
from auditor.model import CipherSuite, ClauseId, Finding, Probe, Status
from auditor.suites import is_aes256_aead

CLAUSE = ClauseId.AES256GCM_FIRST
ORDER_FIX = remediation(ClauseId.AES256GCM_FIRST, "order")


def first_choice_ok(version: str, suite: CipherSuite) -> bool:
    """The clause's class: TLS 1.3 TLS_AES_256_GCM_SHA384; below, ECDHE-*-AES256-GCM-SHA384."""
    if not is_aes256_aead(suite):
        return False
    return suite.key_exchange == "TLS13" if version == "TLS 1.3" else suite.key_exchange == "ECDHE"


def check_aes256gcm_first(ctx: CheckContext) -> list[Finding]:
    tls = ctx.evidence.tls
    accepted = [p for p in tls.protocols if p.supported and p.suites]
    if not accepted:
        return [
            not_tested(ctx, CLAUSE, "aes256gcm-no-suites", "No accepted suite to judge", *SUITES, Probe.SCAN)
        ]
    facts, problems, unknown, unmeasured, chacha = [], [], [], [], []
    for p in accepted:
        first = p.suites[0]
        if p.server_enforces_order is False:
            problems.append(f"{p.version}: the server follows the client's order")
            facts.append(
                f"{p.version}: the client's order is honoured (offered in reverse, the server took "
                f"the client's first)"
            )
            continue
        if not p.in_server_order:
            unknown.append(p.version)
            continue
        enforced = {True: "enforced", None: "not measured"}[p.server_enforces_order]
        facts.append(f"{p.version} first choice: {first.name} (server order {enforced})")
        if p.chacha_priority:
            chacha.append(p.version)
            facts.append(
                f"{p.version}: ChaCha20-Poly1305 goes to clients that list it first (PrioritizeChaCha)"
            )
        if not first_choice_ok(p.version, first):
            problems.append(f"{p.version}: first choice is {first.name}")
        elif p.server_enforces_order is None and len(p.suites) > 1:
            unmeasured.append(p.version)
    if problems:
        return [
            finding(
                CLAUSE,
                "aes256gcm-not-first",
                Status.FAIL,
                "AES-256-GCM is not negotiated first",
                "; ".join(problems),
                facts,
                ORDER_FIX,
            )
        ]
    if unknown:
        return [
            finding(
                CLAUSE,
                "aes256gcm-order-unknown",
                Status.NOT_TESTED,
                "The server's preference order is not known",
                f"{', '.join(unknown)} were enumerated without order (--thorough scans do not measure it).",
                facts,
            )
        ]
    if unmeasured:
        return [
            finding(
                CLAUSE,
                "aes256gcm-enforcement-unconfirmed",
                Status.WARN,
                "AES-256-GCM is first, but order enforcement was not confirmed",
                f"In {', '.join(unmeasured)} the server did not answer the reversed offer.",
                facts,
            )
        ]
    untested = [p.version for p in tls.protocols if p.supported is None]
    if untested or Probe.SCAN in tls.attempts:
        # "in every protocol": one whose suites were never seen (a server that stopped answering)
        # may put something else first
        why = why_not(tls, *SUITES, Probe.SCAN) or f"{', '.join(untested)} not tested"
        return [
            finding(
                CLAUSE,
                "aes256gcm-protocols-incomplete",
                Status.ERROR,
                "Not every protocol's suites could be enumerated",
                why[:300],
                facts,
            )
        ]
    detail = "The server enforces its own order."
    if chacha:
        detail += (
            f" In {', '.join(chacha)} it gives ChaCha20-Poly1305 to clients that list it first (OpenSSL "
            "PrioritizeChaCha, for devices without AES hardware); every other client gets AES-256-GCM."
        )
    return [
        finding(
            CLAUSE,
            "aes256gcm-first",
            Status.PASS,
            "AES-256-GCM is the server's first choice in every protocol",
            detail,
            facts,
        )
    ]


CHECKS = [(CLAUSE, check_aes256gcm_first)]
