"""/api/v1/sites/{site_id}/maintenance-windows: when firmware campaigns may dispatch to a site's chargers. PUT
replaces the whole list (an empty list removes them); GET shows them with the window open now and the next one,
evaluated in the site's time zone (`ampgate.load.windows`: the cron syntax and the DST rules).

Roles: setting windows is for admins (like the rest of the site); reading them for viewers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import SiteService
from ampgate.api.paging import COMMON_ERRORS
from ampgate.api.schemas import ErrorBody
from ampgate.load import MaintenanceWindow, SiteWindows
from ampgate.load.windows import MAX_DURATION_S, MAX_WINDOWS, MIN_DURATION_S


class WindowBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One recurring window."""

    cron: Annotated[
        str,
        Meta(
            description="When it opens: 5-field cron (minute hour day-of-month month day-of-week) in the site's "
            "time zone",
            examples=["30 1 * * sun"],
        ),
    ]
    duration_s: Annotated[
        int,
        Meta(description=f"How long it stays open, {MIN_DURATION_S} to {MAX_DURATION_S} s (elapsed time)"),
    ]


class WindowsPut(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The site's windows, replacing the ones before."""

    windows: Annotated[list[WindowBody], Meta(description=f"At most {MAX_WINDOWS}; empty removes them all")]


class Interval(msgspec.Struct, kw_only=True):
    start_at: datetime
    end_at: datetime


class WindowsRead(msgspec.Struct, kw_only=True):
    """A site's maintenance windows; `open_now` is the window in force now (null: none), `next` the next one to
    open (null: the site has none)."""

    site_id: str
    time_zone: str
    windows: list[WindowBody]
    updated_at: datetime | None
    open_now: Interval | None
    next: Interval | None


def windows_read(sites: SiteService, value: SiteWindows) -> WindowsRead:
    now = sites.now()
    current = value.window_at(now)
    upcoming = value.next_window(now)
    return WindowsRead(
        site_id=value.site_id,
        time_zone=value.time_zone,
        windows=[WindowBody(cron=w.cron, duration_s=w.duration_s) for w in value.windows],
        updated_at=value.updated_at,
        open_now=None if current is None else Interval(start_at=current[0], end_at=current[1]),
        next=None if upcoming is None else Interval(start_at=upcoming[0], end_at=upcoming[1]),
    )


_NOT_FOUND = {404: ResponseSpec(ErrorBody, description="No such site (`field`: site_id)")}


class MaintenanceWindowController(Controller):
    path = "/api/v1/sites/{site_id:str}/maintenance-windows"
    tags = ("sites",)

    @put(
        "/",
        operation_id="put_maintenance_windows",
        guards=[requires_admin],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="Replace a site's maintenance windows (role: admin)",
        description="Role: admin. Firmware campaigns dispatch to the site's chargers only inside a window "
        "(unless created with ignore_maintenance_windows). 422 naming `windows[i].cron` (not 5 fields, invalid, "
        "never matches), `windows[i].duration_s`, or `windows` (too many).",
    )
    async def put_windows(
        self,
        sites: NamedDependency[SiteService],
        site_id: Annotated[str, Parameter(description="The site")],
        data: JSONBody[WindowsPut],
    ) -> WindowsRead:
        """The site's windows as stored. 404 (field site_id), 422 naming the field."""
        windows = [MaintenanceWindow(cron=w.cron, duration_s=w.duration_s) for w in data.windows]
        return windows_read(sites, await sites.set_maintenance_windows(site_id, windows))

    @get(
        "/",
        operation_id="get_maintenance_windows",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="A site's maintenance windows (role: viewer)",
        description="Role: viewer. With the window open now and the next one, in UTC.",
    )
    async def get_windows(
        self,
        sites: NamedDependency[SiteService],
        site_id: Annotated[str, Parameter(description="The site")],
    ) -> WindowsRead:
        """404 (field site_id)."""
        return windows_read(sites, sites.maintenance_windows(site_id))
