"""One clock for the whole node, so tests can drive time (trio's MockClock drives `monotonic`), and the one way
a timestamp is written, on the wire (OCPP, the API's events) and on disk alike."""

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
        return iso_utc(self.wall())


def iso_utc(at: datetime | float) -> str:
    """`at` (an aware datetime, or epoch seconds) as ISO 8601 / RFC 3339 UTC with milliseconds and a 'Z', e.g.
    2026-11-27T08:00:00.000Z. Fixed width, so text order is time order (the store relies on it).

    Raises ValueError for a naive datetime: its zone is unknown, and guessing would write a wrong instant.
    """
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("a naive datetime has no zone; pass an aware datetime (e.g. clock.now())")
        at = at.astimezone(UTC)
    else:
        at = datetime.fromtimestamp(at, UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    """A timestamp written by `iso_utc` back as an aware UTC datetime; None stays None. Raises ValueError if
    malformed."""
    return None if text is None else datetime.fromisoformat(text)
