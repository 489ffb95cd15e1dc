"""The sslyze adapter: run the scan commands the audit needs, return TlsEvidence.

sslyze is kept for what it does well (certificate chain against its bundled trust stores,
vulnerability probes, exhaustive suite enumeration); nothing outside this module imports it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography import x509
from sslyze import (
    CertificateInfoExtraArgument,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandsExtraArguments,
    Scanner,
    ServerConnectivityStatusEnum,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
)
from sslyze.errors import ConnectionToServerFailed, ServerHostnameCouldNotBeResolved
from sslyze.server_connectivity import ServerConnectivityInfo, check_connectivity_to_server

from auditor.errors import ScanError
from auditor.model import (
    CertificateDeployment,
    ProtocolSupport,
    TlsEvidence,
    TrustStoreResult,
    Vulnerabilities,
)
from auditor.scan.certs import describe_certificate
from auditor.scan.enumerate import ConnectionCounter, enumerate_server, group_name
from auditor.scan.simulate import simulate_all
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
    ScanCommand.TLS_FALLBACK_SCSV,
]


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
        if name.startswith("*.") and "." in host:
            if host.split(".", 1)[1] == name[2:]:
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


def _network(host: str, port: int, ip: str | None, timeout: float):  # noqa: ANN202
    try:
        location = ServerNetworkLocation(hostname=host, port=port, ip_address=ip)
    except ServerHostnameCouldNotBeResolved:
        raise ScanError(f"host {host!r} does not resolve") from None
    network = ServerNetworkConfiguration(tls_server_name_indication=host, network_timeout=max(1, round(timeout)),
                                         network_max_retries=2)
    return location, network


def _run_sslyze(location, network, commands: set[ScanCommand], ca_bundle: Path | None,  # noqa: ANN001
                connections_per_server: int):  # noqa: ANN202
    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_bundle) if ca_bundle else None
    )
    request = ServerScanRequest(server_location=location, network_configuration=network, scan_commands=commands,
                                scan_commands_extra_arguments=extra)
    scanner = Scanner(per_server_concurrent_connections_limit=connections_per_server,
                      concurrent_server_scans_limit=1)
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
) -> TlsEvidence:
    """Scan one server. Raises ScanError when it cannot be reached over TLS.

    By default suites and groups come from the fast enumerator (auditor.scan.enumerate) while
    sslyze checks the certificate and the vulnerabilities at the same time; `thorough` uses
    sslyze's one-connection-per-suite scan instead. `commands` restricts sslyze to those commands
    (and skips the enumerator unless suite commands are among them).
    """
    location, network = _network(host, port, ip, timeout)
    if on_phase:
        on_phase("TLS handshake")
    if thorough or commands is not None:
        commands = commands if commands is not None else {
            ScanCommand.CERTIFICATE_INFO, ScanCommand.ELLIPTIC_CURVES, *SUITE_COMMANDS.values(),
            *VULNERABILITY_COMMANDS}
        attempts = _run_sslyze(location, network, commands, ca_bundle, connections_per_server)
        evidence = _to_evidence(attempts, commands, host)
        if any(c in commands for c in SUITE_COMMANDS.values()):
            if on_phase:
                on_phase("client simulation")
            evidence.simulations = simulate_all(host, port, ip, timeout, evidence.protocols, connections_per_server)
        if on_phase:
            on_phase("TLS scan done")
        return evidence

    try:
        probing = check_connectivity_to_server(location, network)
    except ConnectionToServerFailed as exc:
        raise ScanError(_connect_error(exc.error_message)) from None
    server = ServerConnectivityInfo(server_location=location, network_configuration=network,
                                    tls_probing_result=probing)
    counter = ConnectionCounter()
    sslyze_commands = {ScanCommand.CERTIFICATE_INFO, *VULNERABILITY_COMMANDS}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sslyze") as pool:
        sslyze_future = pool.submit(_run_sslyze, location, network, sslyze_commands, ca_bundle,
                                    max(1, connections_per_server - 2))
        found = enumerate_server(server, counter, connections=connections_per_server, on_phase=on_phase)
        if on_phase:
            on_phase("client simulation")
        simulations = simulate_all(host, port, ip, timeout, found.protocols, connections_per_server, counter)
        if on_phase:
            on_phase("certificate and vulnerabilities")
        attempts = sslyze_future.result()
    evidence = _to_evidence(attempts, sslyze_commands, host)
    evidence.protocols = found.protocols
    evidence.groups = found.groups
    evidence.simulations = simulations
    evidence.errors.update(found.errors)
    evidence.connections = counter.total
    evidence.connections_by_phase = dict(counter.by_phase)
    if on_phase:
        on_phase("TLS scan done")
    return evidence


def _attempt(all_attempts, command: ScanCommand, errors: dict[str, str]):  # noqa: ANN001, ANN202
    attempt = getattr(all_attempts, _ATTR[command])
    if attempt.status is ScanCommandAttemptStatusEnum.COMPLETED:
        return attempt.result
    if attempt.status is ScanCommandAttemptStatusEnum.ERROR:
        reason = attempt.error_reason.value if attempt.error_reason else "error"
        trace = attempt.error_trace
        detail = f"{trace.exc_type.__name__}: {trace}" if trace else ""
        errors[command.value] = f"{reason} {detail}".strip()[:300]
    return None


def _to_evidence(attempts, commands: set[ScanCommand], host: str) -> TlsEvidence:  # noqa: ANN001
    errors: dict[str, str] = {}
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
            suites.append(describe(
                accepted.cipher_suite.name,
                openssl_name=accepted.cipher_suite.openssl_name,
                bits=accepted.cipher_suite.key_size,
                ephemeral_group=group,
                ephemeral_bits=key.size if key else None,
            ))
        evidence.protocols.append(ProtocolSupport(version=version, supported=bool(suites), suites=suites))

    if ScanCommand.CERTIFICATE_INFO in commands:
        cert_info = _attempt(attempts, ScanCommand.CERTIFICATE_INFO, errors)
        if cert_info is not None:
            for deployment in cert_info.certificate_deployments:
                chain = deployment.received_certificate_chain
                verified = deployment.verified_certificate_chain or []
                evidence.certificates.append(CertificateDeployment(
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
                ))

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
    evidence.errors = errors
    return evidence


def _maybe(attempts, command: ScanCommand, commands: set[ScanCommand], errors: dict[str, str]):  # noqa: ANN001, ANN202
    return _attempt(attempts, command, errors) if command in commands else None


def _store_name(name: str) -> str:
    return name if name in {"Mozilla", "Apple", "Android", "Java", "Windows"} else "custom"
