"""The README's first command ends in `auditor demo`: it must audit its two local sites."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_demo_audits_a_compliant_and_a_legacy_site(tmp_path: Path) -> None:
    run = run_cli("demo", "--out", str(tmp_path / "out"))
    assert run.code == 0, run.stderr
    assert "COMPLIANT Demo shop" in run.stdout and "NOT COMPLIANT Legacy site" in run.stdout
    report = json.loads((tmp_path / "out" / "demo-report.json").read_text())
    good, legacy = report["targets"]
    assert good["compliant"] is True and good["error"] is None
    assert legacy["compliant"] is False
    failed = {f["clause"] for f in legacy["findings"] if f["status"] == "fail"}
    assert {"11.3-protocols", "11.3-no-rsa-kex", "11.5-hsts", "11.5-cookies", "11.2-cert-renewal"} <= failed
    assert "report written" in run.stderr
