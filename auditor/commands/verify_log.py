"""`auditor verify-log`: recompute the evidence log's hash chain (clause 11.6).

Exit status: 0 intact; 5 broken (an entry altered, deleted, reordered, inserted or damaged; a checkpoint
pruning entries inside the retention window; the head of the reports (evidence-log-heads.txt in the
output directory) or of --expect-head missing; or no log at all), naming the first bad entry;
2 configuration error; 3 the database cannot be opened (locked, unreadable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.config import is_url
from auditor.locations import load

if TYPE_CHECKING:
    from auditor.commands import Subparsers

EXIT_LOG_BROKEN = 5


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    verify = sub.add_parser(
        "verify-log",
        help="verify the tamper-evident evidence log (exit 5 when broken)",
        description="Recompute the evidence log's hash chain (clause 11.6) and exit 5, naming "
        "the first bad entry, when an entry was altered, removed or inserted.",
    )
    verify.add_argument(
        "--config", type=Path, metavar="PATH", help="config file (default: ./config.toml when present)"
    )
    verify.add_argument(
        "--expect-head",
        metavar="HASH",
        help="the head hash printed in a report you hold: the log must still contain it",
    )
    return verify


def run(args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy (~0.2 s) only for the command that opens the history; the parser imports
    # every command module
    from auditor.store import Store

    config, _ = load(args.config)
    database = config.history.database
    if not is_url(database) and not Path(database).exists():
        print(
            f"evidence log BROKEN: no history database at {database} (nothing stored yet, or it was removed)",
            file=sys.stderr,
        )
        return EXIT_LOG_BROKEN
    with Store(database, create=False) as store:
        result = store.verify_with_heads(
            config.output.directory, config.history.retention_months, expect_head=args.expect_head
        )
        if not result.ok:
            where = f" at entry {result.first_bad_seq}" if result.first_bad_seq is not None else ""
            print(f"evidence log BROKEN{where}: {result.reason}", file=sys.stderr)
            return EXIT_LOG_BROKEN
        pruned = f"; {result.summary()}" if result.summary() else ""
        print(f"evidence log intact: {result.entries} entries, head {result.head}{pruned}")
        return 0
