"""/api/v1/firmware/campaigns: create a firmware campaign (a draft), run it with the verbs start, pause, resume,
cancel and retry-failed, and watch it: its counts and groups (from the counters, never a scan of its chargers),
each charger's state and timeline, the counts over time for a progress bar, and the audit of its verbs.

Roles: reading is for viewers; creating and the verbs for operators. A verb is `POST …/{id}/{verb}` and idempotent:
the same verb twice is 200 with the current state and changes nothing; each call is audited with the token's label
and role and the optional `reason`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol, runtime_checkable

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, JSONBody, Parameter, QueryParameter

from ampgate.api.auth import bearer_token, requires_operator, requires_viewer
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor
from ampgate.api.schemas import ErrorBody
from ampgate.campaigns.charger import STATES
from ampgate.campaigns.model import CAMPAIGN_STATES, CampaignSpec
from ampgate.campaigns.repository import AuditRow, CampaignRow, ChargerRow, GroupRow
from ampgate.campaigns.runner import Actor, Summary
from ampgate.errors import ValidationError

# Most points one progress query returns: a progress bar needs far fewer, and the query stays a few ms.
MAX_POINTS = 1000


@runtime_checkable
class CampaignService(Protocol):
    """The campaign runner (`ampgate.campaigns.CampaignRunner`)."""

    async def create(self, spec: CampaignSpec, /) -> CampaignRow: ...
    async def verb(
        self, campaign_id: int, verb: str, actor: Actor, reason: str | None = None, /
    ) -> CampaignRow: ...
    def summary(self, campaign_id: int, /) -> Summary: ...
    def page(self, limit: int, before: int | None, state: str | None, /) -> list[CampaignRow]: ...
    def chargers(
        self, campaign_id: int, state: str | None, limit: int, after: int | None, /
    ) -> list[ChargerRow]: ...
    def samples(
        self, campaign_id: int, since: datetime, until: datetime, /
    ) -> list[tuple[datetime, dict[str, int]]]: ...
    def audit(self, campaign_id: int, /) -> list[AuditRow]: ...


class GroupRead(msgspec.Struct, kw_only=True):
    index: int
    kind: str  # canary, group, dynamic
    state: str  # pending, running, finished
    overridden: bool  # resumed past its success / error condition
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int]


class CampaignRead(msgspec.Struct, kw_only=True):
    """A campaign: its state (and why it is paused), its counts per charger state and its groups, with the spec it
    was created with."""

    id: int
    name: str | None
    image_id: int
    state: str
    paused_reason: str | None
    counts: dict[str, int]
    groups: list[GroupRead]
    spec: CampaignSpec
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class CampaignPage(msgspec.Struct, kw_only=True):
    items: list[CampaignRead]
    next_cursor: str | None


class TimelineRead(msgspec.Struct, kw_only=True):
    event: str
    at: datetime


class CampaignChargerRead(msgspec.Struct, kw_only=True):
    """One charger's update: state (and why, for skipped / failed), the current request id and command, the
    message sent, and its timeline (statuses, replies, boots, what the node did)."""

    charger_id: str
    group_index: int
    state: str
    reason: str | None
    request_id: int | None
    command_id: str | None
    action: str | None
    timeline: list[TimelineRead]
    updated_at: datetime


class CampaignChargerPage(msgspec.Struct, kw_only=True):
    items: list[CampaignChargerRead]
    next_cursor: str | None


class ProgressPoint(msgspec.Struct, kw_only=True):
    at: datetime
    counts: dict[str, int]


class CampaignProgress(msgspec.Struct, kw_only=True):
    """Counts over time: each point holds the counts as they stood at `at` (kept every minute while the campaign
    runs and at each change of its state)."""

    step_s: int
    points: list[ProgressPoint]


class AuditRead(msgspec.Struct, kw_only=True):
    verb: str
    actor: str | None  # the API token's label
    role: str | None
    reason: str | None
    changed: bool
    state_after: str
    at: datetime


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditRead]


class VerbBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Why (kept in the audit)."""

    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


def _group(g: GroupRow) -> GroupRead:
    return GroupRead(
        index=g.index,
        kind=g.kind,
        state=g.state,
        overridden=g.overridden,
        started_at=g.started_at,
        finished_at=g.finished_at,
        counts=g.counts,
    )


def campaign_read(s: Summary) -> CampaignRead:
    c = s.campaign
    return CampaignRead(
        id=c.id,
        name=c.name,
        image_id=c.image_id,
        state=c.state,
        paused_reason=c.paused_reason,
        counts=s.counts,
        groups=[_group(g) for g in s.groups],
        spec=c.spec,
        created_at=c.created_at,
        started_at=c.started_at,
        finished_at=c.finished_at,
        updated_at=c.updated_at,
    )


def _actor(request: Request[Any, Any, Any]) -> Actor:
    role = request.scope.get("user")
    token = bearer_token(request.headers.get("authorization"))
    tokens = getattr(request.app.state, "api_tokens", None)
    label_for = getattr(tokens, "label_for", None)
    label = label_for(token) if token is not None and label_for is not None else None
    return Actor(label=label, role=role if isinstance(role, str) else None)


_ONE = {**COMMON_ERRORS, 404: ResponseSpec(ErrorBody, description="No such campaign (`field`: campaign_id)")}
_VERB = {
    **_ONE,
    409: ResponseSpec(ErrorBody, description="The campaign's state forbids the verb (`campaign_state`)"),
}
CampaignId = Annotated[int, Parameter(description="The campaign's id")]
_StateFilter = Annotated[
    str | None,
    QueryParameter(name="state", description=f"Only campaigns in this state: {', '.join(CAMPAIGN_STATES)}"),
]
_ChargerStateFilter = Annotated[
    str | None, QueryParameter(name="state", description=f"Only chargers in this state: {', '.join(STATES)}")
]


def _verb_route(verb: str) -> Any:
    @post(
        f"/{{campaign_id:int}}/{verb}",
        operation_id=f"campaign_{verb.replace('-', '_')}",
        guards=[requires_operator],
        status_code=200,
        responses=_VERB,
        summary=f"{verb} a campaign (operator)",
        description=f"Role: operator. Idempotent: {verb} again answers 200 with the current state and changes "
        "nothing. Audited with the token's label and role and the body's optional reason.",
    )
    async def handler(
        self: Controller,
        request: Request[Any, Any, Any],
        campaigns: NamedDependency[CampaignService],
        campaign_id: CampaignId,
        data: Annotated[VerbBody | None, Body(description="Optional: why")] = None,
    ) -> CampaignRead:
        await campaigns.verb(campaign_id, verb, _actor(request), data.reason if data is not None else None)
        return campaign_read(campaigns.summary(campaign_id))

    return handler


class CampaignController(Controller):
    path = "/api/v1/firmware/campaigns"
    tags = ("firmware campaigns",)

    @post(
        "/",
        operation_id="create_campaign",
        guards=[requires_operator],
        status_code=201,
        responses=COMMON_ERRORS,
        summary="Create a firmware campaign, a draft (operator)",
        description="Role: operator. Groups take exactly one of percent, count or charger_ids; the canary one of "
        "count or percent; thresholds are 0 to 100. Nothing is sent before `start`.",
    )
    async def create_campaign(
        self, campaigns: NamedDependency[CampaignService], data: JSONBody[CampaignSpec]
    ) -> Response[CampaignRead]:
        """201 with the draft and its Location; 422 naming the field."""
        row = await campaigns.create(data)
        return Response(
            campaign_read(campaigns.summary(row.id)),
            status_code=201,
            headers={"Location": f"/api/v1/firmware/campaigns/{row.id}"},
        )

    @get(
        "/",
        operation_id="list_campaigns",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="Firmware campaigns, newest first (viewer)",
        description="Role: viewer. Each with its counts and groups.",
    )
    async def list_campaigns(
        self,
        campaigns: NamedDependency[CampaignService],
        state_filter: _StateFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CampaignPage:
        """A page of campaigns; 422 naming state, limit or cursor."""
        if state_filter is not None and state_filter not in CAMPAIGN_STATES:
            raise ValidationError(f"state is one of {', '.join(CAMPAIGN_STATES)}", field="state")
        rows = campaigns.page(limit + 1, int_cursor(cursor), state_filter)
        more = len(rows) > limit
        rows = rows[:limit]
        return CampaignPage(
            items=[campaign_read(campaigns.summary(r.id)) for r in rows],
            next_cursor=str(rows[-1].id) if more else None,
        )

    @get(
        "/{campaign_id:int}",
        operation_id="get_campaign",
        guards=[requires_viewer],
        responses=_ONE,
        summary="One firmware campaign with its counts and groups (viewer)",
        description="Role: viewer. Counts come from counters kept with every transition.",
    )
    async def get_campaign(
        self, campaigns: NamedDependency[CampaignService], campaign_id: CampaignId
    ) -> CampaignRead:
        return campaign_read(campaigns.summary(campaign_id))

    start = _verb_route("start")
    pause = _verb_route("pause")
    resume = _verb_route("resume")
    cancel = _verb_route("cancel")
    retry_failed = _verb_route("retry-failed")

    @get(
        "/{campaign_id:int}/chargers",
        operation_id="list_campaign_chargers",
        guards=[requires_viewer],
        responses=_ONE,
        summary="A campaign's chargers with their state and timeline (viewer)",
        description="Role: viewer. In selection order; `state` filters.",
    )
    async def list_campaign_chargers(
        self,
        campaigns: NamedDependency[CampaignService],
        campaign_id: CampaignId,
        state_filter: _ChargerStateFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CampaignChargerPage:
        if state_filter is not None and state_filter not in STATES:
            raise ValidationError(f"state is one of {', '.join(STATES)}", field="state")
        rows = campaigns.chargers(campaign_id, state_filter, limit + 1, int_cursor(cursor))
        more = len(rows) > limit
        rows = rows[:limit]
        return CampaignChargerPage(
            items=[
                CampaignChargerRead(
                    charger_id=r.charger_id,
                    group_index=r.group_index,
                    state=r.state,
                    reason=r.reason,
                    request_id=r.request_id,
                    command_id=r.command_id,
                    action=r.action,
                    timeline=[
                        TimelineRead(event=e.event, at=datetime.fromisoformat(e.at)) for e in r.timeline
                    ],
                    updated_at=r.updated_at,
                )
                for r in rows
            ],
            next_cursor=str(rows[-1].seq) if more else None,
        )

    @get(
        "/{campaign_id:int}/progress",
        operation_id="campaign_progress",
        guards=[requires_viewer],
        responses=_ONE,
        summary="A campaign's counts over time, for a progress bar (viewer)",
        description="Role: viewer. since (inclusive, default the campaign's creation), until (exclusive, default "
        f"now), step in seconds; at most {MAX_POINTS} points.",
    )
    async def campaign_progress(
        self,
        campaigns: NamedDependency[CampaignService],
        campaign_id: CampaignId,
        since: Annotated[datetime | None, Parameter(description="From (inclusive)")] = None,
        until: Annotated[datetime | None, Parameter(description="To (exclusive)")] = None,
        step: Annotated[int, Parameter(description="Seconds per point", ge=1)] = 60,
    ) -> CampaignProgress:
        s = campaigns.summary(campaign_id)
        until = until or s.campaign.updated_at + timedelta(seconds=step)
        since = since or s.campaign.created_at
        for name, at in (("since", since), ("until", until)):
            if at.tzinfo is None:
                raise ValidationError(f"{name} needs a UTC offset", field=name)
        if until <= since:
            raise ValidationError("until must be after since", field="until")
        if (until - since).total_seconds() / step > MAX_POINTS:
            raise ValidationError(
                f"more than {MAX_POINTS} points: widen step or narrow the window", field="step"
            )
        samples = campaigns.samples(campaign_id, since, until)
        points: list[ProgressPoint] = []
        i, last = 0, dict.fromkeys(STATES, 0)
        at = since
        while at < until:
            while i < len(samples) and samples[i][0] <= at:
                last = {**dict.fromkeys(STATES, 0), **samples[i][1]}
                i += 1
            points.append(ProgressPoint(at=at, counts=last))
            at += timedelta(seconds=step)
        return CampaignProgress(step_s=step, points=points)

    @get(
        "/{campaign_id:int}/audit",
        operation_id="campaign_audit",
        guards=[requires_viewer],
        responses=_ONE,
        summary="Who ran which verb on a campaign, when and why (viewer)",
        description="Role: viewer. Every verb call, including those that changed nothing.",
    )
    async def campaign_audit(
        self, campaigns: NamedDependency[CampaignService], campaign_id: CampaignId
    ) -> AuditPage:
        return AuditPage(
            items=[
                AuditRead(
                    verb=a.verb,
                    actor=a.actor,
                    role=a.role,
                    reason=a.reason,
                    changed=a.changed,
                    state_after=a.state_after,
                    at=a.at,
                )
                for a in campaigns.audit(campaign_id)
            ]
        )
