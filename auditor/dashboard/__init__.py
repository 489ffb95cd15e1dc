"""`auditor serve`: a read-only dashboard of the history store, with /metrics."""
