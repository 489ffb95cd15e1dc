"""End to end: `auditor audit` against real nginx sites on 127.0.0.1, as a user runs it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clause_statuses, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, free_port

COMPLIANT_COOKIE = "__Host-sid=s3cr3tvalue; Path=/; Secure; HttpOnly; SameSite=Lax"


@pytest.fixture(scope="module")
def compliant(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxSite]:
    issued = pki.issue("compliant", hosts=("good.test",), days_valid=90, policy="ov")
    with NginxSite(
        tmp_path_factory.mktemp("nginx-good"),
        issued=issued,
        server_name="good.test",
        cookies=[COMPLIANT_COOKIE],
        tls13_ciphersuites="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
    ) as site:
        yield site


@pytest.fixture(scope="module")
def legacy(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxSite]:
    issued = pki.issue("legacy", hosts=("legacy.test",), days_valid=90, policy="dv")
    with NginxSite(
        tmp_path_factory.mktemp("nginx-legacy"),
        issued=issued,
        server_name="legacy.test",
        protocols="TLSv1 TLSv1.1 TLSv1.2",
        seclevel0=True,
        ciphers="AES256-GCM-SHA384:AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384",
        hsts=None,
        cookies=["session=abc; Path=/"],
        http_mode="content",
        body="<html><body><script src='http://cdn.legacy.test/app.js'></script>"
        "<form action='http://legacy.test/login' method='post'></form></body></html>",
    ) as site:
        yield site


def _audit(site: NginxSite, pki: TestPKI, *extra: str):
    return run_cli(
        "audit",
        "--ip",
        "127.0.0.1",
        "--ca-bundle",
        str(pki.root_path),
        "--http-port",
        str(site.http_port),
        "--json",
        "-",
        site.url,
        *extra,
    )


def test_compliant_site_exits_0_with_every_clause_reported(compliant: NginxSite, pki: TestPKI) -> None:
    run = _audit(compliant, pki)
    assert run.code == 0, run.stderr
    report = run.report
    assert report["schema_version"] == "1.1"
    (target,) = report["targets"]
    assert target["compliant"] is True and target["error"] is None
    assert target["target"] == {
        "url": compliant.url,
        "host": "good.test",
        "port": compliant.https_port,
        "ip": "127.0.0.1",
        "name": None,
    }
    statuses = clause_statuses(target)
    for clause in (
        "11.1-tls-enforced",
        "11.1-pfs",
        "11.2-cert-trusted",
        "11.2-cert-validation-level",
        "11.2-cert-signature",
        "11.2-cert-renewal",
        "11.3-protocols",
        "11.3-no-rsa-kex",
        "11.3-aes256gcm-first",
        "11.4-vulnerabilities",
        "11.5-hsts",
        "11.5-cookies",
        "5.4-transit",
    ):
        assert statuses[clause] == "pass", (clause, statuses[clause])
    assert "fail" not in statuses.values()
    assert "s3cr3tvalue" not in run.stdout  # cookie values are never kept
    assert "NOT COMPLIANT" not in run.stderr and "COMPLIANT" in run.stderr


def test_legacy_site_exits_1_naming_the_broken_clauses(legacy: NginxSite, pki: TestPKI) -> None:
    run = _audit(legacy, pki)
    assert run.code == 1, run.stderr
    (target,) = run.report["targets"]
    assert target["compliant"] is False
    statuses = clause_statuses(target)
    expected_failures = {
        "11.1-tls-enforced",
        "11.1-pfs",
        "11.2-cert-validation-level",
        "11.3-protocols",
        "11.3-aes256gcm-first",
        "11.3-no-rsa-kex",
        "11.4-vulnerabilities",
        "11.5-hsts",
        "11.5-cookies",
        "5.4-transit",
    }
    assert expected_failures <= {c for c, s in statuses.items() if s == "fail"}
    assert statuses["11.2-cert-trusted"] == "pass"
    by_clause = {f["clause"]: f for f in target["findings"] if f["status"] == "fail"}
    assert "TLS 1.0" in by_clause["11.3-protocols"]["title"]
    assert "TLS_RSA_WITH_AES_256_GCM_SHA384" in " ".join(by_clause["11.3-no-rsa-kex"]["evidence"])
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in by_clause["11.3-protocols"]["remediation"]
    assert "SSLProtocol" in by_clause["11.3-protocols"]["remediation"]
    assert any("http://cdn.legacy.test/app.js" in e for e in by_clause["11.1-tls-enforced"]["evidence"])
    assert any("http://legacy.test/login" in e for e in by_clause["5.4-transit"]["evidence"])


def test_terminal_view_shows_verdict_and_table(legacy: NginxSite, pki: TestPKI) -> None:
    run = run_cli(
        "audit",
        "--ip",
        "127.0.0.1",
        "--ca-bundle",
        str(pki.root_path),
        "--http-port",
        str(legacy.http_port),
        legacy.url,
    )
    assert run.code == 1
    assert "NOT COMPLIANT" in run.stdout and "violations" in run.stdout
    assert "11.3-protocols" in run.stdout and "FAIL" in run.stdout
    assert "\x1b[" not in run.stderr  # no animation when stderr is not a terminal


def test_config_targets_are_audited_and_reports_written(
    compliant: NginxSite, legacy: NginxSite, pki: TestPKI, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[output]
directory = "out"

[[targets]]
url = "{compliant.url}"
name = "good"
ip = "127.0.0.1"
ca_bundle = "{pki.root_path}"
http_port = {compliant.http_port}

[[targets]]
url = "{legacy.url}"
name = "legacy"
ip = "127.0.0.1"
ca_bundle = "{pki.root_path}"
http_port = {legacy.http_port}
""")
    run = run_cli("audit", "--config", str(config), "--quiet")
    assert run.code == 1, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("COMPLIANT good") and lines[1].startswith("NOT COMPLIANT legacy")
    latest = tmp_path / "out" / "latest.json"
    assert latest.is_file() and (latest.stat().st_mode & 0o777) == 0o600
    assert len(list((tmp_path / "out").glob("audit-*.json"))) == 1


# ---------------------------------------------------------------- bad input never crashes a run


@pytest.fixture()
def not_tls_port() -> Iterator[int]:
    """A port that answers in plain HTTP, like a misconfigured listener."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_bad_targets_each_get_one_line_and_others_are_audited(
    compliant: NginxSite, pki: TestPKI, not_tls_port: int
) -> None:
    closed = free_port()
    run = run_cli(
        "audit",
        "--ip",
        "127.0.0.1",
        "--ca-bundle",
        str(pki.root_path),
        "--http-port",
        str(compliant.http_port),
        "--json",
        "-",
        "--timeout",
        "3",
        compliant.url,
        "ftp://good.test/",
        "good.test",
        "https://good.test:99999/",
        f"https://good.test:{closed}/",
        f"https://good.test:{not_tls_port}/",
    )
    assert run.code == 3, run.stderr
    assert "Traceback" not in run.stderr
    targets = run.report["targets"]
    assert next(t["target"]["url"] for t in targets) == compliant.url
    assert targets[0]["compliant"] is True and targets[0]["error"] is None
    errors = [t["error"] for t in targets[1:]]
    assert "unsupported scheme 'ftp'" in errors[0]
    assert "missing scheme" in errors[1]
    assert "invalid URL" in errors[2]
    assert errors[3] == "connection refused"
    assert "TLS handshake failed" in errors[4] or "not TLS" in errors[4]
    for line in errors:
        assert "\n" not in line
    assert run.stderr.count("NOT AUDITED") == 5


def test_unresolvable_host_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Mocked on purpose: resolving a real non-existent name would send a DNS query off this machine.
    from auditor import cli

    def no_dns(*args, **kwargs):  # noqa: ANN002, ANN003
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    code = cli.main(["audit", "--quiet", "https://no-such-host.test/"])
    out = capsys.readouterr()
    assert code == 3
    assert "does not resolve" in out.out and "Traceback" not in out.err


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli("audit", cwd=tmp_path).code == 2  # no URL, no config.toml
    bad = tmp_path / "config.toml"
    bad.write_text("[scan]\nconcurency = 2\n")
    run = run_cli("audit", "--config", str(bad))
    assert run.code == 2 and "did you mean 'concurrency'" in run.stderr and "Traceback" not in run.stderr
    assert run_cli("audit", "--timeout", "0", "https://good.test/").code == 2
    assert run_cli("frobnicate").code == 2


def test_unwritable_output_and_bad_ca_bundle_exit_2_before_scanning(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    run = run_cli("audit", "--json", str(blocker / "sub" / "report.json"), "https://good.test:1/")
    assert run.code == 2 and "--json: cannot create" in run.stderr and "NOT AUDITED" not in run.stdout
    junk = tmp_path / "ca.pem"
    junk.write_text("nope")
    run = run_cli("audit", "--ca-bundle", str(junk), "https://good.test:1/")
    assert run.code == 2 and "--ca-bundle:" in run.stderr and "holds no PEM certificate" in run.stderr


def test_progress_is_shown_on_a_terminal(compliant: NginxSite, pki: TestPKI) -> None:
    """With stderr on a terminal (a real pty), the progress display names the target and its phase."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "auditor",
            "audit",
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            str(compliant.http_port),
            "--json",
            "-",
            compliant.url,
        ],
        stdout=subprocess.PIPE,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.communicate(timeout=120)
    os.close(leader)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0
    # a spinner line per target (name, elapsed time), redrawn in place, then cleared for the verdict
    assert f"⠋\x1b[0m {compliant.url}" in text and "0:00:00" in text
    assert "COMPLIANT" in text
