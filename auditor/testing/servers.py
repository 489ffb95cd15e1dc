"""Real TLS servers on 127.0.0.1 for tests, benchmarks and the demo: nginx (realistic HTTPS with
headers and cookies), `openssl s_server` (any protocol/suite mix), and a Python `ssl` server
(no system package needed). Each is a context manager and also has start()/stop().
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from auditor.testing.pki import Issued

MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
)
DEFAULT_BODY = "<!doctype html><html><head><title>test site</title></head><body><p>hello</p></body></html>"
NGINX_HTTP_MODES = ("redirect", "content", "http-redirect", "none")
PYTHON_HTTP_MODES = ("redirect", "content", "none")

# Child processes still running; killed at interpreter exit if a caller forgot stop().
_RUNNING: set[subprocess.Popen[bytes]] = set()


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None, host: str = "127.0.0.1"
) -> None:
    """Poll until `port` accepts a TCP connection; fail fast if `proc` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a child started in its own session, and everything it forked (nginx workers)."""
    if proc is None:
        return
    _RUNNING.discard(proc)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:  # workers can outlive a master that died early: sweep the whole group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=5)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_RUNNING):
        _terminate(proc)


def _read_log(log: IO[bytes] | Path | None) -> str:
    if log is None:
        return ""
    if isinstance(log, Path):
        return log.read_text(errors="replace") if log.exists() else ""
    log.seek(0)
    return log.read().decode(errors="replace")


class _Managed:
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _quote(value: str) -> str:
    """An nginx string literal; `$` goes through the `$dollar` variable so no variable expands."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${dollar}") + '"'


class NginxSite(_Managed):
    """A real nginx (Debian package) serving one HTTPS site, plus its plain-HTTP listener.

    Its own master in `directory` (config, pid, logs, temp paths), run with `daemon off` in a new
    session so stop() can kill the whole process group. Defaults are a policy-compliant site.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        issued: Issued,
        server_name: str = "good.test",
        serve_chain: bool = True,
        dual_issued: Issued | None = None,
        protocols: str = "TLSv1.2 TLSv1.3",
        ciphers: str = MODERN_CIPHERS,
        prefer_server_ciphers: bool = True,
        ecdh_curve: str = "X25519:prime256v1:secp384r1",
        tls13_ciphersuites: str | None = None,
        seclevel0: bool = False,
        hsts: str | None = "max-age=63072000; includeSubDomains",
        cookies: Sequence[str] = (),
        body: str = DEFAULT_BODY,
        extra_headers: Mapping[str, str] | None = None,
        http_mode: str = "redirect",
        extra_server: str = "",
        extra_http: str = "",
    ) -> None:
        if http_mode not in NGINX_HTTP_MODES:
            raise ValueError(f"http_mode must be one of {NGINX_HTTP_MODES}, not {http_mode!r}")
        self._owns_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="nginx-site-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.issued, self.dual_issued = issued, dual_issued
        self.server_name, self.serve_chain = server_name, serve_chain
        # OpenSSL 3 refuses TLS 1.0/1.1 and weak suites above security level 0.
        self.protocols, self.ciphers = protocols, ciphers + (":@SECLEVEL=0" if seclevel0 else "")
        self.prefer_server_ciphers, self.ecdh_curve = prefer_server_ciphers, ecdh_curve
        self.tls13_ciphersuites = tls13_ciphersuites
        self.hsts, self.cookies, self.body = hsts, list(cookies), body
        self.extra_headers = dict(extra_headers or {})
        self.http_mode, self.extra_server = http_mode, extra_server
        self.extra_http = extra_http  # nginx directives for the plain-HTTP server block (e.g. a Set-Cookie)
        self.https_port = free_port()
        self.http_port: int | None = None
        while http_mode != "none" and self.http_port in (None, self.https_port):
            self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.https_port}/"

    @property
    def http_url(self) -> str | None:
        return f"http://{self.server_name}:{self.http_port}/" if self.http_port else None

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def _cert_lines(self, issued: Issued) -> str:
        cert = issued.chain_path if self.serve_chain else issued.cert_path
        return f"    ssl_certificate {cert};\n    ssl_certificate_key {issued.key_path};\n"

    def config_text(self) -> str:
        d = self.directory
        headers = []
        if self.hsts:
            headers.append(f"add_header Strict-Transport-Security {_quote(self.hsts)} always;")
        headers += [f"add_header Set-Cookie {_quote(c)} always;" for c in self.cookies]
        headers += [f"add_header {k} {_quote(v)} always;" for k, v in self.extra_headers.items()]
        header_block = "\n    ".join(headers)
        tls13 = (
            f"    ssl_conf_command Ciphersuites {self.tls13_ciphersuites};\n"
            if self.tls13_ciphersuites
            else ""
        )
        certs = self._cert_lines(self.issued) + (
            self._cert_lines(self.dual_issued) if self.dual_issued else ""
        )
        http_block = ""
        if self.http_port:
            if self.http_mode == "redirect":
                action = f"return 301 https://$host:{self.https_port}$request_uri;"
            elif self.http_mode == "http-redirect":
                action = "return 301 http://elsewhere.test$request_uri;"
            else:
                action = f"root {d}/www; index index.html; {header_block}"
            http_block = f"""
  server {{
    listen 127.0.0.1:{self.http_port};
    server_name {self.server_name};
    {self.extra_http}
    {action}
  }}"""
        # Workers must read keys in 0700 temp dirs; `user` is only legal for a root master.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return f"""{user}worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp_body;
  proxy_temp_path {d}/tmp_proxy;
  fastcgi_temp_path {d}/tmp_fastcgi;
  uwsgi_temp_path {d}/tmp_uwsgi;
  scgi_temp_path {d}/tmp_scgi;
  types {{ text/html html; }}
  default_type text/html;
  geo $dollar {{ default "$"; }}
  server {{
    listen 127.0.0.1:{self.https_port} ssl;
    server_name {self.server_name};
{certs}    ssl_protocols {self.protocols};
    ssl_ciphers {self.ciphers};
    ssl_prefer_server_ciphers {"on" if self.prefer_server_ciphers else "off"};
    ssl_ecdh_curve {self.ecdh_curve};
{tls13}    ssl_session_tickets off;
    root {d}/www;
    index index.html;
    {header_block}
    {self.extra_server}
  }}{http_block}
}}
"""

    def start(self) -> None:
        if self.proc is not None:
            return
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        (self.directory / "www").mkdir(parents=True, exist_ok=True)
        (self.directory / "www" / "index.html").write_text(self.body)
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config_text())
        self.error_log.unlink(missing_ok=True)
        self._stderr = tempfile.TemporaryFile()
        # -e: the Debian build logs to stderr until the config is read; -p: relative paths stay here.
        self.proc = subprocess.Popen(
            [nginx, "-p", f"{self.directory}/", "-c", str(conf), "-e", str(self.error_log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        _RUNNING.add(self.proc)
        try:
            wait_for_port(self.https_port, proc=self.proc)
            if self.http_port:
                wait_for_port(self.http_port, proc=self.proc)
        except RuntimeError as exc:
            log = _read_log(self.error_log) + _read_log(self._stderr)
            self.stop()
            raise RuntimeError(f"nginx did not start: {exc}\n{log}") from None

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


class OpenSSLServer(_Managed):
    """`openssl s_server -www` with caller-chosen flags (e.g. ['-tls1', '-cipher', 'AES128-SHA@SECLEVEL=0']):
    reaches protocol/suite combinations nginx will not configure."""

    def __init__(
        self,
        issued: Issued,
        args: Sequence[str] = (),
        *,
        serve_chain: bool = True,
        server_name: str = "good.test",
    ) -> None:
        self.issued, self.args, self.serve_chain, self.server_name = (
            issued,
            list(args),
            serve_chain,
            server_name,
        )
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    def start(self) -> None:
        if self.proc is not None:
            return
        cmd = [
            "openssl",
            "s_server",
            "-accept",
            f"127.0.0.1:{self.port}",
            "-cert",
            str(self.issued.cert_path),
            "-key",
            str(self.issued.key_path),
            "-www",
            "-quiet",
        ]
        if self.serve_chain:
            chain = self.issued.chain_path.read_bytes().split(b"-----END CERTIFICATE-----", 1)[1].strip()
            if chain:
                extra = self.issued.chain_path.with_suffix(".extra.pem")
                extra.write_bytes(chain + b"\n")
                cmd += ["-cert_chain", str(extra)]
        cmd += self.args
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: nobody drains it while serving
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        _RUNNING.add(self.proc)
        try:
            wait_for_port(self.port, proc=self.proc)
        except RuntimeError as exc:
            err = _read_log(self._stderr)
            self.stop()
            raise RuntimeError(f"openssl s_server did not start: {exc}\n{err}") from None

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # scanners open many connections at once

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # scanners abort hundreds of handshakes: not an error worth printing


class _QuietHTTPServer6(_QuietHTTPServer):
    address_family = socket.AF_INET6


def _host_without_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class PythonTLSServer(_Managed):
    """An HTTPS server on the stdlib (`ssl` + `http.server`), with an optional plain-HTTP listener.

    The TLS handshake runs lazily in each connection's thread, so a client that stalls or sends
    garbage costs one thread (and a timeout) and never blocks accept().
    """

    def __init__(
        self,
        issued: Issued,
        *,
        minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
        maximum_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
        ciphers: str | None = None,
        server_preference: bool = True,
        response_headers: Sequence[tuple[str, str]] = (),
        body: str = DEFAULT_BODY,
        status: int = 200,
        http_mode: str = "none",
        server_name: str = "good.test",
        serve_chain: bool = True,
        seclevel0: bool = False,
        bind: str = "127.0.0.1",
        client_timeout: float = 30.0,
    ) -> None:
        if http_mode not in PYTHON_HTTP_MODES:
            raise ValueError(f"http_mode must be one of {PYTHON_HTTP_MODES}, not {http_mode!r}")
        self.issued, self.server_name, self.bind = issued, server_name, bind
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # OpenSSL 3 refuses TLS 1.0/1.1, weak suites and SHA-1 certificates above security level 0.
        sig_hash = issued.cert.signature_hash_algorithm
        legacy = (
            seclevel0
            or minimum_version < ssl.TLSVersion.TLSv1_2
            or (sig_hash is not None and sig_hash.name in {"sha1", "md5"})
        )
        if legacy:
            base = (ciphers or "DEFAULT").replace(":@SECLEVEL=0", "").replace("@SECLEVEL=0", "")
            context.set_ciphers(base + ":@SECLEVEL=0")
        elif ciphers:
            context.set_ciphers(ciphers)
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is why tests need them
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = minimum_version
            context.maximum_version = maximum_version
        if server_preference:
            context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        context.load_cert_chain(issued.chain_path if serve_chain else issued.cert_path, issued.key_path)
        self.context = context
        self.response_headers, self.body, self.status = list(response_headers), body, status
        self.http_mode, self.client_timeout = http_mode, client_timeout
        self._servers: list[ThreadingHTTPServer] = []
        self.port = 0
        self.http_port: int | None = None

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    @property
    def http_url(self) -> str | None:
        return f"http://{self.server_name}:{self.http_port}/" if self.http_port else None

    def _handler(self, secure: bool) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = site.client_timeout  # also bounds the lazy TLS handshake

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _respond(self, send_body: bool) -> None:
                if not secure and site.http_mode == "redirect":
                    self.send_response(301)
                    host = _host_without_port(self.headers.get("Host") or site.server_name)
                    self.send_header("Location", f"https://{host}:{site.port}{self.path}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = site.body.encode()
                self.send_response(site.status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in site.response_headers:
                    self.send_header(name, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._respond(send_body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._respond(send_body=False)

        return Handler

    def start(self) -> None:
        if self._servers:
            return
        server_class = _QuietHTTPServer6 if ":" in self.bind else _QuietHTTPServer
        https = server_class((self.bind, 0), self._handler(True))
        https.socket = self.context.wrap_socket(https.socket, server_side=True, do_handshake_on_connect=False)
        self.port = https.server_address[1]
        self._servers.append(https)
        if self.http_mode != "none":
            plain = server_class((self.bind, 0), self._handler(False))
            self.http_port = plain.server_address[1]
            self._servers.append(plain)
        for server in self._servers:  # listening already: no need to poll before returning
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                daemon=True,
                name=f"PythonTLSServer:{server.server_address[1]}",
            ).start()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
