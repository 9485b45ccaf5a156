"""The charger links as the gateway reports them: who connected and disconnected, kept in the presence registry,
told to the OCPP router (a session per connection), recorded on the charger and in the connectivity history,
and published on the bus (`charger.connected`, `charger.disconnected`, `charger.flapping`); and the way to put a
frame on a charger's live connection.

A charger has at most one live connection. When a second one authenticates (a silent network drop leaves the
old socket half-open), the newer one wins: the old one is closed with REPLACED_CODE and published as disconnected
with that reason, and its own later close from the worker changes nothing (presence is keyed by connection). A
Connected that arrives late for a connection older than the live one (by the workers' monotonic handshake
times) is that connection's end instead: it is closed, and the charger stays on the newer one.

A charger id the node does not know (not registered, never recorded at a boot: `Known` says) gets no charger
row when it connects; its BootNotification records it (`ampgate.ocpp.boot`). Until then its presence is
forgotten when its connection ends, so ids that connect and never boot leave no state behind (their
connectivity history is kept, as for every charger, and pruned with it).
"""

from __future__ import annotations

import bisect
import collections
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.config import HUB_MAX_SEND
from ampgate.connectivity import rules
from ampgate.connectivity.history import Change
from ampgate.connectivity.presence import Presence, PresenceRegistry
from ampgate.errors import PayloadTooLargeError
from ampgate.events import ChargerAlert, ChargerConnected, ChargerDisconnected, ChargerFlapping
from ampgate.gateway.pump_stats import PumpStats
from ampgate.store.chargers import charger_id_allowed

log = logging.getLogger(__name__)

# A charger whose new connection authenticated replaces its old one (keep-new); the old socket hears this.
REPLACED_CODE = 1000
REPLACED_REASON = "replaced by a newer connection of this charger"
# What the chargers of a gateway worker that died are told they lost (the worker can tell them nothing).
WORKER_LOST_CODE = 1006
WORKER_LOST_REASON = "gateway worker exited"
# A Connected that came late for a connection older than the charger's live one.
OLDER_REASON = "an older connection of this charger"
# A charger whose credentials an admin changed: its live connection authenticated with the old ones. 1008
# (policy violation) as for any connection the node refuses to keep; the charger reconnects with its new ones.
CREDENTIALS_CHANGED_CODE = 1008
CREDENTIALS_CHANGED_REASON = "credentials changed"
# A charger whose id (its URL path) breaks the id rule (ampgate.store.chargers.validate_charger_id: invisible,
# direction-changing or look-alike characters, not NFC). The gateway's own check (rust/codec/charger_id.rs)
# refuses control characters, '/', ':' and ids not in NFC before the upgrade; this one runs on Connected, before
# anything of the charger is recorded.
INVALID_ID_CODE = 1008
INVALID_ID_REASON = "invalid charger id"
# The reason of a charger's own close that gave none.
CHARGER_CLOSED = "closed by the charger"
# Every charger still connected when the node stops.
SHUTDOWN_CODE = 1001
SHUTDOWN_REASON = "node shutdown"
# Per-minute connect and disconnect counts kept for the summary.
RATE_MINUTES = 60
# Upper bounds (seconds) of the ping round-trip histogram's buckets.
RTT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


class RttHistogram:
    """Ping round trips, bucketed as Prometheus wants them (cumulative counts per upper bound, and the sum)."""

    def __init__(self) -> None:
        self._counts = [0] * len(RTT_BUCKETS)
        self.sum = 0.0

    def observe(self, rtt: float) -> None:
        self._counts[bisect.bisect_left(RTT_BUCKETS, rtt)] += 1
        self.sum += rtt

    def cumulative(self) -> list[tuple[float, int]]:
        return PumpStats.cumulative(RTT_BUCKETS, self._counts)


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


class SiteOf(Protocol):
    """Where chargers are placed (`ampgate.connectivity.sites.SiteIndex`)."""

    def site_of(self, charger_id: str, /) -> str | None: ...


class HistoryRecords(Protocol):
    """The connectivity history (`ampgate.connectivity.history.HistoryRepository`)."""

    def record(self, change: Change, /) -> None: ...


Known = Callable[[str], bool]
"""Whether the store has charger `id` (registered, or recorded at a boot): O(1) or one indexed read."""


class MinuteCounts:
    """Connects and disconnects per minute over the last RATE_MINUTES (for the connectivity summary)."""

    def __init__(self) -> None:
        self._minutes: collections.deque[list[int]] = collections.deque(maxlen=RATE_MINUTES)

    def add(self, now: float, connects: int = 0, disconnects: int = 0) -> None:
        minute = int(now // 60)
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append([minute, 0, 0])
        self._minutes[-1][1] += connects
        self._minutes[-1][2] += disconnects

    def recent(self, now: float, minutes: int = 1) -> tuple[int, int]:
        """(connects, disconnects) in the last `minutes` whole minutes before the current one."""
        current = int(now // 60)
        window = range(current - minutes, current)
        rows = [m for m in self._minutes if m[0] in window]
        return sum(m[1] for m in rows), sum(m[2] for m in rows)

    def current(self, now: float) -> tuple[int, int]:
        """(connects, disconnects) so far in the current minute."""
        if self._minutes and self._minutes[-1][0] == int(now // 60):
            return self._minutes[-1][1], self._minutes[-1][2]
        return 0, 0


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
        *,
        history: HistoryRecords | None = None,
        settings: rules.Settings | None = None,
        sites: SiteOf | None = None,
        known: Known | None = None,
    ) -> None:
        self._presence = presence
        # None: every charger counts as recorded (tests of the tracker alone).
        self._known = known
        self._sessions = sessions
        self._link = link
        self._records = records
        self._bus = bus
        self._clock = clock
        self._history = history
        self.settings = settings or rules.Settings()
        self.rates = MinuteCounts()
        self.rtt = RttHistogram()
        self._sites = sites
        # Times of the drops within the spike window (an outage is many at once), with the site of each.
        self._drops: collections.deque[tuple[float, str | None]] = collections.deque()

    def connected(
        self,
        conn_id: int,
        charger_id: str,
        protocol: str,
        peer: str,
        worker_at: float | None,
        security_profile: int = 1,
    ) -> None:
        """A worker completed the handshake of `conn_id` for `charger_id`, with `security_profile` (1 plain
        ws, 2 TLS, 3 TLS with a client certificate)."""
        if not charger_id_allowed(charger_id):
            # Closed before presence, sessions, history or the store hear of it: such an id never exists.
            self._link.close([(conn_id, INVALID_ID_CODE, INVALID_ID_REASON)])
            log.warning("refused a connection with an invalid charger id %a", charger_id)
            return
        wall = self._clock.wall()
        now = datetime.fromtimestamp(wall, UTC)
        previous = self._presence.get(charger_id)
        old_since = previous.connected_at if previous is not None and previous.online else None
        # The charger's row needs a write only for a charger this node has not seen connect yet, or that
        # changed protocol: a reconnect storm of known chargers writes no charger rows.
        known_protocol = previous.protocol if previous is not None else None
        old, live = self._presence.connected(conn_id, charger_id, protocol, peer, wall, worker_at)
        if not live:
            # An older connection whose Connected came after the newer one's: it is the one to go.
            self._link.close([(conn_id, REPLACED_CODE, OLDER_REASON)])
            log.info("charger %s: closed a late-reported older connection", charger_id)
            return
        self.rates.add(wall, connects=1)
        if old is not None:
            self._sessions.close(old)
            self._link.close([(old, REPLACED_CODE, REPLACED_REASON)])
            self._bus.publish(
                ChargerDisconnected(
                    at=now, charger_id=charger_id, conn_id=old, code=REPLACED_CODE, reason=REPLACED_REASON
                )
            )
            self._record(
                charger_id,
                now,
                rules.ONLINE,
                REPLACED_REASON,
                code=REPLACED_CODE,
                conn_id=old,
                duration_s=None if old_since is None else wall - old_since,
            )
            log.info("charger %s reconnected; closed its previous connection", charger_id)
        presence = self._presence.get(charger_id)
        assert presence is not None
        presence.security_profile = security_profile
        if presence.alerted:
            presence.alerted = False
            self._bus.publish(
                ChargerAlert(
                    at=now,
                    charger_id=charger_id,
                    kind="offline",
                    severity="warning",
                    raised=False,
                    since=None
                    if presence.state_since is None
                    else datetime.fromtimestamp(presence.state_since, UTC),
                )
            )
        self._presence.set_state(presence, rules.ONLINE, wall)
        if not presence.recorded:
            presence.recorded = self._known is None or self._known(charger_id)
        self._sessions.open(conn_id, charger_id, protocol, presence)
        # A charger without a row gets none here: only its boot records it (an id that connects and never
        # boots costs the store nothing).
        if presence.recorded and known_protocol != protocol:
            self._records.record_connection(charger_id, protocol=protocol, at=now)
        self._record(
            charger_id,
            now,
            rules.ONLINE,
            rules.CONNECTED,
            conn_id=conn_id,
            protocol=protocol,
            remote_address=peer,
        )
        self._bus.publish(
            ChargerConnected(
                at=now,
                charger_id=charger_id,
                conn_id=conn_id,
                protocol=protocol,
                remote_address=peer,
                worker_at=worker_at,
                security_profile=security_profile,
            )
        )

    def drop(self, charger_id: str, code: int, reason: str) -> int | None:
        """Close `charger_id`'s live connection, if it has one, with `code` and `reason`; returns its conn_id
        (None: not connected). The worker's Disconnected for it then does the bookkeeping as for any close."""
        presence = self._presence.get(charger_id)
        if presence is None or not presence.online or presence.conn_id is None:
            return None
        conn_id = presence.conn_id
        self._link.close([(conn_id, code, reason)])
        log.info("charger %s: closed its connection (%s)", charger_id, reason)
        return conn_id

    def disconnected(self, conn_id: int, code: int, reason: str, worker_at: float | None) -> None:
        """A worker reports `conn_id` gone (or the node decided it is)."""
        self._sessions.close(conn_id)
        wall = self._clock.wall()
        presence = self._presence.disconnected(conn_id, wall)
        if presence is None:
            return
        now = datetime.fromtimestamp(wall, UTC)
        # A close frame without a reason (the usual case) still says who closed.
        reason = reason or CHARGER_CLOSED
        self.rates.add(wall, disconnects=1)
        self._presence.set_state(presence, rules.OFFLINE, wall)
        presence.last_drop_at, presence.last_drop_reason, presence.last_drop_code = wall, reason, code
        duration = None if presence.connected_at is None else wall - presence.connected_at
        self._record(
            presence.charger_id, now, rules.OFFLINE, reason, code=code, conn_id=conn_id, duration_s=duration
        )
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
        if code != SHUTDOWN_CODE or reason != SHUTDOWN_REASON:
            site = None if self._sites is None else self._sites.site_of(presence.charger_id)
            self._drops.append((wall, site))
            presence.drops, flapping = rules.note_drop(presence.drops, wall, self.settings)
            if flapping and not presence.flapping:
                presence.flapping, presence.flapping_since = True, wall
                self._bus.publish(
                    ChargerFlapping(
                        at=now, charger_id=presence.charger_id, flapping=True, drops=len(presence.drops)
                    )
                )
        if not presence.recorded:
            if self._known is None or self._known(presence.charger_id):
                presence.recorded = True  # registered by an admin while connected: kept
            else:
                # Never booted, never registered: its record goes with its connection.
                self._presence.forget(presence.charger_id)

    def pong(self, conn_id: int, rtt: float, worker_at: float | None) -> None:
        """The charger on `conn_id` answered the gateway's ping after `rtt` seconds."""
        presence = self._presence.by_conn(conn_id)
        if presence is None:
            return
        presence.ping_rtt, presence.last_pong_at = rtt, self._clock.wall()
        self.rtt.observe(rtt)

    def recent_drops(self, now: float) -> int:
        """Drops (not replacements, not the node's own shutdown) within the spike window before `now`."""
        while self._drops and now - self._drops[0][0] > self.settings.spike_window:
            self._drops.popleft()
        return len(self._drops)

    def recent_drops_by_site(self, now: float) -> dict[str, int]:
        """The same drops, counted by the site the charger was placed at (unplaced chargers are not counted)."""
        self.recent_drops(now)
        return dict(collections.Counter(site for _, site in self._drops if site is not None))

    def worker_lost(self, worker: int, generation: int) -> None:
        """A worker process died: every connection it held is gone."""
        for conn_id in self._presence.conns_of_worker(worker, generation):
            self.disconnected(conn_id, WORKER_LOST_CODE, WORKER_LOST_REASON, None)

    def node_stopping(self) -> None:
        """The node stops: every charger still connected goes offline with the reason "node shutdown" (in the
        history too, so uptime does not count the time the node was down)."""
        for p in self._presence.live():
            if p.conn_id is not None:
                self.disconnected(p.conn_id, SHUTDOWN_CODE, SHUTDOWN_REASON, None)

    def _record(
        self,
        charger_id: str,
        at: datetime,
        state: str,
        reason: str,
        *,
        code: int | None = None,
        conn_id: int | None = None,
        protocol: str | None = None,
        remote_address: str | None = None,
        duration_s: float | None = None,
    ) -> None:
        if self._history is None:
            return
        self._history.record(
            Change(
                charger_id=charger_id,
                at=at,
                state=state,
                reason=reason,
                code=code,
                conn_id=conn_id,
                protocol=protocol,
                remote_address=remote_address,
                duration_s=None if duration_s is None else round(duration_s, 3),
            )
        )


class ChargerSender:
    """Puts a frame on a charger's live connection, found by its id: how the outbox reaches a charger."""

    def __init__(
        self, presence: PresenceRegistry, link: GatewayLink, *, max_message: int | None = None
    ) -> None:
        self._presence = presence
        self._link = link
        self._max_message = max_message

    def send(self, charger_id: str, frame: bytes) -> bool:
        """Send `frame` to the charger; False when it has no live connection. Raises PayloadTooLargeError
        (code message_too_large, field payload) for a frame over `max_message` or over what the gateway link
        carries (the hub refuses it): the outbox fails that command and sends the next."""
        presence = self._presence.get(charger_id)
        if presence is None or not presence.online or presence.conn_id is None:
            return False
        limit = self._max_message
        if limit is not None and len(frame) > limit:
            raise _too_large(len(frame), limit)
        try:
            self._link.send([(presence.conn_id, frame)])
        except ValueError as e:  # the hub refuses a message over its own limit, sending nothing
            raise _too_large(len(frame), HUB_MAX_SEND) from e
        return True


def _too_large(size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the command is {size} bytes as an OCPP message, over the limit of {limit} bytes",
        field="payload",
        code="message_too_large",
    )
