"""The pure parts: ISO 8601 durations as VTNs write them, and an event's windows (back-to-back intervals under
the event's period, an interval's own period, the spec's "now" start)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from ampgate.openadr.mapping import Mapped, Rejection, decode_event, map_event
from ampgate.openadr.wire import FOREVER, parse_duration

from .conftest import EAN_A, T0, capacity_event, site


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15M", timedelta(minutes=15)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P1D", timedelta(days=1)),
        ("P2W", timedelta(days=14)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("P0Y0M0DT0H15M0S", timedelta(minutes=15)),
        ("P9999Y", FOREVER),
        ("PT0S", timedelta(0)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P1M", "P1Y", "-PT1H", "PT", "15 minutes", ""])
def test_durations_without_a_fixed_length_or_malformed_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def mapped(event: dict[str, object]) -> Mapped | Rejection:
    decoded = decode_event(msgspec.json.encode({**event, "id": "e1"}))
    assert not isinstance(decoded, Rejection)
    return map_event(
        decoded,
        None,
        [site("A", EAN_A)],
        ven_name="NL-AMP",
        first_seen=T0,
        delay_of=lambda ref, most: timedelta(0),
    )


def test_an_intervals_own_period_wins_and_the_spec_now_start_is_when_first_seen() -> None:
    event = capacity_event("p", kw=[10.0, 20.0], start=T0 + timedelta(hours=2))
    event["intervals"][1]["intervalPeriod"] = {"start": "0001-01-01T00:00:00Z", "duration": "PT5M"}  # type: ignore[index]
    m = mapped(event)
    assert isinstance(m, Mapped)
    assert [(lim.start, lim.end) for lim in m.limits] == [
        (T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=15)),
        (T0, T0 + timedelta(minutes=5)),
    ]


def test_an_interval_without_a_duration_has_no_end() -> None:
    event = capacity_event("p", kw=[10.0], start=T0, duration="PT0S")
    m = mapped(event)
    assert isinstance(m, Mapped)
    assert m.limits[0].end == T0 + FOREVER


def test_an_event_without_any_period_is_rejected() -> None:
    event = capacity_event("p", kw=[10.0], start=T0)
    del event["intervalPeriod"]
    m = mapped(event)
    assert isinstance(m, Rejection)
    assert (m.reason, m.field) == ("bad_interval", "$.intervals[0].intervalPeriod")
