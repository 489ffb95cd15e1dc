"""History and diff through the real CLI, over scans stored by real audits of a local nginx whose
certificate and protocols change between nights; on-demand audits stay out of the history unless
--store; a history database removed between nights is noticed by the next night."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.store import Store
from tests.conftest import clause_statuses, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite


def _config(tmp_path: Path, pki: TestPKI, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
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


@pytest.fixture(scope="module")
def nights(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Nights 1 and 2: TLS 1.2 only, a certificate 20 days from expiry (renewal failing).
    Then the certificate is renewed and TLS 1.3 enabled, and an on-demand `audit --store` records it."""
    tmp_path = tmp_path_factory.mktemp("history")
    first = NginxSite(tmp_path / "a", issued=pki.issue("before", days_valid=20), protocols="TLSv1.2")
    with first:
        config = _config(tmp_path, pki, first.url)
        plain = run_cli("audit", "--config", str(config), "-q")  # on-demand: not stored
        assert plain.code == 1, plain.stderr
        assert not (tmp_path / "history.sqlite").exists()
        for _ in range(2):
            night = run_cli("schedule", "--config", str(config), "--once")
            # renewal overdue: a policy failure, exit 1 (as `audit` would)
            assert night.code == 1 and "history: stored 1 result" in night.stderr, night.stderr
            assert night.stdout.startswith("NOT COMPLIANT ")
    second = NginxSite(tmp_path / "b", issued=pki.issue("after", days_valid=90), protocols="TLSv1.2 TLSv1.3")
    second.https_port, second.http_port = first.https_port, first.http_port
    with second:
        stored = run_cli("audit", "--config", str(config), "--store", "--json", str(tmp_path / "stored.json"))
    assert stored.code in (0, 1), stored.stderr
    return config, first.url


def test_history_lists_every_stored_scan(nights: tuple[Path, str]) -> None:
    config, url = nights
    run = run_cli("history", "--config", str(config))
    assert run.code == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if url in line]
    assert len(rows) == 3
    assert [row.split("│")[1].strip() for row in rows] == ["3", "2", "1"]  # newest first
    assert "NO" in rows[2] and "NO" in rows[1]  # renewal overdue on nights 1 and 2
    assert run_cli("history", url, "--config", str(config)).stdout.count(url) == 3
    other = run_cli("history", "https://other.test/", "--config", str(config))
    assert other.code == 0 and other.stdout.startswith("no stored scans of https://other.test/ in ")


def test_diff_of_the_last_two_scans_shows_renewal_and_protocols(nights: tuple[Path, str]) -> None:
    config, url = nights
    run = run_cli("diff", url, "--config", str(config))
    assert run.code == 0, run.stderr
    assert run.stdout.startswith(f"scans 2 -> 3 of {url}")
    assert (
        "certificate leaf certificate: notAfter" in run.stdout
        and "[certificate replaced (renewed)]" in run.stdout
    )
    assert "protocol    TLS 1.3: rejected -> accepted" in run.stdout
    assert "clause      11.2-cert-renewal: fail -> pass" in run.stdout
    assert "clause      11.3-protocols: fail -> pass" in run.stdout
    same = run_cli("diff", "--config", str(config), "--scan", "1", "--scan", "2")
    assert same.code == 0 and same.stdout.splitlines()[1] == "no change"
    bad = run_cli("diff", "--config", str(config), "--scan", "1", "--scan", "99")
    assert bad.code == 2 and "no scan with id 99" in bad.stderr


def test_stored_results_carry_changes_renewal_history_and_the_log_head(nights: tuple[Path, str]) -> None:
    config, _ = nights
    store = Store(str(config.parent / "history.sqlite"), create=False)
    night2 = store.get(2)
    renewal = next(f for f in night2.findings if f.clause == "11.2-cert-renewal")
    assert renewal.status == "fail" and "Renewal has failed" in renewal.detail
    assert (
        night2.changes is not None and night2.changes.previous_scan_id == "1" and night2.changes.changes == []
    )
    report = json.loads((config.parent / "stored.json").read_text())
    target = report["targets"][0]
    assert {c["kind"] for c in target["changes"]["changes"]} >= {"certificate", "protocol", "clause"}
    assert clause_statuses(target)["11.6-evidence-log"] == "pass"  # --store: the log was verified first
    assert report["meta"]["evidence_log_head"] == store.head()
    renewed = next(f for f in target["findings"] if f["clause"] == "11.2-cert-renewal")
    assert any(line.startswith("renewed since the scan of") for line in renewed["evidence"])
    assert store.verify().ok


def test_a_removed_history_is_noticed_by_the_next_night(
    nights: tuple[Path, str], pki: TestPKI, tmp_path: Path
) -> None:
    config, url = nights
    db = config.parent / "history.sqlite"
    saved = tmp_path / "saved.sqlite"
    db.rename(saved)
    try:
        site = NginxSite(tmp_path / "c", issued=pki.issue("after", days_valid=90))
        site.https_port = int(url.rsplit(":", 1)[1].strip("/"))
        with site:
            run = run_cli("schedule", "--config", str(config), "--once")
        assert run.code == 1, run.stderr  # 11.6-evidence-log fails: a policy failure, as `audit` would exit
        report = json.loads((config.parent / "out" / "latest.json").read_text())
        evidence_log = next(f for f in report["targets"][0]["findings"] if f["clause"] == "11.6-evidence-log")
        assert (
            evidence_log["status"] == "fail"
            and "is gone (the log was cut at its end or replaced)" in evidence_log["detail"]
        )
        assert evidence_log["title"] == "The evidence log is broken at entry 1"
        verify = run_cli("verify-log", "--config", str(config))  # and it stays broken, not just for one night
        assert (
            verify.code == 5 and "BROKEN at entry 1: entry 1 is not the one a report printed" in verify.stderr
        )
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        saved.rename(db)
