"""Orchestration: for each target, scan (TLS + HTTP) -> checks -> result; many targets at once.

Whatever one target does (dead, slow, hostile), it ends as a TargetResult with `error` set, and
the other targets are audited normally.
"""

from __future__ import annotations

import importlib
import ipaddress
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from auditor import __version__
from auditor.config import Config, Target
from auditor.endpoints import merge_endpoints
from auditor.errors import AuditorError, ScanError
from auditor.facts import LogVerification
from auditor.model import (
    AuditReport,
    DnsFacts,
    Evidence,
    HttpEvidence,
    ReportMeta,
    Status,
    TargetRef,
    TargetResult,
)
from auditor.scan import early_contact
from auditor.scan.ledger import ConnectionCounter
from auditor.scan.tls import scan_tls
from auditor.targets import is_ip, parse_url

PhaseCallback = Callable[[str, str], None]  # (target url, phase)
T = TypeVar("T")
# What judges the evidence (checks, grade, web grade, Mozilla profile): needed only once the scan is
# over, so it is imported in a thread while the scan waits on the network (warm_up), not before the
# first handshake.
JUDGING = ("auditor.checks", "auditor.grading", "auditor.mozilla_profile", "auditor.web_grade")


_warming = threading.Lock()
_warmed: set[str] = set()
_warmers: list[threading.Thread] = []


def warm_up(modules: Sequence[str] = JUDGING) -> None:
    """Import `modules` in a daemon thread, once per process (a failure is left for the real import
    to report). Whoever imports them afterwards calls warmed() first."""
    with _warming:
        modules = [m for m in modules if m not in _warmed]
        _warmed.update(modules)
    if not modules:
        return

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112  (the import where the module is used raises it again)
                continue

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    with _warming:
        _warmers.append(thread)
    thread.start()


def warmed() -> None:
    """Wait for the warm-up imports. Two threads importing the same package at once can deadlock
    Python's per-module import locks, which then hand one of them a partially initialized module
    (`cannot import name ... from partially initialized module auditor.checks.clauses`)."""
    with _warming:
        threads = list(_warmers)
    for thread in threads:
        thread.join()


def _ref(target: Target) -> TargetRef:
    parsed = parse_url(target.url)
    given = target.addresses()
    ip = given[0] if len(given) == 1 else None  # several: each endpoint names its own
    return TargetRef(url=parsed.url, host=parsed.host, port=parsed.port, ip=ip, name=target.name)


def _in_daemon_thread(work: Callable[[], T]) -> Callable[[float | None], T]:
    """Start `work` in a daemon thread; return a function that waits for its result (or re-raises).

    The waiter raises queue.Empty after its timeout. Being a daemon, the thread never keeps the
    process alive; the TLS scan's worker pool is not (concurrent.futures joins its workers at exit),
    which is why an abandoned target's ledger cuts its connections (run_with_deadline).
    """
    box: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)

    def runner() -> None:
        try:
            box.put((True, work()))
        except BaseException as exc:  # noqa: BLE001  (handed to the waiter below)
            box.put((False, exc))

    threading.Thread(target=runner, name="audit-scan", daemon=True).start()

    def wait(timeout: float | None = None) -> T:
        ok, value = box.get(timeout=timeout)
        if ok:
            return value  # type: ignore[return-value]
        raise value  # type: ignore[misc]

    return wait


def run_with_deadline(
    work: Callable[[], T],
    seconds: float,
    on_timeout: Callable[[], None] | None = None,
    limit: float | None = None,
) -> T:
    """Run `work`; give up after `seconds` (ScanError) without waiting for it. `on_timeout` then
    abandons the work (closes its connections), so that no thread stays blocked on the target.
    `limit`: the scan.target_timeout the error names, when `seconds` is what is left of it."""
    try:
        return _in_daemon_thread(work)(seconds)
    except queue.Empty:
        if on_timeout is not None:
            on_timeout()
        raise ScanError(
            f"timed out: the audit took longer than {limit or seconds:g} s (scan.target_timeout)"
        ) from None


def _result(ref: TargetRef, started: datetime, monotonic: float, **kwargs: Any) -> TargetResult:
    """A result of this auditor and its check rules, timed from `monotonic`."""
    warmed()
    from auditor.checks.clauses import RULES_VERSION  # lazy: judging loads during the scan (warm_up)

    return TargetResult(
        target=ref,
        started_at=started,
        duration_s=round(time.monotonic() - monotonic, 3),
        auditor_version=__version__,
        rules_version=RULES_VERSION,
        **kwargs,
    )


def audit_target(
    target: Target,
    config: Config,
    on_phase: PhaseCallback | None = None,
    evidence_log: LogVerification | None = None,
    clock: Callable[[], datetime] | None = None,
) -> TargetResult:
    """Audit one target: every address of its name, one after the other, within one target_timeout
    (so a name with many addresses never has more than connections_per_server connections open at
    once), merged into one result (auditor.endpoints). Never raises for anything the target, its URL
    or its DNS can do. `clock` gives the scan's time (the scheduler's, injected by tests that simulate
    nights; default: now)."""
    started = clock() if clock else datetime.now(UTC)
    monotonic = time.monotonic()
    try:
        ref = _ref(target)
    except (AuditorError, ValueError) as exc:
        return TargetResult(
            target=TargetRef(url=target.url, host="", port=0, ip=target.ip, name=target.name),
            started_at=started,
            duration_s=0.0,
            compliant=False,
            error=str(exc),
        )
    budget = config.scan.target_timeout
    try:  # one lookup per target: the addresses, and the CAA records every endpoint's checks judge
        dns = run_with_deadline(lambda: _lookup(ref.host, target, config), budget)
    except ScanError as exc:  # the name does not resolve (auditor.scan.dns_facts.DnsError), or too slowly
        return _result(ref, started, monotonic, compliant=False, error=str(exc))
    several = len(dns.addresses) > 1
    results = []
    for address in dns.addresses:
        remaining = budget - (time.monotonic() - monotonic)
        endpoint = Endpoint(target, ref, address, dns, started, prefix=f"{address}: " if several else "")
        results.append((address, _audit_endpoint(endpoint, config, remaining, on_phase, evidence_log, clock)))
    merged = merge_endpoints(results)
    return merged.model_copy(update={"duration_s": round(time.monotonic() - monotonic, 3)})


def _lookup(host: str, target: Target, config: Config) -> DnsFacts:
    """The addresses to audit: the target's own (`ips`, `--ip`, an address as URL host) without any
    DNS query, else every address of the name, with its CAA records."""
    given = target.addresses() or ([str(ipaddress.ip_address(host))] if is_ip(host) else [])
    if given:
        return DnsFacts(source="given", addresses=given)
    # lazy: dnspython (~100 ms) only when a name is resolved
    from auditor.scan.dns_facts import dns_facts

    return dns_facts(host, config.dns, config.scan.timeout)


@dataclass(frozen=True)
class Endpoint:
    """One address of a target, audited with the target's name for SNI and Host."""

    target: Target
    ref: TargetRef
    address: str
    dns: DnsFacts
    started: datetime
    prefix: str = ""  # before each phase name when the target has several endpoints


def _audit_endpoint(
    endpoint: Endpoint,
    config: Config,
    seconds: float,
    on_phase: PhaseCallback | None,
    evidence_log: LogVerification | None,
    clock: Callable[[], datetime] | None,
) -> TargetResult:
    """Scan, judge and grade one address within `seconds` (what the target's budget has left)."""
    target, ref, ip, started = endpoint.target, endpoint.ref, endpoint.address, endpoint.started
    monotonic = time.monotonic()

    def phase(name: str) -> None:
        if on_phase:
            on_phase(ref.url, endpoint.prefix + name)

    def done(**kwargs: Any) -> TargetResult:
        return _result(ref, started, monotonic, **kwargs)

    if seconds <= 0:
        return done(
            compliant=False,
            error=f"timed out: the audit took longer than {config.scan.target_timeout:g} s "
            "(scan.target_timeout) before this endpoint",
        )
    scan = config.scan
    # Every TLS connection of this target: a wall-clock deadline each, paced, cut at target_timeout.
    ledger = ConnectionCounter(timeout=scan.timeout, pace=getattr(scan, "pace", 0.0))

    def collect() -> Evidence:
        nonlocal ledger
        # `auditor audit` may have begun with this address while it imported: the scan goes on with
        # that contact's ledger, which holds the connections already made (auditor.scan.early_contact)
        early = early_contact.take(ip, ref.port, ref.host)
        if early is not None and early.ledger is not None:
            ledger = early.ledger
        warm_up()

        # The HTTP probe (a few sequential requests) runs beside the TLS scan: on a distant server
        # that saves its round trips. It reports no phases, so the progress line follows the TLS scan.
        def http() -> HttpEvidence:
            # lazy: httpx, html5lib and tinycss2 load in this thread while the TLS handshakes wait on the network
            from auditor.scan.http import probe_http
            from auditor.scan.http_deadline import http_through

            with http_through(ledger):  # each exchange ends by its deadline, all are cut at target_timeout
                return probe_http(
                    ref.host,
                    ref.port,
                    ip=ip,
                    http_port=target.http_port,
                    paths=target.paths,
                    timeout=scan.timeout,
                    max_body=scan.max_body_bytes,
                )

        # With one connection per server (a server that serves one at a time, a rate limiter) the
        # probe waits for the TLS scan: beside it, it would hold the server while handshakes queue.
        one_at_a_time = scan.connections_per_server <= 1
        http_result = None if one_at_a_time else _in_daemon_thread(http)
        tls = scan_tls(
            ref.host,
            ref.port,
            ip=ip,
            ca_bundle=target.ca_bundle,
            timeout=scan.timeout,
            connections_per_server=scan.connections_per_server,
            thorough=scan.thorough,
            ocsp=scan.ocsp,
            on_phase=phase,
            ledger=ledger,
            early=early,
        )
        phase("http")
        if http_result is None:
            http_result = _in_daemon_thread(http)
        try:
            http_evidence = http_result(None)
        except Exception as exc:  # noqa: BLE001  (a failed HTTP probe costs the HTTP clauses, never the TLS evidence)
            from auditor.scan.http import failed_probe  # lazy: loaded by the probe's thread

            http_evidence = failed_probe(ref.url, exc)
        return Evidence(tls=tls, http=http_evidence, dns=endpoint.dns)

    try:
        evidence = run_with_deadline(collect, seconds, lambda: ledger.abandon(), limit=scan.target_timeout)
    except ScanError as exc:
        return done(compliant=False, error=str(exc))
    except Exception as exc:  # noqa: BLE001  (a scanner bug or an unforeseen server answer: this target only)
        return done(compliant=False, error=f"scan failed: {type(exc).__name__}: {exc}"[:300])
    phase("checks")
    warmed()
    # lazy: loaded while the scan waited on the network (warm_up)
    from auditor.checks import CheckContext, run_checks
    from auditor.grading import grade
    from auditor.mozilla_profile import judge_all
    from auditor.web_grade import web_grade

    custom_ca = target.ca_bundle is not None
    letter = grade(evidence, custom_ca=custom_ca)
    ctx = CheckContext(
        evidence=evidence,
        policy=config.policy,
        host=ref.host,
        custom_ca=custom_ca,
        grade=letter,
        evidence_log=evidence_log,
        now=started if clock else datetime.now(UTC),
        dns=config.dns,
    )
    findings = run_checks(ctx)
    compliant = not any(f.status is Status.FAIL for f in findings)
    return done(
        compliant=compliant,
        grade=letter,
        findings=findings,
        evidence=evidence,
        mozilla=judge_all(evidence),
        web_grade=web_grade(evidence, custom_ca),
    )


def run_audit(
    targets: Sequence[Target],
    config: Config,
    on_phase: PhaseCallback | None = None,
    on_result: Callable[[TargetResult], None] | None = None,
    meta: ReportMeta | None = None,
    evidence_log: LogVerification | None = None,
    clock: Callable[[], datetime] | None = None,
) -> AuditReport:
    """Audit every target, `config.scan.concurrency` at a time; results keep the input order."""
    results: dict[int, TargetResult] = {}
    with ThreadPoolExecutor(
        max_workers=max(1, min(config.scan.concurrency, len(targets) or 1)), thread_name_prefix="audit"
    ) as pool:
        futures = {
            pool.submit(audit_target, t, config, on_phase, evidence_log, clock): i
            for i, t in enumerate(targets)
        }
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if on_result:
                on_result(result)
    return AuditReport(
        generated_at=clock() if clock else datetime.now(UTC),
        tool_version=__version__,
        targets=[results[i] for i in range(len(targets))],
        meta=meta or ReportMeta(),
    )
