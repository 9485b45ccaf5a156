"""Local time of a site over a stretch of UTC, in integers: where the restrictions on times of day, weekdays and
dates are evaluated, and the instants at which they may change.

Within a stretch the zone's UTC offset is piecewise constant; the pieces are found once (the offset looked at
every few hours, a change located to the second by bisection) and local time is then UTC plus the piece's
offset. A daylight-saving change is therefore an instant like any other: on the night clocks go forward the
local times in the skipped hour never happen (a window starting at 02:30 starts at 03:00, when local time jumps
past it); on the night they go back, the repeated hour happens twice (a window ending at 02:30 ends, starts
again at 02:00 the second time and ends again at 02:30), which is what a clock on the wall shows.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta, tzinfo

from ampgate.pricing.compiled import DAY_MS

__all__ = ["LocalTime"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# How often the offset is looked at: no zone has changed its offset twice within 6 hours, so a change between
# two looks is one change, found by bisection; a session of a day costs 5 looks.
_LOOK_MS = 6 * 3_600_000


class LocalTime:
    """The offsets of `tz` over [lo, hi] (UTC ms)."""

    __slots__ = ("_offsets", "_starts", "hi", "lo")

    def __init__(self, tz: tzinfo, lo: int, hi: int):
        self.lo, self.hi = lo, hi
        starts = [lo]
        offsets = [_offset(tz, lo)]
        t = lo
        while t < hi:
            nxt = min(t + _LOOK_MS, hi)
            off = _offset(tz, nxt)
            if off != offsets[-1]:
                # The change is at a whole second in every zone: find the first second with the new offset.
                a, b = t // 1000, -(-nxt // 1000)
                while b - a > 1:
                    m = (a + b) // 2
                    if _offset(tz, m * 1000) == off:
                        b = m
                    else:
                        a = m
                starts.append(max(b * 1000, lo))
                offsets.append(off)
            t = nxt
        self._starts = starts
        self._offsets = offsets

    def at(self, t: int) -> tuple[int, int, int]:
        """(ms since local midnight, weekday with Monday 0, local day number) at UTC ms `t`."""
        i = bisect_right(self._starts, t) - 1
        local = t + self._offsets[max(i, 0)]
        day = local // DAY_MS
        return local - day * DAY_MS, (day + 3) % 7, day  # 1970-01-01 was a Thursday

    def boundaries(self, tods: list[int], midnight: bool) -> list[int]:
        """The UTC instants in (lo, hi) where local time passes one of `tods` (ms of day) or, with `midnight`,
        a local midnight, and where the offset changes (local time jumps)."""
        out: list[int] = []
        marks = sorted({0, *tods}) if midnight else tods
        ends = [*self._starts[1:], self.hi]
        for start, end, off in zip(self._starts, ends, self._offsets, strict=True):
            if start != self.lo:
                out.append(start)
            if not marks:
                continue
            first = (start + off) // DAY_MS
            last = (end + off) // DAY_MS
            for day in range(first, last + 1):
                base = day * DAY_MS - off
                for m in marks:
                    t = base + m
                    if start <= t < end and self.lo < t:
                        out.append(t)
        return out


def _offset(tz: tzinfo, t: int) -> int:
    off = (_EPOCH + t * _MS).astimezone(tz).utcoffset()
    return 0 if off is None else off // _MS
