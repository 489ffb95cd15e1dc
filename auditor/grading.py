"""The SSL Labs-compatible grade, computed locally from the scan evidence.

score -> letter -> caps (lowest wins) -> A-/A+ from the warnings; T and M are reported as such,
with the letter the site would get if trust issues were ignored. The rules are rows in
auditor.grading_rules; this module only derives the facts and applies the rows.
"""

from __future__ import annotations

from auditor.chain import incomplete_chain
from auditor.flaws import beast, insecure_renegotiation, lacks_secure_renegotiation
from auditor.grading_rules import (
    CAPS,
    CIPHER_SCORES,
    EC_TO_RSA,
    HSTS_UNMEASURED,
    KEY_EXCHANGE_SCORES,
    LETTERS,
    ORDER,
    PROTOCOL_SCORES,
    RATING_RULES,
    WARNINGS,
    WEIGHTS,
    GradeFacts,
)
from auditor.hsts import parse_hsts
from auditor.model import CipherSuite, Evidence, Grade, GradeCap, Probe, TlsEvidence
from auditor.protocol_names import PROTOCOL_VERSIONS

_TRUST_CAPS = {"T", "M"}


def rsa_equivalent(key_type: str | None, bits: int) -> int:
    """RSA-equivalent strength of a key, the unit the key-exchange table is written in."""
    if key_type in ("EC", "Ed25519", "Ed448", "ECDH"):
        for ec_bits, rsa_bits in reversed(EC_TO_RSA):
            if bits >= ec_bits:
                return rsa_bits
        return 512
    return bits


def _band(table: list[tuple[int, int]], value: int) -> int:
    return next(score for bound, score in table if value < bound)


def facts_from(evidence: Evidence, *, custom_ca: bool = False) -> GradeFacts:
    tls, http = evidence.tls, evidence.http
    f = GradeFacts()
    f.protocols = {p.version for p in tls.protocols if p.supported}
    f.best_protocol = max(f.protocols, key=PROTOCOL_VERSIONS.index) if f.protocols else None
    f.suites = tls.accepted_suites()
    # Every served certificate (a dual RSA/ECDSA site serves two): the worst of them counts.
    deployments = [d for d in tls.certificates if d.received_chain]
    untrusted = False
    for deployment in deployments:
        leaf = deployment.received_chain[0]
        rsa_bits = rsa_equivalent(leaf.key_type, leaf.key_bits)
        if f.cert_key_type is None or rsa_bits < f.cert_rsa_equivalent:
            f.cert_key_type, f.cert_key_bits, f.cert_rsa_equivalent = leaf.key_type, leaf.key_bits, rsa_bits
        f.signature_hashes += [
            (c.signature_hash or "").lower() for c in deployment.received_chain if not c.self_signed
        ]
        stores = [t for t in deployment.trust if t.store == ("custom" if custom_ca else "Mozilla")]
        trusted = bool(stores) and all(t.trusted for t in stores)
        # an incomplete chain (the intermediate can still be fetched or is the operator's) is capped at B;
        # a leaf from a CA nobody here knows is T, however few certificates were sent (auditor.chain)
        incomplete = not trusted and incomplete_chain(deployment, custom_ca=custom_ca)
        f.incomplete_chain = f.incomplete_chain or incomplete
        untrusted = untrusted or (not trusted and not incomplete)
        f.hostname_matches = f.hostname_matches and deployment.hostname_matches
        f.revoked = f.revoked or deployment.revoked() is not None
    if deployments:
        f.trusted = False if untrusted else None if f.incomplete_chain else True
    dh = [
        b for _, s in f.suites if s.key_exchange == "DHE" and (b := s.ephemeral_bits or s.ephemeral_bits_max)
    ]
    f.min_dh_bits = min(dh) if dh else None
    kex = [
        rsa_equivalent(
            "EC" if s.key_exchange in ("ECDHE", "TLS13") and s.ephemeral_group != "DH" else "RSA",
            s.ephemeral_bits,
        )
        for _, s in f.suites
        if s.ephemeral_bits
    ]
    f.min_kex_rsa_equivalent = min(kex) if kex else None
    v = tls.vulnerabilities
    f.heartbleed, f.ccs_injection = bool(v.heartbleed), bool(v.ccs_injection)
    f.robot = bool(v.robot and v.robot.startswith("VULNERABLE"))
    f.insecure_renegotiation = insecure_renegotiation(v) is True
    f.lacks_secure_renegotiation = lacks_secure_renegotiation(v)
    f.compression = bool(v.compression)
    for sim in tls.simulations:
        if sim.suite is None:
            continue
        if sim.reference and not sim.suite.forward_secret:
            f.reference_non_fs.append(sim.client)
    for client, protocol, suite in _reference_negotiations(tls):
        if protocol in _MODERN:
            if suite.block_bits == 64:
                f.reference_3des_modern.append(client)
            if suite.encryption.startswith("RC4"):
                f.reference_rc4_modern.append(client)
    if not tls.simulations:  # no simulation: judge forward secrecy by the server's first choices
        firsts = [p.suites[0] for p in tls.protocols if p.supported and p.suites and p.in_server_order]
        if any(not s.forward_secret for s in firsts):
            f.reference_non_fs.append("server's first choice")
    f.beast = bool(beast(tls))
    page = next((r for r in http.https if r.error is None), None)
    f.hsts_measured = page is not None
    if page is not None and page.header("strict-transport-security"):
        f.hsts_max_age = parse_hsts(page.header("strict-transport-security")[0])[0]
    return f


_MODERN = ("TLS 1.1", "TLS 1.2", "TLS 1.3")


def _reference_negotiations(tls: TlsEvidence) -> list[tuple[str, str | None, CipherSuite]]:
    """(client, protocol, suite) the reference browsers negotiate: what the RC4 and SWEET32 caps judge.

    Without a reference browser's successful simulation (none run, or all failed), fall back to
    what one could get, conservatively: per protocol, the server's first choice where it enforces its
    order, else every accepted suite (a client's order could land on any of them).
    """
    done = [(s.client, s.protocol, s.suite) for s in tls.simulations if s.reference and s.suite is not None]
    if done:
        return done
    fallback: list[tuple[str, str | None, CipherSuite]] = []
    for p in tls.protocols:
        if not p.supported or not p.suites:
            continue
        if p.in_server_order and p.server_enforces_order:
            fallback.append(("server's first choice (no reference simulation)", p.version, p.suites[0]))
        else:
            fallback += [
                ("any client (no reference simulation, order not enforced)", p.version, s) for s in p.suites
            ]
    return fallback


def category_scores(f: GradeFacts) -> dict[str, int]:
    if not f.protocols:
        return {"protocol": 0, "key_exchange": 0, "cipher": 0}
    scores = [PROTOCOL_SCORES[p] for p in f.protocols]
    protocol = (max(scores) + min(scores)) // 2
    if any(s.anonymous for _, s in f.suites):
        key_exchange = 0
    else:
        weakest = min(
            [b for b in (f.cert_rsa_equivalent or None, f.min_dh_bits, f.min_kex_rsa_equivalent) if b] or [0]
        )
        key_exchange = _band(KEY_EXCHANGE_SCORES, weakest) if weakest else 0
    bits = [s.bits for _, s in f.suites]
    cipher = (_band(CIPHER_SCORES, max(bits)) + _band(CIPHER_SCORES, min(bits))) // 2 if bits else 0
    return {"protocol": protocol, "key_exchange": key_exchange, "cipher": cipher}


def _worse(a: str, b: str) -> str:
    return a if ORDER.index(a) >= ORDER.index(b) else b


def withheld(tls: TlsEvidence) -> str | None:
    """Why no letter can be given (None: one can). A letter from a scan that lacks protocols, or that
    the server stopped answering, would judge what was never seen: a rate limiter's silence would read
    as "TLS 1.2 not offered" and an F. The scan engine records the stop as the attempt of Probe.SCAN."""
    if (scan := tls.attempts.get(Probe.SCAN)) is not None:
        return f"not graded: {scan.detail or scan.why()}"
    untested = [p.version for p in tls.protocols if p.supported is None]
    if untested:
        return f"not graded: {', '.join(untested)} not tested"
    return None


def grade(evidence: Evidence, *, custom_ca: bool = False) -> Grade | None:
    """The letter with every cap and warning that produced it; None when it is withheld (withheld())."""
    if withheld(evidence.tls) is not None:
        return None
    f = facts_from(evidence, custom_ca=custom_ca)
    categories = category_scores(f)
    score = 0 if 0 in categories.values() else round(sum(categories[k] * w for k, w in WEIGHTS.items()))
    letter = next(letter for floor, letter in LETTERS if score >= floor)
    caps = [
        GradeCap(grade=rule.letter, reason=rule.wording, rule=rule.id) for rule in CAPS if rule.applies(f)
    ]
    for cap in caps:
        if cap.grade not in _TRUST_CAPS:
            letter = _worse(letter, cap.grade)
    warnings = [rule.wording for rule in WARNINGS if rule.applies(f)]
    if letter == "A":
        # A+ needs HSTS seen on the site: when no page could be fetched it stays A, and says why
        letter = "A-" if warnings else "A+" if f.hsts_measured else "A"
    if not f.hsts_measured:
        caps.append(
            GradeCap(
                grade="A",
                reason="HSTS could not be checked (no HTTPS page was fetched): A+ is not given",
                rule=HSTS_UNMEASURED,
            )
        )
    trust = [c.grade for c in caps if c.grade in _TRUST_CAPS]
    if trust:
        return Grade(
            letter="M" if "M" in trust else "T",
            score=score,
            categories=categories,
            caps=caps,
            warnings=warnings,
            letter_ignoring_trust=letter,
            rating_rules=RATING_RULES,
        )
    return Grade(
        letter=letter,
        score=score,
        categories=categories,
        caps=caps,
        warnings=warnings,
        letter_ignoring_trust=None,
        rating_rules=RATING_RULES,
    )


def at_least(letter: str, minimum: str) -> bool:
    """Is `letter` as good as `minimum`? T and M never are."""
    if letter not in ORDER:
        return False
    return ORDER.index(letter) <= ORDER.index(minimum if minimum in ORDER else "A")
