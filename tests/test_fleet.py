"""Fleet mode with real parts: redis-server and PostgreSQL on loopback, `auditor worker` processes,
`auditor schedule --once` as the coordinator, nginx targets and a target that never speaks (its
audit lasts scan.timeout, so a kill lands mid-task)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from auditor.store import Store
from tests.conftest import ROOT, run_cli
from tests.harness import postgres_server
from tests.harness.pki import TestPKI
from tests.harness.redis_server import RedisServer
from tests.harness.servers import NginxSite, free_port
from tests.hostile.rawservers import RawServer, tarpit

NAMES = ("a.test", "b.test", "c.test")


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    if not RedisServer.available():
        pytest.skip("redis-server not installed")
    pytest.importorskip("celery")
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def sites(pki: TestPKI) -> Iterator[list[NginxSite]]:
    started: list[NginxSite] = []
    try:
        for name in NAMES:
            site = NginxSite(issued=pki.issue(name, hosts=(name,)), server_name=name, http_mode="none")
            site.start()
            started.append(site)
        yield started
    finally:
        for site in started:
            site.stop()


@pytest.fixture(scope="module")
def silent() -> Iterator[str]:
    """A target that accepts connections and never speaks: its audit lasts scan.timeout."""
    with RawServer(tarpit) as server:
        yield f"https://slow.test:{server.port}/"


def _config(
    tmp_path: Path, pki: TestPKI, database: str, broker: str, urls: list[str], fleet: str = ""
) -> Path:
    targets = "".join(
        f'[[targets]]\nurl = "{url}"\nip = "127.0.0.1"\nca_bundle = "{pki.root_path}"\nhttp_port = 9\n'
        for url in urls
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f'[scan]\ntimeout = 2\ntarget_timeout = 20\n\n[history]\ndatabase = "{database}"\n\n'
        f'[output]\ndirectory = "out"\n\n[fleet]\nbroker = "{broker}"\nqueue = "{tmp_path.name}"\n{fleet}\n'
        f"{targets}"
    )
    return path


def _auditor(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """`auditor ARGS` in the background, its stdout and stderr in `log`."""
    with log.open("wb") as handle:  # the child holds its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "auditor", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


class Worker:
    """One `auditor worker` process, its output in a file."""

    def __init__(self, config: Path, path: Path) -> None:
        self.path = path
        self.proc = _auditor("worker", "--config", str(config), "--concurrency", "1", log=path)

    def text(self) -> str:
        return self.path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[Path], list[Worker]]]:
    started: list[Worker] = []

    def start(config: Path) -> list[Worker]:
        started.extend(Worker(config, tmp_path / f"worker-{i}.log") for i in range(2))
        _until(lambda: all(" ready." in w.text() for w in started), f"workers ready: {started[0].text()}")
        return started

    yield start
    for worker in started:
        worker.stop()


def _until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _schedule_once(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return _auditor("schedule", "--once", "--config", str(config), log=log)


def _finish(proc: subprocess.Popen[bytes], log: Path) -> tuple[int, str]:
    code = proc.wait(timeout=120)
    return code, log.read_text(errors="replace")


def _latest(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    import json

    report: dict = json.loads((tmp_path / "out" / "latest.json").read_text())  # type: ignore[type-arg]
    return report


def _stored(database: str) -> list[tuple[str, int, int]]:
    engine = create_engine(database)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT run_id, target_index, seq FROM fleet_results ORDER BY seq")).all()
    engine.dispose()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _verify_log(config: Path) -> int:
    return run_cli("verify-log", "--config", str(config)).code


def test_kill_9_of_a_worker_mid_task_stores_every_target_once(
    tmp_path, pki, redis, postgres, sites, silent, workers
) -> None:
    database = postgres_server.create_database(postgres, "fleet_kill")
    urls = [silent] + [site.url for site in sites]  # the silent target is queued first
    config = _config(tmp_path, pki, database, redis.url, urls, "visibility_timeout = 6\nrun_deadline = 90\n")
    started = workers(config)
    coordinator = _schedule_once(config, tmp_path / "schedule.log")
    _until(
        lambda: any("auditing target 0 " in w.text() for w in started), "a worker to take the silent target"
    )
    victim = next(w for w in started if "auditing target 0 " in w.text())
    victim.proc.send_signal(signal.SIGKILL)  # mid-task: the silent target holds it for scan.timeout
    survivor = next(w for w in started if w is not victim)
    code, output = _finish(coordinator, tmp_path / "schedule.log")
    assert code == 3, output  # the silent target is not audited (no answer), as in the embedded mode
    report = _latest(tmp_path)
    assert [t["target"]["url"] for t in report["targets"]] == urls  # every target once, in order
    assert "worker lost" not in output and "no answer within" in report["targets"][0]["error"]
    assert "auditing target 0 " in survivor.text()  # delivered again after the visibility timeout
    stored = _stored(database)
    assert sorted(index for _, index, _ in stored) == [0, 1, 2, 3] and len({run for run, _, _ in stored}) == 1
    store = Store(database)
    assert store.verify().entries == 4  # stored once each, one linear chain
    assert report["meta"]["evidence_log_head"] == store.head()
    store.close()
    assert all(t["compliant"] for t in report["targets"][1:])
    assert _verify_log(config) == 0


def test_a_task_that_never_comes_back_is_a_lost_worker_at_the_deadline(
    tmp_path, pki, redis, postgres, sites
) -> None:
    database = postgres_server.create_database(postgres, "fleet_lost")
    urls = [site.url for site in sites[:2]]
    config = _config(tmp_path, pki, database, redis.url, urls, "run_deadline = 2\n")  # and no worker runs
    code, output = _finish(_schedule_once(config, tmp_path / "once.log"), tmp_path / "once.log")
    assert code == 3
    report = _latest(tmp_path)
    assert [t["target"]["url"] for t in report["targets"]] == urls
    assert all(t["error"].startswith("not audited: worker lost") for t in report["targets"])
    assert output.count("worker lost") == 2 and "history: stored 2 result(s)" in output
    assert len(_stored(database)) == 2
    assert _verify_log(config) == 0


def test_two_schedulers_never_run_the_same_night_twice(tmp_path, pki, redis, postgres, sites) -> None:
    database = postgres_server.create_database(postgres, "fleet_lock")
    config = _config(tmp_path, pki, database, redis.url, [sites[0].url], "run_deadline = 2\n")
    logs = [tmp_path / f"once-{i}.log" for i in range(2)]
    procs = [_schedule_once(config, log) for log in logs]  # two machines' cron, the same minute
    outputs = [_finish(proc, log) for proc, log in zip(procs, logs, strict=True)]
    refused = [out for code, out in outputs if code == 3 and "not running it twice" in out]
    ran = [out for code, out in outputs if "history: stored 1 result(s)" in out]
    assert len(refused) == 1 and len(ran) == 1, outputs
    engine = create_engine(database)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM fleet_runs")).scalar_one() == 1
    engine.dispose()
    assert len(_stored(database)) == 1
    # another fleet (its own queue) sharing the database has a night of its own
    other = config.read_text().replace(f'queue = "{tmp_path.name}"', 'queue = "another-fleet"')
    assert other != config.read_text()
    config.write_text(other)
    code, output = _finish(_schedule_once(config, tmp_path / "other.log"), tmp_path / "other.log")
    assert code == 3 and "worker lost" in output  # no worker on that queue: it ran, and says so
    assert "not running it twice" not in output and "history: stored 1 result(s)" in output, output


def test_an_unreachable_broker_leaves_the_night_to_a_retry(tmp_path, pki, redis, postgres, sites) -> None:
    """Redis down when the night starts: one line, exit 3, and the night is not taken, so the run
    started again once Redis is up goes ahead (it used to be refused as "already taken")."""
    database = postgres_server.create_database(postgres, "fleet_down")
    closed = f"redis://127.0.0.1:{free_port()}/0"
    down = _config(tmp_path, pki, database, closed, [sites[0].url], "run_deadline = 2\n")
    code, output = _finish(_schedule_once(down, tmp_path / "down.log"), tmp_path / "down.log")
    assert code == 3 and "cannot be reached" in output and "run it again" in output, output
    engine = create_engine(database)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM fleet_runs")).scalar_one() == 0
    engine.dispose()
    up = _config(tmp_path, pki, database, redis.url, [sites[0].url], "run_deadline = 2\n")
    code, output = _finish(_schedule_once(up, tmp_path / "up.log"), tmp_path / "up.log")
    assert "not running it twice" not in output and "history: stored 1 result(s)" in output, output


def test_redis_restarted_mid_run_loses_no_stored_result(
    tmp_path, pki, redis, postgres, sites, silent, workers
) -> None:
    database = postgres_server.create_database(postgres, "fleet_restart")
    urls = [site.url for site in sites] + [silent]
    config = _config(tmp_path, pki, database, redis.url, urls, "visibility_timeout = 6\nrun_deadline = 15\n")
    workers(config)
    coordinator = _schedule_once(config, tmp_path / "schedule.log")
    _until(lambda: len(_stored(database)) >= 2, "two stored results")
    before = _stored(database)
    redis.restart()  # no persistence: the queue and the unacknowledged tasks are gone
    code, output = _finish(coordinator, tmp_path / "schedule.log")
    assert code == 3, output
    after = _stored(database)
    assert set(before) <= set(after) and sorted(index for _, index, _ in after) == [0, 1, 2, 3]
    report = _latest(tmp_path)
    assert [t["target"]["url"] for t in report["targets"]] == urls
    for _, index, _ in before:
        assert report["targets"][index]["error"] is None  # what was stored before the restart is reported
    assert _verify_log(config) == 0


def test_fleet_mode_needs_a_postgresql_history_and_workers_a_broker(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[history]\ndatabase = "h.sqlite"\n\n[fleet]\nbroker = "redis://127.0.0.1:9/0"\n\n'
        '[[targets]]\nurl = "https://a.test/"\n'
    )
    for command in (["schedule", "--once"], ["worker"]):
        run = run_cli(*command, "--config", str(config))
        assert run.code == 2 and "history.database must be a PostgreSQL URL" in run.stderr, run.stderr
    config.write_text('[[targets]]\nurl = "https://a.test/"\n')
    run = run_cli("worker", "--config", str(config))
    assert run.code == 2 and "needs [fleet] broker" in run.stderr


def test_the_embedded_mode_never_loads_celery() -> None:
    probe = "import sys, auditor.schedule, auditor.cli; print(any(m.split('.')[0] in ('celery', 'kombu') for m in sys.modules))"
    assert (
        subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
