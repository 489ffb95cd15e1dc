"""`auditor report [SCAN.json] [--html PATH] [--text PATH]`: render a saved JSON report again (with
no flag, the text report on stdout),
without rescanning (for a report mailed or archived earlier, or after a template change)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from auditor.errors import ConfigError
from auditor.locations import ensure_writable, load
from auditor.reports.formats import HELP as FORMAT_HELP
from auditor.reports.formats import render
from auditor.reports.json_report import load_report
from auditor.reports.sanitize import one_line
from auditor.safe_files import write_atomic

if TYPE_CHECKING:
    from auditor.commands import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    report = sub.add_parser(
        "report",
        help="render a saved JSON report as HTML or text",
        description="Render a saved JSON report again, without rescanning: the plain-text "
        "report on stdout, or the files the options below name.",
    )
    report.add_argument(
        "json_report",
        type=Path,
        metavar="SCAN.json",
        nargs="?",
        help="a saved JSON report (default: latest.json in the config's [output] directory)",
    )
    report.add_argument(
        "--config", type=Path, metavar="PATH", help="config file (default: ./config.toml when present)"
    )
    report.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report here")
    report.add_argument(
        "--text",
        type=Path,
        metavar="PATH",
        help="write the plain-text report here ('-' = stdout, the default when no other output is named)",
    )
    for name, text in FORMAT_HELP.items():
        report.add_argument(f"--{name}", type=Path, metavar="PATH", help=text)
    return report


def run(args: argparse.Namespace) -> int:
    if args.json_report is None:  # the same rule as every command: see auditor.locations
        args.json_report = load(args.config)[0].output.directory / "latest.json"
    extra = [(f"--{name}", getattr(args, name), name) for name in FORMAT_HELP]
    if args.html is None and args.text is None and not any(path for _, path, _ in extra):
        args.text = Path("-")  # no flag: the plain-text report on stdout
    try:
        report = load_report(args.json_report)
    except FileNotFoundError:
        raise ConfigError(f"{args.json_report}: file not found") from None
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(
            f"{args.json_report}: not an auditor JSON report ({one_line(first, 300)})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{args.json_report}: cannot read ({exc.strerror})") from None
    outputs: list[tuple[str, Path | None, str]] = [
        ("--html", args.html, "html"),
        ("--text", args.text, "text"),
        *extra,
    ]
    if len(stdout := [option for option, path, _ in outputs if str(path) == "-"]) > 1:
        raise ConfigError(f"{' and '.join(stdout)}: only one report can go to stdout ('-')")
    for option, path, name in outputs:
        if path is None:
            continue
        if str(path) == "-":
            sys.stdout.write(render(report, name))
            continue
        ensure_writable(path, option)
        write_atomic(path, render(report, name))
        sys.stderr.write(f"report written: {path}\n")
    return 0
