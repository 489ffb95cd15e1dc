"""A real DNS server on loopback for the tests: Debian's dnsmasq (package dnsmasq-base, the binary
without its service), authoritative for the test names it is given, forwarding nothing.

    with DnsServer(hosts={"www.site.test": ["127.0.0.2", "::1"]}, caa={"site.test": ["0 issue \"ca.test\""]}) as dns:
        ... nameservers = [dns.address]
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Mapping, Sequence

import dns.exception
import dns.message
import dns.query

from tests.harness.process_server import ProcessServer

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


class DnsServer(ProcessServer):
    """dnsmasq on 127.0.0.1:<port>, answering A/AAAA from `hosts` and CAA from `caa` for `domain`.

    `caa` maps a name to records written "flags tag value" (e.g. '0 issue "ca.test"'). Names under
    `domain` that have no record get NXDOMAIN/NODATA locally: dnsmasq never forwards a query.
    """

    label = "dnsmasq"

    def __init__(
        self,
        hosts: Mapping[str, Sequence[str]],
        caa: Mapping[str, Sequence[str]] | None = None,
        domain: str = "test",
    ) -> None:
        super().__init__()
        self.hosts = hosts
        self.caa = caa or {}
        self.domain = domain
        self.port = _free_udp_port()

    @property
    def address(self) -> str:
        """What `[dns] nameservers` takes."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = dnsmasq_path()
        if binary is None:
            raise RuntimeError("dnsmasq is not installed (Debian package dnsmasq-base)")
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
            "--user=root" if os.geteuid() == 0 else "",  # as root it would switch to user nobody
        ]
        for name, addresses in self.hosts.items():
            args.extend(f"--host-record={name},{address}" for address in addresses)
        for name, records in self.caa.items():
            for record in records:
                flags, tag, value = record.split(" ", 2)
                args.append(f"--caa-record={name},{flags},{tag},{value.strip(chr(34))}")
        return [a for a in args if a]

    def wait_ready(self) -> None:
        """Ready when it answers a query over UDP (what the resolver uses)."""
        query = dns.message.make_query(f"ready.{self.domain}", "A")
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited with status {self.proc.returncode}")
            try:
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
                return
            except (OSError, dns.exception.Timeout):
                time.sleep(0.05)
        raise RuntimeError(f"dnsmasq did not answer within {self.ready_timeout:g} s")
