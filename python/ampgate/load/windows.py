"""Maintenance windows of a site, as pure functions: when a firmware campaign may dispatch there.

A window is a start given as a 5-field cron expression (minute hour day-of-month month day-of-week, croniter's
syntax: `*`, lists, ranges, steps, names such as `sun`; when both day fields are restricted either may match, as
in cron) evaluated in the site's IANA time zone, and a duration in seconds of elapsed time. "30 1 * * sun" with
7,200 s is every Sunday from 01:30 local time for two hours.

Daylight-saving changes are handled one way, stated here and tested (Europe/Amsterdam):
- a start in the hour that is skipped when clocks go forward (02:30 on the last Sunday of March) happens at the
  same offset as before the change, i.e. at 03:30 local time, once: the window is moved, never dropped;
- a start in the hour that repeats when clocks go back (02:30 on the last Sunday of October) happens at its
  first occurrence only (fold 0), so a daily window does not open twice that night;
- the duration is elapsed time: a 3-hour window over a change lasts 3 hours, ending at 04:00 or 02:00 local.

`window_at` and `next_window` are what the campaign scheduler calls; they take aware datetimes and return aware
UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter

from ampgate.errors import ValidationError

# A site needs a handful of windows at most (one per night, or per weekday); 32 bounds what one PUT stores and
# what every scheduler evaluation walks.
MAX_WINDOWS = 32
# A window shorter than a minute cannot fit one dispatch with its retrieve time; a week is as long as "always"
# needs to be (a window every week lasting a week).
MIN_DURATION_S = 60
MAX_DURATION_S = 7 * 24 * 3600
MAX_CRON = 100
# How far around an instant the starts are looked at in local wall time: a start's wall time and its instant
# differ by the offset change of a DST transition (an hour almost everywhere, two at most in history), so
# looking two hours further than the wall clock says never misses a start moved by the skipped hour.
_DST_SLACK = timedelta(hours=2)
_CRON_ERRORS = (CroniterBadCronError, CroniterNotAlphaError, ValueError, KeyError)


class MaintenanceWindow(msgspec.Struct, frozen=True, kw_only=True):
    """One recurring window: its start (5-field cron, local time of the site) and how long it lasts."""

    cron: str
    duration_s: int


class SiteWindows(msgspec.Struct, frozen=True, kw_only=True):
    """A site's maintenance windows with the zone they are evaluated in; `updated_at` None: never set."""

    site_id: str
    time_zone: str
    windows: tuple[MaintenanceWindow, ...]
    updated_at: datetime | None

    def window_at(self, when: datetime) -> tuple[datetime, datetime] | None:
        """`window_at(self.windows, self.time_zone, when)`."""
        return window_at(self.windows, self.time_zone, when)

    def next_window(self, after: datetime) -> tuple[datetime, datetime] | None:
        """`next_window(self.windows, self.time_zone, after)`, or None when the site has no windows."""
        return next_window(self.windows, self.time_zone, after) if self.windows else None


def _zone(tz: tzinfo | str) -> tzinfo:
    if isinstance(tz, str):
        return ZoneInfo(tz)
    return tz


def _iter(cron: str, start_wall: datetime, *, reverse: bool = False) -> Iterator[datetime]:
    """Wall-clock (naive) start times of `cron` after (or before) `start_wall`, in order. Raises
    CroniterBadDateError if it never matches within croniter's search (e.g. February 30)."""
    it = croniter(cron, start_wall, ret_type=datetime)
    step = it.get_prev if reverse else it.get_next
    while True:
        yield step(datetime)


def _instant(wall: datetime, zone: tzinfo) -> datetime:
    """The instant of a local wall time: fold 0, i.e. the first of two in a repeated hour, and for a wall time
    that does not exist (skipped hour) the offset before the change, which moves it forward by the gap."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _wall(at: datetime, zone: tzinfo) -> datetime:
    if at.tzinfo is None:
        raise ValueError("pass an aware datetime")
    return at.astimezone(zone).replace(tzinfo=None, fold=0)


def validate_cron(value: Any, field: str = "cron") -> str:
    """Return `value` if it is a 5-field cron expression that matches at least once. Raises ValidationError
    naming `field`."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CRON:
        raise ValidationError(f"{field} is a cron expression of 1 to {MAX_CRON} characters", field=field)
    if len(value.split()) != 5:
        raise ValidationError(
            f"{field} has 5 fields: minute hour day-of-month month day-of-week, e.g. '30 1 * * sun'",
            field=field,
        )
    try:
        next(_iter(value, datetime(2000, 1, 1)))
    except CroniterBadDateError:
        raise ValidationError(f"{field} {value!r} never matches a date", field=field) from None
    except _CRON_ERRORS as e:
        raise ValidationError(f"{field} is not a valid cron expression: {e}", field=field) from None
    return value


def validate_windows(windows: Sequence[MaintenanceWindow]) -> tuple[MaintenanceWindow, ...]:
    """Return `windows` (as a tuple) if every one is valid: at most MAX_WINDOWS, each cron valid and each
    duration_s from MIN_DURATION_S to MAX_DURATION_S. Raises ValidationError naming the field as
    `windows[i].cron` / `windows[i].duration_s`, or `windows`."""
    if len(windows) > MAX_WINDOWS:
        raise ValidationError(f"a site has at most {MAX_WINDOWS} maintenance windows", field="windows")
    for i, w in enumerate(windows):
        validate_cron(w.cron, f"windows[{i}].cron")
        d = w.duration_s
        if isinstance(d, bool) or not isinstance(d, int) or not MIN_DURATION_S <= d <= MAX_DURATION_S:
            raise ValidationError(
                f"duration_s is a whole number of seconds from {MIN_DURATION_S} to {MAX_DURATION_S}",
                field=f"windows[{i}].duration_s",
            )
    return tuple(windows)


def validate_time_zone(tz: str) -> tzinfo:
    """The zone named `tz`. Raises ValidationError(field="time_zone") for a name the tz database lacks."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {tz!r}", field="time_zone") from None


def window_at(
    windows: Sequence[MaintenanceWindow], tz: tzinfo | str, when: datetime
) -> tuple[datetime, datetime] | None:
    """The window in force at `when` (aware) as (start, end) in UTC, start <= when < end, or None when no
    window is open. When several are open, the one ending last (and of those the earliest start): a campaign may
    dispatch until then. `tz` is the site's time zone (a name or a tzinfo)."""
    zone = _zone(tz)
    best: tuple[datetime, datetime] | None = None
    for window in windows:
        length = timedelta(seconds=window.duration_s)
        for start in _latest_starts(window, zone, when):
            end = start + length
            if not start <= when < end:
                continue
            if best is None or end > best[1] or (end == best[1] and start < best[0]):
                best = (start, end)
    return best


def _latest_starts(window: MaintenanceWindow, zone: tzinfo, when: datetime) -> Iterator[datetime]:
    """The starts of `window` at or before `when` that could still be open at `when`: walked backwards from
    `when` (plus the DST slack) until one lies more than the duration (plus the slack) before it. Backwards,
    so a window that opens every minute costs its duration in minutes, not a scan from any earlier time."""
    horizon = _wall(when, zone) - timedelta(seconds=window.duration_s) - _DST_SLACK
    for wall in _iter(window.cron, _wall(when, zone) + _DST_SLACK, reverse=True):
        if wall < horizon:
            return
        start = _instant(wall, zone)
        if start <= when:
            yield start


def next_window(
    windows: Sequence[MaintenanceWindow], tz: tzinfo | str, after: datetime
) -> tuple[datetime, datetime]:
    """The first window that starts at or after `after` (aware), as (start, end) in UTC; of two starting at the
    same instant, the longer. A window already open at `after` is `window_at`'s, not this. Raises ValueError
    when `windows` is empty."""
    if not windows:
        raise ValueError("a site without maintenance windows has no next window")
    zone = _zone(tz)
    best: tuple[datetime, datetime] | None = None
    for window in windows:
        length = timedelta(seconds=window.duration_s)
        found: datetime | None = None
        found_wall: datetime | None = None
        for wall in _iter(window.cron, _wall(after, zone) - _DST_SLACK):
            # Starts in wall-clock order are in instant order except around a skipped hour, where a start is
            # moved forward by the gap: keep looking for the slack past the first candidate.
            if found_wall is not None and wall > found_wall + _DST_SLACK:
                break
            start = _instant(wall, zone)
            if start < after:
                continue
            if found is None or start < found:
                found = start
            if found_wall is None:
                found_wall = wall
        assert found is not None  # validate_cron: every window matches again
        candidate = (found, found + length)
        if best is None or candidate[0] < best[0] or (candidate[0] == best[0] and candidate[1] > best[1]):
            best = candidate
    assert best is not None
    return best
