"""NotifyDisplayMessages (2.0.1): the charger lists its messages in answer to GetDisplayMessages, in parts that
carry its requestId and `tbc` but no seqNo (numbered by arrival, `ampgate.reports`). Each part is stored as a
report part (the reply waits for its commit) and the messages it lists are put in the node's view at once (they
exist on the charger, whichever request asked); a refresh that asked for all of them then replaces the view
with the whole list (`ampgate.display.service`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ampgate.clock import Clock
from ampgate.display.messages import DisplayMessage, from_wire
from ampgate.ocpp import v201
from ampgate.ocpp.envelope import OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.reports import ReportParts, part_of

NOTIFY_DISPLAY_MESSAGES = "NotifyDisplayMessages"


class ReportedMessages(Protocol):
    def record_reported(self, charger_id: str, msgs: list[DisplayMessage], at: datetime, /) -> None: ...


class DisplayMessageHandlers:
    def __init__(self, view: ReportedMessages, reports: ReportParts, clock: Clock) -> None:
        self._view = view
        self._reports = reports
        self._clock = clock

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP201, NOTIFY_DISPLAY_MESSAGES, self._notify)

    def _notify(self, session: Session, req: v201.NotifyDisplayMessagesRequest) -> Any:
        now = self._clock.now()
        if req.message_info:
            # Queued before the part, so a refresh woken by the part's commit reads these too.
            self._view.record_reported(session.charger_id, [from_wire(i) for i in req.message_info], now)
        part = part_of(session.charger_id, NOTIFY_DISPLAY_MESSAGES, req, now)

        async def reply() -> dict[str, Any]:
            await self._reports.add(part)
            return {}

        return reply()
