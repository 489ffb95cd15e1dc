"""`auditor audit [URL ...]`: audit URLs (or every config target), print, write reports, exit."""

from __future__ import annotations

import argparse
import ipaddress
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from pydantic import ValidationError

from auditor import locations
from auditor.config import Config, Scan, Target, check_ca_bundle, config_digest
from auditor.config_errors import describe
from auditor.errors import EXIT_OK, EXIT_POLICY, ConfigError
from auditor.locations import ensure_writable
from auditor.reports.formats import HELP as FORMAT_HELP
from auditor.reports.formats import ReportFile
from auditor.reports.formats import configured as configured_formats
from auditor.targets import TargetError, is_ip, parse_url, read_target_list

if TYPE_CHECKING:
    from auditor.audit import PhaseCallback
    from auditor.commands import Subparsers
    from auditor.model import AuditReport, TargetResult

    # what the audit reports progress to, and the display to run it in
    Watch: TypeAlias = tuple[PhaseCallback, Callable[[TargetResult], None], AbstractContextManager[object]]


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    audit = sub.add_parser(
        "audit",
        help="audit URLs, or every target in the config",
        description="Audit HTTPS sites against the TLS policy: the URLs given, else every "
        "[[targets]] entry of the config; print the verdict and exit 0/1/3/4.",
    )
    audit.add_argument(
        "urls", nargs="*", metavar="URL", help="https://host[:port]; none = all config targets"
    )
    audit.add_argument(
        "--config", type=Path, metavar="PATH", help="config file (default: ./config.toml when present)"
    )
    audit.add_argument(
        "--ip",
        metavar="ADDR",
        action="append",
        help="connect to this address instead of resolving the URL's host, keeping that host for SNI "
        "and Host; repeat it to audit several endpoints of the site (no DNS query)",
    )
    audit.add_argument("--ca-bundle", type=Path, metavar="PEM", help="PEM file of a private CA to trust")
    audit.add_argument("--http-port", type=int, metavar="N", help="port of the plain-HTTP site (default: 80)")
    audit.add_argument("--json", metavar="PATH", help="write the JSON report here ('-' for stdout)")
    audit.add_argument("--html", metavar="PATH", help="write the HTML report here")
    for name, text in FORMAT_HELP.items():
        audit.add_argument(f"--{name}", metavar="PATH", help=text)
    audit.add_argument(
        "--targets-from",
        metavar="FILE",
        help="audit the URLs listed in FILE too, one per line ('#' comments; '-' for stdin)",
    )
    audit.add_argument("--email", action="store_true", help="mail the report as configured in [email]")
    audit.add_argument(
        "--store",
        action="store_true",
        help="record this audit in the history and evidence log ([history] in the config)",
    )
    audit.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="wall-clock seconds for each connection: connect, handshake and every exchange "
        f"(default: [scan] timeout in the config, else {Scan.model_fields['timeout'].default:g})",
    )
    audit.add_argument(
        "--connections-per-server",
        type=int,
        metavar="N",
        help="TLS connections open at once to one server (default: [scan] connections_per_server "
        f"in the config, else {Scan.model_fields['connections_per_server'].default}); "
        "1 with --pace for servers that rate-limit",
    )
    audit.add_argument(
        "--pace",
        type=float,
        metavar="SECONDS",
        help="at least this long between two new connections to one server (default: [scan] pace "
        "in the config, else 0)",
    )
    audit.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="targets audited at once (default: [scan] concurrency in the config, "
        f"else {Scan.model_fields['concurrency'].default})",
    )
    audit.add_argument(
        "--thorough",
        action="store_true",
        help="enumerate cipher suites one connection per suite, sslyze's exhaustive scan "
        "(default: [scan] thorough in the config, else off)",
    )
    audit.add_argument(
        "--mozilla-profile",
        choices=("intermediate", "modern"),
        help="fail the run (exit 1) when a target deviates from this configuration of Mozilla's "
        "server-side TLS guidelines 6.0 (judged and reported either way)",
    )
    audit.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="only the verdict lines; no progress, no list of files written",
    )
    return audit


def resolve_targets(args: argparse.Namespace) -> tuple[Config, Path | None, list[Target]]:
    """The config and the targets of this run; ConfigError (exit 2) before any scanning."""
    config, config_path = locations.load(args.config)  # the same rule as every command (auditor.locations)
    overrides = {
        k: v
        for k, v in (
            ("timeout", args.timeout),
            ("concurrency", args.concurrency),
            ("connections_per_server", args.connections_per_server),
            ("pace", args.pace),
            ("thorough", args.thorough or None),
        )
        if v is not None
    }
    if overrides:
        try:
            config.scan = config.scan.model_validate({**config.scan.model_dump(), **overrides})
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise ConfigError(
                f"--{str(problem['loc'][0]).replace('_', '-')}: {describe(problem, type(config.scan))}"
            ) from None
    if args.http_port is not None and not 1 <= args.http_port <= 65535:
        raise ConfigError(f"--http-port: {args.http_port} is not a port number (1-65535)")
    for address in args.ip or []:
        try:
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise ConfigError(f"--ip: {address!r} is not an IP address") from None
    if args.ca_bundle is not None and (why := check_ca_bundle(args.ca_bundle)) is not None:
        raise ConfigError(f"--ca-bundle: {why}")
    given = given_urls(args)
    args.urls = [
        url for url, _ in given
    ]  # a list's URLs are URLs given: the config's targets are not audited
    if not args.urls:
        if config_path is None:
            raise ConfigError("no URL given and no config.toml here; give a URL or --config PATH")
        if not config.targets:
            raise ConfigError(f"{config_path}: no [[targets]] to audit")
        return config, config_path, list(config.targets)
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in Target.model_fields.items()
        if name != "url"
    }
    targets = []
    for url, name in given:
        fields = {"url": url, "name": name, "ips": args.ip, "ca_bundle": args.ca_bundle}
        if args.http_port:
            fields["http_port"] = args.http_port
        # Not validated here on purpose: a bad URL is that target's error (exit 3), not a usage error.
        targets.append(
            Target.model_construct(**{**defaults, **{k: v for k, v in fields.items() if v is not None}})
        )
    return config, config_path, targets


def given_urls(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """The URL arguments, then the lines of --targets-from, each with a name only when it is not a
    URL that can be audited ("FILE line N"), so that target's error says where it came from."""
    given: list[tuple[str, str | None]] = [(url, None) for url in args.urls]
    if args.targets_from is None:
        return given
    listed = read_target_list(args.targets_from, sys.stdin)
    if not listed and not given:
        raise ConfigError(
            f"--targets-from: {args.targets_from} lists no URL (one per line; '#' starts a comment)"
        )
    return given + [(t.url, None if t.valid else t.where) for t in listed]


def progress_display(*, quiet: bool) -> Watch | None:
    """A spinner per target on stderr while it is audited, when stderr is a terminal: the
    callbacks and the display to run the audit in."""
    if quiet:
        return None
    # lazy: rich (~80 ms) only when someone may watch: a quiet run's summary loads it during the scan
    from rich.console import Console

    err = Console(file=sys.stderr, highlight=False)
    if not err.is_terminal:
        return None
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn  # lazy: as above

    lock = threading.Lock()
    tasks: dict[str, TaskID] = {}
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True
    )

    def on_phase(url: str, phase: str) -> None:
        with lock:
            if url not in tasks:
                tasks[url] = progress.add_task(url, total=None)
            progress.update(tasks[url], description=f"{url}  [dim]{phase}[/dim]")

    def on_result(result: TargetResult) -> None:
        with lock:
            task = tasks.pop(result.target.url, None)
            if task is not None:
                progress.remove_task(task)

    return on_phase, on_result, progress


def report_files(args: argparse.Namespace, config: Config, config_path: Path | None) -> list[ReportFile]:
    """The report files asked for, in the order they are written ('-': stdout): --json, --html,
    JUnit/SARIF/CSV, then audit-<time>-<random>.json and latest.json in [output] directory."""
    files = []
    if args.json:
        files.append(ReportFile(None if args.json == "-" else Path(args.json), "json", "--json"))
    if args.html:
        files.append(ReportFile(Path(args.html), "html", "--html"))
    for option, name, destination in requested_formats(args, config, config_path):
        files.append(ReportFile(None if destination == "-" else Path(destination), name, option))
    if writes_output_directory(args, config, config_path):  # as well as --json/--html, never instead
        # a name of this run only: concurrent runs in the same second used to replace each other's
        # lazy: the report models load after the first handshake (auditor.scan.early_contact)
        from auditor.reports.json_report import run_stem

        stem = run_stem("audit", datetime.now(UTC))
        for path in (config.output.directory / f"{stem}.json", config.output.directory / "latest.json"):
            files.append(ReportFile(path, "json", "output.directory"))
    return files


def requested_formats(
    args: argparse.Namespace, config: Config, config_path: Path | None
) -> list[tuple[str, str, str]]:
    """(option, format, destination) of each JUnit/SARIF/CSV report asked for: by its flag, and by
    its [output] key when the config's own targets are audited (as latest.json is)."""
    wanted = [(f"--{name}", name, getattr(args, name)) for name in FORMAT_HELP if getattr(args, name)]
    if config_path is not None and not args.urls:
        wanted += [(f"output.{name}", name, str(path)) for name, path in configured_formats(config.output)]
    return wanted


def to_stdout(args: argparse.Namespace) -> list[str]:
    """The options that send a report to stdout ('-'): at most one, the terminal view then goes to stderr."""
    return [f"--{name}" for name in ("json", *FORMAT_HELP) if getattr(args, name) == "-"]


def writes_output_directory(args: argparse.Namespace, config: Config, config_path: Path | None) -> bool:
    """audit-<time>-<random>.json and latest.json go to [output] directory when the config's own
    targets are audited (a one-off URL audit must not replace the nightly latest.json)."""
    return config_path is not None and config.output.write_json and not args.urls


def contact_early(config: Config, targets: list[Target]) -> None:
    """Start the first handshake of the first targets while the scanning stack imports, and after
    it the client simulations (auditor.scan.early_contact: the scan takes their outcomes and goes
    on with their ledger; the same connections for a TLS 1.3 server, one more for a server that
    refuses TLS 1.3). Not
    when the user asked to be gentle (pace, one connection at a time), for the exhaustive scan
    (it does not take it), or with name servers of the config's own (the scan resolves
    through them)."""
    scan = config.scan
    if scan.thorough or scan.pace > 0 or scan.connections_per_server <= 1 or config.dns.nameservers:
        return
    # lazy: nassl and the ledger only (~30 ms), before the ~0.3 s of the rest
    from auditor.scan import early_contact

    for target in targets[: scan.concurrency]:
        try:
            parsed = parse_url(target.url)
        except TargetError:
            continue  # the audit reports it
        addresses = target.addresses()
        address = (
            addresses[0]
            if addresses
            else (str(ipaddress.ip_address(parsed.host)) if is_ip(parsed.host) else None)
        )
        early_contact.start(parsed.host, parsed.port, address, scan.timeout, scan.connections_per_server)


def run(args: argparse.Namespace) -> int:
    if len(stdout := to_stdout(args)) > 1:
        raise ConfigError(f"{' and '.join(stdout)}: only one report can go to stdout ('-')")
    config, config_path, targets = resolve_targets(args)
    # Every output path is checked before scanning (exit 2): a directory given as a file, a file
    # given as the output directory, a place that cannot be written.
    if args.json and args.json != "-":
        ensure_writable(Path(args.json), "--json")
    for option, _, destination in requested_formats(args, config, config_path):
        if destination != "-":
            ensure_writable(Path(destination), option)
    if writes_output_directory(args, config, config_path):
        ensure_writable(config.output.directory, "output.directory", directory=True)
    if args.html:
        ensure_writable(Path(args.html), "--html")
    if args.email:
        if config.email is None:
            raise ConfigError(
                f"--email: no [email] section in {config_path or 'the configuration (use --config)'}"
            )
        # lazy: the mailer loads during the scan (auditor.app.AFTER_THE_SCAN)
        from auditor.reports.email import password_for

        password_for(config.email)  # a missing password is a configuration error, found before scanning
    store = None
    if args.store:
        # lazy: SQLAlchemy (~0.2 s) only for a run that stores
        from auditor.store import Store

        locations.check_database_place(config)  # exit 3 before scanning: the history cannot be kept safely
        store = Store(config.history.database)
        locations.check_witness_place(config)
    contact_early(config, targets)  # nothing is sent to a server before the checks above
    # lazy: the pipeline brings the scanning stack (sslyze, httpx: ~0.5 s); the parser imports every
    # command module, and only the command that audits needs it
    from auditor import app
    from auditor.audit import warmed  # lazy: part of the pipeline just imported
    from auditor.model import ReportMeta  # lazy: part of the pipeline just imported

    def show(report: AuditReport) -> None:
        warmed()
        # lazy: rich and the terminal view load during the scan (auditor.app.AFTER_THE_SCAN)
        from auditor.reports.terminal import print_summary, render, terminal_console

        out = terminal_console(sys.stderr if to_stdout(args) else sys.stdout)
        if args.quiet:
            print_summary(report, out)  # the verdict summary `schedule --once` prints too
        else:
            render(report, out)
        out.file.flush()

    plan = app.Plan(
        config,
        meta=ReportMeta(
            config_sha256=config_digest(config_path),
            config_path=str(config_path) if config_path else None,
        ),
        store=store,
        files=lambda report: report_files(args, config, config_path),
        show=show,
        mail="always" if args.email else "never",
    )
    if (watch := progress_display(quiet=args.quiet)) is not None:
        plan.on_phase, plan.on_result, plan.progress = watch
    try:
        outcome = app.run(targets, plan)
    finally:
        if store is not None:
            store.close()
    app.announce(outcome, app.stderr_line, quiet=args.quiet)
    code = outcome.exit_code()
    if getattr(args, "mozilla_profile", None):
        from auditor.mozilla_profile import gate  # lazy: loaded during the scan (auditor.audit.warm_up)

        for line in (deviating := gate(outcome.report.targets, args.mozilla_profile)):
            app.stderr_line(f"auditor: --mozilla-profile: {line}")
        if deviating and code == EXIT_OK:
            code = EXIT_POLICY  # the run fails as a policy violation does (3 and 4 still win)
    return code
