"""`auditor metrics`: the history's Prometheus metrics (auditor.metrics), on stdout or written
atomically to a file for node_exporter's textfile collector (cron users; `auditor serve` has /metrics).

Exit status: 0 printed or written; 2 configuration error (prometheus_client missing included);
3 the history database cannot be used (none yet, locked, unreadable) or the file cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.errors import EXIT_OK, EXIT_UNREACHABLE
from auditor.locations import load

if TYPE_CHECKING:
    from auditor.commands import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    metrics = sub.add_parser(
        "metrics",
        help="print the history's Prometheus metrics, or write them for node_exporter",
        description="Print the Prometheus metrics of the newest stored scan of every target (and "
        "whether the evidence log verifies), or write them atomically to a .prom file that "
        "node_exporter's textfile collector reads.",
    )
    metrics.add_argument(
        "--config", type=Path, metavar="PATH", help="config file (default: ./config.toml when present)"
    )
    metrics.add_argument(
        "--textfile",
        type=Path,
        metavar="PATH",
        help="write the metrics to this file (e.g. /var/lib/node_exporter/textfile/auditor.prom) instead of stdout",
    )
    return metrics


def run(args: argparse.Namespace) -> int:
    # lazy: prometheus_client and SQLAlchemy only for the command that exposes the history; the
    # parser imports every command module
    from auditor.metrics import exposition, write_textfile
    from auditor.store import Store

    config, _ = load(args.config)
    heads, months = config.output.directory, config.history.retention_months
    with Store(config.history.database, create=False) as store:
        if args.textfile is None:
            sys.stdout.buffer.write(exposition(store, heads_directory=heads, retention_months=months))
            sys.stdout.flush()
            return EXIT_OK
        try:
            write_textfile(args.textfile, store, heads_directory=heads, retention_months=months)
        except OSError as exc:
            print(
                f"auditor: --textfile: cannot write {str(args.textfile)!r} ({exc.strerror or exc})",
                file=sys.stderr,
            )
            return EXIT_UNREACHABLE
    return EXIT_OK
