"""Orchestration: for each target, scan (TLS + HTTP) -> checks -> result; many targets at once.

Whatever one target does (dead, slow, hostile), it ends as a TargetResult with `error` set, and
the other targets are audited normally.
"""

from __future__ import annotations

import importlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from typing import Any, TypeVar

from auditor import __version__
from auditor.config import Config, Target
from auditor.errors import AuditorError, ScanError
from auditor.facts import LogVerification
from auditor.model import AuditReport, Evidence, HttpEvidence, ReportMeta, Status, TargetRef, TargetResult
from auditor.scan.connections import ConnectionCounter
from auditor.scan.tls import scan_tls
from auditor.targets import parse_url

PhaseCallback = Callable[[str, str], None]  # (target url, phase)
T = TypeVar("T")
# What judges the evidence (checks, grade, web grade, Mozilla profile): needed only once the scan is
# over, so it is imported in a thread while the scan waits on the network (warm_up), not before the
# first handshake.
JUDGING = ("auditor.checks", "auditor.grading", "auditor.mozilla_profile", "auditor.web_grade")


_warming = threading.Lock()
_warmed: set[str] = set()


def warm_up(modules: Sequence[str] = JUDGING) -> None:
    """Import `modules` in a daemon thread, once per process (a failure is left for the real import
    to report)."""
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

    threading.Thread(target=run, name="warm-up", daemon=True).start()


def _ref(target: Target) -> TargetRef:
    parsed = parse_url(target.url)
    return TargetRef(url=parsed.url, host=parsed.host, port=parsed.port, ip=target.ip, name=target.name)


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
    work: Callable[[], Evidence], seconds: float, on_timeout: Callable[[], None] | None = None
) -> Evidence:
    """Run `work`; give up after `seconds` (ScanError) without waiting for it. `on_timeout` then
    abandons the work (closes its connections), so that no thread stays blocked on the target."""
    try:
        return _in_daemon_thread(work)(seconds)
    except queue.Empty:
        if on_timeout is not None:
            on_timeout()
        raise ScanError(
            f"timed out: the audit took longer than {seconds:g} s (scan.target_timeout)"
        ) from None


def audit_target(
    target: Target,
    config: Config,
    on_phase: PhaseCallback | None = None,
    evidence_log: LogVerification | None = None,
    clock: Callable[[], datetime] | None = None,
) -> TargetResult:
    """Audit one target. Never raises for anything the target or its URL can do. `clock` gives the
    scan's time (the scheduler's, injected by tests that simulate nights; default: now)."""
    started = clock() if clock else datetime.now(UTC)
    monotonic = time.monotonic()
    try:
        ref = _ref(target)
    except AuditorError as exc:
        return TargetResult(
            target=TargetRef(url=target.url, host="", port=0, ip=target.ip, name=target.name),
            started_at=started,
            duration_s=0.0,
            compliant=False,
            error=str(exc),
        )

    def phase(name: str) -> None:
        if on_phase:
            on_phase(ref.url, name)

    def done(**kwargs: Any) -> TargetResult:
        from auditor.checks.clauses import RULES_VERSION  # lazy: judging loads during the scan (warm_up)

        return TargetResult(
            target=ref,
            started_at=started,
            duration_s=round(time.monotonic() - monotonic, 3),
            auditor_version=__version__,
            rules_version=RULES_VERSION,
            **kwargs,
        )

    scan = config.scan
    # Every TLS connection of this target: a wall-clock deadline each, paced, cut at target_timeout.
    ledger = ConnectionCounter(timeout=scan.timeout, pace=getattr(scan, "pace", 0.0))

    def collect() -> Evidence:
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
                    ip=target.ip,
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
            ip=target.ip,
            ca_bundle=target.ca_bundle,
            timeout=scan.timeout,
            connections_per_server=scan.connections_per_server,
            thorough=scan.thorough,
            ocsp=scan.ocsp,
            on_phase=phase,
            ledger=ledger,
        )
        phase("http")
        if http_result is None:
            http_result = _in_daemon_thread(http)
        try:
            http_evidence = http_result(None)
        except Exception as exc:  # noqa: BLE001  (a failed HTTP probe costs the HTTP clauses, never the TLS evidence)
            from auditor.scan.http import failed_probe  # lazy: loaded by the probe's thread

            http_evidence = failed_probe(ref.url, exc)
        return Evidence(tls=tls, http=http_evidence)

    try:
        evidence = run_with_deadline(collect, scan.target_timeout, on_timeout=ledger.abandon)
    except ScanError as exc:
        return done(compliant=False, error=str(exc))
    except Exception as exc:  # noqa: BLE001  (a scanner bug or an unforeseen server answer: this target only)
        return done(compliant=False, error=f"scan failed: {type(exc).__name__}: {exc}"[:300])
    phase("checks")
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
