"""Presence keyed by connection: keep-new on duplicates, and an old socket's close never unseats the new one."""

from __future__ import annotations

from ampgate.connectivity.presence import PresenceRegistry
from ampgate.gateway.conn_ids import generation_of, worker_of


def test_connect_and_disconnect():
    reg = PresenceRegistry()
    assert reg.connected(1, "CP1", "ocpp1.6", "127.0.0.1:1", 100.0) is None
    p = reg.get("CP1")
    assert p is not None and p.online and p.connected_since is not None
    assert reg.disconnected(1, 105.0) is p
    assert not p.online and p.connected_since is None and p.last_seen_at == 105.0
    assert reg.online_count() == 0


def test_duplicate_keeps_new_and_old_close_is_ignored():
    reg = PresenceRegistry()
    reg.connected(1, "CP1", "ocpp1.6", "a", 100.0)
    assert reg.connected(2, "CP1", "ocpp2.0.1", "b", 101.0) == 1
    # The old socket's close arrives after the new connection: the charger stays online on conn 2.
    assert reg.disconnected(1, 102.0) is None
    p = reg.get("CP1")
    assert p is not None and p.online and p.conn_id == 2 and p.protocol == "ocpp2.0.1"
    assert reg.by_conn(1) is None and reg.by_conn(2) is p


def test_conn_id_layout_matches_rust():
    conn = (5 << 56) | (700 << 40) | 123
    assert worker_of(conn) == 5 and generation_of(conn) == 700
    reg = PresenceRegistry()
    reg.connected(conn, "CPX", "ocpp1.6", "a", 1.0)
    assert reg.conns_of_worker(5, 700) == [conn]
    assert reg.conns_of_worker(5, 701) == []
