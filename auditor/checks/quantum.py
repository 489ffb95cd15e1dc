"""11.3-quantum-resistance: a hybrid post-quantum key exchange (ML-KEM beside ECDH), accepted with
TLS 1.3 and preferred when a client offers it beside X25519, as current Chrome and Firefox do.

Absent: warn, or fail with `[policy] require_post_quantum = true`. Accepted but not preferred:
warn. What was not measured is an error, never a pass.
"""

from __future__ import annotations

from auditor.checks.base import CheckContext, finding
from auditor.checks.clauses import remediation
from auditor.checks.evidence import not_tested
from auditor.model import ClauseId, Finding, PostQuantum, Probe, Status

CLAUSE = ClauseId.QUANTUM_RESISTANCE

PQ_FIX = remediation(ClauseId.QUANTUM_RESISTANCE, "hybrid")


def _facts(pq: PostQuantum, ctx: CheckContext) -> list[str]:
    facts = [
        f"{group}: {'accepted' if ok else 'refused' if ok is False else 'not tested'}"
        for group, ok in pq.groups.items()
    ]
    if pq.chosen_beside_x25519:
        facts.append(
            f"offered beside X25519 with both key shares: the server picks {pq.chosen_beside_x25519}"
        )
    if pq.retry_for_hybrid is not None:
        facts.append(
            "with an X25519 key share only: "
            + (
                "the server asks for the hybrid (HelloRetryRequest)"
                if pq.retry_for_hybrid
                else "the server takes X25519"
            )
        )
    for sim in ctx.evidence.tls.simulations:
        if sim.hybrid_offered:
            got = sim.hybrid_selected or "not measured"
            facts.append(f"{sim.client} (offers {sim.hybrid_offered}): gets {got}")
    if pq.error:
        facts.append(f"not measured: {pq.error}")
    return facts


def _absent(ctx: CheckContext, pq: PostQuantum, why: str) -> Finding:
    status = Status.FAIL if ctx.policy.require_post_quantum else Status.WARN
    return finding(
        CLAUSE,
        "pq-absent-required" if status is Status.FAIL else "pq-absent",
        status,
        "No post-quantum key exchange",
        why,
        _facts(pq, ctx),
        PQ_FIX,
    )


def check_quantum_resistance(ctx: CheckContext) -> list[Finding]:
    tls = ctx.evidence.tls
    pq = tls.post_quantum
    if pq is None:
        return [
            finding(CLAUSE, "pq-not-probed", Status.NOT_TESTED, "Post-quantum key exchange was not probed")
        ]
    tls13 = tls.protocol("TLS 1.3")
    if tls13 is not None and tls13.supported is False:
        return [_absent(ctx, pq, "TLS 1.3 is not accepted, and hybrid ML-KEM groups exist only in TLS 1.3.")]
    accepted = pq.accepted
    if not accepted:
        if not pq.groups or any(ok is None for ok in pq.groups.values()):
            return [
                not_tested(
                    ctx,
                    CLAUSE,
                    "pq-untested",
                    "Post-quantum key exchange could not be tested",
                    Probe.POST_QUANTUM,
                    evidence=_facts(pq, ctx),
                    otherwise=pq.error or "no answer",  # a report written before typed attempts
                )
            ]
        return [
            _absent(
                ctx,
                pq,
                "The server refuses every hybrid ML-KEM group with TLS 1.3 (X25519MLKEM768, "
                "SecP256r1MLKEM768, SecP384r1MLKEM1024).",
            )
        ]
    if pq.preferred is None:
        return [
            finding(
                CLAUSE,
                "pq-preference-unmeasured",
                Status.ERROR,
                "Hybrid key exchange accepted; its preference could not be measured",
                f"Accepted: {', '.join(accepted)}.",
                _facts(pq, ctx),
            )
        ]
    if not pq.preferred:
        return [
            finding(
                CLAUSE,
                "pq-not-preferred",
                Status.WARN,
                "Hybrid key exchange accepted but not preferred",
                f"The server accepts {', '.join(accepted)}, but a client offering it beside X25519 (as Chrome "
                f"and Firefox do) gets {pq.chosen_beside_x25519 or 'a classical group'}.",
                _facts(pq, ctx),
                PQ_FIX,
            )
        ]
    return [
        finding(
            CLAUSE,
            "pq-preferred",
            Status.PASS,
            "Hybrid post-quantum key exchange accepted and preferred",
            f"Accepted: {', '.join(accepted)}; chosen over X25519 when a client offers both.",
            _facts(pq, ctx),
        )
    ]


CHECKS = [(CLAUSE, check_quantum_resistance)]
