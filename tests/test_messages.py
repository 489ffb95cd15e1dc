"""What a user reads: diagnostics stay one line in logs and pipes, config errors name the target,
the key and what was expected, a permanent mail failure is not retried, and `--help` documents
every command, option, default and exit code. All through the real CLI or real servers on loopback."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from auditor.config import Email
from auditor.errors import MailError
from auditor.model import AuditReport, TargetRef, TargetResult
from auditor.reports.email import send_report
from tests.conftest import run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import free_port
from tests.test_email import PASSWORD, Inbox, _authenticate

# ---------------------------------------------------------------- 5. one line, never wrapped


def test_long_diagnostic_into_a_pipe_stays_one_line() -> None:
    """A target with a 260-character URL (a 248-character host name) that refuses connections: its
    NOT AUDITED line, URL and reason included, is one line on stdout (a pipe), not a box wrapped at
    120 or 80 columns, nor cut at 200 characters."""
    host = ".".join(["x" * 60] * 4) + ".test"
    url = f"https://{host}:{free_port()}/"
    assert len(url) > 250
    run = run_cli("audit", "--ip", "127.0.0.1", "--http-port", "9", "--timeout", "3", url)
    assert run.code == 3, run.stderr
    lines = [line for line in run.stdout.splitlines() if "NOT AUDITED" in line]
    assert len(lines) == 1, run.stdout
    assert lines[0].startswith(f"NOT AUDITED {url}  ") and "refused" in lines[0], lines[0]


def test_progress_notes_on_stderr_are_not_wrapped(tmp_path: Path) -> None:
    """`report written: PATH` with a long path stays one line when stderr is a pipe."""
    out = tmp_path / ("long-directory-name-" * 8) / "reports"
    run = run_cli("demo", "--out", str(out))
    assert run.code == 0, run.stderr
    assert f"report written: {out / 'demo-report.html'}\n" in run.stderr, run.stderr


# ---------------------------------------------------------------- 5. permanent mail failures are not retried


class _CountingController(Controller):
    """aiosmtpd whose TCP connections are counted by client address (STARTTLS calls
    connection_made again on the same connection), the controller's readiness probe excluded."""

    def __init__(self, handler, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
        self.peers: set[object] = set()

    @property
    def connections(self) -> int:
        return len(self.peers)

    def factory(self) -> SMTP:
        controller = self

        class Counting(SMTP):
            def connection_made(self, transport) -> None:
                controller.peers.add(transport.get_extra_info("peername"))
                super().connection_made(transport)

        return Counting(self.handler, **self.SMTP_kwargs)

    def __enter__(self) -> Self:
        self.start()  # its probe has read the greeting, so it is already counted: forget it
        self.peers.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Refusing(Inbox):
    """A server that answers MAIL FROM or RCPT TO with a fixed reply."""

    def __init__(self, mail: str | None = None, rcpt: str | None = None) -> None:
        super().__init__()
        self.mail, self.rcpt = mail, rcpt

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802  # aiosmtpd hook
        if self.mail:
            return self.mail
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802  # aiosmtpd hook
        if self.rcpt:
            return self.rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture()
def report() -> AuditReport:
    result = TargetResult(
        target=TargetRef(url="https://good.test/", host="good.test", port=443),
        compliant=True,
        started_at=datetime.now(UTC),
        duration_s=1.0,
    )
    return AuditReport(generated_at=datetime.now(UTC), tool_version="test", targets=[result])


def _tls_context(pki: TestPKI):
    import ssl

    issued = pki.issue("smtp-messages", hosts=("127.0.0.1",))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.chain_path, issued.key_path)
    return context


def _send(report: AuditReport, pki: TestPKI, port: int, **kw: Any) -> str:
    settings = Email.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "security": "starttls",
            "sender": "auditor@example.test",
            "to": ["ops@example.test"],
            "ca_bundle": pki.root_path,
            "timeout": 3,
            "retries": 2,
            "backoff": 0,
            **kw,
        }
    )
    with pytest.raises(MailError) as info:
        send_report(report, settings, html="h", text="t", json_text="{}")
    return str(info.value)


def test_refused_authentication_is_tried_once(report, pki, monkeypatch) -> None:
    monkeypatch.setenv("AUDITOR_TEST_PW", "wrong-password")
    with _CountingController(
        Inbox(),
        tls_context=_tls_context(pki),
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    ) as server:
        message = _send(report, pki, server.port, username="auditor", password_env="AUDITOR_TEST_PW")
    assert message == f"mail to 127.0.0.1:{server.port} failed after 1 attempt: authentication refused (535)"
    assert server.connections == 1


def test_server_without_starttls_is_tried_once(report, pki) -> None:
    with _CountingController(Inbox()) as server:  # no TLS context: STARTTLS is not offered
        message = _send(report, pki, server.port)
    assert message.startswith(
        f"mail to 127.0.0.1:{server.port} failed after 1 attempt: the server does not offer STARTTLS"
    ), message
    assert server.connections == 1


def test_recipient_refused_with_5xx_is_tried_once(report, pki) -> None:
    with _CountingController(
        _Refusing(rcpt="550 5.1.1 no such mailbox"), tls_context=_tls_context(pki)
    ) as server:
        message = _send(report, pki, server.port)
    assert message == (
        f"mail to 127.0.0.1:{server.port} failed after 1 attempt: recipients refused: "
        "ops@example.test (550 5.1.1 no such mailbox)"
    )
    assert server.connections == 1


def test_server_answering_421_is_retried(report, pki) -> None:
    with _CountingController(
        _Refusing(mail="421 4.3.2 busy, try later"), tls_context=_tls_context(pki)
    ) as server:
        message = _send(report, pki, server.port, retries=2)
    assert message == (
        f"mail to 127.0.0.1:{server.port} failed after 3 attempts: "
        "the server answered 421 4.3.2 busy, try later"
    )
    assert server.connections == 3


def test_counting_server_delivers_with_the_right_password(report, pki, monkeypatch) -> None:
    """The counting server is a working server: the right password delivers on one connection."""
    monkeypatch.setenv("AUDITOR_TEST_PW", PASSWORD)
    inbox = Inbox()
    with _CountingController(
        inbox,
        tls_context=_tls_context(pki),
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    ) as server:
        settings = Email.model_validate(
            {
                "host": "127.0.0.1",
                "port": server.port,
                "username": "auditor",
                "password_env": "AUDITOR_TEST_PW",
                "sender": "auditor@example.test",
                "to": ["ops@example.test"],
                "ca_bundle": pki.root_path,
                "timeout": 3,
                "retries": 2,
                "backoff": 0,
            }
        )
        send_report(report, settings, html="h", text="t", json_text="{}")
    assert len(inbox.messages) == 1 and server.connections == 1


# ---------------------------------------------------------------- 6. config errors in the user's words

CONFIG_ERRORS = [
    (
        '[scan]\ntimeout = "ten"\n',
        "scan.timeout: expected a number greater than 0 and at most 300, got 'ten'",
    ),
    ("[scan]\nconcurrency = 0\n", "scan.concurrency: expected a whole number from 1 to 100, got 0"),
    ("[scan]\nthorough = 3\n", "scan.thorough: expected true or false, got 3"),
    (
        '[[targets]]\nurl = "https://a.test/"\n[[targets]]\nname = "shop"\nurl = "ftp://shop.test/"\n',
        "target 2 (shop): url: 'ftp://shop.test/': unsupported scheme 'ftp'; only https:// can be audited",
    ),
    (
        '[[targets]]\nurl = "shop.test"\n',
        "target 1: url: 'shop.test': missing scheme; write https://shop.test",
    ),
    (
        '[[targets]]\nurl = "https://a.test/"\nhttp_port = "eighty"\n',
        "target 1 (https://a.test/): http_port: expected a whole number from 1 to 65535, got 'eighty'",
    ),
    (
        '[[targets]]\nurl = "https://a.test/"\nipp = "127.0.0.1"\n',
        "target 1 (https://a.test/): ipp: unknown key (did you mean 'ip'?)",
    ),
    (
        '[targets]\nurl = "https://a.test/"\n',
        "targets: expected one [[targets]] table per target (double brackets), got a single [targets] table",
    ),
    (
        '[email]\nhost = "mail.test"\nsecurity = "ssl"\nfrom = "a@test"\nto = ["b@test"]\n',
        "email.security: expected 'starttls', 'tls' or 'none', got 'ssl'",
    ),
    ('[email]\nhost = "mail.test"\nto = ["b@test"]\n', "email.from: required, but not set"),
    (
        '[policy]\nvalidation_levels = ["OV", "XV"]\n',
        "policy.validation_levels, item 2: expected 'DV', 'OV' or 'EV', got 'XV'",
    ),
    (
        "[policy]\nhsts_min_age = 100\nhsts_fail_below = 200\n",
        "policy: hsts_fail_below (200) must not exceed hsts_min_age (100)",
    ),
    (
        '[schedule]\ncron = "0 25 * * *"\n',
        (
            "schedule.cron: '0 25 * * *': the hour field '25' is wrong "
            "(the last value (25) is higher than the maximum value (23))"
        ),
    ),
    (
        '[schedule]\ncron = "0 2 * *"\n',
        (
            "schedule.cron: '0 2 * *' has 4 fields; expected 5: minute hour day-of-month month day-of-week "
            "(or 6 with seconds first)"
        ),
    ),
    (
        '[schedule]\ntimezone = "Asia/Tokio"\n',
        "schedule.timezone: unknown time zone 'Asia/Tokio'; use an IANA name such as 'Asia/Tokyo' or 'UTC'",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CONFIG_ERRORS, ids=[e.split(":")[0] for _, e in CONFIG_ERRORS])
def test_config_error_is_one_line_in_the_users_words(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    run = run_cli("audit", "--config", "config.toml", cwd=tmp_path)
    assert run.code == 2
    assert run.stderr == f"auditor: config.toml: {expected}\n"
    assert run.stdout == ""


def test_every_line_of_several_config_errors_starts_auditor(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[scan]\ntimeout = 0\nconcurrency = "many"\n')
    run = run_cli("audit", "--config", "config.toml", cwd=tmp_path)
    assert run.code == 2
    assert run.stderr.splitlines() == [
        "auditor: config.toml: scan.timeout: expected a number greater than 0 and at most 300, got 0",
        "auditor: config.toml: scan.concurrency: expected a whole number from 1 to 100, got 'many'",
    ]


def test_bad_option_value_is_said_like_the_config() -> None:
    run = run_cli("audit", "--timeout", "-1", "https://a.test/")
    assert run.code == 2
    assert run.stderr == "auditor: --timeout: expected a number greater than 0 and at most 300, got -1.0\n"


# ---------------------------------------------------------------- 7. --help


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from auditor.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_has_a_description_and_every_option_a_help() -> None:
    from auditor.cli import COMMANDS

    commands = _subcommands()
    assert set(commands) == set(COMMANDS)
    for name, parser in commands.items():
        assert parser.description and "\n" not in parser.description.strip(), name
        for action in parser._actions:
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{label} has no help"
            real_default = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
            if real_default and action.help is not argparse.SUPPRESS and action.dest != "help":
                assert "default" in action.help, f"{label} does not say its default {action.default!r}"


@pytest.mark.parametrize(
    ("command", "option"),
    [("audit", "--timeout"), ("audit", "--concurrency"), ("history", "--limit"), ("demo", "--out")],
)
def test_help_shows_the_default(command: str, option: str) -> None:
    run = run_cli(command, "--help")
    assert run.code == 0
    text = " ".join(run.stdout.split())
    after = text.split(f" {option} ", 1)[1]
    assert "(default: " in after.split(" --", 1)[0], after[:200]


def test_top_level_help_lists_the_exit_codes() -> None:
    run = run_cli("--help")
    assert run.code == 0
    epilog = run.stdout.split("exit codes:", 1)[1]
    codes = [line.split()[0] for line in epilog.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert codes == ["0", "1", "2", "3", "4", "5", "130"]
    for command in ("audit", "report", "schedule", "history", "diff", "verify-log", "demo", "schema"):
        assert f"    {command}" in run.stdout


# ---------------------------------------------------------------- 7. `report` with no flag


def test_report_without_a_flag_prints_the_text_report(tmp_path: Path, report: AuditReport) -> None:
    from auditor.reports.json_report import to_json
    from auditor.reports.text import render_text

    saved = tmp_path / "scan.json"
    saved.write_text(to_json(report))
    run = run_cli("report", str(saved), cwd=tmp_path)
    assert run.code == 0, run.stderr
    assert run.stdout == render_text(report)
    assert "COMPLIANT" in run.stdout and "good.test" in run.stdout
    assert list(tmp_path.iterdir()) == [saved]  # nothing written
