"""`auditor schema`: print the JSON Schema of the report (the versioned contract)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # noqa: SLF001
    return sub.add_parser(
        "schema",
        help="print the JSON Schema of the report",
        description="Print the JSON Schema of the JSON report (the versioned contract) on stdout.",
    )


def run(args: argparse.Namespace) -> int:
    from auditor.reports.json_report import json_schema

    sys.stdout.write(json_schema())
    return 0
