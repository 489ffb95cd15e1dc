"""Load benchmark: one `auditor audit --concurrency 20` run over 100 local targets, a mix of good,
slow (tarpit) and dead ones. Prints wall time, peak memory and the most file descriptors the
auditor held, and checks that all 100 targets are reported.

    .venv/bin/python bench/load.py [--good 60 --slow 20 --dead 20 --concurrency 20]

Only 127.0.0.1 is used. Not part of the test suite: the figures go in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.pki import TestPKI
from tests.harness.servers import PythonTLSServer, free_port
from tests.hostile.rawservers import RawServer, tarpit


def _watch_fds(pid: int, peak: list[int], stop: threading.Event) -> None:
    """Sample the auditor's open descriptors (its own /proc entry) every 50 ms."""
    while not stop.is_set():
        with suppress(OSError):
            peak[0] = max(peak[0], len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--good", type=int, default=60)
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--dead", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--distinct-good", type=int, default=10, help="good servers behind the good targets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        pki = TestPKI(Path(tmp))
        issued = pki.issue("load")
        good = [stack.enter_context(PythonTLSServer(issued)) for _ in range(args.distinct_good)]
        slow = [stack.enter_context(RawServer(tarpit)) for _ in range(2)]
        urls = [good[i % len(good)].url for i in range(args.good)]
        urls += [f"https://good.test:{slow[i % 2].port}/" for i in range(args.slow)]
        urls += [f"https://good.test:{free_port()}/" for _ in range(args.dead)]
        targets = "".join(
            f'[[targets]]\nurl = "{u}"\nip = "127.0.0.1"\nca_bundle = "{pki.root_path}"\nhttp_port = 9\n'
            for u in urls
        )
        config = Path(tmp) / "config.toml"
        config.write_text(
            f"[scan]\ntimeout = 3\ntarget_timeout = 60\nconcurrency = {args.concurrency}\n"
            f"[output]\nwrite_json = false\n{targets}"
        )
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "auditor", "audit", "--config", str(config), "--json", "-", "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        peak_fds, stop = [0], threading.Event()
        watcher = threading.Thread(target=_watch_fds, args=(proc.pid, peak_fds, stop), daemon=True)
        watcher.start()
        out, _ = proc.communicate()
        wall = time.monotonic() - started
        stop.set()
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads(out)
    results = report["targets"]
    audited = sum(1 for t in results if t["error"] is None)
    errors = sum(1 for t in results if t["error"])
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(
        "| targets | concurrency | wall time | peak RSS | peak open fds (limit) | audited | errors | exit |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(urls)} ({args.good} good, {args.slow} slow, {args.dead} dead) | {args.concurrency} | "
        f"{wall:.1f} s | {peak_kib / 1024:.0f} MiB | {peak_fds[0]} ({soft_limit}) | {audited} | {errors} | "
        f"{proc.returncode} |"
    )
    if len(results) != len(urls):
        print(f"FAIL: {len(results)} results for {len(urls)} targets")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
