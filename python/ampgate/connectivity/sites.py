"""`SiteIndex`: which site each charger is placed at, in memory, for connectivity's per-site figures (the summary's
counts by site, and outages scoped to a site).

The placements belong to the load-management part (`ampgate.load`); this index reads them all at start and then
follows `charger.placed` / `charger.unplaced` / `site.deleted` on the bus. Events are hints: after a loss, and every
RELOAD_INTERVAL anyway, it reads the placements again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import trio

from ampgate.bus import EventBus, EventsLost
from ampgate.events import ChargerPlaced, ChargerUnplaced, SiteDeleted

log = logging.getLogger(__name__)

RELOAD_INTERVAL = 600.0
_TYPES = ["charger.placed", "charger.unplaced", "site.deleted"]

Placements = Callable[[], list[tuple[str, str]]]
"""Every placement as (charger id, site id)."""


class SiteIndex:
    def __init__(self, placements: Placements, bus: EventBus) -> None:
        self._placements = placements
        self._bus = bus
        self._site_of: dict[str, str] = {}
        self._sizes: Counter[str] = Counter()

    def reload(self) -> None:
        """Read every placement again."""
        self._site_of = dict(self._placements())
        self._sizes = Counter(self._site_of.values())

    def site_of(self, charger_id: str) -> str | None:
        """The site `charger_id` is placed at, or None."""
        return self._site_of.get(charger_id)

    def sizes(self) -> dict[str, int]:
        """Chargers placed per site (sites without any are absent)."""
        return dict(self._sizes)

    def apply(self, event: object) -> None:
        """Follow one placement change."""
        if isinstance(event, ChargerPlaced) and event.charger_id is not None:
            self._move(event.charger_id, event.site_id)
        elif isinstance(event, ChargerUnplaced) and event.charger_id is not None:
            self._move(event.charger_id, None)
        elif isinstance(event, SiteDeleted):
            # A site can only be deleted empty; drop anything left of it anyway.
            for cid in [c for c, s in self._site_of.items() if s == event.site_id]:
                self._move(cid, None)

    def _move(self, charger_id: str, site_id: str | None) -> None:
        old = self._site_of.pop(charger_id, None)
        if old is not None:
            self._sizes[old] -= 1
            if not self._sizes[old]:
                del self._sizes[old]
        if site_id is not None:
            self._site_of[charger_id] = site_id
            self._sizes[site_id] += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read the placements, then follow their changes (start it in the node's nursery)."""
        with self._bus.subscribe(_TYPES) as sub:
            self.reload()
            task_status.started()
            next_reload = trio.current_time() + RELOAD_INTERVAL
            while True:
                with trio.move_on_at(next_reload):
                    event = await sub.receive()
                    if isinstance(event, EventsLost):
                        log.info("site index lost %d events; reloading the placements", event.count)
                        self.reload()
                    else:
                        self.apply(event)
                    continue
                self.reload()
                next_reload = trio.current_time() + RELOAD_INTERVAL
