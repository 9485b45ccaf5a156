"""What every list route shares: page-size and cursor parameters, opaque keyset cursors, the common errors."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Protocol

from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from ampgate.api.schemas import ErrorBody
from ampgate.errors import NotFoundError, ValidationError

# Page size when the client names none, and the most it may ask for: 1000 rows are ~250 KB of JSON and a few
# milliseconds of SQLite on the trio thread, small enough not to stall charger traffic.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")

Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}")]
Cursor = Annotated[
    str | None, Parameter(description="`next_cursor` of the previous page; omit for the first")
]

# Errors every authenticated route may answer.
COMMON_ERRORS = {
    401: ResponseSpec(ErrorBody, description="No token, or an unknown one"),
    403: ResponseSpec(ErrorBody, description="The token's role is too low"),
    422: ResponseSpec(ErrorBody, description="An input is invalid; `field` names it"),
}


# What a route about one charger may answer besides COMMON_ERRORS.
CHARGER_ERRORS = {**COMMON_ERRORS, 404: ResponseSpec(ErrorBody, description="No such charger (`field`: id)")}
# A route that asks a charger for a report and waits for it.
REFRESH_ERRORS = {
    **CHARGER_ERRORS,
    409: ResponseSpec(ErrorBody, description="Not connected, not accepted, or the charger refused"),
    502: ResponseSpec(ErrorBody, description="The charger answered with a CALLERROR"),
    504: ResponseSpec(ErrorBody, description="No answer, or the report did not complete in time"),
}


class ChargerLookup(Protocol):
    def get(self, cp_id: str, /) -> object | None: ...


def require_charger(chargers: ChargerLookup, charger_id: str) -> None:
    """Raises NotFoundError (field id) when the store does not know the charger."""
    if chargers.get(charger_id) is None:
        raise NotFoundError(f"charger '{charger_id}' is not registered", field="id")


def encode_cursor(last_key: str) -> str:
    """The opaque cursor for the page after `last_key`: unpadded URL-safe base64 of its UTF-8 bytes."""
    return base64.urlsafe_b64encode(last_key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, validate: Callable[[str], object]) -> str:
    """The key inside `cursor`, checked with `validate` (which raises ValidationError or ValueError for a key
    that cannot be one). Raises ValidationError(field="cursor") if the cursor is not one this API made."""
    try:
        if not _CURSOR_ALPHABET.fullmatch(cursor):
            raise ValueError("not URL-safe base64")
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        validate(key)
    except (ValueError, binascii.Error, ValidationError, RecursionError):
        # RecursionError: a key of JSON nested thousands deep (json.loads recurses), which no cursor of ours is.
        raise ValidationError("cursor is not one this API returned", field="cursor") from None
    return key


def instant(text: str | None, field: str) -> datetime | None:
    """A `since` / `until` query value: ISO 8601, a time without a zone read as UTC (the zone of every time
    the API gives). Raises ValidationError naming `field`."""
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{field} is not an ISO 8601 date-time", field=field) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def int_cursor(cursor: str | None) -> int | None:
    """The row id inside a cursor of a list ordered by a numeric id (the cursor is the last id of the previous
    page). Raises ValidationError(field="cursor") for one this API did not make."""
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise ValidationError("cursor is not one this API returned", field="cursor")
    return int(cursor)
