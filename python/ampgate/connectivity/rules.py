"""The connectivity rules, without I/O (unit-tested on their own): when a charger is stale, when it is flapping
and when it stops, and its uptime per day from its connection history.

States: `online` (a live connection that spoke within its heartbeat interval × the grace factor), `stale` (a
live connection silent past that: its WebSocket pings may still pass, but the charger says nothing, which is how
a wedged charger looks), `offline` (no live connection). A charger is `flapping` when it lost its connection more
than `flap_count` times within `flap_window`; it stops flapping once it has stayed connected for `flap_clear`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

ONLINE = "online"
OFFLINE = "offline"
STALE = "stale"
STATES = (ONLINE, OFFLINE, STALE)

# Why a state changed (the history rows' `reason` and the events'); a charger's own close gives its close code.
CONNECTED = "connected"
MESSAGE = "message received"
HEARTBEAT_TIMEOUT = "heartbeat timeout"


@dataclass(frozen=True)
class Settings:
    """The node's connectivity settings (`ampgate serve` flags)."""

    heartbeat_interval: float = 300.0  # what BootNotification tells chargers
    grace: float = 2.0  # a charger silent for heartbeat_interval × grace is stale
    flap_count: int = 5  # more disconnects than this ...
    flap_window: float = 600.0  # ... within this many seconds: flapping
    flap_clear: float = 1800.0  # connected this long without a drop: no longer flapping
    offline_alert: float = 900.0  # offline this long (and not flapping, not in an incident): an alert
    spike_fraction: float = 0.05  # more than this share of the fleet disconnecting ...
    spike_window: float = 60.0  # ... within this many seconds is an outage: one incident
    spike_min: int = 10  # and at least this many disconnects (a fleet of 20 losing 2 is not an outage)

    @property
    def stale_after(self) -> float:
        return self.heartbeat_interval * self.grace


def is_stale(last_message_at: float | None, connected_at: float, now: float, settings: Settings) -> bool:
    """A live connection is stale when nothing came from the charger for `stale_after` (counted from the
    connect when nothing came at all)."""
    since = last_message_at if last_message_at is not None else connected_at
    return now - since > settings.stale_after


def note_drop(drops: deque[float] | None, now: float, settings: Settings) -> tuple[deque[float], bool]:
    """Record a disconnect at `now` in a charger's recent drops (None: it had none) and say whether it now
    flaps: more than `flap_count` drops within `flap_window`."""
    if drops is None:
        drops = deque()
    drops.append(now)
    while drops and now - drops[0] > settings.flap_window:
        drops.popleft()
    return drops, len(drops) > settings.flap_count


def flap_cleared(connected_at: float | None, last_drop: float | None, now: float, settings: Settings) -> bool:
    """A flapping charger stops flapping once it has been connected for `flap_clear` with no drop since."""
    if connected_at is None:
        return False
    stable_from = max(connected_at, last_drop or connected_at)
    return now - stable_from >= settings.flap_clear


def uptime_by_day(
    intervals: Iterable[tuple[datetime, datetime | None]], first: date, last: date, now: datetime
) -> list[tuple[date, float]]:
    """The share of each UTC day from `first` to `last` (inclusive) that the charger was connected, from its
    connection intervals (start, end; end None: still connected at `now`). A day's time after `now` does not
    count (today's share is of the day so far); intervals may overlap (a replaced connection) and count once."""
    spans = sorted((s, e or now) for s, e in intervals)
    out: list[tuple[date, float]] = []
    d = first
    while d <= last:
        start = datetime(d.year, d.month, d.day, tzinfo=UTC)
        end = min(start + timedelta(days=1), now)
        if end <= start:
            out.append((d, 0.0))
            d += timedelta(days=1)
            continue
        covered = 0.0
        cursor = start
        for s, e in spans:
            s, e = max(s, cursor), min(e, end)
            if e > s:
                covered += (e - s).total_seconds()
                cursor = e
        out.append((d, round(covered / (end - start).total_seconds(), 6)))
        d += timedelta(days=1)
    return out


def is_spike(disconnects: int, fleet: int, settings: Settings) -> bool:
    """Whether `disconnects` within the spike window is an outage of a fleet of `fleet` chargers."""
    return disconnects >= settings.spike_min and disconnects > fleet * settings.spike_fraction


def offline_alert_due(
    offline_since: float | None, flapping: bool, in_incident: bool, now: float, settings: Settings
) -> bool:
    """An offline charger deserves its own alert once offline for `offline_alert`, unless it flaps (its alerts
    are damped until it is stable) or it went down in an outage (the incident speaks for it)."""
    if offline_since is None or flapping or in_incident:
        return False
    return now - offline_since >= settings.offline_alert
