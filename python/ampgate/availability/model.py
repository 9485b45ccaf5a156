"""What a site's availability is, as values, and the pure rules behind it (unit-tested without I/O): which state
a connector's OCPP status puts it in, the counts per site, the distance between two points on the Earth, and the
score that ranks sites for EV owners' apps.

The score (also in docs/architecture.md, "Utilization balancing"):

    F = free / (free + FREE_HALF)                              free connectors, diminishing: 2 free -> 0.5
    H = headroom_kw / (headroom_kw + HEADROOM_HALF_KW)          power the site can still give; unknown -> 0.5
    U = 1 - occupancy_recent                                   how idle it was lately; unknown -> 0.5
    score = F * (1 + W_IDLE * U + W_HEADROOM * H) / (1 + W_IDLE + W_HEADROOM)

It lies in [0, 1). Free connectors multiply the rest, so a site with none scores 0 and ranks after every site
with one, however idle or strong it was; among sites with free connectors, a site that was less used lately and
has more power to spare ranks higher, which is what moves demand to under-used stations. Unknown headroom or
occupancy count as the middle value: they neither promote nor bury a site.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

# -- connector states ----------------------------------------------------------------------------------------------

FREE = "free"
IN_USE = "in_use"
FAULTED = "faulted"
UNAVAILABLE = "unavailable"
OFFLINE = "offline"
STATES: tuple[str, ...] = (FREE, IN_USE, FAULTED, UNAVAILABLE, OFFLINE)

# A connector's reported status (1.6 ChargePointStatus; 2.0.1 ConnectorStatusEnumType) -> its state. Reserved is
# in use: it is held for someone, so it is neither free to a passer-by nor idle. Unavailable (taken out of
# service, by the operator or the charger) is its own state: not broken, not usable.
_STATE_OF_STATUS: dict[str, str] = {
    "Available": FREE,
    "Preparing": IN_USE,
    "Charging": IN_USE,
    "SuspendedEVSE": IN_USE,
    "SuspendedEV": IN_USE,
    "Finishing": IN_USE,
    "Reserved": IN_USE,
    "Occupied": IN_USE,  # 2.0.1
    "Unavailable": UNAVAILABLE,
    "Faulted": FAULTED,
}


def state_of(status: str, online: bool) -> str:
    """The state of a connector with last reported `status` on a charger that is `online` or not. A connector of
    an offline charger is OFFLINE whatever it last said (nobody can know it is still free); a status no version
    defines counts UNAVAILABLE (never free on a guess)."""
    if not online:
        return OFFLINE
    return _STATE_OF_STATUS.get(status, UNAVAILABLE)


def is_connector(evse_id: int | None, connector_id: int) -> bool:
    """Whether a status row names a connector an EV can use: 1.6 connector 0 is the charge point itself, and
    2.0.1 has no EVSE 0 nor connector 0."""
    return connector_id >= 1 and (evse_id is None or evse_id >= 1)


class Counts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A site's connectors per state."""

    free: int = 0
    in_use: int = 0
    faulted: int = 0
    unavailable: int = 0
    offline: int = 0

    @property
    def total(self) -> int:
        return self.free + self.in_use + self.faulted + self.unavailable + self.offline

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        """The counts in STATES order."""
        return (self.free, self.in_use, self.faulted, self.unavailable, self.offline)


NO_CONNECTORS = Counts()


def count(states: Iterable[str]) -> Counts:
    """The counts of connectors in `states` (each one of STATES)."""
    tally = dict.fromkeys(STATES, 0)
    for s in states:
        tally[s] += 1
    return Counts(**tally)


# -- distance ------------------------------------------------------------------------------------------------------

# The mean radius of the Earth (IUGG), km: the haversine's error against the ellipsoid is under 0.5%, far below
# what matters when choosing a charging station.
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in km between two WGS 84 points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def lat_span_deg(radius_km: float) -> float:
    """How many degrees of latitude `radius_km` spans: a cheap box test before the haversine."""
    return math.degrees(radius_km / EARTH_RADIUS_KM)


# -- the score -----------------------------------------------------------------------------------------------------

# Two free connectors make F = 0.5: a second free connector still matters a lot (someone may take the first on
# the way), a tenth hardly.
FREE_HALF = 2.0
# 22 kW of headroom makes H = 0.5: one 3-phase 32 A AC charge point's worth; a site that can feed a DC charger
# (50 kW and more) scores near the top.
HEADROOM_HALF_KW = 22.0
# Idleness weighs twice headroom: spreading use is the goal, power is what the EV gets once there.
W_IDLE = 1.0
W_HEADROOM = 0.5
UNKNOWN = 0.5


def score(free: int, headroom_kw: float | None, occupancy_recent: float | None) -> float:
    """The ranking score of a site (module docstring): in [0, 1), 0 when no connector is free."""
    if free <= 0:
        return 0.0
    f = free / (free + FREE_HALF)
    h = UNKNOWN if headroom_kw is None else max(0.0, headroom_kw) / (max(0.0, headroom_kw) + HEADROOM_HALF_KW)
    u = UNKNOWN if occupancy_recent is None else 1.0 - min(1.0, max(0.0, occupancy_recent))
    return f * (1.0 + W_IDLE * u + W_HEADROOM * h) / (1.0 + W_IDLE + W_HEADROOM)


def occupancy(in_use_s: float, free_s: float) -> float | None:
    """The mean fraction of in-service connectors in use: in use / (in use + free); None without any in-service
    time (every connector offline, faulted or unavailable all along)."""
    served = in_use_s + free_s
    return None if served <= 0 else in_use_s / served
