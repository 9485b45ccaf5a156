"""Utilization balancing across the network: per site, connectors free / in use / faulted / unavailable / offline
(from the OCPP connector statuses and presence) and the power headroom now, for operators
(GET /api/v1/sites/{id}/availability) and, for EV owners' apps on the public listener, nearby opted-in sites
ranked so demand spreads to under-used stations (GET /public/v1/recommendations); and the occupancy of every
site per hour, kept in its own table for that ranking and for usage reports.

The pure rules (`model`: states, counts, distance, the score; `occupancy`: the meter; `ratelimit`: token
buckets), the table (`repository`) and the live service that follows the bus (`service.Availability`)."""

from ampgate.availability.model import Counts, haversine_km, score
from ampgate.availability.occupancy import OccupancyMeter, OccupancyRow
from ampgate.availability.ratelimit import TokenBuckets
from ampgate.availability.repository import OccupancyRepository
from ampgate.availability.service import (
    Availability,
    ChargerView,
    ConnectorView,
    Recommendation,
    SiteAvailability,
    SiteHeadroom,
    UnknownHeadroom,
)

__all__ = [
    "Availability",
    "ChargerView",
    "ConnectorView",
    "Counts",
    "OccupancyMeter",
    "OccupancyRepository",
    "OccupancyRow",
    "Recommendation",
    "SiteAvailability",
    "SiteHeadroom",
    "TokenBuckets",
    "UnknownHeadroom",
    "haversine_km",
    "score",
]
