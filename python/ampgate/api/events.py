"""/api/v1/events: the event history (newest first, filtered by type, charger and time) and the live stream
(Server-Sent Events, filtered the same way, resumable with Last-Event-ID)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import trio
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from ampgate.api.auth import bearer_token, requires_viewer
from ampgate.api.deps import EventLogReads, TokenRoles
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, instant, int_cursor
from ampgate.errors import ValidationError
from ampgate.eventlog.service import LOST_TYPE
from ampgate.events import AnyEvent

# Every event type the bus carries (and the log's own marker of a loss).
EVENT_TYPES: frozenset[str] = frozenset(
    {str(t.__struct_config__.tag) for t in AnyEvent.__args__} | {LOST_TYPE}
)
# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0
# An open stream checks its token again this often and ends once the token is revoked or expired: a request is
# authenticated once, and a stream is one request that may last days. One indexed read per stream per 5 s.
TOKEN_RECHECK_S = 5.0

Types = Annotated[
    list[str] | None, Parameter(description="Only events of these types (repeat the parameter for several)")
]
ChargerFilter = Annotated[str | None, Parameter(description="Only events about this charger")]


class EventPage(msgspec.Struct, kw_only=True):
    """One page of events newest first; each item is the event as published (`type`, `at`, `charger_id`, its
    payload) with the log's `id`."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _types(types: list[str] | None) -> list[str] | None:
    if not types:
        return None
    unknown = sorted(set(types) - EVENT_TYPES)
    if unknown:
        raise ValidationError(f"unknown event type {unknown[0]!r}", field="type")
    return types


def _item(entry_id: int, data: bytes) -> dict[str, Any]:
    return {"id": entry_id, **json.loads(data)}


class EventController(Controller):
    path = "/api/v1/events"
    tags = ("events",)

    @get(
        "/",
        operation_id="list_events",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="The event history",
        description="Role: viewer. Events newest first, filtered by type, charger_id and time (since, until); "
        "kept --events-days.",
    )
    async def list_events(
        self,
        events: NamedDependency[EventLogReads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        type: Types = None,
        charger_id: ChargerFilter = None,
        since: Annotated[str | None, Parameter(description="At or after this time")] = None,
        until: Annotated[str | None, Parameter(description="Before this time")] = None,
    ) -> EventPage:
        """Role: viewer. 422 naming limit, cursor, type (not an event type), since or until."""
        rows = events.page(
            limit + 1,
            before=int_cursor(cursor),
            types=_types(type),
            charger_id=charger_id,
            since=instant(since, "since"),
            until=instant(until, "until"),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return EventPage(
            items=[_item(r.id, r.data) for r in rows], next_cursor=str(rows[-1].id) if more else None
        )

    @get(
        "/stream",
        operation_id="stream_events",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="The live event stream (Server-Sent Events)",
        description="Role: viewer. Each event as an SSE message: `event` its type, `id` its log id, `data` its "
        "JSON. Filtered by type and charger_id; resumed after the id in Last-Event-ID (what was missed first). "
        "A consumer that cannot keep up gets an `events.lost` message with the count; it never slows the node.",
    )
    async def stream_events(
        self,
        request: Request[Any, Any, Any],
        api_tokens: NamedDependency[TokenRoles],
        events: NamedDependency[EventLogReads],
        type: Types = None,
        charger_id: ChargerFilter = None,
        last_event_id: Annotated[
            str | None, HeaderParameter(name="Last-Event-ID", description="Resume after this event id")
        ] = None,
    ) -> ServerSentEvent:
        """Role: viewer. 422 naming type or Last-Event-ID."""
        types = _types(type)
        last: int | None = None
        if last_event_id is not None:
            if not last_event_id.isdigit() or len(last_event_id) > 18:
                raise ValidationError("Last-Event-ID is not an event id", field="Last-Event-ID")
            last = int(last_event_id)
        stream, missed = events.open_stream(types, charger_id, last)
        token = bearer_token(request.headers.get("authorization")) or ""

        async def messages() -> AsyncIterator[ServerSentEventMessage]:
            try:
                for e in missed:
                    yield ServerSentEventMessage(data=e.data.decode(), event=e.type, id=str(e.id))
                keepalive_at = trio.current_time() + KEEPALIVE_S
                recheck_at = trio.current_time() + TOKEN_RECHECK_S
                while True:
                    item = None
                    with trio.move_on_at(min(keepalive_at, recheck_at)):
                        item = await stream.next()
                    now = trio.current_time()
                    if now >= recheck_at:
                        if api_tokens.role_for(token) is None:
                            return  # revoked or expired: the stream ends (a reconnect gets 401)
                        recheck_at = now + TOKEN_RECHECK_S
                    if item is None:
                        if now >= keepalive_at:
                            keepalive_at = now + KEEPALIVE_S
                            yield ServerSentEventMessage(comment="keep-alive")
                        continue
                    keepalive_at = now + KEEPALIVE_S  # a comment only after KEEPALIVE_S without a message
                    if isinstance(item, int):
                        yield ServerSentEventMessage(data=json.dumps({"count": item}), event=LOST_TYPE)
                    else:
                        yield ServerSentEventMessage(
                            data=item.data.decode(), event=item.type, id=str(item.id)
                        )
            finally:
                events.close_stream(stream)

        return ServerSentEvent(messages())
