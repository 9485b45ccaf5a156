"""`GET /public/v1/recommendations?lat&lon&radius_km&min_kw&limit`: for EV owners' apps, the nearby charging sites
worth driving to now, best first, so demand spreads to under-used stations (ampgate.availability; the score is in
docs/architecture.md, "Utilization balancing").

No authentication: what it shows is what a site's operator chose to publish (only sites opted in with
`public_recommendations`, and only their name, location, free and total connectors, headroom, recent occupancy
and score: no charger ids, no node internals). Rate-limited per client address by a token bucket: 429
`too_many_requests` with Retry-After. The limit is checked before the query, so malformed requests count too.
Query values are parsed here rather than by the framework so that every bad value is a 422 naming its field.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Protocol, runtime_checkable

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency

from ampgate.availability.service import Recommendation
from ampgate.errors import ValidationError
from ampgate.public.app import PublicOperation, error_responses, number_query

PATH = "/public/v1/recommendations"
# Search radius when none is named (a few minutes' drive in town), and the most: a detour on a long trip; past
# that, "nearby" no longer means anything and the answer would be most of a country.
DEFAULT_RADIUS_KM = 10.0
MAX_RADIUS_KM = 300.0
# Sites per answer: a screenful by default; more is a scrape.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# No site offers more than a few MW: a larger min_kw is a unit mistake (W for kW).
MAX_MIN_KW = 10_000.0


@runtime_checkable
class Recommender(Protocol):
    """`ampgate.availability.public.PublicRecommendations`."""

    def admit(self, address: str, /) -> None: ...
    def recommend(
        self, lat: float, lon: float, radius_km: float, min_kw: float | None, limit: int, /
    ) -> list[Recommendation]: ...


class PublicLocation(msgspec.Struct, kw_only=True):
    lat: float
    lon: float
    address: str | None
    city: str | None
    postal_code: str | None
    country: str | None


class RecommendedSite(msgspec.Struct, kw_only=True):
    """A site worth going to: how far (km, great circle), how many connectors are free of how many, the power
    it can still give (kW; null: unknown), how used it was lately (0 to 1; null: unknown) and its score (0 to 1,
    higher is better; 0: no free connector)."""

    site_id: str
    name: str | None
    location: PublicLocation
    distance_km: float
    connectors_free: int
    connectors_total: int
    headroom_kw: float | None
    occupancy_recent: float | None
    score: float


class RecommendationList(msgspec.Struct, kw_only=True):
    """Best first. One page: a ranking is a snapshot, so there is no cursor (`next_cursor` is always null)."""

    items: list[RecommendedSite]
    next_cursor: None = None


def query_number(
    text: str | None, field: str, low: float, high: float, default: float | None = None
) -> float | None:
    """A query value as a number in [low, high] (`default` when absent). Raises ValidationError naming `field`;
    the public routes' one parser, so every bad value reads alike."""
    if text is None:
        if default is None:
            return None
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(f"{field} must be a number from {low:g} to {high:g}", field=field) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ValidationError(f"{field} must be a number from {low:g} to {high:g}, got {text}", field=field)
    return value


def _required(text: str | None, field: str, low: float, high: float) -> float:
    if text is None:
        raise ValidationError(f"{field} is required", field=field)
    value = query_number(text, field, low, high)
    assert value is not None
    return value


def _view(r: Recommendation) -> RecommendedSite:
    loc = r.site.location
    assert loc is not None  # only sites with a location are recommended
    return RecommendedSite(
        site_id=r.site.id,
        name=r.site.name,
        location=PublicLocation(
            lat=loc.lat,
            lon=loc.lon,
            address=loc.address,
            city=loc.city,
            postal_code=loc.postal_code,
            country=loc.country,
        ),
        distance_km=round(r.distance_km, 3),
        connectors_free=r.counts.free,
        connectors_total=r.counts.total,
        headroom_kw=None if r.headroom_kw is None else round(r.headroom_kw, 1),
        occupancy_recent=None if r.occupancy_recent is None else round(r.occupancy_recent, 4),
        score=round(r.score, 4),
    )


@get(
    PATH,
    operation_id="public_recommendations",
    operation_class=PublicOperation,
    responses=error_responses(
        {422: "A bad or missing query value; `field` names lat, lon, radius_km, min_kw or limit"}
    ),
    summary="Nearby charging sites ranked for EV owners' apps (no authentication; rate-limited per client address)",
)
async def recommendations(
    request: Request[Any, Any, Any],
    recommender: NamedDependency[Recommender],
    lat: Annotated[
        str | None, number_query("Latitude, WGS 84 degrees (-90 to 90)", -90, 90, required=True)
    ] = None,
    lon: Annotated[
        str | None, number_query("Longitude, WGS 84 degrees (-180 to 180)", -180, 180, required=True)
    ] = None,
    radius_km: Annotated[
        str | None,
        number_query(
            "Search radius in km (default 10, more than 0, at most 300)", 0, MAX_RADIUS_KM, above=True
        ),
    ] = None,
    min_kw: Annotated[
        str | None, number_query("Only sites with at least this headroom (kW)", 0, MAX_MIN_KW)
    ] = None,
    limit: Annotated[
        str | None, number_query("Sites in the answer, 1 to 100 (default 20)", 1, MAX_LIMIT, integer=True)
    ] = None,
) -> RecommendationList:
    """The opted-in sites within radius_km of (lat, lon), best score first. 422 naming lat, lon, radius_km,
    min_kw or limit; 429 `too_many_requests` with Retry-After."""
    recommender.admit(request.client.host if request.client else "unknown")
    where_lat = _required(lat, "lat", -90.0, 90.0)
    where_lon = _required(lon, "lon", -180.0, 180.0)
    radius = query_number(radius_km, "radius_km", 0.0, MAX_RADIUS_KM, DEFAULT_RADIUS_KM)
    assert radius is not None
    if radius <= 0:
        raise ValidationError(f"radius_km must be more than 0, got {radius_km}", field="radius_km")
    at_least = query_number(min_kw, "min_kw", 0.0, MAX_MIN_KW)
    count = query_number(limit, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
    assert count is not None
    if count != int(count):
        raise ValidationError(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    ranked = recommender.recommend(where_lat, where_lon, radius, at_least, int(count))
    return RecommendationList(items=[_view(r) for r in ranked])
