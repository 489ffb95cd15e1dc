"""The one way a check asks for evidence a probe may not have produced (TlsEvidence.attempts): a probe
that did not complete makes the clause `error` with the standard "not tested: <probe>: <why>" detail,
never a pass on what was never seen and never a reason read back from prose."""

from __future__ import annotations

from auditor.checks.base import CheckContext, finding
from auditor.model import (
    Attempt,
    AttemptErrorReason,
    ClauseId,
    Finding,
    HttpResponse,
    Probe,
    Status,
    TlsEvidence,
)

# The suite enumeration of every protocol version.
SUITES = tuple(p for p in Probe if p.value.startswith("suites_"))
# Our own probes beside the graded evidence: their failure leaves a fact or one clause open, never the grade.
BESIDE = (Probe.SIMULATIONS, Probe.POST_QUANTUM, Probe.DH_SIZES, Probe.OCSP, Probe.FACTS)
# The probes of the protocols, suites, certificates and vulnerabilities (sslyze's and the suites').
CORE = tuple(p for p in Probe if p not in BESIDE)
# A port that answers nothing at all: nothing listens (refused), or a firewall drops the packets.
_CLOSED = frozenset({AttemptErrorReason.CONNECTION_REFUSED, AttemptErrorReason.TIMEOUT})


def missing(tls: TlsEvidence, *probes: Probe) -> dict[Probe, Attempt]:
    """The attempts of `probes` (every recorded one when none is named) that did not complete."""
    return {p: a for p, a in tls.attempts.items() if not probes or p in probes}


def why_not(tls: TlsEvidence, *probes: Probe) -> str:
    """The detail "not tested: <probe>: <why>; ..." for the probes (all when none is named) that did not
    complete, "" when they all did."""
    failed = missing(tls, *probes)
    return "not tested: " + "; ".join(f"{p}: {a.why()}" for p, a in failed.items()) if failed else ""


def not_tested(
    ctx: CheckContext,
    clause: ClauseId,
    result_id: str,
    title: str,
    *probes: Probe,
    evidence: list[str] | None = None,
    otherwise: str = "",
) -> Finding:
    """The standard `error` finding of a clause whose evidence is missing; the detail names each probe
    that did not complete and why (`otherwise` when none was recorded)."""
    detail = why_not(ctx.evidence.tls, *probes) or otherwise
    return finding(clause, result_id, Status.ERROR, title, detail[:300], evidence)


def port_closed(response: HttpResponse) -> bool:
    """The request got no answer of any kind (refused or silent), so nothing is served on that port;
    a reset, a TLS failure or a non-HTTP answer is an answer, and says something is there."""
    return response.attempt is not None and response.attempt.reason in _CLOSED
