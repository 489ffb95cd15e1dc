"""Prometheus metrics of the history store: for /metrics and the textfile collector."""
