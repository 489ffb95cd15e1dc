"""JUnit XML for CI test views (GitLab, Jenkins): one test suite per target, one test case per clause.

A clause with a failing finding is a <failure> carrying its evidence; a check that could not run,
or a target that could not be audited at all, is an <error>; a clause with nothing tested is
<skipped>; pass, warn and info are passed cases (their text is in the suite's <system-out>).
The output validates against both Jenkins' junit-10.xsd and the stricter Ant schema (windyroad),
so it is kept to what both accept: no output inside a test case, one outcome element per case.
Text from the audited server follows reports.sanitize.block (controls "?", bidi and zero-width
characters "<U+202E>"), then loses the characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET

from auditor.model import AuditReport, Finding, Status, TargetResult
from auditor.reports.clause_help import clause_order
from auditor.reports.sanitize import block
from auditor.reports.web_lines import letter as web_letter
from auditor.reports.web_lines import report_lines as web_lines


def _xml_safe(text: str) -> str:
    """The medium's rules, and what XML 1.0 forbids besides (U+FFFE/U+FFFF): a hostile header must
    not make the whole file unreadable, nor act on the terminal or CI page that shows it."""
    return "".join(
        ch
        if ch in "\t\n" or (" " <= ch < "\ud800") or ("\ue000" <= ch <= "\ufffd") or ch >= "\U00010000"
        else "?"
        for ch in block(text)
    )


def target_label(result: TargetResult) -> str:
    return result.target.name or result.target.url


def _describe(findings: list[Finding]) -> str:
    lines: list[str] = []
    for f in findings:
        lines.append(f"[{f.status.value}] {f.title}")
        if f.detail:
            lines.append(f.detail)
        lines += [f"  {e}" for e in f.evidence]
        if f.remediation:
            lines += ["Fix:", *(f"  {line}" for line in f.remediation.splitlines())]
    return "\n".join(lines)


def _message(findings: list[Finding]) -> str:
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return findings[0].title + more


def _case(suite: ET.Element, result: TargetResult, clause: str) -> str:
    """Add the clause's test case; return its outcome: passed, failure, error or skipped."""
    case = ET.SubElement(suite, "testcase", name=clause, classname=target_label(result), time="0")
    if result.error:
        ET.SubElement(
            case, "error", type="not audited", message=f"not audited: {result.error}"
        ).text = f"The target could not be audited: {result.error}"
        return "error"
    findings = [f for f in result.findings if f.clause == clause]
    for status, outcome in ((Status.FAIL, "failure"), (Status.ERROR, "error")):
        chosen = [f for f in findings if f.status is status]
        if chosen:
            ET.SubElement(case, outcome, type=status.value, message=_message(chosen)).text = _describe(
                findings
            )
            return outcome
    if not findings or all(f.status is Status.NOT_TESTED for f in findings):
        reason = _message(findings) if findings else "no finding for this clause"
        ET.SubElement(case, "skipped", message=reason).text = _describe(findings)
        return "skipped"
    return "passed"


def _summary(result: TargetResult) -> str:
    if result.error:
        return f"NOT AUDITED {target_label(result)}: {result.error}"
    verdict = (
        "COMPLIANT" if result.compliant else f"NOT COMPLIANT ({len(result.failed_clauses())} violations)"
    )
    lines = [f"{verdict} {target_label(result)}"]
    if result.grade:
        lines.append(f"Grade {result.grade.letter} (score {result.grade.score})")
        lines += [f"  capped at {c.grade}: {c.reason}" for c in result.grade.caps]
        lines += [f"  warning: {w}" for w in result.grade.warnings]
    lines += web_lines(result, details=True)
    lines += [
        f"[{f.status.value}] {f.clause}: {f.title}"
        for f in result.findings
        if f.status in (Status.WARN, Status.INFO)
    ]
    return "\n".join(lines)


def _suite(parent: ET.Element, index: int, result: TargetResult, clauses: list[str], host: str) -> None:
    ref = result.target
    suite = ET.SubElement(
        parent,
        "testsuite",
        name=target_label(result),
        package=ref.url,
        id=str(index),
        hostname=host,
        timestamp=result.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
        time=f"{result.duration_s:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("url", ref.url),
        ("ip", ref.ip),
        ("started_at", result.started_at.isoformat()),
        ("compliant", str(result.compliant).lower()),
        ("grade", result.grade.letter if result.grade else None),
        ("web_grade", web_letter(result)),
        ("error", result.error),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=value)
    outcomes = [_case(suite, result, clause) for clause in clauses]
    ET.SubElement(suite, "system-out").text = _summary(result)
    ET.SubElement(suite, "system-err").text = ""
    counts = {
        "tests": len(outcomes),
        **{
            k: outcomes.count(o)
            for k, o in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped"))
        },
    }
    suite.attrib.update({k: str(v) for k, v in counts.items()})


def to_junit(report: AuditReport) -> str:
    """The report as one <testsuites> document (UTF-8, with declaration)."""
    clauses = clause_order(report.targets)
    host = socket.gethostname() or "localhost"
    root = ET.Element("testsuites")  # no attributes: the Ant schema allows none here; totals are per suite
    for index, result in enumerate(report.targets):
        _suite(root, index, result, clauses, host)
    for element in root.iter():
        if element.text:
            element.text = _xml_safe(element.text)
        for key, value in element.attrib.items():
            element.attrib[key] = _xml_safe(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=False).join(
        ('<?xml version="1.0" encoding="UTF-8"?>\n', "\n")
    )
