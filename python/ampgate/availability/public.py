"""`PublicRecommendations`: what the public recommendations route uses: a token bucket per client address in
front of the ranking (`Availability.recommend`)."""

from __future__ import annotations

from typing import Protocol

from ampgate.availability.ratelimit import TokenBuckets
from ampgate.availability.service import Recommendation
from ampgate.clock import Clock
from ampgate.errors import TooManyError

# Requests per second per client address, sustained, and the burst on top: an app redrawing a map asks a few
# times at once and then rarely; many phones behind one carrier NAT share an address, so the burst is generous.
RATE_PER_S = 1.0
BURST = 20


def admit(buckets: TokenBuckets, now: float, address: str) -> None:
    """Take a token of `address`'s bucket at `now` (monotonic seconds). Raises TooManyError (429
    `too_many_requests`, with Retry-After in whole seconds) when it is empty: the public routes' one answer."""
    wait = buckets.take(address, now)
    if wait > 0:
        retry = buckets.retry_after(wait)
        err = TooManyError(
            f"too many requests from this address; retry after {retry} s", code="too_many_requests"
        )
        err.headers["Retry-After"] = str(retry)
        raise err


class Ranking(Protocol):
    """`ampgate.availability.Availability`."""

    def recommend(
        self, lat: float, lon: float, radius_km: float, min_kw: float | None, limit: int, /
    ) -> list[Recommendation]: ...


class PublicRecommendations:
    """The public route's service: `admit` per request, then `recommend`."""

    def __init__(self, ranking: Ranking, clock: Clock, buckets: TokenBuckets | None = None) -> None:
        self._ranking = ranking
        self._clock = clock
        self.buckets = buckets if buckets is not None else TokenBuckets(RATE_PER_S, BURST)

    def admit(self, address: str) -> None:
        """Take a token of `address`'s bucket. Raises TooManyError (429 `too_many_requests`, with Retry-After in
        whole seconds) when it is empty."""
        admit(self.buckets, self._clock.monotonic(), address)

    def recommend(
        self, lat: float, lon: float, radius_km: float, min_kw: float | None, limit: int
    ) -> list[Recommendation]:
        return self._ranking.recommend(lat, lon, radius_km, min_kw, limit)
