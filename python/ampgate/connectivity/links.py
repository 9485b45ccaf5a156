"""The charger links as the gateway reports them: who connected and disconnected, kept in the presence registry,
told to the OCPP router (a session per connection), recorded on the charger, and published on the bus
(`charger.connected`, `charger.disconnected`); and the way to put a frame on a charger's live connection.

A charger has at most one live connection. When a second one authenticates (a silent network drop leaves the
old socket half-open), the new one wins: the old one is closed with REPLACED_CODE and published as disconnected
with that reason, and its own later close from the worker changes nothing (presence is keyed by connection).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.connectivity.presence import Presence, PresenceRegistry
from ampgate.events import ChargerConnected, ChargerDisconnected

log = logging.getLogger(__name__)

# A charger whose new connection authenticated replaces its old one (keep-new); the old socket hears this.
REPLACED_CODE = 1000
REPLACED_REASON = "replaced by a newer connection of this charger"
# What the chargers of a gateway worker that died are told they lost (the worker can tell them nothing).
WORKER_LOST_CODE = 1006
WORKER_LOST_REASON = "gateway worker exited"


class GatewayLink(Protocol):
    """The gateway's hub: text messages and closes for live connections."""

    def send(self, batch: list[tuple[int, bytes]], /) -> None: ...
    def close(self, batch: list[tuple[int, int, str]], /) -> None: ...


class Sessions(Protocol):
    """The OCPP router's sessions."""

    def open(self, conn_id: int, charger_id: str, protocol: str, presence: Presence, /) -> object: ...
    def close(self, conn_id: int, /) -> None: ...


class ConnectionRecords(Protocol):
    """Where a charger's connections are recorded (the charger repository)."""

    def record_connection(self, cp_id: str, /, *, protocol: str | None, at: datetime) -> None: ...


class LinkTracker:
    """Handles the gateway's connection events (it implements `ampgate.gateway.LinkListener`)."""

    def __init__(
        self,
        presence: PresenceRegistry,
        sessions: Sessions,
        link: GatewayLink,
        records: ConnectionRecords,
        bus: Publisher,
        clock: Clock,
    ) -> None:
        self._presence = presence
        self._sessions = sessions
        self._link = link
        self._records = records
        self._bus = bus
        self._clock = clock

    def connected(
        self, conn_id: int, charger_id: str, protocol: str, peer: str, worker_at: float | None
    ) -> None:
        """A worker completed the handshake of `conn_id` for `charger_id`."""
        wall = self._clock.wall()
        now = datetime.fromtimestamp(wall, UTC)
        old = self._presence.connected(conn_id, charger_id, protocol, peer, wall)
        if old is not None:
            self._sessions.close(old)
            self._link.close([(old, REPLACED_CODE, REPLACED_REASON)])
            self._bus.publish(
                ChargerDisconnected(
                    at=now, charger_id=charger_id, conn_id=old, code=REPLACED_CODE, reason=REPLACED_REASON
                )
            )
            log.info("charger %s reconnected; closed its previous connection", charger_id)
        presence = self._presence.get(charger_id)
        assert presence is not None
        self._sessions.open(conn_id, charger_id, protocol, presence)
        self._records.record_connection(charger_id, protocol=protocol, at=now)
        self._bus.publish(
            ChargerConnected(
                at=now,
                charger_id=charger_id,
                conn_id=conn_id,
                protocol=protocol,
                remote_address=peer,
                worker_at=worker_at,
            )
        )

    def disconnected(self, conn_id: int, code: int, reason: str, worker_at: float | None) -> None:
        """A worker reports `conn_id` gone (or the node decided it is)."""
        self._sessions.close(conn_id)
        wall = self._clock.wall()
        presence = self._presence.disconnected(conn_id, wall)
        if presence is not None:
            now = datetime.fromtimestamp(wall, UTC)
            self._bus.publish(
                ChargerDisconnected(
                    at=now,
                    charger_id=presence.charger_id,
                    conn_id=conn_id,
                    code=code,
                    reason=reason,
                    worker_at=worker_at,
                )
            )

    def worker_lost(self, worker: int, generation: int) -> None:
        """A worker process died: every connection it held is gone."""
        for conn_id in self._presence.conns_of_worker(worker, generation):
            self.disconnected(conn_id, WORKER_LOST_CODE, WORKER_LOST_REASON, None)


class ChargerSender:
    """Puts a frame on a charger's live connection, found by its id: how the outbox reaches a charger."""

    def __init__(self, presence: PresenceRegistry, link: GatewayLink) -> None:
        self._presence = presence
        self._link = link

    def send(self, charger_id: str, frame: bytes) -> bool:
        """Send `frame` to the charger; False when it has no live connection."""
        presence = self._presence.get(charger_id)
        if presence is None or not presence.online or presence.conn_id is None:
            return False
        self._link.send([(presence.conn_id, frame)])
        return True
