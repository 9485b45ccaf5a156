"""The connectivity rules, pure: stale after the heartbeat interval × grace, flapping and its end, uptime per
UTC day from connection intervals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ampgate.connectivity.rules import Settings, flap_cleared, is_stale, note_drop, uptime_by_day

S = Settings(heartbeat_interval=60, grace=2, flap_count=5, flap_window=600, flap_clear=1800)


def test_stale_past_the_interval_times_the_grace_counting_from_the_connect_when_silent() -> None:
    assert S.stale_after == 120
    assert not is_stale(1000.0, 900.0, 1120.0, S)
    assert is_stale(1000.0, 900.0, 1120.5, S)
    # Nothing said since the connect: the connect is when silence began.
    assert not is_stale(None, 1000.0, 1100.0, S)
    assert is_stale(None, 1000.0, 1121.0, S)


def test_more_than_five_drops_in_ten_minutes_is_flapping() -> None:
    drops = None
    flags = []
    for i in range(6):
        drops, flapping = note_drop(drops, 100.0 * i, S)
        flags.append(flapping)
    assert flags == [False, False, False, False, False, True]
    # Drops older than the window fall out: a seventh, long after, alone is not flapping.
    drops, flapping = note_drop(drops, 5000.0, S)
    assert not flapping and list(drops) == [5000.0]


def test_flapping_ends_after_half_an_hour_connected_without_a_drop() -> None:
    assert not flap_cleared(None, 100.0, 10_000.0, S)  # offline
    assert not flap_cleared(1000.0, 900.0, 2799.0, S)
    assert flap_cleared(1000.0, 900.0, 2800.0, S)
    # A drop after the connect (the connect belongs to a later link) counts from the drop.
    assert not flap_cleared(1000.0, 1500.0, 2800.0, S)


def at(day: int, hour: float) -> datetime:
    return datetime(2026, 11, day, tzinfo=UTC) + timedelta(hours=hour)


def test_uptime_per_day_splits_at_midnight_counts_overlaps_once_and_today_so_far() -> None:
    intervals = [
        (at(28, 12), at(28, 18)),  # 6 h on the 28th
        (at(28, 17), at(28, 20)),  # overlaps: 2 more hours
        (at(29, 22), at(30, 2)),  # 2 h on the 29th, 2 h on the 30th
        (at(30, 4), None),  # still connected
    ]
    days = uptime_by_day(intervals, date(2026, 11, 27), date(2026, 11, 30), at(30, 8))
    assert days == [
        (date(2026, 11, 27), 0.0),
        (date(2026, 11, 28), round(8 / 24, 6)),
        (date(2026, 11, 29), round(2 / 24, 6)),
        (date(2026, 11, 30), round(6 / 8, 6)),  # 00-02 and 04-08 of the 8 hours so far
    ]


def test_a_day_after_now_has_no_uptime() -> None:
    assert uptime_by_day([], date(2026, 12, 1), date(2026, 12, 1), at(30, 8)) == [(date(2026, 12, 1), 0.0)]


def test_an_outage_is_one_incident_that_ends_after_a_quiet_window_and_covers_its_drops() -> None:
    from ampgate.connectivity.incidents import SpikeWatch
    from ampgate.connectivity.rules import is_spike, offline_alert_due

    s = Settings(spike_fraction=0.05, spike_window=60, spike_min=10, offline_alert=900)
    assert not is_spike(10, 1000, s) and is_spike(51, 1000, s)
    assert not is_spike(9, 20, s)  # a small fleet needs spike_min drops
    w = SpikeWatch(s)
    assert w.observe(1000.0, 5, 1000) is None
    assert w.observe(1005.0, 300, 1000) == "opened"
    assert w.observe(1010.0, 600, 1000) is None and w.open is not None and w.open.disconnects == 600
    assert w.observe(1040.0, 0, 1000) is None  # quiet, but not for a whole window yet
    assert w.observe(1071.0, 0, 1000) == "ended"
    w.open = None
    assert w.covers(1004.0) and w.covers(1060.0) and not w.covers(2000.0)
    # A drop during the incident raises no alert of its own; a lone one does after offline_alert; flapping damps.
    assert not offline_alert_due(1004.0, False, w.covers(1004.0), 5000.0, s)
    assert offline_alert_due(2000.0, False, w.covers(2000.0), 2900.0, s)
    assert not offline_alert_due(2000.0, False, False, 2899.0, s)
    assert not offline_alert_due(2000.0, True, False, 9999.0, s)
