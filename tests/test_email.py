"""Mailing the report to a real SMTP server on loopback (aiosmtpd with STARTTLS and AUTH), and
every way sending can fail: refused, bad password, a server that never answers."""

from __future__ import annotations

import email
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC
from email.message import Message
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from auditor.config import Email
from auditor.errors import MailError
from auditor.model import AuditReport
from auditor.reports.email import send_report
from tests.conftest import run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer, free_port

PASSWORD = "s3cret-Passw0rd-for-tests"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.original_content, policy=default),
            )
        )
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"auditor"
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture()
def smtp(pki: TestPKI) -> Iterator[tuple[Inbox, int]]:
    issued = pki.issue("smtp", hosts=("127.0.0.1",))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.chain_path, issued.key_path)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    )
    controller.start()
    yield inbox, port
    controller.stop()


def _settings(pki: TestPKI, port: int, **kw) -> Email:  # noqa: ANN003
    base = {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "username": "auditor",
        "password_env": "AUDITOR_TEST_PW",
        "sender": "auditor@example.test",
        "to": ["privacy@example.test", "ops@example.test"],
        "ca_bundle": pki.root_path,
        "timeout": 3,
        "retries": 2,
        "backoff": 0,
    }
    return Email.model_validate({**base, **kw})


@pytest.fixture()
def report() -> AuditReport:
    from datetime import datetime

    from auditor.model import TargetRef, TargetResult
    from tests.test_grading import modern  # a graded, compliant result

    result = TargetResult(
        target=TargetRef(url="https://good.test/", host="good.test", port=443, name="<b>shop</b>"),
        started_at=datetime.now(UTC),
        duration_s=1.0,
        compliant=True,
        evidence=modern(),
    )
    return AuditReport(generated_at=datetime.now(UTC), tool_version="test", targets=[result])


def test_message_arrives_with_both_parts_and_the_json(smtp, report, pki, monkeypatch) -> None:
    inbox, port = smtp
    monkeypatch.setenv("AUDITOR_TEST_PW", PASSWORD)
    send_report(
        report,
        _settings(pki, port),
        html="<p>&lt;b&gt;shop&lt;/b&gt;</p>",
        text="plain",
        json_text='{"a": 1}',
    )
    ((sender, recipients, message),) = inbox.messages
    assert sender == "auditor@example.test"
    assert recipients == ["privacy@example.test", "ops@example.test"]
    assert message["Subject"] == "[auditor] good.test: not graded, compliant"
    body = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert body.strip() == "plain" and "&lt;b&gt;shop&lt;/b&gt;" in html
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename().endswith(".json") and attachment.get_content() == b'{"a": 1}'
    assert PASSWORD not in message.as_string()


def test_bad_password_is_one_line_and_not_retried(smtp, report, pki, monkeypatch) -> None:
    _, port = smtp
    monkeypatch.setenv("AUDITOR_TEST_PW", "wrong-password")
    with pytest.raises(MailError) as info:
        send_report(report, _settings(pki, port), html="h", text="t", json_text="{}")
    message = str(info.value)
    assert message == f"mail to 127.0.0.1:{port} failed after 1 attempt: authentication refused (535)"
    assert "wrong-password" not in message


def test_refused_connection_is_retried_then_reported(report, pki, monkeypatch) -> None:
    monkeypatch.setenv("AUDITOR_TEST_PW", PASSWORD)
    delays: list[float] = []
    with pytest.raises(MailError, match=r"failed after 3 attempts: connection refused"):
        send_report(
            report,
            _settings(pki, free_port(), backoff=0.5),
            html="h",
            text="t",
            json_text="{}",
            sleep=delays.append,
        )
    assert delays == [0.5, 1.0]  # exponential backoff, bounded


def test_server_that_never_answers_times_out(report, pki, monkeypatch) -> None:
    monkeypatch.setenv("AUDITOR_TEST_PW", PASSWORD)
    tarpit = socket.socket()
    tarpit.bind(("127.0.0.1", 0))
    tarpit.listen(8)
    try:
        settings = _settings(pki, tarpit.getsockname()[1], timeout=0.5, retries=1)
        with pytest.raises(MailError, match=r"failed after 2 attempts: timed out"):
            send_report(report, settings, html="h", text="t", json_text="{}")
    finally:
        tarpit.close()


def _config(tmp_path: Path, pki: TestPKI, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[email]
host = "127.0.0.1"
port = {port}
username = "auditor"
password_env = "AUDITOR_TEST_PW"
from = "auditor@example.test"
to = ["privacy@example.test"]
ca_bundle = "{pki.root_path}"
timeout = 3
retries = 1
backoff = 0
""")
    return path


def test_audit_with_email_end_to_end(smtp, pki, tmp_path) -> None:
    inbox, port = smtp
    issued = pki.issue("mailed", policy="dv")
    with PythonTLSServer(issued) as server:
        html_path = tmp_path / "out.html"
        run = run_cli(
            "audit",
            "--config",
            str(_config(tmp_path, pki, port)),
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--html",
            str(html_path),
            "--email",
            server.url,
            env={"AUDITOR_TEST_PW": PASSWORD},
        )
    assert run.code == 1, run.stderr  # DV certificate: a policy failure, mailed
    ((_, _, message),) = inbox.messages
    assert message["Subject"].startswith("[auditor] good.test: ") and "violation" in message["Subject"]
    mailed = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert mailed.split() == html_path.read_text().split()
    assert "report mailed to privacy@example.test" in run.stderr
    assert PASSWORD not in run.stdout + run.stderr + html_path.read_text()


def test_mail_failure_keeps_the_report_and_exits_4(pki, tmp_path) -> None:
    issued = pki.issue("mail-down")
    with PythonTLSServer(
        issued, response_headers=[("Strict-Transport-Security", "max-age=63072000")]
    ) as server:
        html_path = tmp_path / "out.html"
        run = run_cli(
            "--debug",
            "audit",
            "--config",
            str(_config(tmp_path, pki, free_port())),
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--html",
            str(html_path),
            "--email",
            "--json",
            str(tmp_path / "out.json"),
            server.url,
            env={"AUDITOR_TEST_PW": PASSWORD},
        )
    assert run.code == 4, run.stderr
    assert html_path.is_file()
    assert "failed after 2 attempts: connection refused" in run.stderr and "Traceback" not in run.stderr
    # the known password appears in no output of the run: terminal, --debug, reports
    outputs = [run.stdout, run.stderr] + [p.read_text() for p in tmp_path.iterdir() if p.is_file()]
    assert all(PASSWORD not in text for text in outputs)


def test_missing_password_variable_is_a_config_error_before_scanning(pki, tmp_path) -> None:
    run = run_cli(
        "audit",
        "--config",
        str(_config(tmp_path, pki, 25)),
        "--email",
        "https://good.test:1/",
        env={"AUDITOR_TEST_PW": ""},
    )
    assert run.code == 2
    assert "AUDITOR_TEST_PW is not set" in run.stderr and "NOT AUDITED" not in run.stdout
