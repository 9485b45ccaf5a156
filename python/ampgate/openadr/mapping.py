"""From OpenADR events to what the node does with them: pure functions, no I/O.

An event becomes, per interval and per site it addresses, a `Limit` (an `IMPORT_CAPACITY_LIMIT` in kW) or a
`Price`; or, when any part of it cannot be mapped, one `Rejection` naming the reason and the field, and nothing
of it is applied (half an event is worse than none: a limit that holds for some intervals and not others is
not what the grid operator asked for).

The rules, as the docs (docs/openadr.md) state them:
- Sites an event addresses: its `RESOURCE_NAME` targets name sites by id, its `POWER_SERVICE_LOCATION` (or
  `EAN`) targets by EAN (the ElaadNL grid-aware-charging profile), a 3.1-style string target by either; when it
  has such targets and none names a site of ours it is rejected (`unknown_target`). An event with only a `VEN_NAME` target naming us, or with no
  targets (OpenADR's "everyone in the program"), addresses every site.
- Payloads: each interval's payloads must be of a type the event's payload descriptors (or, when it has none,
  its program's) describe; `IMPORT_CAPACITY_LIMIT` must be in `KW`, one number >= 0 per payload; `PRICE` one
  number. Any other type: `unknown_payload_type`.
- Time: an interval's own `intervalPeriod`, else the event's, where the event's period with several intervals
  means back-to-back intervals of its duration. A start of 0001-01-01 means "now" (the spec): the moment the
  VEN first saw the event. No duration, or PT0S, or P9999Y: no end. `randomizeStart` delays the start by a
  random amount up to it (chosen by `delay_of`, so it is stable across polls); the end stays.
- An event named `SAFE_MODE` is its program's safe-mode event: never applied as such; its first interval's
  limit per site is what the VEN applies when the VTN is unreachable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import msgspec

from ampgate.load.model import SiteRow
from ampgate.openadr.wire import (
    FOREVER,
    Event,
    EventPayloadDescriptor,
    IntervalPeriod,
    Program,
    parse_duration,
)

CAPACITY = "IMPORT_CAPACITY_LIMIT"
PRICE = "PRICE"
SAFE_MODE_EVENT = "SAFE_MODE"
# Target types that name sites: by our id (the resource name we registered) or by the grid connection's EAN.
_BY_NAME = {"RESOURCE_NAME"}
_BY_EAN = {"POWER_SERVICE_LOCATION", "EAN"}
_BY_VEN = {"VEN_NAME"}
# The spec's "now" start: any start before this year is taken to mean it.
_NOW_BEFORE_YEAR = 2


class Limit(msgspec.Struct, frozen=True, kw_only=True):
    """One interval's capacity limit on one site."""

    ref: str
    site_id: str
    limit_kw: float
    start: datetime
    end: datetime
    event_id: str
    program_id: str
    interval_id: int
    # When the interval starts before randomization: reports cover [nominal_start, end).
    nominal_start: datetime


class Price(msgspec.Struct, frozen=True, kw_only=True):
    site_id: str
    event_id: str
    program_id: str
    interval_id: int
    start: datetime
    end: datetime
    price: float
    currency: str | None
    units: str | None


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """Why an event is not applied: `reason` a stable code (`malformed`, `unknown_target`,
    `unknown_payload_type`, `bad_units`, `bad_value`, `bad_interval`), `field` the JSON path at fault."""

    reason: str
    field: str
    message: str
    event_id: str | None = None
    program_id: str | None = None


class Mapped(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    program_id: str
    limits: tuple[Limit, ...] = ()
    prices: tuple[Price, ...] = ()
    # The safe-mode event's limit per site (only for a SAFE_MODE event).
    safe_mode_kw: tuple[tuple[str, float], ...] = ()


class _Reject(Exception):
    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.field, self.message = reason, field, message


def decode_event(raw: bytes | msgspec.Raw) -> Event | Rejection:
    """One event from the VTN's JSON, or a `malformed` rejection naming the path msgspec reports."""
    try:
        event = msgspec.json.decode(raw, type=Event)
    except msgspec.ValidationError as e:
        text = str(e)
        field = text.rsplit("at `", 1)[-1].rstrip("`") if "at `" in text else "$"
        # Name the event when its id and program can still be read, so the operator can find it at the VTN.
        try:
            loose = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            loose = None
        ids = [loose.get(k) if isinstance(loose, dict) else None for k in ("id", "programID")]
        return Rejection(
            reason="malformed",
            field=field,
            message=f"the event does not decode: {text}",
            event_id=ids[0] if isinstance(ids[0], str) else None,
            program_id=ids[1] if isinstance(ids[1], str) else None,
        )
    except msgspec.DecodeError as e:
        return Rejection(reason="malformed", field="$", message=f"the event is not JSON: {e}")
    if not event.id:
        return Rejection(
            reason="malformed", field="$.id", message="the event has no id", program_id=event.program_id
        )
    return event


def ref_of(event_id: str, interval_id: int, site_id: str, many_sites: bool) -> str:
    """The limit's ref: `<event id>/<interval id>`, with `/<site id>` added when the event addresses several
    sites (one ref names one limit on one node)."""
    base = f"{event_id}/{interval_id}"
    return f"{base}/{site_id}" if many_sites else base


def map_event(
    event: Event,
    program: Program | None,
    sites: Sequence[SiteRow],
    *,
    ven_name: str,
    first_seen: datetime,
    delay_of: Callable[[str, timedelta], timedelta],
) -> Mapped | Rejection:
    """What `event` asks of our `sites`, or why it cannot be applied. `first_seen` stands for a 0001-01-01
    start; `delay_of(ref, randomize_start)` picks the delay of a randomized interval."""
    assert event.id is not None  # decode_event refuses an event without one
    try:
        return _map(event, program, sites, ven_name, first_seen, delay_of)
    except _Reject as r:
        return Rejection(
            reason=r.reason, field=r.field, message=r.message, event_id=event.id, program_id=event.program_id
        )


def _map(
    event: Event,
    program: Program | None,
    sites: Sequence[SiteRow],
    ven_name: str,
    first_seen: datetime,
    delay_of: Callable[[str, timedelta], timedelta],
) -> Mapped:
    assert event.id is not None
    site_ids = _target_sites(event, sites, ven_name)
    descriptors = _descriptors(event, program)
    safe_mode = (event.event_name or "").upper() == SAFE_MODE_EVENT
    if not event.intervals:
        raise _Reject("bad_interval", "$.intervals", "the event has no intervals")
    limits: list[Limit] = []
    prices: list[Price] = []
    safe: dict[str, float] = {}
    many = len(site_ids) > 1
    for index, interval in enumerate(event.intervals):
        where = f"$.intervals[{index}]"
        start, end, randomize = _window(event, index, first_seen)
        if not interval.payloads:
            raise _Reject("bad_interval", f"{where}.payloads", "an interval without payloads")
        for p_index, payload in enumerate(interval.payloads):
            at = f"{where}.payloads[{p_index}]"
            descriptor = descriptors.get(payload.type)
            if descriptor is None or payload.type not in (CAPACITY, PRICE):
                raise _Reject(
                    "unknown_payload_type",
                    f"{at}.type",
                    f"payload type {payload.type!r} is not one this VEN maps (IMPORT_CAPACITY_LIMIT, PRICE)"
                    + ("" if descriptor is not None else " or has no payload descriptor"),
                )
            value = _one_number(payload.values, f"{at}.values")
            if payload.type == CAPACITY:
                if (descriptor.units or "").upper() != "KW":
                    raise _Reject(
                        "bad_units",
                        "$.payloadDescriptors[].units",
                        f"IMPORT_CAPACITY_LIMIT must be in KW, not {descriptor.units!r}",
                    )
                if value < 0:
                    raise _Reject("bad_value", f"{at}.values", f"a capacity limit of {value} kW")
                for site_id in site_ids:
                    if safe_mode:
                        safe.setdefault(site_id, value)
                        continue
                    ref = ref_of(event.id, interval.id, site_id, many)
                    delayed = start
                    if randomize > timedelta(0):
                        delayed = min(start + delay_of(ref, randomize), end)
                    limits.append(
                        Limit(
                            ref=ref,
                            site_id=site_id,
                            limit_kw=value,
                            start=delayed,
                            end=end,
                            event_id=event.id,
                            program_id=event.program_id,
                            interval_id=interval.id,
                            nominal_start=start,
                        )
                    )
            else:
                for site_id in site_ids:
                    prices.append(
                        Price(
                            site_id=site_id,
                            event_id=event.id,
                            program_id=event.program_id,
                            interval_id=interval.id,
                            start=start,
                            end=end,
                            price=value,
                            currency=descriptor.currency,
                            units=descriptor.units,
                        )
                    )
    return Mapped(
        event_id=event.id,
        program_id=event.program_id,
        limits=tuple(limits),
        prices=tuple(prices),
        safe_mode_kw=tuple(sorted(safe.items())),
    )


def _target_sites(event: Event, sites: Sequence[SiteRow], ven_name: str) -> list[str]:
    if not event.targets:
        return [s.id for s in sites]
    by_id = {s.id for s in sites}
    by_ean: dict[str, list[str]] = {}
    for s in sites:
        if s.ean:
            by_ean.setdefault(s.ean, []).append(s.id)
    named: set[str] = set()
    site_level = False
    for_us = False
    for target in event.targets:
        if isinstance(target, str):
            # A 3.1 target: a site's id or EAN, or our VEN's name; a string naming none of them is taken as
            # addressing something of ours we do not know (so the event is rejected if nothing else matches).
            if target == ven_name:
                for_us = True
                continue
            site_level = True
            if target in by_id:
                named.add(target)
            named.update(by_ean.get(target, ()))
            continue
        kind = target.type.upper()
        values = [str(v) for v in target.values]
        if kind in _BY_NAME:
            site_level = True
            named.update(v for v in values if v in by_id)
        elif kind in _BY_EAN:
            site_level = True
            for v in values:
                named.update(by_ean.get(v, ()))
        elif kind in _BY_VEN:
            for_us = for_us or ven_name in values
    if site_level:
        if not named:
            raise _Reject("unknown_target", "$.targets", "no target names a site of this VEN (by id or EAN)")
        return sorted(named)
    if for_us:
        return [s.id for s in sites]
    raise _Reject(
        "unknown_target",
        "$.targets",
        "the targets name neither a site of this VEN (by id or EAN) nor this VEN",
    )


def _descriptors(event: Event, program: Program | None) -> dict[str, EventPayloadDescriptor]:
    if event.payload_descriptors:
        return {d.payload_type: d for d in event.payload_descriptors}
    out: dict[str, EventPayloadDescriptor] = {}
    for index, raw in enumerate((program.payload_descriptors if program else None) or ()):
        if raw.get("objectType") == "REPORT_PAYLOAD_DESCRIPTOR" or "readingType" in raw:
            continue
        try:
            d = msgspec.convert(raw, type=EventPayloadDescriptor)
        except msgspec.ValidationError as e:
            raise _Reject(
                "malformed", f"program.payloadDescriptors[{index}]", f"the program's descriptor: {e}"
            ) from None
        out[d.payload_type] = d
    return out


def _one_number(values: list[object], field: str) -> float:
    if len(values) != 1:
        raise _Reject("bad_value", field, f"{len(values)} values where one number is expected")
    v = values[0]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _Reject("bad_value", field, f"{v!r} is not a number")
    return float(v)


def _duration(text: str | None, field: str) -> timedelta:
    if text is None:
        return timedelta(0)
    try:
        return parse_duration(text)
    except ValueError as e:
        raise _Reject("bad_interval", field, str(e)) from None


def _window(event: Event, index: int, first_seen: datetime) -> tuple[datetime, datetime, timedelta]:
    """(start, end, randomizeStart) of interval `index`."""
    interval = event.intervals[index]
    own = interval.interval_period
    default = event.interval_period
    period: IntervalPeriod | None = own or default
    if period is None:
        raise _Reject(
            "bad_interval",
            f"$.intervals[{index}].intervalPeriod",
            "neither the interval nor the event has a period",
        )
    field = f"$.intervals[{index}].intervalPeriod" if own is not None else "$.intervalPeriod"
    duration_text = (
        period.duration if period.duration is not None else (default.duration if default else None)
    )
    duration = _duration(duration_text, f"{field}.duration")
    start = period.start
    if start.tzinfo is None:
        raise _Reject("bad_interval", f"{field}.start", "a start without a time zone")
    if start.year < _NOW_BEFORE_YEAR:
        start = first_seen
    if own is None and duration < FOREVER:
        # The event's period with several intervals: back to back, each of its duration.
        start = start + index * duration
    randomize_text = period.randomize_start
    if randomize_text is None and own is not None and default is not None:
        randomize_text = default.randomize_start
    randomize = _duration(randomize_text, f"{field}.randomizeStart")
    end = start + (duration if duration > timedelta(0) else FOREVER)
    return start, end, randomize
