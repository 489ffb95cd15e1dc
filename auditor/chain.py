"""What a chain that does not validate lacks, said the way SSL Labs says it.

SSL Labs reports "Chain issues: Incomplete" (grade capped at B) when the server left out an
intermediate that a trusted path needs and that a client can still get; a leaf whose CA no client
knows is "Not trusted" (T), however few certificates were sent. Offline, "a client can still get it"
means: the leaf names where to fetch its issuer (AIA caIssuers, as every public CA's leaves do), or
the audit is against the operator's own CA bundle (the CA is known; its intermediate is the server's
to send). A private-CA leaf audited without that bundle is neither: its CA is unknown.
"""

from __future__ import annotations

from auditor.model import CertificateDeployment


def incomplete_chain(deployment: CertificateDeployment, *, custom_ca: bool) -> bool:
    """The server sent the leaf alone, and its missing issuer is one a client can obtain."""
    chain = deployment.received_chain
    if len(chain) != 1 or chain[0].self_signed:
        return False
    return bool(chain[0].ca_issuers) or custom_ca


def no_known_issuer(error: str | None) -> bool:
    """The verifier found no issuer to build a path with (cryptography's "candidates exhausted with
    no interior errors"), rather than a path it rejected (bad signature, expiry, name)."""
    return error is not None and "no interior errors" in error
