"""A session's meter samples as the engine reads them, and the integer instants it works in.

Reading each of 1,000 samples in Python is most of what pricing could cost, so samples are read lazily: the
energy at an instant is looked up by bisection over the samples' instants (linear between the two around it),
and where a restriction depends on energy, power or current, each sample is mapped to its side of the
thresholds with C-level `map` / `bisect`, and only the samples where that side changes are converted.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import accumulate, compress
from operator import ne

from ampgate.pricing.compiled import Table
from ampgate.pricing.model import SessionUsage

__all__ = ["HOUR_MS", "Held", "Samples", "at_ms", "ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
HOUR_MS = 3_600_000

# What a restriction sees of the samples from an instant on: (UTC ms, energy so far Wh, power W, current A).
Held = tuple[int, float, float | None, float | None]


def ms(at: datetime) -> int:
    """An aware instant in integer milliseconds since the epoch."""
    return (at - _EPOCH) // _MS


def at_ms(t: int) -> datetime:
    """The UTC instant of integer milliseconds since the epoch."""
    return _EPOCH + t * _MS


class Samples:
    """The session's meter samples, read lazily: energy at any instant (mWh, linear between samples) and the
    held values (energy Wh, power W, current A) from the samples where a threshold is crossed. Only the
    samples next to a period's bounds have their instants converted: looking at each of 1,000 samples in
    Python is most of what pricing costs."""

    __slots__ = ("_hint", "ats", "currents", "n", "powers", "samples", "start", "whs")

    def __init__(self, usage: SessionUsage, start: int, stop: datetime | None):
        samples = usage.samples
        if stop is not None and samples and samples[-1].at > stop:
            # The transaction's energy is what was read by its end: a later reading never changes the total
            # the charger was told.
            samples = samples[: bisect_right([s.at for s in samples], stop)]
        self.samples = samples
        self.n = len(samples)
        self.start = start
        self.ats = [s.at for s in samples]
        whs = [s.energy_wh for s in samples]
        if whs and (whs[0] < 0 or whs != sorted(whs)):
            # A register reading below an earlier one (a meter glitch) counts as the earlier one.
            whs = list(accumulate(whs, max, initial=0.0))[1:]
        self.whs = whs
        self.powers: list[float | None] = []
        self.currents: list[float | None] = []
        self._hint = (start, 0)

    def t(self, j: int) -> int:
        return max(ms(self.ats[j]), self.start)

    def energy_at(self, t: int) -> int:
        """Energy in mWh imported by UTC ms `t`: linear between samples, the last reading after the last."""
        n = self.n
        if not n:
            return 0
        ht, hj = self._hint
        j = bisect_right(self.ats, at_ms(t), hj if t >= ht else 0) - 1
        self._hint = (t, max(j, 0))
        if j >= n - 1:
            return round(self.whs[-1] * 1000)
        t1, e1 = self.t(j + 1), round(self.whs[j + 1] * 1000)
        t0, e0 = (self.start, 0) if j < 0 else (self.t(j), round(self.whs[j] * 1000))
        if t1 <= t0 or t >= t1:
            return e1 if t >= t1 else e0
        return e0 + (e1 - e0) * (t - t0) // (t1 - t0)

    def _power(self, j: int) -> float | None:
        p = self.samples[j].power_w
        if p is not None or j == 0:
            return p
        dt = self.t(j) - self.t(j - 1)
        return None if dt <= 0 else (self.whs[j] - self.whs[j - 1]) * HOUR_MS / dt

    def held(self, table: Table, hi: int) -> list[Held]:
        """(UTC ms, Wh, W, A) at each sample before `hi` whose bucket differs from the previous one's, i.e.
        where some restriction of `table` may start or stop matching. Buckets are computed with C-level maps
        over the samples; only the samples where one changes are converted."""
        n = self.n
        if not n or not (table.kwh or table.power or table.current):
            return []
        whs = self.whs
        columns: list[list[int]] = []
        initial: list[int] = []
        if table.kwh:
            columns.append(list(map(partial(bisect_right, table.kwh), whs)))
            initial.append(bisect_right(table.kwh, 0.0))
        if table.power:
            powers = [s.power_w for s in self.samples]
            if None in powers:
                powers = [self._power(j) for j in range(n)]
            self.powers = powers
            columns.append(_buckets(table.power, powers))
            initial.append(-1)
        if table.current:
            currents = [s.current_a for s in self.samples]
            self.currents = currents
            columns.append(_buckets(table.current, currents))
            initial.append(-1)
        keys: Sequence[object] = columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))
        first: object = initial[0] if len(initial) == 1 else tuple(initial)
        changed = list(compress(range(1, n), map(ne, keys[1:], keys)))
        if keys[0] != first:
            changed.insert(0, 0)
        out: list[Held] = []
        powers_, currents_ = self.powers, self.currents
        for j in changed:
            t = self.t(j)
            if t >= hi:
                break
            out.append((t, whs[j], powers_[j] if powers_ else None, currents_[j] if currents_ else None))
        return out


def _buckets(thresholds: list[float], values: list[float | None]) -> list[int]:
    if None in values:
        return [-1 if v is None else bisect_right(thresholds, v) for v in values]
    return list(map(partial(bisect_right, thresholds), values))
