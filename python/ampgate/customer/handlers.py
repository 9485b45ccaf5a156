"""NotifyCustomerInformation (2.0.1): a part of the report a CustomerInformation asked for, numbered by seqNo.
Each part is stored (`ampgate.reports`: in any order, once per seqNo; the reply waits for the commit); the part
that completes the report publishes `customer_information.received` with its size, never its text."""

from __future__ import annotations

from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.customer.state import NOTIFY_CUSTOMER_INFORMATION, assemble
from ampgate.events import CustomerInformationReceived
from ampgate.ocpp import v201
from ampgate.ocpp.envelope import OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.reports import ReportParts, ReportRow, part_of


class ReportReads(Protocol):
    """`ampgate.reports.ReportRepository`."""

    def get(self, charger_id: str, kind: str, request_id: int, /) -> tuple[ReportRow, list[bytes]] | None: ...


class CustomerInformationHandlers:
    def __init__(self, reports: ReportParts, parts: ReportReads, bus: Publisher, clock: Clock) -> None:
        self._reports = reports
        self._parts = parts
        self._bus = bus
        self._clock = clock

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP201, NOTIFY_CUSTOMER_INFORMATION, self._notify)

    def _notify(self, session: Session, req: v201.NotifyCustomerInformationRequest) -> Any:
        now = self._clock.now()
        part = part_of(session.charger_id, NOTIFY_CUSTOMER_INFORMATION, req, now)

        async def reply() -> dict[str, Any]:
            _, completed = await self._reports.add(part)
            if completed:
                found = self._parts.get(session.charger_id, NOTIFY_CUSTOMER_INFORMATION, req.request_id)
                parts = found[1] if found is not None else []
                self._bus.publish(
                    CustomerInformationReceived(
                        at=now,
                        charger_id=session.charger_id,
                        request_id=req.request_id,
                        parts=len(parts),
                        size=len(assemble(parts)),
                    )
                )
            return {}

        return reply()
