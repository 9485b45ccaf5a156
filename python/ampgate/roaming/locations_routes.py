"""The Locations module, Sender interface (mod_locations): `GET /ocpi/2.2.1/locations` paginated
(`date_from`, `date_to`, `offset`, `limit`; `X-Total-Count`, `X-Limit` and a `Link` to the next page), and one
Location, EVSE or Connector by its ids. Registered parties only. The objects come from the locations book."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from litestar import Request, Response, get
from litestar.di import NamedDependency

from ampgate.roaming.errors import unknown_object
from ampgate.roaming.server import VERSION_PATH, Module, OcpiContext, answer, caller, paged
from ampgate.roaming.types import (
    Connector,
    Evse,
    EvseStatus,
    InterfaceRole,
    Location,
    ModuleId,
)

PATH = "locations"
# The most Locations per page (X-Limit), and the page when none is asked for. A Location with its EVSEs is a
# few KB: 100 keep a page under a megabyte while a party syncing thousands needs tens of requests, not thousands.
MAX_LIMIT = 100
# An offset beyond any fleet: a larger one is a client bug, answered 2001 rather than an empty page.
MAX_OFFSET = 10_000_000


class LocationReads(Protocol):
    """`ampgate.roaming.locations.LocationBook`."""

    def page(
        self, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int, /
    ) -> tuple[int, list[Location]]: ...
    def location(self, location_id: str, /) -> Location | None: ...
    def evse(self, location_id: str, uid: str, /) -> Evse | None: ...
    def connector(self, location_id: str, uid: str, connector_id: str, /) -> Connector | None: ...
    def evse_state(self, location_id: str, uid: str, /) -> tuple[EvseStatus, datetime] | None: ...


class LocationsContext(OcpiContext, Protocol):
    book: LocationReads


@get(f"{VERSION_PATH}/{PATH}", operation_id="ocpi_locations", summary="Locations, paginated")
async def list_locations(
    request: Request[Any, Any, Any], ocpi: NamedDependency[LocationsContext]
) -> Response[bytes]:
    who = caller(request, ocpi)
    page, headers = paged(request, ocpi, PATH, ocpi.book.page, max_limit=MAX_LIMIT, max_offset=MAX_OFFSET)
    return answer(request, page, headers=headers, caller=who)


@get(f"{VERSION_PATH}/{PATH}/{{location_id:str}}", operation_id="ocpi_location", summary="One Location")
async def get_location(
    request: Request[Any, Any, Any], ocpi: NamedDependency[LocationsContext], location_id: str
) -> Response[bytes]:
    who = caller(request, ocpi)
    found = ocpi.book.location(location_id)
    if found is None:
        raise unknown_object(f"no location {location_id!r}")
    return answer(request, found, caller=who)


@get(
    f"{VERSION_PATH}/{PATH}/{{location_id:str}}/{{evse_uid:str}}",
    operation_id="ocpi_evse",
    summary="One EVSE",
)
async def get_evse(
    request: Request[Any, Any, Any], ocpi: NamedDependency[LocationsContext], location_id: str, evse_uid: str
) -> Response[bytes]:
    who = caller(request, ocpi)
    found = ocpi.book.evse(location_id, evse_uid)
    if found is None:
        raise unknown_object(f"no EVSE {evse_uid!r} at location {location_id!r}")
    return answer(request, found, caller=who)


@get(
    f"{VERSION_PATH}/{PATH}/{{location_id:str}}/{{evse_uid:str}}/{{connector_id:str}}",
    operation_id="ocpi_connector",
    summary="One Connector",
)
async def get_connector(
    request: Request[Any, Any, Any],
    ocpi: NamedDependency[LocationsContext],
    location_id: str,
    evse_uid: str,
    connector_id: str,
) -> Response[bytes]:
    who = caller(request, ocpi)
    found = ocpi.book.connector(location_id, evse_uid, connector_id)
    if found is None:
        raise unknown_object(
            f"no connector {connector_id!r} of EVSE {evse_uid!r} at location {location_id!r}"
        )
    return answer(request, found, caller=who)


LOCATIONS = Module(
    identifier=ModuleId.LOCATIONS,
    role=InterfaceRole.SENDER,
    path=PATH,
    handlers=(list_locations, get_location, get_evse, get_connector),
)
