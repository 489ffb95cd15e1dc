"""`auditor schema`: print the JSON Schema of the report (the versioned contract)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from auditor.reports.json_report import json_schema

if TYPE_CHECKING:
    from auditor.commands import Subparsers


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    return sub.add_parser(
        "schema",
        help="print the JSON Schema of the report",
        description="Print the JSON Schema of the JSON report (the versioned contract) on stdout.",
    )


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(json_schema())
    return 0
