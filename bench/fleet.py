"""Fleet benchmark: nightly runs over N local targets by 1 and 2 `auditor worker` processes (Celery on
a Redis broker, PostgreSQL history), and by sslyze's own concurrent scanner on the same targets.

    .venv/bin/python bench/fleet.py [--targets 100 1000] [--workers 1 2] [--concurrency 10] [--rtt 50]
                                    [--no-sslyze] [--sslyze-max N] [--keep DIR]

Method. One nginx serves every target: a wildcard certificate for *.fleet.test from the test PKI, one
server block that answers any name, its plain-HTTP listener redirecting to HTTPS. bench/engine.py's
DelayProxy sits in front of both ports and adds the round trip (RTT/2 each way, one more RTT before
the first client chunk: the TCP handshake). Target i is `https://site{i}.fleet.test:PROXY/` with
`ip = "127.0.0.1"`, so every target is a different name (SNI, Host, certificate name check) on the
same proxy port. redis-server and PostgreSQL are started on 127.0.0.1 with the test harness, and
each run gets its own database and queue (a fleet run claims the night in its database).

A fleet run is what a user runs: W `auditor worker --concurrency C` processes are started and wait
until ready (their start-up is not timed: workers run all the time), then `auditor schedule --once`
(the coordinator: queue one task per target, wait for every stored result, write one report) is timed
from start to exit. Each worker's peak RSS is its VmHWM (/proc/PID/status) read just before it is
stopped; the coordinator's and sslyze's come from wait4's rusage. sslyze runs as
`python -m sslyze --targets_in FILE` (its default scan: every command; its Scanner's defaults: 10
servers at once, 5 connections each) with the lines `site{i}.fleet.test:PROXY{127.0.0.1}`. The
workers' default --concurrency 10 matches it: the same 10 targets at once, 5 connections each.

CPU is counted per part, from /proc and rusage, over each timed run: the workers (from ready to
stop), the coordinator or sslyze, nginx, the delaying proxy (this process), PostgreSQL and redis
(each with its children), and the whole machine's busy time from /proc/stat, which includes other
jobs on a shared machine. Sizes run smallest first, the tools in the same order within a size.
Progress goes to stderr; the tables, the goals and the extrapolation to 100,000 sites a night to
stdout. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import DelayProxy
from tests.harness import postgres_server
from tests.harness.pki import TestPKI
from tests.harness.redis_server import RedisServer
from tests.harness.servers import NginxSite

DOMAIN = "fleet.test"
NIGHT_HOURS = 8  # the window a nightly run has, for the extrapolation
SITES_A_NIGHT = 100_000
READY_TIMEOUT = 120.0
AUDITOR = [sys.executable, "-m", "auditor"]
TICK = os.sysconf("SC_CLK_TCK")
SSLYZE = "sslyze (concurrent scanner)"
SHARED_PARTS = ("nginx", "delay proxy", "PostgreSQL", "redis")


@dataclass(frozen=True)
class Infra:
    """The running shared parts: where targets, broker and history server are, and their processes."""

    https_port: int  # the delaying proxy in front of nginx's HTTPS listener
    http_port: int  # the same in front of its plain-HTTP listener
    ca_bundle: Path
    broker: str
    postgres: str
    directory: Path
    pids: Mapping[str, int]  # shared part -> its main process (the proxy: this process)


@dataclass
class Row:
    targets: int
    tool: str
    wall: float
    errors: int  # targets reported with an error (not audited) or, for sslyze, not completed
    worker_rss_mib: list[float] = field(default_factory=list)
    main_rss_mib: float = 0.0  # the coordinator's, or sslyze's
    cpu: dict[str, float] = field(default_factory=dict)  # part -> CPU seconds during the run
    machine_busy: float = 0.0  # share of the machine's CPU time that was busy during the run
    machine_cpu: float = 0.0  # CPU seconds the whole machine was busy during the run
    audit_seconds: float = 0.0  # median time of one target's audit (fleet runs: duration_s)

    @property
    def per_minute(self) -> float:
        return self.targets * 60 / self.wall


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "ignore"}


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _postmaster(port: int) -> int:
    """The pid of the PostgreSQL server listening on `port` (its command line names the port)."""
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/postgres") and b"-p" in argv and str(port).encode() in argv:
            return int(entry.name)
    raise RuntimeError(f"no PostgreSQL process listening on port {port}")


@contextmanager
def _infrastructure(directory: Path, rtt_ms: int) -> Iterator[Infra]:
    """nginx for every name behind the delaying proxies, redis-server and PostgreSQL, all on loopback."""
    pki = TestPKI(directory / "pki")
    issued = pki.issue("fleet-wildcard", hosts=(f"*.{DOMAIN}",))
    with ExitStack() as stack:
        site = stack.enter_context(
            # `.fleet.test` matches fleet.test and every *.fleet.test; it is nginx's only server anyway
            NginxSite(directory / "nginx", issued=issued, server_name=f".{DOMAIN}")
        )
        assert site.http_port is not None and site.proc is not None
        https = DelayProxy(site.https_port, rtt_ms / 2000, rtt_ms / 1000)
        http = DelayProxy(site.http_port, rtt_ms / 2000, rtt_ms / 1000)
        redis = stack.enter_context(RedisServer())
        assert redis.proc is not None
        postgres = stack.enter_context(postgres_server.running_postgres())
        pids = {
            "nginx": site.proc.pid,
            "delay proxy": os.getpid(),
            "PostgreSQL": _postmaster(int(postgres.rsplit(":", 1)[1].split("/")[0])),
            "redis": redis.proc.pid,
        }
        yield Infra(https.port, http.port, pki.root_path, redis.url, postgres, directory, pids)


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after the command name: [0] state, [1] ppid, [11:15] CPU ticks."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int, tree: bool = True) -> float:
    """CPU seconds of a process so far; `tree`: with its live descendants and the children they
    reaped (cutime, cstime). 0 when it is gone."""
    parents: dict[int, list[int]] = {}
    if tree:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents.setdefault(int(_stat(entry.name)[1]), []).append(int(entry.name))
                except (OSError, IndexError):
                    continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            ticks = [int(value) for value in _stat(current)[11:15]]
        except (OSError, IndexError):
            continue
        total += sum(ticks) if tree else ticks[0] + ticks[1]
        todo.extend(parents.get(current, []))
    return total / TICK


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU since boot (/proc/stat), whoever ran."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # minus idle and iowait


@contextmanager
def _cpu_of_shared_parts(infra: Infra, row: Row) -> Iterator[None]:
    """Adds to `row` the CPU seconds each shared part spent during the block, and the machine's busy share."""
    before = {part: _cpu_seconds(pid, tree=part != "delay proxy") for part, pid in infra.pids.items()}
    busy, total = _machine_ticks()
    yield
    for part, pid in infra.pids.items():
        row.cpu[part] = _cpu_seconds(pid, tree=part != "delay proxy") - before[part]
    busy_after, total_after = _machine_ticks()
    row.machine_busy = (busy_after - busy) / max(1, total_after - total)
    row.machine_cpu = (busy_after - busy) / TICK


def _target_names(count: int) -> list[str]:
    return [f"site{i}.{DOMAIN}" for i in range(count)]


def _config(infra: Infra, count: int, label: str) -> Path:
    """A config for one fleet run: its own database and queue, `count` targets."""
    database = postgres_server.create_database(infra.postgres, f"bench_{label}")
    run_dir = infra.directory / label
    run_dir.mkdir()
    targets = "".join(
        f'[[targets]]\nurl = "https://{name}:{infra.https_port}/"\nip = "127.0.0.1"\n'
        f'ca_bundle = "{infra.ca_bundle}"\nhttp_port = {infra.http_port}\n\n'
        for name in _target_names(count)
    )
    path = run_dir / "config.toml"
    path.write_text(
        f'[history]\ndatabase = "{database}"\n\n[output]\ndirectory = "out"\n\n'
        f'[fleet]\nbroker = "{infra.broker}"\nqueue = "bench-{label}"\n\n{targets}'
    )
    return path


def _peak_rss_mib(pid: int) -> float:
    """VmHWM of a running process, MiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Worker:
    """One `auditor worker` process, its output in a log file."""

    def __init__(self, config: Path, concurrency: int, log: Path) -> None:
        self.log = log
        self.start_up_cpu = 0.0  # CPU seconds until ready (imports, broker and database set-up)
        with log.open("wb") as handle:  # the child holds its own copy
            self.proc = subprocess.Popen(
                [*AUDITOR, "worker", "--config", str(config), "--concurrency", str(concurrency)],
                cwd=ROOT,
                env=_env(),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        if " ready." not in self.log.read_text(errors="replace"):
            return False
        self.start_up_cpu = _cpu_seconds(self.proc.pid)
        return True

    def stop(self) -> tuple[float, float]:
        """Stop it (Celery's warm shutdown); its peak RSS in MiB and the CPU seconds it spent since it
        was ready, both read just before."""
        peak, cpu = _peak_rss_mib(self.proc.pid), _cpu_seconds(self.proc.pid) - self.start_up_cpu
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return peak, cpu


def _timed(cmd: list[str], log: Path) -> tuple[float, int, float, float]:
    """Wall time, exit status, peak RSS (MiB) and CPU seconds (wait4's rusage) of one command, its
    output in `log`."""
    started = time.monotonic()
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=_env(), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall, cpu = time.monotonic() - started, usage.ru_utime + usage.ru_stime
    return wall, os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, cpu


def fleet_run(infra: Infra, count: int, workers: int, concurrency: int) -> Row:
    """One nightly run of `count` targets by `workers` worker processes."""
    label = f"{count}_{workers}w"
    config = _config(infra, count, label)
    run_dir = config.parent
    row = Row(count, f"fleet, {workers} worker{'s' if workers > 1 else ''}", 0.0, 0)
    started = [Worker(config, concurrency, run_dir / f"worker-{i}.log") for i in range(workers)]
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not all(worker.ready() for worker in started):
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready after {READY_TIMEOUT:g} s (logs in {run_dir})")
            time.sleep(0.2)
        cmd = [*AUDITOR, "schedule", "--once", "--config", str(config)]
        with _cpu_of_shared_parts(infra, row):
            row.wall, code, row.main_rss_mib, row.cpu["coordinator"] = _timed(cmd, run_dir / "schedule.log")
    finally:
        stopped = [worker.stop() for worker in started]
    row.worker_rss_mib = [rss for rss, _ in stopped]
    row.cpu["workers"] = sum(cpu for _, cpu in stopped)
    results = json.loads((run_dir / "out" / "latest.json").read_text())["targets"]
    row.errors = sum(1 for result in results if result.get("error")) + count - len(results)
    row.audit_seconds = statistics.median(result["duration_s"] for result in results)
    if code != 0:
        _progress(f"  schedule --once exited {code}: {row.errors} target(s) not audited (see {run_dir})")
    return row


def sslyze_run(infra: Infra, count: int) -> Row:
    """sslyze's own concurrent scanner, default scan, over the same names on the same proxy."""
    run_dir = infra.directory / f"sslyze_{count}"
    run_dir.mkdir()
    targets = run_dir / "targets.txt"
    targets.write_text("".join(f"{name}:{infra.https_port}{{127.0.0.1}}\n" for name in _target_names(count)))
    result = run_dir / "sslyze.json"
    cmd = [sys.executable, "-m", "sslyze", "--quiet", "--json_out", str(result), "--targets_in", str(targets)]
    row = Row(count, SSLYZE, 0.0, 0)
    with _cpu_of_shared_parts(infra, row):
        row.wall, _, row.main_rss_mib, row.cpu["sslyze"] = _timed(cmd, run_dir / "sslyze.log")
    scans = json.loads(result.read_text())["server_scan_results"]
    row.errors = sum(1 for scan in scans if scan["scan_status"] != "COMPLETED") + count - len(scans)
    return row


def _growth(row: Row, rows: list[Row]) -> str:
    smaller = [r for r in rows if r.tool == row.tool and r.targets < row.targets]
    if not smaller:
        return "-"
    prev = max(smaller, key=lambda r: r.targets)
    return f"{row.wall / prev.wall:.1f}x for {row.targets / prev.targets:.0f}x targets"


def _table(rows: list[Row], rtt: int, concurrency: int) -> list[str]:
    lines = [
        f"| targets | tool (RTT {rtt} ms, worker --concurrency {concurrency}) | wall time | targets/min | "
        "not audited | peak RSS per worker | peak RSS (coordinator or sslyze) | time vs previous size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        workers = (
            " / ".join(f"{rss:.0f}" for rss in row.worker_rss_mib) + " MiB" if row.worker_rss_mib else "-"
        )
        lines.append(
            f"| {row.targets} | {row.tool} | {row.wall:.1f} s | {row.per_minute:.0f} | {row.errors} | "
            f"{workers} | {row.main_rss_mib:.0f} MiB | {_growth(row, rows)} |"
        )
    return lines


def _cpu_table(rows: list[Row]) -> list[str]:
    """CPU milliseconds per target by part: where the machine's two cores go."""
    own = ("workers", "coordinator", "sslyze")
    lines = [
        "| targets | tool | CPU ms per target: workers or sslyze | coordinator | "
        + " | ".join(SHARED_PARTS)
        + " | sum | other jobs on the machine | machine busy |",
        "|---|---|---|---|" + "---|" * len(SHARED_PARTS) + "---|---|---|",
    ]
    for row in rows:
        per = {part: 1000 * seconds / row.targets for part, seconds in row.cpu.items()}
        main = per.get("workers", per.get("sslyze", 0.0))
        cells = [f"{main:.0f}", f"{per['coordinator']:.0f}" if "coordinator" in per else "-"]
        cells += [f"{per.get(part, 0.0):.0f}" for part in SHARED_PARTS]
        total = sum(value for part, value in per.items() if part in own or part in SHARED_PARTS)
        lines.append(
            f"| {row.targets} | {row.tool} | {' | '.join(cells)} | {total:.0f} | "
            f"{max(0.0, 1000 * row.machine_cpu / row.targets - total):.0f} | "
            f"{row.machine_busy:.0%} of {os.cpu_count()} CPUs |"
        )
    return lines


def _goals(rows: list[Row]) -> list[str]:
    """Each goal of issue 17 §2 against the figures."""
    lines = []
    by = {(row.targets, row.tool): row for row in rows}
    sizes = sorted({row.targets for row in rows})
    one, two = "fleet, 1 worker", "fleet, 2 workers"
    for tool in (one, two, SSLYZE):
        measured = [by[(n, tool)] for n in sizes if (n, tool) in by]
        if len(measured) >= 2:
            first, last = measured[0], measured[-1]
            growth, size = last.wall / first.wall, last.targets / first.targets
            verdict = "met" if growth <= 1.1 * size else "NOT met"
            lines.append(
                f"- Time at most linear in targets, {tool}: {first.targets} -> {last.targets} targets "
                f"({size:.0f}x) took {growth:.2f}x the time ({first.per_minute:.0f} -> "
                f"{last.per_minute:.0f} targets/min), {verdict}."
            )
    for n in sizes:
        if (n, one) in by and (n, two) in by:
            ratio = by[(n, two)].per_minute / by[(n, one)].per_minute
            verdict = "met" if ratio >= 1.8 else "NOT met"
            lines.append(
                f"- 2 workers >= 1.8x one worker's throughput, {n} targets: {ratio:.2f}x, {verdict}."
            )
    for n in sizes:
        if (n, SSLYZE) not in by:
            continue
        for tool in (one, two):
            if (n, tool) in by:
                ratio = by[(n, tool)].per_minute / by[(n, SSLYZE)].per_minute
                verdict = "met" if ratio >= 5 else "NOT met"
                lines.append(f"- >= 5x sslyze's throughput, {n} targets, {tool}: {ratio:.1f}x, {verdict}.")
    for tool in (one, two):
        measured = [by[(n, tool)] for n in sizes if (n, tool) in by]
        if len(measured) >= 2:
            peaks = ", ".join(f"{max(r.worker_rss_mib):.0f} MiB at {r.targets}" for r in measured)
            lines.append(f"- Worker peak memory flat in N, {tool}: {peaks}.")
            first, last = measured[0], measured[-1]
            slope = (last.main_rss_mib - first.main_rss_mib) / (last.targets - first.targets)
            lines.append(
                f"- (not a goal) the coordinator's peak memory, {tool}: {first.main_rss_mib:.0f} MiB at "
                f"{first.targets}, {last.main_rss_mib:.0f} MiB at {last.targets}: {1024 * slope:.0f} KiB "
                f"per target, {last.main_rss_mib + slope * (SITES_A_NIGHT - last.targets):,.0f} MiB at "
                f"{SITES_A_NIGHT:,} if it stays linear."
            )
    return lines


def _extrapolation(rows: list[Row]) -> list[str]:
    """100,000 sites a night from each fleet run of the largest size: its throughput per worker."""
    fleet = [row for row in rows if row.worker_rss_mib]
    if not fleet:
        return []
    biggest = max(row.targets for row in fleet)
    lines = [
        f"Extrapolation to {SITES_A_NIGHT:,} sites in a night of {NIGHT_HOURS} h, from the {biggest}-target runs:"
    ]
    for row in (row for row in fleet if row.targets == biggest):
        workers = len(row.worker_rss_mib)
        per_worker = row.per_minute / workers
        per_night = per_worker * 60 * NIGHT_HOURS
        ceiling = 60_000 / (1000 * row.cpu["workers"] / row.targets)
        lines.append(
            f"- {row.tool}, measured: {row.per_minute:.0f} / {workers} = {per_worker:.0f} targets/min per worker; "
            f"x 60 x {NIGHT_HOURS} = {per_night:,.0f} targets per worker a night; "
            f"{SITES_A_NIGHT:,} / {per_night:,.0f} = {SITES_A_NIGHT / per_night:.2f} -> "
            f"{math.ceil(SITES_A_NIGHT / per_night)} worker(s); one worker alone: "
            f"{SITES_A_NIGHT:,} / {per_worker:.0f} / 60 = {SITES_A_NIGHT / per_worker / 60:.1f} h"
        )
        lines.append(
            f"- {row.tool}, CPU ceiling of a worker with a core of its own (targets and history elsewhere): "
            f"60,000 ms / {1000 * row.cpu['workers'] / row.targets:.0f} ms of worker CPU per target = "
            f"{ceiling:.0f} targets/min; {SITES_A_NIGHT:,} / ({ceiling:.0f} x 60 x {NIGHT_HOURS}) = "
            f"{SITES_A_NIGHT / (ceiling * 60 * NIGHT_HOURS):.2f} worker cores, each at --concurrency "
            f"{ceiling:.0f} / 60 x {row.audit_seconds:.2f} s (median audit time) = "
            f"{math.ceil(ceiling / 60 * row.audit_seconds)} or more to keep it busy"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[100, 1000], help="sizes of the fleet")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker processes per run")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=10,
        help="`auditor worker --concurrency` (default 10: as many targets at once as sslyze's scanner)",
    )
    parser.add_argument("--rtt", type=int, default=50, help="round trip to simulate, ms")
    parser.add_argument("--no-sslyze", action="store_true", help="skip sslyze's runs")
    parser.add_argument(
        "--sslyze-max",
        type=int,
        metavar="N",
        help="run sslyze only on sizes up to N (its default scan opens ~580 connections a target: "
        "about 20 min for 1,000 at 50 ms)",
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep configs, logs and reports here")
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "auditor", quiet=1)  # as an installed copy is
    rows: list[Row] = []
    with ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            directory = args.keep.resolve()
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fleet-")))
        infra = stack.enter_context(_infrastructure(directory, args.rtt))
        _progress(f"nginx behind proxy 127.0.0.1:{infra.https_port}, {infra.broker}, PostgreSQL up")
        for count in sorted(args.targets):
            for workers in args.workers:
                _progress(f"{count} targets, {workers} worker(s) x --concurrency {args.concurrency} ...")
                rows.append(fleet_run(infra, count, workers, args.concurrency))
                _progress(f"  {rows[-1].wall:.1f} s, {rows[-1].per_minute:.0f} targets/min")
            if not args.no_sslyze and (args.sslyze_max is None or count <= args.sslyze_max):
                _progress(f"{count} targets, sslyze ...")
                rows.append(sslyze_run(infra, count))
                _progress(f"  {rows[-1].wall:.1f} s, {rows[-1].per_minute:.0f} targets/min")
    for lines in (
        _table(rows, args.rtt, args.concurrency),
        _cpu_table(rows),
        _goals(rows),
        _extrapolation(rows),
    ):
        print("\n".join(lines), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
