"""Where the config, the history and the reports live: one rule, the same for every command
(audit, report, schedule, history, diff, verify-log).

The config is `--config PATH`, else `./config.toml` when there is one, else none (the built-in
defaults). Relative paths inside it (`[output] directory`, `[history] database`, `ca_bundle`) are
relative to the config file's directory; without a config file the defaults (`auditor-reports/`,
`auditor-history.sqlite`) are in the current directory. So `audit --store URL` followed by
`history` in the same directory always reads the database that was written.
"""

from __future__ import annotations

from pathlib import Path

from auditor.config import Config, load_config
from auditor.errors import ConfigError

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
