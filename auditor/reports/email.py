"""Mailing the report: multipart/alternative (text + HTML) with the JSON report attached,
over SMTP with STARTTLS, implicit TLS or (for a local relay) none.

The password is read from the environment variable the config names, only when sending, and is
scrubbed from every error message; a transient failure is retried with exponential backoff, a
permanent one (5xx, no STARTTLS, an oversized reply) is reported at once. Each attempt ends by its
wall-clock deadline (`timeout`) however slowly the server answers (reports.smtp_transport).
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from auditor.config import Email
from auditor.errors import ConfigError, MailError
from auditor.grading_rules import worst_letter
from auditor.model import AuditReport, TargetResult
from auditor.reports import sanitize, view
from auditor.reports.smtp_transport import BoundedSMTP, Deadline, ReplyTooLong


def password_for(settings: Email) -> str | None:
    """The SMTP password from the environment; ConfigError (exit 2, before scanning) if it is missing."""
    if settings.username is None:
        return None
    if not settings.password_env:
        raise ConfigError("email.password_env: a username is set but no password_env names its password")
    value = os.environ.get(settings.password_env)
    if not value:
        raise ConfigError(f"email.password_env: the environment variable {settings.password_env} is not set")
    return value


def subject_for(report: AuditReport, template: str) -> str:
    """One line that needs no opening: the sites that break the policy (else those not audited)
    and the worst letter among the sites it names."""
    targets = report.targets
    failing = [t for t in targets if view.verdict(t) == view.FAILING]
    missing = [t for t in targets if view.verdict(t) == view.NOT_AUDITED]
    named = failing or missing or targets
    target = _names(named) if failing or missing or len(targets) == 1 else f"{len(targets)} sites"
    violations = sum(len(t.failed_clauses()) for t in targets)
    if failing:
        verdict = f"{violations} violation{'s' if violations != 1 else ''}"
        if missing:
            verdict += f", {len(missing)} not audited ({_names(missing)})"
    else:
        verdict = "not audited" if missing else "compliant"
    grade = worst_letter([t.grade.letter for t in named if t.grade]) or "not graded"
    try:
        text = template.format(target=target, grade=grade, verdict=verdict, violations=violations)
    except (KeyError, IndexError, ValueError):
        text = f"[auditor] {target}: {grade}, {verdict}"
    return sanitize.header(text)  # one line, no control, whatever the config or a server holds


def _names(targets: list[TargetResult], most: int = 3) -> str:
    """ "a.example, b.example and 2 more": host names (host:port when two share a host)."""
    hosts = [t.target.host or t.target.url for t in targets]
    names = [f"{h}:{t.target.port}" if hosts.count(h) > 1 else h for h, t in zip(hosts, targets, strict=True)]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def build_message(
    report: AuditReport, settings: Email, *, html: str, text: str, json_text: str
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject_for(report, settings.subject)
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="auditor.local")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    stamp = report.generated_at.strftime("%Y%m%dT%H%M%SZ")
    message.add_attachment(
        json_text.encode("utf-8"), maintype="application", subtype="json", filename=f"audit-{stamp}.json"
    )
    return message


def _send_once(message: EmailMessage, settings: Email, password: str | None) -> None:
    """One attempt, all of it (connect, TLS, login, the message) within `settings.timeout` seconds."""
    context = ssl.create_default_context(cafile=str(settings.ca_bundle) if settings.ca_bundle else None)
    client = BoundedSMTP(
        Deadline(settings.timeout), implicit_tls=context if settings.security == "tls" else None
    )
    try:
        client.connect(settings.host, settings.port)
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if settings.username is not None:
            client.login(settings.username, password or "")
        client.send_message(message)
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()  # the message is accepted: a lost QUIT must not make a retry send it twice
    finally:
        client.close()


def _reason(exc: BaseException, password: str | None, timeout: float) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        text = f"authentication refused ({exc.smtp_code})"
    elif isinstance(exc, (socket.timeout, TimeoutError)):
        text = "timed out"
    elif isinstance(exc, ReplyTooLong):
        text = f"the server's reply is too long ({exc})"
    elif isinstance(exc, ConnectionRefusedError):
        text = "connection refused"
    elif isinstance(exc, ssl.SSLError):
        text = f"TLS error: {exc.reason or exc}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        text = (
            "the server does not offer SMTP AUTH (is `username` meant for this server?)"
            if "AUTH" in str(exc)
            else 'the server does not offer STARTTLS (security = "tls" or "none" may be meant)'
        )
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        text = "recipients refused: " + ", ".join(
            f"{rcpt} ({code} {_said(said)})" for rcpt, (code, said) in exc.recipients.items()
        )
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"the server answered {exc.smtp_code} {_said(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPException):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    else:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "timed out" in text.lower():
        text = f"timed out after {timeout:g} s"  # the attempt's deadline: however the server dribbled
    if password:
        text = text.replace(password, "***")
    return text


def _said(reply: bytes | str) -> str:
    """An SMTP reply's text on one line, shown (not obeyed) by the terminal or log it reaches."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(sanitize.one_line(text).split())


def is_permanent(exc: BaseException) -> bool:
    """A failure that retrying cannot mend: a 5xx reply (authentication refused, sender or every
    recipient rejected), no STARTTLS or AUTH offered, a certificate that does not verify, a reply
    beyond the caps. Refused connections, timeouts, disconnections and 4xx replies (421 "try
    later") are transient."""
    if isinstance(exc, (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError, ReplyTooLong)):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(500 <= code < 600 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


def send_report(
    report: AuditReport,
    settings: Email,
    *,
    html: str,
    text: str,
    json_text: str,
    sleep: Callable[[float], object] = time.sleep,
    stop: threading.Event | None = None,
) -> None:
    """Send, retrying transient failures `settings.retries` times with doubling delays (a permanent
    one, see is_permanent, is reported at once); MailError names server and reason. Once `stop`
    is set (the scheduler is asked to stop), the attempt in progress keeps its deadline and no
    other is made. At most (retries + 1) * timeout seconds plus the backoff delays."""
    password = password_for(settings)
    message = build_message(report, settings, html=html, text=text, json_text=json_text)
    delay = settings.backoff
    attempts = settings.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            _send_once(message, settings, password)
            return
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            failure = (
                f"mail to {settings.host}:{settings.port} failed after {attempt} attempt"
                f"{'s' if attempt != 1 else ''}: {_reason(exc, password, settings.timeout)}"
            )
            if attempt == attempts or is_permanent(exc):
                raise MailError(failure) from None
        if _stopped_while_waiting(delay, sleep, stop):
            raise MailError(f"{failure} (not retried: stopping)") from None
        delay *= 2


def _stopped_while_waiting(
    delay: float, sleep: Callable[[float], object], stop: threading.Event | None
) -> bool:
    """Wait `delay` seconds before a retry; True, at once, when a stop is asked for (or was already)."""
    if stop is None:
        sleep(delay)
        return False
    return stop.wait(delay)
