"""The metrics' own rules: disconnect reasons become a bounded set of labels; the pump's buckets are cumulative
as Prometheus wants; a registry is per node (two never share a counter)."""

from __future__ import annotations

from datetime import UTC, datetime

from ampgate.bus import EventBus
from ampgate.events import ChargerBooted, ChargerConnected, ChargerDisconnected
from ampgate.gateway.pump_stats import SECONDS_BOUNDS, SIZE_BOUNDS, PumpStats
from ampgate.metrics import NodeMetrics
from ampgate.metrics.collector import Histogram, PumpFigures, disconnect_kind

AT = datetime(2026, 11, 30, tzinfo=UTC)


def test_disconnect_reasons_become_few_labels() -> None:
    assert disconnect_kind("no answer to ping") == "ping_timeout"
    assert disconnect_kind("replaced by a newer connection of this charger") == "replaced"
    assert disconnect_kind("an older connection of this charger") == "replaced"
    assert disconnect_kind("gateway worker exited") == "worker_lost"
    assert disconnect_kind("node shutdown") == "node_shutdown"
    assert disconnect_kind("closed by the charger") == "charger_closed"
    assert disconnect_kind("whatever a charger writes in its close frame") == "other"
    # The gateway workers' bounds (rust/gateway/conn.rs), word for word.
    assert disconnect_kind("worker buffer budget exceeded: this connection held the most") == "buffer_budget"
    assert (
        disconnect_kind("too many CALLs sent before the previous one was answered (OCPP-J: one at a time)")
        == "pending_calls"
    )
    assert disconnect_kind("too many messages: over the per-charger message rate") == "msg_rate"


def test_pump_buckets_are_cumulative() -> None:
    p = PumpStats()
    for events, seconds in ((1, 0.0001), (5, 0.002), (500, 0.02), (50_000, 2.0)):
        p.add(events, seconds)
    sizes = PumpStats.cumulative(SIZE_BOUNDS, p.sizes)
    assert sizes == [(1.0, 1), (10.0, 2), (100.0, 2), (1000.0, 3), (10_000.0, 3), (float("inf"), 4)]
    seconds = PumpStats.cumulative(SECONDS_BOUNDS, p.seconds)
    assert seconds[0] == (0.0005, 1) and seconds[-1] == (float("inf"), 4)
    assert p.size_sum == 50_506


class Sources:
    def workers(self):
        return [{"worker": 0, "connections": 3, "restarts": 0, "alive": True}]

    def charger_states(self):
        return {"online": 3, "stale": 0, "offline": 1}, 0

    def boot_spread_pending(self):
        return 2

    def bus(self):
        return (10, 0, 2)

    def commands_queued(self):
        return 0

    def store(self):
        return (0, 1, 1, 0)

    def pump(self):
        return PumpFigures(
            sizes=[(float("inf"), 0)], size_sum=0, seconds=[(float("inf"), 0)], seconds_sum=0.0
        )

    def event_streams(self):
        return 0

    def refused_upgrades(self):
        return {"admission_rate": 7, "bad_credentials": 1}

    def shed_connections(self):
        return {"buffer_budget": 2, "pending_calls": 0, "msg_rate": 1}

    def ping_rtt(self):
        return Histogram([(0.01, 2), (float("inf"), 3)], 0.5)

    def presence_records(self):
        return 4


def test_each_node_has_its_own_registry() -> None:
    a, b = NodeMetrics(EventBus(), Sources()), NodeMetrics(EventBus(), Sources())
    a.count(ChargerConnected(at=AT, charger_id="CP", conn_id=1, protocol="ocpp1.6", remote_address="x"))
    a.count(ChargerDisconnected(at=AT, charger_id="CP", conn_id=1, code=1006, reason="no answer to ping"))
    text_a, text_b = a.render().decode(), b.render().decode()
    assert 'ampgate_handshakes_total{protocol="ocpp1.6"} 1.0' in text_a
    assert 'ampgate_disconnects_total{reason="ping_timeout"} 1.0' in text_a
    assert "ampgate_handshakes_total{" not in text_b
    assert 'ampgate_worker_connections{worker="0"} 3.0' in text_b
    assert 'ampgate_upgrades_refused_total{reason="admission_rate"} 7.0' in text_b
    assert 'ampgate_connections_shed_total{reason="buffer_budget"} 2.0' in text_b
    assert 'ampgate_connections_shed_total{reason="msg_rate"} 1.0' in text_b
    assert 'ampgate_ping_rtt_seconds_bucket{le="0.01"} 2.0' in text_b
    assert "ampgate_ping_rtt_seconds_count 3.0" in text_b


def test_spread_boots_are_counted_and_the_waiting_chargers_shown() -> None:
    m = NodeMetrics(EventBus(), Sources())
    boot = {"protocol": "ocpp2.0.1", "vendor": "V", "model": "M", "serial": None, "firmware_version": None}
    m.count(ChargerBooted(at=AT, charger_id="A", boot_status="Accepted", **boot))
    m.count(ChargerBooted(at=AT, charger_id="B", boot_status="Pending", spread=True, **boot))
    m.count(ChargerBooted(at=AT, charger_id="C", boot_status="Pending", **boot))
    text = m.render().decode()
    assert 'ampgate_boots_total{status="Pending"} 2.0' in text
    assert "ampgate_boots_spread_total 1.0" in text
    assert "ampgate_boot_spread_pending 2.0" in text
    assert "ampgate_presence_records 4.0" in text
