"""Properties of the engine over generated tariffs and sessions.

The running cost is priced from what a node knows at each instant (`Story.known_at`): samples, charging changes,
the transaction's end and the EVSE's release appear once they have happened, so each arrives at or after the
previous `until` — the engine's stated precondition for a total that never decreases. The reservation is known
whole from the start (an expiry would reprice it as a whole, as OCPI says; these stories have none)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampgate.pricing import Cost, Tariff, compile_tariff, price
from tests.pricing.builders import BERLIN
from tests.pricing.strategies import Story, signals, stories, tariffs

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parts(c: Cost) -> list[tuple[Decimal, Decimal]]:
    prices = [c.energy_cost, c.time_cost, c.parking_cost, c.flat_cost, c.reservation_cost, c.adjustment]
    return [(p.excl_vat, p.incl_vat or Decimal(0)) for p in prices]


@st.composite
def cases(draw: st.DrawFn) -> tuple[Tariff, Story, list[object], list[timedelta]]:
    t = draw(tariffs())
    story = draw(stories())
    sigs = draw(signals(story.usage.started_at))
    us = story.usage
    span = int((story.end - us.started_at).total_seconds() * 1000)
    # Instants where something changes, and just around them: where a wrong rule would show a drop. Each kind
    # is drawn as often as the others, so the one charging change is not lost among 25 samples.
    hours = [us.started_at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=h) for h in range(24)]
    kinds = [
        [s.at for s in us.samples],
        [c.at for c in us.charging],
        [story.end, *([us.stopped_at] if us.stopped_at else [])],
        hours,
    ]
    event = st.one_of(*(st.sampled_from(k) for k in kinds if k))
    near = st.builds(
        lambda e, d: int((e - us.started_at).total_seconds() * 1000) + d,
        event,
        st.sampled_from([-1000, -1, 0, 1, 1000, 60_000]),
    )
    offsets = sorted(
        draw(st.lists(st.one_of(st.integers(-600_000, span + 600_000), near), min_size=2, max_size=10))
    )
    return t, story, sigs, [timedelta(milliseconds=o) for o in offsets]


@SETTINGS
@given(cases())
def test_the_running_total_never_decreases(case: tuple[Tariff, Story, list[object], list[timedelta]]) -> None:
    t, story, sigs, offsets = case
    ct = compile_tariff(t)
    last: Cost | None = None
    for off in offsets:
        u = story.usage.started_at + off
        c = price(ct, story.known_at(u), until=u, tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
        if last is not None:
            assert c.total_cost.excl_vat >= last.total_cost.excl_vat
            assert c.total_cost.incl_vat >= last.total_cost.incl_vat  # type: ignore[operator]
        last = c


@SETTINGS
@given(cases())
def test_the_final_cost_is_never_below_a_running_cost_shown_before(
    case: tuple[Tariff, Story, list[object], list[timedelta]],
) -> None:
    t, story, sigs, offsets = case
    ct = compile_tariff(t)
    final = price(ct, story.usage, until=story.end, tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
    assert final.final
    for off in offsets:
        u = story.usage.started_at + off
        if u <= story.end:
            running = price(ct, story.known_at(u), until=u, tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
            assert running.total_cost.excl_vat <= final.total_cost.excl_vat


@SETTINGS
@given(cases())
def test_same_input_same_cost(case: tuple[Tariff, Story, list[object], list[timedelta]]) -> None:
    t, story, sigs, _ = case
    a = price(t, story.usage, until=story.end, tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
    b = price(compile_tariff(t), story.usage, until=story.end, tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
    assert a == b
    # Pricing further than the session's end changes nothing: the end clips it.
    c = price(t, story.usage, until=story.end + timedelta(days=3), tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
    assert c == a


@SETTINGS
@given(cases())
def test_the_breakdown_sums_to_the_total(case: tuple[Tariff, Story, list[object], list[timedelta]]) -> None:
    """energy + time + parking + flat + reservation + adjustment == total, excl and incl VAT, at every instant;
    the adjustment is zero unless min_price or max_price bound the total (then it is what they added or took)."""
    t, story, sigs, offsets = case
    for off in [*offsets, story.end - story.usage.started_at]:
        u = story.usage.started_at + off
        c = price(t, story.known_at(u), until=u, tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
        parts = _parts(c)
        assert sum(p[0] for p in parts) == c.total_cost.excl_vat
        assert sum(p[1] for p in parts) == c.total_cost.incl_vat
        if t.min_price is None and t.max_price is None:
            assert c.adjustment.excl_vat == 0 and c.adjustment.incl_vat == 0
        assert all(p.excl_vat >= 0 for p in (c.energy_cost, c.time_cost, c.parking_cost, c.flat_cost))


@SETTINGS
@given(cases())
def test_the_cdr_is_the_charger_total_plus_the_parking_after(
    case: tuple[Tariff, Story, list[object], list[timedelta]],
) -> None:
    t, story, sigs, _ = case
    stop = story.usage.stopped_at
    assert stop is not None
    told = price(t, story.known_at(stop), until=stop, tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
    cdr = price(t, story.usage, until=story.end, tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
    assert cdr.transaction_cost == told.total_cost
    assert cdr.total_cost.excl_vat == told.total_cost.excl_vat + cdr.parking_after_cost.excl_vat
    assert cdr.total_cost.incl_vat == told.total_cost.incl_vat + cdr.parking_after_cost.incl_vat  # type: ignore[operator]
    assert cdr.parking_after_cost.excl_vat >= 0


@SETTINGS
@given(cases())
def test_periods_cover_the_session_without_gaps(
    case: tuple[Tariff, Story, list[object], list[timedelta]],
) -> None:
    t, story, sigs, _ = case
    c = price(t, story.usage, until=story.end, tz=BERLIN, signals=sigs)  # type: ignore[arg-type]
    session = [p for p in c.charging_periods if p.phase != "reservation"]
    if session:
        assert session[0].start_date_time == story.usage.started_at.replace(
            microsecond=story.usage.started_at.microsecond // 1000 * 1000
        )
        for a, b in itertools.pairwise(session):
            assert a.end_date_time == b.start_date_time
        assert session[-1].end_date_time == story.end.replace(
            microsecond=story.end.microsecond // 1000 * 1000
        )
    total_hours = sum(d.volume for p in session for d in p.dimensions if d.type in ("TIME", "PARKING_TIME"))
    seconds = c.charging_time_s + c.parking_time_s
    assert abs(total_hours * 3600 - seconds) <= Decimal("0.0036") * len(session) * 3600 / 1000 + 1
