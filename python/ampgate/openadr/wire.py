"""The OpenADR 3.0.1 objects the VEN reads and writes, as msgspec Structs with the spec's camelCase names.

Only the fields the VEN uses are declared; a VTN's other fields (and a 3.1 VTN's additions) are ignored on
decode, so a richer VTN still decodes. Optional fields are omitted when unset (`omit_defaults`): OpenADR VTNs
treat a missing field and a null one alike, and some refuse nulls they do not expect.

Durations are ISO 8601 text on the wire (`PT15M`); `parse_duration` turns them into timedeltas, refusing the
calendar units (years, months) that have no fixed length except the spec's "P9999Y" (infinity).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

__all__ = [
    "FOREVER",
    "Event",
    "EventPayloadDescriptor",
    "Interval",
    "IntervalPeriod",
    "Notification",
    "ObjectOperation",
    "Program",
    "Report",
    "ReportPayloadDescriptor",
    "ReportResource",
    "Resource",
    "Subscription",
    "TokenResponse",
    "ValuesMap",
    "Ven",
    "parse_duration",
]

# What the spec's "P9999Y" (an interval without end) becomes: far enough that nothing outlives it, near enough
# that adding it to any start of this century stays inside datetime's range.
FOREVER = timedelta(days=3650 * 10)

_DURATION = re.compile(
    r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration as the spec writes it (`PT1H`, `P1D`, `PT0.5S`, `P9999Y`, `P0Y0M0DT0H15M0S`) as a
    timedelta.

    Raises ValueError for text that is no duration, a negative one, or one with months or years (no fixed
    length) other than the spec's `P9999Y` for "no end", which is `FOREVER`."""
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    sign, years, months, days, day_unit, hours, minutes, seconds = m.groups()
    if sign:
        raise ValueError(f"{text!r} is negative")
    if years == "9999":
        return FOREVER
    # Zero years and months are fine: some VTNs write every field (openleadr-vtn: P0Y0M0DT0H15M0S).
    if int(years or 0) or int(months or 0):
        raise ValueError(f"{text!r} has years or months, which have no fixed length")
    n_days = int(days or 0) * (7 if day_unit == "W" else 1)
    return timedelta(
        days=n_days, hours=int(hours or 0), minutes=int(minutes or 0), seconds=float(seconds or 0)
    )


class _Object(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class ValuesMap(_Object):
    """A type and its values (a price, a limit, a target's names). Values may be numbers, text, booleans or
    {x, y} points; the VEN checks the ones it uses."""

    type: str
    values: list[Any]


class IntervalPeriod(_Object):
    start: datetime
    duration: str | None = None
    randomize_start: str | None = msgspec.field(default=None, name="randomizeStart")


class Interval(_Object):
    id: int
    payloads: list[ValuesMap]
    interval_period: IntervalPeriod | None = msgspec.field(default=None, name="intervalPeriod")


class EventPayloadDescriptor(_Object):
    payload_type: str = msgspec.field(name="payloadType")
    units: str | None = None
    currency: str | None = None
    object_type: str | None = msgspec.field(default=None, name="objectType")


class ReportPayloadDescriptor(_Object):
    payload_type: str = msgspec.field(name="payloadType")
    reading_type: str | None = msgspec.field(default=None, name="readingType")
    units: str | None = None
    object_type: Literal["REPORT_PAYLOAD_DESCRIPTOR"] = msgspec.field(
        default="REPORT_PAYLOAD_DESCRIPTOR", name="objectType"
    )


class Program(_Object):
    """A program: what the VEN takes from it is its id, name, default interval (the poll period), payload
    descriptors (for events that carry none) and whether its events are binding."""

    program_name: str = msgspec.field(name="programName")
    id: str | None = None
    program_type: str | None = msgspec.field(default=None, name="programType")
    interval_period: IntervalPeriod | None = msgspec.field(default=None, name="intervalPeriod")
    binding_events: bool | None = msgspec.field(default=None, name="bindingEvents")
    # Event and report descriptors mixed (the spec's discriminated anyOf): kept raw, the VEN reads the event
    # ones.
    payload_descriptors: list[dict[str, Any]] | None = msgspec.field(default=None, name="payloadDescriptors")
    targets: list[ValuesMap | str] | None = None


class Event(_Object):
    program_id: str = msgspec.field(name="programID")
    intervals: list[Interval]
    id: str | None = None
    modification_date_time: datetime | None = msgspec.field(default=None, name="modificationDateTime")
    event_name: str | None = msgspec.field(default=None, name="eventName")
    priority: int | None = None
    # valuesMaps in 3.0.1; plain strings in 3.1 (and the ElaadNL profile's 2.1, EAN18 values), taken too so the
    # VEN reads a 3.1 VTN's events.
    targets: list[ValuesMap | str] | None = None
    payload_descriptors: list[EventPayloadDescriptor] | None = msgspec.field(
        default=None, name="payloadDescriptors"
    )
    interval_period: IntervalPeriod | None = msgspec.field(default=None, name="intervalPeriod")


class ReportResource(_Object):
    resource_name: str = msgspec.field(name="resourceName")
    intervals: list[Interval]
    interval_period: IntervalPeriod | None = msgspec.field(default=None, name="intervalPeriod")


class Report(_Object):
    program_id: str = msgspec.field(name="programID")
    event_id: str = msgspec.field(name="eventID")
    client_name: str = msgspec.field(name="clientName")
    resources: list[ReportResource]
    id: str | None = None
    report_name: str | None = msgspec.field(default=None, name="reportName")
    payload_descriptors: list[ReportPayloadDescriptor] | None = msgspec.field(
        default=None, name="payloadDescriptors"
    )


class Resource(_Object):
    resource_name: str = msgspec.field(name="resourceName")
    id: str | None = None
    ven_id: str | None = msgspec.field(default=None, name="venID")
    attributes: list[ValuesMap] | None = None
    targets: list[ValuesMap | str] | None = None  # strings: OpenADR 3.1


class Ven(_Object):
    ven_name: str = msgspec.field(name="venName")
    id: str | None = None
    attributes: list[ValuesMap] | None = None
    targets: list[ValuesMap | str] | None = None  # strings: OpenADR 3.1


class ObjectOperation(_Object):
    objects: list[str]
    operations: list[str]
    callback_url: str = msgspec.field(name="callbackUrl")
    bearer_token: str | None = msgspec.field(default=None, name="bearerToken")


class Subscription(_Object):
    client_name: str = msgspec.field(name="clientName")
    program_id: str = msgspec.field(name="programID")
    object_operations: list[ObjectOperation] = msgspec.field(name="objectOperations")
    id: str | None = None
    targets: list[ValuesMap] | None = None


class Notification(_Object):
    """What a VTN posts to a subscription's callback URL: the object (kept raw: it is decoded by its
    `objectType`) and the operation done to it."""

    object_type: str = msgspec.field(name="objectType")
    operation: str
    object: msgspec.Raw


class TokenResponse(_Object):
    access_token: str
    token_type: str = "Bearer"
    expires_in: float | None = None
