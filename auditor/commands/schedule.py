"""`auditor schedule [--once | --next]`: the nightly monitor (foreground, for systemd).

Exit status: 0 after a clean stop (SIGTERM/SIGINT) or a successful --once; 3 when another scheduler
holds the lock or the history database cannot be used; 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from auditor.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # noqa: SLF001
    schedule = sub.add_parser("schedule", help="run the nightly audits (APScheduler); --once runs one now")
    schedule.add_argument("--config", type=Path, default=Path("config.toml"))
    mode = schedule.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run the nightly job now and exit")
    mode.add_argument("--next", action="store_true", help="print the next run times and exit")
    return schedule


def run(args: argparse.Namespace) -> int:
    from auditor.config import load_config
    from auditor.schedule import SchedulerLock, next_runs, run_nightly, serve

    config = load_config(args.config)
    if not config.targets:
        raise ConfigError(f"{args.config}: no [[targets]] to audit")
    if args.next:
        for when in next_runs(config):
            print(when.strftime("%Y-%m-%d %H:%M:%S %Z"))
        return 0
    if args.once:
        with SchedulerLock(config.history.database):
            run_nightly(str(args.config.resolve()))
        return 0
    return serve(config, args.config, lambda line: print(line, file=sys.stderr, flush=True))
