"""What the cost display did, counted by message and outcome, and served on /metrics.

Nothing the cost display does may fail a charger's message, so its failures (a pricing error, a charger that
answers a DataTransfer Rejected, a CostUpdated that timed out) are logged and counted here instead:
`ampgate_cost_display_total{message, outcome}`.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class Counts:
    """Running totals by (message, outcome): message is what was (to be) shown (`personalMessage`,
    `updatedPersonalMessage`, `totalCost`, `CostUpdated`, `SetUserPrice`, `RunningCost`, `FinalCost`), outcome
    what became of it (`added`, `accepted`, `rejected`, `no_tariff`, `pricing_error`, `timeout`, an error code
    of the Commander, ...)."""

    def __init__(self) -> None:
        self.by: collections.Counter[tuple[str, str]] = collections.Counter()

    def add(self, message: str, outcome: str) -> None:
        self.by[(message, outcome)] += 1

    def get(self, message: str, outcome: str) -> int:
        return self.by[(message, outcome)]


class CountsCollector(Collector):
    """The counts as a Prometheus counter family, read at scrape time."""

    def __init__(self, counts: Counts) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "ampgate_cost_display",
            "Cost shown on chargers (tariff texts, running and final costs), by message and outcome",
            labels=["message", "outcome"],
        )
        for (message, outcome), n in sorted(self._counts.by.items()):
            family.add_metric([message, outcome], n)
        yield family
