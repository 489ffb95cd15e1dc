"""Flaws judged both by the 11.4-vulnerabilities check and by the grade, defined once here so
the two can never disagree about what the same evidence shows (checks/vulnerabilities.py and
auditor/grading.py both call these).

BEAST (SSL Labs' definition): a client limited to SSL 3.0 or TLS 1.0 gets a CBC suite, i.e. the
server negotiates CBC there: its first choice when it enforces its order, any accepted CBC suite
when the client's order decides or the order was not measured (an exhaustive --thorough scan).

Renegotiation (RFC 5746): *insecure* renegotiation is client-initiated renegotiation accepted by a
server without the secure renegotiation extension (the F cap, and a flaw); a server that merely
lacks the extension but refuses client-initiated renegotiation is the A- warning "secure
renegotiation not supported" (and a warning in the check), not the flaw.
"""

from __future__ import annotations

from auditor.model import TlsEvidence, Vulnerabilities

BEAST_PROTOCOLS = ("SSL 3.0", "TLS 1.0")


def beast(tls: TlsEvidence) -> list[str]:
    """The CBC suites a SSL 3.0/TLS 1.0 client gets, one line per protocol; empty: not exposed."""
    found = []
    for version in BEAST_PROTOCOLS:
        p = tls.protocol(version)
        if p is None or not p.supported or not p.suites:
            continue
        cbc = [s for s in p.suites if "CBC" in s.encryption]
        if not cbc:
            continue
        server_decides = p.in_server_order and p.server_enforces_order is not False
        if server_decides and "CBC" not in p.suites[0].encryption:
            continue  # the server's first choice is not CBC (RC4, judged on its own): mitigated server-side
        how = "the server's first choice" if server_decides else "accepted, the client's order decides"
        found.append(f"{version}: {cbc[0].name} ({how})")
    return found


def insecure_renegotiation(v: Vulnerabilities) -> bool | None:
    """Client-initiated renegotiation accepted without RFC 5746; None when a needed probe did not run."""
    if v.secure_renegotiation is None:
        return None
    if v.secure_renegotiation:
        return False
    return v.client_renegotiation_dos  # None (not tested), True or False


def lacks_secure_renegotiation(v: Vulnerabilities) -> bool:
    """No RFC 5746 without the flaw being shown (client-initiated renegotiation refused or not probed):
    the A- warning."""
    return v.secure_renegotiation is False and insecure_renegotiation(v) is not True
