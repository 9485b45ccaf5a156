"""Demand-response events as values, and the rules they obey, without I/O (unit-tested on their own).

An event lowers what one capacity node (a site, or a node inside one) may draw for a time window, or the whole
network's draw when `node_id` is None. It says exactly one of:

- `limit_kw`: the node may draw at most this much;
- `reduce_kw`: the node's draw at the moment the event begins (its *baseline*, measured) minus this much;
- `reduce_pct`: the baseline minus this percentage of it.

A reduction leaves a node that drew nothing when the event began alone (there is nothing to take; pinning it at
0 kW for the window would stop every EV arriving there). A network-wide event is shared among the sites in
proportion to their baselines: a network-wide `reduce_kw` of R
over sites drawing b_s (sum B) gives site s the limit b_s - R × b_s / B, the same fraction off every site; a
network-wide `limit_kw` of L gives site s L × b_s / B (equal shares when nothing is drawn). Shares are by draw
rather than by capacity because the sites that draw are the ones that can give something back.

Several events on one node at once: the lowest limit wins. The limits are what the allocator is told (each
node's total W limit, lowered); the achievement of an event is the measured draw against that target, per tick.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import msgspec

from ampgate.errors import ValidationError

SOURCES = ("api", "openadr")
STATES = ("scheduled", "active", "ended", "cancelled")
# An event longer than a week is not demand response but a change of the site's capacity: PATCH the site.
MAX_DURATION = timedelta(days=7)
# How far ahead an event may be scheduled.
MAX_AHEAD = timedelta(days=366)


class EventSpec(msgspec.Struct, frozen=True, kw_only=True):
    """An event to create: `node_id` None is network-wide; exactly one of the three amounts."""

    node_id: str | None
    limit_kw: float | None = None
    reduce_kw: float | None = None
    reduce_pct: float | None = None
    starts_at: datetime
    ends_at: datetime
    source: str = "api"
    ref: str | None = None


class EventRow(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored. `baseline_kw` maps each node the event lowers (the node, or every site for a
    network-wide event) to its draw when the event began (empty until it does)."""

    id: int
    node_id: str | None
    limit_kw: float | None
    reduce_kw: float | None
    reduce_pct: float | None
    starts_at: datetime
    ends_at: datetime
    source: str
    ref: str | None
    created_at: datetime
    cancelled_at: datetime | None
    baseline_kw: dict[str, float]

    def state(self, now: datetime) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if now < self.starts_at:
            return "scheduled"
        if now < self.ends_at:
            return "active"
        return "ended"


def _amount(value: float | None, field: str, *, low: float, high: float, low_open: bool) -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValidationError(f"{field} must be a finite number", field=field)
    if value < low or (low_open and value == low) or value > high:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise ValidationError(f"{field} must be {bound} and <= {high:g}, not {value:g}", field=field)


def validate(spec: EventSpec, now: datetime) -> EventSpec:
    """`spec` if it is a valid event at `now`. Raises ValidationError naming the field: not exactly one amount
    (`limit_kw`), an amount out of range, a naive time, a window that ends before it starts or already ended
    (`ends_at`), one longer than MAX_DURATION or starting more than MAX_AHEAD from now (`starts_at`), an
    unknown source."""
    given = [f for f in ("limit_kw", "reduce_kw", "reduce_pct") if getattr(spec, f) is not None]
    if len(given) != 1:
        raise ValidationError(
            "give exactly one of limit_kw, reduce_kw, reduce_pct"
            + (f" (got {', '.join(given)})" if given else ""),
            field=given[1] if len(given) > 1 else "limit_kw",
        )
    _amount(spec.limit_kw, "limit_kw", low=0.0, high=1e7, low_open=False)
    _amount(spec.reduce_kw, "reduce_kw", low=0.0, high=1e7, low_open=True)
    _amount(spec.reduce_pct, "reduce_pct", low=0.0, high=100.0, low_open=True)
    for field in ("starts_at", "ends_at"):
        at = getattr(spec, field)
        if at.tzinfo is None:
            raise ValidationError(f"{field} needs a UTC offset", field=field)
    if spec.ends_at <= spec.starts_at:
        raise ValidationError("ends_at must be after starts_at", field="ends_at")
    if spec.ends_at <= now:
        raise ValidationError("ends_at is in the past: the event would never apply", field="ends_at")
    if spec.ends_at - spec.starts_at > MAX_DURATION:
        raise ValidationError(
            f"an event lasts at most {MAX_DURATION.days} days; change the site's limits instead",
            field="ends_at",
        )
    if spec.starts_at - now > MAX_AHEAD:
        raise ValidationError("starts_at is more than a year ahead", field="starts_at")
    if spec.source not in SOURCES:
        raise ValidationError(f"source must be one of {', '.join(SOURCES)}", field="source")
    return spec


def targets_kw(event: EventRow, baseline_kw: Mapping[str, float]) -> dict[str, float]:
    """The limit (kW) `event` puts on each node it lowers, given the baselines (node → kW at the start; for a
    network-wide event, every site's). A node without a baseline (nothing measured) counts as drawing 0."""
    reduction = event.limit_kw is None
    if event.node_id is not None:
        base = baseline_kw.get(event.node_id, 0.0)
        # A reduction of a node that drew nothing when it began has nothing to take: it leaves the node alone
        # rather than pin it at 0 kW for the whole window.
        return {} if reduction and base <= 0 else {event.node_id: _one(event, base)}
    total = sum(baseline_kw.values())
    out: dict[str, float] = {}
    for site, base in baseline_kw.items():
        if reduction and base <= 0:
            continue
        if event.limit_kw is not None:
            share = base / total if total > 0 else 1.0 / len(baseline_kw)
            out[site] = event.limit_kw * share
        elif event.reduce_kw is not None:
            out[site] = max(0.0, base - event.reduce_kw * (base / total if total > 0 else 0.0))
        else:
            out[site] = _one(event, base)
    return out


def _one(event: EventRow, base: float) -> float:
    if event.limit_kw is not None:
        return event.limit_kw
    if event.reduce_kw is not None:
        return max(0.0, base - event.reduce_kw)
    assert event.reduce_pct is not None
    return max(0.0, base * (1.0 - event.reduce_pct / 100.0))


def combine(per_event: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Node → the lowest limit (kW) any of the events puts on it."""
    out: dict[str, float] = {}
    for targets in per_event:
        for node, kw in targets.items():
            out[node] = min(kw, out.get(node, math.inf))
    return out
