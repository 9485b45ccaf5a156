"""What a site's topology is, as values, and the rules its values obey, without I/O (unit-tested on their own).

A site is the root of a tree of capacity nodes: its own limits are the grid connection's; below it any depth of
nodes (transformer, feeder, panel, …), each with optional limits; chargers are placed under a node or directly
under the site. Every limit is optional per phase (A) and as a total (kW); a node with no limit passes on what
its parent allows. A child may have a larger limit than its parent (a 63 A sub-panel on a 40 A feeder): that is
allowed, because the parent's own limit still bounds everything below it.

Ids of sites and capacity nodes are one namespace: a placement names its node by id alone, and may name the site
itself (`node_id` = the site's id) to hang a charger directly under the grid connection.

Every check here raises `ValidationError` naming the JSON field at fault; the checks that need the stored rows
(an unknown parent, a cycle, a duplicate id) are in `repository`, inside the one write that would apply them.
"""

from __future__ import annotations

import functools
import math
import re
import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from ampgate.errors import ValidationError

# -- the words ---------------------------------------------------------------------------------------------------

PHASES: tuple[str, ...] = ("L1", "L2", "L3")
# OCPP's phase rotations (1.6 ConnectorPhaseRotation, 2.0.1 PhaseRotation): R, S, T are the site's L1, L2, L3,
# and the i-th letter is the site phase the charger's phase i is wired to.
ROTATIONS: dict[str, tuple[int, int, int]] = {
    "RST": (0, 1, 2),  # standard reference phasing
    "RTS": (0, 2, 1),
    "SRT": (1, 0, 2),
    "STR": (1, 2, 0),
    "TRS": (2, 0, 1),
    "TSR": (2, 1, 0),
}
# Every `phases` value a placement may have, and the site phases (0 = L1) the charger's phases 1[, 2, 3] use.
WIRINGS: dict[str, tuple[int, ...]] = {
    "L1": (0,),
    "L2": (1,),
    "L3": (2,),
    "L1L2L3": ROTATIONS["RST"],
    **ROTATIONS,
}

# -- bounds, and why ---------------------------------------------------------------------------------------------

# Site and node ids: URL-unreserved characters, so an id is its own path segment without escaping, and at most
# 36 of them, the length of an OCPI 2.2.1 Location.id (roaming publishes sites as locations).
ID_MAX = 36
_ID = re.compile(rf"[A-Za-z0-9._~-]{{1,{ID_MAX}}}")
# Names and the address follow OCPI 2.2.1 Location's lengths (name 255, address 45, city 45, postal_code 10),
# so whatever an operator enters can be published as it is.
NAME_MAX = 255
ADDRESS_MAX = 45
CITY_MAX = 45
POSTAL_CODE_MAX = 10
# ISO 3166-1 alpha-3, as OCPI's Location.country.
_COUNTRY = re.compile(r"[A-Z]{3}")
# A grid connection's EAN is a GS1 GSRN: 18 digits, the last a check digit (NL, BE: "EAN-code").
_EAN = re.compile(r"[0-9]{18}")
# Nominal line-to-neutral voltage: 230 V in Europe; 120, 230, 240 and 277 V elsewhere. Above 1000 V is not a
# low-voltage installation chargers hang on, so it is a typo (line-to-line kV, or mV).
DEFAULT_VOLTAGE_V = 230.0
MAX_VOLTAGE_V = 1000.0
DEFAULT_TIME_ZONE = "UTC"
# Priority is a 32-bit integer in the allocator (rust/alloc).
PRIORITY_MIN = -(2**31)
PRIORITY_MAX = 2**31 - 1
DEFAULT_PRIORITY = 0
DEFAULT_WEIGHT = 1.0

PhaseLimits = tuple[float | None, float | None, float | None]
NO_PHASE_LIMITS: PhaseLimits = (None, None, None)

# -- values ------------------------------------------------------------------------------------------------------


class Location(msgspec.Struct, frozen=True, kw_only=True):
    """Where a site is (roaming publishes it; WGS 84 degrees)."""

    lat: float
    lon: float
    address: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-3


class SiteSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A site to create. `phase_limits_a` are the grid connection's per-phase limits (None: none on that
    phase); `limit_kw` its total; `time_zone` an IANA zone (maintenance windows and roaming use it)."""

    id: str
    name: str | None = None
    phase_limits_a: PhaseLimits = NO_PHASE_LIMITS
    limit_kw: float | None = None
    voltage_v: float = DEFAULT_VOLTAGE_V
    time_zone: str = DEFAULT_TIME_ZONE
    location: Location | None = None
    ean: str | None = None
    # Whether EV owners' apps may be pointed here (GET /public/v1/recommendations): off until the operator opts
    # the site in, since the public surface then tells anyone how busy it is.
    public_recommendations: bool = False
    # Whether OCPI publishes the site as a Location to the eMSPs (GET, pushes): on by default, since roaming is
    # why a site gets an address; off for a private site (a depot, a home), which OCPI says must not be
    # published. Distinct from public_recommendations: a site can roam without being on the public map.
    ocpi_publish: bool = True


class NodeSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A capacity node to create in a site: `parent_id` is the site's id or another node of the same site."""

    id: str
    parent_id: str
    name: str | None = None
    phase_limits_a: PhaseLimits = NO_PHASE_LIMITS
    limit_kw: float | None = None


class PlacementSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Where a charger hangs and how: `node_id` a capacity node or a site (directly under its grid connection),
    `phases` one of WIRINGS, `max_a` the most it draws per phase, `priority` (higher goes first) and `weight`
    (its share among equals)."""

    node_id: str
    phases: str
    max_a: float
    priority: int = DEFAULT_PRIORITY
    weight: float = DEFAULT_WEIGHT


class SiteRow(msgspec.Struct, frozen=True, kw_only=True):
    """A site as stored."""

    id: str
    name: str | None
    phase_limits_a: PhaseLimits
    limit_kw: float | None
    voltage_v: float
    time_zone: str
    location: Location | None
    ean: str | None
    created_at: datetime
    updated_at: datetime
    # Defaults so code that builds rows by hand (tests, the allocator's fixtures) need not name them.
    public_recommendations: bool = False
    ocpi_publish: bool = True


class NodeRow(msgspec.Struct, frozen=True, kw_only=True):
    """A capacity node as stored: `parent_id` None means directly under its site."""

    id: str
    site_id: str
    parent_id: str | None
    name: str | None
    phase_limits_a: PhaseLimits
    limit_kw: float | None
    created_at: datetime
    updated_at: datetime

    @property
    def parent(self) -> str:
        """The parent as the API names it: a node's id, or the site's id."""
        return self.parent_id or self.site_id


class PlacementRow(msgspec.Struct, frozen=True, kw_only=True):
    """A charger's place in a site: `node_id` None means directly under the site."""

    charger_id: str
    site_id: str
    node_id: str | None
    phases: str
    max_a: float
    priority: int
    weight: float
    created_at: datetime
    updated_at: datetime

    @property
    def node(self) -> str:
        """The node as the API names it: a node's id, or the site's id."""
        return self.node_id or self.site_id


# -- checks ------------------------------------------------------------------------------------------------------


def validate_id(value: Any, field: str = "id") -> str:
    """`value` if it is 1 to 36 of A–Z a–z 0–9 . _ ~ -, else ValidationError naming `field`."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValidationError(
            f"an id is 1 to {ID_MAX} characters of A-Z, a-z, 0-9, '.', '_', '~', '-'", field=field
        )
    return value


def _text(value: Any, field: str, max_len: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_len:
        raise ValidationError(f"{field} is 1 to {max_len} characters", field=field)
    if not value.isprintable():
        raise ValidationError(f"{field} is printable characters only", field=field)
    return value


def validate_name(value: Any) -> str | None:
    return _text(value, "name", NAME_MAX)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def validate_phase_limits(value: Any) -> PhaseLimits:
    """Three per-phase limits in A (L1, L2, L3), each None (no limit on that phase) or a finite number >= 0.
    Raises ValidationError naming `phase_limits_a` and the phase at fault."""
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValidationError(
            "phase_limits_a is three limits in A, [L1, L2, L3], each a number >= 0 or null",
            field="phase_limits_a",
        )
    out: list[float | None] = []
    for phase, item in zip(PHASES, value, strict=True):
        if item is None:
            out.append(None)
            continue
        number = _number(item)
        if number is None or not math.isfinite(number) or number < 0:
            raise ValidationError(
                f"the {phase} limit must be a number >= 0 A or null, got {item!r}", field="phase_limits_a"
            )
        out.append(number)
    return (out[0], out[1], out[2])


def validate_limit_kw(value: Any) -> float | None:
    """None (no total limit) or a finite number of kW >= 0; else ValidationError naming `limit_kw`."""
    if value is None:
        return None
    number = _number(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise ValidationError(f"limit_kw must be a number >= 0 or null, got {value!r}", field="limit_kw")
    return number


def validate_voltage(value: Any) -> float:
    """The nominal line-to-neutral voltage: > 0 and <= 1000 V; else ValidationError naming `voltage_v`."""
    number = _number(value)
    if number is None or not math.isfinite(number) or not 0 < number <= MAX_VOLTAGE_V:
        raise ValidationError(
            f"voltage_v is the nominal line-to-neutral voltage, > 0 and <= {MAX_VOLTAGE_V:g} V, got {value!r}",
            field="voltage_v",
        )
    return number


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: Any) -> str:
    """An IANA time zone name ("Europe/Amsterdam", "UTC"); else ValidationError naming `time_zone`."""
    if not isinstance(value, str) or value not in _time_zones():
        raise ValidationError(
            f"time_zone must be an IANA time zone such as Europe/Amsterdam, got {value!r}", field="time_zone"
        )
    return value


def validate_ean(value: Any) -> str | None:
    """None, or a grid connection's EAN: 18 digits whose last is the GS1 check digit; else ValidationError
    naming `ean`."""
    if value is None:
        return None
    if not isinstance(value, str) or not _EAN.fullmatch(value):
        raise ValidationError("ean is the grid connection's 18-digit EAN code", field="ean")
    if gs1_check_digit(value[:-1]) != int(value[-1]):
        raise ValidationError(f"ean {value} has a wrong check digit (the last digit)", field="ean")
    return value


def gs1_check_digit(digits: str) -> int:
    """The GS1 check digit of `digits` (the code without it): weights 3, 1, 3, … from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def validate_location(value: Location | None) -> Location | None:
    """None, or a location with lat in [-90, 90], lon in [-180, 180], texts within OCPI's lengths and an ISO
    3166-1 alpha-3 country; else ValidationError naming `location.<field>`."""
    if value is None:
        return None
    for key, bound in (("lat", 90.0), ("lon", 180.0)):
        number = _number(getattr(value, key))
        if number is None or not math.isfinite(number) or not -bound <= number <= bound:
            raise ValidationError(
                f"location.{key} must be between -{bound:g} and {bound:g}", field=f"location.{key}"
            )
    _text(value.address, "location.address", ADDRESS_MAX)
    _text(value.city, "location.city", CITY_MAX)
    _text(value.postal_code, "location.postal_code", POSTAL_CODE_MAX)
    if value.country is not None and not (
        isinstance(value.country, str) and _COUNTRY.fullmatch(value.country)
    ):
        raise ValidationError(
            "location.country is an ISO 3166-1 alpha-3 code in capitals, e.g. NLD", field="location.country"
        )
    return value


def validate_flag(value: Any, field: str) -> bool:
    """`value` if it is true or false (not 0, 1 or a string); else ValidationError naming `field`."""
    if not isinstance(value, bool):
        raise ValidationError(f"{field} is true or false, got {value!r}", field=field)
    return value


def validate_phases(value: Any) -> str:
    """One of L1, L2, L3 (a one-phase charger on that site phase), L1L2L3 (three phases, standard) or a
    rotation (RST, RTS, SRT, STR, TRS, TSR); else ValidationError naming `phases`."""
    if not isinstance(value, str) or value not in WIRINGS:
        raise ValidationError(
            f"phases must be one of {', '.join(WIRINGS)}, got {value!r}",
            field="phases",
        )
    return value


def validate_site(spec: SiteSpec) -> SiteSpec:
    """`spec` if every field is valid (numbers as floats); else ValidationError naming the first field at
    fault."""
    validate_id(spec.id)
    validate_name(spec.name)
    phase_limits_a = validate_phase_limits(spec.phase_limits_a)
    limit_kw = validate_limit_kw(spec.limit_kw)
    voltage_v = validate_voltage(spec.voltage_v)
    validate_time_zone(spec.time_zone)
    validate_location(spec.location)
    validate_ean(spec.ean)
    validate_flag(spec.public_recommendations, "public_recommendations")
    validate_flag(spec.ocpi_publish, "ocpi_publish")
    return msgspec.structs.replace(
        spec, phase_limits_a=phase_limits_a, limit_kw=limit_kw, voltage_v=voltage_v
    )


def validate_node(spec: NodeSpec) -> NodeSpec:
    """`spec` if every field is valid; else ValidationError naming the first field at fault. Whether the parent
    exists, and is in the same site, is the repository's check."""
    validate_id(spec.id)
    validate_id(spec.parent_id, "parent_id")
    if spec.parent_id == spec.id:
        raise ValidationError(f"node {spec.id} cannot be its own parent", field="parent_id")
    validate_name(spec.name)
    return msgspec.structs.replace(
        spec,
        phase_limits_a=validate_phase_limits(spec.phase_limits_a),
        limit_kw=validate_limit_kw(spec.limit_kw),
    )


def validate_placement(spec: PlacementSpec) -> PlacementSpec:
    """`spec` if every field is valid: `node_id` an id, `phases` one of WIRINGS, `max_a` > 0, `priority` a
    32-bit integer, `weight` > 0. Raises ValidationError naming the field."""
    validate_id(spec.node_id, "node_id")
    validate_phases(spec.phases)
    max_a = _number(spec.max_a)
    if max_a is None or not math.isfinite(max_a) or max_a <= 0:
        raise ValidationError(f"max_a must be a number > 0 A, got {spec.max_a!r}", field="max_a")
    if (
        isinstance(spec.priority, bool)
        or not isinstance(spec.priority, int)
        or not PRIORITY_MIN <= spec.priority <= PRIORITY_MAX
    ):
        raise ValidationError(
            f"priority is an integer from {PRIORITY_MIN} to {PRIORITY_MAX}, got {spec.priority!r}",
            field="priority",
        )
    weight = _number(spec.weight)
    if weight is None or not math.isfinite(weight) or weight <= 0:
        raise ValidationError(f"weight must be a number > 0, got {spec.weight!r}", field="weight")
    return msgspec.structs.replace(spec, max_a=max_a, weight=weight)


# The fields an update may change, and the check of each new value.
SITE_CHANGES = {
    "name": validate_name,
    "phase_limits_a": validate_phase_limits,
    "limit_kw": validate_limit_kw,
    "voltage_v": validate_voltage,
    "time_zone": validate_time_zone,
    "location": validate_location,
    "ean": validate_ean,
    "public_recommendations": lambda v: validate_flag(v, "public_recommendations"),
    "ocpi_publish": lambda v: validate_flag(v, "ocpi_publish"),
}
NODE_CHANGES = {
    "parent_id": lambda v: validate_id(v, "parent_id"),
    "name": validate_name,
    # A node needs no per-phase limit: null clears them (a site's are its grid connection's: never null).
    "phase_limits_a": lambda v: NO_PHASE_LIMITS if v is None else validate_phase_limits(v),
    "limit_kw": validate_limit_kw,
}


def validate_changes(changes: Mapping[str, Any], rules: Mapping[str, Any]) -> dict[str, Any]:
    """The checked (and normalised) `changes` of an update under `rules` (SITE_CHANGES or NODE_CHANGES). Raises
    ValidationError naming a field that cannot change (`id`, …) or the first value at fault."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        check = rules.get(key)
        if check is None:
            raise ValidationError(f"{key} cannot be changed", field=key)
        out[key] = check(value)
    return out


# -- the tree ----------------------------------------------------------------------------------------------------


def would_cycle(parent_of: Mapping[str, str | None], node_id: str, new_parent: str | None) -> bool:
    """Whether making `new_parent` the parent of `node_id` makes `node_id` its own ancestor. `parent_of` maps
    each node of the site to its parent (None: the site); a parent not in it counts as the site. The walk is
    bounded by the number of nodes, so a tree that already has a cycle elsewhere cannot make it loop."""
    at = new_parent
    for _ in range(len(parent_of) + 1):
        if at is None:
            return False
        if at == node_id:
            return True
        at = parent_of.get(at)
    return True  # a cycle above `new_parent` that does not pass through `node_id`
