"""Engine benchmark: fast audit vs --thorough vs sslyze (vs testssl.sh where installed) against
local targets (an nginx modern site, an `openssl s_server`), through a loopback proxy that counts
connections and delays traffic, so a network round trip is simulated without touching the kernel.
The auditor's modules are byte-compiled first, as an installed copy's are.

    .venv/bin/python bench/engine.py [--runs 3] [--peer-runs 1] [--rtt 0 50] [--targets nginx s_server]

The proxy holds every chunk for RTT/2 in each direction, and the first client chunk of each
connection for one more RTT (the TCP handshake a real network would cost before it). Prints a
markdown table: median wall time, connections seen by the proxy (TLS + HTTP), the connections the
auditor itself says it opened (TlsEvidence.connections, from its JSON report), peak RSS of the
child (wait4 rusage), and the time ratio to the fast audit. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, OpenSSLServer, free_port


class DelayProxy:
    """127.0.0.1:port -> 127.0.0.1:upstream; each chunk waits `delay` seconds in each direction."""

    def __init__(self, upstream: int, delay: float, connect_delay: float = 0.0) -> None:
        self.upstream, self.delay, self.connect_delay = upstream, delay, connect_delay
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first_delay: float = 0.0
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay or first_delay:
                    await asyncio.sleep(self.delay + first_delay)
                    first_delay = 0.0
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):  # the peer may be gone already
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer, self.connect_delay), self._pipe(up_reader, writer))


def _run(cmd: list[str], cwd: Path = ROOT) -> tuple[float, int, str]:
    """Wall time, peak RSS (KiB) and stdout of one command (`python -m auditor` runs the tree in `cwd`)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        _, _, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        out.seek(0)
        return wall, usage.ru_maxrss, out.read().decode(errors="replace")


def _engine_connections(stdout: str) -> str:
    """TlsEvidence.connections from the auditor's JSON report, '-' when not measured."""
    try:
        target = json.loads(stdout)["targets"][0]
        count = target["evidence"]["tls"]["connections"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "-"
    return "-" if count is None else str(count)


@contextmanager
def _target(kind: str, tmp: Path, pki: TestPKI) -> Iterator[tuple[int, int | None]]:
    """(https port, http port or None) of a running local target."""
    issued = pki.issue(f"bench-{kind}")
    if kind == "nginx":
        with NginxSite(
            tmp / "nginx",
            issued=issued,
            tls13_ciphersuites="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
        ) as site:
            yield site.https_port, site.http_port
    elif kind == "s_server":
        with OpenSSLServer(
            issued, ["-cipher", "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256", "-serverpref"]
        ) as server:
            yield server.port, None
    else:
        raise SystemExit(f"unknown target {kind!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs of the auditor per cell")
    parser.add_argument("--peer-runs", type=int, default=1, help="runs of sslyze and testssl.sh per cell")
    parser.add_argument("--rtt", type=int, nargs="+", default=[0, 50], help="round trips to simulate, ms")
    parser.add_argument("--targets", nargs="+", default=["nginx", "s_server"])
    parser.add_argument("--no-testssl", action="store_true")
    parser.add_argument(
        "--tools", nargs="+", metavar="PREFIX", help="run only the tools whose name starts with one of these"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run the fast audit from this copy of the tree (e.g. `git archive` of the commit before), "
        "run by run alternately with this tree's",
    )
    args = parser.parse_args()
    py = sys.executable
    # What a user runs is byte-compiled (pip compiles a wheel's modules when it installs them; an editable
    # install writes __pycache__ on its first run). Under PYTHONDONTWRITEBYTECODE an editable tree would
    # recompile its ~120 modules at every start (0.1-0.3 s), which no installed auditor pays.
    for tree in [ROOT, *([args.baseline] if args.baseline else [])]:
        compileall.compile_dir(tree / "auditor", quiet=1)
    rows = []
    testssl = None if args.no_testssl else (shutil.which("testssl.sh") or shutil.which("testssl"))
    with tempfile.TemporaryDirectory() as tmp:
        pki = TestPKI(Path(tmp) / "pki")
        for kind in args.targets:
            with _target(kind, Path(tmp) / kind, pki) as (https_port, http_port):
                for rtt in args.rtt:
                    https = DelayProxy(https_port, rtt / 2000, rtt / 1000)
                    # no plain-HTTP site: the proxy forwards to a closed port (the probe is refused)
                    http = DelayProxy(http_port or free_port(), rtt / 2000, rtt / 1000)
                    audit = [
                        py,
                        "-m",
                        "auditor",
                        "audit",
                        "--ip",
                        "127.0.0.1",
                        "--ca-bundle",
                        str(pki.root_path),
                        "--http-port",
                        str(http.port),
                        "--json",
                        "-",
                        "--quiet",
                        f"https://good.test:{https.port}/",
                    ]
                    tools = {
                        "auditor audit (fast)": (audit, args.runs),
                        "auditor audit --thorough": ([*audit, "--thorough"], args.runs),
                        "sslyze (default scan)": (
                            [py, "-m", "sslyze", f"good.test:{https.port}{{127.0.0.1}}"],
                            args.peer_runs,
                        ),
                    }
                    if testssl:
                        tools["testssl.sh --fast"] = (
                            [
                                testssl,
                                "--quiet",
                                "--fast",
                                "--warnings",
                                "batch",
                                "--nodns",
                                "none",
                                "--ip",
                                "127.0.0.1",
                                "--color",
                                "0",
                                f"https://good.test:{https.port}/",
                            ],
                            args.peer_runs,
                        )
                    if args.tools:
                        tools = {n: t for n, t in tools.items() if n.startswith(tuple(args.tools))}
                    cwds = dict.fromkeys(tools, ROOT)
                    if args.baseline is not None and "auditor audit (fast)" in tools:
                        baseline = f"auditor audit (fast, {args.baseline.name})"
                        tools[baseline], cwds[baseline] = (
                            tools["auditor audit (fast)"],
                            args.baseline.resolve(),
                        )
                    measured: dict[str, tuple[list[float], list[int], list[int], list[str]]] = {
                        name: ([], [], [], []) for name in tools
                    }
                    # run by run, tool after tool: a change in the machine's load hits every tool alike
                    for run in range(max((runs for _, runs in tools.values()), default=0)):
                        for name, (cmd, runs) in tools.items():
                            if run >= runs:
                                continue
                            walls, peaks, counts, owns = measured[name]
                            before = https.connections + http.connections
                            wall, peak, stdout = _run(cmd, cwds[name])
                            walls.append(wall)
                            peaks.append(peak)
                            counts.append(https.connections + http.connections - before)
                            owns.append(_engine_connections(stdout) if name.startswith("auditor") else "-")
                    for name, (_, runs) in tools.items():
                        walls, peaks, counts, owns = measured[name]
                        rows.append(
                            (
                                kind,
                                rtt,
                                name,
                                statistics.median(walls),
                                statistics.median(counts),
                                owns[len(owns) // 2],
                                max(peaks) / 1024,
                                runs,
                            )
                        )
                        print(f"{kind} {rtt} ms {name}: {statistics.median(walls):.2f} s", file=sys.stderr)
    print(
        "| target | RTT | tool | runs | median wall time | connections (proxy) | TLS connections "
        "(auditor's own count) | peak RSS | time vs fast |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    fast = {(k, rtt): t for k, rtt, name, t, *_ in rows if name == "auditor audit (fast)"}
    fast = {key: fast.get(key, t) for key, t in ((r[:2], r[3]) for r in rows)}  # no fast row: ratio to itself
    for kind, rtt, name, wall, conns, own, rss, runs in rows:
        print(
            f"| {kind} | {rtt} ms | {name} | {runs} | {wall:.2f} s | {conns:.0f} | {own} | {rss:.0f} MiB | "
            f"{wall / fast[(kind, rtt)]:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
