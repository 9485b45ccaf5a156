"""Maintenance windows, pure: which window is open at an instant and which opens next, in a site's time zone,
across both DST changes of Europe/Amsterdam in 2026 (29 March 02:00 CET → 03:00 CEST; 25 October 03:00 CEST →
02:00 CET); and every refusal of the windows' validation. A reference computed day by day from the stated rule
(wall time at fold 0, duration in elapsed seconds), without cron, checks daily windows at random instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ampgate.errors import ValidationError
from ampgate.load.windows import (
    MAX_WINDOWS,
    MaintenanceWindow,
    next_window,
    validate_windows,
    window_at,
)

AMS = ZoneInfo("Europe/Amsterdam")


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def daily(hour: int, minute: int, duration_s: int = 3600) -> MaintenanceWindow:
    return MaintenanceWindow(cron=f"{minute} {hour} * * *", duration_s=duration_s)


def test_a_start_in_the_skipped_hour_moves_forward_by_the_gap() -> None:
    w = [daily(2, 30)]
    # 28 March: 02:30 CET = 01:30Z. 29 March: 02:30 does not exist; it happens at 03:30 CEST = 01:30Z.
    assert window_at(w, "Europe/Amsterdam", z("2026-03-28T02:00Z")) == (
        z("2026-03-28T01:30Z"),
        z("2026-03-28T02:30Z"),
    )
    assert next_window(w, AMS, z("2026-03-28T23:00Z")) == (z("2026-03-29T01:30Z"), z("2026-03-29T02:30Z"))
    assert window_at(w, AMS, z("2026-03-29T01:29Z")) is None
    start, end = window_at(w, AMS, z("2026-03-29T01:30Z")) or (None, None)
    assert start == z("2026-03-29T01:30Z") and end == z("2026-03-29T02:30Z")
    assert start.astimezone(AMS).hour == 3 and start.astimezone(AMS).minute == 30
    # 30 March: 02:30 CEST = 00:30Z.
    assert next_window(w, AMS, z("2026-03-29T02:30Z")) == (z("2026-03-30T00:30Z"), z("2026-03-30T01:30Z"))


def test_a_start_in_the_repeated_hour_happens_once_at_its_first_occurrence() -> None:
    w = [daily(2, 30)]
    # 25 October: 02:30 happens twice (00:30Z in CEST, 01:30Z in CET); the window opens at the first only.
    assert next_window(w, AMS, z("2026-10-24T22:00Z")) == (z("2026-10-25T00:30Z"), z("2026-10-25T01:30Z"))
    assert window_at(w, AMS, z("2026-10-25T01:00Z")) == (z("2026-10-25T00:30Z"), z("2026-10-25T01:30Z"))
    assert window_at(w, AMS, z("2026-10-25T01:45Z")) is None  # the second 02:45: no second window
    assert next_window(w, AMS, z("2026-10-25T00:31Z")) == (z("2026-10-26T01:30Z"), z("2026-10-26T02:30Z"))


def test_the_duration_is_elapsed_time_across_a_change() -> None:
    w = [daily(1, 0, 3 * 3600)]
    # Opens 01:00 CET on 29 March, lasts three hours: closes at 05:00 CEST (04:00 on the clock that was).
    start, end = next_window(w, AMS, z("2026-03-28T23:30Z"))
    assert (start, end) == (z("2026-03-29T00:00Z"), z("2026-03-29T03:00Z"))
    assert end.astimezone(AMS).hour == 5
    # Opens 01:00 CEST on 25 October, three hours: closes at 03:00 CET (the clock shows two hours passed).
    start, end = next_window(w, AMS, z("2026-10-24T22:30Z"))
    assert (start, end) == (z("2026-10-24T23:00Z"), z("2026-10-25T02:00Z"))
    assert end.astimezone(AMS).hour == 3
    assert window_at(w, AMS, z("2026-10-25T01:59Z")) == (start, end)
    assert window_at(w, AMS, z("2026-10-25T02:00Z")) is None


def test_weekly_windows_and_the_next_one_after_an_open_window() -> None:
    w = [MaintenanceWindow(cron="30 1 * * sun", duration_s=7200)]
    # 2026-03-22 is a Sunday (CET): 01:30 CET = 00:30Z.
    assert window_at(w, AMS, z("2026-03-22T01:00Z")) == (z("2026-03-22T00:30Z"), z("2026-03-22T02:30Z"))
    # From inside it, the next is a week later: 01:30 CET on 29 March, half an hour before clocks go forward.
    assert next_window(w, AMS, z("2026-03-22T01:00Z")) == (z("2026-03-29T00:30Z"), z("2026-03-29T02:30Z"))
    # And the one after that is in summer time: 01:30 CEST = 23:30Z the day before.
    assert next_window(w, AMS, z("2026-03-29T01:00Z")) == (z("2026-04-04T23:30Z"), z("2026-04-05T01:30Z"))
    assert window_at(w, AMS, z("2026-03-24T01:00Z")) is None


def test_overlapping_windows_give_the_one_ending_last() -> None:
    w = [daily(1, 0, 3600), daily(1, 30, 3600), daily(0, 0, 60)]
    assert window_at(w, "UTC", z("2026-06-01T01:45Z")) == (z("2026-06-01T01:30Z"), z("2026-06-01T02:30Z"))
    assert window_at(w, "UTC", z("2026-06-01T01:15Z")) == (z("2026-06-01T01:00Z"), z("2026-06-01T02:00Z"))
    assert next_window(w, "UTC", z("2026-06-01T00:00:30Z")) == (
        z("2026-06-01T01:00Z"),
        z("2026-06-01T02:00Z"),
    )
    assert next_window(w, "UTC", z("2026-06-01T00:00Z")) == (z("2026-06-01T00:00Z"), z("2026-06-01T00:01Z"))


def test_a_window_every_minute_is_always_open() -> None:
    w = [MaintenanceWindow(cron="* * * * *", duration_s=3600)]
    at = z("2026-03-29T01:00:30Z")
    assert window_at(w, AMS, at) == (z("2026-03-29T01:00Z"), z("2026-03-29T02:00Z"))


def test_no_windows() -> None:
    assert window_at([], AMS, z("2026-01-01T00:00Z")) is None
    with pytest.raises(ValueError):
        next_window([], AMS, z("2026-01-01T00:00Z"))


def _reference(
    hour: int, minute: int, duration_s: int, when: datetime
) -> tuple[tuple[datetime, datetime] | None, tuple[datetime, datetime]]:
    """Day by day, no cron: each day's start is its wall time at fold 0 in Amsterdam."""
    local_day = when.astimezone(AMS).date()
    starts = []
    for delta in range(-9, 10):
        d: date = local_day + timedelta(days=delta)
        wall = datetime(d.year, d.month, d.day, hour, minute)
        starts.append(wall.replace(tzinfo=AMS, fold=0).astimezone(UTC))
    length = timedelta(seconds=duration_s)
    open_now = [(s, s + length) for s in starts if s <= when < s + length]
    current = max(open_now, key=lambda w: (w[1], -w[0].timestamp())) if open_now else None
    upcoming = min(s for s in starts if s >= when)
    return current, (upcoming, upcoming + length)


@settings(max_examples=300, deadline=None)
@given(
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 1, 15, 30, 59]),
    duration_s=st.sampled_from([60, 1800, 3600, 5400, 3 * 3600, 26 * 3600]),
    change=st.sampled_from([z("2026-03-29T01:00Z"), z("2026-10-25T01:00Z")]),
    offset_s=st.integers(-3 * 86400, 3 * 86400),
)
def test_daily_windows_agree_with_a_day_by_day_reference(
    hour: int, minute: int, duration_s: int, change: datetime, offset_s: int
) -> None:
    when = change + timedelta(seconds=offset_s)
    w = [daily(hour, minute, duration_s)]
    current, upcoming = _reference(hour, minute, duration_s, when)
    assert window_at(w, AMS, when) == current
    assert next_window(w, AMS, when) == upcoming


@pytest.mark.parametrize(
    ("windows", "field"),
    [
        ([MaintenanceWindow(cron="0 2 * * * *", duration_s=60)], "windows[0].cron"),
        ([MaintenanceWindow(cron="@daily", duration_s=60)], "windows[0].cron"),
        ([MaintenanceWindow(cron="61 2 * * *", duration_s=60)], "windows[0].cron"),
        ([MaintenanceWindow(cron="0 0 30 2 *", duration_s=60)], "windows[0].cron"),
        ([MaintenanceWindow(cron="", duration_s=60)], "windows[0].cron"),
        ([daily(1, 0), MaintenanceWindow(cron="0 x * * *", duration_s=60)], "windows[1].cron"),
        ([MaintenanceWindow(cron="0 2 * * *", duration_s=59)], "windows[0].duration_s"),
        ([MaintenanceWindow(cron="0 2 * * *", duration_s=7 * 86400 + 1)], "windows[0].duration_s"),
        ([MaintenanceWindow(cron="0 2 * * *", duration_s=True)], "windows[0].duration_s"),
        ([daily(1, 0)] * (MAX_WINDOWS + 1), "windows"),
    ],
)
def test_invalid_windows_are_refused_naming_the_field(windows: list[MaintenanceWindow], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        validate_windows(windows)
    assert e.value.field == field


def test_valid_windows_pass() -> None:
    ok = [
        daily(1, 0),
        MaintenanceWindow(cron="0 0 29 2 *", duration_s=7 * 86400),
        MaintenanceWindow(cron="*/15 22-23,0-5 * * mon-fri", duration_s=600),
    ]
    assert validate_windows(ok) == tuple(ok)
