"""The store's back-pressure and availability as Prometheus metrics, read at scrape time (the node registers a
`StoreCollector` on its registry beside the scrape collector, which has the queue depth and commit counters)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ampgate.store import StoreCondition

# Every reason a degraded store can have (ampgate.store.writer.UNAVAILABLE_REASONS), each always exported so a
# dashboard's series exist (at 0) before the first incident.
REASONS = ("locked", "full", "io_error")


class StoreCounters(Protocol):
    @property
    def retries(self) -> int: ...
    @property
    def full_waits(self) -> int: ...


class StoreFigures(Protocol):
    condition: StoreCondition

    @property
    def stats(self) -> StoreCounters: ...
    @property
    def queue_max(self) -> int: ...


class StoreCollector(Collector):
    """`ampgate_store_degraded{reason}` (1 while writes fail for that reason), `ampgate_store_write_queue_max`,
    `ampgate_store_write_retries` and `ampgate_store_full_waits`."""

    def __init__(self, store: StoreFigures) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        store = self._store
        degraded = GaugeMetricFamily(
            "ampgate_store_degraded",
            "1 while the store cannot write (writes wait and are retried), by reason",
            labels=["reason"],
        )
        c = store.condition
        for reason in REASONS:
            degraded.add_metric([reason], 1 if c.status == "degraded" and c.reason == reason else 0)
        yield degraded
        yield GaugeMetricFamily(
            "ampgate_store_write_queue_max",
            "Writes queued before the store counts as full and the gateway pump stops taking batches",
            value=store.queue_max,
        )
        yield CounterMetricFamily(
            "ampgate_store_write_retries",
            "Attempts of a group of writes that failed on an unavailable store (locked, full) and were retried",
            value=store.stats.retries,
        )
        yield CounterMetricFamily(
            "ampgate_store_full_waits",
            "Times a producer (the gateway pump, an awaited write) found the write queue full and waited",
            value=store.stats.full_waits,
        )
