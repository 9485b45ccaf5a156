"""Request and response bodies of the HTTP API, as msgspec Structs (snake_case JSON). Read shapes are what we
send, Create shapes what we accept; they are separate even where they overlap, so one can change alone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every 4xx/5xx body. `code` is stable (branch on it); `message` is for people; `field` names the input
    (JSON key, query or path parameter) at fault, when one is."""

    code: str
    message: str
    field: str | None = None
    # For 502 charger_error: the charger's OCPP error code and its errorDetails.
    ocpp_code: str | None = None
    details: Any = None


class ChargerRead(msgspec.Struct, kw_only=True):
    """A charger: what the store knows merged with its live presence."""

    id: str
    online: bool
    # The live connection's subprotocol when online, else the one of its last boot.
    protocol: str | None
    vendor: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    connected_since: datetime | None
    last_seen: datetime | None
    registered_at: datetime
    last_boot_at: datetime | None


class ChargerPage(msgspec.Struct, kw_only=True):
    """One page of chargers in id order; pass `next_cursor` as `cursor` for the next (null: this was the last)."""

    items: list[ChargerRead]
    next_cursor: str | None


class ChargerCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Register a charger, or replace the password of a registered one."""

    id: Annotated[
        str,
        Meta(
            description="The charge point id in the charger's URL: 1–48 characters, no '/', ':' or control "
            "characters.",
            examples=["CP-0001"],
        ),
    ]
    password: Annotated[
        str | None,
        Meta(
            description="HTTP Basic password the charger will present: 16–40 printable ASCII characters. null: "
            "the charger connects without a password (also clears an existing one).",
        ),
    ] = None
