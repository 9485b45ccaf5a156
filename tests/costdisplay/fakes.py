"""Stand-ins for what the cost display is handed: the device model's values, the override table, the
chargers, a clock whose monotonic time a test moves, the Commander, tariffs and costs."""

from __future__ import annotations

from typing import Any

from ampgate.costdisplay.repository import Override

from ..ocpp.fakes import FixedClock


class Variables:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str, str], str] = {}
        self.reads = 0

    def value(self, charger_id, component, variable, instance="", attribute_type="Actual"):
        assert attribute_type == "Actual"
        self.reads += 1
        return self.values.get((charger_id, component, variable, instance))


class Rows:
    def __init__(self) -> None:
        self.rows: dict[str, Override] = {}

    def all(self) -> dict[str, Override]:
        return dict(self.rows)

    async def set(self, charger_id, mode, at) -> None:
        if mode is None:
            self.rows.pop(charger_id, None)
        else:
            self.rows[charger_id] = Override(mode=mode, updated_at=at)


class Charger:
    def __init__(self, protocol: str | None) -> None:
        self.protocol = protocol


class Chargers:
    def __init__(self, **protocols: str | None) -> None:
        self.protocols = protocols

    def get(self, charger_id: str):
        return Charger(self.protocols[charger_id]) if charger_id in self.protocols else None


class Monotonic(FixedClock):
    def __init__(self) -> None:
        super().__init__()
        self.mono = 0.0

    def monotonic(self) -> float:
        return self.mono


class Calls:
    """The Commander: records what was sent; `replies[action or DataTransfer messageId]` is the answer (a
    payload, or an exception to raise), else an empty CostUpdated reply / an Accepted DataTransfer; chargers in
    `offline` cannot be sent anything."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.replies: dict[str, Any] = {}
        self.offline: set[str] = set()

    def ready(self, charger_id: str, action: str) -> str:
        from ampgate.errors import ChargerOfflineError

        if charger_id in self.offline:
            raise ChargerOfflineError(f"{charger_id} is not connected")
        return "?"

    async def call(self, charger_id: str, action: str, payload: Any) -> Any:
        self.ready(charger_id, action)
        self.sent.append((charger_id, action, payload))
        key = payload.get("messageId", action) if action == "DataTransfer" else action
        reply = self.replies.get(key, {"status": "Accepted"} if action == "DataTransfer" else {})
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def of(self, message: str) -> list[tuple[str, Any]]:
        """(charger, payload) of each CostUpdated, or each DataTransfer with that messageId, sent."""
        return [
            (cid, p)
            for cid, action, p in self.sent
            if action == message or (action == "DataTransfer" and p.get("messageId") == message)
        ]


class Tariffs:
    """`TariffLookup`: `by_charger[charger_id]` (a Tariff, or an exception to raise), else None."""

    def __init__(self) -> None:
        self.by_charger: dict[str, Any] = {}
        self.asked: list[tuple[str, str | None]] = []

    def tariff_for(self, charger_id: str, id_token: str | None):
        self.asked.append((charger_id, id_token))
        found = self.by_charger.get(charger_id)
        if isinstance(found, BaseException):
            raise found
        return found


class Costs:
    """`SessionCosts`: `running[tx]` / `final[tx]` (a Cost, None, or an exception to raise); `hang` makes
    final_cost wait forever."""

    def __init__(self) -> None:
        self.running: dict[int, Any] = {}
        self.final: dict[int, Any] = {}
        self.hang = False

    def running_cost(self, transaction_id: int):
        found = self.running.get(transaction_id)
        if isinstance(found, BaseException):
            raise found
        return found

    async def final_cost(self, transaction_id: int):
        import trio

        if self.hang:
            await trio.sleep_forever()
        found = self.final.get(transaction_id)
        if isinstance(found, BaseException):
            raise found
        return found
