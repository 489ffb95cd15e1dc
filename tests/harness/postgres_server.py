"""A throwaway PostgreSQL server on loopback for tests (initdb refuses root: run it as nobody then).

`running_postgres()` yields the server's URL; `create_database(url, name)` gives each test its own
database on it, so tests share one server start."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness.process_server import free_port


def available() -> bool:
    return bool(shutil.which("initdb") and shutil.which("pg_ctl"))


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a server (trust authentication, user `auditor`, no fsync) and yield its URL."""
    base = Path(tempfile.mkdtemp(prefix="auditor-pg-"))  # outside pytest's owner-only tree
    as_user: list[str] = []
    if os.geteuid() == 0:
        os.chmod(base, 0o777)  # noqa: S103  (the unprivileged server user must reach its socket)
        as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    port = free_port()
    env = {**os.environ, "HOME": str(base)}
    subprocess.run(
        [*as_user, "initdb", "-D", f"{base}/data", "-A", "trust", "-U", "auditor", "--no-sync", "-N"],
        check=True,
        capture_output=True,
        env=env,
    )
    pg_ctl = [*as_user, "pg_ctl", "-D", f"{base}/data"]
    subprocess.run(
        [*pg_ctl, "-l", f"{base}/log", "-w", "-o", f"-k {base} -p {port} -h 127.0.0.1 -F", "start"],
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        yield f"postgresql://auditor@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, env=env)
        shutil.rmtree(base, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """A new empty database on the server of `url`; returns its psycopg URL."""
    import psycopg  # lazy: only tests that have a server import the driver

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
