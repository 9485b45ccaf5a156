"""Which tariff a session gets (pure): id-token group > charger > site > default; an assignment naming a tariff
that is gone or not valid at the session's start passes to the next level."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ampgate.billing.tariffs import resolve
from tests.pricing.builders import comp, element, tariff

T = {name: tariff(element(comp("ENERGY", "0.30")), id=name) for name in ("G", "C", "S", "D")}
ALL = {
    ("id_token_group", "FLEET"): "G",
    ("charger", "CP1"): "C",
    ("site", "S1"): "S",
    ("default", ""): "D",
}


@pytest.mark.parametrize(
    ("group", "charger", "site", "expected"),
    [
        ("FLEET", "CP1", "S1", ("G", "id_token_group")),
        (None, "CP1", "S1", ("C", "charger")),
        ("OTHER", "CP1", "S1", ("C", "charger")),
        (None, "CP2", "S1", ("S", "site")),
        (None, "CP2", None, ("D", "default")),
        ("FLEET", "CP2", None, ("G", "id_token_group")),
    ],
)
def test_the_most_specific_assignment_decides(group, charger, site, expected) -> None:
    assert resolve(ALL, T, group=group, charger_id=charger, site_id=site) == expected


def test_no_assignment_no_tariff() -> None:
    assert resolve({}, T, group="FLEET", charger_id="CP1", site_id="S1") is None
    assert resolve({("site", "S1"): "S"}, T, group=None, charger_id="CP1", site_id=None) is None


def test_a_missing_tariff_or_one_outside_its_validity_passes_to_the_next_level() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    later = tariff(element(comp("ENERGY", "0.40")), id="C", start_date_time=start)
    tariffs = {**T, "C": later}
    before, after = datetime(2026, 4, 30, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC)
    assert resolve(ALL, tariffs, group=None, charger_id="CP1", site_id="S1", at=before) == ("S", "site")
    assert resolve(ALL, tariffs, group=None, charger_id="CP1", site_id="S1", at=after) == ("C", "charger")
    ended = tariff(element(comp("ENERGY", "0.40")), id="S", end_date_time=start)
    tariffs = {**T, "S": ended}
    assert resolve(ALL, tariffs, group=None, charger_id="CP2", site_id="S1", at=after) == ("D", "default")
    gone = {k: v for k, v in T.items() if k != "G"}
    assert resolve(ALL, gone, group="FLEET", charger_id="CP1", site_id="S1") == ("C", "charger")
