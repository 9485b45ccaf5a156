"""The topology's values and their rules, without I/O: every check raises ValidationError naming the JSON field at
fault, the phase wirings map to site phases as OCPP's rotation notation says, and the cycle test."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from ampgate.errors import ValidationError
from ampgate.load import model
from ampgate.load.model import Location, NodeSpec, PlacementSpec, SiteSpec

# A grid connection EAN with a right check digit (GS1: weights 3, 1, 3, … from the right).
EAN = "87168712000000000" + str(model.gs1_check_digit("87168712000000000"))


def field_of(fn: Any, *args: Any) -> str | None:
    with pytest.raises(ValidationError) as e:
        fn(*args)
    assert e.value.code == "invalid_field" and e.value.status_hint == 422
    return e.value.field


def site(**kw: Any) -> SiteSpec:
    return SiteSpec(**{"id": "AMS-01", "phase_limits_a": (40, 40, 40), **kw})


def test_a_valid_site_comes_back_with_floats_and_defaults() -> None:
    s = model.validate_site(site(limit_kw=50, ean=EAN, location=Location(lat=52.37, lon=4.9, country="NLD")))
    assert s.phase_limits_a == (40.0, 40.0, 40.0) and all(isinstance(v, float) for v in s.phase_limits_a)
    assert (s.limit_kw, s.voltage_v, s.time_zone) == (50.0, 230.0, "UTC")
    assert s.public_recommendations is False


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": "a/b"}, "id"),
        ({"id": "x" * 37}, "id"),
        ({"name": ""}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"phase_limits_a": (40, -1, 40)}, "phase_limits_a"),
        ({"phase_limits_a": (40, 40)}, "phase_limits_a"),
        ({"phase_limits_a": (40, 40, 40, 40)}, "phase_limits_a"),
        ({"phase_limits_a": (40, math.inf, 40)}, "phase_limits_a"),
        ({"phase_limits_a": (40, math.nan, 40)}, "phase_limits_a"),
        ({"phase_limits_a": (True, 40, 40)}, "phase_limits_a"),
        ({"limit_kw": -0.5}, "limit_kw"),
        ({"voltage_v": 0}, "voltage_v"),
        ({"voltage_v": 11_000}, "voltage_v"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"time_zone": "../etc/passwd"}, "time_zone"),
        ({"ean": "123"}, "ean"),
        ({"ean": EAN[:-1] + str((int(EAN[-1]) + 1) % 10)}, "ean"),
        ({"location": Location(lat=91, lon=0)}, "location.lat"),
        ({"location": Location(lat=0, lon=-180.5)}, "location.lon"),
        ({"location": Location(lat=0, lon=0, country="NL")}, "location.country"),
        ({"location": Location(lat=0, lon=0, postal_code="12345678901")}, "location.postal_code"),
        ({"location": Location(lat=0, lon=0, address="x" * 46)}, "location.address"),
        ({"location": Location(lat=0, lon=0, city="")}, "location.city"),
        ({"public_recommendations": 1}, "public_recommendations"),
    ],
)
def test_a_bad_site_value_names_its_field(changes: dict[str, Any], field: str) -> None:
    assert field_of(model.validate_site, site(**changes)) == field


def test_the_error_says_which_phase() -> None:
    with pytest.raises(ValidationError, match="L2 limit"):
        model.validate_phase_limits([40, -5, 40])


def test_zero_and_null_limits_are_allowed() -> None:
    assert model.validate_phase_limits([None, 0, 16.5]) == (None, 0.0, 16.5)
    assert model.validate_limit_kw(0) == 0.0 and model.validate_limit_kw(None) is None


def test_a_node_needs_a_parent_that_is_an_id_and_not_itself() -> None:
    ok = model.validate_node(NodeSpec(id="F1", parent_id="AMS-01", phase_limits_a=(63, None, 63)))
    assert ok.phase_limits_a == (63.0, None, 63.0)
    assert field_of(model.validate_node, NodeSpec(id="F1", parent_id="F1")) == "parent_id"
    assert field_of(model.validate_node, NodeSpec(id="F1", parent_id="")) == "parent_id"
    assert field_of(model.validate_node, NodeSpec(id="F1", parent_id="S", limit_kw=-1)) == "limit_kw"


@pytest.mark.parametrize("phases", ["L1", "L2", "L3", "L1L2L3", "RST", "RTS", "SRT", "STR", "TRS", "TSR"])
def test_every_wiring_is_accepted(phases: str) -> None:
    assert model.validate_placement(PlacementSpec(node_id="F1", phases=phases, max_a=16)).phases == phases


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"phases": "L4"}, "phases"),
        ({"phases": "l1"}, "phases"),
        ({"phases": "L1L2"}, "phases"),
        ({"phases": "RRS"}, "phases"),
        ({"phases": ""}, "phases"),
        ({"max_a": 0}, "max_a"),
        ({"max_a": -16}, "max_a"),
        ({"max_a": math.inf}, "max_a"),
        ({"priority": 2**31}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"priority": True}, "priority"),
        ({"weight": 0}, "weight"),
        ({"weight": -1}, "weight"),
        ({"node_id": "a b"}, "node_id"),
    ],
)
def test_a_bad_placement_names_its_field(spec: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {"node_id": "F1", "phases": "L1", "max_a": 16}
    assert field_of(model.validate_placement, PlacementSpec(**{**base, **spec})) == field


def test_placement_defaults() -> None:
    p = model.validate_placement(PlacementSpec(node_id="F1", phases="L2", max_a=32))
    assert (p.priority, p.weight, p.max_a) == (0, 1.0, 32.0)


def test_wirings_follow_ocpps_rotation_notation() -> None:
    # The i-th letter is the site phase (R, S, T = L1, L2, L3) of the charger's phase i.
    letters = {"R": 0, "S": 1, "T": 2}
    for rotation, mapping in model.ROTATIONS.items():
        assert mapping == tuple(letters[c] for c in rotation)
    assert model.WIRINGS["L1L2L3"] == model.WIRINGS["RST"] == (0, 1, 2)
    assert model.WIRINGS["STR"] == (1, 2, 0)  # charger L1 on site L2, L2 on L3, L3 on L1
    assert (model.WIRINGS["L1"], model.WIRINGS["L2"], model.WIRINGS["L3"]) == ((0,), (1,), (2,))


def test_changes_are_checked_and_fields_that_cannot_change_are_named() -> None:
    out = model.validate_changes({"phase_limits_a": [1, 2, None], "name": None}, model.SITE_CHANGES)
    assert out == {"phase_limits_a": (1.0, 2.0, None), "name": None}
    assert field_of(model.validate_changes, {"id": "X"}, model.SITE_CHANGES) == "id"
    assert field_of(model.validate_changes, {"phase_limits_a": None}, model.SITE_CHANGES) == "phase_limits_a"
    assert field_of(model.validate_changes, {"voltage_v": -230}, model.SITE_CHANGES) == "voltage_v"
    # A node's per-phase limits may be cleared.
    assert model.validate_changes({"phase_limits_a": None}, model.NODE_CHANGES) == {
        "phase_limits_a": (None, None, None)
    }
    assert field_of(model.validate_changes, {"site_id": "B"}, model.NODE_CHANGES) == "site_id"


def test_would_cycle() -> None:
    # site ─ A ─ B ─ C, and D under the site
    parent_of: dict[str, str | None] = {"A": None, "B": "A", "C": "B", "D": None}
    assert model.would_cycle(parent_of, "A", "C")  # under its grandchild
    assert model.would_cycle(parent_of, "A", "A")
    assert model.would_cycle(parent_of, "B", "C")
    assert not model.would_cycle(parent_of, "C", "A")  # up the tree
    assert not model.would_cycle(parent_of, "A", "D")  # beside it
    assert not model.would_cycle(parent_of, "C", None)  # under the site
    # A cycle already stored elsewhere ends the walk rather than loop.
    assert model.would_cycle({"X": "Y", "Y": "X", "A": None}, "A", "X")


def test_specs_are_frozen_values() -> None:
    s = site()
    with pytest.raises(AttributeError):
        s.id = "other"  # type: ignore[misc]
    assert msgspec.structs.replace(s, name="Amsterdam").name == "Amsterdam"
