"""Evidence collection: TLS (sslyze and the fast engine), HTTP and the probes; no judging here."""
