"""`auditor schedule [--once | --next]`: the nightly monitor (foreground, for systemd).

`--once` (for cron or a systemd timer) prints the same verdict summary as `auditor audit --quiet` and
exits like `audit`: 0 all compliant, 1 a policy failure, 3 a target not audited (wins), 4 the mail
failed (wins over 1). The service logs that summary on stderr after every run and exits 0 after a
clean stop (SIGTERM/SIGINT). Both: 3 when another scheduler holds the lock or the history database
cannot be used; 2 for a configuration error. With [fleet] broker the `auditor worker` processes audit
and the lock is the night, claimed in the shared database (schedulers on several machines).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.errors import ConfigError
from auditor.locations import require
from auditor.reports.terminal import print_summary, terminal_console

if TYPE_CHECKING:
    from auditor.commands import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    schedule = sub.add_parser(
        "schedule",
        help="run the nightly audits (APScheduler); --once runs one now",
        description="Audit the config's targets at [schedule] cron in [schedule] timezone "
        "(a foreground service, for systemd), or once now with --once.",
    )
    schedule.add_argument("--config", type=Path, metavar="PATH", help="config file (default: ./config.toml)")
    mode = schedule.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="run the nightly job now and exit")
    mode.add_argument("--next", action="store_true", help="print the next run times and exit")
    return schedule


def run(args: argparse.Namespace) -> int:
    # lazy: the scheduler brings APScheduler, SQLAlchemy and the scanning stack (~0.8 s); the
    # parser imports every command module
    from auditor.app import announce, stderr_line
    from auditor.schedule import next_runs, run_nightly, scheduler_lock, serve

    config, config_path = require(args.config, "schedule")
    if not config.targets:
        raise ConfigError(f"{config_path}: no [[targets]] to audit")
    if args.next:
        for when in next_runs(config):
            print(when.strftime("%Y-%m-%d %H:%M:%S %Z"))
        return 0
    if args.once:
        with scheduler_lock(config):
            outcome = run_nightly(str(config_path.resolve()))
        print_summary(outcome.report, terminal_console(sys.stdout))
        announce(outcome, stderr_line)
        return outcome.exit_code()
    return serve(config, config_path, stderr_line)
