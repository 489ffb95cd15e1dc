"""What DNS says about a site: every address of the name (A and AAAA) and its CAA policy (RFC 8659).

Addresses come from the system resolver (`getaddrinfo`: /etc/hosts, nsswitch, resolv.conf), as a
browser on the auditing machine would reach the site, unless `[dns] nameservers` names servers to
ask instead (then dnspython asks them directly, nothing else). CAA always goes through dnspython:
the system resolver has no CAA lookup; without configured servers it reads /etc/resolv.conf.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from auditor.config import Dns, parse_nameserver
from auditor.errors import ScanError
from auditor.model import CaaFacts, CaaRecord, DnsFacts


class DnsError(ScanError):
    """The name could not be resolved: one line a user can read (the target is not audited)."""


@dataclass
class Resolver:
    """Address and CAA lookups, with one timeout per query, against the configured servers or the system's."""

    nameservers: Sequence[str] = ()  # "127.0.0.1:5353", "[::1]:53", "192.0.2.1" (port 53)
    timeout: float = 5.0
    _dns: dns.resolver.Resolver = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.nameservers:
            self._dns = dns.resolver.Resolver(configure=False)
            servers = [parse_nameserver(s) for s in self.nameservers]
            self._dns.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in servers]
        else:
            try:
                self._dns = dns.resolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration:
                self._dns = dns.resolver.Resolver(configure=False)
                self._dns.nameservers = ["127.0.0.1"]
        self._dns.lifetime = self.timeout
        self._dns.timeout = self.timeout

    def addresses(self, name: str) -> list[str]:
        """Every IPv4 then IPv6 address of `name`, each once, in a stable order. An IP literal is itself."""
        literal = ip_literal(name)
        if literal is not None:
            return [literal]
        found = self._from_dns(name) if self.nameservers else self._from_system(name)
        if not found:
            raise DnsError(f"host {name!r} does not resolve (no A or AAAA record)")
        return ordered(found)

    def _from_system(self, name: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise DnsError(f"host {name!r} does not resolve ({exc.strerror})") from None
        return [str(info[4][0]) for info in infos]

    def _from_dns(self, name: str) -> list[str]:
        """A and AAAA asked at once: a silent server costs one timeout, not two."""
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dns") as pool:
            answers = list(pool.map(lambda rdtype: self._ask(name, rdtype), ("A", "AAAA")))
        found = [address for addresses, _ in answers for address in addresses]
        failures = [failure for _, failure in answers if failure]
        if not found and failures:
            raise DnsError(f"host {name!r} could not be resolved ({'; '.join(failures)})")
        return found

    def _ask(self, name: str, rdtype: str) -> tuple[list[str], str | None]:
        """The addresses of one record type, or why the question got no answer."""
        try:
            answer = self._dns.resolve(name, rdtype, search=False)
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            return [], None
        except dns.exception.Timeout:
            return [], f"{rdtype}: no answer within {self.timeout:g} s"
        except dns.exception.DNSException as exc:
            return [], f"{rdtype}: {exc}"
        return [r.to_text() for r in answer], None

    def caa(self, name: str) -> CaaFacts:
        """The relevant CAA RRset of `name` (RFC 8659 §3): climb to the parent until one is found."""
        if ip_literal(name) is not None:
            return CaaFacts(error="an IP address has no CAA records")
        current = dns.name.from_text(name)
        while len(current.labels) > 2:  # "site.test." has 3 labels: the TLD ("test.") is not asked
            try:
                answer = self._dns.resolve(current, dns.rdatatype.CAA, search=False, raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                answer = None
            except dns.exception.Timeout:
                return CaaFacts(error=f"CAA lookup of {current.to_text(omit_final_dot=True)} timed out")
            except dns.exception.DNSException as exc:
                return CaaFacts(error=f"CAA lookup of {current.to_text(omit_final_dot=True)} failed: {exc}")
            if answer is not None and answer.rrset is not None and len(answer.rrset):
                records = sorted(  # an RRset has no order: a stable one keeps the evidence comparable
                    (
                        CaaRecord(
                            flags=r.flags,
                            tag=r.tag.decode("ascii", "replace"),
                            value=r.value.decode("utf-8", "replace"),
                        )
                        for r in answer.rrset
                    ),
                    key=lambda r: (r.tag, r.value, r.flags),
                )
                return CaaFacts(owner=current.to_text(omit_final_dot=True), records=records)
            current = current.parent()
        return CaaFacts()


def dns_facts(host: str, settings: Dns, timeout: float) -> DnsFacts:
    """Every address of the name `host` and its CAA answer, asked of the [dns] nameservers or the
    system's resolver. DnsError when the name does not resolve."""
    resolver = Resolver(settings.nameservers, timeout)
    addresses = resolver.addresses(host)
    return DnsFacts(
        source="nameservers" if settings.nameservers else "system",
        addresses=addresses,
        caa=resolver.caa(host),
    )


def ordered(addresses: Sequence[str]) -> list[str]:
    """IPv4 first, then IPv6, each once, in address order (a resolver's rotation is no change)."""
    parsed = {ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses}
    return [str(a) for a in sorted(parsed, key=lambda a: (a.version, a))]


def ip_literal(name: str) -> str | None:
    """`name` as a normalised IP address ("[::1]" -> "::1"), or None when it is a host name."""
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return None
