"""Real TLS servers on 127.0.0.1 for tests, benchmarks and the demo: nginx (realistic HTTPS with
headers and cookies), `openssl s_server` (any protocol/suite mix), and a Python `ssl` server
(no system package needed). Each is a context manager and also has start()/stop().
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from auditor.testing.pki import Issued

MODERN_CIPHERS = ("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
                  "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
DEFAULT_BODY = "<!doctype html><html><head><title>test site</title></head><body><p>hello</p></body></html>"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class _Managed:
    def __enter__(self):  # noqa: ANN204
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${dollar}") + '"'


class NginxSite(_Managed):
    """A real nginx (Debian package) serving one HTTPS site, plus its plain-HTTP listener."""

    def __init__(self, directory: Path | None = None, *, issued: Issued, server_name: str = "good.test",
                 serve_chain: bool = True, dual_issued: Issued | None = None,
                 protocols: str = "TLSv1.2 TLSv1.3", ciphers: str = MODERN_CIPHERS,
                 prefer_server_ciphers: bool = True, ecdh_curve: str = "X25519:prime256v1:secp384r1",
                 tls13_ciphersuites: str | None = None, seclevel0: bool = False,
                 hsts: str | None = "max-age=63072000; includeSubDomains", cookies: Sequence[str] = (),
                 body: str = DEFAULT_BODY, extra_headers: Mapping[str, str] | None = None,
                 http_mode: str = "redirect", extra_server: str = "") -> None:
        self.directory = Path(directory or tempfile.mkdtemp(prefix="nginx-site-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.issued, self.dual_issued = issued, dual_issued
        self.server_name, self.serve_chain = server_name, serve_chain
        self.protocols, self.ciphers = protocols, ciphers + (":@SECLEVEL=0" if seclevel0 else "")
        self.prefer_server_ciphers, self.ecdh_curve = prefer_server_ciphers, ecdh_curve
        self.tls13_ciphersuites = tls13_ciphersuites
        self.hsts, self.cookies, self.body = hsts, list(cookies), body
        self.extra_headers = dict(extra_headers or {})
        self.http_mode, self.extra_server = http_mode, extra_server
        self.https_port = free_port()
        self.http_port: int | None = free_port() if http_mode != "none" else None
        self.proc: subprocess.Popen | None = None  # type: ignore[type-arg]

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.https_port}/"

    @property
    def http_url(self) -> str | None:
        return f"http://{self.server_name}:{self.http_port}/" if self.http_port else None

    def _cert_lines(self, issued: Issued) -> str:
        cert = issued.chain_path if self.serve_chain else issued.cert_path
        return f"    ssl_certificate {cert};\n    ssl_certificate_key {issued.key_path};\n"

    def config_text(self) -> str:
        d = self.directory
        (d / "index.html").write_text(self.body)
        headers = []
        if self.hsts:
            headers.append(f"add_header Strict-Transport-Security {_quote(self.hsts)} always;")
        headers += [f"add_header Set-Cookie {_quote(c)} always;" for c in self.cookies]
        headers += [f"add_header {k} {_quote(v)} always;" for k, v in self.extra_headers.items()]
        header_block = "\n    ".join(headers)
        tls13 = (f"    ssl_conf_command Ciphersuites {self.tls13_ciphersuites};\n"
                 if self.tls13_ciphersuites else "")
        certs = self._cert_lines(self.issued) + (self._cert_lines(self.dual_issued) if self.dual_issued else "")
        http_block = ""
        if self.http_port:
            if self.http_mode == "redirect":
                action = f"return 301 https://$host:{self.https_port}$request_uri;"
            elif self.http_mode == "http-redirect":
                action = "return 301 http://elsewhere.test$request_uri;"
            else:
                action = f"root {d}; index index.html; {header_block}"
            http_block = f"""
  server {{
    listen 127.0.0.1:{self.http_port};
    server_name {self.server_name};
    {action}
  }}"""
        user = "user root;\n" if os.geteuid() == 0 else ""
        return f"""{user}worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
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
    ssl_prefer_server_ciphers {'on' if self.prefer_server_ciphers else 'off'};
    ssl_ecdh_curve {self.ecdh_curve};
{tls13}    ssl_session_tickets off;
    root {d};
    index index.html;
    {header_block}
    {self.extra_server}
  }}{http_block}
}}
"""

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config_text())
        self.proc = subprocess.Popen([nginx, "-p", str(self.directory), "-c", str(conf), "-e",
                                      str(self.directory / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_for_port(self.https_port, proc=self.proc)
            if self.http_port:
                wait_for_port(self.http_port, proc=self.proc)
        except RuntimeError as exc:
            self.stop()
            log = (self.directory / "error.log").read_text() if (self.directory / "error.log").exists() else ""
            raise RuntimeError(f"nginx did not start: {exc}\n{log}") from None

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None


class OpenSSLServer(_Managed):
    """`openssl s_server -www` with caller-chosen flags (e.g. ['-tls1', '-cipher', 'AES128-SHA@SECLEVEL=0'])."""

    def __init__(self, issued: Issued, args: Sequence[str] = (), *, serve_chain: bool = True,
                 server_name: str = "good.test") -> None:
        self.issued, self.args, self.serve_chain, self.server_name = issued, list(args), serve_chain, server_name
        self.port = free_port()
        self.proc: subprocess.Popen | None = None  # type: ignore[type-arg]

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    def start(self) -> None:
        cmd = ["openssl", "s_server", "-accept", f"127.0.0.1:{self.port}", "-cert", str(self.issued.cert_path),
               "-key", str(self.issued.key_path), "-www", "-quiet"]
        if self.serve_chain:
            chain = self.issued.chain_path.read_bytes().split(b"-----END CERTIFICATE-----", 1)[1].strip()
            if chain:
                extra = self.issued.chain_path.with_suffix(".extra.pem")
                extra.write_bytes(chain + b"\n")
                cmd += ["-cert_chain", str(extra)]
        cmd += self.args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_for_port(self.port, proc=self.proc)
        except RuntimeError as exc:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            self.stop()
            raise RuntimeError(f"openssl s_server did not start: {exc}\n{err}") from None

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None


def _terminate(proc: subprocess.Popen | None) -> None:  # type: ignore[type-arg]
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        pass  # scanners abort hundreds of handshakes: not an error worth printing


class _QuietHTTPServer6(_QuietHTTPServer):
    address_family = socket.AF_INET6


class PythonTLSServer(_Managed):
    """An HTTPS server on the stdlib (`ssl` + `http.server`), with an optional plain-HTTP listener."""

    def __init__(self, issued: Issued, *, minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
                 maximum_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED, ciphers: str | None = None,
                 server_preference: bool = True, response_headers: Sequence[tuple[str, str]] = (),
                 body: str = DEFAULT_BODY, status: int = 200, http_mode: str = "none",
                 server_name: str = "good.test", serve_chain: bool = True, seclevel0: bool = False,
                 bind: str = "127.0.0.1") -> None:
        self.issued, self.server_name, self.bind = issued, server_name, bind
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # OpenSSL 3 refuses TLS 1.0/1.1, weak suites and SHA-1 certificates above security level 0.
        legacy = seclevel0 or minimum_version < ssl.TLSVersion.TLSv1_2 or issued.cert.signature_hash_algorithm is not None \
            and issued.cert.signature_hash_algorithm.name in {"sha1", "md5"}
        if legacy:
            context.set_ciphers((ciphers or "DEFAULT").replace(":@SECLEVEL=0", "") + ":@SECLEVEL=0")
        elif ciphers:
            context.set_ciphers(ciphers)
        context.minimum_version = minimum_version
        context.maximum_version = maximum_version
        if server_preference:
            context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        context.load_cert_chain(issued.chain_path if serve_chain else issued.cert_path, issued.key_path)
        self.context = context
        self.response_headers, self.body, self.status = list(response_headers), body, status
        self.http_mode = http_mode
        self._servers: list[ThreadingHTTPServer] = []
        self.port = 0
        self.http_port: int | None = None

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    def _handler(self, secure: bool) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                if not secure and site.http_mode == "redirect":
                    self.send_response(301)
                    host = (self.headers.get("Host") or site.server_name).split(":")[0]
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
                self.wfile.write(data)

        return Handler

    def start(self) -> None:
        server_class = _QuietHTTPServer6 if ":" in self.bind else _QuietHTTPServer
        https = server_class((self.bind, 0), self._handler(True), bind_and_activate=True)
        https.socket = self.context.wrap_socket(https.socket, server_side=True, do_handshake_on_connect=False)
        self.port = https.server_address[1]
        self._servers.append(https)
        if self.http_mode != "none":
            plain = server_class((self.bind, 0), self._handler(False))
            self.http_port = plain.server_address[1]
            self._servers.append(plain)
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
