"""The reservations service over a real Store and a scripted commander, on trio's MockClock: the sweep ends
reservations at their expiry, a restart reloads active ones and fails pending ones, a timed-out ReserveNow is
followed by a CancelReservation, and a caller that goes away does not stop the outcome being recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from ampgate.bus import EventBus
from ampgate.errors import ChargerTimeoutError
from ampgate.events import ConnectorStatusChanged, ReservationEnded
from ampgate.reservations import NewReservation, ReservationBook, ReservationRepository, Reservations
from ampgate.reservations.service import SWEEP_INTERVAL
from ampgate.store import Store
from tests.ocpp.fakes import NOW, FixedClock


class Commander:
    """Answers from `replies[action]` (a payload, an exception, or an async callable returning one)."""

    def __init__(self) -> None:
        self.replies: dict[str, Any] = {"ReserveNow": {"status": "Accepted"}}
        self.calls: list[tuple[str, str, Any]] = []

    def ready(self, charger_id: str, action: str) -> str:
        return "ocpp1.6"

    async def call(self, charger_id: str, action: str, payload: Any) -> Any:
        self.calls.append((charger_id, action, payload))
        reply = self.replies.get(action, {"status": "Accepted"})
        if callable(reply):
            reply = await reply()
        if isinstance(reply, BaseException):
            raise reply
        await trio.lowlevel.checkpoint()
        return reply


class Tokens:
    def get(self, id_token: str) -> None:
        return None


class World:
    def __init__(self, path: Path) -> None:
        self.clock = FixedClock()
        self.store = Store(str(path), now=self.clock.now)
        self.bus = EventBus()
        self.events = self.bus.subscribe()
        self.rows = ReservationRepository(self.store)
        self.book = ReservationBook(self.rows, self.bus, self.clock.now)
        self.commander = Commander()
        self.service = Reservations(self.book, self.rows, self.commander, Tokens(), self.clock, self.bus)

    async def reserve(self, seconds: int = 60, connector: int = 1) -> int:
        row = await self.service.create(
            charger_id="CP1",
            connector_id=connector,
            id_token="ALICE",
            expires_at=NOW + timedelta(seconds=seconds),
        )
        return row.id


def run(path: Path, body: Callable[[World], Awaitable[None]]) -> None:
    async def main() -> None:
        w = World(path)
        async with trio.open_nursery() as nursery:
            await nursery.start(w.store.run)
            await nursery.start(w.service.run)
            await body(w)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "reservations.db"


def test_the_sweep_ends_a_reservation_at_its_expiry(db: Path) -> None:
    async def body(w: World) -> None:
        rid = await w.reserve(seconds=5)
        keep = await w.reserve(seconds=600, connector=2)
        w.clock.at = (NOW + timedelta(seconds=5)).timestamp()
        await trio.sleep(SWEEP_INTERVAL * 2)
        await w.store.write(lambda db: None)  # the end was written fire-and-forget
        row = w.rows.get(rid)
        assert row is not None
        assert (row.state, row.end_reason, row.ended_at) == ("ended", "expired", NOW + timedelta(seconds=5))
        assert w.rows.get(keep).state == "active"  # type: ignore[union-attr]
        ended = [e for e in iter(w.events.receive_nowait, None) if isinstance(e, ReservationEnded)]
        assert [(e.reservation_id, e.reason) for e in ended] == [(rid, "expired")]
        assert [h.id for h in w.book.holds("CP1")] == [keep]

    run(db, body)


def test_a_restart_reloads_active_reservations_and_fails_pending_ones(db: Path) -> None:
    ids: dict[str, int] = {}

    async def first(w: World) -> None:
        ids["active"] = await w.reserve()
        pending = await w.rows.insert(
            NewReservation(
                charger_id="CP1",
                protocol="ocpp1.6",
                evse_id=None,
                connector_id=2,
                connector_type=None,
                id_token="BOB",
                id_token_type=None,
                group_id_token=None,
                expires_at=NOW + timedelta(minutes=5),
            )
        )
        ids["pending"] = pending.id

    async def second(w: World) -> None:
        assert [h.id for h in w.book.holds("CP1")] == [ids["active"]]
        await w.store.write(lambda db: None)
        row = w.rows.get(ids["pending"])
        assert row is not None and (row.state, row.outcome) == ("failed", "node_restarted")
        # Ids are never reused.
        assert await w.reserve(connector=3) > ids["pending"]

    run(db, first)
    run(db, second)


def test_a_timed_out_reserve_now_is_followed_by_a_cancel(db: Path) -> None:
    async def body(w: World) -> None:
        w.commander.replies["ReserveNow"] = ChargerTimeoutError("slow")
        with pytest.raises(ChargerTimeoutError):
            await w.reserve()
        await trio.testing.wait_all_tasks_blocked()
        (rid,) = [p["reservationId"] for _, action, p in w.commander.calls if action == "ReserveNow"]
        assert w.commander.calls[-1] == ("CP1", "CancelReservation", {"reservationId": rid})
        row = w.rows.get(rid)
        assert row is not None and (row.state, row.outcome) == ("failed", "charger_timeout")
        assert w.book.holds("CP1") == ()

    run(db, body)


def test_the_outcome_is_recorded_when_the_caller_goes_away(db: Path) -> None:
    async def body(w: World) -> None:
        answer = trio.Event()

        async def later() -> dict[str, str]:
            await answer.wait()
            return {"status": "Accepted"}

        w.commander.replies["ReserveNow"] = later
        async with trio.open_nursery() as nursery:
            caller = trio.CancelScope()

            async def request() -> None:
                with caller:
                    await w.reserve()

            nursery.start_soon(request)
            await trio.testing.wait_all_tasks_blocked()
            caller.cancel()  # the HTTP client hangs up while ReserveNow is on the wire
            await trio.testing.wait_all_tasks_blocked()
            answer.set()
        await w.store.write(lambda db: None)
        (row,) = w.rows.page(10)
        assert row.state == "active" and [h.id for h in w.book.holds("CP1")] == [row.id]

    run(db, body)


def test_a_16_connector_reported_faulted_on_the_bus_ends_its_reservation(db: Path) -> None:
    async def body(w: World) -> None:
        rid = await w.reserve(connector=1)
        for evse_id in (1, None):  # a 2.0.1 EVSE 1 is not the 1.6 connector 1
            w.bus.publish(
                ConnectorStatusChanged(
                    at=NOW,
                    charger_id="CP1",
                    evse_id=evse_id,
                    connector_id=1,
                    old_status="Reserved",
                    status="Faulted",
                    error_code="GroundFailure",
                    reported_at=NOW,
                )
            )
            await trio.testing.wait_all_tasks_blocked()
            assert (w.book.active(rid) is None) is (evse_id is None)
        await w.store.write(lambda db: None)
        row = w.rows.get(rid)
        assert row is not None and (row.state, row.end_reason) == ("ended", "removed")

    run(db, body)
