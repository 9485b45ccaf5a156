"""`ObservedCommands`: a Commander's `call` that hands each answer to the parts that learn from it, by action
(the smart-charging part keeps GetCompositeSchedule answers), with the Commander's errors unchanged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ampgate.ocpp.commander import TrackedCommands as Commands

Observer = Callable[[str, Any, Any], Awaitable[None]]


class ObservedCommands:
    def __init__(self, inner: Commands) -> None:
        self._inner = inner
        self._observers: dict[str, list[Observer]] = {}

    def observe(self, action: str, observer: Observer) -> None:
        """`await observer(charger_id, payload, reply)` after every answered `action`."""
        self._observers.setdefault(action, []).append(observer)

    def ready(self, charger_id: str, action: str) -> str:
        return self._inner.ready(charger_id, action)

    def check(self, charger_id: str, action: str, payload: Any) -> str:
        return self._inner.check(charger_id, action, payload)

    async def call(
        self,
        charger_id: str,
        action: str,
        payload: Any,
        *,
        command_id: str | None = None,
        on_enqueued: Callable[[Any], None] | None = None,
    ) -> Any:
        """The inner `call` (with the Commander's `command_id` and `on_enqueued`), then the observers."""
        reply = await self._inner.call(
            charger_id, action, payload, command_id=command_id, on_enqueued=on_enqueued
        )
        for observer in self._observers.get(action, ()):
            await observer(charger_id, payload, reply)
        return reply
