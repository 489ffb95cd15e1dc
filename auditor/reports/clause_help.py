"""What the auditor checks for each clause, in a sentence: the help text of a SARIF rule, for a
dashboard reader who has neither the policy nor the README at hand (from the clause table's
"what the auditor checks" column)."""

from __future__ import annotations

from collections.abc import Iterable

from auditor.model import TargetResult
from auditor.checks.clauses import CLAUSES

HELP: dict[str, str] = {
    "11.1-tls-enforced": "http://host/ must answer only with a redirect to https:// (301/308 preferred), never with "
    "content, and the audited pages must load no http:// sub-resources (mixed content).",
    "11.1-pfs": "Every accepted TLS 1.2 suite must use (EC)DHE key exchange, and the suite the server picks first "
    "must be (EC)DHE.",
    "11.2-cert-trusted": "The chain must validate against the major trust stores (Mozilla, Apple, Android, Java, "
    "Windows) or the configured private CA, match the host name, be served complete, and "
    "not be expired or revoked.",
    "11.2-cert-validation-level": "The certificate policies extension must hold the CA/B Forum EV "
    "(2.23.140.1.1) or OV (2.23.140.1.2.2) OID; DV certificates fail.",
    "11.2-cert-signature": "The leaf and intermediates must be signed with SHA-256/384/512 or Ed25519/Ed448; "
    "SHA-1 and MD5 fail (the root is not judged).",
    "11.2-cert-renewal": "The served leaf must have at least the configured number of days (default 30) or "
    "fraction of its lifetime left; an expired leaf fails.",
    "11.3-protocols": "TLS 1.2 and TLS 1.3 must be accepted; SSL 2.0, SSL 3.0, TLS 1.0 and TLS 1.1 must be rejected.",
    "11.3-aes256gcm-first": "In each protocol the server's most preferred suite must be a 256-bit AEAD suite "
    "(TLS_AES_256_GCM_SHA384, ECDHE-*-AES256-GCM-SHA384) and the server must enforce its "
    "own order.",
    "11.3-no-rsa-kex": "No TLS_RSA_WITH_* (static RSA key exchange) suite may be accepted.",
    "11.3-ecdhe-default": "A modern client must negotiate ECDHE (or TLS 1.3 (EC)DHE), with strong groups only "
    "(X25519, P-256, P-384).",
    "11.3-quantum-resistance": "TLS 1.3 must accept a hybrid ML-KEM group (X25519MLKEM768, SecP256r1MLKEM768, "
    "SecP384r1MLKEM1024) and pick it when a client offers it beside X25519; absent: warn "
    "(fail with require_post_quantum); accepted but not preferred: warn.",
    "11.4-vulnerabilities": "Heartbleed, CCS injection, ROBOT, insecure renegotiation, compression (CRIME), POODLE, "
    "BEAST, SWEET32, RC4, export/NULL/anonymous suites, weak DH (Logjam) and a missing "
    "TLS_FALLBACK_SCSV where a downgrade matters.",
    "11.4-grade-a": "The auditor's own SSL Labs-compatible grade, computed locally from the scan, must be the "
    "configured minimum (default A) or better.",
    "11.5-hsts": "HTTPS responses must carry a valid Strict-Transport-Security header with max-age of at least "
    "31536000 (warn below, fail below 15768000).",
    "11.5-cookies": "Every Set-Cookie on the audited pages must have Secure, HttpOnly and SameSite=Lax or Strict "
    "(None only with Secure), and respect the __Host-/__Secure- prefix rules.",
    "11.6-evidence-log": "Every scan's evidence goes into an append-only, hash-chained log kept 24 months; a "
    "broken chain fails.",
    "5.4-transit": "The same protocol floor as 11.3-protocols, applied to every audited form and endpoint; a form "
    "posting to http:// fails.",
    "12.3-cookie-consent": "Cookies set on the very first response, before any interaction, are listed for review "
    "(info); with [policy] cookie_allowlist set, a cookie not in it fails.",
}


def clause_title(clause: str) -> str:
    """The promise of a clause, or its id for one the table does not know (a newer report)."""
    return CLAUSES.get(clause, clause)


def clause_help(clause: str) -> str:
    return HELP.get(clause, f"See the policy clause {clause}.")


def clause_order(results: Iterable[TargetResult]) -> list[str]:
    """Every clause of the table, then any clause a (newer) report has that the table lacks."""
    seen = dict.fromkeys(CLAUSES)
    for result in results:
        seen.update(dict.fromkeys(f.clause for f in result.findings))
    return list(seen)
