"""The demand-response rules without I/O: what a valid event is, and the limits events put on nodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ampgate.demand import model
from ampgate.demand.model import EventRow, EventSpec
from ampgate.errors import ValidationError

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def spec(**kw: object) -> EventSpec:
    base: dict[str, object] = {
        "node_id": "site-a",
        "limit_kw": 50.0,
        "starts_at": NOW,
        "ends_at": NOW + timedelta(hours=1),
    }
    base.update(kw)
    return EventSpec(**base)  # type: ignore[arg-type]


def row(**kw: object) -> EventRow:
    base: dict[str, object] = {
        "id": 1,
        "node_id": "site-a",
        "limit_kw": None,
        "reduce_kw": None,
        "reduce_pct": None,
        "starts_at": NOW,
        "ends_at": NOW + timedelta(hours=1),
        "source": "api",
        "ref": None,
        "created_at": NOW,
        "cancelled_at": None,
        "baseline_kw": {},
    }
    base.update(kw)
    return EventRow(**base)  # type: ignore[arg-type]


def test_a_valid_event_passes() -> None:
    assert model.validate(spec(), NOW) == spec()


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"limit_kw": None}, "limit_kw"),
        ({"reduce_kw": 5.0}, "reduce_kw"),
        ({"limit_kw": None, "reduce_kw": 5.0, "reduce_pct": 10.0}, "reduce_pct"),
        ({"limit_kw": -1.0}, "limit_kw"),
        ({"limit_kw": float("nan")}, "limit_kw"),
        ({"limit_kw": None, "reduce_kw": 0.0}, "reduce_kw"),
        ({"limit_kw": None, "reduce_pct": 0.0}, "reduce_pct"),
        ({"limit_kw": None, "reduce_pct": 101.0}, "reduce_pct"),
        ({"ends_at": NOW - timedelta(minutes=1)}, "ends_at"),
        ({"starts_at": NOW + timedelta(hours=2)}, "ends_at"),
        ({"starts_at": NOW - timedelta(hours=3), "ends_at": NOW - timedelta(hours=2)}, "ends_at"),
        ({"ends_at": NOW + timedelta(days=8)}, "ends_at"),
        ({"starts_at": NOW + timedelta(days=400), "ends_at": NOW + timedelta(days=401)}, "starts_at"),
        ({"starts_at": datetime(2026, 11, 30, 12, 0)}, "starts_at"),
        ({"source": "sms"}, "source"),
    ],
)
def test_a_bad_event_names_its_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        model.validate(spec(**kw), NOW)
    assert e.value.field == field


def test_an_event_that_began_in_the_past_is_valid_while_it_lasts() -> None:
    model.validate(spec(starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(minutes=5)), NOW)


def test_state_follows_the_clock_and_cancellation() -> None:
    r = row(limit_kw=10.0)
    assert r.state(NOW - timedelta(seconds=1)) == "scheduled"
    assert r.state(NOW) == "active"
    assert r.state(NOW + timedelta(hours=1)) == "ended"
    cancelled = row(limit_kw=10.0, cancelled_at=NOW)
    assert cancelled.state(NOW - timedelta(seconds=1)) == "cancelled"


def test_a_node_limit_is_the_limit() -> None:
    assert model.targets_kw(row(limit_kw=40.0), {"site-a": 100.0}) == {"site-a": 40.0}


def test_reductions_are_from_the_baseline() -> None:
    assert model.targets_kw(row(reduce_kw=30.0), {"site-a": 100.0}) == {"site-a": 70.0}
    assert model.targets_kw(row(reduce_pct=25.0), {"site-a": 80.0}) == {"site-a": 60.0}
    # A reduction larger than the draw stops at nothing.
    assert model.targets_kw(row(reduce_kw=300.0), {"site-a": 100.0}) == {"site-a": 0.0}
    # A node that drew nothing when a reduction began has nothing to give: it is not pinned at 0 kW.
    assert model.targets_kw(row(reduce_pct=50.0), {"site-a": 0.0}) == {}
    # A limit applies whatever the node drew.
    assert model.targets_kw(row(limit_kw=5.0), {"site-a": 0.0}) == {"site-a": 5.0}


def test_a_network_wide_reduction_is_shared_in_proportion_to_draw() -> None:
    t = model.targets_kw(row(node_id=None, reduce_kw=30.0), {"a": 100.0, "b": 50.0, "c": 0.0})
    assert t == pytest.approx({"a": 80.0, "b": 40.0})  # c drew nothing: nothing to take, left alone
    assert 150.0 - sum(t.values()) == pytest.approx(30.0)


def test_a_network_wide_limit_is_shared_in_proportion_to_draw_or_equally_when_nothing_draws() -> None:
    assert model.targets_kw(row(node_id=None, limit_kw=60.0), {"a": 100.0, "b": 50.0}) == pytest.approx(
        {"a": 40.0, "b": 20.0}
    )
    assert model.targets_kw(row(node_id=None, limit_kw=60.0), {"a": 0.0, "b": 0.0}) == {"a": 30.0, "b": 30.0}


def test_a_network_wide_percentage_takes_the_same_share_off_every_site() -> None:
    t = model.targets_kw(row(node_id=None, reduce_pct=50.0), {"a": 100.0, "b": 10.0})
    assert t == {"a": 50.0, "b": 5.0}


def test_the_lowest_limit_on_a_node_wins() -> None:
    assert model.combine([{"a": 50.0, "b": 9.0}, {"a": 20.0}, {}]) == {"a": 20.0, "b": 9.0}
