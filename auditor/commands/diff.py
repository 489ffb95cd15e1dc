"""`auditor diff [TARGET] [--scan A --scan B]`: what changed between two stored scans.

A stored scan holds what a server sent (and a database can be written by others): every stored
string is printed through reports.sanitize.one_line, shown and never obeyed by the terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.changes import diff_results
from auditor.errors import ConfigError
from auditor.locations import load
from auditor.reports.sanitize import one_line
from auditor.targets import parse_url

if TYPE_CHECKING:
    from auditor.commands import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    diff = sub.add_parser(
        "diff",
        help="what changed between the last two scans of a target (or two scan ids)",
        description="Show what changed between the last two stored scans of a target, or "
        "between two scan ids: certificate, protocols, suites, clause verdicts.",
    )
    diff.add_argument(
        "target", nargs="?", metavar="URL", help="a target URL (default: the config's first target)"
    )
    diff.add_argument(
        "--scan",
        type=int,
        action="append",
        metavar="ID",
        help="a scan id from `auditor history`; give it twice (default: the target's last two scans)",
    )
    diff.add_argument(
        "--config", type=Path, metavar="PATH", help="config file (default: ./config.toml when present)"
    )
    return diff


def run(args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy (~0.2 s) only for the command that opens the history; the parser imports
    # every command module
    from auditor.store import Store

    config, _ = load(args.config)
    with Store(config.history.database, create=False) as store:
        if args.scan:
            if len(args.scan) != 2:
                raise ConfigError("--scan: give exactly two scan ids")
            old, new = store.get(min(args.scan)), store.get(max(args.scan))
            if old is None or new is None:
                raise ConfigError(f"--scan: no scan with id {args.scan[0] if old is None else args.scan[1]}")
            label = f"scans {min(args.scan)} -> {max(args.scan)}"
            if old.target.url != new.target.url:
                label += f" (different targets: {one_line(old.target.url)} and {one_line(new.target.url)})"
        else:
            url = (
                parse_url(args.target).url
                if args.target
                else (parse_url(config.targets[0].url).url if config.targets else None)
            )
            if url is None:
                raise ConfigError("diff: give a target URL")
            damaged: list[int] = []  # passed over; `verify-log` reports them
            latest = store.latest(url, skipped=damaged)
            previous = store.latest(url, before_seq=latest[0], skipped=damaged) if latest else None
            if damaged:
                print(
                    f"auditor: damaged scan(s) {', '.join(map(str, damaged))} passed over "
                    "(run `auditor verify-log`)",
                    file=sys.stderr,
                )
            if latest is None or previous is None:
                raise ConfigError(f"diff: fewer than two stored scans of {one_line(url)}")
            (_, old), (_, new) = previous, latest
            label = f"scans {previous[0]} -> {latest[0]} of {one_line(url)}"
        changes = diff_results(old, new)
        print(f"{label} ({old.started_at:%Y-%m-%d %H:%M} -> {new.started_at:%Y-%m-%d %H:%M} UTC)")
        if not changes.changes:
            print("no change")
        for c in changes.changes:
            detail = f"  [{one_line(c.detail)}]" if c.detail else ""
            print(
                f"  {one_line(c.kind):11} {one_line(c.subject)}: {one_line(c.before or '-')} -> "
                f"{one_line(c.after or '-')}{detail}"
            )
        return 0
