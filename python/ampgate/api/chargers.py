"""/api/v1/chargers: list (keyset pages), read one, register (or replace a password)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import NodeView
from ampgate.api.schemas import ChargerCreate, ChargerPage, ChargerRead, ConnectorRead, ErrorBody
from ampgate.errors import NotFoundError, ValidationError
from ampgate.store import ChargerRow, validate_charger_id

# Page size when the client names none, and the most it may ask for: 1000 rows are ~250 KB of JSON and a few
# milliseconds of SQLite on the trio thread, small enough not to stall charger traffic.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")

_ERRORS = {
    401: ResponseSpec(ErrorBody, description="No token, or an unknown one"),
    403: ResponseSpec(ErrorBody, description="The token's role is too low"),
    422: ResponseSpec(ErrorBody, description="An input is invalid; `field` names it"),
}


def encode_cursor(last_id: str) -> str:
    """The opaque cursor for the page after `last_id`: unpadded URL-safe base64 of its UTF-8 bytes."""
    return base64.urlsafe_b64encode(last_id.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The charger id inside `cursor`. Raises ValidationError(field="cursor") if it is not one we made."""
    try:
        if not _CURSOR_ALPHABET.fullmatch(cursor):
            raise ValueError("not URL-safe base64")
        last_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        validate_charger_id(last_id)
    except (ValueError, binascii.Error, ValidationError):
        raise ValidationError("cursor is not one this API returned", field="cursor") from None
    return last_id


def charger_read(node: NodeView, row: ChargerRow) -> ChargerRead:
    """The API's view of a charger: the stored row merged with its live presence (none: offline)."""
    presence = node.presence.get(row.id)
    online = presence is not None and presence.online
    return ChargerRead(
        id=row.id,
        online=online,
        protocol=presence.protocol if presence is not None and online else row.protocol,
        vendor=row.vendor,
        model=row.model,
        serial=row.serial,
        firmware=row.firmware,
        connected_since=presence.connected_since if presence is not None else None,
        last_seen=presence.last_seen if presence is not None else None,
        registered_at=row.registered_at,
        last_boot_at=row.last_boot_at,
    )


class ChargerController(Controller):
    path = "/api/v1/chargers"
    tags = ("chargers",)

    @get(
        "/",
        operation_id="list_chargers",
        guards=[requires_viewer],
        responses=_ERRORS,
        summary="List chargers",
    )
    async def list_chargers(
        self,
        node: NamedDependency[NodeView],
        limit: Annotated[
            int, Parameter(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}")
        ] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None, Parameter(description="`next_cursor` of the previous page; omit for the first")
        ] = None,
    ) -> ChargerPage:
        """Chargers in id order, one page at a time. Raises 422 naming `limit` or `cursor` when invalid."""
        after = None if cursor is None else decode_cursor(cursor)
        # One row more than asked tells whether another page exists, so the last page says null, not a
        # cursor to an empty page.
        rows = node.store.list_chargers(limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        return ChargerPage(
            items=[charger_read(node, r) for r in rows],
            next_cursor=encode_cursor(rows[-1].id) if more else None,
        )

    @get(
        "/{id:str}",
        operation_id="get_charger",
        guards=[requires_viewer],
        responses={**_ERRORS, 404: ResponseSpec(ErrorBody, description="No such charger")},
        summary="One charger",
    )
    async def get_charger(
        self,
        node: NamedDependency[NodeView],
        # Named `id` (shadowing the builtin here only) so the path, the docs and the error's `field` agree.
        id: Annotated[str, Parameter(description="The charge point id")],
    ) -> ChargerRead:
        """The charger `id`, with `connectors` (each one's last status) once it reported any. Raises 404 not_found (field "id") when the store does not know it."""
        row = node.store.charger(id)
        if row is None:
            raise NotFoundError(f"charger '{id}' is not registered", field="id")
        read = charger_read(node, row)
        statuses = node.store.connector_statuses(id)
        if statuses:
            read.connectors = [
                ConnectorRead(
                    evse_id=c.evse_id,
                    connector_id=c.connector_id,
                    status=c.status,
                    error_code=c.error_code,
                    updated_at=c.updated_at,
                )
                for c in statuses
            ]
        return read

    @post(
        "/",
        operation_id="register_charger",
        guards=[requires_admin],
        status_code=201,
        responses={
            **_ERRORS,
            200: ResponseSpec(ChargerRead, description="The charger existed: its password was replaced"),
        },
        summary="Register a charger",
    )
    async def register_charger(
        self, node: NamedDependency[NodeView], data: JSONBody[ChargerCreate]
    ) -> Response[ChargerRead]:
        """Register charger `id` with `password` (201), or replace the password of a known one (200). Every
        gateway worker knows the new credentials when this returns. Raises 422 naming `id` or `password`."""
        row, created = await node.register_charger(data.id, data.password)
        return Response(charger_read(node, row), status_code=201 if created else 200)
