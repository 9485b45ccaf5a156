"""`OccupancyMeter`: connector-seconds per state, per site and UTC hour, integrated from the counts as they change
(sans-I/O: times in, rows out; unit-tested without a store or a clock).

Each site has its counts and the time they were set; when they change, or when the meter is read, the time since
is added to the hours it spans (an interval across an hour boundary is split at it). Rows are handed out
(`take`) and forgotten: the table adds them to what it holds for that site and hour, so a row may be handed out
in several parts (every few minutes, at the hour boundary, at shutdown, again after a restart in the same hour)
and still sum to the hour's whole.
"""

from __future__ import annotations

import msgspec

from ampgate.availability.model import STATES, Counts, occupancy

HOUR_S = 3600


def hour_start(ts: float) -> int:
    """The start (epoch seconds) of the UTC hour `ts` is in."""
    return int(ts // HOUR_S) * HOUR_S


class OccupancyRow(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One site's connector-seconds per state in the hour starting at `hour_start` (epoch seconds, UTC)."""

    site_id: str
    hour_start: int
    in_use_s: float
    free_s: float
    faulted_s: float
    unavailable_s: float
    offline_s: float

    @property
    def occupancy(self) -> float | None:
        """The mean fraction of in-service connectors in use during the hour (None: none in service)."""
        return occupancy(self.in_use_s, self.free_s)

    def plus(self, other: OccupancyRow) -> OccupancyRow:
        """Both parts of the same hour (or bucket) added: `other`'s seconds onto this row's."""
        return msgspec.structs.replace(
            self,
            in_use_s=self.in_use_s + other.in_use_s,
            free_s=self.free_s + other.free_s,
            faulted_s=self.faulted_s + other.faulted_s,
            unavailable_s=self.unavailable_s + other.unavailable_s,
            offline_s=self.offline_s + other.offline_s,
        )


# Seconds per state, in STATES order (free, in use, faulted, unavailable, offline).
_Acc = list[float]


def _row(site_id: str, hour: int, acc: _Acc) -> OccupancyRow:
    free, in_use, faulted, unavailable, offline = acc
    return OccupancyRow(
        site_id=site_id,
        hour_start=hour,
        in_use_s=in_use,
        free_s=free,
        faulted_s=faulted,
        unavailable_s=unavailable,
        offline_s=offline,
    )


class OccupancyMeter:
    """Integrates each site's counts over time. On the trio thread only."""

    def __init__(self) -> None:
        # site -> (its counts, since when: epoch seconds)
        self._state: dict[str, tuple[Counts, float]] = {}
        # site -> hour start -> seconds per state not yet handed out
        self._acc: dict[str, dict[int, _Acc]] = {}

    def set(self, site_id: str, counts: Counts, now: float) -> None:
        """The site's counts are `counts` from `now` on (what they were until now is added first)."""
        self._integrate(site_id, now)
        self._state[site_id] = (counts, now)

    def counts(self, site_id: str) -> Counts | None:
        """The counts the site is being metered at (None: not metered)."""
        state = self._state.get(site_id)
        return None if state is None else state[0]

    def _integrate(self, site_id: str, now: float) -> None:
        state = self._state.get(site_id)
        if state is None:
            return
        counts, since = state
        if now <= since:
            # The wall clock stepped back: the time in between is not counted twice.
            self._state[site_id] = (counts, now)
            return
        weights = counts.as_tuple()
        if any(weights):
            hours = self._acc.setdefault(site_id, {})
            t = since
            while t < now:
                hour = hour_start(t)
                end = min(now, hour + HOUR_S)
                acc = hours.get(hour)
                if acc is None:
                    acc = hours[hour] = [0.0] * len(STATES)
                dt = end - t
                for i, w in enumerate(weights):
                    acc[i] += w * dt
                t = end
        self._state[site_id] = (counts, now)

    def pending(self, site_id: str, now: float) -> list[OccupancyRow]:
        """The site's seconds up to `now` not yet handed out, per hour (oldest first); they stay pending."""
        self._integrate(site_id, now)
        hours = self._acc.get(site_id, {})
        return [_row(site_id, hour, hours[hour]) for hour in sorted(hours)]

    def take(self, now: float) -> list[OccupancyRow]:
        """Every site's seconds up to `now` not yet handed out, per hour, now handed out (forgotten here). Sites
        with no connector are forgotten too (they add nothing until `set` again)."""
        for site_id in list(self._state):
            self._integrate(site_id, now)
            if self._state[site_id][0].total == 0:
                del self._state[site_id]
        rows = [
            _row(site_id, hour, acc) for site_id, hours in self._acc.items() for hour, acc in hours.items()
        ]
        self._acc.clear()
        return rows

    def forget(self, site_id: str, now: float) -> None:
        """Stop metering a site (deleted): its time so far stays pending for the next `take`."""
        self._integrate(site_id, now)
        self._state.pop(site_id, None)
