"""Test and demo helpers shipped with the tool: a throwaway PKI and real loopback TLS servers."""
