"""Admission control as the control plane sees it: the node-wide budget shared out over the workers, and the
workers' handshake counters turned into node totals and per-minute figures.

The decisions themselves are the workers' (rust/gateway/admission.rs): a token bucket of new connections per
second, a cap on handshakes in progress and a bucket of new unknown charger ids per minute (charged only for
ids the handshake table does not know), each worker with its share; an upgrade over it is answered HTTP 503
with a randomized `Retry-After` without involving Python.
"""

from __future__ import annotations

import collections
import math

import msgspec

# The worker's running totals, in the order of the STATS event's counts tuple.
COUNTERS = (
    "upgrades",
    "refused_rate",
    "refused_handshakes",
    "refused_auth",
    "refused_unknown",
    "refused_other",
    "refused_throttled",
    "refused_unknown_ids",
    "closed_budget",
    "closed_pending_calls",
    "closed_msg_rate",
    "refused_profile",
    "tls_failed",
    "tls_reloads",
)
# Why an upgrade was refused, as the metrics and the summary name it, per counter.
REFUSAL_REASONS = {
    "refused_rate": "admission_rate",
    "refused_handshakes": "admission_handshakes",
    "refused_auth": "bad_credentials",
    "refused_unknown": "unknown_charger",
    "refused_other": "bad_request",
    "refused_throttled": "auth_throttled",
    "refused_unknown_ids": "admission_unknown_ids",
    "refused_profile": "security_profile",
    "tls_failed": "tls_handshake",
}
# Why a worker closed an open connection for its bounds, as the metrics name it, per counter: its buffer budget
# (1013), too many pipelined CALLs and over the message rate (both 1008).
SHED_REASONS = {
    "closed_budget": "buffer_budget",
    "closed_pending_calls": "pending_calls",
    "closed_msg_rate": "msg_rate",
}
MINUTES = 60


class Share(msgspec.Struct, frozen=True):
    """One worker's part of the budget (0 = no limit)."""

    rate: int
    burst: int
    handshakes: int
    retry_max: int
    unknown_per_min: int = 0


def share(
    rate: int, burst: int, handshakes: int, retry_max: int, workers: int, unknown_per_min: int = 0
) -> Share:
    """Each of `workers` workers' part of the node-wide budget: an even split, rounded up, so the node admits
    at least its budget (a limit of 0 stays 0, no limit; a limit never shares down to 0). An unknown id's
    connection lands on any worker, so with K workers the node admits up to K - 1 more unknown ids a minute
    than `unknown_per_min` (each worker's part rounded up), never fewer."""
    n = max(1, workers)

    def part(total: int) -> int:
        return 0 if total == 0 else max(1, math.ceil(total / n))

    return Share(
        rate=part(rate),
        burst=part(burst),
        handshakes=part(handshakes),
        retry_max=retry_max,
        unknown_per_min=part(unknown_per_min),
    )


def auth_fail_share(limit: int, workers: int) -> int:
    """Each worker's part of the node-wide limit of failed Basic-auth attempts per charger id (0 = off).

    Each worker counts only the attempts it handles, and a charger's reconnects land on any worker, so with
    the whole limit in each a guesser could try `workers` times as often. Rounded up, and never below 1: the
    node refuses an id after at most `limit + workers - 1` failures within the window, however the attempts
    spread; attempts all landing on one worker are refused sooner, which costs a charger with a wrong key
    nothing it had."""
    if limit <= 0:
        return 0
    return max(1, math.ceil(limit / max(1, workers)))


class HandshakeCounts:
    """Upgrades and refused upgrades over every worker: running totals since the node started (a restarted
    worker counts from zero again; its predecessor's counts are kept), and per minute over the last hour."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(COUNTERS, 0)
        # The last counts seen from each (worker, generation).
        self._last: dict[int, tuple[int, tuple[int, ...]]] = {}
        # [minute, counts...] per minute.
        self._minutes: collections.deque[list[int]] = collections.deque(maxlen=MINUTES)

    def update(self, worker: int, generation: int, counts: tuple[int, ...], now: float) -> None:
        """A worker's running totals as of its latest stats."""
        last = self._last.get(worker)
        before = last[1] if last is not None and last[0] == generation else (0,) * len(COUNTERS)
        self._last[worker] = (generation, counts)
        deltas = [max(0, c - b) for c, b in zip(counts, before, strict=True)]
        if not any(deltas):
            return
        minute = int(now // 60)
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append([minute, *([0] * len(COUNTERS))])
        row = self._minutes[-1]
        for i, (name, d) in enumerate(zip(COUNTERS, deltas, strict=True)):
            self.totals[name] += d
            row[i + 1] += d

    def last_minute(self, now: float) -> dict[str, int]:
        """Counts in the last whole minute before the current one."""
        return self._minute(int(now // 60) - 1)

    def this_minute(self, now: float) -> dict[str, int]:
        """Counts so far in the current minute."""
        return self._minute(int(now // 60))

    def _minute(self, minute: int) -> dict[str, int]:
        for row in reversed(self._minutes):
            if row[0] == minute:
                return dict(zip(COUNTERS, row[1:], strict=True))
        return dict.fromkeys(COUNTERS, 0)
