"""The clause table is one data file (auditor/checks/clauses.toml): the ClauseId enum, the checks, the
[policy] thresholds, the README's table and the result ids all agree with it. Old reports still load."""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from auditor.checks import ALL_CHECKS, CheckContext, run_checks
from auditor.checks.clauses import CLAUSE_DATA, CLAUSES, RULES_VERSION, SINCE, load
from auditor.config import Policy
from auditor.facts import ExposureHistory, LogVerification
from auditor.grading import grade
from auditor.grading_rules import CAPS, HSTS_UNMEASURED, RATING_RULES, WARNINGS
from auditor.model import (
    AuditReport,
    ClauseId,
    Evidence,
    Finding,
    HandshakeSimulation,
    HttpResponse,
    PostQuantum,
    Status,
    Vulnerabilities,
)
from auditor.reports.clause_help import clause_help, markdown_table
from tests import evidence_builders as b
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
OLD_REPORT = Path(__file__).parent / "data" / "report-before-result-ids.json"


def test_enum_and_data_list_the_same_ids_in_the_same_order() -> None:
    assert [c.value for c in ClauseId] == [str(c) for c in CLAUSE_DATA]
    assert list(CLAUSES) == list(ClauseId)


def test_every_clause_has_exactly_one_check_and_every_check_one_clause() -> None:
    clauses = [clause for clause, _ in ALL_CHECKS]
    assert sorted(clauses) == sorted(ClauseId)  # each clause once, none missing
    checks = [check for _, check in ALL_CHECKS]
    assert len(set(checks)) == len(checks)  # no function listed for two clauses


def test_thresholds_are_policy_keys_and_every_policy_key_belongs_to_a_clause() -> None:
    fields = Policy.model_fields
    bound = {key for c in CLAUSE_DATA.values() for key in c.thresholds}
    assert bound <= set(fields), bound - set(fields)
    assert set(fields) <= bound, f"[policy] keys no clause reads: {set(fields) - bound}"
    for name, info in fields.items():  # a key whose description names a clause is bound to that clause
        named = (info.description or "").split(":", 1)[0]
        if named in CLAUSES:
            assert name in CLAUSE_DATA[ClauseId(named)].thresholds, (name, named)


def test_remediations_are_complete_and_share_one_cipher_list() -> None:
    modern = load((ROOT / "auditor/checks/clauses.toml").read_text()).values["MODERN_CIPHERS"]
    for clause in CLAUSE_DATA.values():
        for name, remedy in clause.remediation.items():
            text = remedy.render()
            assert "@" not in text.replace("@example", ""), (clause.id, name)
            assert remedy.text is not None or (remedy.nginx and remedy.apache), (clause.id, name)
            for line in text.splitlines():  # every cipher list a fix recommends is the one list
                if line.startswith(("ssl_ciphers ", "SSLCipherSuite ECDHE")):
                    assert line.split(" ", 1)[1].rstrip(";") == modern, (clause.id, name, line)


def test_since_and_rules_version() -> None:
    assert all(1 < version <= RULES_VERSION for version in SINCE.values())
    assert SINCE[ClauseId.PATCH_WINDOW] == 2


def test_readme_clause_table_is_the_generated_one() -> None:
    """scripts/clause_table.py prints the table; the README must carry exactly that text."""
    assert markdown_table() in (ROOT / "README.md").read_text(encoding="utf-8")


def test_sarif_help_comes_from_the_data() -> None:
    assert clause_help("11.5-hsts") == CLAUSE_DATA[ClauseId.HSTS].checks.replace("`", "")
    assert clause_help("99.9-future") == "See the policy clause 99.9-future."


# ---------------------------------------------------------------- result ids


def _result_id_sources() -> Iterator[tuple[str, int, ast.expr, str | None]]:
    """(module, line, result id argument, status name or None) of every call in auditor/checks that makes
    a finding: finding(clause, result_id, status, ...), and evidence.need/not_tested(ctx, clause,
    result_id, ...), whose finding is an error."""
    for path in sorted((ROOT / "auditor/checks").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name == "finding":
                status = node.args[2]
                yield path.name, node.lineno, node.args[1], getattr(status, "attr", None)
            elif name in ("need", "not_tested") and len(node.args) > 2:
                yield path.name, node.lineno, node.args[2], "ERROR"


def _literals(node: ast.expr) -> list[str]:
    """The ids a result-id argument can take: a literal, or a conditional between literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return []


def test_every_finding_call_names_its_result_id_literally() -> None:
    """An id is written where the finding is made (grep finds it); a literal status keeps one id."""
    status_of: dict[str, set[str]] = defaultdict(set)
    for module, line, result, status in _result_id_sources():
        ids = _literals(result)
        if not ids:
            # a helper passing its caller's id through (a parameter), or certificate's trust problems
            # naming the first problem's id (a literal in its tuple)
            assert isinstance(result, ast.Name | ast.Subscript), (module, line)
            continue
        assert all(KEBAB.match(i) for i in ids), (module, line, ids)
        if status is not None and len(ids) == 1:
            status_of[ids[0]].add(status)
    assert {i: s for i, s in status_of.items() if len(s) > 1} == {}


def _pq_absent() -> PostQuantum:
    return PostQuantum(
        groups={"X25519MLKEM768": False, "SecP256r1MLKEM768": False, "SecP384r1MLKEM1024": False}
    )


def _realistic() -> Iterator[tuple[Evidence, dict[str, object]]]:
    """Evidence of compliant and broken sites, with the context a run gives the checks."""
    ok_log = LogVerification(ok=True, entries=3, head="00" * 32)
    broken_log = LogVerification(ok=False, entries=3, head="00" * 32, reason="hash mismatch", first_bad_seq=2)
    good = b.evidence()
    yield good, {"grade": grade(good), "evidence_log": ok_log, "exposure": ExposureHistory(b.NOW, {})}
    yield good, {"evidence_log": broken_log}
    legacy = b.evidence(
        b.tls({"TLS 1.0": ["TLS_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.2": ["TLS_RSA_WITH_AES_256_GCM_SHA384"]}),
        b.http(
            b.page(
                headers=[], cookies=["sid=1"], mixed=["http://cdn.test/a.js"], forms=["http://good.test/f"]
            ),
            plain=HttpResponse(url="http://good.test/", status=200),
        ),
    )
    yield legacy, {"grade": grade(legacy)}
    yield legacy, {"policy": Policy(cookie_allowlist=["other"])}
    yield (
        b.evidence(
            b.tls(
                {"TLS 1.3": b.MODERN_13},
                deployments=[
                    b.deployment(
                        [
                            b.cert(
                                days_left=-1, sig_hash="sha1", policies=("2.23.140.1.2.1",), self_signed=True
                            )
                        ],
                        trusted=False,
                        matches=False,
                    )
                ],
            ),
            b.http(
                b.page(
                    headers=[("Strict-Transport-Security", "max-age=100")], cookies=["a=1; Secure; HttpOnly"]
                ),
                plain=HttpResponse(url="http://good.test/", status=302, location="https://good.test/"),
            ),
        ),
        {"policy": Policy(cookie_allowlist=["a"])},
    )
    yield (
        b.evidence(
            b.tls({"TLS 1.2": b.MODERN_12[::-1]}, deployments=[b.deployment([b.cert(days_left=10)])]),
            b.http(
                b.page(headers=[("Strict-Transport-Security", "max-age=20000000")]),
                plain=HttpResponse(url="http://good.test/", error="connection refused"),
            ),
        ),
        {"policy": Policy(require_post_quantum=True)},
    )
    thorough = b.evidence(
        b.tls(
            {"SSL 3.0": ["TLS_RSA_WITH_RC4_128_SHA"], "TLS 1.2": b.MODERN_12},
            engine="thorough",
            vulns=Vulnerabilities(
                heartbleed=True, secure_renegotiation=False, client_renegotiation_dos=False
            ),
        ),
        b.http(
            b.page(headers=[("Strict-Transport-Security", "max-age=31536000; max-age=1")]),
            plain=HttpResponse(url="http://good.test/", status=301, location="http://elsewhere.test/"),
        ),
    )
    yield thorough, {}
    no_pq = b.evidence(b.tls())
    no_pq.tls.post_quantum = _pq_absent()
    no_pq.tls.simulations = [HandshakeSimulation(client="old", reference=True, error="handshake failure")]
    yield no_pq, {}
    yield (
        b.evidence(b.tls(deployments=[]), b.http(HttpResponse(url="https://good.test/", error="timed out"))),
        {},
    )


def _produced() -> list[Finding]:
    return [
        f
        for ev, ctx in _realistic()
        for f in run_checks(CheckContext(evidence=ev, host="good.test", now=b.NOW, **ctx))  # type: ignore[arg-type]
    ]


def test_result_ids_of_realistic_evidence_are_well_formed_and_keep_one_status() -> None:
    produced = _produced()
    assert len({f.result_id for f in produced}) >= 40  # the set is varied, not one site judged nine times
    statuses: dict[str, set[Status]] = defaultdict(set)
    clauses: dict[str, set[ClauseId]] = defaultdict(set)
    for f in produced:
        assert f.result_id is not None and KEBAB.match(f.result_id), f
        statuses[f.result_id].add(f.status)
        clauses[f.result_id].add(f.clause)
    assert {i: s for i, s in statuses.items() if len(s) > 1} == {}
    # one id names one clause's outcome, except a missing certificate, said alike by the four cert clauses
    # (a crashed check, "check-failed", is tests/test_checks.py's)
    assert {i: c for i, c in clauses.items() if len(c) > 1 and i != "cert-not-retrieved"} == {}
    assert {Status.PASS, Status.FAIL, Status.WARN, Status.ERROR, Status.NOT_TESTED, Status.INFO} <= {
        s for ss in statuses.values() for s in ss
    }


# ---------------------------------------------------------------- grade caps


def test_grade_rule_ids_are_unique_and_caps_carry_them() -> None:
    ids = [rule.id for rule in [*CAPS, *WARNINGS]] + [HSTS_UNMEASURED]
    assert len(set(ids)) == len(ids) and all(KEBAB.match(i) for i in ids)
    ev = b.evidence(b.tls({"TLS 1.0": ["TLS_RSA_WITH_RC4_128_SHA"], "TLS 1.2": b.MODERN_12}))
    g = grade(ev)
    assert g is not None and g.rating_rules == RATING_RULES == "ssllabs-2009r+2020"
    wording = {rule.id: rule.wording for rule in CAPS}
    assert {c.rule for c in g.caps} >= {"rc4", "old-protocols"}
    assert all(c.rule is not None and wording[c.rule] == c.reason for c in g.caps)
    unmeasured = grade(
        b.evidence(http_evidence=b.http(HttpResponse(url="https://good.test/", error="reset")))
    )
    assert unmeasured is not None and [c.rule for c in unmeasured.caps] == [HSTS_UNMEASURED]


# ---------------------------------------------------------------- old reports


def test_report_written_before_result_ids_loads_and_prints() -> None:
    """tests/data/report-before-result-ids.json was written by the code before this change (a70a89b):
    plain clause strings, no result_id, no cap rule, no rating rules, TlsEvidence.errors."""
    raw = json.loads(OLD_REPORT.read_text())
    assert "result_id" not in raw["targets"][0]["findings"][0]
    report = AuditReport.model_validate(raw)
    findings = report.targets[0].findings
    assert findings[0].clause is ClauseId.TLS_ENFORCED and all(f.result_id is None for f in findings)
    assert report.targets[0].grade is not None and report.targets[0].grade.caps[0].rule is None
    run = run_cli("report", str(OLD_REPORT), "--text", "-")
    assert run.code == 0, run.stderr
    assert "11.3-protocols" in run.stdout and "capped at B" in run.stdout
