"""Signed certificate timestamps (RFC 6962), read from the three places a server can deliver them:
the leaf's precertificate SCT extension (embedded by the CA), the signed_certificate_timestamp TLS
extension, and the SCT list extension of a stapled OCSP response.

Only log ids and timestamps are kept: enough to count distinct logs as browsers' CT policies do
(auditor.checks.certificate). Signatures are not verified: that needs the browsers' list of log keys,
which this auditor does not ship.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509 import ocsp

from auditor.model import CertificateTransparency, Sct

# OCSP single extension carrying an SCT list (RFC 6962 section 3.3).
OCSP_SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.5")


def _sct(log_id: bytes, timestamp: datetime) -> Sct:
    stamp = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
    return Sct(log_id=log_id.hex(), timestamp=stamp)


def embedded(cert: x509.Certificate) -> list[Sct]:
    """The SCTs the CA embedded in the certificate (empty: none, or an extension cryptography refuses)."""
    try:
        scts = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [_sct(s.log_id, s.timestamp) for s in scts]


def from_ocsp(response: ocsp.OCSPResponse) -> list[Sct]:
    """The SCTs in a stapled OCSP response's single extensions (empty: none, or not a parsable response)."""
    try:
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return []
        found = response.single_extensions.get_extension_for_class(x509.SignedCertificateTimestamps)
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [_sct(s.log_id, s.timestamp) for s in found.value]


def transparency(leaf: x509.Certificate, stapled: ocsp.OCSPResponse | None) -> CertificateTransparency:
    """The SCTs embedded in `leaf` and in the OCSP response stapled with it; the TLS extension is
    filled in by the protocol-facts probe (auditor.scan.protocol_facts.apply)."""
    return CertificateTransparency(
        embedded=embedded(leaf),
        ocsp=from_ocsp(stapled) if stapled is not None else None,
        note="TLS extension: not measured",
    )


def parse_list(data: bytes) -> list[Sct]:
    """A TLS-encoded SignedCertificateTimestampList (the TLS extension's body). Malformed entries end
    the list: what was read before them is kept. Only v1 SCTs are understood."""
    out: list[Sct] = []
    if len(data) < 2:
        return out
    end = min(len(data), 2 + struct.unpack("!H", data[:2])[0])
    offset = 2
    while offset + 2 <= end:
        length = struct.unpack("!H", data[offset : offset + 2])[0]
        item = data[offset + 2 : offset + 2 + length]
        offset += 2 + length
        if len(item) < 41 or item[0] != 0:  # version v1(0), 32-byte log id, 8-byte timestamp
            break
        millis = struct.unpack("!Q", item[33:41])[0]
        try:
            stamp = datetime.fromtimestamp(millis / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            break
        out.append(Sct(log_id=item[1:33].hex(), timestamp=stamp))
    return out


def distinct_logs(scts: list[Sct]) -> int:
    return len({s.log_id for s in scts})
