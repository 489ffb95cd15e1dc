"""SARIF 2.1.0 for code-scanning dashboards: one rule per clause, one result per failing (level
error) or warning (level warning) finding, located at the target's URL.

A target that could not be audited, or a check that could not run, has no result (a dashboard
would read "nothing found"): it is a tool execution notification of level error instead, and the
invocation is marked unsuccessful, so the gap shows.

Every string follows reports.sanitize.block (controls "?", bidi and zero-width characters
"<U+202E>"): a dashboard shows the server's text, it does not obey it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from auditor.model import AuditReport, Finding, Status, TargetResult
from auditor.reports.clause_help import clause_help, clause_order, clause_title
from auditor.reports.sanitize import block

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {Status.FAIL: "error", Status.WARN: "warning"}


def target_label(result: TargetResult) -> str:
    return result.target.name or result.target.url


def _utc(moment: datetime) -> str:
    """SARIF times are UTC with a Z (section 3.9)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rule(clause: str) -> dict[str, Any]:
    return {
        "id": clause,
        "shortDescription": {"text": clause_title(clause)},
        "fullDescription": {"text": f"{clause}: {clause_title(clause)}"},
        "help": {"text": clause_help(clause)},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "tls-policy"]},
    }


def _message(finding: Finding) -> str:
    return f"{finding.title}. {finding.detail}" if finding.detail else finding.title


def _result(result: TargetResult, finding: Finding, rule_index: int) -> dict[str, Any]:
    properties: dict[str, Any] = {"target": target_label(result), "evidence": finding.evidence}
    if result.grade:
        properties["grade"] = result.grade.letter
    if result.web_grade and result.web_grade.letter:
        properties["web_grade"] = result.web_grade.letter
    if finding.remediation:
        properties["remediation"] = finding.remediation
    return {
        "ruleId": finding.clause,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.status],
        "message": {"text": _message(finding)},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": result.target.url}}}],
        "properties": properties,
    }


def _notification(text: str, clause: str | None = None) -> dict[str, Any]:
    note: dict[str, Any] = {"level": "error", "message": {"text": text}}
    if clause is not None:
        note["descriptor"] = {"id": clause}
    return note


def _cleaned(value: Any) -> Any:  # a JSON value: any of its types
    if isinstance(value, str):
        return block(value)
    if isinstance(value, dict):
        return {key: _cleaned(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    return value


def to_sarif_log(report: AuditReport) -> dict[str, Any]:
    clauses = clause_order(report.targets)
    index = {clause: i for i, clause in enumerate(clauses)}
    results, notes = [], []
    for target in report.targets:
        if target.error:
            where = f"{target.target.name} ({target.target.url})" if target.target.name else target.target.url
            notes.append(_notification(f"{where} could not be audited: {target.error}"))
            continue
        for finding in target.findings:
            if finding.status in LEVELS:
                results.append(_result(target, finding, index[finding.clause]))
            elif finding.status is Status.ERROR:
                notes.append(
                    _notification(
                        f"{target_label(target)}: {finding.clause} could not be checked: {_message(finding)}",
                        finding.clause,
                    )
                )
    invocation = {"executionSuccessful": not notes, "endTimeUtc": _utc(report.generated_at)}
    if notes:
        invocation["toolExecutionNotifications"] = notes
    log: dict[str, Any] = _cleaned(
        {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "auditor",
                            "version": report.tool_version,
                            "rules": [_rule(clause) for clause in clauses],
                        }
                    },
                    "invocations": [invocation],
                    "results": results,
                }
            ],
        }
    )
    return log


def to_sarif(report: AuditReport) -> str:
    return json.dumps(to_sarif_log(report), indent=2, ensure_ascii=False) + "\n"
