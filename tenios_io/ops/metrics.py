"""The ledger stats as Prometheus metrics (prometheus_client): a collector that reads a
fresh snapshot on every scrape, for `ledger stats --serve` and the node_exporter
textfile written by `ledger stats --prometheus-textfile`.

Names (all gauges, prefix ``tenios_archive_``; README "Monitoring"):
``ledger_up``, ``due_recordings``, ``oldest_due_age_seconds``, ``in_progress_recordings``,
``expired_leases``, ``recordings_last_24h{state}``, ``archived_in_hour{hours_ago}``
(0 = the current hour, up to 23: a fixed label set, so the series never multiply),
``custody_events_queued`` and ``stats_timestamp_seconds`` (when the snapshot was taken:
alert on a stale textfile).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from tenios_io.ledger.stats import LedgerStats

PREFIX = "tenios_archive_"
HOURS = 24
log = logging.getLogger(__name__)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, value=value)


def metrics(stats: LedgerStats) -> Iterator[Metric]:
    """The metric families of one snapshot."""
    yield _gauge("ledger_up", "1 when the ledger answered the last scrape.", 1)
    yield _gauge("due_recordings", "Recordings claimable now (pending and due).", stats.due)
    yield _gauge(
        "oldest_due_age_seconds",
        "How long the most overdue pending recording has been claimable (0: none due).",
        stats.oldest_due_seconds,
    )
    yield _gauge("in_progress_recordings", "Recordings leased to a worker.", stats.in_progress)
    yield _gauge(
        "expired_leases",
        "In-progress recordings whose lease has run out (a dead worker's).",
        stats.expired_leases,
    )
    recent = GaugeMetricFamily(
        PREFIX + "recordings_last_24h",
        "Recordings that ended in this state in the last 24 hours.",
        labels=["state"],
    )
    for state, n in sorted(stats.last_24h.items()):
        recent.add_metric([state], n)
    yield recent
    hourly = GaugeMetricFamily(
        PREFIX + "archived_in_hour",
        "Recordings archived in the UTC hour hours_ago before the current one (0: this hour).",
        labels=["hours_ago"],
    )
    this_hour = stats.at.replace(minute=0, second=0, microsecond=0)
    for ago in range(HOURS):
        hourly.add_metric(
            [str(ago)], stats.archived_per_hour.get(this_hour - timedelta(hours=ago), 0)
        )
    yield hourly
    yield _gauge(
        "custody_events_queued",
        "Custody events written but not yet integrated into the chain.",
        stats.custody_queued,
    )
    yield _gauge(
        "stats_timestamp_seconds", "When these figures were read (Unix time).", stats.at.timestamp()
    )


class LedgerCollector(Collector):
    """Reads the ledger at every collection.  A ledger that does not answer yields
    ``ledger_up 0`` (and is logged) instead of failing the scrape, so an alert can
    tell "the archive is behind" from "the ledger is down"."""

    def __init__(self, snapshot: Callable[[], LedgerStats]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        try:
            stats = self._snapshot()
        except Exception as exc:  # noqa: BLE001 - any failure is "down" for the scraper
            log.warning("ledger stats failed: %s", type(exc).__name__)
            yield _gauge("ledger_up", "1 when the ledger answered the last scrape.", 0)
            return
        yield from metrics(stats)


def registry_for(snapshot: Callable[[], LedgerStats]) -> CollectorRegistry:
    """A registry holding only the ledger's metrics (no process/platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(snapshot))
    return registry
