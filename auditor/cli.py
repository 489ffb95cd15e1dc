"""The command line: argument parsing, output choices and exit codes only; no audit logic.

Exit codes: 0 every target compliant, 1 a policy failure, 2 usage or configuration error,
3 a target could not be audited (wins over 1).
"""

from __future__ import annotations

import argparse
import sys
import threading
import warnings
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from auditor import __version__
from auditor.errors import AuditorError, ConfigError
from auditor.model import AuditReport, TargetResult

EXIT_OK, EXIT_POLICY, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
DEFAULT_CONFIG = Path("config.toml")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"auditor: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="auditor", description="Audit HTTPS sites against the TLS policy.")
    parser.add_argument("--version", action="version", version=f"auditor {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    audit = sub.add_parser("audit", help="audit URLs, or every target in the config")
    audit.add_argument("urls", nargs="*", metavar="URL", help="https://host[:port]; none = all config targets")
    audit.add_argument("--config", type=Path, help="config file (default: ./config.toml if present)")
    audit.add_argument("--ip", help="connect to this address, keeping the URL's host for SNI and Host")
    audit.add_argument("--ca-bundle", type=Path, help="PEM file of a private CA to trust")
    audit.add_argument("--http-port", type=int, help="port of the plain-HTTP site (default 80)")
    audit.add_argument("--json", metavar="PATH", help="write the JSON report here ('-' for stdout)")
    audit.add_argument("--timeout", type=float, help="seconds per network operation")
    audit.add_argument("--concurrency", type=int, help="targets audited at once")
    audit.add_argument("--quiet", "-q", action="store_true", help="only the verdict lines; no progress")
    audit.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    schema = sub.add_parser("schema", help="print the JSON Schema of the report")
    schema.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module=r"sslyze\..*")
    warnings.filterwarnings("ignore", message=r".*serial number which wasn't positive.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "audit":
            return _audit(args)
        if args.command == "schema":
            from reports.json_report import json_schema

            sys.stdout.write(json_schema())
            return EXIT_OK
    except ConfigError as exc:
        sys.stderr.write(f"auditor: {exc}\n")
        return EXIT_USAGE
    except AuditorError as exc:
        sys.stderr.write(f"auditor: {exc}\n")
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        sys.stderr.write("auditor: interrupted\n")
        return 130
    except Exception as exc:
        if args.debug:
            raise
        sys.stderr.write(f"auditor: internal error: {type(exc).__name__}: {exc} (run with --debug for details)\n")
        return EXIT_USAGE
    return EXIT_USAGE


def _targets_and_config(args: argparse.Namespace):  # noqa: ANN202
    from auditor.config import Target, load_config

    config_path = args.config
    if config_path is None and DEFAULT_CONFIG.is_file() and not args.urls:
        config_path = DEFAULT_CONFIG
    config = load_config(config_path)
    overrides = {}
    if args.timeout is not None:
        overrides["timeout"] = args.timeout
    if args.concurrency is not None:
        overrides["concurrency"] = args.concurrency
    if overrides:
        try:
            config.scan = config.scan.model_validate({**config.scan.model_dump(), **overrides})
        except Exception as exc:
            raise ConfigError(f"command line: {exc}".splitlines()[0] + " (see --help)") from None
    if args.http_port is not None and not 1 <= args.http_port <= 65535:
        raise ConfigError(f"--http-port: {args.http_port} is not a port number (1-65535)")
    if args.ca_bundle is not None and not args.ca_bundle.is_file():
        raise ConfigError(f"--ca-bundle: no such file {str(args.ca_bundle)!r}")
    if args.urls:
        targets = []
        for url in args.urls:
            fields = {"url": url}
            if args.ip:
                fields["ip"] = args.ip
            if args.ca_bundle:
                fields["ca_bundle"] = args.ca_bundle
            if args.http_port:
                fields["http_port"] = args.http_port
            # Invalid URLs are reported per target (exit 3), not as a usage error.
            targets.append(Target.model_construct(**{**_defaults(), **fields}))
    else:
        if config_path is None:
            raise ConfigError("no URL given and no config.toml here; give a URL or --config PATH")
        targets = list(config.targets)
        if not targets:
            raise ConfigError(f"{config_path}: no [[targets]] to audit")
    return config, config_path, targets


def _defaults() -> dict:  # type: ignore[type-arg]
    from auditor.config import Target

    return {name: field.get_default(call_default_factory=True)
            for name, field in Target.model_fields.items() if name != "url"}


def _audit(args: argparse.Namespace) -> int:
    from auditor.audit import config_digest, run_audit
    from reports.json_report import to_json, write_atomic
    from reports.terminal import render, verdict_line

    config, config_path, targets = _targets_and_config(args)
    json_to_stdout = args.json == "-"
    out = Console(file=sys.stderr if json_to_stdout else sys.stdout, highlight=False, soft_wrap=False)
    err = Console(file=sys.stderr, highlight=False)
    animate = not args.quiet and err.is_terminal
    meta = {"config_sha256": config_digest(config_path), "config_path": str(config_path) if config_path else None}

    lock = threading.Lock()
    progress = None
    tasks: dict[str, int] = {}
    if animate:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                            console=err, transient=True)

    def on_phase(url: str, phase: str) -> None:
        if progress is None:
            return
        with lock:
            if url not in tasks:
                tasks[url] = progress.add_task(url, total=None)
            progress.update(tasks[url], description=f"{url}  [dim]{phase}[/dim]")

    def on_result(result: TargetResult) -> None:
        if progress is not None:
            with lock:
                task = tasks.get(result.target.url)
                if task is not None:
                    progress.remove_task(task)

    if progress is not None:
        with progress:
            report = run_audit(targets, config, on_phase=on_phase, on_result=on_result, meta=meta)
    else:
        report = run_audit(targets, config, on_phase=None, on_result=on_result, meta=meta)

    if args.quiet:
        for result in report.targets:
            out.print(verdict_line(result))
    else:
        render(report, out)

    _write_reports(report, args, config, config_path, to_json, write_atomic, err)
    return exit_code(report)


def _write_reports(report: AuditReport, args, config, config_path, to_json, write_atomic, err) -> None:  # noqa: ANN001
    if args.json == "-":
        sys.stdout.write(to_json(report) + "\n")
    elif args.json:
        path = Path(args.json)
        try:
            write_atomic(path, to_json(report))
        except OSError as exc:
            raise ConfigError(f"--json: cannot write {str(path)!r} ({exc.strerror})") from None
        if not args.quiet:
            err.print(f"JSON report: {path}")
    elif config_path is not None and config.output.write_json and not args.urls:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = config.output.directory / f"audit-{stamp}.json"
        try:
            write_atomic(path, to_json(report))
            write_atomic(config.output.directory / "latest.json", to_json(report))
        except OSError as exc:
            raise ConfigError(f"output.directory: cannot write {str(config.output.directory)!r} "
                              f"({exc.strerror})") from None
        if not args.quiet:
            err.print(f"JSON report: {path}")


def exit_code(report: AuditReport) -> int:
    if any(t.error for t in report.targets):
        return EXIT_UNREACHABLE
    if not all(t.compliant for t in report.targets):
        return EXIT_POLICY
    return EXIT_OK
