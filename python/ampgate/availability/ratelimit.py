"""`TokenBuckets`: a token bucket per client address (sans-I/O: the caller passes the time).

Each address starts with `burst` tokens and earns `rate` a second up to `burst`; a request takes one. An app that
redraws a map sends a few requests at once (the burst) and then few: that is served; a scraper asking without
pause gets 429 and the seconds until its next token. Litestar's own limiter (the public health route) counts
requests per fixed window, which lets a client send twice its limit across a window's edge; a bucket never does.

The table is bounded: past `max_clients` addresses, buckets that have refilled (their client has been quiet
long enough to be owed a full burst again) are dropped, which loses nothing; if every bucket is still in use (a
flood from that many addresses) the table starts again, which at worst grants each address one more burst.
"""

from __future__ import annotations

import math

# Addresses remembered before the table is swept: ~100 bytes each, so ~10 MB at most.
DEFAULT_MAX_CLIENTS = 100_000


class TokenBuckets:
    """Per-key token buckets. On the trio thread only: no lock."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = DEFAULT_MAX_CLIENTS) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("a token bucket needs rate > 0, burst >= 1 and room for one client")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        # key -> (tokens, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}
        self.refused = 0

    def take(self, key: str, now: float) -> float:
        """Take a token for `key` at time `now` (seconds, any monotonic origin). Returns 0.0 when one was taken,
        else the seconds until one will be there (nothing taken)."""
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1.0:
            if key not in self._buckets and len(self._buckets) >= self.max_clients:
                self._sweep(now)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        self.refused += 1
        return (1.0 - tokens) / self.rate

    def retry_after(self, wait: float) -> int:
        """`wait` as a Retry-After value: whole seconds, at least 1."""
        return max(1, math.ceil(wait))

    def _sweep(self, now: float) -> None:
        full = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full - v[0] / self.rate}
        if len(self._buckets) >= self.max_clients:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)
