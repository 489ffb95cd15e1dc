"""Where the config, the history and the reports live: one rule, the same for every command
(audit, report, schedule, history, diff, verify-log).

The config is `--config PATH`, else `./config.toml` when there is one, else none (the built-in
defaults). Relative paths inside it (`[output] directory`, `[history] database`, `ca_bundle`) are
relative to the config file's directory; without a config file the defaults (`auditor-reports/`,
`auditor-history.sqlite`) are in the current directory. So `audit --store URL` followed by
`history` in the same directory always reads the database that was written.

Every place is checked before scanning, so a run never fails after its results exist because of
where they were to go: report paths (exit 2), and, for a run that stores, the directories of the
database and of the witness file of heads, which no other user may write (exit 3).
"""

from __future__ import annotations

import os
from pathlib import Path

from auditor.config import Config, is_url, load_config
from auditor.errors import ConfigError, StoreError
from auditor.safe_files import check_existing_file, directory_problem

DEFAULT_CONFIG = Path("config.toml")


def config_path(given: Path | None) -> Path | None:
    """The config file a command uses: the one given, else ./config.toml if present, else none."""
    if given is not None:
        return given
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load(given: Path | None) -> tuple[Config, Path | None]:
    """The config (defaults when there is no file) and the file it came from."""
    path = config_path(given)
    return load_config(path), path


def require(given: Path | None, command: str) -> tuple[Config, Path]:
    """For commands that need a config file (its [[targets]]): ConfigError (exit 2) when there is none."""
    config, path = load(given)
    if path is None:
        raise ConfigError(f"{command}: no config.toml in the current directory; give --config PATH")
    return config, path


def ensure_writable(path: Path, option: str, *, directory: bool = False) -> None:
    """Before scanning (ConfigError, exit 2): a report file path that names a directory, an output
    directory that is a file, or a place that cannot be written would fail only after the scan."""
    if not directory and path.is_dir():
        raise ConfigError(f"{option}: {str(path)!r} is a directory; give the path of a file to write")
    if directory and path.exists() and not path.is_dir():
        raise ConfigError(f"{option}: {str(path)!r} is not a directory")
    folder = path if directory else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option}: cannot create {str(folder)!r} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{option}: {str(folder)!r} is not writable")


def check_database_place(config: Config) -> None:
    """Before a run that stores opens the history: StoreError (exit 3) when the database file's
    directory may be written by every user or by another user (the database, its -wal and lock
    files could be replaced or redirected there)."""
    database = config.history.database
    if is_url(database):
        return
    problem = directory_problem(Path(database).parent)
    if problem:
        raise StoreError(f"history database {database}: refusing to keep it there: {problem}")


def check_witness_place(config: Config) -> None:
    """Before a run that stores: the witness file of evidence-log heads (evidence-log-heads.txt in
    [output] directory) must be in a directory only its owner may write, and be this user's own
    regular file when it exists (not a link planted to make the run append elsewhere)."""
    # lazy: the evidence log brings the evidence models, which `auditor audit` loads after its first handshake
    from auditor.evidence_log import WITNESS_FILE

    directory = config.output.directory
    problem = directory_problem(directory)
    if problem:
        raise StoreError(
            f"evidence log heads file {directory / WITNESS_FILE}: refusing to keep it there: {problem}"
        )
    try:
        check_existing_file(directory / WITNESS_FILE)
    except OSError as exc:
        raise StoreError(
            f"evidence log heads file {directory / WITNESS_FILE}: refusing it: {exc.strerror}"
        ) from None
