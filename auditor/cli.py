"""The command line: the parser, the error-to-exit-code mapping, nothing else.

Each subcommand is a module in auditor/commands/ with `add_parser(subparsers)` and `run(args)`;
adding a command is one new module and one line in COMMANDS.

Exit codes: EXIT_CODES below, which `auditor --help` prints. Diagnostics go through say(): one
`auditor:`-prefixed line each, never wrapped, whatever stderr is.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import warnings
from typing import NoReturn

from auditor import __version__
from auditor.errors import EXIT_UNREACHABLE, EXIT_USAGE, AuditorError, ConfigError
from auditor.reports.sanitize import one_line

EXIT_CODES = """exit codes:
  0    every target audited and compliant (other commands: done)
  1    at least one target breaks the policy
  2    usage or configuration error (found before scanning), or an internal error
  3    a target could not be audited, the results could not be stored or a report file written,
       or the history database cannot be used (wins over 4 and 1)
  4    the report could not be mailed; it was written all the same (wins over 1)
  5    verify-log: the evidence log is broken
  130  interrupted (Ctrl-C; `schedule`: a second signal while a scan was running)

Run `auditor COMMAND --help` for the options of a command."""

COMMANDS = [
    "audit",
    "report",
    "schedule",
    "history",
    "diff",
    "verify-log",
    "demo",
    "worker",
    "schema",
    "metrics",
    "serve",
]


class Parser(argparse.ArgumentParser):
    """argparse whose errors exit with status 2 and one line, like every other usage error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"auditor: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of `only` that one (each command module imports what it
    runs: loading the eight of them costs about 0.1 s before an audit's first handshake)."""
    parser = Parser(
        prog="auditor",
        description="Audit HTTPS sites against the TLS policy.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"auditor {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=Parser, metavar="COMMAND", title="commands"
    )
    for name in [only] if only in COMMANDS else COMMANDS:
        module = importlib.import_module(f"auditor.commands.{name.replace('-', '_')}")
        command = module.add_parser(sub)
        command.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
        command.set_defaults(run=module.run)
    return parser


def _command_named(argv: list[str]) -> str | None:
    """The command the arguments name, if any: the first one that is not an option (the top-level
    options take no value). None (every command's parser) for `auditor --help` and the like."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    # sslyze's bundled trust stores hold old roots that cryptography warns about on every load.
    warnings.filterwarnings("ignore", message=r".*serial number which wasn't positive.*")
    args = build_parser(_command_named(sys.argv[1:] if argv is None else argv)).parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        say(str(exc))
        return EXIT_USAGE
    except AuditorError as exc:
        say(str(exc))
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as exc:
        if args.debug:
            raise
        say(
            f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())} (run with --debug for details)"
        )
        return EXIT_USAGE


def entry(argv: list[str] | None = None) -> NoReturn:
    """The `auditor` program (console script and `python -m auditor`): main(), then out at once.

    Python's teardown of a finished audit (finalizing every sslyze, pydantic and cryptography object,
    then each module) costs 0.1-0.2 s after the last line is printed; nothing in it is ours to keep:
    report files, the history and the witness file are closed (and synced) by the steps that wrote
    them. So the process flushes its streams and log handlers and leaves with os._exit.
    Tests call main() instead, in-process."""
    try:
        status: object = main(argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        status = exc.code
    if status is None:
        status = 0
    elif not isinstance(status, int):
        sys.stderr.write(f"{status}\n")
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(
            OSError, ValueError
        ):  # a closed pipe (`auditor ... | head`), a closed stream
            stream.flush()
    os._exit(status)


def say(message: str) -> None:
    """Diagnostics on stderr: every line starts `auditor:` (grep, cron mail), none is ever wrapped, and
    text from a server or a file in it (a URL, a stored key) is shown, never obeyed (reports.sanitize)."""
    for line in message.splitlines() or [""]:
        sys.stderr.write(f"auditor: {one_line(line)}\n")
