"""`MetricSources`: the scrape-time figures, read from the parts that own them (the node builds it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ampgate.gateway.admission import REFUSAL_REASONS, SHED_REASONS, HandshakeCounts
from ampgate.gateway.pump_stats import SECONDS_BOUNDS, SIZE_BOUNDS, PumpStats
from ampgate.metrics.collector import Histogram, PumpFigures


class GatewayView(Protocol):
    pump_stats: PumpStats
    handshakes: HandshakeCounts

    def health(self) -> list[dict[str, Any]]: ...


class ConnectivitySummary(Protocol):
    def summary(self) -> dict[str, Any]: ...


class BusView(Protocol):
    published: int
    lost: int

    def subscribers(self) -> int: ...


class WriterStats(Protocol):
    @property
    def commits(self) -> int: ...
    @property
    def ops(self) -> int: ...
    @property
    def failed_ops(self) -> int: ...


class StoreView(Protocol):
    @property
    def stats(self) -> WriterStats: ...
    def queued(self) -> int: ...


class QueuedCommands(Protocol):
    def queued_total(self) -> int: ...


class RoundTrips(Protocol):
    """The ping round trips the connectivity part saw (`ampgate.connectivity.links.RttHistogram`)."""

    sum: float

    def cumulative(self) -> list[tuple[float, int]]: ...


class StreamCount(Protocol):
    @property
    def streams(self) -> int: ...


class MetricSources:
    def __init__(
        self,
        gateway: GatewayView,
        connectivity: ConnectivitySummary,
        bus: BusView,
        store: StoreView,
        commands: QueuedCommands,
        events: StreamCount,
        rtt: RoundTrips,
        *,
        boot_spread_pending: Callable[[], int] | None = None,
        presence_records: Callable[[], int] | None = None,
    ) -> None:
        self._rtt = rtt
        self._presence_records = presence_records
        self._spread_pending = boot_spread_pending
        self._gateway = gateway
        self._connectivity = connectivity
        self._bus = bus
        self._store = store
        self._commands = commands
        self._events = events

    def workers(self) -> list[dict[str, Any]]:
        return self._gateway.health()

    def charger_states(self) -> tuple[dict[str, int], int]:
        summary = self._connectivity.summary()
        return {k: summary[k] for k in ("online", "stale", "offline")}, int(summary["flapping"])

    def boot_spread_pending(self) -> int:
        return self._spread_pending() if self._spread_pending is not None else 0

    def presence_records(self) -> int:
        return self._presence_records() if self._presence_records is not None else 0

    def bus(self) -> tuple[int, int, int]:
        return self._bus.published, self._bus.lost, self._bus.subscribers()

    def commands_queued(self) -> int:
        return self._commands.queued_total()

    def store(self) -> tuple[int, int, int, int]:
        st = self._store.stats
        return self._store.queued(), st.commits, st.ops, st.failed_ops

    def pump(self) -> PumpFigures:
        p = self._gateway.pump_stats
        return PumpFigures(
            sizes=PumpStats.cumulative(SIZE_BOUNDS, p.sizes),
            size_sum=p.size_sum,
            seconds=PumpStats.cumulative(SECONDS_BOUNDS, p.seconds),
            seconds_sum=p.seconds_sum,
        )

    def refused_upgrades(self) -> dict[str, int]:
        totals = self._gateway.handshakes.totals
        return {reason: totals[name] for name, reason in REFUSAL_REASONS.items()}

    def shed_connections(self) -> dict[str, int]:
        totals = self._gateway.handshakes.totals
        return {reason: totals[name] for name, reason in SHED_REASONS.items()}

    def ping_rtt(self) -> Histogram:
        return Histogram(self._rtt.cumulative(), self._rtt.sum)

    def event_streams(self) -> int:
        return self._events.streams
