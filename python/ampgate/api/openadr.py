"""GET /api/v1/openadr: the OpenADR VEN's state, for admins (OpenADR settings are admin, API-CONVENTIONS.md).

Whether a VEN is configured at all (`ampgate serve --openadr-vtn`), whether the VTN answers, when it was last
polled and last answered, whether safe mode is on, how many events are mapped and how many were rejected."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from msgspec import Meta

from ampgate.api.auth import requires_admin
from ampgate.api.deps import OpenAdrStatus
from ampgate.api.paging import COMMON_ERRORS

OPENADR_PATH = "/api/v1/openadr"


class OpenAdrRead(msgspec.Struct, kw_only=True):
    """The VEN's state. Without --openadr-vtn only `configured` (false) is set."""

    configured: Annotated[bool, Meta(description="Whether the node runs an OpenADR VEN (--openadr-vtn)")]
    vtn_url: str | None = None
    ven_name: str | None = None
    ven_id: Annotated[str | None, Meta(description="The VEN's id at the VTN, once registered")] = None
    vtn_reachable: Annotated[bool | None, Meta(description="Whether the last poll got every answer")] = None
    last_poll_at: datetime | None = None
    last_contact_at: Annotated[datetime | None, Meta(description="The last poll the VTN answered fully")] = (
        None
    )
    last_error: str | None = None
    poll_interval_s: float | None = None
    safe_mode_active: Annotated[
        bool | None, Meta(description="The VTN has been unreachable past the timeout: safe-mode limits apply")
    ] = None
    safe_mode_since: datetime | None = None
    programs: int | None = None
    resources: Annotated[int | None, Meta(description="Sites registered with the VTN as resources")] = None
    subscriptions: int | None = None
    events_mapped: Annotated[int | None, Meta(description="Events applied (limits, prices, safe mode)")] = (
        None
    )
    limits_applied: Annotated[
        int | None, Meta(description="Capacity limits applied (one per interval and site)")
    ] = None
    rejects: Annotated[
        int | None, Meta(description="Events or notifications that could not be mapped, since start")
    ] = None
    reports_sent: int | None = None
    tokens_fetched: int | None = None


def openadr_read(status: dict[str, Any]) -> OpenAdrRead:
    return msgspec.convert(status, type=OpenAdrRead)


class OpenAdrController(Controller):
    path = OPENADR_PATH
    tags = ("openadr",)

    @get(
        "/",
        operation_id="openadr_status",
        guards=[requires_admin],
        summary="The OpenADR VEN's state",
        description="Role: admin. Configured?, VTN reachable, last poll, safe mode, events mapped, rejects.",
        responses=COMMON_ERRORS,
    )
    async def status(self, openadr: NamedDependency[OpenAdrStatus]) -> OpenAdrRead:
        return openadr_read(openadr.status())
