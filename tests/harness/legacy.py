"""A real OpenSSL 1.0.1e `s_server` for tests: the grade rows Debian's OpenSSL 3 cannot serve (SSL 2.0/3.0,
Heartbleed, CCS injection, export, NULL, anonymous, RC4, DES, 3DES, IDEA). The binary is the static
build sslyze's own tests use, kept in ../shared/legacy-openssl beside the repository (see its README).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from auditor.demo_site import Issued
from tests.harness.process_server import ProcessServer, free_port, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LEGACY_DIR = REPO_ROOT.parent / "shared" / "legacy-openssl"
LEGACY_OPENSSL = LEGACY_DIR / "openssl-1.0.1e"
# Everything the build has: its 1.0.1e "ALL" leaves out NULL, and SSL 2.0 suites need naming.
ALL_LEGACY_CIPHERS = "ALL:eNULL:EXPORT:SSLv2"

_DH_LOCK = threading.Lock()


def legacy_openssl_available() -> bool:
    """True when ../shared/legacy-openssl/openssl-1.0.1e exists and may be run (tests skip otherwise)."""
    return LEGACY_OPENSSL.is_file() and os.access(LEGACY_OPENSSL, os.X_OK)


def dh_params(bits: int, directory: Path | None = None) -> Path:
    """A PEM file of `bits`-bit DH parameters, made once per directory by Debian's `openssl dhparam`
    (it still generates 512-bit groups, in well under a second)."""
    folder = Path(directory or Path(tempfile.gettempdir()) / f"auditor-dhparams-{os.getuid()}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dh{bits}.pem"
    with _DH_LOCK:
        if not path.exists():
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            subprocess.run(
                ["openssl", "dhparam", "-out", str(partial), str(bits)],
                check=True,
                capture_output=True,
                timeout=300,
            )
            partial.replace(path)  # atomic: a parallel test never reads half a file
    return path


class LegacyOpenSSLServer(ProcessServer):
    """OpenSSL 1.0.1e `s_server -www` with caller-chosen flags (e.g. ['-ssl3', '-cipher', 'RC4']).

    It listens on every local address (its `-accept` takes only a port) and exits when its stdin
    closes, so stdin stays a pipe until stop(). It cannot load modern keys: issue RSA leaves from an
    RSA PKI (TestPKI(dir, ca_keys="rsa")). `dhparam_bits=None` leaves DHE suites on the build's
    built-in 512-bit group (which triggers Logjam); pass 2048 for a server that must not, or
    '-no_dhe' in `args`.
    """

    label = "legacy openssl s_server"
    stdin = subprocess.PIPE
    stdout = subprocess.PIPE

    def __init__(
        self,
        issued: Issued,
        args: Sequence[str] = (),
        *,
        serve_chain: bool = True,
        server_name: str = "good.test",
        dhparam_bits: int | None = None,
    ) -> None:
        self.issued, self.args, self.serve_chain, self.server_name = (
            issued,
            list(args),
            serve_chain,
            server_name,
        )
        self.dhparam_bits = dhparam_bits
        self.port = free_port()
        super().__init__()

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}/"

    def command(self) -> list[str]:
        # 1.0.1e has no -cert_chain: with no extra certificates set, 1.0.x builds the chain it sends
        # from the verify store, so -CAfile holding only the intermediate sends leaf + intermediate.
        cmd = [
            str(LEGACY_OPENSSL),
            "s_server",
            "-accept",
            str(self.port),
            "-cert",
            str(self.issued.cert_path),
            "-key",
            str(self.issued.key_path),
            "-www",
        ]
        if self.serve_chain:
            chain = self.issued.chain_path.read_bytes().split(b"-----END CERTIFICATE-----", 1)[1].strip()
            if chain:
                extra = self.issued.chain_path.with_suffix(".extra.pem")
                extra.write_bytes(chain + b"\n")
                cmd += ["-CAfile", str(extra)]
        if self.dhparam_bits:
            cmd += ["-dhparam", str(dh_params(self.dhparam_bits))]
        return cmd + self.args

    def environment(self) -> dict[str, str]:
        return {**os.environ, "OPENSSL_CONF": "/dev/null"}

    def start(self) -> None:
        if self.proc is None and not legacy_openssl_available():
            raise RuntimeError(f"{LEGACY_OPENSSL} is absent or not executable")
        super().start()

    def wait_ready(self) -> None:
        """Wait for "ACCEPT" on stdout, then drain stdout in a thread (it prints per connection)."""
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        ready = threading.Event()

        def drain() -> None:
            for line in iter(stdout.readline, b""):
                if line.startswith(b"ACCEPT"):
                    ready.set()
            ready.set()  # EOF: the process died; the poll below says so

        threading.Thread(target=drain, daemon=True, name=f"LegacyOpenSSLServer:{self.port}").start()
        if not ready.wait(15) or self.proc.poll() is not None:
            raise RuntimeError(f"no ACCEPT (exit status {self.proc.poll()})")
        wait_for_port(self.port, timeout=5, proc=self.proc)
