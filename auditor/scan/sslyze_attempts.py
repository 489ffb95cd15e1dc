"""sslyze's scan command attempts as ours (auditor.model.Attempt), with the reasons
auditor.scan.attempts gives every exception."""

from __future__ import annotations

from traceback import TracebackException
from typing import Protocol

from sslyze.errors import ConnectionToServerFailed
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.scan_command_attempt import ScanCommandAttemptStatusEnum, ScanCommandErrorReasonEnum

from auditor.model import Attempt, Probe
from auditor.scan.attempts import NOT_SCHEDULED, Reason, reason_of
from auditor.scan.ledger import Unanswered


class SslyzeAttempt(Protocol):
    """What sslyze's ScanCommandAttempt (and tls._Attempt, its shape for our own pool) carries."""

    @property
    def status(self) -> ScanCommandAttemptStatusEnum: ...
    @property
    def error_reason(self) -> ScanCommandErrorReasonEnum | None: ...
    @property
    def error_trace(self) -> TracebackException | None: ...


def from_sslyze(attempt: SslyzeAttempt, ledger_stopped: str | None = None) -> Attempt | None:
    """sslyze's attempt as ours; None when it completed (the result is the evidence)."""
    if attempt.status is ScanCommandAttemptStatusEnum.COMPLETED:
        return None
    if attempt.status is ScanCommandAttemptStatusEnum.NOT_SCHEDULED:
        return NOT_SCHEDULED
    trace = attempt.error_trace
    if attempt.error_reason is ScanCommandErrorReasonEnum.CLIENT_CERTIFICATE_NEEDED:
        return Attempt.failed(Reason.CLIENT_CERTIFICATE_NEEDED, str(trace or ""))
    if trace is None or attempt.error_reason is not ScanCommandErrorReasonEnum.CONNECTIVITY_ISSUE:
        # BUG_IN_SSLYZE, WRONG_USAGE: not the server's doing
        return Attempt.failed(Reason.SCANNER_BUG, f"{trace.exc_type.__name__}: {trace}" if trace else "")
    message, kind = str(trace), trace.exc_type or ConnectionToServerFailed
    reason = reason_of(kind, message, ledger_stopped)  # a connectivity issue is never our bug
    reason = Reason.CONNECTION_FAILED if reason is Reason.SCANNER_BUG else reason
    return Attempt.failed(reason, message if issubclass(kind, Unanswered) else f"{kind.__name__}: {message}")


def probe_of(command: ScanCommand) -> Probe:
    """The probe an sslyze command fills (its cipher suite commands: one per protocol version)."""
    if command.value.endswith("_cipher_suites"):
        return Probe("suites_" + command.value.removesuffix("_cipher_suites"))
    return Probe.GROUPS if command is ScanCommand.ELLIPTIC_CURVES else Probe(command.value)
