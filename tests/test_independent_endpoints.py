"""Independent verdict tests for issue 15, written from the specifications, not from the code:
every endpoint of a name, DNS facts (CAA, RFC 8659), Certificate Transparency (RFC 6962 and the
browsers' CT policies) and protocol facts (RFC 8446 tickets and 0-RTT, RFC 7301 ALPN).

Everything runs on loopback: dnsmasq answers A/AAAA/CAA/CNAME for `.test` names; nginx sites listen
on 127.0.0.2 (compliant), 127.0.0.3 (a NULL suite: grade F), ::1 (a certificate from a CA the
auditor does not trust: grade T), 127.0.0.4 (a wildcard certificate) and 127.0.0.5 (stapling, h2,
tickets, 0-RTT); a tarpit accepts TCP on 127.0.0.6/7/8 and never answers; a UDP socket swallows
DNS queries. Four CLI runs, module-scoped, carry all the assertions.

A publicly trusted certificate cannot be built locally (no public CA signs for `.test`), so the
CT policy verdict itself (`cert-ct-too-few-scts`) is not exercised here: only that a private-CA
certificate gets evidence, never a warning.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliRun, run_cli
from tests.harness.dns_server import DnsServer, dnsmasq_path
from tests.harness.ocsp import ocsp_response
from tests.harness.pki import Issued, TestPKI
from tests.harness.servers import NginxSite, free_port

pytestmark = [
    pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed (dnsmasq-base)"),
]

GOOD, WEAK, V6, WILD, FACTS = "127.0.0.2", "127.0.0.3", "::1", "127.0.0.4", "127.0.0.5"
TARPITS = ("127.0.0.6", "127.0.0.7", "127.0.0.8")
NULL_SUITES = "NULL-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"

# name -> (address the name resolves to, CAA records at its owner name); None: no CAA anywhere
CAA_CASES: dict[str, tuple[str, dict[str, list[str]]]] = {
    "www.ok.test": (GOOD, {"ok.test": ['0 issue "ca.test"']}),
    "www.other.test": (GOOD, {"other.test": ['0 issue "other-ca.example"']}),
    "www.semi.test": (GOOD, {"semi.test": ['0 issue ";"']}),
    "www.upper.test": (GOOD, {"upper.test": ['0 ISSUE "ca.test"']}),
    "www.param.test": (GOOD, {"param.test": ['0 issue "ca.test; account=1"']}),
    "www.param2.test": (GOOD, {"param2.test": ['0 issue "  ca.test;account=1 policy=ev"']}),
    "www.crit.test": (GOOD, {"crit.test": ['128 tbs "x"', '0 issue "ca.test"']}),
    "www.noncrit.test": (GOOD, {"noncrit.test": ['0 tbs "x"', '0 issue "ca.test"']}),
    "www.iodef.test": (GOOD, {"iodef.test": ['0 iodef "mailto:sec@iodef.test"']}),
    "www.deep.parent.test": (GOOD, {"parent.test": ['0 issue "ca.test"']}),
    "www.sub.closer.test": (
        GOOD,
        {"closer.test": ['0 issue "other-ca.example"'], "sub.closer.test": ['0 issue "ca.test"']},
    ),
    "www.none.test": (GOOD, {}),
    # a non-wildcard certificate: issuewild is irrelevant, issue decides
    "www.nw.test": (GOOD, {"nw.test": ['0 issue "other-ca.example"', '0 issuewild "ca.test"']}),
    "www.nw2.test": (GOOD, {"nw2.test": ['0 issue "ca.test"', '0 issuewild ";"']}),
    # a wildcard certificate (*.wN.test): issuewild, when present, decides
    "www.w1.test": (WILD, {"w1.test": ['0 issue "other-ca.example"', '0 issuewild "ca.test"']}),
    "www.w2.test": (WILD, {"w2.test": ['0 issue "ca.test"', '0 issuewild ";"']}),
    "www.w3.test": (WILD, {"w3.test": ['0 issue "ca.test"']}),
}
# www.alias.test is a CNAME to web.target.test: its CAA RRset is the alias target's (RFC 8659 s3)
ALIAS, ALIAS_TARGET = "www.alias.test", "web.target.test"
ALIAS_CAA = {"alias.test": ['0 issue "other-ca.example"'], ALIAS_TARGET: ['0 issue "ca.test"']}
# name -> is the CA of the served certificate (O=Auditor Test -> "ca.test") permitted?
PERMITTED = {
    "www.ok.test": True,
    "www.other.test": False,
    "www.semi.test": False,
    "www.upper.test": True,  # RFC 8659 s4.1: tags match case-insensitively
    "www.param.test": True,  # s4.2: parameters after ";" do not change the issuer-domain-name
    "www.param2.test": True,
    "www.crit.test": False,  # s4.5: a critical unknown tag forbids issuance
    "www.noncrit.test": True,  # an unknown non-critical tag is ignored
    "www.iodef.test": True,  # s4: no issue/issuewild property: CAA does not restrict issuance
    "www.deep.parent.test": True,  # s3: climb to the parent
    "www.sub.closer.test": True,  # s3: the first RRset found while climbing is the relevant one
    "www.nw.test": False,
    "www.nw2.test": True,
    "www.w1.test": True,  # s4.3: issuewild takes precedence for a wildcard certificate
    "www.w2.test": False,
    "www.w3.test": True,  # s4.3: no issuewild: issue applies to wildcards too
    ALIAS: True,
}
OWNER = {
    "www.deep.parent.test": "parent.test",
    "www.sub.closer.test": "sub.closer.test",
}
MULTI, TWO, FACTS_NAME = "www.multi.test", "www.two.test", "www.facts.test"
NO_ADDRESS, NXDOMAIN, BLACKHOLED = "noaddr.test", "www.nothing.test", "www.void.test"


class CnameDnsServer(DnsServer):
    """The harness's dnsmasq plus `--cname` aliases (the target must be a name it serves)."""

    def __init__(self, *args: Any, cnames: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cnames = cnames

    def command(self) -> list[str]:
        return super().command() + [f"--cname={alias},{target}" for alias, target in self.cnames.items()]


@dataclass
class Lab:
    """Every server of the module, and the ports every endpoint of a name shares."""

    pki: TestPKI
    directory: Path
    https_port: int
    http_port: int
    h2_port: int
    dns: DnsServer
    blackhole: socket.socket
    tarpits: list[socket.socket]

    def url(self, host: str, port: int | None = None) -> str:
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{port or self.https_port}/"

    @property
    def blackhole_address(self) -> str:
        return f"127.0.0.1:{self.blackhole.getsockname()[1]}"


def _hosts() -> dict[str, list[str]]:
    hosts = {name: [address] for name, (address, _) in CAA_CASES.items()}
    hosts |= {ALIAS_TARGET: [GOOD], MULTI: [GOOD, WEAK, V6], TWO: [GOOD], FACTS_NAME: [FACTS]}
    return hosts


def _caa() -> dict[str, list[str]]:
    caa: dict[str, list[str]] = {NO_ADDRESS: ['0 issue "ca.test"']}
    for _, records in CAA_CASES.values():
        caa |= records
    return caa | ALIAS_CAA


@pytest.fixture(scope="module")
def lab(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("independent-endpoints")
    names = [*CAA_CASES, ALIAS, MULTI, TWO, GOOD]
    plain = pki.issue("indep-plain", hosts=[n for n in names if not n.startswith("www.w")])
    wildcard = pki.issue("indep-wild", hosts=["*.w1.test", "*.w2.test", "*.w3.test"])
    stranger = TestPKI(directory / "stranger-pki").issue("indep-stranger", hosts=[MULTI])
    facts = pki.issue("indep-facts", hosts=[FACTS_NAME])
    staple = directory / "staple.der"
    staple.write_bytes(ocsp_response(pki, facts.cert, "good"))
    https_port, http_port, h2_port = free_port(), free_port(), free_port()
    facts_extra = (
        f"ssl_stapling on;\n    ssl_stapling_file {staple};\n    ssl_session_cache shared:indep:1m;\n"
        "    ssl_conf_command Options SessionTicket;\n    ssl_early_data on;\n"
        f"    listen {FACTS}:{h2_port} ssl http2;"
    )

    def endpoint(
        label: str, issued: Issued, address: str, server_name: str = MULTI, **config: Any
    ) -> NginxSite:
        """One endpoint: every address listens on the same two ports, as one name's servers do."""
        return NginxSite(
            directory / label,
            issued=issued,
            server_name=server_name,
            address=address,
            https_port=https_port,
            http_port=http_port,
            **config,
        )

    sites = [
        endpoint("good", plain, GOOD),
        endpoint("weak", plain, WEAK, ciphers=NULL_SUITES, seclevel0=True),
        endpoint("v6", stranger, V6),
        endpoint("wild", wildcard, WILD, server_name="www.w1.test"),
        endpoint("facts", facts, FACTS, server_name=FACTS_NAME, extra_server=facts_extra),
    ]
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blackhole.bind(("127.0.0.1", 0))
    tarpits: list[socket.socket] = []
    started: list[NginxSite] = []
    try:
        for address in TARPITS:  # completes TCP handshakes from its backlog, never reads a byte
            pit = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tarpits.append(pit)
            pit.bind((address, https_port))
            pit.listen(64)
        with CnameDnsServer(_hosts(), _caa(), cnames={ALIAS: ALIAS_TARGET}) as dns:
            for site in sites:
                site.start()
                started.append(site)
            yield Lab(pki, directory, https_port, http_port, h2_port, dns, blackhole, tarpits)
    finally:
        for site in started:
            site.stop()
        for sock in [blackhole, *tarpits]:
            sock.close()


def _run(config: Path, *extra: str) -> tuple[CliRun, float]:
    began = time.monotonic()
    run = run_cli("audit", "--config", str(config), "--json", "-", "--quiet", *extra)
    assert "Traceback" not in run.stderr, run.stderr
    return run, time.monotonic() - began


def _target_entries(lab: Lab, names: list[str], extra: str = "") -> str:
    return "".join(
        f'[[targets]]\nurl = "{lab.url(name)}"\nca_bundle = "{lab.pki.root_path}"\n'
        f"http_port = {lab.http_port}\n{extra}"
        for name in names
    )


@pytest.fixture(scope="module")
def dns_run(lab: Lab) -> dict[str, dict[str, Any]]:
    """One audit over every DNS-resolved name, plus `ips` and the facts site: targets by host."""
    names = [*CAA_CASES, ALIAS, MULTI, NO_ADDRESS, NXDOMAIN]
    entries = _target_entries(lab, names)
    entries += _target_entries(lab, [TWO], f'ips = ["{GOOD}", "{WEAK}"]\n')
    entries += (
        f'[[targets]]\nurl = "{lab.url(FACTS_NAME, lab.h2_port)}"\nca_bundle = "{lab.pki.root_path}"\n'
        f'http_port = {lab.http_port}\nip = "{FACTS}"\n'
    )
    config = lab.directory / "dns.toml"
    config.write_text(
        "[scan]\nconcurrency = 4\nocsp = false\n[output]\nwrite_json = false\n"
        f'[dns]\nnameservers = ["{lab.dns.address}"]\nrequire_caa = true\n'
        f'ca_identifiers = {{"Auditor Test" = ["ca.test"]}}\n{entries}'
    )
    run, _ = _run(config)
    assert run.code == 3, run.stdout + run.stderr  # the names without addresses are not audited
    return {t["target"]["host"]: t for t in run.report["targets"]}


@pytest.fixture(scope="module")
def slow_run(lab: Lab) -> tuple[dict[str, dict[str, Any]], float]:
    """An IP literal and a name, with a name server that never answers; and three tarpit endpoints
    sharing one target budget."""
    entries = _target_entries(lab, [GOOD, BLACKHOLED])
    entries += _target_entries(lab, ["www.pit.test"], f"ips = {list(TARPITS)!r}\n".replace("'", '"'))
    config = lab.directory / "slow.toml"
    config.write_text(
        "[scan]\nconcurrency = 3\nocsp = false\ntimeout = 4\ntarget_timeout = 12\n"
        f'[output]\nwrite_json = false\n[dns]\nnameservers = ["{lab.blackhole_address}"]\n{entries}'
    )
    run, elapsed = _run(config)
    assert run.code == 3, run.stdout + run.stderr
    return {t["target"]["host"]: t for t in run.report["targets"]}, elapsed


def _caa_warnings(target: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        f
        for f in target["findings"]
        if f["clause"] == "11.2-cert-trusted" and f["status"] == "warn" and "caa" in f["result_id"]
    ]


def _named_addresses(title: str) -> set[str]:
    """The addresses a finding names: "<title> on k of n endpoints: a, b"."""
    return set(title.rsplit(" endpoints: ", 1)[1].split(", "))


def _failing(endpoint: dict[str, Any], clause: str) -> bool:
    return any(f["clause"] == clause and f["status"] == "fail" for f in endpoint["findings"])


# ---------------------------------------------------------------- endpoints


def test_three_endpoints_worst_decides_and_t_ranks_below_f(dns_run: dict[str, dict[str, Any]]) -> None:
    target = dns_run[MULTI]
    assert target["error"] is None, target["error"]
    assert target["evidence"]["dns"]["source"] == "nameservers"
    assert target["evidence"]["dns"]["addresses"] == [GOOD, WEAK, V6]
    endpoints = {e["address"]: e for e in target["endpoints"]}
    assert {a: (e["letter"], e["compliant"]) for a, e in endpoints.items()} == {
        GOOD: ("A+", True),
        WEAK: ("F", False),  # a NULL suite (SSL Labs: F)
        V6: ("T", False),  # untrusted issuer
    }
    assert target["grade"]["letter"] == "T" and target["compliant"] is False  # T ranks below F
    assert target["target"]["ip"] is None


def test_each_finding_names_exactly_the_failing_addresses(dns_run: dict[str, dict[str, Any]]) -> None:
    target = dns_run[MULTI]
    endpoints = target["endpoints"]
    named = [f for f in target["findings"] if f["status"] == "fail" and " endpoints: " in f["title"]]
    assert {f["clause"] for f in named} >= {"11.2-cert-trusted"}
    for finding in named:
        failing = {e["address"] for e in endpoints if _failing(e, finding["clause"])}
        assert _named_addresses(finding["title"]) == failing, finding["title"]
        assert f"of {len(endpoints)} endpoints: " in finding["title"]
    trust = next(f for f in named if f["clause"] == "11.2-cert-trusted")
    assert _named_addresses(trust["title"]) == {V6}


def test_a_name_fact_is_not_pinned_on_one_endpoint(dns_run: dict[str, dict[str, Any]]) -> None:
    target = dns_run[MULTI]
    (missing,) = [f for f in target["findings"] if f["result_id"] == "caa-missing"]
    if " endpoints: " in missing["title"]:  # if it is qualified at all, it names every endpoint
        assert _named_addresses(missing["title"]) == {GOOD, WEAK, V6}, missing["title"]


def test_the_grade_finding_states_the_lowest_letter(dns_run: dict[str, dict[str, Any]]) -> None:
    target = dns_run[MULTI]
    (grade,) = [f for f in target["findings"] if f["clause"] == "11.4-grade-a"]
    assert grade["status"] == "fail"
    assert grade["title"].startswith(f"Grade {target['grade']['letter']}"), grade["title"]


def test_config_ips_audit_two_addresses_without_dns(dns_run: dict[str, dict[str, Any]]) -> None:
    target = dns_run[TWO]
    assert target["evidence"]["dns"] == {"source": "given", "addresses": [GOOD, WEAK], "caa": None}
    assert [(e["address"], e["compliant"]) for e in target["endpoints"]] == [(GOOD, True), (WEAK, False)]
    assert target["compliant"] is False and target["grade"]["letter"] == "F"
    named = [f for f in target["findings"] if f["status"] == "fail"]
    assert named and all(f["title"].endswith(f"on 1 of 2 endpoints: {WEAK}") for f in named), named


def test_ip_given_twice_on_the_command_line(lab: Lab) -> None:
    run = run_cli(
        *("audit", "--ip", WEAK, "--ip", V6, "--ca-bundle", str(lab.pki.root_path)),
        *("--http-port", str(lab.http_port), "--json", "-", "--quiet", lab.url(MULTI)),
        cwd=lab.directory,
    )
    assert run.code == 1, run.stdout + run.stderr
    (target,) = run.report["targets"]
    assert target["evidence"]["dns"] == {"source": "given", "addresses": [WEAK, V6], "caa": None}
    assert [(e["address"], e["letter"]) for e in target["endpoints"]] == [(WEAK, "F"), (V6, "T")]
    assert target["grade"]["letter"] == "T"


def test_a_name_without_addresses_is_not_audited_with_one_line(dns_run: dict[str, dict[str, Any]]) -> None:
    for host in (NO_ADDRESS, NXDOMAIN):  # NODATA (only a CAA record) and NXDOMAIN
        target = dns_run[host]
        assert target["error"], host
        assert "\n" not in target["error"] and host in target["error"], target["error"]
        assert target["compliant"] is False and target["endpoints"] == []


def test_an_ip_literal_url_asks_no_dns(slow_run: tuple[dict[str, dict[str, Any]], float]) -> None:
    target = slow_run[0][GOOD]  # the name server never answers: any query would fail this target
    assert target["error"] is None, target["error"]
    assert target["evidence"]["dns"]["caa"] is None
    assert target["evidence"]["dns"]["addresses"] == [GOOD]
    assert target["compliant"] is True


def test_a_name_server_that_never_answers(slow_run: tuple[dict[str, dict[str, Any]], float]) -> None:
    target = slow_run[0][BLACKHOLED]
    assert target["error"] and "\n" not in target["error"], target["error"]
    assert BLACKHOLED in target["error"]
    assert target["duration_s"] <= 12 + 2  # within the target's budget


def test_endpoints_share_the_target_budget(slow_run: tuple[dict[str, dict[str, Any]], float]) -> None:
    targets, elapsed = slow_run
    target = targets["www.pit.test"]
    assert target["error"], "three silent endpoints cannot be audited"
    assert [e["address"] for e in target["endpoints"]] == list(TARPITS)
    assert target["duration_s"] <= 12 + 3, target["duration_s"]  # one budget, not three
    assert elapsed < 12 * 2 + 10


# ---------------------------------------------------------------- CAA (RFC 8659)


@pytest.mark.parametrize(
    "host",
    PERMITTED,
)
def test_caa_permission(dns_run: dict[str, dict[str, Any]], host: str) -> None:
    target = dns_run[host]
    assert target["error"] is None, target["error"]
    caa = target["evidence"]["dns"]["caa"]
    assert caa["error"] is None and caa["records"], caa
    warnings = _caa_warnings(target)
    if PERMITTED[host]:
        assert warnings == [], warnings
    else:
        assert len(warnings) == 1, target["findings"]
    assert target["compliant"] is True  # CAA binds CAs at issuance: a warning, never a failure


@pytest.mark.parametrize("host", list(OWNER))
def test_caa_relevant_rrset_is_found_by_climbing(dns_run: dict[str, dict[str, Any]], host: str) -> None:
    caa = dns_run[host]["evidence"]["dns"]["caa"]
    assert caa["owner"] == OWNER[host]
    assert [(r["flags"], r["tag"], r["value"]) for r in caa["records"]] == [(0, "issue", "ca.test")]


def test_caa_tag_and_flags_are_reported_as_served(dns_run: dict[str, dict[str, Any]]) -> None:
    records = dns_run["www.crit.test"]["evidence"]["dns"]["caa"]["records"]
    assert sorted((r["flags"], r["tag"]) for r in records) == [(0, "issue"), (128, "tbs")]
    assert dns_run["www.param.test"]["evidence"]["dns"]["caa"]["records"][0]["value"] == "ca.test; account=1"


def test_no_caa_record_with_require_caa_is_a_warning(dns_run: dict[str, dict[str, Any]]) -> None:
    target = dns_run["www.none.test"]
    assert target["evidence"]["dns"]["caa"] == {"owner": None, "records": [], "error": None}
    assert len(_caa_warnings(target)) == 1 and target["compliant"] is True


# ---------------------------------------------------------------- CT and protocol facts


def test_private_ca_certificate_ct_is_evidence_only(dns_run: dict[str, dict[str, Any]]) -> None:
    target = dns_run["www.ok.test"]
    ct = target["evidence"]["tls"]["certificates"][0]["ct"]
    # counted by delivery: none embedded, none in the TLS extension (TLS 1.2 was measured), nothing stapled
    assert (ct["embedded"], ct["tls_extension"], ct["ocsp"]) == ([], [], None)
    stapled = dns_run[FACTS_NAME]["evidence"]["tls"]["certificates"][0]["ct"]
    assert stapled["ocsp"] == []  # a stapled OCSP response without an SCT list
    ct_findings = [f for f in target["findings"] if f["result_id"].startswith("cert-ct")]
    assert all(f["status"] in ("pass", "info") for f in ct_findings), ct_findings


def test_protocol_facts_on(dns_run: dict[str, dict[str, Any]]) -> None:
    target = dns_run[FACTS_NAME]
    assert target["error"] is None, target["error"]
    facts = target["evidence"]["tls"]["facts"]
    assert facts["ocsp_stapling"] is True
    assert (facts["alpn"], facts["http2"]) == ("h2", True)
    assert facts["session_tickets"] is True
    assert facts["resumption"] is True
    assert facts["early_data"] is True


def test_protocol_facts_off(dns_run: dict[str, dict[str, Any]]) -> None:
    facts = dns_run["www.ok.test"]["evidence"]["tls"]["facts"]
    assert facts["ocsp_stapling"] is False
    assert facts["http2"] is False and facts["alpn"] != "h2"
    assert facts["session_tickets"] is False
    assert facts["early_data"] is False
