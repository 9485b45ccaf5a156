"""/api/v1/chargers/{charger_id}/display-messages: the messages a 2.0.1 charger shows its users, as the node
knows them; set one (SetDisplayMessage), clear one (ClearDisplayMessage), and refresh the node's view from the
charger (GetDisplayMessages, answered by NotifyDisplayMessages).

Bodies are the spec's MessageInfoType in snake_case with the API's names for times (`start_at`, `end_at`) and
the display component flattened (`display: {name, instance?, evse_id?, connector_id?}`). Roles: reading is for
viewers; setting, clearing and refreshing for operators.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import ChargerReads, DisplayMessageService
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor, require_charger
from ampgate.api.schemas import ErrorBody
from ampgate.display import Display, DisplayMessage, DisplayMessageRow
from ampgate.display.messages import MAX_CONTENT, MAX_INT32, MAX_LANGUAGE, MAX_NAME, MAX_TRANSACTION_ID
from ampgate.errors import NotFoundError

Priority = Literal["AlwaysFront", "InFront", "NormalCycle"]
State = Literal["Charging", "Faulted", "Idle", "Unavailable"]
Format = Literal["ASCII", "HTML", "URI", "UTF8"]
Id32 = Annotated[int, Meta(ge=0, le=MAX_INT32)]


class MessageContentBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The text (2.0.1 MessageContentType)."""

    format: Format
    language: Annotated[str, Meta(max_length=MAX_LANGUAGE, description="RFC 5646 tag, e.g. en")] | None = None
    content: Annotated[str, Meta(max_length=MAX_CONTENT)]


class DisplayBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The display the message is for (2.0.1 ComponentType, its EVSE flattened); omitted: every display."""

    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
    instance: Annotated[str, Meta(max_length=MAX_NAME)] | None = None
    evse_id: Id32 | None = None
    connector_id: Id32 | None = None


class DisplayMessageCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A message for the charger to show (2.0.1 MessageInfoType in snake_case). Without `id` the node assigns
    one; with the id of a message the charger has, it replaces that message [O05]."""

    id: Annotated[Id32 | None, Meta(description="The message id; omit it to have the node assign one")] = None
    priority: Priority
    state: Annotated[State | None, Meta(description="Show it only while the charger is in this state")] = None
    start_at: Annotated[datetime | None, Meta(description="Show it from (a time without a zone is UTC)")] = (
        None
    )
    end_at: Annotated[datetime | None, Meta(description="Show it until (a time without a zone is UTC)")] = (
        None
    )
    transaction_id: (
        Annotated[
            str,
            Meta(
                max_length=MAX_TRANSACTION_ID,
                description="Show it during this transaction only (charger's id)",
            ),
        ]
        | None
    ) = None
    message: MessageContentBody
    display: DisplayBody | None = None


class MessageContentRead(msgspec.Struct, kw_only=True):
    format: str
    language: str | None
    content: str


class DisplayRead(msgspec.Struct, kw_only=True):
    name: str
    instance: str | None
    evse_id: int | None
    connector_id: int | None


class DisplayMessageRead(msgspec.Struct, kw_only=True):
    """A message the charger shows, as the node knows it: `source` set (the charger accepted it from the node)
    or report (the charger listed it, NotifyDisplayMessages); `updated_at` when the node learned it."""

    id: int
    charger_id: str
    priority: str
    state: str | None
    start_at: datetime | None
    end_at: datetime | None
    transaction_id: str | None
    message: MessageContentRead
    display: DisplayRead | None
    source: str
    updated_at: datetime


class DisplayMessagePage(msgspec.Struct, kw_only=True):
    """One page of a charger's messages by id; `next_cursor` null on the last."""

    items: list[DisplayMessageRead]
    next_cursor: str | None


class DisplayRefreshRead(msgspec.Struct, kw_only=True):
    """A refresh: the GetDisplayMessages requestId, the charger's answer (Unknown: it has no messages) and how
    many messages the view holds now."""

    request_id: int
    status: str
    messages: int


def _utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def message_read(row: DisplayMessageRow) -> DisplayMessageRead:
    m = row.message
    d = m.display
    return DisplayMessageRead(
        id=m.id,
        charger_id=row.charger_id,
        priority=m.priority,
        state=m.state,
        start_at=m.start_at,
        end_at=m.end_at,
        transaction_id=m.transaction_id,
        message=MessageContentRead(format=m.format, language=m.language, content=m.content),
        display=None
        if d is None
        else DisplayRead(name=d.name, instance=d.instance, evse_id=d.evse_id, connector_id=d.connector_id),
        source=row.source,
        updated_at=row.updated_at,
    )


def _message(data: DisplayMessageCreate) -> DisplayMessage:
    d = data.display
    return DisplayMessage(
        id=data.id if data.id is not None else 0,
        priority=data.priority,
        state=data.state,
        start_at=_utc(data.start_at),
        end_at=_utc(data.end_at),
        transaction_id=data.transaction_id,
        format=data.message.format,
        language=data.message.language,
        content=data.message.content,
        display=None
        if d is None
        else Display(name=d.name, instance=d.instance, evse_id=d.evse_id, connector_id=d.connector_id),
    )


_COMMAND_ERRORS = {
    **COMMON_ERRORS,
    404: ResponseSpec(ErrorBody, description="Unknown charger (`field`: id), or message (message_id)"),
    409: ResponseSpec(
        ErrorBody,
        description="The charger is not connected or not accepted, speaks OCPP 1.6 (`unsupported_protocol`), "
        "or refused the message (`not_supported_message_format`, `not_supported_priority`, "
        "`not_supported_state`, `unknown_transaction`, `display_message_rejected`; `field` names what it "
        "would not take)",
    ),
    502: ResponseSpec(ErrorBody, description="The charger answered with a CALLERROR or an invalid reply"),
    504: ResponseSpec(ErrorBody, description="The charger did not answer (or list its messages) in time"),
}


class DisplayMessageController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/display-messages"
    tags = ("display messages",)

    @get(
        "/",
        operation_id="list_display_messages",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, 404: ResponseSpec(ErrorBody, description="Unknown charger")},
        summary="The messages a charger shows, as the node knows them (viewer)",
        description="Role: viewer. By message id. Refresh it from the charger with POST …/refresh.",
    )
    async def list_display_messages(
        self,
        display_messages: NamedDependency[DisplayMessageService],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> DisplayMessagePage:
        """The charger's messages by id. 404 (field id) for an unknown charger, 422 naming limit or cursor."""
        after = int_cursor(cursor)
        require_charger(chargers, charger_id)
        rows = display_messages.page(charger_id, limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        return DisplayMessagePage(
            items=[message_read(r) for r in rows], next_cursor=str(rows[-1].message.id) if more else None
        )

    @get(
        "/{message_id:int}",
        operation_id="get_display_message",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, 404: ResponseSpec(ErrorBody, description="Unknown message")},
        summary="One message a charger shows (viewer)",
        description="Role: viewer.",
    )
    async def get_display_message(
        self,
        display_messages: NamedDependency[DisplayMessageService],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        message_id: Annotated[int, Parameter(description="The message id")],
    ) -> DisplayMessageRead:
        """The message, or 404 (field message_id)."""
        row = display_messages.get(charger_id, message_id)
        if row is None:
            raise NotFoundError(f"charger {charger_id!r} shows no message {message_id}", field="message_id")
        return message_read(row)

    @post(
        "/",
        operation_id="set_display_message",
        guards=[requires_operator],
        status_code=201,
        responses=_COMMAND_ERRORS,
        summary="Have a charger show a message: SetDisplayMessage (operator)",
        description="Role: operator. OCPP 2.0.1 only. The node's view changes only when the charger accepts.",
    )
    async def set_display_message(
        self,
        display_messages: NamedDependency[DisplayMessageService],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        data: JSONBody[DisplayMessageCreate],
    ) -> Response[DisplayMessageRead]:
        """201 with the message once the charger accepted it (`Location`: the message). 404 unknown charger, 409
        offline / not accepted / 1.6 / refused by the charger (nothing stored), 422 naming the field, 502, 504."""
        row = await display_messages.set(charger_id, _message(data), assign_id=data.id is None)
        return Response(
            message_read(row),
            status_code=201,
            headers={"Location": f"/api/v1/chargers/{charger_id}/display-messages/{row.message.id}"},
        )

    @delete(
        "/{message_id:int}",
        operation_id="clear_display_message",
        guards=[requires_operator],
        status_code=204,
        responses={
            **_COMMAND_ERRORS,
            404: ResponseSpec(
                ErrorBody,
                description="Unknown charger (`field`: id), or the charger has no such message "
                "(`unknown_message`, field message_id)",
            ),
        },
        summary="Remove a message from a charger: ClearDisplayMessage (operator)",
        description="Role: operator. OCPP 2.0.1 only. The node's view drops the message whatever the charger "
        "answered; Unknown is a 404 `unknown_message`.",
    )
    async def clear_display_message(
        self,
        display_messages: NamedDependency[DisplayMessageService],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        message_id: Annotated[int, Parameter(description="The message id")],
    ) -> None:
        """204 once the charger cleared it."""
        await display_messages.clear(charger_id, message_id)

    @post(
        "/refresh",
        operation_id="refresh_display_messages",
        guards=[requires_operator],
        status_code=200,
        responses=_COMMAND_ERRORS,
        summary="Ask the charger for every message it has and replace the node's view (operator)",
        description="Role: operator. OCPP 2.0.1 only. GetDisplayMessages with a new requestId; answered once "
        "every NotifyDisplayMessages part is in (504 after the report timeout). Unknown (no messages) empties "
        "the view.",
    )
    async def refresh_display_messages(
        self,
        display_messages: NamedDependency[DisplayMessageService],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
    ) -> DisplayRefreshRead:
        """The request id, the charger's answer, and how many messages it shows."""
        r = await display_messages.refresh(charger_id)
        return DisplayRefreshRead(request_id=r.request_id, status=r.status, messages=r.messages)
