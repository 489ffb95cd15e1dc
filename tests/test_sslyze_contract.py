"""The private and internal names of sslyze, nassl and httpcore that auditor/scan relies on.

pyproject.toml pins those packages to the series known to work; this file is the other half: when an
upgrade moves or reshapes one of these names, the failure says which name and which of our modules
has to follow, instead of a scan that quietly reports less.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


def _get(module: str, name: str, user: str) -> Any:
    """`module.name`, or a failure naming the module of ours that uses it."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{module}.{name} is gone ({exc}): update {user} for this {module.split('.')[0]} release")


def _pristine(module: str) -> ModuleType:
    """A fresh copy of `module`, without the replacements auditor/scan makes when imported."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.loader is not None, module
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


def _parameters(function: Callable[..., object]) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def _expect_parameters(function: Callable[..., object], expected: list[str], where: str, user: str) -> None:
    found = _parameters(function)
    assert found[: len(expected)] == expected, (
        f"{where} now takes {found}, {user} calls it with {expected}: update {user}"
    )


# (module, name, the module of ours that uses it, leading parameters it is called with or None)
CALLABLES = [
    (
        "sslyze.connection_helpers.tls_connection",
        "_open_socket",
        "auditor/scan/connections.py (_install replaces it to count connections)",
        ["server_location", "network_timeout"],
    ),
    (
        "sslyze.server_connectivity",
        "_detect_support_for_tls_1_3",
        "auditor/scan/tls.py (the one-connection connectivity check)",
        ["server_location", "network_config"],
    ),
    (
        "nassl.ocsp_response",
        "verify_ocsp_response",
        "auditor/scan/revocation.py (_verify_stapled_for_sslyze wraps it)",
        ["ocsp_response", "trust_store_path"],
    ),
    (
        "nassl.ocsp_response",
        "OcspResponseNotTrustedError",
        "auditor/scan/revocation.py (raised with a message and the trust store path)",
        ["message", "trust_store_path"],
    ),
    (
        "sslyze.plugins.certificate_info.trust_stores.trust_store",
        "TrustStore",
        "auditor/scan/revocation.py (TrustStore(path, name, version))",
        ["path", "name", "version"],
    ),
    (
        "sslyze.plugins.openssl_cipher_suites.cipher_suites",
        "CipherSuitesRepository",
        "auditor/scan/enumerate.py and dh_only.py (get_all_cipher_suites)",
        None,
    ),
    (
        "sslyze.plugins.scan_commands",
        "ScanCommandsRepository",
        "auditor/scan/tls.py (runs sslyze's plugin jobs on its own pool)",
        None,
    ),
    (
        "sslyze.plugins.certificate_info.trust_stores.trust_store_repository",
        "TrustStoresRepository",
        "auditor/scan/revocation.py (get_default)",
        None,
    ),
    (
        "httpcore._backends.sync",
        "SyncBackend",
        "auditor/scan/http_deadline.py (connect_tcp is wrapped to put a deadline on HTTP exchanges)",
        None,
    ),
    (
        "httpcore._backends.sync",
        "SyncStream",
        "auditor/scan/http_deadline.py (_WatchedStream subclasses it)",
        ["sock"],
    ),
    (
        "nassl.legacy_ssl_client",
        "LegacySslClient",
        "auditor/scan/enumerate.py (SSL 2.0/3.0 probes)",
        ["underlying_socket", "ssl_version", "ssl_verify"],
    ),
]


@pytest.mark.parametrize(("module", "name", "user", "parameters"), CALLABLES, ids=lambda v: str(v)[:60])
def test_private_callable_is_where_we_call_it(
    module: str, name: str, user: str, parameters: list[str] | None
) -> None:
    target = _get(module, name, user)
    if getattr(target, "__module__", "").startswith("auditor."):
        target = getattr(_pristine(module), name)  # auditor/scan replaced it on import: judge the original
    assert callable(target), f"{module}.{name} is no longer callable: update {user}"
    if parameters is not None:
        _expect_parameters(target, parameters, f"{module}.{name}", user)


def test_sslyze_internal_methods_keep_their_shape() -> None:
    user = "auditor/scan/tls.py, enumerate.py, dh_only.py, revocation.py"
    repository = _get("sslyze.plugins.openssl_cipher_suites.cipher_suites", "CipherSuitesRepository", user)
    _expect_parameters(repository.get_all_cipher_suites, ["tls_version"], "get_all_cipher_suites", user)
    commands = _get("sslyze.plugins.scan_commands", "ScanCommandsRepository", user)
    _expect_parameters(commands.get_implementation_cls, ["scan_command"], "get_implementation_cls", user)
    plugin = _get("sslyze.plugins.plugin_base", "ScanCommandImplementation", user)
    _expect_parameters(
        plugin.scan_jobs_for_scan_command,
        ["server_info", "extra_arguments"],
        "scan_jobs_for_scan_command",
        user,
    )
    _expect_parameters(
        plugin.result_for_completed_scan_jobs,
        ["server_info", "scan_job_results"],
        "result_for_completed_scan_jobs",
        user,
    )
    trust_store = _get("sslyze.plugins.certificate_info.trust_stores.trust_store", "TrustStore", user)
    _expect_parameters(
        trust_store.verify_certificate_chain,
        ["certificate_chain_as_pem", "server_subject"],
        "TrustStore.verify_certificate_chain",
        user,
    )
    stores = _get(
        "sslyze.plugins.certificate_info.trust_stores.trust_store_repository", "TrustStoresRepository", user
    )
    assert callable(stores.get_default), f"TrustStoresRepository.get_default is gone: update {user}"


def test_sslyze_job_and_result_records_keep_their_fields() -> None:
    """tls.py reads ScanJob's two fields and builds ScanJobResult by keyword; it reads three fields of
    the TLS 1.3 detection result."""
    user = "auditor/scan/tls.py"
    job = _get("sslyze.plugins.plugin_base", "ScanJob", user)
    fields = {f.name for f in dataclasses.fields(job)}
    assert {"function_to_call", "function_arguments"} <= fields, f"ScanJob has {fields}: update {user}"
    result = _get("sslyze.plugins.plugin_base", "ScanJobResult", user)
    _expect_parameters(result, ["_return_value", "_exception"], "ScanJobResult", user)
    detection = _get("sslyze.server_connectivity", "_TlsVersionDetectionResult", user)
    found = {f.name for f in dataclasses.fields(detection)}
    wanted = {"cipher_suite_supported", "server_requested_client_cert"}
    assert wanted <= found, f"_TlsVersionDetectionResult has {found}, tls.py reads {wanted}: update {user}"


def test_private_exceptions_and_tables_exist() -> None:
    not_supported = _get("sslyze.server_connectivity", "_TlsVersionNotSupported", "auditor/scan/tls.py")
    assert issubclass(not_supported, Exception)
    bug = _get(
        "sslyze.connection_helpers.tls_connection",
        "NoCiphersAvailableBugInSSlyze",
        "auditor/scan/enumerate.py",
    )
    assert issubclass(bug, Exception)
    nassl_error = _get("nassl._nassl", "OpenSSLError", "auditor/scan/revocation.py")
    assert issubclass(nassl_error, Exception)
    assert isinstance(_get("nassl._nassl", "OCSP_RESPONSE", "auditor/scan/revocation.py"), type)
    names = _get(
        "sslyze.plugins.openssl_cipher_suites.cipher_suites",
        "_TLS_OPENSSL_TO_RFC_NAMES_MAPPING",
        "auditor/scan/simulate.py",
    )
    assert isinstance(names, dict), (
        "the OpenSSL -> RFC suite name table changed type: update auditor/scan/simulate.py"
    )
    assert names.get("ECDHE-RSA-AES128-GCM-SHA256") == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"


def test_httpcore_stream_keeps_its_socket_and_methods() -> None:
    """http_deadline.py reads SyncStream._sock and overrides write/start_tls/close with these signatures."""
    import socket

    user = "auditor/scan/http_deadline.py"
    stream_cls = _get("httpcore._backends.sync", "SyncStream", user)
    a, b = socket.socketpair()
    try:
        stream = stream_cls(a)
        assert stream._sock is a, f"SyncStream no longer keeps its socket in _sock: update {user}"
    finally:
        a.close()
        b.close()
    _expect_parameters(stream_cls.write, ["buffer", "timeout"], "SyncStream.write", user)
    _expect_parameters(
        stream_cls.start_tls, ["ssl_context", "server_hostname", "timeout"], "SyncStream.start_tls", user
    )
    backend = _get("httpcore._backends.sync", "SyncBackend", user)
    _expect_parameters(backend.connect_tcp, ["host", "port", "timeout"], "SyncBackend.connect_tcp", user)


def test_pins_match_the_installed_series() -> None:
    """The pins in pyproject.toml are the versions this contract was written against."""
    from importlib.metadata import version

    assert version("sslyze").startswith("6.3."), (
        "sslyze left 6.3: re-check the names above, then move the pin"
    )
    assert version("nassl").startswith("5.4."), "nassl left 5.4: re-check the names above, then move the pin"
    assert version("httpcore").startswith("1.0."), (
        "httpcore left 1.0: re-check the names above, then move the pin"
    )


def test_the_certificate_jobs_end_with_the_one_without_sni() -> None:
    """auditor/scan/tls.py skips sslyze's certificate job without SNI (uses_sni): its last argument
    says whether SNI is sent, and it is the only job without."""
    from sslyze.plugins.certificate_info.implementation import CertificateInfoImplementation
    from sslyze.server_connectivity import (
        ClientAuthRequirementEnum,
        ServerConnectivityInfo,
        ServerTlsProbingResult,
        TlsVersionEnum,
    )
    from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

    from auditor.scan.tls import uses_sni

    for highest in (TlsVersionEnum.TLS_1_3, TlsVersionEnum.TLS_1_2):
        server = ServerConnectivityInfo(
            server_location=ServerNetworkLocation("contract.test", 443, ip_address="127.0.0.1"),
            network_configuration=ServerNetworkConfiguration("contract.test"),
            tls_probing_result=ServerTlsProbingResult(
                highest_tls_version_supported=highest,
                cipher_suite_supported="TLS_AES_256_GCM_SHA384",
                client_auth_requirement=ClientAuthRequirementEnum.DISABLED,
                supports_ecdh_key_exchange=True,
            ),
        )
        jobs = CertificateInfoImplementation.scan_jobs_for_scan_command(server, None)
        assert [uses_sni(job) for job in jobs] == [True, True, True, False], (
            "sslyze's certificate jobs changed: update auditor/scan/tls.py uses_sni"
        )
