"""Deadlines that hold against any server (issue 13 items 3, 4, 5).

Every server here is real and local: raw-socket servers (tests/hostile/rawservers.py) and proxies
in front of a real nginx or Python TLS server that trickle, rate-limit or drop connections.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import clause_statuses, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite, PythonTLSServer, free_port
from tests.hostile import rawservers as raw


def _config(tmp_path: Path, pki: TestPKI, urls: list[str], scan: str) -> Path:
    targets = "".join(
        f'[[targets]]\nurl = "{u}"\nip = "127.0.0.1"\nca_bundle = "{pki.root_path}"\nhttp_port = 9\n'
        for u in urls
    )
    path = tmp_path / "config.toml"
    path.write_text(f"[scan]\n{scan}\n[output]\nwrite_json = false\n{targets}")
    return path


@pytest.fixture(scope="module")
def good(pki: TestPKI) -> Iterator[PythonTLSServer]:
    issued = pki.issue("deadline-good", policy="ov")
    with PythonTLSServer(
        issued, response_headers=[("Strict-Transport-Security", "max-age=63072000")]
    ) as server:
        yield server


@pytest.fixture(scope="module")
def nginx(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxSite]:
    issued = pki.issue("deadline-nginx", policy="ov")
    with NginxSite(tmp_path_factory.mktemp("nginx-deadlines"), issued=issued) as site:
        yield site


@pytest.fixture(scope="module")
def nginx12(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxSite]:
    """TLS 1.2 only: sslyze then really probes Heartbleed and CCS (a TLS 1.3 server is presumed safe)."""
    issued = pki.issue("deadline-nginx12", policy="ov")
    with NginxSite(tmp_path_factory.mktemp("nginx12-deadlines"), issued=issued, protocols="TLSv1.2") as site:
        yield site


def test_seven_targets_end_within_30_s_each_with_its_reason(
    pki: TestPKI, good: PythonTLSServer, tmp_path: Path
) -> None:
    """--timeout 5 is a wall-clock bound per connection: a tarpit is named after two attempts, a
    server trickling its handshake one byte a second costs at most a few timeouts, not the target budget."""
    handlers = {
        "plain-http": raw.banner(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        "tarpit": raw.tarpit,
        "garbage": raw.random_bytes,
        "reset": raw.reset_mid_handshake,
        "trickle": raw.trickle_proxy(good.port, 1.0),
    }
    with ExitStack() as stack:
        servers = {name: stack.enter_context(raw.RawServer(h)) for name, h in handlers.items()}
        ports = {"good": good.port, **{name: s.port for name, s in servers.items()}, "refused": free_port()}
        urls = [f"https://good.test:{port}/" for port in ports.values()]
        config = _config(tmp_path, pki, urls, "concurrency = 7")
        started = time.monotonic()
        run = run_cli("audit", "--config", str(config), "--json", "-", "--timeout", "5", timeout=120)
        elapsed = time.monotonic() - started
    assert "Traceback" not in run.stderr
    results = dict(zip(ports, run.report["targets"], strict=False))
    assert results["good"]["error"] is None and results["good"]["compliant"] is True
    reasons = {name: r["error"] for name, r in results.items() if name != "good"}
    assert all(reason and "\n" not in reason for reason in reasons.values()), reasons
    assert reasons["tarpit"] == "no answer within 5 s (the port accepts connections but never speaks)"
    assert reasons["refused"] == "connection refused"
    assert reasons["plain-http"].startswith("not TLS: the server answered in plain HTTP"), reasons[
        "plain-http"
    ]
    assert reasons["garbage"].startswith("not TLS"), reasons["garbage"]
    assert "reset" in reasons["reset"] or "closed" in reasons["reset"], reasons["reset"]
    assert "within 5 s" in reasons["trickle"], reasons["trickle"]
    assert results["tarpit"]["duration_s"] <= 12, results["tarpit"]["duration_s"]
    assert elapsed < 30, (elapsed, {n: r["duration_s"] for n, r in results.items()})


def test_process_exits_at_the_target_deadline(pki: TestPKI, good: PythonTLSServer, tmp_path: Path) -> None:
    """A server that answers the first connections, then trickles one byte a second, holds the scan's
    worker threads far longer than target_timeout (timeout 120 s here): at the target deadline its
    sockets are closed and its work abandoned, so the process ends within a couple of seconds of the
    verdict, not when the trickle ends (concurrent.futures joins its workers at interpreter exit)."""
    with raw.RawServer(
        raw.RateLimiter(good.port, allow=3, then=raw.trickle_proxy(good.port, 1.0))
    ) as trickle:
        config = _config(
            tmp_path, pki, [f"https://good.test:{trickle.port}/"], "timeout = 120\ntarget_timeout = 6"
        )
        started = time.monotonic()
        run = run_cli("audit", "--config", str(config), "--json", "-", timeout=200)
        elapsed = time.monotonic() - started
    target = run.report["targets"][0]
    assert target["error"].startswith("timed out: the audit took longer than 6 s"), target["error"]
    assert elapsed < 6 + 5, elapsed  # Python start-up and the verdict included


def test_abandoned_targets_leave_no_thread_behind(pki: TestPKI, good: PythonTLSServer) -> None:
    """The long-running scheduler audits in-process night after night: a target abandoned at its
    deadline must not leave threads blocked on its sockets (they would pile up run after run)."""
    from auditor.audit import run_audit
    from auditor.config import Config, Target

    with raw.RawServer(
        raw.RateLimiter(good.port, allow=3, then=raw.trickle_proxy(good.port, 1.0))
    ) as trickle:
        config = Config.model_validate({"scan": {"timeout": 120, "target_timeout": 3, "concurrency": 2}})
        targets = [
            Target(
                url=f"https://good.test:{trickle.port}/", ip="127.0.0.1", ca_bundle=pki.root_path, http_port=9
            )
            for _ in range(2)
        ]
        before = set(_ours())
        for _ in range(2):  # two "nights"
            report = run_audit(targets, config)
            assert all(t.error and t.error.startswith("timed out") for t in report.targets)
        deadline = time.monotonic() + 3
        while set(_ours()) - before and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [t.name for t in set(_ours()) - before if t.name != "http-watchdog"]
    assert not left, left
    assert [t.name for t in threading.enumerate()].count("http-watchdog") <= 1  # one per process


def _ours() -> list[threading.Thread]:
    """The auditor's threads (not the test servers')."""
    servers = ("(_serve)", "(_pump)", "(_accept)", "PythonTLSServer", "(process_request_thread)")
    return [t for t in threading.enumerate() if not any(mark in t.name for mark in servers)]


def test_rate_limited_server_is_not_graded_and_timeouts_are_not_evidence(
    pki: TestPKI, nginx12: NginxSite, tmp_path: Path
) -> None:
    """A server that answers 8 connections and then accepts-and-never-answers: no F, no pass on
    evidence that never arrived, Heartbleed/CCS not read as 'not vulnerable', and the run is quick."""
    limiter = raw.RateLimiter(nginx12.https_port, allow=8)
    with raw.RawServer(limiter) as proxy:
        config = _config(tmp_path, pki, [f"https://good.test:{proxy.port}/"], "timeout = 3")
        started = time.monotonic()
        run = run_cli("audit", "--config", str(config), "--json", "-", timeout=200)
        elapsed = time.monotonic() - started
    target = run.report["targets"][0]
    assert target["error"] is None, target["error"]
    assert target["grade"] is None
    statuses = clause_statuses(target)
    assert statuses["11.4-grade-a"] == "error"
    grade_finding = next(f for f in target["findings"] if f["clause"] == "11.4-grade-a")
    answered = re.match(
        r"Not graded: the server stopped answering after (\d+) connections", grade_finding["title"]
    )
    assert answered, grade_finding["title"]
    assert 6 <= int(answered[1]) <= 8  # the limiter's 8, less the HTTP probe's and any cut in flight
    for clause in ("11.1-pfs", "11.3-no-rsa-kex", "5.4-transit"):
        assert statuses[clause] == "error", (clause, statuses[clause])
    # 11.3-protocols may fail on an answer that did arrive (this TLS 1.2-only server refusing TLS 1.3 among
    # its first 8 connections), never on one that did not: TLS 1.2 is never "not offered"
    protocols = {p["version"]: p["supported"] for p in target["evidence"]["tls"]["protocols"]}
    assert protocols["TLS 1.2"] is not False, protocols
    assert statuses["11.3-protocols"] == ("fail" if protocols["TLS 1.3"] is False else "error"), protocols
    vulns = target["evidence"]["tls"]["vulnerabilities"]
    assert vulns["heartbleed"] is None and vulns["ccs_injection"] is None, vulns
    assert statuses["11.4-vulnerabilities"] != "pass"
    assert elapsed < 25, elapsed


def test_pacing_audits_a_rate_limited_server_completely(
    pki: TestPKI, nginx: NginxSite, tmp_path: Path
) -> None:
    """The same nginx behind a limiter of 4 new connections per second: with one connection at a
    time and --pace 0.5 s between connections the TLS scan completes and is graded (the HTTP probe,
    not paced, may still meet the limiter once)."""
    limiter = raw.RateLimiter(nginx.https_port, allow=4, window=1.0)
    with raw.RawServer(limiter) as proxy:
        config = _config(tmp_path, pki, [f"https://good.test:{proxy.port}/"], "timeout = 3")
        run = run_cli(
            "audit",
            "--config",
            str(config),
            "--json",
            "-",
            "--connections-per-server",
            "1",
            "--pace",
            "0.5",
            timeout=300,
        )
    target = run.report["targets"][0]
    assert target["error"] is None, target["error"]
    tls = target["evidence"]["tls"]
    assert "scan" not in tls["attempts"] and all(p["supported"] is not None for p in tls["protocols"]), tls[
        "attempts"
    ]
    assert limiter.silenced <= 1
    assert target["grade"] is not None and target["grade"]["letter"].startswith("A"), target["grade"]
    assert clause_statuses(target)["11.1-pfs"] == "pass"


def test_one_dropped_handshake_loses_no_suite(pki: TestPKI, nginx: NginxSite) -> None:
    """The enumerator's remove-loop meets one silent connection in the middle (a server dropping one
    handshake under load): it tries that offer again instead of ending the list there."""
    from auditor.scan.tls import scan_tls

    reference = scan_tls(
        "good.test",
        nginx.https_port,
        ip="127.0.0.1",
        ca_bundle=pki.root_path,
        timeout=3,
        connections_per_server=1,
        ocsp=False,
    )
    expected = [s.name for s in reference.protocol("TLS 1.2").suites]
    assert len(expected) >= 3
    # connection 1 is the connectivity check's; with one connection at a time the suite
    # enumeration of SSL 2.0..TLS 1.1 (one refused offer each, more for TLS 1.0/1.1 clients) comes
    # next, then TLS 1.2: drop the second suite offer of TLS 1.2.
    first_tls12 = 1 + reference.connections_by_phase.get("connectivity", 1)
    for label in ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1"):
        first_tls12 += 1 if reference.protocol(label).supported is False else 99
    drop = raw.DropNth(nginx.https_port, {first_tls12 + 1})
    with raw.RawServer(drop) as proxy:
        dropped = scan_tls(
            "good.test",
            proxy.port,
            ip="127.0.0.1",
            ca_bundle=pki.root_path,
            timeout=3,
            connections_per_server=1,
            ocsp=False,
        )
    assert [s.name for s in dropped.protocol("TLS 1.2").suites] == expected
    assert "suites_tls_1_2" not in dropped.attempts
