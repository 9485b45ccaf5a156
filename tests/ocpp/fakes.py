"""Stand-ins for what the OCPP layer is handed, so handlers and the router run in-process: no sockets, no store
file, no subprocess node. Each records what it was told."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from ampgate.bus import EventBus, Subscription
from ampgate.clock import Clock
from ampgate.events import Event
from ampgate.ocpp.boot_policy import BootPolicy
from ampgate.ocpp.outbox import CallManager
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.store import BootReport

NOW = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)


class FixedClock(Clock):
    """The wall clock stands still at `at` (epoch seconds) until moved."""

    def __init__(self, at: datetime = NOW) -> None:
        self.at = at.timestamp()

    def wall(self) -> float:
        return self.at


class Link:
    """The gateway: what was sent (decoded) per connection, and closes."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, Any]] = []
        self.closed: list[tuple[int, int, str]] = []

    def send(self, batch: list[tuple[int, bytes]]) -> None:
        self.sent += [(conn, msgspec.json.decode(data)) for conn, data in batch]

    def close(self, batch: list[tuple[int, int, str]]) -> None:
        self.closed += batch


class ChargerTable:
    """The charger repository's boot, connection and acceptance records, in memory."""

    def __init__(self, accepted: list[str] | None = None) -> None:
        self.accepted = list(accepted or [])
        self.boots: list[BootReport] = []
        self.connections: list[tuple[str, str | None]] = []
        self.firmware: list[tuple[str, str, int | None]] = []

    def accepted_ids(self) -> list[str]:
        return list(self.accepted)

    def mark_accepted(self, cp_id: str) -> None:
        self.accepted.append(cp_id)

    def record_boot(self, boot: BootReport) -> None:
        self.boots.append(boot)

    def record_connection(self, cp_id: str, *, protocol: str | None, at: datetime) -> None:
        self.connections.append((cp_id, protocol))

    def record_firmware_status(
        self, cp_id: str, *, status: str, request_id: int | None, at: datetime
    ) -> None:
        self.firmware.append((cp_id, status, request_id))


class Seen:
    """A presence record: the router refreshes `last_seen_at` on every message."""

    last_seen_at: float | None = None
    last_heartbeat_at: float | None = None
    recorded: bool = False


class Wire:
    """The outbox's way to a charger: frames per charger id, for the chargers in `online`."""

    def __init__(self, online: set[str] | None = None) -> None:
        self.online = online if online is not None else set()
        self.sent: list[tuple[str, Any]] = []

    def send(self, charger_id: str, frame: bytes) -> bool:
        if charger_id not in self.online:
            return False
        self.sent.append((charger_id, msgspec.json.decode(frame)))
        return True


class Harness:
    """A router as the node builds it, with stand-ins around it. `events` hears everything published."""

    def __init__(self, *, accepted: list[str] | None = None, unknown_boot: str = "accept") -> None:
        self.clock = FixedClock()
        self.bus = EventBus()
        self.events: Subscription = self.bus.subscribe()
        self.link = Link()
        self.chargers = ChargerTable(accepted)
        self.policy = BootPolicy(
            self.chargers,
            unknown_boot=unknown_boot,  # type: ignore[arg-type]
            heartbeat_interval=300,
            retry_interval=60,
        )
        self.wire = Wire()
        self.outbox = CallManager(self.wire.send, publish=self.bus.publish, now=self.clock.now)
        self.router = OcppRouter(self.policy, self.link, self.outbox, self.clock)
        self.router.begin_batch()

    def open(self, charger_id: str, protocol: str = "ocpp1.6", conn_id: int = 1) -> Session:
        self.wire.online.add(charger_id)
        return self.router.open(conn_id, charger_id, protocol, Seen())

    def call(self, session: Session, action: str, payload: Any, unique_id: str = "m1") -> Any:
        """Send one CALL; the decoded reply (None: no reply now)."""
        reply = self.router.handle(session, msgspec.json.encode([2, unique_id, action, payload]))
        return None if reply is None else msgspec.json.decode(reply)

    def published(self) -> list[Event]:
        out: list[Event] = []
        while (item := self.events.receive_nowait()) is not None:
            assert isinstance(item, Event)
            out.append(item)
        return out
