"""`CustomerInformationService`: asks a 2.0.1 charger to report and/or clear what it holds about a customer
(CustomerInformation, sent through the Commander), waits for the report, and keeps each request with its report
for operators until an admin deletes it (personal data)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec
import trio

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.customer import state
from ampgate.customer.repository import CustomerInformationRow
from ampgate.customer.state import (
    CUSTOMER_INFORMATION,
    NOTIFY_CUSTOMER_INFORMATION,
    Customer,
    CustomerRequest,
)
from ampgate.errors import AmpgateError, ChargerTimeoutError, NotFoundError
from ampgate.events import CustomerInformationDeleted, CustomerInformationRequested
from ampgate.ocpp.commander import reply_status
from ampgate.ocpp.versions import require_201
from ampgate.reports import ReportRow


class Commands(Protocol):
    """The Commander (`ampgate.ocpp.commander.Commander`)."""

    def ready(self, charger_id: str, action: str, /) -> str: ...
    async def call(self, charger_id: str, action: str, payload: object, /) -> object: ...


class CustomerRecords(Protocol):
    """`ampgate.customer.CustomerInformationRepository`."""

    async def create(
        self, charger_id: str, request_id: int, report: bool, clear: bool, customer: Customer, at: datetime, /
    ) -> CustomerInformationRow: ...
    async def record_answer(
        self, charger_id: str, request_id: int, status: str, error_code: str | None, at: datetime, /
    ) -> CustomerInformationRow: ...
    async def delete(self, charger_id: str, request_id: int, /) -> bool: ...
    def get(self, charger_id: str, request_id: int, /) -> CustomerInformationRow | None: ...
    def page(
        self, charger_id: str, limit: int, before: int | None = None, /
    ) -> list[CustomerInformationRow]: ...


class ReportWaits(Protocol):
    """`ampgate.reports.Reports`."""

    def next_request_id(self) -> int: ...
    async def expect(self, charger_id: str, kind: str, request_id: int, /) -> None: ...
    async def wait(self, charger_id: str, kind: str, request_id: int, /) -> None: ...
    def forget(self, charger_id: str, kind: str, request_id: int, /) -> None: ...


class ReportReads(Protocol):
    """`ampgate.reports.ReportRepository`."""

    def get(self, charger_id: str, kind: str, request_id: int, /) -> tuple[ReportRow, list[bytes]] | None: ...


class CustomerInformation(msgspec.Struct, frozen=True, kw_only=True):
    """A request with its report as received so far: `complete` None when no report was asked, `data` the
    parts' text in seqNo order (None when no report was asked)."""

    request: CustomerInformationRow
    parts: int
    complete: bool | None
    data: str | None


class CustomerInformationService:
    """`report_timeout` bounds how long a request with `report` waits for the charger's report."""

    def __init__(
        self,
        records: CustomerRecords,
        commander: Commands,
        reports: ReportWaits,
        parts: ReportReads,
        bus: Publisher,
        clock: Clock,
        *,
        report_timeout: float,
    ) -> None:
        self._records = records
        self._commander = commander
        self._reports = reports
        self._parts = parts
        self._bus = bus
        self._clock = clock
        self.report_timeout = report_timeout

    # -- reads --------------------------------------------------------------------------------------------------

    def get(self, charger_id: str, request_id: int) -> CustomerInformation | None:
        """The request `request_id` of the charger with its report, or None."""
        row = self._records.get(charger_id, request_id)
        return None if row is None else self._with_report(row)

    def page(self, charger_id: str, limit: int, before: int | None = None) -> list[CustomerInformation]:
        """Up to `limit` of the charger's requests with their reports, newest first, below request id `before`."""
        return [self._with_report(r) for r in self._records.page(charger_id, limit, before)]

    def _with_report(self, row: CustomerInformationRow) -> CustomerInformation:
        if not row.report:
            return CustomerInformation(request=row, parts=0, complete=None, data=None)
        found = self._parts.get(row.charger_id, NOTIFY_CUSTOMER_INFORMATION, row.request_id)
        report, parts = found if found is not None else (None, [])
        return CustomerInformation(
            request=row,
            parts=len(parts),
            complete=report is not None and report.completed_at is not None,
            data=state.assemble(parts),
        )

    # -- changes ------------------------------------------------------------------------------------------------

    async def request(self, charger_id: str, spec: CustomerRequest) -> CustomerInformation:
        """Send CustomerInformation with a new requestId and return the request once the charger answered; with
        `report` and an Accepted answer, once its report is complete too, or the report timeout passed (then
        `complete` is false: parts arriving later are still kept). Raises ValidationError naming the field
        (before anything is stored or sent), the Commander's errors (the request is kept, status Failed /
        TimedOut), ConflictError `unsupported_protocol`."""
        state.check(spec)
        protocol = self._commander.ready(charger_id, CUSTOMER_INFORMATION)
        require_201(protocol, charger_id, CUSTOMER_INFORMATION)
        request_id = self._reports.next_request_id()
        # Opened even without `report`: the report rows are where the node's request ids continue from after a
        # restart, so a clear-only request's id must be among them too.
        await self._reports.expect(charger_id, NOTIFY_CUSTOMER_INFORMATION, request_id)
        try:
            await self._records.create(
                charger_id, request_id, spec.report, spec.clear, spec.customer, self._clock.now()
            )
            try:
                reply = await self._commander.call(
                    charger_id, CUSTOMER_INFORMATION, state.build_payload(request_id, spec)
                )
            except AmpgateError as e:
                failed = state.TIMED_OUT if isinstance(e, ChargerTimeoutError) else state.FAILED
                await self._answered(charger_id, request_id, spec, failed, e.code)
                raise
            status = str(reply_status(reply))
            await self._answered(charger_id, request_id, spec, status, None)
            if spec.report and status == state.ACCEPTED:
                with trio.move_on_after(self.report_timeout):
                    await self._reports.wait(charger_id, NOTIFY_CUSTOMER_INFORMATION, request_id)
        finally:
            self._reports.forget(charger_id, NOTIFY_CUSTOMER_INFORMATION, request_id)
        found = self.get(charger_id, request_id)
        if found is None:
            raise NotFoundError(
                f"customer information request {request_id} was deleted meanwhile", field="request_id"
            )
        return found

    async def _answered(
        self, charger_id: str, request_id: int, spec: CustomerRequest, status: str, error_code: str | None
    ) -> None:
        try:
            await self._records.record_answer(charger_id, request_id, status, error_code, self._clock.now())
        except KeyError:
            return  # an admin deleted it while the call was out: nothing to record
        self._bus.publish(
            CustomerInformationRequested(
                at=self._clock.now(),
                charger_id=charger_id,
                request_id=request_id,
                report=spec.report,
                clear=spec.clear,
                status=status,
            )
        )

    async def delete(self, charger_id: str, request_id: int) -> None:
        """Remove the request and its report. Raises NotFoundError (field request_id) if there was neither."""
        if not await self._records.delete(charger_id, request_id):
            raise NotFoundError(
                f"charger {charger_id!r} has no customer information request {request_id}", field="request_id"
            )
        self._bus.publish(
            CustomerInformationDeleted(at=self._clock.now(), charger_id=charger_id, request_id=request_id)
        )
