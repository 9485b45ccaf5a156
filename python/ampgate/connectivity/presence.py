"""Presence: the live state of every charger's link, keyed both by charger id and by connection id.

A charger has at most one live connection. When a second one authenticates (a silent network drop leaves the
old socket half-open), the new one wins and the old one is closed; because everything here is keyed by the
connection id, the old socket's later `disconnected` cannot remove the new session (the bug ocpp-go, SteVe and
Open e-Mobility each had).
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from ampgate.gateway.conn_ids import generation_of, worker_of


class Presence(msgspec.Struct, gc=False):
    """One charger's link. `online` is False once its connection is gone (the record stays, for last_seen)."""

    charger_id: str
    conn_id: int | None
    protocol: str | None
    peer: str | None
    online: bool
    connected_at: float | None  # epoch seconds
    last_seen_at: float | None

    @property
    def connected_since(self) -> datetime | None:
        return _dt(self.connected_at) if self.online else None

    @property
    def last_seen(self) -> datetime | None:
        return _dt(self.last_seen_at)


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class PresenceRegistry:
    """Chargers' presence. Plain synchronous methods: they run on the trio thread only."""

    def __init__(self) -> None:
        self._by_charger: dict[str, Presence] = {}
        self._by_conn: dict[int, Presence] = {}

    def get(self, charger_id: str) -> Presence | None:
        """The charger's presence, or None if it never connected since the node started."""
        return self._by_charger.get(charger_id)

    def by_conn(self, conn_id: int) -> Presence | None:
        """The presence owning live connection `conn_id`, or None if that connection is not (or no longer) live."""
        return self._by_conn.get(conn_id)

    def connected(self, conn_id: int, charger_id: str, protocol: str, peer: str, now: float) -> int | None:
        """Record a new authenticated connection. Returns the conn_id of the charger's previous live
        connection, which the caller must close (keep-new), or None."""
        p = self._by_charger.get(charger_id)
        old: int | None = None
        if p is None:
            p = Presence(charger_id, conn_id, protocol, peer, True, now, now)
            self._by_charger[charger_id] = p
        else:
            if p.online and p.conn_id is not None and p.conn_id != conn_id:
                old = p.conn_id
                self._by_conn.pop(old, None)
            p.conn_id = conn_id
            p.protocol = protocol
            p.peer = peer
            p.online = True
            p.connected_at = now
            p.last_seen_at = now
        self._by_conn[conn_id] = p
        return old

    def disconnected(self, conn_id: int, now: float) -> Presence | None:
        """Record that `conn_id` is gone. Returns the presence it took offline, or None when that connection
        had already been replaced (its charger stays online on the newer one)."""
        p = self._by_conn.pop(conn_id, None)
        if p is None or p.conn_id != conn_id:
            return None
        p.online = False
        p.conn_id = None
        p.last_seen_at = now
        return p

    def conns_of_worker(self, worker: int, generation: int) -> list[int]:
        """Live connection ids held by one worker process (slot + generation)."""
        return [c for c in self._by_conn if worker_of(c) == worker and generation_of(c) == generation]

    def online_count(self) -> int:
        return len(self._by_conn)
