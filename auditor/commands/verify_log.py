"""`auditor verify-log`: recompute the evidence log's hash chain. Exit 0 intact, 5 broken."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_LOG_BROKEN = 5


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # noqa: SLF001
    verify = sub.add_parser("verify-log", help="verify the tamper-evident evidence log")
    verify.add_argument("--config", type=Path, default=Path("config.toml"))
    verify.add_argument("--expect-head", metavar="HASH",
                        help="the head hash printed in a report you hold: the log must still end there or later")
    return verify


def run(args: argparse.Namespace) -> int:
    from auditor.config import load_config
    from auditor.store import Store

    config = load_config(args.config)
    store = Store(config.history.database)
    result = store.verify()
    if not result.ok:
        print(f"evidence log BROKEN at entry {result.first_bad_seq}: {result.reason}", file=sys.stderr)
        return EXIT_LOG_BROKEN
    if args.expect_head and not store.has_hash(args.expect_head):
        print(f"evidence log BROKEN: head {args.expect_head} from an earlier report is not in the chain",
              file=sys.stderr)
        return EXIT_LOG_BROKEN
    print(f"evidence log intact: {result.entries} entries, head {result.head}")
    return 0
