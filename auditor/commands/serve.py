"""`auditor serve [--bind ADDRESS:PORT]`: the read-only dashboard of the history, with /metrics.

Needs the `serve` extra (Starlette, uvicorn, prometheus_client), imported only here so that no
other command pays for it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.errors import ConfigError
from auditor.locations import load

if TYPE_CHECKING:
    from auditor.commands import Subparsers

EXTRA = "pip install 'tls-posture-auditor[serve]'"


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    serve = sub.add_parser(
        "serve",
        help="serve the read-only dashboard of the history (and /metrics)",
        description="Serve a read-only web dashboard of the history database: the fleet worst first, "
        "each site's grade over time, findings, changes and reports, and Prometheus /metrics. "
        "Binds loopback unless [serve] configures an access token or basic auth.",
    )
    serve.add_argument(
        "--config", type=Path, metavar="PATH", help="config file (default: ./config.toml when present)"
    )
    serve.add_argument(
        "--bind",
        metavar="ADDRESS:PORT",
        help="where to listen (default: [serve] bind, 127.0.0.1:8080)",
    )
    return serve


def run(args: argparse.Namespace) -> int:
    config, _ = load(args.config)
    try:
        # lazy: Starlette, uvicorn and prometheus_client are the optional `serve` extra, for this command only
        from auditor.dashboard.server import serve
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("starlette", "uvicorn", "prometheus_client"):
            raise ConfigError(f"auditor serve needs {exc.name}: {EXTRA}") from None
        raise
    return serve(config, args.bind or config.serve.bind)
