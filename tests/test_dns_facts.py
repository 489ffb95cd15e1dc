"""DNS facts from a real DNS server on loopback (dnsmasq): every address of a name, and CAA (RFC 8659)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from auditor.caa import issuer_identifiers, judge_caa
from auditor.config import parse_nameserver
from auditor.scan.dns_facts import DnsError, Resolver
from tests.harness.dns_server import DnsServer, dnsmasq_path

pytestmark = pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed (dnsmasq-base)")

HOSTS = {
    "www.site.test": ["127.0.0.3", "127.0.0.2", "::1"],
    "v6.site.test": ["::1"],
    "one.other.test": ["127.0.0.9"],
}
CAA = {
    "site.test": ['0 issue "ca.test"', '0 issuewild ";"', '0 iodef "mailto:sec@site.test"'],
    "deny.test": ['128 issue ";"'],
}


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    with DnsServer(HOSTS, CAA) as server:
        yield server


def test_every_address_of_the_name_ipv4_first_each_once(dns_server: DnsServer) -> None:
    resolver = Resolver([dns_server.address], timeout=2)
    assert resolver.addresses("www.site.test") == ["127.0.0.2", "127.0.0.3", "::1"]
    assert resolver.addresses("v6.site.test") == ["::1"]


def test_an_ip_literal_is_its_own_address_and_needs_no_dns() -> None:
    assert Resolver(["127.0.0.1:9"], timeout=0.2).addresses("[::1]") == ["::1"]


def test_a_name_without_records_does_not_resolve(dns_server: DnsServer) -> None:
    with pytest.raises(DnsError, match="does not resolve"):
        Resolver([dns_server.address], timeout=2).addresses("missing.site.test")


def test_a_silent_name_server_is_a_timeout_not_a_missing_name() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(DnsError, match="no answer within") as info:
            Resolver([f"127.0.0.1:{port}"], timeout=1.0).addresses("www.site.test")
        elapsed = time.monotonic() - started
    # A and AAAA are asked at once: one timeout, not one per record type (they were 2 s in sequence)
    assert "A: no answer" in str(info.value) and "AAAA: no answer" in str(info.value)
    assert elapsed < 1.7, elapsed


def test_caa_is_found_by_climbing_to_the_parent(dns_server: DnsServer) -> None:
    answer = Resolver([dns_server.address], timeout=2).caa("www.site.test")
    assert answer.owner == "site.test"
    assert answer.issuers() == ["ca.test"]
    assert answer.issuers(wildcard=True) == []  # issuewild ";" forbids wildcard certificates


def test_no_caa_record_anywhere_means_any_ca_may_issue(dns_server: DnsServer) -> None:
    answer = Resolver([dns_server.address], timeout=2).caa("one.other.test")
    assert answer.owner is None and answer.error is None
    assert answer.issuers() is None
    assert judge_caa(answer.issuers(), ("ca.test",), "Test CA").permitted is None


def test_caa_permits_the_named_ca_and_refuses_another(dns_server: DnsServer) -> None:
    allowed = Resolver([dns_server.address], timeout=2).caa("www.site.test").issuers()
    assert judge_caa(allowed, ("ca.test",), "Test CA").permitted is True
    refused = judge_caa(allowed, ("letsencrypt.org",), "Let's Encrypt")
    assert refused.permitted is False and "ca.test" in refused.reason


def test_caa_issue_semicolon_forbids_every_ca(dns_server: DnsServer) -> None:
    answer = Resolver([dns_server.address], timeout=2).caa("x.deny.test")
    assert answer.records[0].critical
    assert judge_caa(answer.issuers(), ("ca.test",), "Test CA").permitted is False


def test_issuer_identifiers_come_from_the_config_then_the_known_cas() -> None:
    assert issuer_identifiers("Test CA", None, {"Test CA": ["CA.test"]}) == ("ca.test",)
    assert issuer_identifiers("Let's Encrypt", "R11", {}) == ("letsencrypt.org",)
    assert issuer_identifiers("Unknown Org", "Unknown CN", {}) == ()
    assert judge_caa(["ca.test"], (), "Unknown Org").permitted is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:53", ("::1", 53)),
        ("::1", ("::1", 53)),
        ("192.0.2.1", ("192.0.2.1", 53)),
    ],
)
def test_name_server_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


def test_a_name_server_given_by_name_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_nameserver("ns.example:53")
