"""A programmable TLS server on tlslite-ng (pure Python), for what no OpenSSL here serves: DHE with
512/768/1024-bit groups, 3DES-only or SSL 3.0 + CBC configurations, and a server without secure
renegotiation (RFC 5746). It runs as a subprocess (`python -m tests.harness.tlslite_server`) so a
scan's hundreds of handshakes never hold the test's GIL; it prints "READY <port>" once listening.
"""

from __future__ import annotations

import argparse
import json
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from auditor.demo_site import Issued
from tests.harness.process_server import ProcessServer

REPO_ROOT = Path(__file__).resolve().parents[2]

# Protocol names as ssl.TLSVersion spells them -> tlslite's (major, minor).
VERSIONS = {"SSLv3": (3, 0), "TLSv1": (3, 1), "TLSv1.1": (3, 2), "TLSv1.2": (3, 3), "TLSv1.3": (3, 4)}
DEFAULT_BODY = "<!doctype html><html><head><title>tlslite</title></head><body><p>hello</p></body></html>"


@dataclass
class TlsliteConfig:
    """What the child process serves; names are tlslite-ng's HandshakeSettings names."""

    chain_path: str
    key_path: str
    min_version: str = "TLSv1.2"
    max_version: str = "TLSv1.2"
    # in tlslite's own preference order whatever the order here (the server chooses)
    ciphers: list[str] = field(default_factory=lambda: ["aes256gcm", "aes128gcm", "aes256", "aes128"])
    key_exchange: list[str] = field(default_factory=lambda: ["ecdhe_rsa", "dhe_rsa", "rsa"])
    macs: list[str] = field(default_factory=lambda: ["sha", "sha256", "sha384", "aead"])
    dh_params_path: str | None = None  # PEM DH parameters for DHE (RFC 7919 groups are then not offered)
    secure_renegotiation: bool = True  # False: ignore RFC 5746 (no renegotiation_info in ServerHello)
    rsa_padding_oracle: bool = (
        False  # True: a bad PKCS#1 padding in ClientKeyExchange gets its own alert (ROBOT)
    )
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = DEFAULT_BODY


class TlsliteServer(ProcessServer):
    """tlslite-ng serving one HTTPS site on 127.0.0.1 in a child process (see TlsliteConfig).

    Versions are ssl.TLSVersion names ("SSLv3" ... "TLSv1.3"); `dh_bits` makes DHE use a fresh group
    of that size (tests.harness.legacy.dh_params), otherwise tlslite's 2048-bit default.
    """

    label = "tlslite server"
    stdout = subprocess.PIPE

    def __init__(
        self,
        issued: Issued,
        *,
        min_version: str = "TLSv1.2",
        max_version: str = "TLSv1.2",
        ciphers: Sequence[str] | None = None,
        key_exchange: Sequence[str] | None = None,
        macs: Sequence[str] | None = None,
        dh_bits: int | None = None,
        secure_renegotiation: bool = True,
        rsa_padding_oracle: bool = False,
        response_headers: Sequence[tuple[str, str]] = (),
        serve_chain: bool = True,
        server_name: str = "good.test",
    ) -> None:
        for version in (min_version, max_version):
            if version not in VERSIONS:
                raise ValueError(f"unknown version {version!r}; expected one of {list(VERSIONS)}")
        self.issued, self.server_name, self.dh_bits = issued, server_name, dh_bits
        self.config = TlsliteConfig(
            str(issued.chain_path if serve_chain else issued.cert_path),
            str(issued.key_path),
            min_version,
            max_version,
            secure_renegotiation=secure_renegotiation,
            rsa_padding_oracle=rsa_padding_oracle,
            response_headers=list(response_headers),
        )
        for name, value in (("ciphers", ciphers), ("key_exchange", key_exchange), ("macs", macs)):
            if value is not None:
                setattr(self.config, name, list(value))
        self.port = 0
        super().__init__()

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    def prepare(self) -> None:
        if self.dh_bits:
            from tests.harness.legacy import dh_params

            self.config.dh_params_path = str(dh_params(self.dh_bits))

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tests.harness.tlslite_server", json.dumps(asdict(self.config))]

    def environment(self) -> dict[str, str]:
        """The child imports tests.harness: the repository root goes first on its path."""
        path = os.environ.get("PYTHONPATH")
        return {**os.environ, "PYTHONPATH": str(REPO_ROOT) + (os.pathsep + path if path else "")}

    def wait_ready(self) -> None:
        """The child prints "READY <port>" once listening (or dies: EOF)."""
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            self.proc.wait(timeout=10)
            raise RuntimeError(repr(line))
        self.port = int(line.split()[1])


# ---------------------------------------------------------------- the child process


def _settings(config: TlsliteConfig):  # type: ignore[no-untyped-def]  # tlslite is untyped
    from cryptography.hazmat.primitives.serialization import load_pem_parameters
    from tlslite.api import HandshakeSettings

    settings = HandshakeSettings()
    settings.minVersion, settings.maxVersion = VERSIONS[config.min_version], VERSIONS[config.max_version]
    settings.versions = [
        v for v in sorted(VERSIONS.values(), reverse=True) if settings.minVersion <= v <= settings.maxVersion
    ]
    settings.cipherNames, settings.keyExchangeNames, settings.macNames = (
        config.ciphers,
        config.key_exchange,
        config.macs,
    )
    settings.minKeySize = 512  # test leaves may be small on purpose
    if config.dh_params_path:
        with open(config.dh_params_path, "rb") as pem:
            numbers = load_pem_parameters(pem.read()).parameter_numbers()
        settings.dhParams, settings.dhGroups = (numbers.g, numbers.p), []
    return settings.validate()


def _connection_class(*, ignore_rfc5746: bool, ignore_rfc7919: bool):  # type: ignore[no-untyped-def]
    """TLSConnection, or a subclass that reads each ClientHello as a server older than the RFCs would."""
    from tlslite.api import TLSConnection
    from tlslite.constants import CipherSuite, ExtensionType
    from tlslite.messages import ClientHello

    if not (ignore_rfc5746 or ignore_rfc7919):
        return TLSConnection

    def forget(hello: ClientHello) -> None:
        if ignore_rfc5746:  # no renegotiation_info in the ServerHello: "secure renegotiation not supported"
            hello.cipher_suites = [
                c for c in hello.cipher_suites if c != CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
            ]
            if hello.extensions is not None:
                hello.extensions = [
                    e for e in hello.extensions if e.extType != ExtensionType.renegotiation_info
                ]
        groups = hello.getExtension(ExtensionType.supported_groups)
        if ignore_rfc7919 and groups is not None and groups.groups:  # the configured DH group, not ffdhe*
            groups.groups = [g for g in groups.groups if not 256 <= g < 512] or groups.groups

    class PreRFC(TLSConnection):  # type: ignore[misc]
        """The handshake hash covers the bytes received, not this parsed copy: handshakes still complete."""

        def _getMsg(self, *args: object, **kwargs: object) -> Iterator[object]:  # noqa: N802  # tlslite's name
            for result in super()._getMsg(*args, **kwargs):
                if isinstance(result, ClientHello):
                    forget(result)
                yield result

    return PreRFC


def _install_padding_oracle() -> None:
    """Make RSA key exchange answer a bad PKCS#1 padding at once with illegal_parameter, where a good
    padding goes on to fail at Finished: the distinguishable answers of a Bleichenbacher (ROBOT) oracle.
    tlslite-ng itself does it right (a random premaster secret either way); this undoes that, in the
    child process only."""
    from tlslite.errors import TLSIllegalParameterException
    from tlslite.keyexchange import RSAKeyExchange

    honest = RSAKeyExchange.processClientKeyExchange

    def leaky(self, clientKeyExchange):  # type: ignore[no-untyped-def]  # noqa: N803  # tlslite's name
        decrypted = self.privateKey.decrypt(clientKeyExchange.encryptedPreMasterSecret)
        if not decrypted or len(decrypted) != 48:
            raise TLSIllegalParameterException("bad PKCS#1 padding")
        return honest(self, clientKeyExchange)

    RSAKeyExchange.processClientKeyExchange = leaky


def _response(config: TlsliteConfig) -> bytes:
    body = config.body.encode()
    head = [
        "HTTP/1.1 200 OK",
        "Content-Type: text/html; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in config.response_headers),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def serve(config: TlsliteConfig) -> None:
    """Listen on 127.0.0.1, print READY <port>, answer every request with one page until killed."""
    from tlslite.api import X509CertChain, parsePEMKey

    with open(config.chain_path) as f:
        chain = X509CertChain()
        chain.parsePemList(f.read())
    with open(config.key_path) as f:
        key = parsePEMKey(f.read(), private=True)
    settings = _settings(config)
    connection_class = _connection_class(
        ignore_rfc5746=not config.secure_renegotiation, ignore_rfc7919=config.dh_params_path is not None
    )
    response = _response(config)
    if config.rsa_padding_oracle:
        _install_padding_oracle()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(30)
            tls = connection_class(self.request)
            try:
                # alpn given: tlslite 0.8's TLS 1.3 path fails on a client's ALPN when the server has none
                tls.handshakeServer(
                    certChain=chain, privateKey=key, settings=settings, alpn=[bytearray(b"http/1.1")]
                )
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    data = tls.read(max=4096)
                    if not data:
                        break
                    request += bytes(data)
                if request:
                    tls.write(response)
                tls.close()
            except Exception as exc:  # noqa: BLE001  # scanners abort handshakes all the time: one line each
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait()  # until SIGTERM


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="tlslite-ng HTTPS test server (one JSON TlsliteConfig argument)"
    )
    parser.add_argument("config", help="TlsliteConfig as JSON")
    args = parser.parse_args(argv)
    raw = json.loads(args.config)
    raw["response_headers"] = [tuple(h) for h in raw.get("response_headers", [])]
    serve(TlsliteConfig(**raw))


if __name__ == "__main__":
    main()
