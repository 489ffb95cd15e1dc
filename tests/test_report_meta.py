"""`AuditReport.meta` is a typed model (ReportMeta, issue 14 item 3): reports written before it
still load and render, a report states only what is known (no nulls), and a key nobody writes is
refused rather than carried silently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from auditor.model import AuditReport, ReportMeta
from tests.conftest import run_cli

# written by `auditor schedule --once` before meta was typed (an unreachable target, --store)
OLD_NIGHTLY = Path(__file__).parent / "data" / "report-before-typed-meta.json"

# each form the untyped meta took in reports written before ReportMeta
OLD_FORMS: list[dict[str, Any]] = [
    {"config_sha256": None, "config_path": None},  # `audit URL` without a config file
    {"config_sha256": "ab" * 32, "config_path": "config.toml"},
    {"demo": True},
    {"config_sha256": "ab" * 32, "config_path": "c.toml", "not_stored": "database is locked"},
    {
        "config_sha256": "ab" * 32,
        "config_path": "/etc/auditor/config.toml",
        "run": "nightly",
        "pruned_entries": 3,
        "evidence_log_head": "cd" * 32,
        "evidence_log": "postgresql://auditor@db/history",
    },
]


def test_a_report_written_before_typed_meta_is_rendered_again(tmp_path: Path) -> None:
    old = json.loads(OLD_NIGHTLY.read_text())
    run = run_cli("report", str(OLD_NIGHTLY), "--text", "-", "--html", str(tmp_path / "again.html"))
    assert run.code == 0, run.stderr
    assert f"Evidence log head: {old['meta']['evidence_log_head']}" in run.stdout
    html = (tmp_path / "again.html").read_text()
    assert old["meta"]["config_sha256"] in html and old["meta"]["evidence_log_head"] in html


@pytest.mark.parametrize("meta", OLD_FORMS)
def test_every_old_meta_form_loads_and_keeps_its_values(meta: dict[str, Any], tmp_path: Path) -> None:
    data = json.loads(OLD_NIGHTLY.read_text())
    data["meta"] = meta
    report = AuditReport.model_validate(data)
    again = json.loads(report.model_dump_json())["meta"]
    assert again == {key: value for key, value in meta.items() if value is not None}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    run = run_cli("report", str(path), "--text", "-")
    assert run.code == 0 and "auditor" in run.stdout, run.stderr


def test_meta_states_only_what_is_known() -> None:
    assert json.loads(ReportMeta(demo=True).model_dump_json()) == {"demo": True}
    assert ReportMeta().model_dump(mode="json") == {}


def test_an_unknown_meta_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="typo_key"):
        ReportMeta.model_validate({"config_sha256": "ab" * 32, "typo_key": 1})
