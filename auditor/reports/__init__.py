"""Renderers: they only present an AuditReport; no judgement happens here."""
