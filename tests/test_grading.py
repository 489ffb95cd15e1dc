"""Every row of the grade table (auditor.grading_rules) has a case here that triggers it, and
the score tables give the guide's numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auditor import grading
from auditor.grading import category_scores, facts_from, rsa_equivalent
from auditor.grading_rules import CAPS, RATING_RULES, WARNINGS, Rule
from auditor.model import Evidence, Grade, HandshakeSimulation, RevocationStatus, Vulnerabilities
from auditor.suites import describe
from tests import evidence_builders as b

HSTS_LONG = [("Strict-Transport-Security", "max-age=63072000; includeSubDomains")]


def grade(evidence: Evidence, *, custom_ca: bool = False) -> Grade:
    """auditor.grading.grade of evidence it must grade (no case here is withheld)."""
    g = grading.grade(evidence, custom_ca=custom_ca)
    assert g is not None and g.rating_rules == RATING_RULES
    return g


def modern() -> Evidence:
    ev = b.evidence()
    ev.tls.simulations = [
        HandshakeSimulation(
            client="Chrome",
            reference=True,
            protocol="TLS 1.3",
            suite=describe("TLS_AES_128_GCM_SHA256", ephemeral_group="X25519"),
        )
    ]
    return ev


def with_suites(suites: dict[str, list[str]], **kw: Any) -> Evidence:
    ev = b.evidence(b.tls(suites, **kw))
    return ev


def vuln(**kw: Any) -> Evidence:
    base: dict[str, Any] = {
        "heartbleed": False,
        "ccs_injection": False,
        "robot": "NOT_VULNERABLE_NO_ORACLE",
        "secure_renegotiation": True,
        "client_renegotiation_dos": False,
        "compression": False,
        "fallback_scsv": True,
    }
    return b.evidence(b.tls(vulns=Vulnerabilities(**{**base, **kw})))


def chain(**cert_kw: Any) -> Evidence:
    return b.evidence(b.tls(deployments=[b.deployment([b.cert(**cert_kw), b.cert("CN=I", issuer="CN=R")])]))


def sim(suite: str, protocol: str = "TLS 1.2") -> Evidence:
    ev = with_suites({"TLS 1.2": [suite, *b.MODERN_12], "TLS 1.3": b.MODERN_13})
    ev.tls.simulations = [
        HandshakeSimulation(client="Chrome", reference=True, protocol=protocol, suite=describe(suite))
    ]
    return ev


T12 = {"TLS 1.3": b.MODERN_13}
ROW_CASES: dict[str, Callable[[], Evidence]] = {
    "ssl2": lambda: with_suites({"SSL 2.0": ["SSL_CK_RC4_128_WITH_MD5"], "TLS 1.2": b.MODERN_12}),
    "ssl3-best": lambda: with_suites({"SSL 3.0": ["TLS_RSA_WITH_AES_128_CBC_SHA"]}),
    "heartbleed": lambda: vuln(heartbleed=True),
    "ccs": lambda: vuln(ccs_injection=True),
    "robot": lambda: vuln(robot="VULNERABLE_STRONG_ORACLE"),
    "insecure-renegotiation": lambda: vuln(secure_renegotiation=False, client_renegotiation_dos=True),
    "export": lambda: with_suites({"TLS 1.2": [*b.MODERN_12, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"], **T12}),
    "null-anon": lambda: with_suites(
        {"TLS 1.2": [*b.MODERN_12, "TLS_ECDH_anon_WITH_AES_256_CBC_SHA"], **T12}
    ),
    "weak-suites": lambda: with_suites({"TLS 1.2": [*b.MODERN_12, "TLS_RSA_WITH_DES_CBC_SHA"], **T12}),
    "key-1024": lambda: chain(key_bits=768),
    "md5-signature": lambda: chain(sig_hash="md5", sig_alg="md5WithRSAEncryption"),
    "no-tls12": lambda: with_suites({"TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]}),
    "poodle-ssl3": lambda: with_suites({"SSL 3.0": ["TLS_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.2": b.MODERN_12}),
    "crime": lambda: vuln(compression=True),
    "rc4-modern": lambda: sim("TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    "sweet32": lambda: sim("TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    "old-protocols": lambda: with_suites(
        {"TLS 1.1": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.2": b.MODERN_12}
    ),
    "no-forward-secrecy": lambda: sim("TLS_RSA_WITH_AES_128_GCM_SHA256"),
    "no-aead": lambda: with_suites({"TLS 1.2": ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"]}),
    "rc4": lambda: with_suites({"TLS 1.0": ["TLS_ECDHE_RSA_WITH_RC4_128_SHA"], "TLS 1.2": b.MODERN_12}),
    "key-2048": lambda: chain(key_bits=1024),
    "incomplete-chain": lambda: b.evidence(
        b.tls(
            deployments=[
                b.deployment(
                    [b.cert().model_copy(update={"ca_issuers": ["http://ca.example.test/intermediate.crt"]})],
                    trusted=False,
                )
            ]
        )
    ),
    "beast": lambda: with_suites({"TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.2": b.MODERN_12}),
    "untrusted": lambda: b.evidence(b.tls(deployments=[b.deployment(trusted=False)])),
    "sha1-chain": lambda: b.evidence(
        b.tls(
            deployments=[
                b.deployment(
                    [
                        b.cert(),
                        b.cert(
                            "CN=Intermediate",
                            issuer="CN=Root",
                            sig_hash="sha1",
                            sig_alg="sha1WithRSAEncryption",
                        ),
                    ]
                )
            ]
        )
    ),
    "revoked": lambda: b.evidence(
        b.tls(
            deployments=[
                b.deployment().model_copy(
                    update={
                        "revocation": [
                            RevocationStatus(source="stapled", status="revoked", reason="keyCompromise")
                        ]
                    }
                )
            ]
        )
    ),
    "mismatch": lambda: b.evidence(b.tls(deployments=[b.deployment(matches=False)])),
    "no-tls13": lambda: with_suites({"TLS 1.2": b.MODERN_12}),
    "hsts": lambda: b.evidence(http_evidence=b.http(b.page(headers=[]))),
    "no-secure-renegotiation": lambda: vuln(secure_renegotiation=False),
}


def test_every_row_of_the_table_has_a_case() -> None:
    assert set(ROW_CASES) == {r.id for r in CAPS} | {r.id for r in WARNINGS}


@pytest.mark.parametrize("rule", CAPS, ids=[r.id for r in CAPS])
def test_cap_row(rule: Rule) -> None:
    facts = facts_from(ROW_CASES[rule.id]())
    assert rule.applies(facts)
    assert not rule.applies(facts_from(modern())), "the compliant baseline must not trigger it"
    g = grade(ROW_CASES[rule.id]())
    assert any(c.reason == rule.wording and c.rule == rule.id for c in g.caps)
    if rule.letter in ("T", "M"):
        assert g.letter == rule.letter and g.letter_ignoring_trust is not None
    else:
        assert g.letter in ("A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M")
        order = ["A+", "A", "A-", "B", "C", "D", "E", "F"]
        letter = g.letter_ignoring_trust or g.letter
        assert order.index(letter) >= order.index(rule.letter), (letter, rule.letter)


@pytest.mark.parametrize("rule", WARNINGS, ids=[r.id for r in WARNINGS])
def test_warning_row(rule: Rule) -> None:
    g = grade(ROW_CASES[rule.id]())
    assert rule.wording in g.warnings
    if not g.caps:
        assert g.letter == "A-"


def test_modern_site_is_a_plus_and_without_hsts_a_minus() -> None:
    g = grade(modern())
    assert g.letter == "A+" and g.caps == [] and g.warnings == []
    assert g.categories == {"protocol": 100, "key_exchange": 90, "cipher": 90} and g.score == 93
    ev = modern()
    ev.http.https[0].headers = []
    assert grade(ev).letter == "A-"


def test_score_tables() -> None:
    # protocol: (best + worst) / 2 ; TLS 1.0 + TLS 1.2 = (100 + 90) / 2
    f = facts_from(with_suites({"TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"], "TLS 1.2": b.MODERN_12}))
    assert category_scores(f)["protocol"] == 95
    # cipher: (strongest + weakest) / 2 ; 3DES counts 112 bits -> 20
    f = facts_from(
        with_suites({"TLS 1.2": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"]})
    )
    assert category_scores(f)["cipher"] == (100 + 20) // 2
    # key exchange by RSA-equivalent bits
    assert (
        rsa_equivalent("EC", 256) == 3072
        and rsa_equivalent("EC", 384) == 7680
        and rsa_equivalent("RSA", 4096) == 4096
    )
    assert category_scores(facts_from(chain(key_bits=4096)))["key_exchange"] == 100
    assert category_scores(facts_from(chain(key_bits=1024)))["key_exchange"] == 80


def test_anonymous_key_exchange_zeroes_the_score() -> None:
    g = grade(with_suites({"TLS 1.2": ["TLS_DH_anon_WITH_AES_256_GCM_SHA384"]}))
    assert g.categories["key_exchange"] == 0 and g.score == 0 and g.letter == "F"


def test_private_ca_counts_as_trusted_only_when_configured() -> None:
    dep = b.deployment(trusted=False)
    dep.trust.append(dep.trust[0].model_copy(update={"store": "custom", "trusted": True, "error": None}))
    ev = modern()
    ev.tls.certificates = [dep]
    assert grade(ev).letter == "T"
    assert grade(ev, custom_ca=True).letter == "A+"


# ---- the rules as the Precisions of ../shared/grading/ssllabs-rating.md decide them


def test_tls13_only_is_not_capped() -> None:
    """SSL Labs and testssl.sh cap at C only when neither TLS 1.2 nor TLS 1.3 is offered."""
    g = grade(with_suites({"TLS 1.3": b.MODERN_13}))
    assert (g.letter, g.caps, g.warnings) == ("A+", [], [])
    assert any(
        c.grade == "C" for c in grade(with_suites({"TLS 1.1": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]})).caps
    )


@pytest.mark.parametrize("position", [0, 1], ids=["leaf", "intermediate"])
def test_sha1_in_a_chain_that_validates_is_t(position: int) -> None:
    """2017 change: SHA-1 below the root is T even when the chain validates (here: a private CA)."""
    chain = [b.cert(), b.cert("CN=Intermediate", issuer="CN=Root")]
    chain[position] = chain[position].model_copy(
        update={"signature_hash": "sha1", "signature_algorithm": "sha1WithRSAEncryption"}
    )
    dep = b.deployment(chain, trusted=False, stores=["Mozilla"])
    dep.trust.append(dep.trust[0].model_copy(update={"store": "custom", "trusted": True, "error": None}))
    ev = modern()
    ev.tls.certificates = [dep]
    g = grade(ev, custom_ca=True)
    assert g.letter == "T" and g.letter_ignoring_trust == "A+"
    assert [c.reason for c in g.caps] == ["SHA-1 signature in the served chain (leaf or intermediate)"]
    root = b.cert("CN=Root", self_signed=True, sig_hash="sha1", sig_alg="sha1WithRSAEncryption")
    ev.tls.certificates = [b.deployment([b.cert(), b.cert("CN=Intermediate", issuer="CN=Root"), root])]
    assert grade(ev).letter == "A+", "a SHA-1 root is not judged"


def _with_simulations(suites: dict[str, list[str]], *sims: tuple[str, bool, str, str]) -> Evidence:
    ev = with_suites(suites)
    ev.tls.simulations = [
        HandshakeSimulation(
            client=client,
            reference=reference,
            protocol=protocol,
            suite=describe(suite, ephemeral_group="X25519"),
        )
        for client, reference, protocol, suite in sims
    ]
    return ev


CHROME_13 = ("Chrome", True, "TLS 1.3", "TLS_AES_128_GCM_SHA256")


def test_3des_from_a_non_reference_client_does_not_cap() -> None:
    suites = {"TLS 1.2": [*b.MODERN_12, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"], "TLS 1.3": b.MODERN_13}
    java8 = ("Java 8u161", False, "TLS 1.2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA")
    f = facts_from(_with_simulations(suites, CHROME_13, java8))
    assert f.reference_3des_modern == []
    assert not any(
        c.reason.endswith("(SWEET32)") for c in grade(_with_simulations(suites, CHROME_13, java8)).caps
    )
    safari = ("Safari", True, "TLS 1.2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA")
    assert facts_from(_with_simulations(suites, CHROME_13, safari)).reference_3des_modern == ["Safari"]


def test_rc4_accepted_but_not_negotiated_by_reference_browsers_is_b_not_c() -> None:
    suites = {"TLS 1.2": [*b.MODERN_12, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"], "TLS 1.3": b.MODERN_13}
    g = grade(_with_simulations(suites, CHROME_13))
    assert {c.reason for c in g.caps} == {"RC4 is supported"} and g.letter == "B"
    ie = ("IE 11 / Win 7", True, "TLS 1.2", "TLS_ECDHE_RSA_WITH_RC4_128_SHA")
    g = grade(_with_simulations(suites, CHROME_13, ie))
    assert "RC4 is negotiated by reference browsers with TLS 1.1 or newer" in {c.reason for c in g.caps}
    assert g.letter == "C"


@pytest.mark.parametrize(("engine", "capped"), [("thorough", True), ("fast", False)])
def test_without_reference_simulations_3des_and_rc4_fall_back_conservatively(
    engine: str, capped: bool
) -> None:
    """No reference browser simulated (none run, or all failed): the server's first choice where it
    enforces its order, else every accepted suite (any client's order could land on it)."""
    for weak in ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA"):
        ev = b.evidence(b.tls({"TLS 1.2": [*b.MODERN_12, weak], "TLS 1.3": b.MODERN_13}, engine=engine))
        ev.tls.simulations = [HandshakeSimulation(client="Chrome", reference=True, error="connection reset")]
        f = facts_from(ev)
        assert bool(f.reference_3des_modern or f.reference_rc4_modern) is capped, (engine, weak)
    first = b.evidence(b.tls({"TLS 1.2": ["TLS_RSA_WITH_3DES_EDE_CBC_SHA", *b.MODERN_12]}, engine="fast"))
    first.tls.simulations = []
    assert facts_from(first).reference_3des_modern == ["server's first choice (no reference simulation)"]
