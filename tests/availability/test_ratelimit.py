"""Token buckets per client address, on a clock the test drives."""

from __future__ import annotations

import pytest

from ampgate.availability import TokenBuckets


def test_a_burst_is_served_then_the_rate() -> None:
    b = TokenBuckets(rate=2.0, burst=3)
    assert [b.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("a", 0.0) == pytest.approx(0.5)  # the next token in half a second
    assert b.take("a", 0.25) == pytest.approx(0.25)
    assert b.take("a", 0.5) == 0.0
    assert b.take("a", 0.5) > 0
    assert b.refused == 3


def test_addresses_have_their_own_buckets() -> None:
    b = TokenBuckets(rate=1.0, burst=1)
    assert b.take("a", 0.0) == 0.0 and b.take("a", 0.0) > 0
    assert b.take("b", 0.0) == 0.0


def test_a_quiet_client_earns_a_full_burst_and_no_more() -> None:
    b = TokenBuckets(rate=1.0, burst=2)
    b.take("a", 0.0)
    b.take("a", 0.0)
    assert [b.take("a", 100.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert b.take("a", 100.0) > 0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    b = TokenBuckets(rate=1.0, burst=1)
    assert b.retry_after(0.01) == 1 and b.retry_after(1.2) == 2


def test_the_table_is_bounded_and_drops_refilled_buckets_first() -> None:
    b = TokenBuckets(rate=1.0, burst=2, max_clients=3)
    b.take("quiet", 0.0)
    b.take("busy1", 9.0)
    b.take("busy2", 9.0)
    b.take("new", 9.5)  # "quiet" has refilled by now: it goes, the busy ones stay
    assert len(b) == 3
    b.take("busy1", 9.5)
    assert b.take("busy1", 9.5) > 0  # busy1 kept its count


def test_bad_settings_are_refused() -> None:
    for rate, burst in ((0.0, 1), (1.0, 0)):
        with pytest.raises(ValueError):
            TokenBuckets(rate=rate, burst=burst)
