"""A queued command whose send raises (the gateway refuses its frame, or fails on the way) is marked failed with
the error and the charger's next queued command goes: over a real Store, bus, Commander and outbox, with only the
link to the charger scripted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import trio

from ampgate.bus import EventBus
from ampgate.commands import CommandQueue, CommandRepository
from ampgate.events import CommandFailed
from ampgate.ocpp import payloads
from ampgate.ocpp.commander import Commander
from ampgate.ocpp.outbox import CallManager
from ampgate.store import Store
from tests.ocpp.fakes import FixedClock


@dataclass
class Link:
    online: bool = False
    protocol: str | None = "ocpp1.6"
    conn_id: int | None = 7


@dataclass
class Session:
    boot_state: str = "Accepted"
    solicited: frozenset[str] = field(default_factory=frozenset)


@dataclass
class ChargerRow:
    protocol: str | None = "ocpp1.6"


class Wire:
    """The charger's link: raises for a Reset (what the hub does with a frame it cannot carry), records and lets
    the test answer the rest."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.sent: list[tuple[str, str]] = []  # (action, unique id)

    def send(self, charger_id: str, frame: bytes) -> bool:
        if not self.link.online:
            return False
        _, uid, action, _ = msgspec.json.decode(frame)
        if action == "Reset":
            raise ValueError("message of 20000000 bytes for connection 0x7 is larger than 16777216")
        self.sent.append((action, uid))
        return True


def test_a_queued_command_whose_send_raises_fails_and_the_next_goes(tmp_path: Path) -> None:
    async def main() -> None:
        clock = FixedClock()
        store = Store(str(tmp_path / "c.db"), now=clock.now)
        bus = EventBus()
        events = bus.subscribe()
        link = Link()
        wire = Wire(link)
        outbox = CallManager(wire.send)
        commander = Commander(
            outbox,
            {"CP1": link},
            {7: Session()},
            lambda cid: cid == "CP1",
            publish=bus.publish,
            clock=clock,
            timeout=30,
        )
        rows = CommandRepository(store)
        queue = CommandQueue(
            rows, commander, {"CP1": ChargerRow()}, {"CP1": link}, payloads.validate_request, bus, clock
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            await nursery.start(queue.run)
            reset = await queue.enqueue("CP1", "Reset", {"type": "Soft"})
            clear = await queue.enqueue("CP1", "ClearCache", {})

            link.online = True
            queue.kick("CP1")
            # The Reset fails at its send; the ClearCache behind it goes on the wire: answer it.
            with trio.fail_after(5):
                while not wire.sent:  # noqa: ASYNC110 (polls the fake link, which has no event)
                    await trio.sleep(0.01)
            assert [a for a, _ in wire.sent] == ["ClearCache"]
            assert outbox.answered("CP1", wire.sent[0][1], {"status": "Accepted"}, None)
            with trio.fail_after(5):
                while queue.delivering("CP1"):  # noqa: ASYNC110
                    await trio.sleep(0.01)

            failed = rows.get(reset.id)
            assert failed is not None and failed.state == "failed"
            assert failed.error_code == "send_failed"
            assert "larger than 16777216" in (failed.error_message or "")
            done = rows.get(clear.id)
            assert done is not None and done.state == "answered" and done.reply == {"status": "Accepted"}
            assert rows.next_queued("CP1") is None and outbox.pending("CP1") == 0
            seen = []
            while (ev := events.receive_nowait()) is not None:
                seen.append(ev)
            fails = [e for e in seen if isinstance(e, CommandFailed)]
            assert [(e.command_id, e.code) for e in fails] == [(reset.id, "send_failed")]
            nursery.cancel_scope.cancel()

    trio.run(main)
