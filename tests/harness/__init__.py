"""The test harness: a throwaway PKI and real loopback servers (nginx, openssl, OpenSSL 1.0.1e, tlslite-ng,
Node, Python ssl), an OCSP responder. Tests only: not in the wheel (the demo's site is auditor.demo_site)."""
