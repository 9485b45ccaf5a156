"""Display messages as values, and the rules around them (pure: no store, no clock, no sockets).

A `DisplayMessage` is the 2.0.1 MessageInfoType in the API's terms (snake_case, `_at` times, the display
component flattened): `check` says which field of one cannot be sent, `to_wire` / `from_wire` convert it to and
from the spec's shape, `from_report_parts` reads what a charger listed in its NotifyDisplayMessages parts, and
`refusal` maps SetDisplayMessage's refusals to the error the API gives (409 naming the field the charger would
not take).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from ampgate.clock import iso_utc
from ampgate.errors import ConflictError, ValidationError
from ampgate.ocpp import v201

PRIORITIES = ("AlwaysFront", "InFront", "NormalCycle")
STATES = ("Charging", "Faulted", "Idle", "Unavailable")
FORMATS = ("ASCII", "HTML", "URI", "UTF8")
# The schema's lengths (MessageContentType, MessageInfoType, ComponentType): checked here so that the 422 names
# the API's field rather than the wire's.
MAX_CONTENT = 512
MAX_LANGUAGE = 8
MAX_TRANSACTION_ID = 36
MAX_NAME = 50
# OCPP integers are 32-bit signed; message ids the node assigns start at 1.
MAX_INT32 = 2**31 - 1

# SetDisplayMessage's refusals: the API error code and the field of the request the charger would not take.
REFUSALS: dict[str, tuple[str, str | None]] = {
    "NotSupportedMessageFormat": ("not_supported_message_format", "message.format"),
    "NotSupportedPriority": ("not_supported_priority", "priority"),
    "NotSupportedState": ("not_supported_state", "state"),
    "UnknownTransaction": ("unknown_transaction", "transaction_id"),
    "Rejected": ("display_message_rejected", None),
}


class Display(msgspec.Struct, frozen=True, kw_only=True):
    """The display component a message is for (2.0.1 ComponentType with its EVSE flattened)."""

    name: str
    instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None


class DisplayMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message as the charger is (or is to be) showing it; `id` is the charger's message id."""

    id: int
    priority: str
    state: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    transaction_id: str | None = None
    format: str
    language: str | None = None
    content: str
    display: Display | None = None


def _length(value: str | None, most: int, field: str) -> None:
    if value is not None and len(value) > most:
        raise ValidationError(f"{field} is at most {most} characters", field=field)


def _one_of(value: str | None, allowed: tuple[str, ...], field: str) -> None:
    if value is not None and value not in allowed:
        raise ValidationError(f"{field} must be one of {', '.join(allowed)}", field=field)


def check(msg: DisplayMessage) -> DisplayMessage:
    """`msg` if it can be sent, else ValidationError naming the API field (`priority`, `message.content`,
    `display.name`, `end_at`, ...)."""
    if not 0 <= msg.id <= MAX_INT32:
        raise ValidationError(f"id is 0 to {MAX_INT32}", field="id")
    _one_of(msg.priority, PRIORITIES, "priority")
    _one_of(msg.state, STATES, "state")
    _one_of(msg.format, FORMATS, "message.format")
    _length(msg.content, MAX_CONTENT, "message.content")
    _length(msg.language, MAX_LANGUAGE, "message.language")
    _length(msg.transaction_id, MAX_TRANSACTION_ID, "transaction_id")
    for name in ("start_at", "end_at"):
        at = getattr(msg, name)
        if at is not None and at.utcoffset() is None:
            raise ValidationError(f"{name} needs a time zone (e.g. a Z)", field=name)
    if msg.start_at is not None and msg.end_at is not None and msg.end_at <= msg.start_at:
        raise ValidationError("end_at is not after start_at", field="end_at")
    d = msg.display
    if d is not None:
        _length(d.name, MAX_NAME, "display.name")
        _length(d.instance, MAX_NAME, "display.instance")
        if not d.name:
            raise ValidationError("display.name is required", field="display.name")
        if d.connector_id is not None and d.evse_id is None:
            raise ValidationError("display.connector_id needs display.evse_id", field="display.connector_id")
        for name, n in (("display.evse_id", d.evse_id), ("display.connector_id", d.connector_id)):
            if n is not None and not 0 <= n <= MAX_INT32:
                raise ValidationError(f"{name} is 0 to {MAX_INT32}", field=name)
    return msg


def to_wire(msg: DisplayMessage) -> dict[str, Any]:
    """The MessageInfoType of `msg` (camelCase, absent fields left out)."""
    content: dict[str, Any] = {"format": msg.format, "content": msg.content}
    if msg.language is not None:
        content["language"] = msg.language
    info: dict[str, Any] = {"id": msg.id, "priority": msg.priority, "message": content}
    if msg.state is not None:
        info["state"] = msg.state
    if msg.start_at is not None:
        info["startDateTime"] = iso_utc(msg.start_at)
    if msg.end_at is not None:
        info["endDateTime"] = iso_utc(msg.end_at)
    if msg.transaction_id is not None:
        info["transactionId"] = msg.transaction_id
    if msg.display is not None:
        d = msg.display
        component: dict[str, Any] = {"name": d.name}
        if d.instance is not None:
            component["instance"] = d.instance
        if d.evse_id is not None:
            evse: dict[str, Any] = {"id": d.evse_id}
            if d.connector_id is not None:
                evse["connectorId"] = d.connector_id
            component["evse"] = evse
        info["display"] = component
    return info


def from_wire(info: v201.MessageInfoType) -> DisplayMessage:
    """The message a charger described (NotifyDisplayMessages' messageInfo)."""
    display = None
    if info.display is not None:
        evse = info.display.evse
        display = Display(
            name=info.display.name,
            instance=info.display.instance,
            evse_id=None if evse is None else evse.id,
            connector_id=None if evse is None else evse.connector_id,
        )
    return DisplayMessage(
        id=info.id,
        priority=info.priority,
        state=info.state,
        start_at=info.start_date_time,
        end_at=info.end_date_time,
        transaction_id=info.transaction_id,
        format=info.message.format,
        language=info.message.language,
        content=info.message.content,
        display=display,
    )


_decode_part = msgspec.json.Decoder(v201.NotifyDisplayMessagesRequest).decode


def from_report_parts(payloads: Iterable[bytes]) -> list[DisplayMessage]:
    """Every message the parts of one NotifyDisplayMessages report list (the parts as stored, in order), by id;
    a message listed twice is taken from the later part. Ordered by id."""
    found: dict[int, DisplayMessage] = {}
    for payload in payloads:
        for info in _decode_part(payload).message_info or ():
            found[info.id] = from_wire(info)
    return [found[k] for k in sorted(found)]


def next_id(taken: Iterable[int]) -> int:
    """The id the node gives a message the operator gave none: one above the highest in use (1 for none)."""
    return max(taken, default=0) + 1


def refusal(charger_id: str, status: str) -> ConflictError:
    """The error for a SetDisplayMessage that the charger answered `status` (anything but Accepted)."""
    code, field = REFUSALS.get(status, ("display_message_rejected", None))
    return ConflictError(
        f"charger {charger_id!r} answered SetDisplayMessage with {status}; nothing was stored",
        code=code,
        field=field,
    )
