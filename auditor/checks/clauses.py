"""The clause table of ../shared/policy/clauses.md: stable ids and the promise each one makes.

Reports, history, JSON and config all use these ids; the order here is the report's order.
"""

CLAUSES: dict[str, str] = {
    "11.1-tls-enforced": "All traffic is encrypted with TLS; plain HTTP only redirects to HTTPS",
    "11.1-pfs": "Key exchange with forward secrecy is preferred",
    "11.2-cert-trusted": "Certificate from a trusted CA, valid chain, matching host name",
    "11.2-cert-validation-level": "EV or OV certificate (identity verified)",
    "11.2-cert-signature": "Certificate signed with SHA-256 or stronger",
    "11.2-cert-renewal": "Certificate renewed well before expiry",
    "11.3-protocols": "TLS 1.2 and TLS 1.3 only",
    "11.3-aes256gcm-first": "AES-256-GCM suites negotiated first",
    "11.3-no-rsa-kex": "No RSA key exchange",
    "11.3-ecdhe-default": "ECDHE is the default key exchange, with strong groups",
    "11.3-quantum-resistance": "Cipher strength kept high, with a certain resistance to the threat of practical "
    "quantum computers (hybrid ML-KEM key exchange)",
    "11.4-vulnerabilities": "Not exposed to published TLS flaws (Heartbleed, POODLE, BEAST, ...)",
    "11.4-patch-window": "Published TLS flaws patched within the window (24 h) after the auditor first saw them",
    "11.4-grade-a": "SSL Labs-style grade A or better",
    "11.5-hsts": "HSTS header against downgrade and stripping",
    "11.5-cookies": "Cookies carry Secure, HttpOnly and SameSite",
    "11.6-evidence-log": "Tamper-evident evidence log kept 24 months",
    "5.4-transit": "Personal data sent only over TLS 1.2 or later",
    "12.3-cookie-consent": "Cookies stored only after the visitor agrees",
}

# The version of the check rules, recorded in every stored scan (TargetResult.rules_version). Bump it
# when a check, or a row of 11.4-vulnerabilities, is added, and name the addition in SINCE: the
# remediation clock (auditor.exposure) then starts that key at the first scan able to see it.
RULES_VERSION = 2
SINCE: dict[str, int] = {
    "11.4-patch-window": 2,
}
