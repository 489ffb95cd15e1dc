"""`auditor worker [--config PATH] [--concurrency N]`: audit the targets a fleet scheduler queues
([fleet] broker), storing each result in the shared history. Runs until SIGTERM (the tasks in
progress finish first); exit 2 for a configuration error (no [fleet] broker, history not PostgreSQL,
Celery not installed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.locations import require

if TYPE_CHECKING:
    from auditor.commands import Subparsers


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    worker = sub.add_parser(
        "worker",
        help="run a fleet worker (Celery): audit queued targets, store them in the shared history",
        description="Consume the [fleet] broker's queue: audit each target the scheduler queues and store "
        "the result in [history] database (PostgreSQL), with the same config as the scheduler.",
    )
    worker.add_argument("--config", type=Path, metavar="PATH", help="config file (default: ./config.toml)")
    worker.add_argument(
        "--concurrency",
        type=_positive,
        default=4,
        metavar="N",
        help="targets audited at once (threads; default 4)",
    )
    return worker


def run(args: argparse.Namespace) -> int:
    # lazy: Celery and the scanning stack only for this command
    from auditor.fleet.worker import run_worker

    config, config_path = require(args.config, "worker")
    return run_worker(config, config_path, args.concurrency)
