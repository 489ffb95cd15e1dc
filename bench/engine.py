"""Engine benchmark: fast audit vs --thorough vs sslyze (vs testssl.sh where installed) against a
local nginx site, through a loopback proxy that counts connections and adds a one-way delay, so
a real network round trip is simulated without touching the kernel.

    .venv/bin/python bench/engine.py [--runs 3] [--rtt 0 50]

Prints a markdown table: median wall time, TLS+HTTP connections opened, peak RSS. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.testing.pki import TestPKI  # noqa: E402
from auditor.testing.servers import NginxSite  # noqa: E402


class DelayProxy:
    """127.0.0.1:port -> 127.0.0.1:upstream; each chunk waits `delay` seconds in each direction."""

    def __init__(self, upstream: int, delay: float) -> None:
        self.upstream, self.delay = upstream, delay
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

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))


def _run(cmd: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one command."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.monotonic() - started, usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rtt", type=int, nargs="+", default=[0, 50], help="round trips to simulate, ms")
    args = parser.parse_args()
    py = sys.executable
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pki = TestPKI(Path(tmp) / "pki")
        issued = pki.issue("bench")
        with NginxSite(Path(tmp) / "nginx", issued=issued,
                       tls13_ciphersuites="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") as site:
            for rtt in args.rtt:
                https = DelayProxy(site.https_port, rtt / 2000)
                http = DelayProxy(site.http_port or 9, rtt / 2000)
                audit = [py, "-m", "auditor", "audit", "--ip", "127.0.0.1", "--ca-bundle", str(pki.root_path),
                         "--http-port", str(http.port), "--quiet", f"https://good.test:{https.port}/"]
                tools = {
                    "auditor audit (fast)": audit,
                    "auditor audit --thorough": audit + ["--thorough"],
                    "sslyze (full scan)": [py, "-m", "sslyze", f"good.test:{https.port}{{127.0.0.1}}"],
                }
                testssl = shutil.which("testssl.sh") or shutil.which("testssl")
                if testssl:
                    tools["testssl.sh"] = [testssl, "--quiet", "--fast", "--ip", "127.0.0.1",
                                           f"https://good.test:{https.port}/"]
                for name, cmd in tools.items():
                    times, rss, conns = [], [], []
                    for _ in range(args.runs):
                        before = https.connections + http.connections
                        wall, peak = _run(cmd)
                        times.append(wall)
                        rss.append(peak)
                        conns.append(https.connections + http.connections - before)
                    rows.append((rtt, name, statistics.median(times), statistics.median(conns), max(rss) / 1024))
    print("| RTT | tool | median wall time | connections | peak RSS | time vs fast |")
    print("|---|---|---|---|---|---|")
    fast = {rtt: t for rtt, name, t, _, _ in rows if name == "auditor audit (fast)"}
    for rtt, name, wall, conns, rss in rows:
        print(f"| {rtt} ms | {name} | {wall:.2f} s | {conns:.0f} | {rss:.0f} MiB | {wall / fast[rtt]:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
