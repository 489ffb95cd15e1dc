"""The operator's truth, through the real CLI (issue 12 items 2, 4, 13):

- `auditor schedule --once` prints the verdict summary `audit --quiet` prints and exits with audit's
  codes: 1 policy broken, 3 a target not audited, 4 the mail failed; 3 wins over 4, 4 over 1.
- One rule for where the config, the history and the reports live (auditor/locations.py), the same
  for every command, run here in a temporary working directory; where things went is printed.
- The systemd units in contrib/systemd parse, and their ExecStart is a real auditor command line.

Real servers on loopback: Python TLS sites (a compliant one, a DV one that breaks 11.2), a closed
port (not audited), and aiosmtpd (tests/test_email.py) refusing the password or not running.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, CliRun, clause_statuses, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, PythonTLSServer, free_port
from tests.test_email import PASSWORD, smtp  # noqa: F401  (the real SMTP server fixture)

HSTS = [("Strict-Transport-Security", "max-age=63072000; includeSubDomains")]


@pytest.fixture(scope="module")
def good(pki: TestPKI) -> Iterator[str]:
    with PythonTLSServer(pki.issue("operator-good"), response_headers=HSTS) as server:
        yield server.url


@pytest.fixture(scope="module")
def bad(pki: TestPKI) -> Iterator[str]:
    """A DV certificate: 11.2-cert-validation-level fails (a policy failure, exit 1)."""
    with PythonTLSServer(pki.issue("operator-dv", policy="dv"), response_headers=HSTS) as server:
        yield server.url


def _write_config(directory: Path, pki: TestPKI, urls: list[str], *, mail_port: int | None = None) -> Path:
    mail = ""
    if mail_port is not None:
        mail = (
            f'[email]\nhost = "127.0.0.1"\nport = {mail_port}\nusername = "auditor"\n'
            f'password_env = "AUDITOR_TEST_PW"\nfrom = "auditor@example.test"\nto = ["ops@example.test"]\n'
            f'ca_bundle = "{pki.root_path}"\ntimeout = 3\nretries = 0\nnotify = "always"\n'
        )
    targets = "".join(
        f'[[targets]]\nname = "site{i}"\nurl = "{url}"\nip = "127.0.0.1"\n'
        f'ca_bundle = "{pki.root_path}"\nhttp_port = 9\n'
        for i, url in enumerate(urls)
    )
    path = directory / "config.toml"
    path.write_text(
        f'[scan]\ntimeout = 3\n[history]\ndatabase = "hist.sqlite"\n[output]\ndirectory = "out"\n'
        f"{mail}{targets}"
    )
    return path


def _once(config: Path, password: str = PASSWORD) -> CliRun:
    return run_cli("schedule", "--config", str(config), "--once", env={"AUDITOR_TEST_PW": password})


# ------------------------------------------------------------------ schedule --once: summary and exit codes


def test_once_prints_the_audit_summary_and_where_things_went(good, pki, tmp_path, smtp) -> None:  # noqa: F811
    inbox, port = smtp
    config = _write_config(tmp_path, pki, [good], mail_port=port)
    once = _once(config)
    assert once.code == 0, once.stderr
    assert once.stdout.splitlines() == [
        "COMPLIANT site0  grade A+",
        "Policy verdict: 1 compliant, 0 not compliant, 0 not audited",
    ]
    audit = run_cli("audit", "--config", str(config), "--quiet")
    assert audit.code == 0 and audit.stdout == once.stdout  # the very same summary
    out = (tmp_path / "out").resolve()
    written = [
        line.removeprefix("report written: ")
        for line in once.stderr.splitlines()
        if line.startswith("report written: ")
    ]
    names = sorted(Path(p).name for p in written)  # latest.json, nightly-<time>.html, nightly-<time>.json
    assert names[0] == "latest.json" and [n.split(".")[1] for n in names[1:]] == ["html", "json"]
    assert {Path(p).parent for p in written} == {out} and all(Path(p).is_file() for p in written)
    assert (
        f"history: stored 1 result(s) in {(tmp_path / 'hist.sqlite').resolve()}; evidence log head"
        in once.stderr
    )
    assert "report mailed to ops@example.test" in once.stderr and len(inbox.messages) == 1


@pytest.mark.parametrize(
    ("case", "sites", "mail", "code", "says"),
    [
        ("policy broken", ["bad"], None, 1, "NOT COMPLIANT site0  1 violation"),
        ("not audited wins over the policy", ["bad", "closed"], None, 3, "NOT AUDITED site1"),
        ("mail refused (bad password)", ["good"], "refused", 4, "authentication refused"),
        ("mail server down wins over the policy", ["bad"], "down", 4, "connection refused"),
        ("not audited wins over the mail", ["closed"], "down", 3, "NOT AUDITED site0"),
    ],
)
def test_once_exits_like_audit(case, sites, mail, code, says, good, bad, pki, tmp_path, smtp) -> None:  # noqa: F811
    urls = {"good": good, "bad": bad, "closed": f"https://good.test:{free_port()}/"}
    _, smtp_port = smtp
    mail_port = {None: None, "refused": smtp_port, "down": free_port()}[mail]
    once = _once(
        _write_config(tmp_path, pki, [urls[s] for s in sites], mail_port=mail_port),
        password="wrong-password" if mail == "refused" else PASSWORD,
    )
    assert once.code == code, (case, once.stdout, once.stderr)
    assert says in once.stdout + once.stderr, case
    lines = once.stdout.splitlines()
    assert len(lines) == len(sites) + 1 and lines[-1].startswith("Policy verdict: ")
    if mail:
        (failure,) = [line for line in once.stderr.splitlines() if "mail to 127.0.0.1" in line]
        assert failure.startswith("auditor: mail to 127.0.0.1:") and "failed after 1 attempt" in failure
    assert list((tmp_path / "out").glob("nightly-*.json")), "the report is written whatever the exit status"


def test_once_without_a_config_is_a_usage_error(tmp_path: Path) -> None:
    run = run_cli("schedule", "--once", cwd=tmp_path)
    assert run.code == 2 and "no config.toml in the current directory; give --config PATH" in run.stderr


# ------------------------------------------------------------------ one rule for where things live


def test_json_keeps_the_output_directory_copies(good, pki, tmp_path) -> None:
    _write_config(tmp_path, pki, [good])
    run = run_cli("audit", "--json", "mine.json", "--quiet", cwd=tmp_path)
    assert run.code == 0, run.stderr
    assert (tmp_path / "mine.json").is_file() and (tmp_path / "out" / "latest.json").is_file()
    assert len(list((tmp_path / "out").glob("audit-*.json"))) == 1
    assert run.stderr == ""  # --quiet: no location lines
    loud = run_cli("audit", "--json", "mine.json", cwd=tmp_path)
    written = [line for line in loud.stderr.splitlines() if line.startswith("report written: ")]
    assert written[0] == "report written: mine.json" and written[-1] == "report written: out/latest.json"
    assert len(written) == 3 and written[1].startswith("report written: out/audit-")


def test_store_history_diff_verify_and_report_share_the_config_of_the_directory(good, pki, tmp_path) -> None:
    _write_config(tmp_path, pki, [good])
    for _ in range(2):
        stored = run_cli(
            "audit",
            "--store",
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            good,
            cwd=tmp_path,
        )
        assert stored.code == 0, stored.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "hist.sqlite", "out"]
    history = run_cli("history", cwd=tmp_path)
    assert history.code == 0 and history.stdout.count(good) == 2, history.stdout + history.stderr
    assert "history: stored 1 result(s) in hist.sqlite; evidence log head " in stored.stderr
    diff = run_cli("diff", good, cwd=tmp_path)
    assert diff.code == 0 and diff.stdout.startswith(f"scans 1 -> 2 of {good}"), diff.stderr
    verify = run_cli("verify-log", cwd=tmp_path)
    assert verify.code == 0 and "intact: 2 entries" in verify.stdout, verify.stderr
    audited = run_cli("audit", "--quiet", cwd=tmp_path)  # the config's targets: out/latest.json
    assert audited.code == 0, audited.stderr
    text = run_cli("report", "--text", "-", cwd=tmp_path)  # no SCAN.json: the config's latest.json
    assert text.code == 0 and "site0" in text.stdout, text.stderr


def test_without_a_config_the_history_is_in_the_current_directory(good, pki, tmp_path) -> None:
    stored = run_cli(
        "audit",
        "--store",
        "--ip",
        "127.0.0.1",
        "--ca-bundle",
        str(pki.root_path),
        "--http-port",
        "9",
        good,
        cwd=tmp_path,
    )
    assert stored.code == 0, stored.stderr
    history = run_cli("history", cwd=tmp_path)
    assert history.code == 0 and good in history.stdout, history.stderr
    assert "history: stored 1 result(s) in auditor-history.sqlite" in stored.stderr


# ------------------------------------------------------------------ a private CA is an unknown CA, not an incomplete chain


def test_leaf_only_chain_unknown_ca_or_incomplete(pki: TestPKI, tmp_path: Path) -> None:
    """nginx serving a test-PKI leaf without its intermediate, audited three ways in one real run:
    without a CA bundle it is issued by an unknown CA (T, with the --ca-bundle hint); with the CA
    bundle the intermediate is missing (B, incomplete chain); a leaf naming its issuer's URL (AIA
    caIssuers) is an incomplete chain whatever the bundle (SSL Labs fetches it; offline, the issuer
    behind that URL is not judged)."""
    leaves = {
        "no-bundle": pki.issue("leaf-alone"),
        "bundle": pki.issue("leaf-alone-bundle"),
        "aia": pki.issue("leaf-alone-aia", ca_issuers_url="http://ca.good.test/intermediate.crt"),
    }
    with (
        NginxSite(issued=leaves["no-bundle"], serve_chain=False) as alone,
        NginxSite(issued=leaves["bundle"], serve_chain=False) as bundled,
        NginxSite(issued=leaves["aia"], serve_chain=False) as aia,
    ):
        entries = "".join(
            f'[[targets]]\nname = "{name}"\nurl = "{site.url}"\nip = "127.0.0.1"\n'
            f"http_port = {site.http_port}\n" + (f'ca_bundle = "{pki.root_path}"\n' if bundle else "")
            for name, site, bundle in (
                ("no-bundle", alone, False),
                ("bundle", bundled, True),
                ("aia", aia, False),
            )
        )
        config = tmp_path / "config.toml"
        config.write_text(f"[scan]\nconcurrency = 3\n[output]\nwrite_json = false\n{entries}")
        run = run_cli("audit", "--config", str(config), "--json", "-", "--quiet")
    assert run.code == 1, run.stderr
    targets = {t["target"]["name"]: t for t in run.report["targets"]}
    trusted = {
        name: next(f for f in t["findings"] if f["clause"] == "11.2-cert-trusted")
        for name, t in targets.items()
    }
    assert all(clause_statuses(t)["11.2-cert-trusted"] == "fail" for t in targets.values())

    assert targets["no-bundle"]["grade"]["letter"] == "T"
    assert trusted["no-bundle"]["title"] == "The certificate is issued by an unknown CA"
    assert "incomplete" not in trusted["no-bundle"]["title"] + trusted["no-bundle"]["detail"]
    assert "--ca-bundle" in trusted["no-bundle"]["detail"] and "ca_bundle" in trusted["no-bundle"]["detail"]
    assert "Auditor Test Intermediate CA" in trusted["no-bundle"]["detail"]

    assert targets["bundle"]["grade"]["letter"] == "B"
    assert "The certificate chain is incomplete" in [c["reason"] for c in targets["bundle"]["grade"]["caps"]]
    assert trusted["bundle"]["title"] == "The chain is incomplete: the intermediate certificate is missing"

    leaf = targets["aia"]["evidence"]["tls"]["certificates"][0]["received_chain"][0]
    assert leaf["ca_issuers"] == ["http://ca.good.test/intermediate.crt"]
    assert trusted["aia"]["title"] == "The chain is incomplete: the intermediate certificate is missing"
    assert "http://ca.good.test/intermediate.crt" in trusted["aia"]["detail"]


# ------------------------------------------------------------------ systemd units (contrib/systemd)

UNITS = ROOT / "contrib" / "systemd"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(UNITS / name)
    return parser


@pytest.mark.parametrize(
    ("service", "mode"), [("tls-auditor-nightly.service", "--once"), ("tls-auditor.service", None)]
)
def test_service_runs_a_real_auditor_command(service: str, mode: str | None) -> None:
    from auditor.cli import build_parser

    unit = _unit(service)
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/.venv/bin/auditor")
    args = build_parser().parse_args(argv[1:])  # exits 2 (SystemExit) on anything argparse refuses
    assert args.command == "schedule" and args.once is (mode == "--once") and args.config is not None
    assert unit["Service"]["Type"] == ("oneshot" if mode else "simple")
    assert unit["Service"]["User"] and unit["Service"]["EnvironmentFile"]
    if mode:  # the timer starts it; a policy failure (1) or a mail failure (4) must show as a failed unit
        assert "Install" not in unit and "SuccessExitStatus" not in unit["Service"]
    else:
        assert (
            unit["Install"]["WantedBy"] == "multi-user.target" and unit["Service"]["Restart"] == "on-failure"
        )


def test_timer_starts_the_nightly_service() -> None:
    timer = _unit("tls-auditor-nightly.timer")
    assert timer["Timer"]["Unit"] == "tls-auditor-nightly.service"
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` checks every key; ExecStart must exist, so the units are verified
    with the path of this checkout's auditor substituted for /opt/tls-auditor."""
    auditor = ROOT / ".venv" / "bin" / "auditor"
    if not auditor.is_file():
        pytest.skip(f"{auditor} is absent (no venv in this checkout)")
    for unit in UNITS.iterdir():
        if unit.suffix in (".service", ".timer"):
            text = unit.read_text().replace("/opt/tls-auditor/.venv/bin/auditor", str(auditor))
            (tmp_path / unit.name).write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # an unknown key or a bad value is only a warning naming the unit (exit 0): none is allowed
    problems = [line for line in proc.stderr.splitlines() if "tls-auditor" in line]
    assert proc.returncode == 0 and not problems, proc.stderr
