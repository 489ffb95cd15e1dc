"""Does the site's CAA policy (RFC 8659) permit the CA that issued the certificate it serves?

CAA names CAs by a domain (their "CAA identifier"), the certificate names them by a distinguished
name; the link is what each CA declares in the CCADB. The table below holds the identifiers of the
CAs that issue most web certificates; `[dns] ca_identifiers` adds yours (a private CA, or a public
one missing here), keyed by the issuer's organization (O) or common name (CN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from auditor.model import CaaFacts

# Issuer organization (O) -> the CAA identifiers that CA honours (CCADB "CAA Identifiers").
KNOWN_CA_IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "Let's Encrypt": ("letsencrypt.org",),
    "DigiCert Inc": (
        "digicert.com",
        "www.digicert.com",
        "symantec.com",
        "geotrust.com",
        "thawte.com",
        "rapidssl.com",
    ),
    "Sectigo Limited": ("sectigo.com", "comodoca.com", "comodo.com", "usertrust.com", "trust-provider.com"),
    "GlobalSign nv-sa": ("globalsign.com",),
    "Google Trust Services": ("pki.goog",),
    "Google Trust Services LLC": ("pki.goog",),
    "Amazon": ("amazon.com", "amazontrust.com", "awstrust.com", "amazonaws.com"),
    "GoDaddy.com, Inc.": ("godaddy.com", "starfieldtech.com"),
    "Starfield Technologies, Inc.": ("starfieldtech.com", "godaddy.com"),
    "Entrust, Inc.": ("entrust.net", "affirmtrust.com"),
    "ZeroSSL": ("sectigo.com", "zerossl.com"),
    "Microsoft Corporation": ("microsoft.com",),
    "SSL Corporation": ("ssl.com",),
    "Buypass AS-983163327": ("buypass.com", "buypass.no"),
    "Certum": ("certum.pl", "certum.eu"),
    "Unizeto Technologies S.A.": ("certum.pl", "certum.eu"),
    "IdenTrust": ("identrust.com",),
    "Actalis S.p.A.": ("actalis.it",),
    "HARICA": ("harica.gr",),
    "SECOM Trust Systems CO.,LTD.": ("secomtrust.net",),
    "Cybertrust Japan Co., Ltd.": ("cybertrust.ne.jp",),
    "JPRS": ("jprs.jp",),
}


# Properties a CA issuing TLS certificates knows (RFC 8659 §4.2-4.4, RFC 9495 issuemail, the BIMI
# issuevmc, the CA/Browser Forum's contactemail and contactphone): any other with the critical flag
# set forbids issuance.
KNOWN_TAGS = frozenset(
    {"issue", "issuewild", "iodef", "issuemail", "issuevmc", "contactemail", "contactphone"}
)


@dataclass(frozen=True)
class CaaVerdict:
    """`permitted`: True/False, or None when it cannot be said (no record of the kind, or the
    issuer's CAA identifier is unknown); `reason` says which, in one line."""

    permitted: bool | None
    reason: str
    identifiers: tuple[str, ...] = ()


def issuer_identifiers(
    organization: str | None, common_name: str | None, extra: Mapping[str, Sequence[str]]
) -> tuple[str, ...]:
    """The CAA identifiers of the issuing CA: the configured ones first, then the built-in table."""
    for key in (organization, common_name):
        if key and key in extra:
            return tuple(d.lower() for d in extra[key])
    for key in (organization, common_name):
        if key and key in KNOWN_CA_IDENTIFIERS:
            return KNOWN_CA_IDENTIFIERS[key]
    return ()


def judge_caa(allowed: Sequence[str] | None, identifiers: Sequence[str], issuer: str) -> CaaVerdict:
    """`allowed`: the issuer domains of the relevant `issue` (or `issuewild`) records, None when there
    are none (any CA may issue, RFC 8659 §4.2); an empty list forbids every CA."""
    if allowed is None:
        return CaaVerdict(None, "no CAA issue record: any CA may issue for this name")
    if not allowed:
        return CaaVerdict(False, f'CAA forbids every CA (issue ";"), yet {issuer} issued the certificate')
    if not identifiers:
        return CaaVerdict(
            None,
            f"CAA allows {', '.join(allowed)}; the CAA identifier of {issuer} is not known "
            "(add it under [dns] ca_identifiers)",
        )
    if set(allowed) & set(identifiers):
        return CaaVerdict(
            True, f"CAA allows {', '.join(allowed)}, which includes {issuer}", tuple(identifiers)
        )
    return CaaVerdict(
        False,
        f"CAA allows only {', '.join(allowed)}; the certificate was issued by {issuer} "
        f"({', '.join(identifiers)})",
        tuple(identifiers),
    )


def issuer_names(issuer: str) -> tuple[str | None, str | None]:
    """(organization, common name) of an issuer written as RFC 4514 text (the model's Certificate.issuer)."""
    try:
        name = x509.Name.from_rfc4514_string(issuer)
    except ValueError:
        return None, None

    def first(oid: x509.ObjectIdentifier) -> str | None:
        values = name.get_attributes_for_oid(oid)
        return str(values[0].value) if values else None

    return first(NameOID.ORGANIZATION_NAME), first(NameOID.COMMON_NAME)


def covered_by_wildcard(host: str, names: Sequence[str]) -> bool:
    """The certificate covers `host` only through a wildcard name, so CAA `issuewild` governs it."""
    host = host.lower().rstrip(".")
    exact = {n.lower().rstrip(".") for n in names}
    return host not in exact and f"*.{host.partition('.')[2]}" in exact


def judge_certificate(
    caa: CaaFacts, host: str, issuer: str, names: Sequence[str], extra: Mapping[str, Sequence[str]]
) -> CaaVerdict:
    """Is the issuer of a certificate for `host` (subjectAltNames `names`) permitted by `caa`?"""
    critical = [r for r in caa.records if r.flags & 0x80 and r.tag.lower() not in KNOWN_TAGS]
    if critical:  # RFC 8659 §4.5: a CA must not issue when it does not understand a critical property
        r = critical[0]
        return CaaVerdict(
            False,
            f'CAA record "{r.flags} {r.tag} {r.value}" is critical and its property is unknown: '
            "no CA may issue for this name (RFC 8659 §4.5)",
        )
    organization, common_name = issuer_names(issuer)
    label = organization or common_name or issuer
    identifiers = issuer_identifiers(organization, common_name, extra)
    return judge_caa(caa.issuers(wildcard=covered_by_wildcard(host, names)), identifiers, label)
