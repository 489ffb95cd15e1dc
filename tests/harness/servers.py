"""Real TLS servers on 127.0.0.1 for tests and benchmarks: nginx (realistic HTTPS with headers and
cookies), `openssl s_server` (any protocol/suite mix), and a Python `ssl` server (no system package
needed; the demo's DemoSite with the knobs only tests turn). Each is a context manager and also has
start()/stop().
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from auditor.demo_site import DEFAULT_BODY, DemoSite, Issued
from tests.harness.process_server import ProcessServer, free_port, read_log, wait_for_port

__all__ = [
    "DEFAULT_BODY",
    "MODERN_CIPHERS",
    "NGINX_HTTP_MODES",
    "PYTHON_HTTP_MODES",
    "NginxSite",
    "OpenSSLServer",
    "PythonTLSServer",
    "free_port",
    "wait_for_port",
]

MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
)
NGINX_HTTP_MODES = ("redirect", "content", "http-redirect", "none")
PYTHON_HTTP_MODES = ("redirect", "content", "none")


def _quote(value: str) -> str:
    """An nginx string literal; `$` goes through the `$dollar` variable so no variable expands."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${dollar}") + '"'


class NginxSite(ProcessServer):
    """A real nginx (Debian package) serving one HTTPS site, plus its plain-HTTP listener.

    Its own master in `directory` (config, pid, logs, temp paths), run with `daemon off` in a new
    session so stop() can kill the whole process group. Defaults are a policy-compliant site.
    """

    label = "nginx"

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
        address: str = "127.0.0.1",
        https_port: int | None = None,
        http_port: int | None = None,
    ) -> None:
        """`address`, `https_port`, `http_port`: where it listens (one name's endpoints share the ports
        on several loopback addresses, e.g. 127.0.0.2 and ::1); ports default to free ones."""
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
        self.address = address
        self.https_port = https_port or free_port()
        self.http_port: int | None = None if http_mode == "none" else http_port
        while http_mode != "none" and self.http_port in (None, self.https_port):
            self.http_port = free_port()
        super().__init__()

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.https_port}/"

    @property
    def http_url(self) -> str | None:
        return f"http://{self.server_name}:{self.http_port}/" if self.http_port else None

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def _listen(self, port: int | None) -> str:
        return f"[{self.address}]:{port}" if ":" in self.address else f"{self.address}:{port}"

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
    listen {self._listen(self.http_port)};
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
    listen {self._listen(self.https_port)} ssl;
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

    @property
    def port(self) -> int:  # type: ignore[override]  # ProcessServer waits on this one first
        return self.https_port

    def prepare(self) -> None:
        (self.directory / "www").mkdir(parents=True, exist_ok=True)
        (self.directory / "www" / "index.html").write_text(self.body)
        (self.directory / "nginx.conf").write_text(self.config_text())
        self.error_log.unlink(missing_ok=True)

    def command(self) -> list[str]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.directory / "nginx.conf"
        # -e: the Debian build logs to stderr until the config is read; -p: relative paths stay here.
        return [nginx, "-p", f"{self.directory}/", "-c", str(conf), "-e", str(self.error_log)]

    def wait_ready(self) -> None:
        wait_for_port(self.https_port, timeout=self.ready_timeout, proc=self.proc, host=self.address)
        if self.http_port:
            wait_for_port(self.http_port, proc=self.proc, host=self.address)

    def log_text(self) -> str:
        return read_log(self.error_log) + super().log_text()

    def cleanup(self) -> None:
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


class OpenSSLServer(ProcessServer):
    """`openssl s_server -www` with caller-chosen flags (e.g. ['-tls1', '-cipher', 'AES128-SHA@SECLEVEL=0']):
    reaches protocol/suite combinations nginx will not configure."""

    label = "openssl s_server"

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
        super().__init__()

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    def command(self) -> list[str]:
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
        return cmd + self.args


class PythonTLSServer(DemoSite):
    """The demo's stdlib HTTPS server with what only tests need: security level 0 (also chosen for
    SHA-1/MD5 certificates), no server suite preference, a leaf served without its chain, an IPv6
    bind, a status other than 200, a short client timeout.
    """

    http_modes = PYTHON_HTTP_MODES

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
        self.server_preference, self.serve_chain, self.seclevel0 = server_preference, serve_chain, seclevel0
        super().__init__(
            issued,
            minimum_version=minimum_version,
            maximum_version=maximum_version,
            ciphers=ciphers,
            response_headers=response_headers,
            body=body,
            status=status,
            http_mode=http_mode,
            server_name=server_name,
            bind=bind,
            client_timeout=client_timeout,
        )

    def _legacy(self) -> bool:
        # OpenSSL 3 refuses TLS 1.0/1.1, weak suites and SHA-1 certificates above security level 0.
        sig_hash = self.issued.cert.signature_hash_algorithm
        return (
            self.seclevel0 or super()._legacy() or (sig_hash is not None and sig_hash.name in {"sha1", "md5"})
        )

    def _context(self) -> ssl.SSLContext:
        context = super()._context()
        if not self.server_preference:
            context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        return context

    def _certificate_file(self) -> Path:
        return self.issued.chain_path if self.serve_chain else self.issued.cert_path
