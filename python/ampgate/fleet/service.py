"""`Fleet`: chargers' tags as admins set them, and the selection of chargers a firmware campaign freezes as its
targets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ampgate.clock import Clock
from ampgate.errors import NotFoundError, ValidationError
from ampgate.events import ChargerTagsChanged, Event
from ampgate.fleet.repository import FleetRepository
from ampgate.fleet.tags import ChargerSelection, ChargerSelector, validate_selector, validate_tags


class Publish(Protocol):
    """The event bus (`ampgate.bus.EventBus`)."""

    def publish(self, event: Event, /) -> None: ...


class ChargerLookup(Protocol):
    """Registered chargers (`ampgate.store.ChargerRepository`)."""

    def exists(self, cp_id: str, /) -> bool: ...


class Fleet:
    """Tags per charger and selections by selector."""

    def __init__(self, rows: FleetRepository, chargers: ChargerLookup, bus: Publish, clock: Clock) -> None:
        self._rows = rows
        self._chargers = chargers
        self._bus = bus
        self._clock = clock

    def _known(self, charger_id: str) -> None:
        if not self._chargers.exists(charger_id):
            raise NotFoundError(f"charger '{charger_id}' is not registered", field="id")

    def tags(self, charger_id: str) -> tuple[str, ...]:
        """The charger's tags, sorted. Raises NotFoundError (field id) for an unknown charger."""
        self._known(charger_id)
        return self._rows.tags(charger_id)

    async def set_tags(self, charger_id: str, tags: Iterable[object]) -> tuple[str, ...]:
        """Replace the charger's tags with `tags` (duplicates dropped); returns them sorted. Raises
        ValidationError naming `tags[i]` or `tags` (more than 32), NotFoundError (field id). Publishes
        `charger.tags_changed` when the set changed."""
        checked = validate_tags(tags)
        self._known(charger_id)
        before, after = await self._rows.put_tags(charger_id, checked)
        if before != after:
            self._bus.publish(ChargerTagsChanged(at=self._clock.now(), charger_id=charger_id, tags=after))
        return after

    def select_chargers(
        self, selector: ChargerSelector, limit: int, after: str | None = None
    ) -> list[ChargerSelection]:
        """Up to `limit` chargers matching `selector`, in id order, with an id above `after` (keyset pages:
        pass the last id of the previous page; a page shorter than `limit` is the last). Each page is an index
        range (`repository`), so paging through 100k chargers costs one pass. Raises ValidationError naming
        `limit` (< 1), `tags[i]`, `charger_ids[i]`."""
        if limit < 1:
            raise ValidationError("limit must be at least 1", field="limit")
        return self._rows.select(validate_selector(selector), limit, after)
