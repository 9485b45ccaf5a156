"""/api/v1/demand-response/events: lower what a site, a capacity node or the whole network may draw for a time
window (`ampgate.demand`). Exactly one of `limit_kw`, `reduce_kw`, `reduce_pct`; reductions are from the draw
measured when the event begins (its baseline); a network-wide event is shared among the sites in proportion to
their draw. The issue's `node`, `start` and `end` are `node_id`, `starts_at` and `ends_at` here
(shared/API-CONVENTIONS.md).

Roles: creating and cancelling events is for operators; reading them for viewers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter, QueryParameter
from msgspec import Meta

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import DemandResponseService
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from ampgate.api.schemas import ErrorBody
from ampgate.clock import iso_utc
from ampgate.demand.model import STATES, EventRow, EventSpec
from ampgate.errors import NotFoundError, ValidationError

PATH = "/api/v1/demand-response/events"


class EventCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A demand-response event: exactly one of limit_kw, reduce_kw, reduce_pct."""

    node_id: Annotated[
        str | None, Meta(description="A site or capacity node; null: the whole network", examples=["AMS-01"])
    ]
    limit_kw: Annotated[float | None, Meta(description="Draw at most this (kW, >= 0)")] = None
    reduce_kw: Annotated[
        float | None, Meta(description="Draw this much less than the baseline (kW, > 0)")
    ] = None
    reduce_pct: Annotated[
        float | None, Meta(description="Draw this percentage less than the baseline (> 0, <= 100)")
    ] = None
    starts_at: Annotated[datetime, Meta(description="When it begins (any offset; in the past: now)")]
    ends_at: Annotated[
        datetime, Meta(description="When it ends (after starts_at and now; at most 7 days long)")
    ]


class EventRead(msgspec.Struct, kw_only=True):
    """A demand-response event. `baseline_kw`: each lowered node's draw when it began (empty before);
    `target_kw`: what it asks of each node now (empty unless active); `source`: api or openadr."""

    id: int
    node_id: str | None
    limit_kw: float | None
    reduce_kw: float | None
    reduce_pct: float | None
    starts_at: datetime
    ends_at: datetime
    state: str
    source: str
    ref: str | None
    created_at: datetime
    cancelled_at: datetime | None
    baseline_kw: dict[str, float]
    target_kw: dict[str, float]


class EventPage(msgspec.Struct, kw_only=True):
    items: list[EventRead]
    next_cursor: str | None


class AchievementPoint(msgspec.Struct, kw_only=True):
    at: datetime
    node_id: str
    target_kw: float
    measured_kw: float | None


class AchievementPage(msgspec.Struct, kw_only=True):
    """What the event achieved, per tick and lowered node, oldest first."""

    items: list[AchievementPoint]
    next_cursor: str | None


def _read(svc: DemandResponseService, row: EventRow, now: datetime) -> EventRead:
    return EventRead(
        id=row.id,
        node_id=row.node_id,
        limit_kw=row.limit_kw,
        reduce_kw=row.reduce_kw,
        reduce_pct=row.reduce_pct,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        state=row.state(now),
        source=row.source,
        ref=row.ref,
        created_at=row.created_at,
        cancelled_at=row.cancelled_at,
        baseline_kw=row.baseline_kw,
        target_kw=svc.targets(row.id),
    )


# `state` is a name Litestar reserves for the app state, so the handler's argument has another name.
StateFilter = Annotated[
    str | None, QueryParameter(name="state", description="scheduled, active, ended or cancelled")
]
EventId = Annotated[int, Parameter(description="The event's id")]
_404 = {404: ResponseSpec(ErrorBody, description="No such event (`field`: event_id)")}


class DemandResponseController(Controller):
    path = PATH
    tags = ("demand response",)

    @post(
        "/",
        operation_id="create_demand_response_event",
        guards=[requires_operator],
        status_code=201,
        responses=COMMON_ERRORS,
        summary="Schedule a demand-response event",
        description="Role: operator. Lowers a node's (or the network's) draw for a window. 422 names the field: "
        "not exactly one amount, a window that ends before it starts or is over, an unknown node_id.",
    )
    async def create_event(
        self, demand_response: NamedDependency[DemandResponseService], data: JSONBody[EventCreate]
    ) -> Response[EventRead]:
        """Role: operator. 201 with the event and its Location."""
        row = await demand_response.create(
            EventSpec(
                node_id=data.node_id,
                limit_kw=data.limit_kw,
                reduce_kw=data.reduce_kw,
                reduce_pct=data.reduce_pct,
                starts_at=data.starts_at,
                ends_at=data.ends_at,
            )
        )
        return Response(
            _read(demand_response, row, demand_response.now()),
            status_code=201,
            headers={"Location": f"{PATH}/{row.id}"},
        )

    @get(
        "/",
        operation_id="list_demand_response_events",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="List demand-response events",
        description="Role: viewer. Newest first; `state` (scheduled, active, ended, cancelled) and `source` "
        "(api, openadr) filter.",
    )
    async def list_events(
        self,
        demand_response: NamedDependency[DemandResponseService],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        state_filter: StateFilter = None,
        source: Annotated[str | None, Parameter(description="api or openadr")] = None,
    ) -> EventPage:
        """Role: viewer."""
        state = state_filter
        if state is not None and state not in STATES:
            raise ValidationError(f"state must be one of {', '.join(STATES)}", field="state")
        before = None if cursor is None else int(decode_cursor(cursor, int))
        now = demand_response.now()
        items: list[EventRead] = []
        more = False
        # A state filter is applied after the read (state depends on the time); read on until the page is full.
        while True:
            rows = demand_response.page(limit + 1, before, source)
            for r in rows:
                if state is None or r.state(now) == state:
                    if len(items) == limit:
                        more = True
                        break
                    items.append(_read(demand_response, r, now))
            if more or len(rows) <= limit:
                break
            before = rows[-1].id
        return EventPage(items=items, next_cursor=encode_cursor(str(items[-1].id)) if more else None)

    @get(
        "/{event_id:int}",
        operation_id="get_demand_response_event",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_404},
        summary="One demand-response event",
        description="Role: viewer. With its state, baseline and current targets.",
    )
    async def get_event(
        self, demand_response: NamedDependency[DemandResponseService], event_id: EventId
    ) -> EventRead:
        """Role: viewer."""
        row = demand_response.get(event_id)
        if row is None:
            raise NotFoundError(f"demand-response event {event_id} does not exist", field="event_id")
        return _read(demand_response, row, demand_response.now())

    @post(
        "/{event_id:int}/cancel",
        operation_id="cancel_demand_response_event",
        guards=[requires_operator],
        status_code=200,
        responses={
            **COMMON_ERRORS,
            **_404,
            409: ResponseSpec(ErrorBody, description="The event has ended (`event_ended`)"),
        },
        summary="Cancel a demand-response event",
        description="Role: operator. Idempotent: cancelling a cancelled event answers it as it is.",
    )
    async def cancel_event(
        self, demand_response: NamedDependency[DemandResponseService], event_id: EventId
    ) -> EventRead:
        """Role: operator."""
        row = await demand_response.cancel(event_id)
        return _read(demand_response, row, demand_response.now())

    @get(
        "/{event_id:int}/achievement",
        operation_id="get_demand_response_achievement",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_404},
        summary="What an event achieved",
        description="Role: viewer. Per tick and lowered node: the target and the measured draw (kW).",
    )
    async def achievement(
        self,
        demand_response: NamedDependency[DemandResponseService],
        event_id: EventId,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> AchievementPage:
        """Role: viewer."""
        if demand_response.get(event_id) is None:
            raise NotFoundError(f"demand-response event {event_id} does not exist", field="event_id")
        after = None if cursor is None else decode_cursor(cursor, _point_key)
        rows = demand_response.points(event_id, limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [AchievementPoint(at=a, node_id=n, target_kw=t, measured_kw=m) for a, n, t, m in rows]
        next_cursor = encode_cursor(f"{iso_utc(rows[-1][0])}|{rows[-1][1]}") if more else None
        return AchievementPage(items=items, next_cursor=next_cursor)


def _point_key(key: str) -> None:
    if "|" not in key:
        raise ValueError("not a point key")
