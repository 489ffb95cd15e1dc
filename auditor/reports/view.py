"""What the human-readable reports (HTML, text, terminal) say the same way: the verdict first,
failing and unaudited sites before the compliant ones, words instead of enum names, local times
with their zone, and fixes written for the audited site rather than for example.com.

Pure functions of the report: no I/O, no markup (the templates escape what they show).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, tzinfo
from urllib.parse import urlsplit

from auditor.facts import span
from auditor.model import (
    Finding,
    HandshakeSimulation,
    MozillaConformance,
    PostQuantum,
    Status,
    TargetResult,
    TrustStoreResult,
)

# ---------------------------------------------------------------- verdicts and order

FAILING, NOT_AUDITED, COMPLIANT = "failing", "not_audited", "compliant"
_RANK = {FAILING: 0, NOT_AUDITED: 1, COMPLIANT: 2}


def verdict(result: TargetResult) -> str:
    """FAILING (policy broken), NOT_AUDITED (no evidence) or COMPLIANT."""
    if result.error:
        return NOT_AUDITED
    return COMPLIANT if result.compliant else FAILING


def ordered(targets: list[TargetResult]) -> list[TargetResult]:
    """Failing sites first, then the ones that could not be audited, then the compliant ones;
    the configured order is kept within each group (a stable sort)."""
    return sorted(targets, key=lambda t: _RANK[verdict(t)])


def verdict_label(result: TargetResult) -> str:
    return {FAILING: "NOT COMPLIANT", NOT_AUDITED: "NOT AUDITED", COMPLIANT: "COMPLIANT"}[verdict(result)]


def violations(result: TargetResult) -> str:
    """ "13 violations": the number of clauses broken."""
    n = len(result.failed_clauses())
    return f"{n} violation{'s' if n != 1 else ''}"


def display_name(result: TargetResult) -> str:
    return result.target.name or result.target.url


@dataclass(frozen=True)
class Headline:
    text: str  # "1 of 3 sites breaks the policy"
    detail: str  # "1 could not be audited, 1 is compliant"
    tone: str  # FAILING, NOT_AUDITED or COMPLIANT: the colour of the whole run


def headline(targets: list[TargetResult]) -> Headline:
    """One sentence for the whole run, worst news first."""
    total = len(targets)
    counts = {kind: sum(1 for t in targets if verdict(t) == kind) for kind in _RANK}
    failing, missing, ok = counts[FAILING], counts[NOT_AUDITED], counts[COMPLIANT]
    sites = f"{total} site{'s' if total != 1 else ''}"
    rest = []
    if failing:
        text = (
            "The site breaks the policy"
            if total == 1
            else f"{failing} of {sites} {'breaks' if failing == 1 else 'break'} the policy"
        )
        tone = FAILING
        if missing:
            rest.append(f"{missing} could not be audited")
    elif missing:
        text = "The site could not be audited" if total == 1 else f"{missing} of {sites} could not be audited"
        tone = NOT_AUDITED
    elif total:
        text = "The site is compliant" if total == 1 else f"All {sites} are compliant"
        tone = COMPLIANT
    else:
        return Headline("No site was audited", "", NOT_AUDITED)
    if ok and tone != COMPLIANT:
        rest.append(f"{ok} {'is' if ok == 1 else 'are'} compliant")
    return Headline(text, ", ".join(rest), tone)


def grade_tone(result: TargetResult) -> str:
    """The colour of the grade badge. A pass colour only when the site also meets the policy:
    an A+ next to a broken policy is shown neutral, never green."""
    if result.grade is None:
        return "none"
    letter = result.grade.letter
    tone = "good" if letter in ("A+", "A") else "mid" if letter in ("A-", "B") else "bad"
    if tone == "good" and verdict(result) != COMPLIANT:
        return "neutral"
    return tone


_SEVERITY = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2}


def findings_worst_first(result: TargetResult) -> list[Finding]:
    """Failures, errors and warnings first; the rest in the clause table's order."""
    return sorted(result.findings, key=lambda f: _SEVERITY.get(f.status, 3))


# ---------------------------------------------------------------- words, not enum names

_WORDS = {
    # sslyze's RobotScanResultEnum
    "VULNERABLE_WEAK_ORACLE": "VULNERABLE (weak oracle)",
    "VULNERABLE_STRONG_ORACLE": "VULNERABLE (strong oracle)",
    "NOT_VULNERABLE_NO_ORACLE": "not vulnerable (no oracle)",
    "NOT_VULNERABLE_RSA_NOT_SUPPORTED": "not vulnerable (no RSA key exchange)",
    "UNKNOWN_INCONSISTENT_RESULTS": "unknown (inconsistent results)",
}


def words(value: object) -> str:
    """An enum value as a reader says it: NOT_VULNERABLE_NO_ORACLE -> "not vulnerable (no oracle)",
    not_tested -> "not tested"."""
    if value is None:
        return "not tested"
    text = str(getattr(value, "value", value))
    return _WORDS.get(text) or text.replace("_", " ").lower()


def status_label(status: Status) -> str:
    return words(status).upper() if status in (Status.FAIL, Status.ERROR) else words(status)


# ---------------------------------------------------------------- times


def local_time(when: datetime, tz: tzinfo | None = None, *, seconds: bool = False) -> str:
    """ "2026-11-29 09:30 JST": the reader's local time (the machine's zone unless `tz` is given),
    always with the zone, so a time is never ambiguous."""
    moment = when.astimezone(tz)
    zone = moment.tzname() or ""
    if not zone or zone[0] in "+-":  # zones without an abbreviation ("+04"): say the offset
        offset = moment.strftime("%z")
        zone = f"UTC{offset[:3]}:{offset[3:]}" if offset not in ("", "+0000") else "UTC"
    return f"{moment:%Y-%m-%d %H:%M{':%S' if seconds else ''}} {zone}"


def exposure_line(finding: Finding, tz: tzinfo | None = None) -> str | None:
    """ "failing since 2026-11-20 03:00 UTC (8 days, 8 scans)" for a failing finding with a stored
    history (auditor.exposure), else None. Gaps (missed or unjudged scans) are said, never hidden."""
    exposure = finding.exposure
    if exposure is None or finding.status is not Status.FAIL:
        return None
    gaps = f", {exposure.gaps} gap(s)" if exposure.gaps else ""
    return (
        f"failing since {local_time(exposure.first_seen, tz)} "
        f"({span(exposure.last_seen - exposure.first_seen)}, {exposure.scans} scan(s){gaps})"
    )


@dataclass(frozen=True)
class TimelineCell:
    state: str  # "fail" or "gap"
    title: str  # what the cell stands for, shown on hover


@dataclass(frozen=True)
class Timeline:
    """An episode's scans as cells, with its first-seen and last-seen dates at the ends."""

    start: str
    end: str
    cells: list[TimelineCell]
    earlier: int  # points of the episode older than the cells (the model keeps the latest 30)


_GAP_WORDS = {
    "missed scan": "missed scan (none ran)",
    "not audited": "not audited (no verdict)",
    "not judged": "not judged by this scan (no verdict)",
}


def exposure_timeline(finding: Finding, tz: tzinfo | None = None) -> Timeline | None:
    """The compact timeline the HTML report draws under a failing finding: failing scans and gaps
    (never shown as fixed), or None when the finding has no exposure or no per-scan points."""
    exposure = finding.exposure
    if exposure is None or finding.status is not Status.FAIL or not exposure.timeline:
        return None
    cells = [
        TimelineCell(
            point.state,
            f"{local_time(point.at, tz)}: "
            + (
                "failing"
                if point.state == "fail"
                else _GAP_WORDS.get(point.why or "", point.why or "no verdict")
            ),
        )
        for point in exposure.timeline
    ]
    return Timeline(
        f"{exposure.first_seen.astimezone(tz):%Y-%m-%d}",
        f"{exposure.last_seen.astimezone(tz):%Y-%m-%d}",
        cells,
        max(0, exposure.scans + exposure.gaps - len(cells)),
    )


# ---------------------------------------------------------------- evidence

EVIDENCE_LIMIT = 1000


def evidence_line(line: str, limit: int = EVIDENCE_LIMIT) -> str:
    """A fact shown whole; only a pathological one (a hostile header) is shortened, in the middle,
    so its start (what it is) and its end (the verdict, "(not judged)") both stay."""
    if len(line) <= limit:
        return line
    keep = (limit - 1) // 2
    return f"{line[:keep]}…{line[-keep:]}"


def not_judged_stores(result: TargetResult) -> set[str]:
    """The trust stores the 11.2-cert-trusted check listed for information only (a private CA is
    judged by the configured bundle alone; a policy may name fewer stores)."""
    lines = [e for f in result.findings if f.clause == "11.2-cert-trusted" for e in f.evidence]
    stores = {s.store for d in (result.evidence.tls.certificates if result.evidence else []) for s in d.trust}
    return {
        store
        for store in stores
        for line in lines
        if line.startswith((f"{store} ", f"{store}:")) and line.endswith("(not judged)")
    }


@dataclass(frozen=True)
class TrustChip:
    store: str
    label: str  # "Mozilla: trusted", "Java: not judged"
    tone: str  # "pass", "fail", "not_judged"


def trust_chips(result: TargetResult, trust: list[TrustStoreResult]) -> list[TrustChip]:
    """The stores the verdict rests on first (green or red), then the ones not judged (grey)."""
    skipped = not_judged_stores(result)
    judged = [
        TrustChip(
            s.store,
            f"{s.store}: {'trusted' if s.trusted else 'NOT trusted'}",
            "pass" if s.trusted else "fail",
        )
        for s in trust
        if s.store not in skipped
    ]
    return judged + [
        TrustChip(s.store, f"{s.store}: not judged", "not_judged") for s in trust if s.store in skipped
    ]


# ---------------------------------------------------------------- TLS configuration summaries


@dataclass(frozen=True)
class MozillaRow:
    """One Mozilla server-side TLS configuration as a report row (what the text report says in
    auditor.mozilla_profile.report_lines, split into cells)."""

    profile: str  # "intermediate 6.0"
    label: str  # "yes", "no", "not judged"
    tone: str  # "pass", "warn", "not_judged": the chip's colour; amber, not the policy's red, since a
    # Mozilla profile is advice beside the verdict (most compliant sites miss "modern")
    deviations: list[str]  # "tls_versions: TLS 1.0 is accepted"
    not_judged: list[str]
    advice: list[str]


def mozilla_rows(result: TargetResult) -> list[MozillaRow]:
    """The site against each Mozilla configuration: conformant (yes / no / not judged when no
    deviation was found but something was not measured), then why not."""
    return [_mozilla_row(c) for c in result.mozilla]


def _mozilla_row(c: MozillaConformance) -> MozillaRow:
    label, tone = (
        ("yes", "pass")
        if c.conformant
        else ("not judged", "not_judged")
        if c.conformant is None
        else ("no", "warn")
    )
    return MozillaRow(
        f"{c.profile} {c.guideline_version}",
        label,
        tone,
        [f"{d.key}: {d.detail}" for d in c.deviations],
        list(c.not_judged),
        list(c.advice),
    )


def post_quantum(sim: HandshakeSimulation, probe: PostQuantum | None) -> str:
    """The simulation table's post-quantum cell: the hybrid group this browser gets
    ("X25519MLKEM768"), "no" (it offers one, the server picks a classical group or refuses the
    hybrid), "not offered" (the browser sends no hybrid) or "not tested" (offered, but the server's
    pick was not measured). `probe` settles "no" when `hybrid_selected` is empty because the
    fallback has no ephemeral group at all (RSA key exchange, no TLS 1.3)."""
    if sim.hybrid_offered is None:
        return "not offered"
    if sim.quantum_resistant:
        return sim.hybrid_selected or ""
    if sim.hybrid_selected is not None or (
        probe is not None and probe.groups.get(sim.hybrid_offered) is False
    ):
        return "no"
    return "not tested"


def _yes_no(value: bool | None, yes: str = "yes", no: str = "no") -> str:
    return "not measured" if value is None else yes if value else no


def protocol_facts(result: TargetResult) -> list[tuple[str, str]]:
    """(label, value) rows of what SSL Labs shows beside the grade: OCSP stapling, ALPN, session
    resumption, 0-RTT, and each certificate's SCTs. Facts, judged by no clause (CT excepted: its
    verdict is a finding of 11.2-cert-trusted). Empty when the scan did not probe them."""
    tls = result.evidence.tls if result.evidence else None
    if tls is None or tls.facts is None:
        return []
    f = tls.facts
    alpn = "not measured"
    if f.alpn_protocol is not None:
        alpn = f"{f.alpn} ({'HTTP/2' if f.http2 else 'no HTTP/2'})" if f.alpn else "none selected (no HTTP/2)"
        alpn += f", offered h2 and http/1.1 over {f.alpn_protocol}"
    resumption = _yes_no(f.resumption)
    if f.resumption is not None:
        resumption += f" ({f.resumption_protocol}{', ' + f.resumed_with if f.resumed_with else ''})"
    rows = [
        ("OCSP stapling", _yes_no(f.ocsp_stapling)),
        ("ALPN", alpn),
        ("Session resumption", resumption),
        (
            "TLS 1.2 sessions",
            "not measured"
            if f.session_ids is None
            else f"IDs {_yes_no(f.session_ids, 'assigned', 'not assigned')}, "
            f"tickets {_yes_no(f.session_tickets, 'offered', 'not offered')}",
        ),
        ("0-RTT (TLS 1.3 early data)", _yes_no(f.early_data, "accepted", "not accepted")),
    ]
    several = len(tls.certificates) > 1
    for dep in tls.certificates:
        if dep.ct is None:
            continue
        ct = dep.ct
        counts = [
            f"{len(ct.embedded)} embedded",
            f"{'not measured' if ct.tls_extension is None else len(ct.tls_extension)} by TLS extension",
            f"{'none stapled' if ct.ocsp is None else len(ct.ocsp)} in stapled OCSP",
        ]
        every = ct.embedded + (ct.tls_extension or []) + (ct.ocsp or [])
        logs = len({s.log_id for s in every})
        label = f"SCTs ({dep.label()})" if several else "SCTs (Certificate Transparency)"
        rows.append((label, f"{', '.join(counts)}; {logs} distinct logs"))
    rows += [("Note", note) for note in f.notes]
    return rows


# ---------------------------------------------------------------- endpoints and DNS


@dataclass(frozen=True)
class EndpointRow:
    """One address of a site that has several: how it fares, and what it does differently."""

    address: str
    letter: str  # "-" when not graded
    verdict: str  # FAILING, NOT_AUDITED or COMPLIANT
    label: str  # "NOT COMPLIANT", "NOT AUDITED", "COMPLIANT"
    differs: str  # its problems on the clauses where the endpoints disagree, or why it was not audited


def endpoint_rows(result: TargetResult) -> list[EndpointRow]:
    """One row per endpoint, when the name has more than one (one address: nothing to compare)."""
    if len(result.endpoints) < 2:
        return []
    rows = []
    for e in result.endpoints:
        kind = NOT_AUDITED if e.error else COMPLIANT if e.compliant else FAILING
        problems = [f"{f.clause}: {f.title}" for f in e.findings if f.status in _SEVERITY]
        label = {FAILING: "NOT COMPLIANT", NOT_AUDITED: "NOT AUDITED", COMPLIANT: "COMPLIANT"}[kind]
        rows.append(EndpointRow(e.address, e.letter or "-", kind, label, e.error or "; ".join(problems)))
    return rows


def endpoint_lines(result: TargetResult) -> list[str]:
    """The endpoint table as plain lines (text report, terminal): address, letter, verdict, differences."""
    rows = endpoint_rows(result)
    width = max((len(r.address) for r in rows), default=0)
    return [
        f"{r.address:<{width}}  {r.letter:<2}  {r.label}" + (f": {r.differs}" if r.differs else "")
        for r in rows
    ]


_SOURCES = {"system": "system resolver", "nameservers": "[dns] nameservers", "given": "given, no DNS query"}


def dns_rows(result: TargetResult) -> list[tuple[str, str]]:
    """(label, value) rows of what DNS said: the addresses audited and the name's CAA records."""
    dns = result.evidence.dns if result.evidence else None
    if dns is None:
        return []
    rows = [("Addresses", f"{', '.join(dns.addresses)} ({_SOURCES[dns.source]})")]
    caa = dns.caa
    if caa is None:
        return rows
    if caa.error:
        value = f"not known: {caa.error}"
    elif caa.owner is None:
        value = "no record: any CA may issue"
    else:
        value = f"at {caa.owner}: " + "; ".join(f'{r.flags} {r.tag} "{r.value}"' for r in caa.records)
    return [*rows, ("CAA", value)]


# ---------------------------------------------------------------- fixes written for this site


@dataclass(frozen=True)
class Fix:
    clauses: list[str]  # every failing clause this change fixes
    titles: list[str]  # what each of those findings said
    note: str  # the sentence before the configuration, or the whole advice when there is none
    nginx: str | None
    apache: str | None


def _split(remediation: str) -> tuple[str, str | None, str | None]:
    """checks.base.fix's layout: an optional sentence, "nginx:" + lines, "Apache:" + lines."""
    head, marker, rest = ("\n" + remediation).partition("\nnginx:\n")
    if not marker:
        return remediation.strip(), None, None
    nginx, marker, apache = rest.partition("\nApache:\n")
    return head.strip(), nginx.strip("\n"), (apache.strip("\n") if marker else None)


@dataclass(frozen=True)
class Site:
    """Where the snippets go: the audited host, its HTTPS port and its plain-HTTP port."""

    host: str
    port: int
    http_port: int

    @classmethod
    def of(cls, result: TargetResult) -> Site:
        http_port = 80
        plain = result.evidence.http.plain_http if result.evidence else None
        if plain is not None:
            with contextlib.suppress(ValueError):  # a port out of range: the default
                http_port = urlsplit(plain.url).port or 80
        return cls(result.target.host, result.target.port, http_port)

    def https_origin(self) -> str:
        return f"https://{self.host}" + ("" if self.port == 443 else f":{self.port}")


def _indent(lines: str) -> str:
    return "\n".join(f"    {line}" if line else line for line in lines.splitlines())


def _nginx(snippet: str, site: Site) -> str:
    text = snippet.replace("example.com", site.host)
    if "server {" in text:  # already a whole server block (the plain-HTTP redirect)
        suffix = "" if site.port == 443 else f":{site.port}"
        return text.replace("listen 80;", f"listen {site.http_port};").replace(
            "https://$host$request_uri", f"https://$host{suffix}$request_uri"
        )
    return f"server {{\n    listen {site.port} ssl;\n    server_name {site.host};\n{_indent(text)}\n}}"


def _apache(snippet: str, site: Site) -> str:
    text = snippet.replace("https://example.com/", site.https_origin() + "/").replace(
        "example.com", site.host
    )
    if "<VirtualHost" in text:
        return text.replace("<VirtualHost *:80>", f"<VirtualHost *:{site.http_port}>")
    return f"<VirtualHost *:{site.port}>\n    ServerName {site.host}\n{_indent(text)}\n</VirtualHost>"


def fixes(result: TargetResult) -> list[Fix]:
    """One entry per distinct change, in the clause order of the failures it fixes: clauses that
    need the same lines share one entry instead of repeating it; the lines name this site's host
    and ports, inside the server block / virtual host they belong to."""
    site = Site.of(result)
    groups: dict[str, list[Finding]] = {}
    for f in result.failures():
        if f.remediation:
            groups.setdefault(f.remediation, []).append(f)
    out = []
    for remediation, found in groups.items():
        note, nginx, apache = _split(remediation)
        out.append(
            Fix(
                clauses=list(dict.fromkeys(f.clause for f in found)),
                titles=[f.title for f in found],
                note=note.replace("example.com", site.host),
                nginx=_nginx(nginx, site) if nginx else None,
                apache=_apache(apache, site) if apache else None,
            )
        )
    return out
