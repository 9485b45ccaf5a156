"""`ConnectivityView`: what the API reads about connectivity: one charger's state with its history and uptime,
the fleet's summary, and whether a charger matches the charger list's connectivity filters. Reads only: the
presence registry (live), the history table, the registered chargers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from ampgate.clock import Clock
from ampgate.connectivity import rules
from ampgate.connectivity.history import HistoryRepository, HistoryRow
from ampgate.connectivity.links import MinuteCounts
from ampgate.connectivity.presence import Presence, PresenceRegistry

# Days of uptime one read may ask for.
MAX_UPTIME_DAYS = 90


class ChargerCount(Protocol):
    def count(self) -> int: ...


class SiteSizes(Protocol):
    """Where chargers are placed (`ampgate.connectivity.sites.SiteIndex`)."""

    def site_of(self, charger_id: str, /) -> str | None: ...
    def sizes(self) -> dict[str, int]: ...


class HandshakeFigures(Protocol):
    """The gateway's upgrades and refusals per minute (`ampgate.gateway.admission.HandshakeCounts`)."""

    def last_minute(self, now: float, /) -> dict[str, int]: ...
    def this_minute(self, now: float, /) -> dict[str, int]: ...


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _refusals(counts: dict[str, int]) -> dict[str, int]:
    """Refused upgrades by reason: admission control's 503s (`busy`: over the rate, the handshake cap or the
    rate of new unknown ids, the last also as `unknown_ids_busy`) and the handshake table's 401 / 404, and
    malformed or protocol-less upgrades (400), and charger ids refused 429 after too many failed
    authentications."""
    return {
        "busy": counts["refused_rate"] + counts["refused_handshakes"] + counts["refused_unknown_ids"],
        "unknown_ids_busy": counts["refused_unknown_ids"],
        "bad_credentials": counts["refused_auth"],
        "unknown_charger": counts["refused_unknown"],
        "bad_request": counts["refused_other"],
        "auth_throttled": counts["refused_throttled"],
    }


class ConnectivityView:
    def __init__(
        self,
        presence: PresenceRegistry,
        history: HistoryRepository,
        chargers: ChargerCount,
        rates: MinuteCounts,
        handshakes: HandshakeFigures,
        settings: rules.Settings,
        clock: Clock,
        *,
        boot_spread_pending: Callable[[], int] | None = None,
        sites: SiteSizes | None = None,
    ) -> None:
        self._presence = presence
        self._sites = sites
        self._spread_pending = boot_spread_pending
        self._history = history
        self._chargers = chargers
        self._rates = rates
        self._handshakes = handshakes
        self.settings = settings
        self._clock = clock

    def state_of(self, charger_id: str) -> tuple[str, datetime | None]:
        """(state, since): a charger not seen since the node started is offline since its last history row."""
        p = self._presence.get(charger_id)
        if p is not None and p.state_since is not None:
            return p.state, _dt(p.state_since)
        rows = self._history.page(charger_id, 1, None, None)
        return rules.OFFLINE, (rows[0].at if rows and rows[0].state == rules.OFFLINE else None)

    def charger(self, charger_id: str, days: int) -> dict[str, Any]:
        """One charger's connectivity: state and since, its link, today's connects, flapping, the last
        disconnect, and its uptime for the last `days` UTC days (today so far included)."""
        p = self._presence.get(charger_id)
        state, since = self.state_of(charger_id)
        online = p is not None and p.online
        return {
            "charger_id": charger_id,
            "state": state,
            "since": since,
            "online": online,
            "protocol": p.protocol if p is not None and online else None,
            "remote_address": p.peer if p is not None and online else None,
            "connected_at": _dt(p.connected_at) if p is not None and online else None,
            "last_message_at": _dt(p.last_seen_at) if p is not None else None,
            "last_heartbeat_at": _dt(p.last_heartbeat_at) if p is not None else None,
            "connects_today": self._connects_today(p),
            "flapping": bool(p is not None and p.flapping),
            "flapping_since": _dt(p.flapping_since) if p is not None else None,
            "last_disconnect": self._last_disconnect(p),
            "ping_rtt_ms": None if p is None or p.ping_rtt is None else round(p.ping_rtt * 1000, 3),
            "last_pong_at": _dt(p.last_pong_at) if p is not None else None,
            "uptime": [{"date": d, "ratio": r} for d, r in self.uptime(charger_id, days)],
        }

    def _connects_today(self, p: Presence | None) -> int:
        if p is None or p.connects_day != int(self._clock.wall() // 86_400):
            return 0
        return p.connects_today

    def _last_disconnect(self, p: Presence | None) -> dict[str, Any] | None:
        if p is None or p.last_drop_at is None:
            return None
        return {"at": _dt(p.last_drop_at), "reason": p.last_drop_reason, "code": p.last_drop_code}

    def uptime(self, charger_id: str, days: int) -> list[tuple[date, float]]:
        now = self._clock.now()
        last = now.date()
        first = last - timedelta(days=days - 1)
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        before, rows = self._history.window(charger_id, start)
        return rules.uptime_by_day(_intervals(before, rows, start), first, last, now)

    def history(
        self, charger_id: str, limit: int, before: int | None, since: datetime | None
    ) -> list[HistoryRow]:
        return self._history.page(charger_id, limit, before, since)

    def summary(self) -> dict[str, Any]:
        """Counts by state, by protocol and by site (chargers placed at a site: `ampgate.load`), flapping, chargers connected but told Pending to spread a boot storm
        (`boot_spread_pending`: connected, not yet Accepted), and connects / disconnects per minute."""
        now = self._clock.wall()
        by_state: Counter[str] = Counter()
        by_protocol: dict[str, Counter[str]] = {}
        by_site: dict[str, Counter[str]] = {}
        site_of = self._sites.site_of if self._sites is not None else lambda _: None
        flapping = 0
        for p in self._presence.values():
            flapping += p.flapping
            site = site_of(p.charger_id)
            if site is not None:
                counts = by_site.setdefault(site, Counter())
                counts["flapping"] += p.flapping
                if p.online:
                    counts[p.state] += 1
            if p.online:
                by_state[p.state] += 1
                by_protocol.setdefault(p.protocol or "unknown", Counter())[p.state] += 1
        sizes = self._sites.sizes() if self._sites is not None else {}
        registered = self._chargers.count()
        connected = by_state[rules.ONLINE] + by_state[rules.STALE]
        last_connects, last_disconnects = self._rates.recent(now, 1)
        hour_connects, hour_disconnects = self._rates.recent(now, 60)
        cur_connects, cur_disconnects = self._rates.current(now)
        last_hs, cur_hs = self._handshakes.last_minute(now), self._handshakes.this_minute(now)
        return {
            "at": _dt(now),
            "registered": registered,
            "online": by_state[rules.ONLINE],
            "stale": by_state[rules.STALE],
            "offline": max(0, registered - connected),
            "flapping": flapping,
            "boot_spread_pending": self._spread_pending() if self._spread_pending is not None else 0,
            "by_protocol": {
                proto: {"online": c[rules.ONLINE], "stale": c[rules.STALE]}
                for proto, c in sorted(by_protocol.items())
            },
            "by_site": {
                site: {
                    "placed": placed,
                    "online": (c := by_site.get(site, Counter()))[rules.ONLINE],
                    "stale": c[rules.STALE],
                    "offline": max(0, placed - c[rules.ONLINE] - c[rules.STALE]),
                    "flapping": c["flapping"],
                }
                for site, placed in sorted(sizes.items())
            },
            "connects_last_minute": last_connects,
            "disconnects_last_minute": last_disconnects,
            "connects_this_minute": cur_connects,
            "disconnects_this_minute": cur_disconnects,
            "connects_last_hour": hour_connects,
            "disconnects_last_hour": hour_disconnects,
            "handshakes_last_minute": last_hs["upgrades"],
            "handshakes_this_minute": cur_hs["upgrades"],
            "rejections_last_minute": _refusals(last_hs),
            "rejections_this_minute": _refusals(cur_hs),
        }

    def matches(
        self,
        charger_id: str,
        *,
        online: bool | None = None,
        state: str | None = None,
        offline_since: datetime | None = None,
        flapping: bool | None = None,
    ) -> bool:
        """Whether a charger passes the charger list's connectivity filters (None: no filter). `offline_since`:
        offline and since at or before that time (a charger offline since before the node started counts)."""
        p = self._presence.get(charger_id)
        is_online = p is not None and p.online
        if online is not None and is_online != online:
            return False
        if flapping is not None and bool(p is not None and p.flapping) != flapping:
            return False
        if state is not None or offline_since is not None:
            current, since = self.state_of(charger_id)
            if state is not None and current != state:
                return False
            if offline_since is not None and (
                current != rules.OFFLINE or (since is not None and since > offline_since)
            ):
                return False
        return True


def _intervals(
    before: HistoryRow | None, rows: list[HistoryRow], start: datetime
) -> list[tuple[datetime, datetime | None]]:
    """Connected intervals from state changes: online or stale is connected, offline is not."""
    out: list[tuple[datetime, datetime | None]] = []
    up_since = start if before is not None and before.state != rules.OFFLINE else None
    for r in rows:
        connected = r.state != rules.OFFLINE
        if connected and up_since is None:
            up_since = r.at
        elif not connected and up_since is not None:
            out.append((up_since, r.at))
            up_since = None
    if up_since is not None:
        out.append((up_since, None))
    return out
