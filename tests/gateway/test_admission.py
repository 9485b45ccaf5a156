"""The node-wide admission budget shared out over the workers, and the workers' running handshake counts
turned into node totals and per-minute figures (a restarted worker counts from zero again)."""

from __future__ import annotations

from ampgate.gateway.admission import COUNTERS, HandshakeCounts, Share, auth_fail_share, share


def test_the_budget_is_split_evenly_rounded_up_and_no_limit_stays_no_limit() -> None:
    assert share(6000, 3000, 5000, 60, 7) == Share(rate=858, burst=429, handshakes=715, retry_max=60)
    assert share(0, 0, 0, 30, 4) == Share(rate=0, burst=0, handshakes=0, retry_max=30)
    # A small limit never shares down to "no limit".
    assert share(2, 1, 1, 5, 7) == Share(rate=1, burst=1, handshakes=1, retry_max=5)
    assert share(10, 10, 10, 5, 0).rate == 10


def test_the_rate_of_new_unknown_ids_is_shared_like_the_rest() -> None:
    # 600 a minute over 7 workers: 86 each (the node admits at most 602 a minute, never fewer than 600).
    assert share(6000, 3000, 5000, 60, 7, 600).unknown_per_min == 86
    assert share(6000, 3000, 5000, 60, 7, 0).unknown_per_min == 0
    assert share(6000, 3000, 5000, 60, 7, 1).unknown_per_min == 1
    assert share(6000, 3000, 5000, 60, 1, 600).unknown_per_min == 600


def test_the_auth_failure_limit_is_split_rounded_up_and_off_stays_off() -> None:
    # 10 over 4 workers: 3 each, so at most 12 failures node-wide however they spread.
    assert auth_fail_share(10, 4) == 3
    assert auth_fail_share(10, 1) == 10
    assert auth_fail_share(3, 7) == 1
    assert auth_fail_share(0, 4) == 0
    assert auth_fail_share(5, 0) == 5


def counts(
    upgrades: int = 0,
    rate: int = 0,
    handshakes: int = 0,
    auth: int = 0,
    throttled: int = 0,
    unknown_ids: int = 0,
) -> tuple[int, ...]:
    return (upgrades, rate, handshakes, auth, 0, 0, throttled, unknown_ids, 0, 0, 0, 0, 0, 0)


def test_running_totals_become_node_totals_and_minutes() -> None:
    h = HandshakeCounts()
    minute = 1_000 * 60.0
    h.update(0, 1, counts(upgrades=5, rate=2), minute + 1)
    h.update(1, 1, counts(upgrades=3), minute + 2)
    h.update(
        0, 1, counts(upgrades=7, rate=2, auth=1, throttled=2, unknown_ids=4), minute + 30
    )  # +2 upgrades, +1 auth, +2 429, +4 unknown ids over their rate
    assert h.totals == dict(zip(COUNTERS, (10, 2, 0, 1, 0, 0, 2, 4, 0, 0, 0, 0, 0, 0), strict=True))
    assert h.this_minute(minute + 59)["upgrades"] == 10
    assert h.last_minute(minute + 59)["upgrades"] == 0
    # Next minute: the worker in slot 0 restarted (generation 2) and counts from zero; nothing is lost or
    # subtracted.
    h.update(0, 2, counts(upgrades=4, handshakes=3), minute + 61)
    assert h.totals["upgrades"] == 14 and h.totals["refused_handshakes"] == 3
    assert h.this_minute(minute + 62) == dict(
        zip(COUNTERS, (4, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), strict=True)
    )
    assert h.last_minute(minute + 62)["upgrades"] == 10
    # Long after, both minutes are empty.
    assert h.last_minute(minute + 3600)["upgrades"] == 0
