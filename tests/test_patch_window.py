"""The remediation clock (issue 18) over real nightly runs of a real nginx whose configuration changes
between "nights" (restarted with TLS 1.0 on, then off), the nights' times given through the nightly
job's injected clock (run_nightly(clock=...)): episodes open and close at the right scans, the 24-hour
window of 11.4-patch-window fails exactly when crossed, a missed night and an unaudited night are gaps
(never a fix), an upgrade that adds a check starts its clock at the upgrade, and the clock is proven
from the hash-chained log (an altered past entry: verify-log exits 5)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import html5lib
import pytest

from auditor.model import AuditReport, Finding, Status, TargetResult
from auditor.reports.html import render_html
from auditor.reports.text import render_text
from auditor.schedule import run_nightly
from tests.conftest import run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite

BEAST = "BEAST (CBC with TLS 1.0)"
# TLS 1.0 with a CBC suite first: BEAST present (as in tests/test_grading_real.py)
LEGACY = {
    "protocols": "TLSv1 TLSv1.2 TLSv1.3",
    "seclevel0": True,
    "ciphers": "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384",
}
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)  # a night to come
DAY = timedelta(days=1)
# the config, the target's URL, each night's result, the reports of nights 4 and 7
Week = tuple[Path, str, dict[int, TargetResult], dict[int, AuditReport]]


def _config(directory: Path, pki: TestPKI, url: str, hours: float | None = None) -> Path:
    path = directory / "config.toml"
    policy = f"[policy]\npatch_window_hours = {hours}\n" if hours else ""
    path.write_text(f"""{policy}
[history]
database = "history.sqlite"

[output]
directory = "out"

[[targets]]
url = "{url}"
ip = "127.0.0.1"
ca_bundle = "{pki.root_path}"
http_port = 9
""")
    return path


class Nights:
    """One nginx site on fixed ports, restarted with another configuration when asked."""

    def __init__(self, directory: Path, pki: TestPKI) -> None:
        self.directory, self.issued, self.count = directory, pki.issue("clock", days_valid=90), 0
        self.site: NginxSite | None = None
        self.ports: tuple[int, int | None] | None = None
        self.config = directory / "config.toml"

    def serve(self, **options: object) -> str:
        self.down()
        self.count += 1
        site = NginxSite(self.directory / f"site{self.count}", issued=self.issued, **options)  # type: ignore[arg-type]
        if self.ports is not None:  # the same target, reconfigured
            site.https_port, site.http_port = self.ports
        site.__enter__()
        self.site, self.ports = site, (site.https_port, site.http_port)
        return site.url

    def down(self) -> None:
        if self.site is not None:
            self.site.__exit__(None, None, None)
            self.site = None

    def night(self, at: datetime) -> TargetResult:
        outcome = run_nightly(str(self.config), clock=lambda: at)
        assert outcome.store_error is None, outcome.store_error
        (result,) = outcome.report.targets
        self.last_report = outcome.report
        return result


def _clause(result: TargetResult, clause: str) -> Finding:
    return next(f for f in result.findings if f.clause == clause)


@pytest.fixture(scope="module")
def week(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Week:
    """Night 1 modern; TLS 1.0 turned on before night 2; night 3 exactly 24 h after BEAST was first
    seen, night 4 one minute later; night 5 the server is down (not audited); night 6 missed; night 7
    still TLS 1.0; TLS 1.0 turned off before night 8."""
    directory = tmp_path_factory.mktemp("clock")
    nights = Nights(directory, pki)
    url = nights.serve()
    _config(directory, pki, url)
    results: dict[int, TargetResult] = {}
    try:
        results[1] = nights.night(T0)
        nights.serve(**LEGACY)
        results[2] = nights.night(T0 + DAY)
        results[3] = nights.night(T0 + 2 * DAY)
        results[4] = nights.night(T0 + 2 * DAY + timedelta(minutes=1))
        reports = {4: nights.last_report}
        nights.down()
        results[5] = nights.night(T0 + 3 * DAY)
        nights.serve(**LEGACY)
        results[7] = nights.night(T0 + 5 * DAY)  # night 6 (T0 + 4 days) was missed
        reports[7] = nights.last_report
        nights.serve()
        results[8] = nights.night(T0 + 6 * DAY)
    finally:
        nights.down()
    return nights.config, url, results, reports


def test_the_window_warns_then_fails_exactly_when_crossed(week: Week) -> None:
    _, _, results, _ = week
    assert _clause(results[1], "11.4-patch-window").status is Status.PASS
    night2 = _clause(results[2], "11.4-patch-window")
    assert night2.status is Status.WARN and night2.title == f"{BEAST} present: 24 h left in the 24 h window"
    night3 = _clause(results[3], "11.4-patch-window")  # exactly 24 h after the first scan that saw it
    assert night3.status is Status.WARN and night3.title == f"{BEAST} present: 0 min left in the 24 h window"
    night4 = _clause(results[4], "11.4-patch-window")  # one minute past the window
    assert night4.status is Status.FAIL and night4.title == f"{BEAST} still present after the 24 h window"
    assert "measures exposure seen from outside" in night4.detail and "evaluated the patch" in night4.detail
    assert results[3].compliant is False  # TLS 1.0 already fails 11.3-protocols; the window adds to it
    assert "11.4-patch-window" not in results[3].failed_clauses()
    assert "11.4-patch-window" in results[4].failed_clauses()
    assert _clause(results[8], "11.4-patch-window").status is Status.PASS


def test_episodes_open_and_close_at_the_right_scans_with_gaps_never_fixed(week: Week) -> None:
    _, _, results, _ = week
    assert _clause(results[1], "11.3-protocols").exposure is None  # not failing
    first = _clause(results[2], "11.3-protocols").exposure
    assert first is not None and (first.first_seen, first.scans, first.gaps) == (T0 + DAY, 1, 0)
    assert results[5].error and not results[5].findings  # the server was down: not audited
    late = _clause(results[7], "11.3-protocols").exposure  # the unaudited night and the missed night are gaps
    assert late is not None and (late.first_seen, late.last_seen) == (T0 + DAY, T0 + 5 * DAY)
    assert (late.scans, late.gaps) == (4, 2) and late.episode == first.episode
    beast = _clause(results[7], "11.4-patch-window")
    assert beast.status is Status.FAIL
    assert (
        f"{BEAST}: present since {T0 + DAY:%Y-%m-%d %H:%M} UTC (4 days, 4 scan(s), 2 gap(s) without a verdict)"
        in beast.evidence
    )
    closed = _clause(results[8], "11.4-patch-window")  # TLS 1.0 off: the episode is closed
    assert closed.status is Status.PASS and _clause(results[8], "11.3-protocols").exposure is None
    assert (
        f"{BEAST}: present {T0 + DAY:%Y-%m-%d %H:%M} UTC, gone at the scan of {T0 + 6 * DAY:%Y-%m-%d %H:%M} UTC "
        "(remediated in 5 days)"
    ) in closed.evidence


def test_reports_json_and_history_show_failing_since(week: Week) -> None:
    config, url, _, reports = week
    report = reports[7]
    since = f"failing since {T0 + DAY:%Y-%m-%d %H:%M} UTC (4 days, 4 scan(s), 2 gap(s))"
    text = render_text(report, tz=UTC)
    assert since in text
    assert since in render_html(report, tz=UTC)
    target = json.loads(report.model_dump_json())["targets"][0]
    protocols = next(f for f in target["findings"] if f["clause"] == "11.3-protocols")
    assert protocols["exposure"]["scans"] == 4 and protocols["exposure"]["first_seen"].startswith(
        f"{T0 + DAY:%Y-%m-%dT%H:%M}"
    )
    assert protocols["exposure"]["episode"] == f"11.3-protocols@{T0 + DAY:%Y-%m-%dT%H:%M}Z"
    stored = json.loads((config.parent / "out" / "latest.json").read_text())["targets"][
        0
    ]  # night 8: all fixed
    assert all(f["exposure"] is None for f in stored["findings"])
    run = run_cli("history", "--clause", "11.4-vulnerabilities", url, "--config", str(config))
    assert run.code == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if BEAST[:20] in line]
    assert len(rows) == 1
    cells = [cell.strip() for cell in rows[0].split("│")[1:-1]]
    assert cells[1:] == [
        f"11.4-vulnerabilities/{BEAST}",
        f"{T0 + DAY:%Y-%m-%d %H:%M}",
        f"{T0 + 5 * DAY:%Y-%m-%d %H:%M}",
        "4",
        "2",
        f"{T0 + 6 * DAY:%Y-%m-%d %H:%M}",
        "5 days",
    ]
    bad = run_cli("history", "--clause", "11.9-nothing", "--config", str(config))
    assert bad.code == 2 and "unknown clause" in bad.stdout


def _timelines(html: str) -> dict[str, list[tuple[str, str]]]:
    """Each finding's timeline, read with a real HTML parser: its cells' (class, title), keyed by clause."""
    found: dict[str, list[tuple[str, str]]] = {}
    for row in html5lib.parse(html, namespaceHTMLElements=False).iter("tr"):
        clause = next(
            (s.text for s in row.findall("./td/span") if "clause" in s.get("class", "").split()), None
        )
        table = row.find("./td/table")
        if clause and table is not None and "tl" in table.get("class", "").split():
            found[clause] = [(td.get("class", ""), td.get("title", "")) for td in table.iter("td")]
    return found


def test_the_html_timeline_draws_failing_scans_red_and_gaps_grey(week: Week) -> None:
    """Night 7: BEAST and TLS 1.0 seen failing on nights 2, 3, 4 and 7; night 5 not audited and
    night 6 missed are gaps, between the first-seen and last-seen dates; every cell says what it is."""
    _, _, _, reports = week
    html = render_html(reports[7], tz=UTC)
    assert "<script" not in html.lower() and "<img" not in html.lower()
    timelines = _timelines(html)
    cells = timelines["11.3-protocols"]
    states = [cls.split()[-1] for cls, _ in cells if "tl-c" in cls.split()]
    assert states == ["tl-fail", "tl-fail", "tl-fail", "tl-gap", "tl-gap", "tl-fail"]
    assert cells[0][0] == "tl-end" and cells[0] == ("tl-end", "") and cells[-2][0] == "tl-end"
    ends = [
        td.text
        for td in html5lib.parse(html, namespaceHTMLElements=False).iter("td")
        if td.get("class") == "tl-end"
    ]
    assert f"{T0 + DAY:%Y-%m-%d}" in ends and f"{T0 + 5 * DAY:%Y-%m-%d}" in ends
    titles = [title for cls, title in cells if "tl-c" in cls.split()]
    assert titles[0] == f"{T0 + DAY:%Y-%m-%d %H:%M} UTC: failing"
    assert titles[3] == f"{T0 + 3 * DAY:%Y-%m-%d %H:%M} UTC: not audited (no verdict)"
    assert titles[4] == f"{T0 + 4 * DAY:%Y-%m-%d %H:%M} UTC: missed scan (none ran)"
    assert [c for c, _ in timelines["11.4-vulnerabilities"]] == [c for c, _ in cells]
    assert "11.2-cert-renewal" not in timelines  # passing findings get none
    fail_style = next(
        td.get("style", "")
        for td in html5lib.parse(html, namespaceHTMLElements=False).iter("td")
        if "tl-fail" in td.get("class", "")
    )
    assert "#b91c1c" in fail_style  # styles inlined: mail clients drop <style>
    target = json.loads(reports[7].model_dump_json())["targets"][0]
    protocols = next(f for f in target["findings"] if f["clause"] == "11.3-protocols")
    assert [(p["state"], p["why"]) for p in protocols["exposure"]["timeline"]] == [
        ("fail", None),
        ("fail", None),
        ("fail", None),
        ("gap", "not audited"),
        ("gap", "missed scan"),
        ("fail", None),
    ]


def test_an_altered_past_entry_breaks_the_proof(week: Week, tmp_path: Path) -> None:
    config, _, _, _ = week
    copy = tmp_path / "config"
    copy.mkdir()
    (copy / "config.toml").write_text(config.read_text())
    with (
        sqlite3.connect(config.parent / "history.sqlite") as source,
        sqlite3.connect(copy / "history.sqlite") as target,
    ):
        source.backup(target)
    assert run_cli("verify-log", "--config", str(copy / "config.toml")).code == 0
    with sqlite3.connect(copy / "history.sqlite") as db:  # move night 2 a day earlier: "failing since" lies
        body = db.execute("SELECT body FROM evidence_log WHERE seq = 2").fetchone()[0]
        when = (T0 + DAY).isoformat().replace("+00:00", "Z")
        assert when in body
        db.execute("UPDATE evidence_log SET body = ? WHERE seq = 2", (body.replace(when, T0.isoformat()),))
    run = run_cli("verify-log", "--config", str(copy / "config.toml"))
    assert run.code == 5, run.stdout + run.stderr


def test_an_upgrade_that_adds_a_check_starts_its_clock_at_the_upgrade(
    pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two nights under rules version 1 without the BEAST row (an older auditor), then the upgrade:
    the row's clock starts at the first scan that could see it, though TLS 1.0 was on all along."""
    from auditor.checks import clauses, vulnerabilities
    from auditor.checks.clauses import SINCE

    nights = Nights(tmp_path, pki)
    _config(tmp_path, pki, nights.serve(**LEGACY))
    monkeypatch.setitem(SINCE, f"11.4-vulnerabilities/{BEAST}", 3)
    real_rules = vulnerabilities._rules
    try:
        with monkeypatch.context() as old:
            old.setattr(clauses, "RULES_VERSION", 2)  # read by audit_target at each scan
            old.setattr(vulnerabilities, "_rules", lambda tls: [r for r in real_rules(tls) if r[0] != BEAST])
            before = [nights.night(T0), nights.night(T0 + DAY)]
        monkeypatch.setattr(clauses, "RULES_VERSION", 3)
        upgraded = nights.night(T0 + 2 * DAY)
    finally:
        nights.down()
    assert all(_clause(r, "11.4-patch-window").status is Status.PASS for r in before)
    assert before[0].rules_version == 2 and upgraded.rules_version == 3
    window = _clause(upgraded, "11.4-patch-window")
    assert window.status is Status.WARN and window.title == f"{BEAST} present: 24 h left in the 24 h window"
    protocols = _clause(upgraded, "11.3-protocols").exposure  # an old clause keeps its clock
    assert protocols is not None and (protocols.first_seen, protocols.scans) == (T0, 3)


def test_without_history_the_window_is_not_tested_and_says_why() -> None:
    """An on-demand audit (no --store) has no history: not_tested, never a pass (pure check, no server needed)."""
    from auditor.checks.base import CheckContext
    from auditor.checks.patch_window import check_patch_window
    from tests import evidence_builders as b

    (found,) = check_patch_window(CheckContext(evidence=b.evidence(), now=b.NOW))
    assert found.status is Status.NOT_TESTED and "--store" in found.detail
    assert "measures exposure seen from outside" in found.detail


def test_a_late_renewal_says_since_when(pki: TestPKI, tmp_path: Path) -> None:
    """A certificate 20 days from expiry (renewal due 10 days ago), not replaced over two nights."""
    nights = Nights(tmp_path, pki)
    nights.issued = pki.issue("late", days_valid=20)
    _config(tmp_path, pki, nights.serve())
    try:
        first, second = nights.night(T0), nights.night(T0 + DAY)
    finally:
        nights.down()
    assert _clause(first, "11.2-cert-renewal").status is Status.FAIL
    renewal = _clause(second, "11.2-cert-renewal")
    assert renewal.status is Status.FAIL and renewal.exposure is not None and renewal.exposure.scans == 2
    assert f"renewal late: failing since {T0:%Y-%m-%d %H:%M} UTC (24 h, 2 scan(s))" in renewal.evidence
    # issued for 20 days, so due (notAfter minus the 30-day window) 10 days before issue: night 1 (T0, up to
    # an hour after issue) is 10 days past it, night 2 a day more; reckoned from the certificate, not assumed
    due = nights.issued.cert.not_valid_after_utc - timedelta(days=30)
    late = [(night - due) // DAY for night in (T0, T0 + DAY)]
    assert late[1] == late[0] + 1 and late[0] in (9, 10)  # 9 only if issued just after T0 (an hour turning)
    assert f"renewal {late[0]} days overdue (due {due:%Y-%m-%d})" in _clause(first, "11.2-cert-renewal").title
    assert renewal.title.startswith("Only 1") and renewal.title.endswith(
        f"days left: renewal {late[1]} days overdue (due {due:%Y-%m-%d})"
    )
    assert any(
        line.startswith(f"renewal {late[1]} days overdue (due {due:%Y-%m-%d}): due {due:%Y-%m-%d %H:%M} UTC")
        and "30-day renewal window" in line
        for line in renewal.evidence
    )


def test_an_expired_certificate_says_how_late_its_renewal_is() -> None:
    """Built evidence at a fixed time: expired a day ago, so due 31 days ago (30-day window)."""
    from auditor.checks.base import CheckContext
    from auditor.checks.certificate import check_renewal
    from tests import evidence_builders as b

    ev = b.evidence(b.tls(deployments=[b.deployment([b.cert(days_left=-1)])]))
    (found,) = check_renewal(CheckContext(evidence=ev, now=b.NOW))
    assert found.status is Status.FAIL
    assert found.title == "The certificate has expired: renewal 31 days overdue (due 2026-10-24)"
    assert (
        "renewal 31 days overdue (due 2026-10-24): due 2026-10-24 12:00 UTC, notAfter minus the 30-day "
        "renewal window" in found.evidence
    )
