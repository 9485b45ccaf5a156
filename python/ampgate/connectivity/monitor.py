"""`ConnectivityMonitor`: the periodic side of connectivity. Every SWEEP_INTERVAL it moves connected chargers
between online and stale by the time since their last message (the router stamps every message; the hot path
does nothing more), ends flapping once a charger has been stable long enough, opens and ends outage incidents
from the recent drops, over the fleet and per site (`incidents.SpikeWatch`), raises an alert for a charger offline too long (not one that
flaps, nor one that went down in an incident), and every PRUNE_INTERVAL drops history older than the retention.

One pass looks at every connected charger: ~100k attribute reads, a few milliseconds every 5 s at fleet size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import trio

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.connectivity import rules
from ampgate.connectivity.history import Change, HistoryRepository
from ampgate.connectivity.incidents import IncidentRepository, SpikeWatch
from ampgate.connectivity.presence import Presence, PresenceRegistry
from ampgate.events import ChargerAlert, ChargerFlapping, ChargerStale, IncidentEnded, IncidentOpened

log = logging.getLogger(__name__)

# How often the sweep runs: every 5 s, or a quarter of the stale or flap-clearing time when that is shorter (so
# a state shows at most a quarter late), never more often than MIN_SWEEP.
SWEEP_INTERVAL = 5.0
MIN_SWEEP = 0.25
PRUNE_INTERVAL = 3600.0
# Connectivity history kept by default (`ampgate serve --history-days`).
DEFAULT_HISTORY_DAYS = 30


class DropCount(Protocol):
    """The link tracker's count of recent drops, over the fleet and by site."""

    def recent_drops(self, now: float, /) -> int: ...
    def recent_drops_by_site(self, now: float, /) -> dict[str, int]: ...


class SiteSizes(Protocol):
    """Where chargers are placed (`ampgate.connectivity.sites.SiteIndex`)."""

    def site_of(self, charger_id: str, /) -> str | None: ...
    def sizes(self) -> dict[str, int]: ...


class ConnectivityMonitor:
    def __init__(
        self,
        presence: PresenceRegistry,
        history: HistoryRepository,
        bus: Publisher,
        clock: Clock,
        settings: rules.Settings,
        *,
        history_days: float = DEFAULT_HISTORY_DAYS,
        drops: DropCount | None = None,
        fleet: Callable[[], int] | None = None,
        incidents: IncidentRepository | None = None,
        sites: SiteSizes | None = None,
    ) -> None:
        self._presence = presence
        self._history = history
        self._bus = bus
        self._clock = clock
        self.settings = settings
        self._drops = drops
        self._fleet = fleet
        self._incidents = incidents
        self.spikes = SpikeWatch(settings)
        # One per site that had drops: a site's outage is an incident of its own (scope "site:<id>").
        self.site_spikes: dict[str, SpikeWatch] = {}
        self._sites = sites
        self._retention = timedelta(days=history_days)
        self.interval = max(
            MIN_SWEEP,
            min(
                SWEEP_INTERVAL, settings.stale_after / 4, settings.flap_clear / 4, settings.offline_alert / 4
            ),
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_prune = 0.0
        while True:
            self.sweep()
            await self.watch_outages()
            if self._clock.monotonic() >= next_prune:
                next_prune = self._clock.monotonic() + PRUNE_INTERVAL
                removed = await self._history.prune(self._clock.now() - self._retention)
                if removed:
                    log.info("pruned %d connectivity history rows older than %s", removed, self._retention)
            await trio.sleep(self.interval)

    def sweep(self) -> None:
        """One pass over the connected chargers (see the module docstring)."""
        wall = self._clock.wall()
        now = datetime.fromtimestamp(wall, UTC)
        s = self.settings
        for p in self._presence.live():
            if p.connected_at is None:
                continue
            stale = rules.is_stale(p.last_seen_at, p.connected_at, wall, s)
            if stale and p.state == rules.ONLINE:
                self._change(p, rules.STALE, rules.HEARTBEAT_TIMEOUT, now, wall)
            elif not stale and p.state == rules.STALE:
                self._change(p, rules.ONLINE, rules.MESSAGE, now, wall)
            if p.flapping and rules.flap_cleared(p.connected_at, p.last_drop_at, wall, s):
                p.flapping, p.flapping_since, p.drops = False, None, None
                self._bus.publish(ChargerFlapping(at=now, charger_id=p.charger_id, flapping=False, drops=0))

    async def watch_outages(self) -> None:
        """Open or end outage incidents from the drops of the last spike window, over the fleet and per site,
        then raise the offline alerts that are due."""
        wall = self._clock.wall()
        if self._drops is not None and self._fleet is not None and self._incidents is not None:
            await self._watch(self.spikes, "fleet", self._drops.recent_drops(wall), self._fleet(), wall)
            if self._sites is not None:
                by_site = self._drops.recent_drops_by_site(wall)
                sizes = self._sites.sizes()
                for site in sorted(set(by_site) | {s for s, w in self.site_spikes.items() if w.open}):
                    watch = self.site_spikes.get(site)
                    if watch is None:
                        watch = self.site_spikes[site] = SpikeWatch(self.settings)
                    await self._watch(watch, f"site:{site}", by_site.get(site, 0), sizes.get(site, 0), wall)
        self._offline_alerts(wall)

    async def _watch(self, watch: SpikeWatch, scope: str, drops: int, size: int, wall: float) -> None:
        """One sweep of one outage rule: `drops` of `size` chargers in `scope` within the spike window."""
        assert self._incidents is not None
        what = watch.observe(wall, drops, size)
        now = datetime.fromtimestamp(wall, UTC)
        incident = watch.open
        if what == "opened" and incident is not None:
            incident.id = await self._incidents.open(
                "disconnect_spike",
                scope,
                "critical",
                datetime.fromtimestamp(incident.started_at, UTC),
                drops,
                size,
            )
            self._bus.publish(
                IncidentOpened(
                    at=now,
                    incident_id=incident.id,
                    kind="disconnect_spike",
                    scope=scope,
                    severity="critical",
                    disconnects=drops,
                    fleet=size,
                )
            )
            log.warning(
                "outage (%s): %d of %d chargers disconnected within %gs",
                scope,
                drops,
                size,
                self.settings.spike_window,
            )
        elif what == "ended" and incident is not None:
            watch.open = None
            if incident.id is not None:
                await self._incidents.end(incident.id, now, incident.disconnects)
                self._bus.publish(
                    IncidentEnded(
                        at=now,
                        incident_id=incident.id,
                        kind="disconnect_spike",
                        scope=scope,
                        started_at=datetime.fromtimestamp(incident.started_at, UTC),
                        disconnects=incident.disconnects,
                    )
                )

    def _covered(self, charger_id: str, since: float) -> bool:
        """Whether a drop at `since` fell inside an outage of the fleet or of the charger's site."""
        if self.spikes.covers(since):
            return True
        site = None if self._sites is None else self._sites.site_of(charger_id)
        watch = None if site is None else self.site_spikes.get(site)
        return watch is not None and watch.covers(since)

    def _offline_alerts(self, wall: float) -> None:
        s = self.settings
        for p in self._presence.values():
            if p.online or p.alerted or p.state_since is None:
                continue
            since = p.last_drop_at if p.last_drop_at is not None else p.state_since
            if rules.offline_alert_due(since, p.flapping, self._covered(p.charger_id, since), wall, s):
                p.alerted = True
                self._bus.publish(
                    ChargerAlert(
                        at=datetime.fromtimestamp(wall, UTC),
                        charger_id=p.charger_id,
                        kind="offline",
                        severity="warning",
                        raised=True,
                        since=datetime.fromtimestamp(since, UTC),
                    )
                )

    def _change(self, p: Presence, state: str, reason: str, now: datetime, wall: float) -> None:
        self._presence.set_state(p, state, wall)
        self._history.record(
            Change(
                charger_id=p.charger_id,
                at=now,
                state=state,
                reason=reason,
                conn_id=p.conn_id,
                protocol=p.protocol,
            )
        )
        last = None if p.last_seen_at is None else datetime.fromtimestamp(p.last_seen_at, UTC)
        self._bus.publish(
            ChargerStale(
                at=now,
                charger_id=p.charger_id,
                stale=state == rules.STALE,
                reason=reason,
                last_message_at=last,
            )
        )
