"""TLS and web-security posture auditor: checks a site against its published policy."""

__version__ = "0.1.0"
