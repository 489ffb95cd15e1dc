"""config.toml validation (one line per problem, no traceback) and the JSON Schema contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.config import load_config
from auditor.errors import ConfigError
from auditor.model import SCHEMA_VERSION, AuditReport
from auditor.reports.json_report import SCHEMA_PATH, json_schema

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_example_config_is_valid_and_has_policy_defaults() -> None:
    config = load_config(ROOT / "config.toml")
    assert config.targets and config.targets[0].url.startswith("https://")
    assert config.policy.renewal_days == 30
    assert config.policy.hsts_min_age == 31536000
    assert config.policy.required_protocols == ["TLS 1.2", "TLS 1.3"]


def test_committed_schema_matches_the_model() -> None:
    assert SCHEMA_PATH.read_text() == json_schema(), "run: auditor schema > auditor/schema/report.schema.json"
    schema = json.loads(SCHEMA_PATH.read_text())
    target_props = schema["$defs"]["TargetResult"]["properties"]
    for key in ("target", "started_at", "duration_s", "compliant", "grade", "findings", "error"):
        assert key in target_props
    assert set(schema["properties"]) >= {"schema_version", "generated_at", "tool_version", "targets"}
    assert AuditReport.model_fields["schema_version"].default == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[policy]\nrenewal_dayz = 3\n", "policy.renewal_dayz: unknown key (did you mean 'renewal_days'?)"),
        (
            "[policy]\nhsts_min_age = 'long'\n",
            "policy.hsts_min_age: expected a whole number of at least 0, got 'long'",
        ),
        ("[[targets]]\nurl = 'ftp://x'\n", "target 1: url: 'ftp://x': unsupported scheme 'ftp'"),
        ("[[targets]]\nurl = 'example.com'\n", "missing scheme"),
        ("[[targets]]\nurl = 'https://a:99999/'\n", "target 1: url: 'https://a:99999/': invalid URL"),
        ("[policy\n", "invalid TOML"),
        ("[scan]\nconcurency = 3\n", "scan.concurency: unknown key (did you mean 'concurrency'?)"),
        (
            "[[targets]]\nurl = 'https://a/'\nca_bundle = 'nope.pem'\n",
            "target 1 (https://a/): ca_bundle: no such file",
        ),
        ("[policy]\nrequired_protocols = ['TLS 1.4']\n", "unknown protocol 'TLS 1.4'"),
    ],
)
def test_bad_config_gives_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message
    assert all(line.startswith(str(path)) for line in message.splitlines())
    assert "Traceback" not in message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")


def test_ca_bundle_that_is_not_pem_is_rejected_before_scanning(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("this is not a certificate\n")
    path = tmp_path / "config.toml"
    path.write_text(f"[[targets]]\nurl = 'https://a.test/'\nca_bundle = '{junk}'\n")
    with pytest.raises(
        ConfigError, match=r"target 1 \(https://a.test/\): ca_bundle: .* holds no PEM certificate"
    ):
        load_config(path)
    directory = tmp_path / "dir.pem"
    directory.mkdir()
    path.write_text(f"[[targets]]\nurl = 'https://a.test/'\nca_bundle = '{directory}'\n")
    with pytest.raises(ConfigError, match="no such file"):
        load_config(path)


def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[scan]\ntimeout = 5\nconcurrency = = 3\n")
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 3, column"):
        load_config(path)


def test_wrong_types_are_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[[targets]]\nurl = 'https://a.test/'\npaths = '/x'\nhttp_port = 'eighty'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert sorted(lines) == [
        f"{path}: target 1 (https://a.test/): http_port: expected a whole number from 1 to 65535, got 'eighty'",
        f'{path}: target 1 (https://a.test/): paths: expected a list such as ["a", "b"], got \'/x\'',
    ]
