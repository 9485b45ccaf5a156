"""Boot spreading's driver in-process (MockClock, a fake Commander and presence): TriggerMessage BootNotification to
the oldest waiting chargers as the window frees, only to those still on the connection that was told Pending,
no more in flight than its bound; a disconnect event (or a reconcile after lost events) forgets a charger; off,
it does nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import trio
import trio.testing

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.errors import ChargerTimeoutError
from ampgate.events import ChargerDisconnected
from ampgate.ocpp.boot_spread import BootSpread
from ampgate.ocpp.boot_spread_task import TICK_S, TRIGGER_BOOT, BootSpreadTriggers

AT = datetime(2026, 11, 30, tzinfo=UTC)


@dataclass
class Link:
    online: bool
    protocol: str | None
    conn_id: int | None


class Commands:
    """Records each call; answers with `status` (None: never answers; an exception: raises it)."""

    def __init__(self, status: str | Exception | None = "Accepted") -> None:
        self.status = status
        self.calls: list[tuple[float, str, str, Any]] = []

    async def call(self, charger_id: str, action: str, payload: Any) -> Any:
        self.calls.append((trio.current_time(), charger_id, action, payload))
        if isinstance(self.status, Exception):
            raise self.status
        if self.status is None:
            await trio.sleep_forever()
        await trio.sleep(0.01)
        return {"status": self.status}


def setup(threshold: int, fleet: int, commands: Commands, **kw: Any):
    spread = BootSpread(threshold=threshold, spread_window=10, now=trio.current_time, randint=lambda a, b: 10)
    presence = {f"CP{i}": Link(True, "ocpp2.0.1", i) for i in range(fleet)}
    bus = EventBus()
    task = BootSpreadTriggers(spread, commands, presence, bus, Clock(), **kw)
    return spread, presence, bus, task


def run(body) -> None:
    trio.run(body, clock=trio.testing.MockClock(autojump_threshold=0))


def test_waiting_chargers_are_triggered_oldest_first_as_room_frees() -> None:
    commands = Commands()

    async def body() -> None:
        spread, _, _, task = setup(2, 7, commands)
        told = [spread.admit(f"CP{i}", i) for i in range(7)]
        assert told == [None, None, 10, 10, 10, 10, 10]
        async with trio.open_nursery() as nursery:
            await nursery.start(task.run)
            await trio.sleep(TICK_S / 2)
            assert commands.calls == []  # the window is full
            await trio.sleep(1.0)
            # (trio starts the tasks of one wake in any order: compare each wake's as a set)
            assert {c[1] for c in commands.calls} == {"CP2", "CP3"}
            assert {(c[2], str(c[3])) for c in commands.calls} == {("TriggerMessage", str(TRIGGER_BOOT))}
            # They boot again (Accepted: they were invited), filling nothing more.
            assert spread.admit("CP2", 2) is None and spread.admit("CP3", 3) is None
            await trio.sleep(1.0)
            assert {c[1] for c in commands.calls[2:]} == {"CP4", "CP5"}
            await trio.sleep(1.0)
            assert [c[1] for c in commands.calls][-1] == "CP6"
            assert task.triggered == 5 and task.inflight == 0
            # Invitations are a window apart: never more than the threshold per second.
            times = [c[0] for c in commands.calls]
            assert all(b - a >= 1.0 - 1e-9 for a, b in zip(times, times[2:], strict=False))
            nursery.cancel_scope.cancel()

    run(body)


def test_only_chargers_still_on_the_told_connection_are_triggered() -> None:
    commands = Commands()

    async def body() -> None:
        spread, presence, bus, task = setup(1, 5, commands)
        for i in range(5):
            spread.admit(f"CP{i}", i)
        presence["CP1"].online = False  # gone; its disconnect event lost
        presence["CP2"].conn_id = 99  # reconnected: the new connection is Accepted [B01], not waiting
        async with trio.open_nursery() as nursery:
            await nursery.start(task.run)
            bus.publish(ChargerDisconnected(at=AT, charger_id="CP3", conn_id=3, code=1006, reason="lost"))
            await trio.testing.wait_all_tasks_blocked()
            assert not spread.is_pending("CP3") and spread.pending() == 3
            await trio.sleep(1.2)
            assert [c[1] for c in commands.calls] == ["CP4"]
            assert spread.pending() == 1  # CP4, invited, until it boots
            nursery.cancel_scope.cancel()

    run(body)


def test_unanswered_triggers_are_bounded_and_failures_counted() -> None:
    async def body() -> None:
        silent = Commands(status=None)
        spread, _, _, task = setup(5, 40, silent, max_inflight=3)
        for i in range(40):
            spread.admit(f"CP{i}", i)
        async with trio.open_nursery() as nursery:
            await nursery.start(task.run)
            await trio.sleep(10)
            assert len(silent.calls) == 3 and task.inflight == 3
            nursery.cancel_scope.cancel()

        failing = Commands(status=ChargerTimeoutError("CP did not answer"))
        spread, _, _, task = setup(2, 4, failing)
        for i in range(4):
            spread.admit(f"CP{i}", i)
        async with trio.open_nursery() as nursery:
            await nursery.start(task.run)
            await trio.sleep(1.2)
            assert task.trigger_failed == 2 and task.inflight == 0
            nursery.cancel_scope.cancel()

        refused = Commands(status="Rejected")
        spread, _, _, task = setup(2, 3, refused)
        for i in range(3):
            spread.admit(f"CP{i}", i)
        async with trio.open_nursery() as nursery:
            await nursery.start(task.run)
            await trio.sleep(1.2)
            assert task.trigger_failed == 1 and task.triggered == 0
            nursery.cancel_scope.cancel()

    run(body)


def test_off_it_returns_at_once() -> None:
    async def body() -> None:
        commands = Commands()
        _, _, bus, task = setup(0, 3, commands)
        async with trio.open_nursery() as nursery:
            await nursery.start(task.run)
        assert bus.subscribers() == 0 and commands.calls == []

    run(body)
