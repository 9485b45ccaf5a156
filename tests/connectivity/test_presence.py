"""Presence keyed by connection: keep-new on duplicates, and an old socket's close never unseats the new one."""

from __future__ import annotations

from ampgate.connectivity.presence import PresenceRegistry
from ampgate.gateway.conn_ids import generation_of, worker_of


def test_connect_and_disconnect():
    reg = PresenceRegistry()
    assert reg.connected(1, "CP1", "ocpp1.6", "127.0.0.1:1", 100.0) == (None, True)
    p = reg.get("CP1")
    assert p is not None and p.online and p.connected_since is not None
    assert reg.disconnected(1, 105.0) is p
    assert not p.online and p.connected_since is None and p.last_seen_at == 105.0
    assert reg.online_count() == 0


def test_duplicate_keeps_new_and_old_close_is_ignored():
    reg = PresenceRegistry()
    reg.connected(1, "CP1", "ocpp1.6", "a", 100.0)
    assert reg.connected(2, "CP1", "ocpp2.0.1", "b", 101.0) == (1, True)
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


def test_a_late_connected_of_an_older_connection_never_replaces_the_newer_one():
    reg = PresenceRegistry()
    # Connection 2's handshake (worker time 50.0) is newer than connection 1's (40.0), whose Connected comes
    # late through another worker: connection 1 is the one to close, and the charger stays on 2.
    assert reg.connected(2, "CP1", "ocpp1.6", "b", 100.0, worker_at=50.0) == (None, True)
    assert reg.connected(1, "CP1", "ocpp1.6", "a", 100.5, worker_at=40.0) == (1, False)
    p = reg.get("CP1")
    assert p is not None and p.conn_id == 2 and reg.by_conn(1) is None and reg.by_conn(2) is p
    assert p.connects_today == 1
    # Its close changes nothing either.
    assert reg.disconnected(1, 101.0) is None and p.online
    # A genuinely newer one still replaces.
    assert reg.connected(3, "CP1", "ocpp1.6", "c", 102.0, worker_at=60.0) == (2, True)


def test_connects_are_counted_per_utc_day():
    reg = PresenceRegistry()
    day = 20_000 * 86_400.0
    reg.connected(1, "CP1", "ocpp1.6", "a", day + 10)
    reg.disconnected(1, day + 20)
    reg.connected(2, "CP1", "ocpp1.6", "a", day + 30)
    p = reg.get("CP1")
    assert p is not None and p.connects_today == 2
    reg.disconnected(2, day + 86_400)
    reg.connected(3, "CP1", "ocpp1.6", "a", day + 86_401)
    assert p.connects_today == 1
