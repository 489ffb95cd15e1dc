"""Prometheus metrics of the history store: the newest stored scan of each target, the counts over
them and whether the evidence log verifies, for `/metrics` on `auditor serve` and for node_exporter's
textfile collector (`auditor metrics --textfile`, `[metrics] textfile`).

Every call builds a fresh CollectorRegistry around one collector that reads the store, never the
process-wide registry: what is exposed is exactly what is stored, whoever asks. prometheus_client is
imported here at the top, so `auditor audit` (which imports this module only when a textfile is
configured) never loads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from auditor.errors import ConfigError, StoreError
from auditor.evidence_log import DEFAULT_RETENTION_MONTHS, SCAN, parse_scan
from auditor.facts import LogVerification
from auditor.model import TargetResult
from auditor.safe_files import write_atomic
from auditor.store import Store, entries

try:
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.registry import Collector, CollectorRegistry
except ImportError as exc:  # an optional dependency: say which extra brings it
    raise ConfigError(
        f"Prometheus metrics need prometheus_client ({exc.name} is not installed): "
        "pip install 'tls-posture-auditor[metrics]'"
    ) from None

__all__ = ["CONTENT_TYPE", "exposition", "registry", "write_textfile"]

CONTENT_TYPE: str = CONTENT_TYPE_LATEST  # the Content-Type of exposition()'s bytes
TEXTFILE_MODE = 0o644  # node_exporter runs as another user: it must read the file


def exposition(
    store: Store,
    *,
    now: datetime | None = None,
    heads_directory: Path | None = None,
    retention_months: int = DEFAULT_RETENTION_MONTHS,
    verification: LogVerification | None = None,
) -> bytes:
    """The text exposition format of the store's metrics (CONTENT_TYPE). The evidence log is
    verified on every call unless `verification` is given (a caller that keeps a recent one);
    `heads_directory` (the config's output directory) adds the witnessed heads, as `verify-log`
    does; `now` is the verification's clock (retention)."""
    collector = HistoryCollector(store, now, heads_directory, retention_months, verification)
    return generate_latest(registry(collector))


def write_textfile(
    path: Path,
    store: Store,
    *,
    heads_directory: Path | None = None,
    retention_months: int = DEFAULT_RETENTION_MONTHS,
) -> None:
    """Rewrite `path` atomically (a temporary file beside it, renamed: node_exporter never reads half
    of it, nor the temporary file, whose name does not end in .prom). OSError when it cannot be."""
    text = exposition(store, heads_directory=heads_directory, retention_months=retention_months)
    write_atomic(path, text.decode("utf-8"), mode=TEXTFILE_MODE)


def registry(collector: Collector) -> CollectorRegistry:
    """A new registry holding only `collector` (no process or platform metrics)."""
    fresh = CollectorRegistry(auto_describe=False)
    fresh.register(collector)
    return fresh


class HistoryCollector(Collector):
    """Reads the store on every collect(): a scrape sees the history as it is at that moment."""

    def __init__(
        self,
        store: Store,
        now: datetime | None,
        heads_directory: Path | None,
        retention_months: int,
        verification: LogVerification | None = None,
    ) -> None:
        self.store = store
        self.now = now
        self.heads_directory = heads_directory
        self.retention_months = retention_months
        self.verification = verification

    def collect(self) -> Iterator[Metric]:
        yield from target_families(newest_scans(self.store))
        yield GaugeMetricFamily(
            "auditor_evidence_log_verified",
            "1 when the evidence log's hash chain (and the witnessed heads) verify, as `auditor verify-log`; else 0",
            value=float(self._verified()),
        )

    def _verified(self) -> bool:
        if self.verification is not None:
            return self.verification.ok
        if self.heads_directory is None:
            return self.store.verify(self.retention_months, self.now).ok
        return self.store.verify_with_heads(self.heads_directory, self.retention_months, now=self.now).ok


def newest_scans(store: Store) -> Iterator[TargetResult]:
    """The newest readable stored scan of every target ever stored, by URL, parsed one at a time
    (ten thousand sites' bodies never sit in memory at once). A damaged newest entry gives way to
    the one before it (as Store.recent does; verification reports the damage)."""
    if not store.usable:
        return
    newest_seq = select(func.max(entries.c.seq)).where(entries.c.kind == SCAN).group_by(entries.c.target_url)
    query = (
        select(entries.c.target_url, entries.c.body)
        .where(entries.c.seq.in_(newest_seq.scalar_subquery()))
        .order_by(entries.c.target_url)
    )
    try:
        with store.engine.connect() as conn:
            for url, body in conn.execution_options(yield_per=200).execute(query):
                try:
                    yield parse_scan(body)
                except ValueError:
                    older = store.latest(url)
                    if older is not None:
                        yield older[1]
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(f"history database {store.name}: {reason}") from None


def target_families(results: Iterable[TargetResult]) -> Iterator[Metric]:
    """One sample per target (per clause, per endpoint) in each family, and the counts over them."""
    target = ["target"]
    compliant = GaugeMetricFamily(
        "auditor_target_compliant", "1 when the target's newest scan meets the policy, else 0", labels=target
    )
    audited = GaugeMetricFamily(
        "auditor_target_audited",
        "1 when the target's newest scan could audit it, 0 when it could not",
        labels=target,
    )
    score = GaugeMetricFamily(
        "auditor_grade_score",
        "the SSL Labs numeric score (0-100); the letter is a label",
        labels=["target", "letter"],
    )
    clause = GaugeMetricFamily(
        "auditor_clause_status",
        "1 for each policy clause's status in the target's newest scan (pass, fail, warn, info, error, not_tested)",
        labels=["target", "clause", "status"],
    )
    expiry = GaugeMetricFamily(
        "auditor_certificate_earliest_expiry_timestamp_seconds",
        "the earliest notAfter of the certificates the target served, as a Unix time",
        labels=target,
    )
    scanned = GaugeMetricFamily(
        "auditor_last_scan_timestamp_seconds",
        "when the target's newest stored scan started, as a Unix time",
        labels=target,
    )
    duration = GaugeMetricFamily(
        "auditor_scan_duration_seconds", "how long the target's newest scan took", labels=target
    )
    endpoint = GaugeMetricFamily(
        "auditor_endpoint_compliant",
        "1 when this address of the target meets the policy in the newest scan, else 0",
        labels=["target", "address"],
    )
    counts = {"compliant": 0, "noncompliant": 0, "not_audited": 0}
    for result in results:
        url = [result.target.url]
        counts[state(result)] += 1
        compliant.add_metric(url, float(result.compliant and not result.error))
        audited.add_metric(url, float(not result.error))
        if result.grade is not None:
            score.add_metric([*url, result.grade.letter], result.grade.score)
        for clause_id, status in result.clause_statuses().items():
            clause.add_metric([*url, clause_id.value, status.value], 1.0)
        not_after = earliest_expiry(result)
        if not_after is not None:
            expiry.add_metric(url, not_after.timestamp())
        scanned.add_metric(url, result.started_at.timestamp())
        duration.add_metric(url, result.duration_s)
        for address in result.endpoints:
            endpoint.add_metric([*url, address.address], float(address.compliant and not address.error))
    targets = GaugeMetricFamily(
        "auditor_targets",
        "targets by the state of their newest stored scan: compliant, noncompliant (audited, breaking the "
        "policy), not_audited",
        labels=["state"],
    )
    for name, count in counts.items():
        targets.add_metric([name], count)
    yield from (compliant, audited, score, clause, expiry, scanned, duration, endpoint, targets)


def state(result: TargetResult) -> str:
    """The summary's three kinds of target (as the terminal's policy verdict counts them)."""
    if result.error:
        return "not_audited"
    return "compliant" if result.compliant else "noncompliant"


def earliest_expiry(result: TargetResult) -> datetime | None:
    """The first notAfter among every certificate every served chain holds (blackbox_exporter's
    probe_ssl_earliest_cert_expiry): an expiring intermediate breaks the site as a leaf does."""
    if result.evidence is None:
        return None
    served = [cert.not_after for chain in result.evidence.tls.certificates for cert in chain.received_chain]
    return min(served, default=None)
