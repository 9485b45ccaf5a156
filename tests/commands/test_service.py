"""The command queue over a real Store and bus with a scripted commander: delivery in order while the charger
is there, back to the queue when it left before the CALL went out, failed (never resent) once it was on the
wire, superseding, expiry, and a restart failing what was on the wire."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ampgate.bus import EventBus
from ampgate.commands import CommandQueue, CommandRepository
from ampgate.commands.model import QueuedRequest
from ampgate.errors import ChargerOfflineError, ChargerTimeoutError
from ampgate.events import CommandCancelled, CommandExpired, CommandFailed, CommandQueued
from ampgate.ocpp import payloads
from ampgate.store import Store
from tests.ocpp.fakes import FixedClock


@dataclass
class Call:
    unique_id: str
    sent: bool = False


@dataclass
class Link:
    online: bool
    protocol: str | None = "ocpp1.6"


@dataclass
class ChargerRow:
    protocol: str | None = "ocpp1.6"


class Commander:
    """Online chargers answer {"status": "Accepted"}; `script[action]` overrides: an exception, raised after
    the CALL went on the wire when `on_wire` says so."""

    def __init__(self, presence: dict[str, Link]) -> None:
        self.presence = presence
        self.calls: list[tuple[str, str, Any, str | None]] = []
        self.script: dict[str, tuple[BaseException, bool]] = {}
        self.ids = 0

    def check(self, charger_id: str, action: str, payload: Any) -> str:
        link = self.presence.get(charger_id)
        if link is None or not link.online:
            raise ChargerOfflineError(f"{charger_id} is not connected")
        payloads.validate_request("ocpp1.6", action, payload)
        return "ocpp1.6"

    async def call(self, charger_id, action, payload, *, command_id=None, on_enqueued=None) -> Any:
        self.check(charger_id, action, payload)
        self.ids += 1
        c = Call(f"u{self.ids}")
        if on_enqueued is not None:
            on_enqueued(c)
        await trio.lowlevel.checkpoint()
        if action in self.script:
            error, on_wire = self.script.pop(action)
            c.sent = on_wire
            raise error
        c.sent = True
        self.calls.append((charger_id, action, payload, command_id))
        return {"status": "Accepted"}


class World:
    def __init__(self, path: Path) -> None:
        self.clock = FixedClock()
        self.store = Store(str(path), now=self.clock.now)
        self.bus = EventBus()
        self.events = self.bus.subscribe()
        self.presence: dict[str, Link] = {"CP1": Link(online=False)}
        self.chargers = {"CP1": ChargerRow(), "FRESH": ChargerRow(protocol=None)}
        self.commander = Commander(self.presence)
        self.rows = CommandRepository(self.store)
        self.queue = CommandQueue(
            self.rows,
            self.commander,
            self.chargers,
            self.presence,
            payloads.validate_request,
            self.bus,
            self.clock,
        )

    def drain(self) -> list[Any]:
        out = []
        while (ev := self.events.receive_nowait()) is not None:
            out.append(ev)
        return out

    async def come_back(self, charger_id: str = "CP1") -> None:
        self.presence[charger_id].online = True
        self.queue.kick(charger_id)  # what a charger.connected / charger.booted event does
        with trio.fail_after(5):
            while self.queue.delivering(charger_id):  # noqa: ASYNC110 (polls the service, which has no event)
                await trio.sleep(0.01)


def run(path: Path, body: Callable[[World], Awaitable[None]]) -> None:
    async def main() -> None:
        w = World(path)
        async with trio.open_nursery() as nursery:
            await nursery.start(w.store.run)
            await nursery.start(w.queue.run)
            await body(w)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_queued_commands_go_in_order_once_the_charger_is_back(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        a = await w.queue.enqueue("CP1", "Reset", {"type": "Soft"})
        b = await w.queue.enqueue("CP1", "ClearCache", {})
        assert w.commander.calls == []
        await w.come_back()
        assert [(act, cid) for _, act, _, cid in w.commander.calls] == [("Reset", a.id), ("ClearCache", b.id)]
        for cid in (a.id, b.id):
            row = w.rows.get(cid)
            assert row is not None and row.state == "answered" and row.reply == {"status": "Accepted"}
        assert [type(e) for e in w.drain()] == [CommandQueued, CommandQueued]

    run(tmp_path / "c.db", body)


def test_a_charger_gone_before_the_call_went_out_keeps_it_queued_but_one_lost_on_the_wire_fails(
    tmp_path: Path,
) -> None:
    async def body(w: World) -> None:
        w.commander.script["Reset"] = (ChargerOfflineError("dropped first"), False)
        a = await w.queue.enqueue("CP1", "Reset", {"type": "Soft"})
        await w.come_back()
        row = w.rows.get(a.id)
        assert row is not None and row.state == "queued" and row.sent_at is None
        # Next time it goes, and is lost on the wire: failed, never sent again.
        w.commander.script["Reset"] = (ChargerTimeoutError("no answer"), True)
        await w.come_back()
        row = w.rows.get(a.id)
        assert row is not None and row.state == "failed" and row.error_code == "charger_timeout"
        await w.come_back()
        assert w.commander.calls == []
        assert [type(e) for e in w.drain()][-1:] == [CommandQueued]  # the Commander publishes its own failure

    run(tmp_path / "c.db", body)


def test_a_newer_command_supersedes_the_queued_one_with_its_key(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        old = await w.queue.enqueue("CP1", "ClearCache", {}, supersede_key="cache")
        other = await w.queue.enqueue("CP1", "Reset", {"type": "Soft"}, supersede_key="reset")
        new = await w.queue.enqueue("CP1", "ClearCache", {}, supersede_key="cache")
        row = w.rows.get(old.id)
        assert row is not None and row.state == "cancelled" and row.superseded_by == new.id
        cancelled = [e for e in w.drain() if isinstance(e, CommandCancelled)]
        assert [(e.command_id, e.reason, e.superseded_by) for e in cancelled] == [
            (old.id, "superseded", new.id)
        ]
        await w.come_back()
        assert [cid for *_, cid in w.commander.calls] == [other.id, new.id]

    run(tmp_path / "c.db", body)


def test_an_expired_command_is_never_sent(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        a = await w.queue.enqueue("CP1", "Reset", {"type": "Soft"}, ttl_s=10)
        w.clock.at += 11
        await w.come_back()
        assert w.commander.calls == []
        row = w.rows.get(a.id)
        assert row is not None and row.state == "expired"
        assert any(isinstance(e, CommandExpired) and e.command_id == a.id for e in w.drain())

    run(tmp_path / "c.db", body)


def test_a_restart_fails_what_was_on_the_wire_and_keeps_the_queue(tmp_path: Path) -> None:
    path = tmp_path / "c.db"

    async def first(w: World) -> None:
        await w.queue.enqueue("CP1", "Reset", {"type": "Soft"})
        await w.queue.enqueue("CP1", "ClearCache", {})
        first_row = w.rows.next_queued("CP1")
        assert first_row is not None
        await w.rows.take_for_delivery(first_row.id)  # on the wire when the node stopped

    run(path, first)

    async def second(w: World) -> None:
        rows = w.rows.page("CP1", 10, None, None)
        states = {r.action: r.state for r in rows}
        assert states == {"Reset": "failed", "ClearCache": "queued"}
        reset = next(r for r in rows if r.action == "Reset")
        assert reset.error_code == "node_restarted"
        assert any(isinstance(e, CommandFailed) and e.command_id == reset.id for e in w.drain())
        await w.come_back()
        assert [a for _, a, _, _ in w.commander.calls] == ["ClearCache"]

    run(path, second)


def test_a_charger_that_never_connected_cannot_have_a_queue(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        try:
            await w.queue.enqueue("FRESH", "Reset", {"type": "Soft"})
        except Exception as e:
            assert getattr(e, "code", None) == "protocol_unknown"
        else:
            raise AssertionError("queued for a charger of unknown protocol")
        assert w.rows.page("FRESH", 10, None, None) == []

    run(tmp_path / "c.db", body)


def test_a_batch_is_recorded_in_one_write_with_each_refusal_answered_in_its_place(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        w.presence["CP2"] = Link(online=False)
        w.chargers["CP2"] = ChargerRow()
        await trio.sleep(0.2)  # the queue's start-up writes are counted
        ops = w.store.stats.ops
        out = await w.queue.enqueue_many(
            [
                QueuedRequest(charger_id="CP1", action="Reset", payload={"type": "Soft"}, command_id="c1"),
                QueuedRequest(charger_id="FRESH", action="Reset", payload={"type": "Soft"}),
                QueuedRequest(charger_id="CP2", action="Reset", payload={"type": "Hard"}, command_id="c2"),
                QueuedRequest(charger_id="NOPE", action="Reset", payload={"type": "Soft"}),
            ]
        )
        assert [getattr(r, "id", None) for r in out] == ["c1", None, "c2", None]
        assert [getattr(e, "code", None) for e in out[1::2]] == ["protocol_unknown", "not_found"]
        await trio.sleep(0.2)
        assert w.store.stats.ops - ops == 1  # the two records, one write (enqueue: one each)
        assert [e.command_id for e in w.drain() if isinstance(e, CommandQueued)] == ["c1", "c2"]
        await w.come_back("CP1")
        await w.come_back("CP2")
        assert [(c, p, cid) for c, _a, p, cid in w.commander.calls] == [
            ("CP1", {"type": "Soft"}, "c1"),
            ("CP2", {"type": "Hard"}, "c2"),
        ]

    run(tmp_path / "c.db", body)
