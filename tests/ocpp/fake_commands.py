"""A stand-in Commander and a world around a real store and router, for the services built on commands and
charger notifications (display messages, customer information, firmware publishing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from ampgate.reports import ReportRepository, Reports
from ampgate.store import Store
from tests.ocpp.fakes import Harness

Reply = Any  # a payload, an exception (raised), or a callable of the payload giving either


class FakeCommander:
    """Answers each action with what `replies` holds for it, and records what was sent. `protocol` is what
    `ready` says the charger speaks."""

    def __init__(self, protocol: str, replies: dict[str, Reply]) -> None:
        self.protocol = protocol
        self.replies = replies
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.called = trio.Event()

    def ready(self, charger_id: str, action: str) -> str:
        return self.protocol

    async def call(self, charger_id: str, action: str, payload: Any) -> Any:
        self.sent.append((action, payload))
        self.called.set()
        reply = self.replies[action]
        if callable(reply):
            reply = reply(payload)
        if isinstance(reply, Exception):
            raise reply
        return reply


class World:
    """A router harness (its bus hears every event), a running store, reports on it and a fake commander."""

    def __init__(self, store: Store, commander: FakeCommander) -> None:
        self.h = Harness(accepted=["CP"])
        self.store = store
        self.commander = commander
        self.report_parts = ReportRepository(store)
        self.reports = Reports(self.report_parts, self.h.clock)

    async def notify(self, session: Any, action: str, payload: dict[str, Any]) -> Any:
        """A charger's notification through the router; returns its reply once it came (after a commit)."""
        reply = self.h.call(session, action, payload)
        if reply is None:
            with trio.fail_after(5):
                while not self.h.link.sent:  # noqa: ASYNC110 (the fake link has no event to wait on)
                    await trio.sleep(0.01)
            _conn, reply = self.h.link.sent.pop()
        assert reply[0] == 3, reply
        return reply[2]


def run(
    tmp_path: Path,
    commander: FakeCommander,
    setup: Callable[[World], Any],
    scenario: Callable[[World, Any], Awaitable[None]],
) -> None:
    """Run `scenario(world, setup(world))` with the store and the router running."""

    async def main() -> None:
        store = Store(str(tmp_path / "t.db"))
        world = World(store, commander)
        built = setup(world)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            await nursery.start(world.h.router.run)
            with trio.fail_after(20):
                await scenario(world, built)
            nursery.cancel_scope.cancel()

    trio.run(main)
