"""One module per subcommand: `add_parser(subparsers) -> parser` and `run(args) -> exit code`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    # argparse names the type of `add_subparsers()` only privately
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]  # noqa: SLF001
