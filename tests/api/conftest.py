"""API fixtures: the Litestar app over a tiny node stand-in (a real Store on a temp file, a presence dict and a
health function), driven in-process by httpx on our own trio loop, as Hypercorn will serve it.

Litestar's TestClient / AsyncTestClient run the app on a separate event loop thread (an anyio portal); the
store's writer delivers commits to the trio loop that started it, so the app must run on ours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ampgate.api import create_app
from ampgate.errors import ChargerOfflineError
from ampgate.store import ChargerRow, Store

BASE_URL = "http://ampgate.test"


@dataclass
class FakePresence:
    online: bool
    protocol: str | None
    connected_since: datetime | None
    last_seen: datetime | None


class StandInNode:
    """The node contract the API relies on, and no more."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.presence: dict[str, FakePresence] = {}
        self.registered: list[tuple[str, str | None]] = []

    def health(self) -> dict[str, Any]:
        online = sum(p.online for p in self.presence.values())
        return {"status": "ok", "workers": [], "connections": online, "chargers_online": online}

    async def register_charger(self, charger_id: str, password: str | None) -> tuple[ChargerRow, bool]:
        result = await self.store.register_charger(charger_id, password)
        self.registered.append((charger_id, password))
        return result

    async def command(self, charger_id: str, action: str, payload: Any) -> Any:
        # Commands need live chargers: they are tested end to end against a real node (tests/integration).
        raise ChargerOfflineError(f"charger {charger_id!r} is not connected")

    async def send_local_list(self, charger_id: str, update_type: str, version: int | None) -> dict[str, Any]:
        raise ChargerOfflineError(f"charger {charger_id!r} is not connected")


@dataclass
class Api:
    client: httpx.AsyncClient
    node: StandInNode
    tokens: dict[str, str] = field(default_factory=dict)  # role -> plaintext token

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


Scenario = Callable[[Api], Awaitable[None]]


@pytest.fixture
def api(tmp_path: Path) -> Callable[[Scenario], None]:
    """`api(scenario)`: run `await scenario(Api(...))` with a running store, tokens for every role, and an
    httpx client bound to the app."""

    def run(scenario: Scenario) -> None:
        async def main() -> None:
            store = Store(str(tmp_path / "api.db"))
            node = StandInNode(store)
            tokens = {
                role: store.create_token(role, label=f"test {role}")
                for role in ("viewer", "operator", "admin")
            }
            async with trio.open_nursery() as nursery:
                await nursery.start(store.run)
                transport = httpx.ASGITransport(app=create_app(node))
                async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                    with trio.fail_after(30):
                        await scenario(Api(client, node, tokens))
                nursery.cancel_scope.cancel()

        trio.run(main)

    return run
