"""`auditor report SCAN.json --html PATH [--text PATH]`: render a saved JSON report again,
without rescanning (for a report mailed or archived earlier, or after a template change)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from auditor.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # noqa: SLF001
    report = sub.add_parser("report", help="render a saved JSON report as HTML or text")
    report.add_argument("json_report", type=Path, metavar="SCAN.json")
    report.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report here")
    report.add_argument("--text", type=Path, metavar="PATH", help="write the plain-text report here ('-' = stdout)")
    return report


def run(args: argparse.Namespace) -> int:
    from auditor.commands.audit import ensure_writable
    from reports.html import render_html
    from reports.json_report import load_report, write_atomic
    from reports.text import render_text

    if args.html is None and args.text is None:
        raise ConfigError("report: give --html PATH and/or --text PATH")
    try:
        report = load_report(args.json_report)
    except FileNotFoundError:
        raise ConfigError(f"{args.json_report}: file not found") from None
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"{args.json_report}: not an auditor JSON report ({first})") from None
    except OSError as exc:
        raise ConfigError(f"{args.json_report}: cannot read ({exc.strerror})") from None
    for option, path, render in (("--html", args.html, render_html), ("--text", args.text, render_text)):
        if path is None:
            continue
        if str(path) == "-":
            sys.stdout.write(render(report))
            continue
        ensure_writable(path, option)
        write_atomic(path, render(report))
        sys.stderr.write(f"report written: {path}\n")
    return 0
