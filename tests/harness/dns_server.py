"""A real DNS server on loopback for the tests: Debian's dnsmasq (package dnsmasq-base, the binary
without its service), authoritative for the test names it is given, forwarding nothing.

    with DnsServer(hosts={"www.site.test": ["127.0.0.2", "::1"]}, caa={"site.test": ["0 issue \"ca.test\""]}) as dns:
        ... nameservers = [dns.address]
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

DNSMASQ_CANDIDATES = ("dnsmasq", "/usr/sbin/dnsmasq")


def dnsmasq_path() -> str | None:
    """The dnsmasq binary, or None (the tests that need it skip with that reason)."""
    for candidate in DNSMASQ_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DnsServer:
    """dnsmasq on 127.0.0.1:<port>, answering A/AAAA from `hosts` and CAA from `caa` for `domain`.

    `caa` maps a name to records written "flags tag value" (e.g. '0 issue "ca.test"'). Names under
    `domain` that have no record get NXDOMAIN/NODATA locally: dnsmasq never forwards a query.
    """

    def __init__(
        self,
        hosts: Mapping[str, Sequence[str]],
        caa: Mapping[str, Sequence[str]] | None = None,
        domain: str = "test",
    ) -> None:
        self.hosts = hosts
        self.caa = caa or {}
        self.domain = domain
        self.port = _free_udp_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _arguments(self, binary: str) -> list[str]:
        args = [
            binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            f"--local=/{self.domain}/",
            "--user=root" if _is_root() else "",
        ]
        for name, addresses in self.hosts.items():
            args.extend(f"--host-record={name},{address}" for address in addresses)
        for name, records in self.caa.items():
            for record in records:
                flags, tag, value = record.split(" ", 2)
                args.append(f"--caa-record={name},{flags},{tag},{value.strip(chr(34))}")
        return [a for a in args if a]

    def __enter__(self) -> DnsServer:
        binary = dnsmasq_path()
        if binary is None:
            raise RuntimeError("dnsmasq is not installed (Debian package dnsmasq-base)")
        self._process = subprocess.Popen(
            self._arguments(binary), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Ready when it answers a query (dnsmasq binds before it reads its records: ask until it answers)."""
        import dns.message
        import dns.query

        query = dns.message.make_query(f"ready.{self.domain}", "A")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"dnsmasq exited: {err.strip()}")
            try:
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
                return
            except (TimeoutError, OSError, dns.exception.Timeout):
                time.sleep(0.05)
        raise RuntimeError("dnsmasq did not answer within 10 s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stderr:
                self._process.stderr.close()


def _is_root() -> bool:
    import os

    return os.geteuid() == 0
