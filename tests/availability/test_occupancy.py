"""The occupancy meter: connector-seconds per state integrated over count changes, split at hour boundaries,
handed out in parts that sum to the whole."""

from __future__ import annotations

import pytest

from ampgate.availability.model import Counts
from ampgate.availability.occupancy import HOUR_S, OccupancyMeter, OccupancyRow, hour_start

H0 = 1_764_540_000  # 2025-11-30T22:00:00Z, an hour boundary
assert H0 % HOUR_S == 0


def total(rows: list[OccupancyRow]) -> dict[tuple[str, int], tuple[float, ...]]:
    out: dict[tuple[str, int], tuple[float, ...]] = {}
    for r in rows:
        have = out.get((r.site_id, r.hour_start), (0.0,) * 5)
        add = (r.in_use_s, r.free_s, r.faulted_s, r.unavailable_s, r.offline_s)
        out[(r.site_id, r.hour_start)] = tuple(a + b for a, b in zip(have, add, strict=True))
    return out


def test_hour_start() -> None:
    assert hour_start(H0) == H0 and hour_start(H0 + 3599.9) == H0 and hour_start(H0 + 3600) == H0 + HOUR_S


def test_changes_within_an_hour_are_integrated() -> None:
    m = OccupancyMeter()
    m.set("S", Counts(free=2), H0 + 600)
    m.set("S", Counts(free=1, in_use=1), H0 + 1200)  # 600 s x 2 free so far
    m.set("S", Counts(free=1, faulted=1), H0 + 1500)  # 300 s x (1 free, 1 in use)
    (row,) = m.take(H0 + 1800)  # 300 s x (1 free, 1 faulted)
    assert (row.site_id, row.hour_start) == ("S", H0)
    assert (row.free_s, row.in_use_s, row.faulted_s, row.unavailable_s, row.offline_s) == (
        1200 + 300 + 300,
        300,
        300,
        0,
        0,
    )
    assert row.occupancy == pytest.approx(300 / 2100)


def test_an_interval_across_hour_boundaries_is_split_at_them() -> None:
    m = OccupancyMeter()
    m.set("S", Counts(in_use=1, offline=2), H0 + 3000)
    rows = m.take(H0 + 2 * HOUR_S + 900)  # 600 s, a whole hour, 900 s
    got = {r.hour_start: (r.in_use_s, r.offline_s) for r in rows}
    assert got == {H0: (600, 1200), H0 + HOUR_S: (3600, 7200), H0 + 2 * HOUR_S: (900, 1800)}


def test_parts_handed_out_at_any_moment_sum_to_the_whole() -> None:
    whole, parts = OccupancyMeter(), OccupancyMeter()
    script: list[tuple[int, Counts | None]] = [
        (H0 + 100, Counts(free=3)),
        (H0 + 1000, None),  # None: hand out what there is
        (H0 + 3500, Counts(free=2, in_use=1)),
        (H0 + 3600, None),
        (H0 + 3601, None),
        (H0 + 5000, Counts(free=3, faulted=1)),
        (H0 + 5000, None),
    ]
    taken: list[OccupancyRow] = []
    for at, counts in script:
        if counts is None:
            taken += parts.take(at)
        else:
            whole.set("S", counts, at)
            parts.set("S", counts, at)
    end = H0 + 2 * HOUR_S + 60
    expected = total(whole.take(end))
    assert total(taken + parts.take(end)) == expected
    assert expected[("S", H0)] == (100, 3400 * 3 + 100 * 2, 0, 0, 0)


def test_pending_shows_what_is_not_handed_out_and_keeps_it() -> None:
    m = OccupancyMeter()
    m.set("A", Counts(free=1), H0)
    m.set("B", Counts(in_use=1), H0)
    (a,) = m.pending("A", H0 + 60)
    assert (a.free_s, a.in_use_s) == (60, 0)
    assert {r.site_id: r.free_s + r.in_use_s for r in m.take(H0 + 120)} == {"A": 120, "B": 120}
    assert m.take(H0 + 120) == []


def test_a_site_without_connectors_adds_nothing_and_is_forgotten() -> None:
    m = OccupancyMeter()
    m.set("S", Counts(free=1), H0)
    m.set("S", Counts(), H0 + 10)
    (row,) = m.take(H0 + 1000)
    assert row.free_s == 10
    assert m.counts("S") is None and m.take(H0 + 2000) == []


def test_a_wall_clock_step_back_is_not_counted() -> None:
    m = OccupancyMeter()
    m.set("S", Counts(free=1), H0 + 100)
    m.set("S", Counts(free=1), H0 + 50)  # the clock stepped back 50 s
    (row,) = m.take(H0 + 150)
    assert row.free_s == 100


def test_a_forgotten_site_keeps_its_time_so_far() -> None:
    m = OccupancyMeter()
    m.set("S", Counts(in_use=2), H0)
    m.forget("S", H0 + 30)
    (row,) = m.take(H0 + 500)
    assert row.in_use_s == 60
