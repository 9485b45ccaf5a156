"""Presence: the live state of every charger's link, keyed both by charger id and by connection id.

A charger has at most one live connection. When a second one authenticates (a silent network drop leaves the
old socket half-open), the newer one wins and the other is closed; because everything here is keyed by the
connection id, the old socket's later `disconnected` cannot remove the new session (the bug ocpp-go, SteVe and
Open e-Mobility each had). Which one is newer is decided by the worker's monotonic time of each handshake when
both have one (every worker reads the same CLOCK_MONOTONIC), not by the order the events arrive in: a Connected
of an older connection that comes late (another worker, a backlog) never replaces the newer one.

Beside the link, each record keeps what the connectivity rules (`rules.py`) need: the state (online, stale,
offline) and since when, the last heartbeat, today's connects, recent drops and whether the charger flaps.

Only chargers the node records keep a record once offline: a charger id that is neither registered nor
recorded at a boot (`recorded` False) is forgotten as soon as its connection ends (`forget`), so a stream of
made-up ids that connect and never boot leaves nothing behind (the gateway's rate of new unknown ids bounds how
many are connected at once).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

import msgspec

from ampgate.connectivity.rules import OFFLINE, ONLINE
from ampgate.gateway.conn_ids import generation_of, worker_of


class Presence(msgspec.Struct, gc=False):
    """One charger's link. `online` is False once its connection is gone (the record stays, for last_seen).
    Times are epoch seconds; `worker_at` is the worker's monotonic time of the live connection's handshake."""

    charger_id: str
    conn_id: int | None
    protocol: str | None
    peer: str | None
    online: bool
    connected_at: float | None
    last_seen_at: float | None
    worker_at: float | None = None
    state: str = OFFLINE
    state_since: float | None = None
    last_heartbeat_at: float | None = None
    # Connects on the UTC day `connects_day` (days since the epoch).
    connects_day: int = 0
    connects_today: int = 0
    drops: deque[float] | None = None
    flapping: bool = False
    flapping_since: float | None = None
    last_drop_at: float | None = None
    last_drop_reason: str | None = None
    last_drop_code: int | None = None
    # An offline alert was raised and not yet cleared.
    alerted: bool = False
    # The round trip of the last WebSocket ping the gateway sent and the charger answered (seconds), and when.
    # Pongs prove the link, not the charger's software: they never refresh `last_seen_at` (staleness).
    ping_rtt: float | None = None
    last_pong_at: float | None = None
    # The OCPP security profile of the live (or last) connection: 1 plain ws, 2 TLS, 3 TLS with a client
    # certificate.
    security_profile: int = 1
    # The store has (or is about to have) a row of this charger: registered, or recorded at a boot. A presence
    # without one is forgotten when its connection ends.
    recorded: bool = False

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

    def connected(
        self,
        conn_id: int,
        charger_id: str,
        protocol: str,
        peer: str,
        now: float,
        worker_at: float | None = None,
    ) -> tuple[int | None, bool]:
        """Record a new authenticated connection. Returns (a connection the caller must close, whether
        `conn_id` became the charger's live one). Keep-new: the charger's previous live connection is the one
        to close, unless it is newer than `conn_id` (both handshake times known and `conn_id`'s earlier): then
        `conn_id` is closed and nothing changes."""
        p = self._by_charger.get(charger_id)
        old: int | None = None
        if p is None:
            p = Presence(charger_id, conn_id, protocol, peer, True, now, now, worker_at)
            self._by_charger[charger_id] = p
        else:
            if p.online and p.conn_id is not None and p.conn_id != conn_id:
                if worker_at is not None and p.worker_at is not None and worker_at < p.worker_at:
                    return conn_id, False
                old = p.conn_id
                self._by_conn.pop(old, None)
            p.conn_id = conn_id
            p.protocol = protocol
            p.peer = peer
            p.online = True
            p.connected_at = now
            p.last_seen_at = now
            p.worker_at = worker_at
        day = int(now // 86_400)
        if p.connects_day != day:
            p.connects_day, p.connects_today = day, 0
        p.connects_today += 1
        self._by_conn[conn_id] = p
        return old, True

    def disconnected(self, conn_id: int, now: float) -> Presence | None:
        """Record that `conn_id` is gone. Returns the presence it took offline, or None when that connection
        had already been replaced (its charger stays online on the newer one)."""
        p = self._by_conn.pop(conn_id, None)
        if p is None or p.conn_id != conn_id:
            return None
        p.online = False
        p.conn_id = None
        p.worker_at = None
        p.last_seen_at = now
        return p

    def forget(self, charger_id: str) -> bool:
        """Drop the record of `charger_id` if it is offline (a live one stays); whether it was dropped."""
        p = self._by_charger.get(charger_id)
        if p is None or p.online:
            return False
        del self._by_charger[charger_id]
        return True

    def set_state(self, p: Presence, state: str, now: float) -> bool:
        """Move `p` to `state` (online, stale, offline); False when it was there already."""
        if p.state == state:
            return False
        p.state, p.state_since = state, now
        return True

    def conns_of_worker(self, worker: int, generation: int) -> list[int]:
        """Live connection ids held by one worker process (slot + generation)."""
        return [c for c in self._by_conn if worker_of(c) == worker and generation_of(c) == generation]

    def live(self) -> list[Presence]:
        """Every charger with a live connection."""
        return list(self._by_conn.values())

    def values(self) -> list[Presence]:
        """Every charger seen since the node started, but unrecorded ones that went offline."""
        return list(self._by_charger.values())

    def online_count(self) -> int:
        return len(self._by_conn)

    def __len__(self) -> int:
        """Chargers with a record (online, or offline and recorded)."""
        return len(self._by_charger)


__all__ = ["ONLINE", "Presence", "PresenceRegistry"]
