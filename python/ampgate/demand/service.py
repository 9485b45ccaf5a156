"""`DemandResponse`: demand-response events as operators (the API) and the grid (OpenADR) set them, and the node
limits they make, tick by tick, for the load ticker.

Events live in their table; the ones not yet over are also held here (reloaded after every change and each
minute), so the ticker's per-tick question costs no query. An event's baseline — each lowered node's draw when it
began — is measured once, on the first tick inside its window, and stored, so a restart mid-event keeps the same
target. What an event achieved (target against measured draw, per tick) is written as points.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec

from ampgate.clock import Clock
from ampgate.demand import model
from ampgate.demand.model import EventRow, EventSpec
from ampgate.demand.repository import DemandRepository
from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.events import (
    DemandResponseCreated,
    DemandResponseEnded,
    DemandResponseStarted,
    DemandResponseUpdated,
    Event,
)

# How often the held events are reloaded from the table even without a change here.
RELOAD_S = 60.0
# How long what each event achieved (a point per tick and node) is kept.
POINTS_DAYS = 90


class DemandResponse:
    """Create, cancel and read events; `limits_kw` and `record` are the ticker's per-tick calls."""

    def __init__(
        self,
        rows: DemandRepository,
        node_exists: Callable[[str], bool],
        publish: Callable[[Event], None],
        clock: Clock,
    ) -> None:
        self._rows = rows
        self._node_exists = node_exists
        self._publish = publish
        self._clock = clock
        self._live: list[EventRow] = []
        self._loaded_at = -RELOAD_S
        self._started: set[int] = set()
        # What each running event asks of each node now (the last tick's targets), for `record`.
        self._targets: dict[int, dict[str, float]] = {}

    # -- operators and the grid ---------------------------------------------------------------------------------

    async def create(self, spec: EventSpec) -> EventRow:
        """Schedule an event. Raises ValidationError naming the field (`node_id` for a node that does not
        exist)."""
        model.validate(spec, self._clock.now())
        if spec.node_id is not None and not self._node_exists(spec.node_id):
            raise ValidationError(f"no site or capacity node {spec.node_id!r}", field="node_id")
        row = await self._rows.insert(spec)
        self._reload()
        self._publish(
            DemandResponseCreated(
                at=self._clock.now(),
                event_id=row.id,
                node_id=row.node_id,
                limit_kw=row.limit_kw,
                reduce_kw=row.reduce_kw,
                reduce_pct=row.reduce_pct,
                starts_at=row.starts_at,
                ends_at=row.ends_at,
                source=row.source,
            )
        )
        return row

    async def cancel(self, event_id: int) -> EventRow:
        """Cancel a scheduled or active event; cancelling a cancelled one answers it as it is. Raises
        NotFoundError (`event_id`), ConflictError `event_ended` (its window is over)."""
        row = self._rows.get(event_id)
        if row is None:
            raise NotFoundError(f"demand-response event {event_id} does not exist", field="event_id")
        state = row.state(self._clock.now())
        if state == "cancelled":
            return row
        if state == "ended":
            raise ConflictError(f"demand-response event {event_id} has ended", code="event_ended")
        row = await self._rows.cancel(event_id)
        self._reload()
        self._started.discard(event_id)
        self._targets.pop(event_id, None)
        self._publish(DemandResponseEnded(at=self._clock.now(), event_id=event_id, cancelled=True))
        return row

    def now(self) -> datetime:
        """The node's time (an event's state depends on it)."""
        return self._clock.now()

    def get(self, event_id: int) -> EventRow | None:
        return self._rows.get(event_id)

    def page(self, limit: int, before: int | None = None, source: str | None = None) -> list[EventRow]:
        return self._rows.page(limit, before, source)

    def points(
        self, event_id: int, limit: int, after: str | None = None
    ) -> list[tuple[datetime, str, float, float | None]]:
        return self._rows.points(event_id, limit, after)

    def targets(self, event_id: int) -> dict[str, float]:
        """What a running event asks of each node now (kW); empty when it is not running."""
        return dict(self._targets.get(event_id, {}))

    async def apply_external(
        self, *, source: str, ref: str, node: str, limit_kw: float, start: datetime, end: datetime
    ) -> None:
        """Create or replace the limit (source, ref) on `node` (an OpenADR capacity-limit interval). Raises
        ValidationError naming the field, as `create`."""
        spec = EventSpec(
            node_id=node, limit_kw=limit_kw, starts_at=start, ends_at=end, source=source, ref=ref
        )
        model.validate(spec, self._clock.now())
        if not self._node_exists(node):
            raise ValidationError(f"no site or capacity node {node!r}", field="node_id")
        before, row = await self._rows.replace_external(spec)
        self._reload()
        if before is None:
            self._publish(
                DemandResponseCreated(
                    at=self._clock.now(),
                    event_id=row.id,
                    node_id=row.node_id,
                    limit_kw=row.limit_kw,
                    reduce_kw=None,
                    reduce_pct=None,
                    starts_at=row.starts_at,
                    ends_at=row.ends_at,
                    source=source,
                )
            )
        elif (before.node_id, before.limit_kw, before.starts_at, before.ends_at, before.cancelled_at) != (
            row.node_id,
            row.limit_kw,
            row.starts_at,
            row.ends_at,
            row.cancelled_at,
        ):
            self._publish(
                DemandResponseUpdated(
                    at=self._clock.now(),
                    event_id=row.id,
                    node_id=row.node_id,
                    limit_kw=row.limit_kw,
                    starts_at=row.starts_at,
                    ends_at=row.ends_at,
                )
            )

    async def cancel_external(self, *, source: str, ref: str) -> None:
        """Cancel the live event (source, ref), if there is one."""
        now = self._clock.now()
        for row in list(self._live):
            if row.source == source and row.ref == ref and row.state(now) in ("scheduled", "active"):
                await self.cancel(row.id)

    def external_refs(self, source: str) -> set[str]:
        """The refs of `source`'s events that are not over (scheduled or active)."""
        self._maybe_reload()
        return {r.ref for r in self._live if r.source == source and r.ref is not None}

    # -- the ticker ---------------------------------------------------------------------------------------------

    def _reload(self) -> None:
        self._live = self._rows.live(self._clock.now())
        self._loaded_at = self._clock.monotonic()

    def _maybe_reload(self) -> None:
        if self._clock.monotonic() - self._loaded_at >= RELOAD_S:
            self._reload()

    async def limits_kw(
        self, draw_kw: Callable[[str], float | None], sites: Callable[[], list[str]]
    ) -> dict[str, float]:
        """Node → the lowest limit (kW) the running events put on it now. An event entering its window has its
        baseline measured (`draw_kw` of its node, or of every site in `sites()` for a network-wide one) and
        stored; an event leaving it is announced."""
        self._maybe_reload()
        now = self._clock.now()
        per_event = []
        active: set[int] = set()
        for row in self._live:
            state = row.state(now)
            if state == "ended" and row.id in self._started:
                self._started.discard(row.id)
                self._targets.pop(row.id, None)
                self._publish(DemandResponseEnded(at=now, event_id=row.id, cancelled=False))
                continue
            if state != "active":
                continue
            active.add(row.id)
            baseline = row.baseline_kw
            if not baseline:
                nodes = [row.node_id] if row.node_id is not None else sites()
                baseline = {n: max(0.0, draw_kw(n) or 0.0) for n in nodes}
                await self._rows.set_baseline(row.id, baseline)
                row = self._replace(row, baseline)
            targets = model.targets_kw(row, baseline)
            self._targets[row.id] = targets
            if row.id not in self._started:
                self._started.add(row.id)
                self._publish(
                    DemandResponseStarted(at=now, event_id=row.id, baseline_kw=baseline, target_kw=targets)
                )
            per_event.append(targets)
        # Events that stopped running without this loop seeing them end (the row left `_live` at a reload, a
        # window moved later by its source) are announced and forgotten here, so none keeps its targets.
        for event_id in self._started - active:
            self._started.discard(event_id)
            self._targets.pop(event_id, None)
            stored = self._rows.get(event_id)
            if stored is None or stored.cancelled_at is None:
                self._publish(DemandResponseEnded(at=now, event_id=event_id, cancelled=False))
        # Events that ended since the last reload are dropped from what is held.
        if any(r.state(now) == "ended" for r in self._live):
            self._live = [r for r in self._live if r.state(now) != "ended"]
        return model.combine(per_event)

    def _replace(self, row: EventRow, baseline: dict[str, float]) -> EventRow:
        new = msgspec.structs.replace(row, baseline_kw=baseline)
        self._live = [new if r.id == row.id else r for r in self._live]
        return new

    async def prune(self) -> None:
        """Drop achievement points older than POINTS_DAYS."""
        await self._rows.prune(self._clock.now() - timedelta(days=POINTS_DAYS))

    def record(self, measured_kw: Callable[[str], float | None]) -> None:
        """Write what each running event achieved this tick: per lowered node, its target and measured draw."""
        at = self._clock.iso_now()
        rows = [
            (event_id, at, node, target, measured_kw(node))
            for event_id, targets in self._targets.items()
            for node, target in targets.items()
        ]
        self._rows.add_points(rows)
