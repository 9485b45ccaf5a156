"""The driver of boot spreading (`ampgate.ocpp.boot_spread`, the rule): it asks chargers told Pending to spread a
boot storm to boot again as the window frees up.

Every `TICK_S` it takes from the rule the oldest waiting chargers whose told connection is still theirs, as many
as the window has room for, and sends each a TriggerMessage BootNotification through the Commander (the one way
to send a charger a CALL; a Pending charger may be sent TriggerMessage [B02]). The charger answers, boots again
and is Accepted. A charger that refuses the trigger, or does not answer, is left to boot again on its own when its
interval ends (the spec has it do so), and is Accepted then.

A charger whose connection goes is forgotten on its `charger.disconnected` event; the bus may drop events for a
slow subscriber, so after a loss, and every `RECONCILE_S` anyway, the waiting chargers are checked against
presence (events are hints).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import trio

from ampgate.bus import EventBus, EventsLost, Subscription
from ampgate.clock import Clock
from ampgate.errors import AmpgateError
from ampgate.events import ChargerDisconnected
from ampgate.ocpp.boot_spread import BootSpread
from ampgate.ocpp.commander import ChargerLink, reply_status

log = logging.getLogger(__name__)

# A quarter of the counting window (1 s): room freed by a slot that ages out is used within a quarter second,
# and an idle node pays four looks at an empty queue per second.
TICK_S = 0.25
# How often the waiting chargers are checked against presence even when no disconnect event was lost: a minute
# bounds how long a forgotten entry (~100 bytes) lingers, at one pass over the waiting set per minute.
RECONCILE_S = 60.0
# The same request in 1.6 and 2.0.1.
TRIGGER_BOOT = {"requestedMessage": "BootNotification"}
_DISCONNECTED = str(ChargerDisconnected.__struct_config__.tag)


class Triggers(Protocol):
    """The Commander, as far as this task uses it."""

    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


class PresenceLookup(Protocol):
    def get(self, charger_id: str, /) -> ChargerLink | None: ...


class BootSpreadTriggers:
    """Start `run` in the node's nursery. `max_inflight` bounds the triggers awaiting their answer (default: the
    threshold, a window's worth; chargers answer within a round trip, so any beyond that would be chargers that
    do not answer, each holding a task until the Commander's timeout)."""

    def __init__(
        self,
        spread: BootSpread,
        commands: Triggers,
        presence: PresenceLookup,
        bus: EventBus,
        clock: Clock,
        *,
        max_inflight: int | None = None,
    ) -> None:
        self._spread = spread
        self._commands = commands
        self._presence = presence
        self._bus = bus
        self._clock = clock
        self.max_inflight = max_inflight if max_inflight is not None else max(1, spread.threshold)
        self.inflight = 0
        # Counted, and logged only at debug: a fleet whose firmware refuses the trigger would log thousands a
        # second after an outage, and each such charger boots on its own when its interval ends anyway.
        self.triggered = 0  # TriggerMessages the charger answered Accepted, ever
        self.trigger_failed = 0  # refused, failed or unanswered, ever

    def connected(self, charger_id: str, conn_id: int) -> bool:
        """Whether `conn_id` is still `charger_id`'s live connection."""
        link = self._presence.get(charger_id)
        return link is not None and link.online and link.conn_id == conn_id

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Invite waiting chargers as room frees, until cancelled. Returns at once when spreading is off."""
        if not self._spread.enabled:
            task_status.started()
            return
        with self._bus.subscribe([_DISCONNECTED]) as sub:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_disconnects, sub)
                task_status.started()
                next_reconcile = self._clock.monotonic() + RECONCILE_S
                while True:
                    self.tick(nursery)
                    if self._clock.monotonic() >= next_reconcile:
                        next_reconcile = self._clock.monotonic() + RECONCILE_S
                        self._spread.reconcile(self.connected)
                    await trio.sleep(TICK_S)

    def tick(self, nursery: trio.Nursery) -> list[str]:
        """One wake: invite what the window and the in-flight bound allow; each trigger runs in `nursery`.
        Returns the chargers invited."""
        invited = self._spread.invite(self.max_inflight - self.inflight, self.connected)
        for charger_id in invited:
            self.inflight += 1
            nursery.start_soon(self._trigger, charger_id)
        return invited

    async def _trigger(self, charger_id: str) -> None:
        try:
            reply = await self._commands.call(charger_id, "TriggerMessage", TRIGGER_BOOT)
        except AmpgateError as e:
            self.trigger_failed += 1
            log.debug(
                "boot spreading: TriggerMessage BootNotification to %s failed: %s", charger_id, e.message
            )
        else:
            status = reply_status(reply)
            if status == "Accepted":
                self.triggered += 1
            else:
                self.trigger_failed += 1
                log.debug(
                    "boot spreading: %s answered TriggerMessage BootNotification %s; it boots when its"
                    " interval ends",
                    charger_id,
                    status,
                )
        finally:
            self.inflight -= 1

    async def _follow_disconnects(self, sub: Subscription) -> None:
        while True:
            event: object = await sub.receive()
            # One wake-up per batch the pump published (an outage's thousands), not one per event.
            while event is not None:
                if isinstance(event, ChargerDisconnected) and event.charger_id is not None:
                    self._spread.forget(event.charger_id, event.conn_id)
                elif isinstance(event, EventsLost):
                    self._spread.reconcile(self.connected)
                event = sub.receive_nowait()
