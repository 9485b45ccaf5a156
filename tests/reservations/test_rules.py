"""The reservation rules, pure: what a reservation covers, who may use it, what a start is answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ampgate.reservations.rules import ALLOWED, Hold, covers, expired, held_for, judge_start, token_matches

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=30)


def hold(
    rid: int = 1,
    *,
    evse: int | None = None,
    connector: int | None = None,
    token: str = "ALICE",
    group: str | None = None,
    until: datetime = LATER,
    protocol: str = "ocpp1.6",
) -> Hold:
    return Hold(
        id=rid,
        charger_id="CP",
        protocol=protocol,
        evse_id=evse,
        connector_id=connector,
        id_token=token,
        group=group,
        expires_at=until,
    )


def test_a_16_connector_reservation_covers_that_connector_only() -> None:
    h = hold(connector=2)
    assert covers(h, None, 2)
    assert not covers(h, None, 1)
    # A 2.0.1 start (with an EVSE) never matches a 1.6 connector reservation.
    assert not covers(h, 2, 2)


def test_a_201_evse_reservation_covers_every_connector_of_that_evse() -> None:
    h = hold(evse=1, protocol="ocpp2.0.1")
    assert covers(h, 1, 1) and covers(h, 1, 2) and covers(h, 1, None)
    assert not covers(h, 2, 1)


def test_a_reservation_of_no_particular_place_covers_none() -> None:
    h = hold()
    assert h.anywhere
    assert not covers(h, None, 1) and not covers(h, 1, 1)


@pytest.mark.parametrize(
    ("presented", "group", "reserved", "reserved_group", "ok"),
    [
        ("ALICE", None, "ALICE", None, True),
        ("alice", None, "ALICE", None, True),  # case-insensitive, as OCPP compares identifiers
        ("BOB", None, "ALICE", None, False),
        ("BOB", "FLEET", "ALICE", "FLEET", True),  # parent matches parent
        ("BOB", "ALICE", "ALICE", None, True),  # presented parent is the reserved token
        ("FLEET", None, "ALICE", "fleet", True),  # presented token is the reserved parent
        ("BOB", "OTHER", "ALICE", "FLEET", False),
    ],
)
def test_token_or_group_matches_token_or_group(
    presented: str, group: str | None, reserved: str, reserved_group: str | None, ok: bool
) -> None:
    assert token_matches(hold(token=reserved, group=reserved_group), presented, group) is ok


def test_the_reserving_token_starts_on_its_connector_and_uses_the_reservation() -> None:
    h = hold(connector=1)
    assert judge_start([h], NOW, None, 1, "ALICE", None).uses == h


def test_another_token_is_refused_on_the_reserved_connector_but_not_elsewhere() -> None:
    h = hold(connector=1)
    assert judge_start([h], NOW, None, 1, "BOB", None).refused_by == h
    assert judge_start([h], NOW, None, 2, "BOB", None) == ALLOWED


def test_a_group_member_may_use_the_groups_reservation() -> None:
    h = hold(evse=1, group="FLEET", protocol="ocpp2.0.1")
    assert judge_start([h], NOW, 1, 1, "CAROL", "FLEET").uses == h
    assert judge_start([h], NOW, 1, 1, "CAROL", "OTHER").refused_by == h


def test_the_reserving_token_elsewhere_leaves_a_placed_reservation_alone() -> None:
    # 1.6 §5.13: used only by a start "on the reserved connector".
    assert judge_start([hold(connector=1)], NOW, None, 2, "ALICE", None) == ALLOWED


def test_a_reservation_of_any_connector_refuses_nobody_and_is_used_by_its_token_anywhere() -> None:
    h = hold()
    assert judge_start([h], NOW, None, 3, "BOB", None) == ALLOWED
    assert judge_start([h], NOW, None, 3, "ALICE", None).uses == h


def test_the_reservation_covering_the_place_is_preferred_over_one_of_any_place() -> None:
    anywhere, here = hold(1), hold(2, connector=2)
    assert judge_start([anywhere, here], NOW, None, 2, "ALICE", None).uses == here


def test_an_expired_reservation_counts_for_nothing_from_its_expiry_on() -> None:
    h = hold(connector=1, until=NOW)
    assert judge_start([h], NOW, None, 1, "BOB", None) == ALLOWED
    assert judge_start([h], NOW - timedelta(seconds=1), None, 1, "BOB", None).refused_by == h
    assert expired([h, hold(2)], NOW) == [h]


def test_held_for_finds_a_live_reservation_of_the_token_on_the_charger() -> None:
    h = hold(connector=1, group="FLEET")
    assert held_for([h], NOW, "alice") == h
    assert held_for([h], NOW, "FLEET") == h
    assert held_for([h], NOW, "BOB") is None
    assert held_for([h], LATER, "ALICE") is None
