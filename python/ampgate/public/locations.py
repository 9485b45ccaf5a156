"""`GET /public/v1/locations?lat&lon&radius_km&available&limit&cursor` and `GET /public/v1/locations/{site_id}`: for
an operator's own app or map, the sites shown to the public with their EVSEs' live status and what charging there
costs now (`ampgate.public.locations_service` says where each part comes from, and what a request costs).

No authentication: a site is shown only when its operator opted it in (`public_recommendations`, the same flag
as the recommendations: one switch for "shown to the public") and it has a location and at least one EVSE. What
is shown is what the site publishes: name, address, coordinates, time zone; each EVSE's eMI3 id (an id printed
on the charger, null when none is known), its OCPI status (the status OCPI pushes) and connectors; the tariff as
the engine's one-line text and the components that apply now. Never a charger id, an EVSE uid (it embeds the
charger id), a tariff id, an EAN or anything else of the node's insides.

Rate-limited per client address by a token bucket of its own (the recommendations' rate): 429
`too_many_requests` with Retry-After, checked before anything else, so malformed requests count too. Query values
are parsed here so that every bad one is a 422 naming its field.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Protocol, runtime_checkable

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIType
from litestar.params import Parameter

from ampgate.api.paging import decode_cursor, encode_cursor
from ampgate.api.responses import NumberResponse
from ampgate.errors import NotFoundError, ValidationError
from ampgate.pricing import Price, Tariff, summary
from ampgate.pricing.current import Conditions, CurrentComponent, CurrentPrices
from ampgate.public.app import PublicOperation, error_responses, number_query
from ampgate.public.locations_service import Key, PricedEvse, SiteListing
from ampgate.public.recommendations import DEFAULT_RADIUS_KM, MAX_RADIUS_KM, PublicLocation, query_number
from ampgate.roaming.types import ConnectorFormat, ConnectorType, EvseStatus, PowerType

PATH = "/public/v1/locations"
# Sites per page: a screenful by default. At most 100 (the conventions' lists allow 1,000) because each site
# carries every EVSE with its prices, and this surface answers anyone: 100 sites is already ~1,000 EVSEs.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Accept-Language entries looked at: a browser sends a handful; more is noise or an attack on the parser.
MAX_LANGUAGES = 10
_UNITS = {"ENERGY": "kWh", "TIME": "h", "PARKING_TIME": "h", "FLAT": "session"}


@runtime_checkable
class Locations(Protocol):
    """`ampgate.public.locations_service.PublicLocations` (runtime-checkable: Litestar checks a dependency's
    type)."""

    def admit(self, address: str, /) -> None: ...
    def page(
        self,
        near: tuple[float, float, float] | None,
        available: bool | None,
        limit: int,
        after: Key | None = None,
        /,
    ) -> tuple[list[SiteListing], Key | None]: ...
    def one(self, site_id: str, /) -> SiteListing | None: ...


# -- the answer ----------------------------------------------------------------------------------------------------


class PublicConnector(msgspec.Struct, kw_only=True):
    """A connector as its charger was described (or defaulted: docs/ocpi.md, "Which EVSEs"): OCPI's standard,
    format and power type, its voltage (V), current (A) and power (W; null: unknown)."""

    connector_id: int
    standard: ConnectorType
    format: ConnectorFormat
    power_type: PowerType
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None


class PriceConditions(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a session must meet for a component to apply (only the bounds the tariff sets): energy so far, power,
    current over all phases, duration so far; `min_*` inclusive, `max_*` exclusive."""

    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_power_kw: Decimal | None = None
    max_power_kw: Decimal | None = None
    min_current_a: Decimal | None = None
    max_current_a: Decimal | None = None
    min_duration_s: int | None = None
    max_duration_s: int | None = None


class PublicPriceComponent(msgspec.Struct, kw_only=True):
    """One price that applies now: per `unit` (kWh; h of charging for TIME, h not charging for PARKING_TIME; a
    FLAT fee once per session), incl and excl VAT (`vat` a percentage, null: none), billed in blocks of
    `step_size` (Wh or s). With `conditions`, only for a session that meets them (the next component of the same
    type applies otherwise). `dynamic`: the site's price signal replaces the tariff's energy price now."""

    type: str
    unit: str
    price_incl_vat: Decimal
    price_excl_vat: Decimal
    vat: Decimal | None
    step_size: int
    conditions: PriceConditions | None
    dynamic: bool


class PublicPriceSignal(msgspec.Struct, kw_only=True):
    """The site's dynamic energy price in force: per kWh excl VAT, over [start_at, end_at)."""

    energy_price: Decimal
    start_at: datetime
    end_at: datetime


class PublicPrice(msgspec.Struct, kw_only=True):
    """What a session starting now costs an anonymous driver (the tariff billing would give it). `summary` is
    the tariff's line as chargers display it (incl VAT), in `language` (the first of Accept-Language the tariff
    has its own text in; null: English, the generated line only). `components` apply now, in the order FLAT,
    ENERGY, TIME, PARKING_TIME (a type absent is free now). `min_price` / `max_price` bound a session's total
    (incl VAT where the tariff says)."""

    currency: str
    summary: str
    language: str | None
    components: list[PublicPriceComponent]
    min_price: Decimal | None
    max_price: Decimal | None
    price_signal: PublicPriceSignal | None


class PublicEvse(msgspec.Struct, kw_only=True):
    """An EVSE: its eMI3 id (null when none is known), its OCPI status (AVAILABLE, CHARGING, RESERVED,
    INOPERATIVE, OUTOFORDER, UNKNOWN: docs/ocpi.md's table, as OCPI pushes it), its connectors, its price now
    (null: no tariff applies, the node prices nothing there) and when its status or description last changed."""

    evse_id: str | None
    status: EvseStatus
    connectors: list[PublicConnector]
    price: PublicPrice | None
    updated_at: datetime


class PublicSite(msgspec.Struct, kw_only=True):
    """A site shown to the public: how far from the point asked about (km, great circle; null without one), how
    many of its EVSEs are AVAILABLE of how many, each EVSE, and when anything of it last changed."""

    site_id: str
    name: str | None
    location: PublicLocation
    time_zone: str
    distance_km: float | None
    evses_available: int
    evses_total: int
    evses: list[PublicEvse]
    updated_at: datetime


class PublicSiteList(msgspec.Struct, kw_only=True):
    """Nearest first when lat and lon are given, else by site id; `next_cursor` null on the last page."""

    items: list[PublicSite]
    next_cursor: str | None


# -- views -----------------------------------------------------------------------------------------------------------


def languages(header: str | None) -> list[str]:
    """The primary language subtags of an Accept-Language header (RFC 9110 12.5.4), most wanted first (by q,
    then by order), lower-case; '*', q=0 and malformed entries left out."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:MAX_LANGUAGES]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().split("-")[0].lower()
        if not primary.isalpha() or not 1 <= len(primary) <= 8:
            continue
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, i, primary))
    seen: list[str] = []
    for _, _, primary in sorted(ranked):
        if primary not in seen:
            seen.append(primary)
    return seen


def _language(tariff: Tariff, wanted: list[str]) -> str | None:
    own = {t.language.lower() for t in tariff.tariff_alt_text}
    return next((lang for lang in wanted if lang in own), None)


def _bound(p: Price | None) -> Decimal | None:
    if p is None:
        return None
    return p.incl_vat if p.incl_vat is not None else p.excl_vat


def _conditions(c: Conditions | None) -> PriceConditions | None:
    if c is None:
        return None
    return PriceConditions(
        min_kwh=c.min_kwh,
        max_kwh=c.max_kwh,
        min_power_kw=c.min_power,
        max_power_kw=c.max_power,
        min_current_a=c.min_current,
        max_current_a=c.max_current,
        min_duration_s=c.min_duration,
        max_duration_s=c.max_duration,
    )


def _component(c: CurrentComponent) -> PublicPriceComponent:
    return PublicPriceComponent(
        type=c.type,
        unit=_UNITS[c.type],
        price_incl_vat=c.price_incl_vat,
        price_excl_vat=c.price,
        vat=c.vat,
        step_size=c.step_size,
        conditions=_conditions(c.conditions),
        dynamic=c.dynamic,
    )


def _price(tariff: Tariff, prices: CurrentPrices, wanted: list[str]) -> PublicPrice:
    language = _language(tariff, wanted)
    signal = prices.signal
    return PublicPrice(
        currency=prices.currency,
        summary=summary(tariff, language=language),
        language=language,
        components=[_component(c) for c in prices.components],
        min_price=_bound(prices.min_price),
        max_price=_bound(prices.max_price),
        price_signal=None
        if signal is None
        else PublicPriceSignal(energy_price=signal.energy_price, start_at=signal.start, end_at=signal.end),
    )


def _evse(p: PricedEvse, price: PublicPrice | None) -> PublicEvse:
    e = p.evse
    return PublicEvse(
        evse_id=e.evse_id,
        status=e.status,
        connectors=[
            PublicConnector(
                connector_id=int(c.id),
                standard=c.standard,
                format=c.format,
                power_type=c.power_type,
                max_voltage=c.max_voltage,
                max_amperage=c.max_amperage,
                max_electric_power=c.max_electric_power,
            )
            for c in e.connectors
        ],
        price=price,
        updated_at=e.last_updated,
    )


def view(listing: SiteListing, wanted: list[str]) -> PublicSite:
    """A site as the public sees it (see the module docstring for what is left out)."""
    site = listing.site
    loc = site.location
    assert loc is not None  # only located sites are shown
    # One price object per tariff: a site's EVSEs mostly share one.
    prices: dict[str, PublicPrice] = {}
    evses = []
    for p in listing.evses:
        price = None
        if p.tariff is not None and p.prices is not None:
            price = prices.get(p.tariff.id)
            if price is None:
                price = prices[p.tariff.id] = _price(p.tariff, p.prices, wanted)
        evses.append(_evse(p, price))
    return PublicSite(
        site_id=site.id,
        name=site.name,
        location=PublicLocation(
            lat=loc.lat,
            lon=loc.lon,
            address=loc.address,
            city=loc.city,
            postal_code=loc.postal_code,
            country=loc.country,
        ),
        time_zone=site.time_zone,
        distance_km=None if listing.distance_km is None else round(listing.distance_km, 3),
        evses_available=listing.available,
        evses_total=len(evses),
        evses=evses,
        updated_at=max([site.updated_at, *(e.updated_at for e in evses)]),
    )


# -- cursors ---------------------------------------------------------------------------------------------------------


def _cursor(key: Key) -> str:
    return encode_cursor(json.dumps([key[0], key[1]]))


def _check_key(text: str) -> None:
    value = json.loads(text)
    if not (
        isinstance(value, list)
        and len(value) == 2
        and (value[0] is None or isinstance(value[0], int | float))
        and isinstance(value[1], str)
    ):
        raise ValueError("not a page key")


def _key(cursor: str | None, near: bool) -> Key | None:
    if cursor is None:
        return None
    d, site_id = json.loads(decode_cursor(cursor, _check_key))
    if (d is None) == near:
        raise ValidationError(
            "cursor is from a query " + ("without" if near else "with") + " lat and lon", field="cursor"
        )
    return (None if d is None else float(d), site_id)


def _flag(text: str | None, field: str) -> bool | None:
    if text is None:
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise ValidationError(f"{field} must be true or false", field=field)


# -- routes ----------------------------------------------------------------------------------------------------------


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


@get(
    PATH,
    operation_id="public_locations",
    operation_class=PublicOperation,
    responses=error_responses(
        {422: "A bad query value; `field` names lat, lon, radius_km, available, limit or cursor"}
    ),
    response_class=NumberResponse,
    summary="Sites shown to the public with their EVSEs' live status and current prices (no authentication; "
    "rate-limited per client address)",
)
async def list_public_locations(
    request: Request[Any, Any, Any],
    public_locations: NamedDependency[Locations],
    lat: Annotated[
        str | None, number_query("Latitude, WGS 84 degrees (-90 to 90); with lon", -90, 90)
    ] = None,
    lon: Annotated[
        str | None, number_query("Longitude, WGS 84 degrees (-180 to 180); with lat", -180, 180)
    ] = None,
    radius_km: Annotated[
        str | None,
        number_query(
            "With lat and lon: the radius in km (default 10, more than 0, at most 300)",
            0,
            MAX_RADIUS_KM,
            above=True,
        ),
    ] = None,
    available: Annotated[
        str | None,
        Parameter(
            description="true: only sites with an AVAILABLE EVSE; false: only sites without (any case)",
            schema_extra={"one_of": None, "type": OpenAPIType.STRING, "enum": ["true", "false"]},
        ),
    ] = None,
    limit: Annotated[
        str | None, number_query("Sites per page, 1 to 100 (default 20)", 1, MAX_LIMIT, integer=True)
    ] = None,
    cursor: Annotated[
        str | None, Parameter(description="`next_cursor` of the previous page; omit for the first")
    ] = None,
) -> PublicSiteList:
    """The opted-in sites, nearest first within radius_km of (lat, lon) when given, else by id. 422 naming lat,
    lon, radius_km, available, limit or cursor; 429 `too_many_requests` with Retry-After."""
    public_locations.admit(_address(request))
    where_lat = query_number(lat, "lat", -90.0, 90.0)
    where_lon = query_number(lon, "lon", -180.0, 180.0)
    if (where_lat is None) != (where_lon is None):
        missing = "lon" if where_lon is None else "lat"
        raise ValidationError(
            f"{missing} is required with {'lat' if missing == 'lon' else 'lon'}", field=missing
        )
    near = None
    if where_lat is not None and where_lon is not None:
        radius = query_number(radius_km, "radius_km", 0.0, MAX_RADIUS_KM, DEFAULT_RADIUS_KM)
        assert radius is not None
        if radius <= 0:
            raise ValidationError(f"radius_km must be more than 0, got {radius_km}", field="radius_km")
        near = (where_lat, where_lon, radius)
    elif radius_km is not None:
        raise ValidationError("radius_km needs lat and lon", field="radius_km")
    only = _flag(available, "available")
    count = query_number(limit, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
    assert count is not None
    if count != int(count):
        raise ValidationError(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    after = _key(cursor, near is not None)
    page, last = public_locations.page(near, only, int(count), after)
    wanted = languages(request.headers.get("accept-language"))
    return PublicSiteList(
        items=[view(s, wanted) for s in page], next_cursor=None if last is None else _cursor(last)
    )


@get(
    PATH + "/{site_id:str}",
    operation_id="public_location",
    operation_class=PublicOperation,
    responses=error_responses(
        {404: "The site is not shown to the public, or there is none (`field`: site_id)"}
    ),
    response_class=NumberResponse,
    summary="One site shown to the public, with its EVSEs' live status and current prices (no authentication; "
    "rate-limited per client address)",
)
async def get_public_location(
    request: Request[Any, Any, Any],
    public_locations: NamedDependency[Locations],
    site_id: Annotated[str, Parameter(description="The site's id")],
) -> PublicSite:
    """The site as in the list (distance_km null). 404 `not_found` (field site_id) when it is not shown: not
    opted in, no location, no EVSE, or no such site (which of them is not told); 429 as the list."""
    public_locations.admit(_address(request))
    found = public_locations.one(site_id)
    if found is None:
        raise NotFoundError("no public location has this id", field="site_id")
    return view(found, languages(request.headers.get("accept-language")))
