"""The gateway pump's own figures: how many events each drained batch held and how long handling it took (for
the node's metrics). Fixed buckets, one add per batch: nothing per message."""

from __future__ import annotations

import bisect

SIZE_BOUNDS = (1.0, 10.0, 100.0, 1_000.0, 10_000.0, float("inf"))
SECONDS_BOUNDS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, float("inf"))


class PumpStats:
    __slots__ = ("seconds", "seconds_sum", "size_sum", "sizes")

    def __init__(self) -> None:
        self.sizes = [0] * len(SIZE_BOUNDS)
        self.seconds = [0] * len(SECONDS_BOUNDS)
        self.size_sum = 0
        self.seconds_sum = 0.0

    def add(self, events: int, seconds: float) -> None:
        self.sizes[bisect.bisect_left(SIZE_BOUNDS, events)] += 1
        self.seconds[bisect.bisect_left(SECONDS_BOUNDS, seconds)] += 1
        self.size_sum += events
        self.seconds_sum += seconds

    @staticmethod
    def cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[float, int]]:
        """(upper bound, count of values <= it) per bucket, as Prometheus histograms are."""
        out, total = [], 0
        for b, n in zip(bounds, counts, strict=True):
            total += n
            out.append((b, total))
        return out
