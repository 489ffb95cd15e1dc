"""The protocol versions by the names the evidence, the config and the reports use, oldest first.

Apart from auditor.model so that reading the config does not build the evidence models (about a
tenth of a second of `auditor audit`'s start, which the first handshake waits for)."""

from __future__ import annotations

PROTOCOL_VERSIONS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
LEGACY_PROTOCOLS = PROTOCOL_VERSIONS[:4]
