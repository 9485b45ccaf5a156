"""`NodeMetrics`: the node's Prometheus registry, built with the `prometheus_client` library.

Two kinds of figures. Counters of what happened are kept by a bus subscriber (`run`): handshakes by protocol,
disconnects by reason, boots by status (and those answered Pending to spread a boot storm), commands by outcome;
the bus never waits for it, and what it lost is itself a counter (`ampgate_metrics_events_lost_total`). Gauges and
the parts' own counters are read when Prometheus scrapes (a custom collector): connections per worker, chargers
by state, flapping, chargers waiting under boot spreading, bus and command queue depths, the gateway pump's
batches (sizes and handling time), the store's write queue.

The workers count refused upgrades (admission control's 503s, the handshake table's 401 / 404,
bad requests) and report running totals with their stats; the ping round-trip histogram is the connectivity
part's, fed by the workers' pong reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import trio
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ampgate.bus import EventBus, EventsLost
from ampgate.events import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    CommandAnswered,
    CommandCancelled,
    CommandExpired,
    CommandFailed,
    event_type,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_COUNTED = (
    ChargerConnected,
    ChargerDisconnected,
    ChargerBooted,
    CommandAnswered,
    CommandFailed,
    CommandExpired,
    CommandCancelled,
)
_TYPES = [str(t.__struct_config__.tag) for t in _COUNTED]


def disconnect_kind(reason: str) -> str:
    """A bounded label for a disconnect reason (reasons are free text from chargers and workers)."""
    r = reason.lower()
    for needle, kind in (
        # The gateway's own bounds first ("worker buffer budget" is no lost worker).
        ("buffer budget", "buffer_budget"),
        ("too many calls", "pending_calls"),
        ("message rate", "msg_rate"),
        ("ping", "ping_timeout"),
        ("replaced", "replaced"),
        ("older connection", "replaced"),
        ("worker", "worker_lost"),
        ("shutdown", "node_shutdown"),
        ("closed by the charger", "charger_closed"),
        ("timed out", "timeout"),
        ("write queue", "write_queue_full"),
    ):
        if needle in r:
            return kind
    return "other"


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts per upper bound, and the sum of the observations."""

    buckets: list[tuple[float, int]]
    sum: float


@dataclass(frozen=True)
class PumpFigures:
    """The gateway pump's batches: cumulative (upper bound, count) buckets of sizes and of handling seconds."""

    sizes: list[tuple[float, int]]
    size_sum: float
    seconds: list[tuple[float, int]]
    seconds_sum: float


class Sources(Protocol):
    """Where the scrape-time figures come from (the node hands these in)."""

    def workers(self) -> list[dict[str, Any]]: ...
    def charger_states(self) -> tuple[dict[str, int], int]: ...  # by state, and how many flap
    def boot_spread_pending(self) -> int: ...
    def presence_records(self) -> int: ...
    def bus(self) -> tuple[int, int, int]: ...  # published, lost, subscribers
    def commands_queued(self) -> int: ...
    def store(self) -> tuple[int, int, int, int]: ...  # write queue, commits, ops, failed ops
    def pump(self) -> PumpFigures: ...
    def event_streams(self) -> int: ...
    def refused_upgrades(self) -> dict[str, int]: ...  # running totals by reason
    def shed_connections(self) -> dict[str, int]: ...  # running totals by reason
    def ping_rtt(self) -> Histogram: ...


class _ScrapeCollector(Collector):
    def __init__(self, sources: Sources) -> None:
        self._s = sources

    def collect(self) -> Iterator[Metric]:
        s = self._s
        conns = GaugeMetricFamily(
            "ampgate_worker_connections", "Connections held by each gateway worker", labels=["worker"]
        )
        restarts = CounterMetricFamily(
            "ampgate_worker_restarts", "Restarts of each gateway worker slot", labels=["worker"]
        )
        alive = GaugeMetricFamily(
            "ampgate_worker_alive", "Whether the worker process is alive", labels=["worker"]
        )
        for w in s.workers():
            label = [str(w["worker"])]
            conns.add_metric(label, w["connections"])
            restarts.add_metric(label, w["restarts"])
            alive.add_metric(label, 1 if w["alive"] else 0)
        yield from (conns, restarts, alive)
        states = GaugeMetricFamily(
            "ampgate_chargers", "Registered chargers by connectivity state", labels=["state"]
        )
        by_state, flapping = s.charger_states()
        for state, n in sorted(by_state.items()):
            states.add_metric([state], n)
        yield states
        yield GaugeMetricFamily("ampgate_chargers_flapping", "Chargers marked flapping", value=flapping)
        yield GaugeMetricFamily(
            "ampgate_boot_spread_pending",
            "Connected chargers told Pending to spread a boot storm, not yet Accepted",
            value=s.boot_spread_pending(),
        )
        yield GaugeMetricFamily(
            "ampgate_presence_records",
            "Chargers whose link state the node keeps: every connected charger, and offline ones it records "
            "(unknown ids that never booted are forgotten when they leave)",
            value=s.presence_records(),
        )
        published, lost, subscribers = s.bus()
        yield CounterMetricFamily(
            "ampgate_bus_events_published", "Events published on the bus", value=published
        )
        yield CounterMetricFamily(
            "ampgate_bus_events_lost", "Events subscribers lost (buffer full)", value=lost
        )
        yield GaugeMetricFamily("ampgate_bus_subscribers", "Open bus subscriptions", value=subscribers)
        yield GaugeMetricFamily(
            "ampgate_command_queue_depth", "Commands queued for chargers", value=s.commands_queued()
        )
        queue, commits, ops, failed = s.store()
        yield GaugeMetricFamily(
            "ampgate_store_write_queue_depth", "Writes waiting for the store's writer", value=queue
        )
        yield CounterMetricFamily("ampgate_store_commits", "Transactions the store committed", value=commits)
        yield CounterMetricFamily("ampgate_store_ops", "Write operations committed", value=ops)
        yield CounterMetricFamily("ampgate_store_failed_ops", "Write operations rolled back", value=failed)
        pump = s.pump()
        yield HistogramMetricFamily(
            "ampgate_pump_batch_events",
            "Events per batch the gateway pump handled",
            buckets=_buckets(pump.sizes),
            sum_value=pump.size_sum,
        )
        yield HistogramMetricFamily(
            "ampgate_pump_batch_seconds",
            "Time the gateway pump took to handle a batch (replies included)",
            buckets=_buckets(pump.seconds),
            sum_value=pump.seconds_sum,
        )
        yield GaugeMetricFamily(
            "ampgate_event_streams", "Live event streams (SSE) open", value=s.event_streams()
        )
        refused = CounterMetricFamily(
            "ampgate_upgrades_refused",
            "WebSocket upgrades refused, by reason (admission_rate, admission_handshakes and "
            "admission_unknown_ids are HTTP 503; security_profile is HTTP 403: below the charger's security "
            "profile, or a client certificate naming another charger; tls_handshake: failed TLS handshakes)",
            labels=["reason"],
        )
        for reason, n in sorted(s.refused_upgrades().items()):
            refused.add_metric([reason], n)
        yield refused
        shed = CounterMetricFamily(
            "ampgate_connections_shed",
            "Open connections a gateway worker closed for its bounds, by reason (buffer_budget: 1013; "
            "pending_calls, msg_rate: 1008)",
            labels=["reason"],
        )
        for reason, n in sorted(s.shed_connections().items()):
            shed.add_metric([reason], n)
        yield shed
        rtt = s.ping_rtt()
        yield HistogramMetricFamily(
            "ampgate_ping_rtt_seconds",
            "Round trips of the gateway's WebSocket pings to chargers",
            buckets=_buckets(rtt.buckets),
            sum_value=rtt.sum,
        )


def _buckets(cumulative: list[tuple[float, int]]) -> list[tuple[str, float]]:
    return [("+Inf" if b == float("inf") else repr(b), float(n)) for b, n in cumulative]


class NodeMetrics:
    """The node's registry. Start `run` in the node's nursery (it counts events from the bus)."""

    def __init__(self, bus: EventBus, sources: Sources) -> None:
        self._bus = bus
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_ScrapeCollector(sources))
        self.handshakes = Counter(
            "ampgate_handshakes",
            "Charger connections opened (handshake done)",
            ["protocol"],
            registry=self.registry,
        )
        self.disconnects = Counter(
            "ampgate_disconnects", "Charger connections ended, by reason", ["reason"], registry=self.registry
        )
        self.boots = Counter(
            "ampgate_boots", "BootNotifications answered, by status", ["status"], registry=self.registry
        )
        self.boots_spread = Counter(
            "ampgate_boots_spread",
            "BootNotifications answered Pending to spread a boot storm (also counted in ampgate_boots)",
            registry=self.registry,
        )
        self.commands = Counter(
            "ampgate_commands",
            "Commands to chargers finished, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self._children: dict[tuple[int, str], Any] = {}
        self.events_lost = Counter(
            "ampgate_metrics_events_lost", "Bus events the metrics counter missed", registry=self.registry
        )

    def render(self) -> bytes:
        """The exposition text of every metric, as of now."""
        return generate_latest(self.registry)

    def _child(self, counter: Counter, label: str) -> Any:
        """The counter's child for `label` (prometheus_client's `labels()` is slow: looked up once)."""
        key = (id(counter), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(label)
        return child

    def count(self, event: object) -> None:
        if isinstance(event, ChargerConnected):
            self._child(self.handshakes, event.protocol).inc()
        elif isinstance(event, ChargerDisconnected):
            self._child(self.disconnects, disconnect_kind(event.reason)).inc()
        elif isinstance(event, ChargerBooted):
            self._child(self.boots, event.boot_status).inc()
            if event.spread:
                self.boots_spread.inc()
        elif isinstance(event, (CommandAnswered, CommandFailed, CommandExpired, CommandCancelled)):
            self._child(self.commands, event_type(event).split(".", 1)[1]).inc()
        elif isinstance(event, EventsLost):
            self.events_lost.inc(event.count)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._bus.subscribe(_TYPES) as sub:
            task_status.started()
            while True:
                self.count(await sub.receive())
                # Then whatever else is queued: one wake-up per batch the pump published, not one per event.
                while (more := sub.receive_nowait()) is not None:
                    self.count(more)
