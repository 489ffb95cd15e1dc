"""Typed attempts (auditor.model.Attempt) from what a probe raised: the one place where an exception
becomes an AttemptErrorReason, so that no check, grade or report reads prose (sslyze's own attempts:
auditor.scan.sslyze_attempts). Loads without sslyze: early contact's probes use it."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable

from nassl._nassl import OpenSSLError
from nassl.ssl_client import ClientCertificateRequested

from auditor.model import Attempt, AttemptErrorReason, AttemptStatus
from auditor.scan.ledger import Unanswered
from auditor.scan.raw_hello import HandshakeRefused

Reason = AttemptErrorReason

NOT_SCHEDULED = Attempt(status=AttemptStatus.NOT_SCHEDULED)
# auditor.scan.fallback: the fallback hello was closed, reset or met silence, twice.
FALLBACK_NO_ANSWER = Attempt.failed(Reason.NO_ANSWER, "the fallback hello got no answer (twice)")


def stopped(why: str) -> Attempt:
    """The server stopped answering (the ledger's note `why`): nothing after that is evidence."""
    return Attempt.failed(Reason.SERVER_STOPPED_ANSWERING, why)


def _unanswered(why: str, ledger_stopped: str | None) -> Reason:
    """The ledger's stop is a server that stopped answering; any other Unanswered is one connection's
    deadline (the enumerator's "then no answer within 3 s", a job's "no complete answer within")."""
    return Reason.SERVER_STOPPED_ANSWERING if why == ledger_stopped else Reason.TIMEOUT


def _sslyze_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """sslyze's timeout exceptions and its connection failure, once sslyze is loaded: an exception of
    its kinds exists only then (the probes auditor.scan.early_contact runs before it loads raise none)."""
    errors = sys.modules.get("sslyze.errors")
    if errors is None:
        return (), ()
    return (errors.ConnectionToServerTimedOut, errors.TlsHandshakeTimedOut), (
        errors.ConnectionToServerFailed,
    )


def reason_of(exc_type: type[BaseException], message: str, ledger_stopped: str | None) -> Reason:
    """The reason an exception of `exc_type` (saying `message`) stands for."""
    timeouts, failures = _sslyze_errors()
    if issubclass(exc_type, Unanswered):
        return _unanswered(message, ledger_stopped)
    if issubclass(exc_type, (*timeouts, socket.timeout)):
        return Reason.TIMEOUT
    if issubclass(exc_type, ConnectionRefusedError):
        return Reason.CONNECTION_REFUSED
    if issubclass(exc_type, ClientCertificateRequested):
        return Reason.CLIENT_CERTIFICATE_NEEDED
    if issubclass(exc_type, OpenSSLError):  # nassl's handshake failed: an alert, a cut
        return Reason.CONNECTION_FAILED
    if issubclass(exc_type, HandshakeRefused):  # our raw hellos: an alert or a close is a rejection
        refused = message.startswith(("TLS alert", "the server closed"))
        return Reason.CONNECTION_FAILED if refused else Reason.MALFORMED_ANSWER
    if issubclass(exc_type, (*failures, OSError)):  # reset, unreachable network
        return Reason.CONNECTION_FAILED
    return Reason.SCANNER_BUG


def from_exception(exc: BaseException, ledger_stopped: str | None = None) -> Attempt:
    """The failed attempt a probe's exception stands for; `ledger_stopped` is ConnectionCounter.stopped."""
    message = str(exc)
    detail = message if isinstance(exc, Unanswered) else f"{type(exc).__name__}: {message}"
    return Attempt.failed(reason_of(type(exc), message, ledger_stopped), detail)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Is `kind` somewhere in the chain of `exc` (httpx wraps httpcore, which wraps the OSError)?"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def from_http(exc: BaseException) -> Attempt:
    """The failed attempt of one HTTP request (httpx): a closed port (refused) and a silent one (timed
    out) are told apart from a reset and from an answer that is not HTTP."""
    import httpx  # lazy: whoever calls this has it loaded; the TLS scan alone does not need it

    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if not isinstance(exc, httpx.HTTPError):  # an OSError httpx did not wrap, a parser bug, MemoryError
        return from_exception(exc)
    if isinstance(exc, httpx.TimeoutException):
        return Attempt.failed(Reason.TIMEOUT, detail)
    if _caused_by(exc, ConnectionRefusedError) or "refused" in detail.lower():
        return Attempt.failed(Reason.CONNECTION_REFUSED, detail)
    if isinstance(exc, httpx.ProtocolError | httpx.DecodingError | httpx.TooManyRedirects):
        return Attempt.failed(Reason.MALFORMED_ANSWER, detail)
    return Attempt.failed(Reason.CONNECTION_FAILED, detail)  # reset, TLS failure, network error


def summary(attempts: Iterable[tuple[str, Attempt | None]]) -> Attempt | None:
    """One attempt for a probe made of several requests (each client, each responder): None when every
    one completed; else the first failure's reason, naming each that failed ("Chrome: timeout; ...")."""
    failed = [(name, a) for name, a in attempts if a is not None and a.status is not AttemptStatus.COMPLETED]
    if not failed:
        return None
    first = failed[0][1]
    detail = "; ".join(f"{name}: {a.why()}" for name, a in failed)
    if first.reason is None:
        return Attempt(status=first.status, detail=detail[:300])
    return Attempt.failed(first.reason, detail)
