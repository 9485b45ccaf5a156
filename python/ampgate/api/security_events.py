"""/api/v1/security-events and /api/v1/chargers/{id}/security-events: what chargers reported with
SecurityEventNotification, newest first; `critical=true` is the alert list (the types the spec marks critical)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from ampgate.api.auth import requires_viewer
from ampgate.api.deps import ChargerReads, SecurityEventReads
from ampgate.api.paging import (
    CHARGER_ERRORS,
    COMMON_ERRORS,
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    instant,
    int_cursor,
    require_charger,
)
from ampgate.security import SecurityEventRow

Critical = Annotated[
    bool | None,
    Parameter(description="true: only the types the spec marks critical (alerts); false: the others"),
]
Since = Annotated[str | None, Parameter(description="Only events that occurred at or after (ISO 8601)")]
Until = Annotated[str | None, Parameter(description="Only events that occurred before (ISO 8601)")]


class SecurityEventPage(msgspec.Struct, kw_only=True):
    """One page of security events, newest first; `next_cursor` null on the last."""

    items: list[SecurityEventRow]
    next_cursor: str | None


def _page(
    events: SecurityEventReads,
    limit: int,
    cursor: str | None,
    charger_id: str | None,
    critical: bool | None,
    since: str | None,
    until: str | None,
) -> SecurityEventPage:
    rows = events.page(
        limit + 1,
        before=int_cursor(cursor),
        charger_id=charger_id,
        critical=critical,
        since=instant(since, "since"),
        until=instant(until, "until"),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return SecurityEventPage(
        items=rows,
        next_cursor=str(rows[-1].id) if more else None,
    )


class SecurityEventController(Controller):
    path = "/api/v1/security-events"
    tags = ("security events",)

    @get(
        "/",
        operation_id="list_security_events",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="Security events of every charger (role: viewer)",
    )
    async def list_security_events(
        self,
        security_events: NamedDependency[SecurityEventReads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        charger_id: Annotated[str | None, Parameter(description="Only this charger's")] = None,
        critical: Critical = None,
        since: Since = None,
        until: Until = None,
    ) -> SecurityEventPage:
        """Security events, newest first. Role: viewer. Raises 422 naming limit, cursor, critical, since or
        until."""
        return _page(security_events, limit, cursor, charger_id, critical, since, until)


class ChargerSecurityEventController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/security-events"
    tags = ("security events",)

    @get(
        "/",
        operation_id="list_charger_security_events",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="A charger's security events (role: viewer)",
    )
    async def list_charger_security_events(
        self,
        security_events: NamedDependency[SecurityEventReads],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        critical: Critical = None,
        since: Since = None,
        until: Until = None,
    ) -> SecurityEventPage:
        """The charger's security events, newest first. Role: viewer. Raises 404 (field id) for an unknown
        charger, 422 naming limit, cursor, critical, since or until."""
        require_charger(chargers, charger_id)
        return _page(security_events, limit, cursor, charger_id, critical, since, until)
