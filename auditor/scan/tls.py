"""The sslyze adapter: run the scan commands the audit needs, return TlsEvidence.

sslyze is kept for what it does well (certificate chain against its bundled trust stores,
vulnerability probes, exhaustive suite enumeration for --thorough); suites, order and groups come
from the fast enumerator (auditor.scan.enumerate), which uses sslyze's connection helper.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from traceback import TracebackException
from types import SimpleNamespace
from typing import Any

from cryptography import x509
from nassl.ssl_client import ClientCertificateRequested
from sslyze.errors import (
    ConnectionToServerFailed,
    ConnectionToServerTimedOut,
    ServerHostnameCouldNotBeResolved,
    ServerRejectedConnection,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.certificate_info.implementation import CertificateInfoExtraArgument
from sslyze.plugins.plugin_base import ScanJob, ScanJobResult
from sslyze.plugins.scan_commands import ScanCommand, ScanCommandsRepository
from sslyze.scanner.models import ScanCommandsExtraArguments, ServerConnectivityStatusEnum, ServerScanRequest
from sslyze.scanner.scan_command_attempt import ScanCommandAttemptStatusEnum, ScanCommandErrorReasonEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_connectivity import (
    ClientAuthRequirementEnum,
    ServerConnectivityInfo,
    ServerTlsProbingResult,
    TlsVersionEnum,
    _detect_support_for_tls_1_3,
    _TlsVersionNotSupported,
    check_connectivity_to_server,
)
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from auditor.clients import CLIENTS
from auditor.errors import ScanError
from auditor.model import (
    Attempt,
    CertificateDeployment,
    Probe,
    ProtocolSupport,
    TlsEvidence,
    TrustStoreResult,
    Vulnerabilities,
)
from auditor.scan import dh_size, early_contact, protocol_facts
from auditor.scan.attempts import (
    FALLBACK_NO_ANSWER,
    NOT_SCHEDULED,
    from_exception,
    stopped,
)
from auditor.scan.certs import describe_certificate
from auditor.scan.connections import counting
from auditor.scan.dh_only import probe_dhe_only
from auditor.scan.enumerate import (
    VERSIONS,
    Enumerator,
    group_name,
    group_protocol,
    recheck_silenced,
    spawn,
)
from auditor.scan.fallback import fallback_version, probe_fallback_scsv, probe_with
from auditor.scan.ledger import ConnectionCounter, Unanswered
from auditor.scan.post_quantum import annotate as annotate_post_quantum
from auditor.scan.post_quantum import probe_if_tls13
from auditor.scan.raw_hello import server_name_for
from auditor.scan.replay import distinct_hellos, hello_of
from auditor.scan.revocation import RevocationLookup, served_from_jobs, served_from_result
from auditor.scan.revocation import attempt_of as ocsp_attempt
from auditor.scan.sct import transparency
from auditor.scan.simulate import attempt_of as simulations_attempt
from auditor.scan.simulate import (
    for_each_client,
    interpret,
    name_protocols,
    simulate_all,
    simulate_client,
)
from auditor.scan.sslyze_attempts import from_sslyze, probe_of
from auditor.scan.suite_codes import SUITE_CODES
from auditor.suites import describe

SUITE_COMMANDS: dict[str, ScanCommand] = {
    "SSL 2.0": ScanCommand.SSL_2_0_CIPHER_SUITES,
    "SSL 3.0": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLS 1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
    "TLS 1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
    "TLS 1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
    "TLS 1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}
# sslyze result attribute for each command
_ATTR = {
    ScanCommand.SSL_2_0_CIPHER_SUITES: "ssl_2_0_cipher_suites",
    ScanCommand.SSL_3_0_CIPHER_SUITES: "ssl_3_0_cipher_suites",
    ScanCommand.TLS_1_0_CIPHER_SUITES: "tls_1_0_cipher_suites",
    ScanCommand.TLS_1_1_CIPHER_SUITES: "tls_1_1_cipher_suites",
    ScanCommand.TLS_1_2_CIPHER_SUITES: "tls_1_2_cipher_suites",
    ScanCommand.TLS_1_3_CIPHER_SUITES: "tls_1_3_cipher_suites",
    ScanCommand.CERTIFICATE_INFO: "certificate_info",
    ScanCommand.ELLIPTIC_CURVES: "elliptic_curves",
    ScanCommand.HEARTBLEED: "heartbleed",
    ScanCommand.OPENSSL_CCS_INJECTION: "openssl_ccs_injection",
    ScanCommand.ROBOT: "robot",
    ScanCommand.SESSION_RENEGOTIATION: "session_renegotiation",
    ScanCommand.TLS_COMPRESSION: "tls_compression",
    ScanCommand.TLS_FALLBACK_SCSV: "tls_fallback_scsv",
}
VULNERABILITY_COMMANDS = [
    ScanCommand.HEARTBLEED,
    ScanCommand.OPENSSL_CCS_INJECTION,
    ScanCommand.ROBOT,
    ScanCommand.SESSION_RENEGOTIATION,
    ScanCommand.TLS_COMPRESSION,
]
# TLS_FALLBACK_SCSV is probed by auditor.scan.fallback, not sslyze (whose probe reads a refused or
# timed-out fallback to a version the server never accepted as "supported").
# What sslyze still does in a default audit; suites and groups come from the fast enumerator.
# The longest first, so that the scan does not end on one of them alone: ROBOT (jobs of several
# connections each), the certificates (full handshakes), renegotiation (a full handshake, then
# renegotiations) and compression (a full handshake); Heartbleed and CCS take one short
# connection each.
SSLYZE_COMMANDS = [
    ScanCommand.ROBOT,
    ScanCommand.CERTIFICATE_INFO,
    ScanCommand.SESSION_RENEGOTIATION,
    ScanCommand.TLS_COMPRESSION,
    ScanCommand.HEARTBLEED,
    ScanCommand.OPENSSL_CCS_INJECTION,
]
# What --thorough runs through sslyze (a command left out of an exact set is recorded as not scheduled).
THOROUGH_COMMANDS = {
    ScanCommand.CERTIFICATE_INFO,
    ScanCommand.ELLIPTIC_CURVES,
    *SUITE_COMMANDS.values(),
    *VULNERABILITY_COMMANDS,
}


def hostname_matches(cert: x509.Certificate, host: str) -> bool:
    """RFC 6125 matching on subjectAltName only (as browsers do: no CN fallback)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    host = host.lower().rstrip(".")
    for name in san.get_values_for_type(x509.DNSName):
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _connect_error(message: str) -> str:
    """sslyze's connectivity errors, reworded for a user."""
    lowered = message.lower()
    if "refused" in lowered or "rejected the connection" in lowered:
        return "connection refused"
    if "timed out" in lowered or "timeout" in lowered:
        return "timed out"
    if "probing failed" in lowered or "handshake" in lowered or "tls" in lowered:
        return f"TLS handshake failed ({message})"
    return message


def _connectivity_error(exc: Exception, ledger: ConnectionCounter) -> str:
    """Why no TLS connection could be made, in one line: silence, a slow trickle, another protocol,
    a refusal, from what the ledger saw of the server's bytes."""
    if ledger.stopped:
        return ledger.stopped
    if (not_tls := ledger.describe_failure()) is not None:
        return not_tls
    message = exc.error_message if isinstance(exc, ConnectionToServerFailed) else str(exc)
    reason = _connect_error(message)
    if reason.startswith("TLS handshake failed") and ledger.answered and not ledger.first_bytes:
        return "TLS handshake failed (the server closed or reset the connection at every ClientHello)"
    return reason


def _network(
    host: str, port: int, ip: str | None, timeout: float
) -> tuple[ServerNetworkLocation, ServerNetworkConfiguration]:
    try:
        location = ServerNetworkLocation(hostname=host, port=port, ip_address=ip)
    except ServerHostnameCouldNotBeResolved:
        raise ScanError(f"host {host!r} does not resolve") from None
    network = ServerNetworkConfiguration(
        tls_server_name_indication=host, network_timeout=max(1, round(timeout)), network_max_retries=2
    )
    return location, network


def _run_sslyze(
    location: ServerNetworkLocation,
    network: ServerNetworkConfiguration,
    commands: set[ScanCommand],
    ca_bundle: Path | None,
    connections_per_server: int,
) -> Any:  # sslyze's AllScanCommandsAttempts
    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_bundle) if ca_bundle else None
    )
    request = ServerScanRequest(
        server_location=location,
        network_configuration=network,
        scan_commands=commands,
        scan_commands_extra_arguments=extra,
    )
    scanner = Scanner(
        per_server_concurrent_connections_limit=connections_per_server, concurrent_server_scans_limit=1
    )
    scanner.queue_scans([request])
    result = next(iter(scanner.get_results()))
    if result.connectivity_status is ServerConnectivityStatusEnum.ERROR:
        trace = result.connectivity_error_trace
        exc_message = str(trace) if trace else "unknown error"
        if trace is not None and issubclass(trace.exc_type, ConnectionToServerFailed):
            # str(trace) on a dataclass exception gives 'host:port -> "msg".'
            exc_message = exc_message.split("->", 1)[-1].strip().strip('."')
        raise ScanError(_connect_error(exc_message))
    return result.scan_result


def scan_tls(
    host: str,
    port: int,
    *,
    ip: str | None = None,
    ca_bundle: Path | None = None,
    timeout: float = 10.0,
    connections_per_server: int = 5,
    commands: set[ScanCommand] | None = None,
    thorough: bool = False,
    on_phase: Callable[[str], None] | None = None,
    ocsp: bool = True,
    ledger: ConnectionCounter | None = None,
    early: early_contact.Contact | None = None,
) -> TlsEvidence:
    """Scan one server. Raises ScanError when it cannot be reached over TLS.

    By default suites and groups come from the fast enumerator (auditor.scan.enumerate) while
    sslyze's plugins check the certificate and the vulnerabilities at the same time, all under one
    limit of `connections_per_server` concurrent connections, every connection counted per phase
    (TlsEvidence.connections_by_phase). `thorough` uses sslyze's one-connection-per-suite scan
    instead (connections not counted). `commands` runs exactly those sslyze commands, no enumerator.
    Each leaf's stapled OCSP response is judged; `ocsp` also asks the responder the certificate
    names when no stapled answer is usable (auditor.scan.revocation, bounded by `timeout`).
    `ledger` is the target's connection ledger (auditor.scan.ledger: per-connection deadline,
    pacing, abandon at the target's deadline); one with `timeout` is made when none is given.
    `early` is what auditor.scan.early_contact did with this endpoint (its ledger is then `ledger`).
    """
    location, network = _network(host, port, ip, timeout)
    if on_phase:
        on_phase("TLS handshake")
    if thorough or commands is not None:
        commands = commands if commands is not None else THOROUGH_COMMANDS
        attempts = _run_sslyze(location, network, commands, ca_bundle, connections_per_server)
        evidence = _to_evidence(attempts, commands, host)
        for command in THOROUGH_COMMANDS - commands:  # an exact command set
            evidence.attempts[probe_of(command)] = NOT_SCHEDULED
        where = dh_size.target(host, port, location.ip_address, timeout)
        dh_size.complete_protocols(evidence.protocols, where)
        _record(evidence.attempts, Probe.DH_SIZES, dh_size.attempt_of(evidence.protocols))
        if any(c in commands for c in SUITE_COMMANDS.values()):
            evidence.vulnerabilities.fallback_scsv = probe_fallback_scsv(where, evidence.protocols)
            if evidence.vulnerabilities.fallback_scsv is None and fallback_version(evidence.protocols):
                evidence.attempts[Probe.TLS_FALLBACK_SCSV] = FALLBACK_NO_ANSWER
        if ScanCommand.CERTIFICATE_INFO in commands:
            lookup = RevocationLookup(host=host, timeout=timeout, query_responders=ocsp, ca_bundle=ca_bundle)
            lookup.start(served_from_result(attempts.certificate_info.result))
            lookup.apply(evidence.certificates)
            _record(evidence.attempts, Probe.OCSP, ocsp_attempt(evidence.certificates))
        if any(c in commands for c in SUITE_COMMANDS.values()):
            if on_phase:
                on_phase("client simulation")
            evidence.simulations = simulate_all(
                host, port, ip, timeout, evidence.protocols, connections_per_server
            )
            tls13 = evidence.protocol("TLS 1.3")
            evidence.post_quantum, hybrid_choices, quantum_attempt = probe_if_tls13(
                where, None, tls13.supported if tls13 else None
            )
            annotate_post_quantum(evidence.simulations, evidence.post_quantum, hybrid_choices)
            _record(evidence.attempts, Probe.SIMULATIONS, simulations_attempt(evidence.simulations))
            _record(evidence.attempts, Probe.POST_QUANTUM, quantum_attempt)
        else:  # an exact command set without suites: nothing to simulate against
            evidence.attempts[Probe.SIMULATIONS] = evidence.attempts[Probe.POST_QUANTUM] = NOT_SCHEDULED
        if on_phase:
            on_phase("TLS scan done")
        return evidence

    ledger = ledger if ledger is not None else ConnectionCounter(timeout=timeout)
    return _fast_scan(
        host, location, network, ca_bundle, timeout, connections_per_server, on_phase, ocsp, ledger, early
    )


@dataclass
class _Attempt:
    """The shape of sslyze's ScanCommandAttempt, for commands run through our own pool."""

    status: ScanCommandAttemptStatusEnum
    result: Any = None
    error_reason: ScanCommandErrorReasonEnum | None = None
    error_trace: TracebackException | None = None


def _sslyze_jobs(
    pool: ThreadPoolExecutor,
    server: ServerConnectivityInfo,
    commands: list[ScanCommand],
    ca_bundle: Path | None,
    counter: ConnectionCounter,
    early: early_contact.Contact | None = None,
) -> dict[ScanCommand, Any]:
    """Queue the jobs of sslyze's plugins in `pool`; each job's connections are counted under the
    command's name. Returns, per command, its job futures (or an _Attempt when queuing failed)."""
    queued: dict[ScanCommand, Any] = {}

    def counted(
        command: ScanCommand, job: ScanJob, on_open: Callable[[int], None] | None = None
    ) -> ScanJobResult:
        # The exception is kept, not raised through the future: sslyze's exceptions are frozen
        # dataclasses, which a re-raise in another thread cannot attach a traceback to.
        # A job one of whose connections hit its deadline (or was cut) proves nothing: sslyze reads
        # a timeout as "not vulnerable" (Heartbleed, CCS) or "refused" (renegotiation).
        error: Exception | None = None
        with counting(counter, command.value, on_open=on_open) as block:
            try:
                value = job.function_to_call(*job.function_arguments)
            except Exception as exc:  # noqa: BLE001  (kept as the job's result, as sslyze's Scanner does)
                value, error = None, exc
        if (why := block.untrusted) is not None:
            return ScanJobResult(_return_value=None, _exception=Unanswered(why))
        return ScanJobResult(_return_value=value, _exception=error)

    for command in commands:
        implementation = ScanCommandsRepository.get_implementation_cls(command)
        extra = (
            CertificateInfoExtraArgument(custom_ca_file=ca_bundle)
            if command is ScanCommand.CERTIFICATE_INFO and ca_bundle
            else None
        )
        try:
            jobs = implementation.scan_jobs_for_scan_command(server, extra)
        except Exception as exc:  # noqa: BLE001  (recorded as the command's failed attempt)
            queued[command] = _Attempt(
                ScanCommandAttemptStatusEnum.ERROR,
                None,
                ScanCommandErrorReasonEnum.BUG_IN_SSLYZE,
                TracebackException.from_exception(exc),
            )
            continue
        if command is ScanCommand.ROBOT and len(jobs) > 1:
            queued[command] = _robot_jobs(pool, jobs, counted)
        elif command is ScanCommand.CERTIFICATE_INFO:
            queued[command] = [
                (_fetched_early(job, early) or pool.submit(counted, command, job))
                if uses_sni(job)
                else _not_fetched(server)
                for job in jobs
            ]
        else:
            queued[command] = [pool.submit(counted, command, job) for job in jobs]
    return queued


def uses_sni(job: ScanJob) -> bool:
    """sslyze's certificate jobs are (server, CA file, TLS version, cipher list, with SNI): the last
    fetches the chain a client without SNI gets, which no clause judges and the report never shows
    (CertificateInfoScanResult.certificate_deployments holds the SNI chains only)."""
    return job.function_arguments[-1] is not False


def _fetched_early(job: ScanJob, early: early_contact.Contact | None) -> Future[ScanJobResult] | None:
    """The result of sslyze's certificate job for TLS 1.3 with SNI and no cipher list of its own, from
    the early contact's handshake, which was that very handshake (auditor.scan.early_contact)."""
    _server, custom_ca_file, tls_version, cipher_string, sni = job.function_arguments
    if early is None or not early.usable or not early.chain:
        return None
    if tls_version is not TlsVersionEnum.TLS_1_3 or cipher_string is not None or sni is not True:
        return None
    future: Future[ScanJobResult] = Future()
    chain = (list(early.chain), early.ocsp_response, custom_ca_file, True)
    future.set_result(ScanJobResult(_return_value=chain, _exception=None))
    return future


def _not_fetched(server: ServerConnectivityInfo) -> Future[ScanJobResult]:
    """The result of a certificate job not run (one connection saved): a failed handshake, which
    sslyze's certificate plugin counts as "this kind of client got no chain" and otherwise ignores."""
    future: Future[ScanJobResult] = Future()
    skipped = ServerRejectedTlsHandshake(
        server_location=server.server_location,
        network_configuration=server.network_configuration,
        error_message="not fetched: the chain served without SNI is not judged",
    )
    future.set_result(ScanJobResult(_return_value=None, _exception=skipped))
    return future


def _pass_on(into: Future[ScanJobResult], done: Future[ScanJobResult]) -> None:
    into.set_result(done.result())


def _robot_jobs(
    pool: ThreadPoolExecutor,
    jobs: list[ScanJob],
    counted: Callable[[ScanCommand, ScanJob, Callable[[int], None] | None], ScanJobResult],
) -> list[Future[ScanJobResult]]:
    """ROBOT's identical jobs, the first one alone until it proves RSA key exchange (by opening a
    third connection, which only a payload can be) or succeeds; then the others.

    sslyze's verdict reads the jobs in order and the first job decides alone when it fails (its
    "RSA not supported" or its error): the others are then not run, and a server without RSA key
    exchange costs 2 connections instead of 6. Their futures carry the first job's result."""
    rest: list[Future[ScanJobResult]] = [Future() for _ in jobs[1:]]
    lock = threading.Lock()
    released = False

    def release() -> None:
        nonlocal released
        with lock:
            if released:
                return
            released = True
        for job, future in zip(jobs[1:], rest, strict=True):
            done = pool.submit(counted, ScanCommand.ROBOT, job, None)
            done.add_done_callback(partial(_pass_on, future))

    def first() -> ScanJobResult:
        def on_open(opened: int) -> None:
            if opened >= 3:
                release()

        result = counted(ScanCommand.ROBOT, jobs[0], on_open)
        with lock:
            decided = not released and result._exception is not None  # noqa: SLF001  (get_result() re-raises)
        if not decided:
            release()
            return result
        for future in rest:
            future.set_result(result)
        return result

    return [pool.submit(first), *rest]


def _sslyze_results(server: ServerConnectivityInfo, queued: dict[ScanCommand, Any]) -> SimpleNamespace:
    """Wait for the queued jobs and turn them into attempts, as sslyze's Scanner does."""
    attempts = SimpleNamespace()
    for command, futures in queued.items():
        if isinstance(futures, _Attempt):
            setattr(attempts, _ATTR[command], futures)
            continue
        results = [future.result() for future in futures]
        implementation = ScanCommandsRepository.get_implementation_cls(command)
        try:
            attempt = _Attempt(
                ScanCommandAttemptStatusEnum.COMPLETED,
                implementation.result_for_completed_scan_jobs(server, results),
            )
        except ClientCertificateRequested as exc:
            attempt = _Attempt(
                ScanCommandAttemptStatusEnum.ERROR,
                None,
                ScanCommandErrorReasonEnum.CLIENT_CERTIFICATE_NEEDED,
                TracebackException.from_exception(exc),
            )
        except (
            ConnectionToServerTimedOut,
            TlsHandshakeTimedOut,
            ServerRejectedTlsHandshake,
            Unanswered,
        ) as exc:
            attempt = _Attempt(
                ScanCommandAttemptStatusEnum.ERROR,
                None,
                ScanCommandErrorReasonEnum.CONNECTIVITY_ISSUE,
                TracebackException.from_exception(exc),
            )
        except Exception as exc:  # noqa: BLE001  (sslyze's own name for it: a bug in sslyze)
            attempt = _Attempt(
                ScanCommandAttemptStatusEnum.ERROR,
                None,
                ScanCommandErrorReasonEnum.BUG_IN_SSLYZE,
                TracebackException.from_exception(exc),
            )
        setattr(attempts, _ATTR[command], attempt)
    return attempts


def _probe_connectivity(
    location: ServerNetworkLocation, network: ServerNetworkConfiguration
) -> ServerTlsProbingResult:
    """sslyze's connectivity check in one connection for a server that speaks TLS 1.3 without asking
    for a client certificate (its separate ECDH probe serves only the elliptic-curves plugin, which
    the fast scan does not run); sslyze's full check otherwise."""
    try:
        found = _detect_support_for_tls_1_3(server_location=location, network_config=network)
    except (ServerRejectedConnection, ConnectionToServerTimedOut, Unanswered):
        raise  # no TCP connection, or a server that does not speak: nothing more to try
    except (ConnectionToServerFailed, _TlsVersionNotSupported):  # TLS 1.3 refused: the full check decides
        found = None
    if found is None or found.server_requested_client_cert:
        return check_connectivity_to_server(location, network)
    return ServerTlsProbingResult(
        highest_tls_version_supported=TlsVersionEnum.TLS_1_3,
        cipher_suite_supported=found.cipher_suite_supported,
        client_auth_requirement=ClientAuthRequirementEnum.DISABLED,
        supports_ecdh_key_exchange=True,
    )


def _from_early(early: early_contact.Contact | None) -> ServerTlsProbingResult | None:
    """The connectivity check made while the command was still importing (auditor.scan.early_contact),
    when it completed a TLS 1.3 handshake without a client-certificate request; any other outcome
    is already in the ledger as the attempt it was, and sslyze's check runs."""
    if early is None or not early.usable:
        return None
    return ServerTlsProbingResult(
        highest_tls_version_supported=TlsVersionEnum.TLS_1_3,
        cipher_suite_supported=str(early.cipher),
        client_auth_requirement=ClientAuthRequirementEnum.DISABLED,
        supports_ecdh_key_exchange=True,
    )


def _checked_connectivity(
    location: ServerNetworkLocation, network: ServerNetworkConfiguration, counter: ConnectionCounter
) -> ServerTlsProbingResult:
    with counting(counter, "connectivity"):
        return _probe_connectivity(location, network)


def _fast_scan(
    host: str,
    location: ServerNetworkLocation,
    network: ServerNetworkConfiguration,
    ca_bundle: Path | None,
    timeout: float,
    connections_per_server: int,
    on_phase: Callable[[str], None] | None,
    ocsp: bool,
    ledger: ConnectionCounter,
    early: early_contact.Contact | None = None,
) -> TlsEvidence:
    """The default scan: one pool of workers runs every phase of the target concurrently (suite
    enumeration per protocol, groups, sslyze's certificate and vulnerability jobs, client
    simulations). Every connection goes through `ledger` (deadline, pacing, abandon, a server that
    stops answering), which holds them to `connections_per_server` at once, so the server never
    sees more than that from us, however many workers wait."""
    counter = ledger
    counter.probe = (location.ip_address or host, location.port, server_name_for(host))
    counter.set_limit(connections_per_server)  # the enumerator's order probe runs in a thread of its own
    try:
        probing = _from_early(early) or _checked_connectivity(location, network, counter)
    except ServerTlsConfigurationNotSupported as exc:
        # maybe only DHE with a group the client refuses (Logjam): a raw hello tells; else as sslyze says
        dhe_only = probe_dhe_only(dh_size.target(host, location.port, location.ip_address, timeout), counter)
        if dhe_only is None:
            raise ScanError(_connectivity_error(exc, counter)) from None
        probing = dhe_only
    except (ConnectionToServerFailed, Unanswered) as exc:
        raise ScanError(_connectivity_error(exc, counter)) from None
    server = ServerConnectivityInfo(
        server_location=location, network_configuration=network, tls_probing_result=probing
    )
    enumerator = Enumerator(server, counter)
    where = dh_size.target(host, location.port, location.ip_address, timeout)
    early_fallback: list[Future[bool | None]] = []
    if probing.highest_tls_version_supported is TlsVersionEnum.TLS_1_3:

        def fall_back_early(label: str, suite: Any) -> None:
            # TLS 1.3 and a TLS 1.2 suite accepted: the fallback lands on TLS 1.2 whatever the older
            # protocols say, so it need not wait for the end of the enumeration (auditor.scan.fallback)
            if label == "TLS 1.2" and suite.name in SUITE_CODES and not early_fallback:
                early_fallback.append(spawn(probe_with, where, "TLS 1.2", [SUITE_CODES[suite.name]], counter))

        enumerator.on_first_pick = fall_back_early
    failed: dict[Probe, Attempt] = {}
    if on_phase:
        on_phase("cipher suites")
    # Twice as many workers as connections: the ledger holds the connections to the limit and serves
    # the waiting ones by rank (auditor.scan.ledger.RANKS), so a long job queued behind the chains
    # still starts early instead of ending the scan alone.
    with ThreadPoolExecutor(
        max_workers=2 * max(1, connections_per_server), thread_name_prefix="tls-scan"
    ) as pool:
        # FIFO pool: queued first, served first. The longest chains go first: the TLS 1.2 and TLS 1.3
        # suites (one offer after another), then the groups over TLS 1.3, which need no suite result
        # and start at once when the server speaks it; the other protocols (a refusal each, mostly),
        # sslyze's jobs and the simulations (their protocol is named afterwards) fill idle workers.
        # The ledger also serves these chains' connections first (auditor.scan.ledger.RANKS).
        submitted = {label: pool.submit(enumerator.protocol, label) for label in _LONGEST_FIRST}
        early_groups = (
            pool.submit(enumerator.groups_over, "TLS 1.3")
            if probing.highest_tls_version_supported is TlsVersionEnum.TLS_1_3
            else None
        )
        submitted |= {
            label: pool.submit(enumerator.protocol, label) for label in VERSIONS if label not in submitted
        }
        suite_futures = {label: submitted[label] for label in VERSIONS}
        # the post-quantum and facts probes early contact began (the same calls) are not made again
        quantum = (early.quantum if early is not None else None) or pool.submit(
            probe_if_tls13,
            where,
            counter,
            probing.highest_tls_version_supported is TlsVersionEnum.TLS_1_3,
        )
        facts = (early.facts if early is not None else None) or spawn(
            protocol_facts.measure,  # ALPN, resumption, 0-RTT, TLS-extension SCTs: three connections
            where,
            _VERSION_NAMES.get(probing.highest_tls_version_supported),
            counter,
        )
        queued = _sslyze_jobs(pool, server, SSLYZE_COMMANDS, ca_bundle, counter, early)
        # nor the simulations
        replayed = dict(early.simulations) if early is not None else {}
        simulations = {
            hello_of(profile): pool.submit(
                simulate_client, profile, host, location.port, location.ip_address, timeout, None, counter
            )
            for profile in distinct_hellos(CLIENTS)
            if hello_of(profile) not in replayed
        }
        # revocation starts once the certificate jobs end, beside the rest (HTTP to the responder, not this server)
        revocation = RevocationLookup(host=host, timeout=timeout, query_responders=ocsp, ca_bundle=ca_bundle)
        revocation.start(served_from_jobs(queued.get(ScanCommand.CERTIFICATE_INFO)))
        protocols = []
        for label, future in suite_futures.items():
            try:
                protocols.append(future.result())
            except Exception as exc:  # noqa: BLE001  (a protocol we could not test is reported, never guessed)
                protocols.append(ProtocolSupport(version=label, supported=None))
                failed[Probe.suites(label)] = from_exception(exc, counter.stopped)
        if on_phase:
            on_phase("client simulation")
        if early_fallback and fallback_version(protocols) == "TLS 1.2":
            fallback = early_fallback[0]
        else:
            for unused in early_fallback:  # a TLS 1.3 server the enumeration found without TLS 1.3
                unused.result()  # its connection ends before the scan does
            fallback = spawn(probe_fallback_scsv, where, protocols, counter)  # beside the simulations
        groups: list[str] = []
        try:
            over = group_protocol(protocols)
            if early_groups is not None and over == "TLS 1.3":
                groups = early_groups.result()
            elif over is not None:
                groups = pool.submit(enumerator.groups_over, over).result()
        except Exception as exc:  # noqa: BLE001  (the groups are reported as not tested)
            failed[Probe.GROUPS] = from_exception(exc, counter.stopped)
        if on_phase:
            on_phase("certificate and vulnerabilities")
        attempts = _sslyze_results(server, queued)
        simulated = for_each_client(
            {hello: f.result() for hello, f in simulations.items()}
            | {
                hello_of(p): interpret(p, replayed[hello_of(p)].result(), None, timeout, counter)
                for p in distinct_hellos(CLIENTS)
                if hello_of(p) in replayed
            },
            CLIENTS,
        )
        name_protocols(simulated, protocols)
        fallback_scsv = fallback.result()
        post_quantum, hybrid_choices, quantum_attempt = quantum.result()
        protocol_facts_found, tls_extension_scts, facts_attempt = facts.result()
    evidence = _to_evidence(attempts, set(SSLYZE_COMMANDS), host, counter.stopped)
    evidence.vulnerabilities.fallback_scsv = fallback_scsv
    if fallback_scsv is None and fallback_version(protocols):
        failed[Probe.TLS_FALLBACK_SCSV] = FALLBACK_NO_ANSWER
    revocation.apply(evidence.certificates)
    protocol_facts.apply(evidence, protocol_facts_found, tls_extension_scts)
    evidence.protocols = protocols
    evidence.groups = groups
    evidence.simulations = simulated
    annotate_post_quantum(simulated, post_quantum, hybrid_choices)
    evidence.post_quantum = post_quantum
    _record(failed, Probe.SIMULATIONS, simulations_attempt(simulated))
    _record(failed, Probe.POST_QUANTUM, quantum_attempt)
    _record(failed, Probe.FACTS, facts_attempt)
    _record(failed, Probe.OCSP, ocsp_attempt(evidence.certificates))
    _record(failed, Probe.DH_SIZES, dh_size.attempt_of(protocols))
    evidence.attempts.update(failed)
    if counter.stopped:  # the grade and the clauses that need what is missing say so (auditor.grading)
        recheck_silenced(enumerator, protocols, evidence.attempts)
        evidence.attempts[Probe.SCAN] = stopped(counter.stopped)
    evidence.connections = counter.total
    evidence.connections_by_phase = dict(counter.by_phase)
    if on_phase:
        on_phase("TLS scan done")
    return evidence


def _record(attempts: dict[Probe, Attempt], probe: Probe, attempt: Attempt | None) -> None:
    """Keep `probe`'s attempt when it did not complete (absent from `attempts`: it completed)."""
    if attempt is not None:
        attempts[probe] = attempt


_VERSION_NAMES = {TlsVersionEnum.TLS_1_2: "TLS 1.2", TlsVersionEnum.TLS_1_3: "TLS 1.3"}
_LONGEST_FIRST = ("TLS 1.2", "TLS 1.3")  # the protocols a server of today accepts: many suites each


def _attempt(all_attempts: Any, command: ScanCommand, errors: _Failed) -> Any:
    attempt = getattr(all_attempts, _ATTR[command])
    if attempt.status is ScanCommandAttemptStatusEnum.COMPLETED:
        return attempt.result
    if (ours := from_sslyze(attempt, errors.stopped)) is not None:
        errors.attempts[probe_of(command)] = ours
    return None


@dataclass
class _Failed:
    """The attempts of the commands that did not complete, and the ledger's stop (None: it answered)."""

    stopped: str | None
    attempts: dict[Probe, Attempt]


def _to_evidence(
    attempts: Any, commands: set[ScanCommand], host: str, ledger_stopped: str | None = None
) -> TlsEvidence:
    errors = _Failed(ledger_stopped, {})
    evidence = TlsEvidence()
    for version, command in SUITE_COMMANDS.items():
        if command not in commands:
            continue
        res = _attempt(attempts, command, errors)
        if res is None:
            evidence.protocols.append(ProtocolSupport(version=version, supported=None))
            continue
        suites = []
        for accepted in res.accepted_cipher_suites:
            key = accepted.ephemeral_key
            group = getattr(key, "curve_name", None) or (key.type_name if key else None)
            suites.append(
                describe(
                    accepted.cipher_suite.name,
                    openssl_name=accepted.cipher_suite.openssl_name,
                    bits=accepted.cipher_suite.key_size,
                    ephemeral_group=group,
                    ephemeral_bits=key.size if key else None,
                )
            )
        evidence.protocols.append(ProtocolSupport(version=version, supported=bool(suites), suites=suites))

    if ScanCommand.CERTIFICATE_INFO in commands:
        cert_info = _attempt(attempts, ScanCommand.CERTIFICATE_INFO, errors)
        if cert_info is not None:
            for deployment in cert_info.certificate_deployments:
                chain = deployment.received_certificate_chain
                verified = deployment.verified_certificate_chain or []
                evidence.certificates.append(
                    CertificateDeployment(
                        received_chain=[describe_certificate(c) for c in chain],
                        verified_chain=[describe_certificate(c) for c in verified],
                        trust=[
                            TrustStoreResult(
                                store=_store_name(r.trust_store.name),
                                version=r.trust_store.version,
                                trusted=r.was_validation_successful,
                                error=r.validation_error,
                            )
                            for r in deployment.path_validation_results
                        ],
                        hostname_matches=hostname_matches(chain[0], host) if chain else False,
                        chain_in_order=deployment.received_chain_has_valid_order,
                        chain_includes_root=deployment.received_chain_contains_anchor_certificate,
                        ocsp_stapled=deployment.ocsp_response is not None,
                        mozilla_ev=deployment.leaf_certificate_is_ev,
                        ct=transparency(chain[0], deployment.ocsp_response) if chain else None,
                    )
                )

    if ScanCommand.ELLIPTIC_CURVES in commands:
        curves = _attempt(attempts, ScanCommand.ELLIPTIC_CURVES, errors)
        if curves is not None and curves.supported_curves:
            evidence.groups = [group_name(c.name) for c in curves.supported_curves]

    vulns = Vulnerabilities()
    if (r := _maybe(attempts, ScanCommand.HEARTBLEED, commands, errors)) is not None:
        vulns.heartbleed = r.is_vulnerable_to_heartbleed
    if (r := _maybe(attempts, ScanCommand.OPENSSL_CCS_INJECTION, commands, errors)) is not None:
        vulns.ccs_injection = r.is_vulnerable_to_ccs_injection
    if (r := _maybe(attempts, ScanCommand.ROBOT, commands, errors)) is not None:
        vulns.robot = r.robot_result.name
    if (r := _maybe(attempts, ScanCommand.SESSION_RENEGOTIATION, commands, errors)) is not None:
        vulns.secure_renegotiation = r.supports_secure_renegotiation
        vulns.client_renegotiation_dos = r.is_vulnerable_to_client_renegotiation_dos
    if (r := _maybe(attempts, ScanCommand.TLS_COMPRESSION, commands, errors)) is not None:
        vulns.compression = r.supports_compression
    if (r := _maybe(attempts, ScanCommand.TLS_FALLBACK_SCSV, commands, errors)) is not None:
        vulns.fallback_scsv = r.supports_fallback_scsv
    evidence.vulnerabilities = vulns
    evidence.attempts = errors.attempts
    return evidence


def _maybe(attempts: Any, command: ScanCommand, commands: set[ScanCommand], errors: _Failed) -> Any:
    return _attempt(attempts, command, errors) if command in commands else None


def _store_name(name: str) -> str:
    return name if name in {"Mozilla", "Apple", "Android", "Java", "Windows"} else "custom"
