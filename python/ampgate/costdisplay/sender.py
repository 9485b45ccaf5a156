"""`Sender`: the cost display's calls to chargers (CostUpdated, the 1.6 costmsg DataTransfers), each in a task of
its own nursery through the Commander, bounded, and with every outcome logged and counted.

A cost message is a courtesy to the driver: it never waits in line behind itself. When `max_in_flight` calls are
already waiting for chargers, a new one is dropped (counted `busy`) rather than queued; the next interval sends
a fresher number anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ampgate.costdisplay.ports import Calls
from ampgate.costdisplay.stats import Counts
from ampgate.errors import AmpgateError

log = logging.getLogger(__name__)

# Calls in flight at most, fleet-wide: what the load ticker allows its profiles too. At a 60 s interval and 100k
# sessions (1,700 calls a second) a charger answering within half a second keeps ~850 in flight.
MAX_IN_FLIGHT = 1000

DATA_TRANSFER = "DataTransfer"
COST_UPDATED = "CostUpdated"


def outcome_of(action: str, reply: Any) -> str:
    """`accepted` for a CostUpdated answered (its reply is empty) or a DataTransfer answered Accepted, else the
    DataTransfer's status in snake case (`rejected`, `unknown_message_id`, `unknown_vendor_id`)."""
    if action != DATA_TRANSFER:
        return "accepted"
    status = reply.get("status") if isinstance(reply, dict) else None
    if status == "Accepted":
        return "accepted"
    return {
        "Rejected": "rejected",
        "UnknownMessageId": "unknown_message_id",
        "UnknownVendorId": "unknown_vendor_id",
    }.get(str(status), "rejected")


class Sender:
    def __init__(self, calls: Calls, counts: Counts, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._calls = calls
        self._counts = counts
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the calls until cancelled (they are cancelled with it)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def ready(self, charger_id: str, action: str) -> bool:
        """Whether `action` may be sent to the charger now (connected, accepted): asked before pricing, so a
        cost is not computed for a charger that cannot be told."""
        try:
            self._calls.ready(charger_id, action)
        except AmpgateError:
            return False
        return True

    def spawn(
        self,
        message: str,
        charger_id: str,
        action: str,
        payload: Any,
        *,
        on_accepted: Callable[[], None] | None = None,
    ) -> bool:
        """Send `payload` in a task of its own; `message` names it in logs and counts. False (counted `busy`, or
        `not_running` before `run`) when it was not started."""
        return self.start(message, charger_id, self._call(message, charger_id, action, payload, on_accepted))

    def start(self, message: str, charger_id: str, job: Awaitable[None]) -> bool:
        """Run `job` (a coroutine that ends in `send`) in a task of its own, within the in-flight bound."""
        if self._nursery is None or self.in_flight >= self.max_in_flight:
            self._counts.add(message, "not_running" if self._nursery is None else "busy")
            close = getattr(job, "close", None)
            if close is not None:
                close()  # never awaited: closed so Python does not warn about it
            return False
        self.in_flight += 1
        self._nursery.start_soon(self._hosted, job)
        return True

    async def _hosted(self, job: Awaitable[None]) -> None:
        try:
            await job
        finally:
            self.in_flight -= 1

    async def _call(
        self,
        message: str,
        charger_id: str,
        action: str,
        payload: Any,
        on_accepted: Callable[[], None] | None,
    ) -> None:
        if await self.send(message, charger_id, action, payload) and on_accepted is not None:
            on_accepted()

    async def send(self, message: str, charger_id: str, action: str, payload: Any) -> bool:
        """Send now and wait for the answer (bounded by the Commander's timeout); True when the charger
        accepted it. Never raises but for cancellation: failures are logged and counted."""
        try:
            reply = await self._calls.call(charger_id, action, payload)
        except AmpgateError as e:
            log.info("%s to %s not delivered: %s (%s)", message, charger_id, e.message, e.code)
            self._counts.add(message, e.code)
            return False
        except Exception:
            log.exception("%s to %s failed", message, charger_id)
            self._counts.add(message, "internal_error")
            return False
        outcome = outcome_of(action, reply)
        self._counts.add(message, outcome)
        if outcome != "accepted":
            log.info("%s: %s answered %s", message, charger_id, outcome)
        return outcome == "accepted"
