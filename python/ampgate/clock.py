"""One clock for the whole node, so tests can drive time (trio's MockClock drives `monotonic`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import trio


class Clock:
    """Wall-clock and monotonic time. Subclass (or replace `wall`) in tests to fix the wall clock."""

    def wall(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def now(self) -> datetime:
        """The current UTC time as an aware datetime."""
        return datetime.fromtimestamp(self.wall(), UTC)

    def monotonic(self) -> float:
        """trio's clock: under MockClock in tests it jumps instead of sleeping."""
        return trio.current_time()

    def iso_now(self) -> str:
        """Current UTC time as OCPP writes it: RFC 3339 with milliseconds and a Z."""
        return iso(self.wall())


def iso(ts: float) -> str:
    """`ts` (epoch seconds) as RFC 3339 UTC with milliseconds, e.g. 2026-11-27T08:00:00.000Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
