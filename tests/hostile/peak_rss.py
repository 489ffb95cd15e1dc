"""Run a command under an address-space cap and record its own peak resident memory.

Why a launcher: Linux starts a process's ru_maxrss (wait4, getrusage) from the high-water mark of
the address space it was exec'd from (execve keeps the old mm's peak RSS in the process's rusage;
a forked or vforked child shares or copies its parent's pages). A CLI spawned straight from a pytest
process that has grown to 300 MiB over a full suite therefore reports at least 300 MiB, whatever it
uses itself. Spawned from this small process instead, the peak is the command's own (this
launcher's ~10 MiB is below any Python CLI's).

Usage: python -m tests.hostile.peak_rss LIMIT_BYTES TIMEOUT_S RESULT_FILE COMMAND...
stdin, stdout and stderr are the command's; RESULT_FILE gets "<exit code> <peak RSS bytes>".
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    limit, timeout, result, command = int(argv[0]), float(argv[1]), argv[2], argv[3:]
    proc = subprocess.Popen(command)
    resource.prlimit(proc.pid, resource.RLIMIT_AS, (limit, limit))
    deadline = time.monotonic() + timeout
    while (waited := os.wait4(proc.pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            proc.kill()
            waited = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    _, status, usage = waited
    code = os.waitstatus_to_exitcode(status)
    with open(result, "w", encoding="ascii") as out:
        out.write(f"{code} {usage.ru_maxrss * 1024}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
