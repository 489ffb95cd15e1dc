"""`auditor history [TARGET]`: past scans, newest first (scan id, time, grade, web grade, compliant, failures).
The scan ids are those `auditor diff --scan ID --scan ID` takes. Stored strings are shown through
reports.sanitize.one_line (and rich's markup escape): a database cannot drive the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auditor.checks.clauses import CLAUSES, SINCE
from auditor.errors import StoreError
from auditor.exposure import all_episodes
from auditor.facts import span
from auditor.locations import load
from auditor.reports.sanitize import one_line
from auditor.targets import parse_url

if TYPE_CHECKING:
    from auditor.commands import Subparsers
    from auditor.store import Store


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    history = sub.add_parser(
        "history",
        help="list past scans from the history database",
        description="List past scans, newest first, from the config's [history] database; "
        "the scan ids are those `auditor diff --scan` takes.",
    )
    history.add_argument("target", nargs="?", metavar="URL", help="a target URL (default: all)")
    history.add_argument(
        "--config", type=Path, metavar="PATH", help="config file (default: ./config.toml when present)"
    )
    history.add_argument(
        "--limit",
        type=int,
        default=50,
        metavar="N",
        help="show at most this many scans (default: %(default)s)",
    )
    history.add_argument(
        "--clause",
        metavar="ID",
        help="list the failure episodes of this clause instead (when each began and ended, "
        "scans, gaps), e.g. 11.4-vulnerabilities (one row per flaw)",
    )
    return history


def _web_letter(store: Store, seq: int) -> str:
    """The web grade letter of a stored scan ("-" for scans from before it, or unreadable ones)."""
    try:
        result = store.get(seq)
    except StoreError:
        return "?"
    return (result.web_grade.letter or "-") if result and result.web_grade else "-"


def run(args: argparse.Namespace) -> int:
    # lazy: SQLAlchemy (~0.2 s) only for the command that opens the history; the parser imports
    # every command module
    from auditor.store import Store

    config, _ = load(args.config)
    with Store(config.history.database, create=False) as store:
        target = parse_url(args.target).url if args.target else None
        if args.clause:
            return _episodes(store, args.clause, target)
        rows = store.history(target, args.limit)
        if not rows:
            print(f"no stored scans{' of ' + one_line(target) if target else ''} in {one_line(store.name)}")
            return 0
        table = Table("scan", "time (UTC)", "target", "grade", "web", "compliant", "failures")
        for row in rows:
            table.add_row(
                str(row.seq),
                escape(one_line(str(row.scanned_at)[:19].replace("T", " "))),
                escape(one_line(row.target_url)),
                escape(one_line(row.grade or "-")),
                escape(one_line(_web_letter(store, row.seq), 16)),
                "yes" if row.compliant else "NO",
                str(row.failures),
            )
        Console(highlight=False, width=140).print(table)
        return 0


def _episodes(store: Store, clause: str, target: str | None) -> int:
    """`history --clause ID`: every episode of that clause (and of its rows), per target, from the
    stored scans: the same derivation as the reports' "failing since" (auditor.exposure)."""
    if clause not in CLAUSES:
        print(f"auditor: unknown clause {one_line(clause)!r}; one of: {', '.join(CLAUSES)}")
        return 2
    urls = (
        [target] if target else list(dict.fromkeys(row.target_url for row in store.history(None, 1_000_000)))
    )
    table = Table(
        "target",
        "finding",
        "first seen (UTC)",
        "last seen (UTC)",
        "scans",
        "gaps",
        "ended (UTC)",
        "remediated in",
    )
    count = 0
    for url in urls:
        for key, eps in all_episodes(store.recent(url), SINCE).items():
            if key != clause and not key.startswith(clause + "/"):
                continue
            for ep in eps:
                count += 1
                ended = f"{ep.closed_at:%Y-%m-%d %H:%M}" if ep.closed_at else "open"
                table.add_row(
                    escape(one_line(url)),
                    escape(one_line(key)),
                    f"{ep.first_seen:%Y-%m-%d %H:%M}",
                    f"{ep.last_seen:%Y-%m-%d %H:%M}",
                    str(ep.scans),
                    str(len(ep.gaps)),
                    ended,
                    span(ep.remediated_in) if ep.remediated_in is not None else "-",
                )
    if not count:
        print(f"no failure of {clause} in the stored scans{' of ' + one_line(target) if target else ''}")
        return 0
    Console(highlight=False, width=240).print(table)
    return 0
