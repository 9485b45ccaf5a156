"""`Reports`: request ids, the parts as they come, and waiting for a report to be whole."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import trio

from ampgate.clock import Clock
from ampgate.ocpp.commander import Commands, reply_status
from ampgate.reports.repository import Part, ReportRow


class ReportRecords(Protocol):
    def max_request_id(self) -> int: ...
    async def open(self, charger_id: str, kind: str, request_id: int, at: datetime, /) -> int: ...
    async def add(self, part: Part, /) -> tuple[int, bool, bool]: ...
    def get(self, charger_id: str, kind: str, request_id: int, /) -> tuple[ReportRow, list[bytes]] | None: ...


class ReportParts(Protocol):
    """What a report message's handler needs: `Reports.add`."""

    async def add(self, part: Part, /) -> tuple[bool, bool]: ...


class Asker(Protocol):
    """What a part that asks chargers for reports needs: `Reports.ask`."""

    async def ask(
        self,
        commander: Commands,
        charger_id: str,
        action: str,
        payload: dict[str, Any],
        kind: str,
        within_s: float,
        /,
    ) -> tuple[int, str | None, bool]: ...


class Reports:
    """Hands out request ids (unique across the node's life: they continue from the highest one stored),
    records parts and wakes whoever waits for a report to complete."""

    def __init__(self, records: ReportRecords, clock: Clock) -> None:
        self._records = records
        self._clock = clock
        self._next_id = records.max_request_id() + 1
        self._waiting: dict[tuple[str, str, int], trio.Event] = {}

    def next_request_id(self) -> int:
        """A request id no report the node has seen uses: above every stored one and every one a charger sent
        since (a request an operator numbered through the command route is answered under their id)."""
        request_id = self._next_id
        self._next_id += 1
        return request_id

    async def expect(self, charger_id: str, kind: str, request_id: int) -> None:
        """A request of ours that a report of `kind` will answer is about to go out."""
        await self._records.open(charger_id, kind, request_id, self._clock.now())
        self._waiting.setdefault((charger_id, kind, request_id), trio.Event())

    async def wait(self, charger_id: str, kind: str, request_id: int) -> None:
        """Until the report is complete (call `expect` first; bound the wait with a cancel scope)."""
        key = (charger_id, kind, request_id)
        event = self._waiting.setdefault(key, trio.Event())
        try:
            found = self._records.get(charger_id, kind, request_id)
            if found is not None and found[0].completed_at is not None:
                return
            await event.wait()
        finally:
            self._waiting.pop(key, None)

    def forget(self, charger_id: str, kind: str, request_id: int) -> None:
        """Nobody will wait for this report (its request was refused or failed): drop what `expect` set up.
        The report's row and any parts stay."""
        self._waiting.pop((charger_id, kind, request_id), None)

    async def ask(
        self,
        commander: Commands,
        charger_id: str,
        action: str,
        payload: dict[str, Any],
        kind: str,
        within_s: float,
    ) -> tuple[int, str | None, bool]:
        """Send `action` (a request the charger answers with a report of `kind`) with `payload` and a new
        requestId, and when it is Accepted wait up to `within_s` seconds for the report to be whole. Returns (the request
        id, the charger's status, complete). Raises the Commander's errors."""
        request_id = self.next_request_id()
        await self.expect(charger_id, kind, request_id)
        try:
            reply = await commander.call(charger_id, action, {**payload, "requestId": request_id})
            status = reply_status(reply)
            if status != "Accepted":
                return request_id, status, False
            with trio.move_on_after(within_s):
                await self.wait(charger_id, kind, request_id)
                return request_id, status, True
            return request_id, status, False
        finally:
            self.forget(charger_id, kind, request_id)

    async def add(self, part: Part) -> tuple[bool, bool]:
        """Store a part; (stored, completed by it). Wakes the waiter of a completed report."""
        self._next_id = max(self._next_id, part.request_id + 1)
        _, stored, completed = await self._records.add(part)
        if completed:
            event = self._waiting.get((part.charger_id, part.kind, part.request_id))
            if event is not None:
                event.set()
        return stored, completed
