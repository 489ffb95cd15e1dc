"""One exception hierarchy for everything a user can cause; each message is one line for them,
and the exit statuses they end in (auditor.cli prints the table)."""

EXIT_OK, EXIT_POLICY, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_MAIL = 0, 1, 2, 3, 4


class AuditorError(Exception):
    """Base: a problem to report to the user without a traceback."""


class ConfigError(AuditorError):
    """config.toml (or a command-line option) is wrong; exit status 2."""


class TargetError(AuditorError):
    """A target URL is not auditable as written."""


class ScanError(AuditorError):
    """A target could not be audited (unreachable, not TLS, timed out); exit status 3."""


class MailError(AuditorError):
    """The report could not be mailed (it was written to disk all the same); exit status 4."""


class StoreError(AuditorError):
    """The history database cannot be used (missing, locked, read-only, unreachable); nothing was
    half-written."""
