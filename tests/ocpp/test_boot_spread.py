"""Boot spreading's rule, pure (a fake time and a scripted or seeded random draw, no I/O): at most `threshold`
boots Accepted per second, the rest Pending with an interval in [1, window]; a waiting charger Accepted when
room frees, when it was invited, or when its interval ended (never starved); invitations oldest first within
the room; forgetting gone connections; threshold 0 turns it off. Then the rule behind the BootNotification
handler: the answer, the session's boot state and the `charger.booted` event."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ampgate.events import ChargerBooted
from ampgate.ocpp.boot import BootHandlers
from ampgate.ocpp.boot_policy import ACCEPTED, PENDING
from ampgate.ocpp.boot_spread import DEADLINE_SLACK_S, WINDOW_S, BootSpread

from .fakes import Harness

BOOT_201 = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}


class Time:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Draws:
    """A random source that answers from a script and records what it was asked."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)
        self.asked: list[tuple[int, int]] = []

    def __call__(self, a: int, b: int) -> int:
        self.asked.append((a, b))
        return self.values.pop(0)


def rule(threshold: int = 2, window: int = 10, *draws: int) -> tuple[BootSpread, Time, Draws]:
    time, randint = Time(), Draws(*draws)
    return BootSpread(threshold=threshold, spread_window=window, now=time, randint=randint), time, randint


def everyone(charger_id: str, conn_id: int) -> bool:
    return True


def test_boots_past_the_threshold_within_a_second_are_pending_with_a_drawn_interval() -> None:
    spread, time, draws = rule(2, 10, 7, 3)
    assert spread.admit("A", 1) is None and spread.admit("B", 2) is None
    time.t += 0.5
    assert spread.admit("C", 3) == 7
    assert spread.admit("D", 4) == 3
    assert draws.asked == [(1, 10), (1, 10)]
    assert spread.pending() == 2 and spread.is_pending("C") and not spread.is_pending("A")
    assert spread.room() == 0 and spread.spread == 2


def test_the_window_slides() -> None:
    spread, time, _ = rule(2, 10, 5)
    assert spread.admit("A", 1) is None
    time.t += 0.6
    assert spread.admit("B", 2) is None
    time.t += 0.3
    assert spread.admit("C", 3) == 5  # A and B are both within the last second
    time.t += 0.1 + 1e-9  # A's boot is a second old: one slot free
    assert spread.room() == 1
    assert spread.admit("E", 5) is None
    assert spread.room() == 0


def test_a_waiting_charger_is_accepted_when_room_frees() -> None:
    spread, time, _ = rule(1, 10, 8)
    spread.admit("A", 1)
    assert spread.admit("B", 2) == 8
    time.t += WINDOW_S + 0.01
    assert spread.admit("B", 2) is None
    assert spread.pending() == 0 and spread.room() == 0  # its boot took the slot


def test_an_early_boot_into_a_full_window_keeps_its_deadline_and_its_place() -> None:
    spread, time, draws = rule(1, 10, 8, 9)
    spread.admit("A", 1)
    assert spread.admit("B", 2) == 8  # deadline 108
    assert spread.admit("C", 3) == 9
    time.t = 101.1
    assert spread.admit("F", 4) is None  # a fresh boot into the freed room takes the slot
    time.t = 101.5
    # B boots again 1.5 s after it was told 8 s: told what is left (6.5, so 7), not a new draw.
    assert spread.admit("B", 2) == 7
    assert len(draws.asked) == 2
    # Still first in line for an invitation.
    time.t = 102.2
    assert spread.invite(1, everyone) == ["B"]


def test_nobody_is_starved_once_its_interval_has_passed() -> None:
    spread, time, _ = rule(1, 10, 4)
    spread.admit("A", 1)
    assert spread.admit("B", 2) == 4
    # The window is kept full by other boots all along.
    for _ in range(8):
        time.t += 0.5
        spread._slots.append(time.t)
        assert spread.room() == 0
        if time.t < 100.0 + 4 - DEADLINE_SLACK_S:
            assert spread.admit("B", 2) is not None
    assert time.t >= 100.0 + 4
    assert spread.admit("B", 2) is None
    assert spread.pending() == 0


def test_a_punctual_charger_a_little_early_is_accepted() -> None:
    spread, time, _ = rule(1, 10, 3)
    spread.admit("A", 1)
    assert spread.admit("B", 2) == 3
    time.t += 3 - DEADLINE_SLACK_S / 2
    spread._slots.append(time.t)  # the window is full
    assert spread.admit("B", 2) is None


def test_invitations_go_oldest_first_within_the_room_and_take_their_slots() -> None:
    spread, time, _ = rule(3, 10, 5, 5, 5, 5)
    for i, cid in enumerate("ABC"):
        assert spread.admit(cid, i) is None
    for i, cid in enumerate("DEFG"):
        time.t += 0.01
        assert spread.admit(cid, 10 + i) == 5
    assert spread.invite(5, everyone) == []  # no room yet
    time.t += WINDOW_S
    assert spread.invite(2, everyone) == ["D", "E"]  # the limit
    assert spread.room() == 1
    gone = {"F"}
    assert spread.invite(5, lambda cid, conn: cid not in gone) == ["G"]  # the room; F is gone: forgotten
    assert spread.room() == 0 and not spread.is_pending("F")
    # An invited charger's boot is Accepted, full window or not, and takes no second slot.
    assert spread.admit("D", 10) is None
    assert spread.room() == 0 and spread.pending() == 2  # E and G still to boot
    assert spread.invited == 3


def test_gone_connections_are_forgotten_and_a_newer_one_is_kept() -> None:
    spread, time, _ = rule(1, 10, 5, 5, 5)
    spread.admit("A", 1)
    spread.admit("B", 2)
    spread.admit("C", 3)
    spread.admit("D", 4)
    spread.forget("B", 99)  # an older connection of B's: B waits on
    assert spread.is_pending("B")
    spread.forget("B", 2)
    assert not spread.is_pending("B")
    spread.forget("C")
    assert spread.pending() == 1
    time.t += WINDOW_S
    assert spread.invite(1, everyone) == ["D"]
    assert spread.reconcile(lambda cid, conn: cid != "D") == 1
    assert spread.pending() == 0


def test_threshold_zero_is_off() -> None:
    spread, _, draws = rule(0, 10)
    assert not spread.enabled
    assert all(spread.admit(f"CP{i}", i) is None for i in range(10_000))
    assert spread.pending() == 0 and draws.asked == [] and spread.invite(100, everyone) == []


def test_memory_for_the_window_is_bounded_by_the_threshold() -> None:
    spread, _, _ = rule(3, 10)
    spread._randint = lambda a, b: b
    for i in range(50):
        spread.admit(f"CP{i}", i)
    assert len(spread._slots) == 3 and spread.pending() == 47


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="at least 0"):
        rule(-1)
    with pytest.raises(ValueError, match="at least 1 s"):
        rule(5, 0)
    rule(0, 0)  # off: the window does not matter


@settings(max_examples=40, deadline=None)
@given(
    fleet=st.integers(1, 400),
    threshold=st.integers(1, 50),
    window=st.integers(1, 15),
    seed=st.integers(0, 2**32),
)
def test_a_storm_ends_with_everyone_accepted_within_about_one_window(
    fleet: int, threshold: int, window: int, seed: int
) -> None:
    """The whole fleet boots within the first 100 ms; every charger told Pending boots again exactly when told
    (nobody triggers it). Every interval is in [1, window], at most `threshold` fresh boots are accepted in the
    first second, and everyone is Accepted by the end of the window."""
    time = Time()
    start = time.t
    rng = random.Random(seed)
    spread = BootSpread(threshold=threshold, spread_window=window, now=time, randint=rng.randint)
    due: list[tuple[float, str]] = []
    accepted_at: dict[str, float] = {}
    for i in range(fleet):
        time.t = start + 0.1 * i / fleet
        interval = spread.admit(f"CP{i}", i)
        if interval is None:
            accepted_at[f"CP{i}"] = time.t
        else:
            assert 1 <= interval <= window
            due.append((time.t + interval, f"CP{i}"))
    assert len(accepted_at) == min(fleet, threshold)
    while due:
        due.sort()
        time.t, cid = due.pop(0)
        interval = spread.admit(cid, int(cid[2:]))
        if interval is None:
            accepted_at[cid] = time.t
        else:
            due.append((time.t + interval, cid))
    assert len(accepted_at) == fleet and spread.pending() == 0
    assert max(accepted_at.values()) <= start + 0.1 + window


# -- behind the BootNotification handler ---------------------------------------------------------------------


def handler_setup(threshold: int, unknown_boot: str = "accept") -> tuple[Harness, BootSpread, Time]:
    h = Harness(unknown_boot=unknown_boot)
    time = Time()
    spread = BootSpread(threshold=threshold, spread_window=10, now=time, randint=lambda a, b: 6)
    BootHandlers(h.policy, h.chargers, h.bus, h.clock, h.router.time, spread).register(h.router)
    return h, spread, time


def test_the_handler_answers_pending_to_spread_and_says_so_in_its_event() -> None:
    h, spread, time = handler_setup(1)
    a, b = h.open("A", "ocpp2.0.1", 1), h.open("B", "ocpp2.0.1", 2)
    assert h.call(a, "BootNotification", BOOT_201)[2]["status"] == ACCEPTED
    reply = h.call(b, "BootNotification", BOOT_201)[2]
    assert (reply["status"], reply["interval"]) == (PENDING, 6)
    assert b.boot_state == PENDING
    # Pending like any other: it may send only its boot.
    assert h.call(b, "Heartbeat", {}, unique_id="hb")[:3] == [4, "hb", "SecurityError"]
    booted = [e for e in h.published() if isinstance(e, ChargerBooted)]
    assert [(e.charger_id, e.boot_status, e.spread) for e in booted] == [
        ("A", ACCEPTED, False),
        ("B", PENDING, True),
    ]
    # The policy accepted it: it is remembered as accepted, only its answer waits.
    assert h.policy.is_accepted("B")
    time.t += WINDOW_S
    reply = h.call(b, "BootNotification", BOOT_201)[2]
    assert (reply["status"], reply["interval"]) == (ACCEPTED, 300)
    assert b.boot_state == ACCEPTED and spread.pending() == 0


def test_the_policys_own_pending_is_neither_spread_nor_counted() -> None:
    h, spread, _ = handler_setup(1, unknown_boot="pending")
    for i in range(3):
        s = h.open(f"W{i}", "ocpp1.6", i)
        reply = h.call(s, "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})[2]
        assert (reply["status"], reply["interval"]) == (PENDING, 60)
    assert spread.pending() == 0 and spread.room() == 1
    assert not any(e.spread for e in h.published() if isinstance(e, ChargerBooted))
