"""`DisplayMessages`: sets and clears the messages a charger shows (SetDisplayMessage, ClearDisplayMessage) and
refreshes the node's view of them from the charger (GetDisplayMessages, answered by NotifyDisplayMessages
parts). The view changes only on what the charger said: an accepted message, an answered clear, a list."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.display.handlers import NOTIFY_DISPLAY_MESSAGES
from ampgate.display.messages import (
    MAX_INT32,
    DisplayMessage,
    check,
    from_report_parts,
    next_id,
    refusal,
    to_wire,
)
from ampgate.display.repository import DisplayMessageRow
from ampgate.errors import ChargerTimeoutError, NotFoundError, ValidationError
from ampgate.events import DisplayMessageCleared, DisplayMessageSet, DisplayMessagesRefreshed
from ampgate.ocpp.commander import Commands, reply_status
from ampgate.ocpp.versions import require_201
from ampgate.reports import Asker, ReportRow

SET_DISPLAY_MESSAGE = "SetDisplayMessage"
CLEAR_DISPLAY_MESSAGE = "ClearDisplayMessage"
GET_DISPLAY_MESSAGES = "GetDisplayMessages"


class DisplayRecords(Protocol):
    """`ampgate.display.DisplayMessageRepository`."""

    async def put(self, charger_id: str, msg: DisplayMessage, at: datetime, /) -> DisplayMessageRow: ...
    async def replace(self, charger_id: str, msgs: list[DisplayMessage], at: datetime, /) -> None: ...
    async def delete(self, charger_id: str, message_id: int, /) -> bool: ...
    def ids(self, charger_id: str, /) -> list[int]: ...
    def get(self, charger_id: str, message_id: int, /) -> DisplayMessageRow | None: ...
    def page(self, charger_id: str, limit: int, after: int | None = None, /) -> list[DisplayMessageRow]: ...


class ReportReads(Protocol):
    def get(self, charger_id: str, kind: str, request_id: int, /) -> tuple[ReportRow, list[bytes]] | None: ...


class RefreshResult(msgspec.Struct, frozen=True, kw_only=True):
    """A refresh: the GetDisplayMessages requestId, the charger's answer, how many messages it shows."""

    request_id: int
    status: str
    messages: int


class DisplayMessages:
    """Display messages of 2.0.1 chargers. `report_timeout` bounds a refresh's wait for the list."""

    def __init__(
        self,
        view: DisplayRecords,
        commander: Commands,
        reports: Asker,
        parts: ReportReads,
        bus: Publisher,
        clock: Clock,
        *,
        report_timeout: float,
    ) -> None:
        self._view = view
        self._commander = commander
        self._reports = reports
        self._parts = parts
        self._bus = bus
        self._clock = clock
        self.report_timeout = report_timeout
        # Ids given to messages whose SetDisplayMessage is on its way, per charger: two at once get two ids.
        self._reserved: dict[str, set[int]] = {}

    def get(self, charger_id: str, message_id: int) -> DisplayMessageRow | None:
        """The charger's message `message_id` as the node knows it, or None."""
        return self._view.get(charger_id, message_id)

    def page(self, charger_id: str, limit: int, after: int | None = None) -> list[DisplayMessageRow]:
        """The charger's messages as the node knows them, by id, with an id above `after`."""
        return self._view.page(charger_id, limit, after)

    async def set(
        self, charger_id: str, msg: DisplayMessage, *, assign_id: bool = False
    ) -> DisplayMessageRow:
        """Send SetDisplayMessage and, once the charger accepted it, put `msg` in the view (replacing a message
        of its id, as the charger does [O05]). With `assign_id` the node picks the id (one above the highest the
        view or a pending set holds; `msg.id` is ignored). Raises ValidationError naming the field, the
        Commander's errors (404 unknown charger, 409 offline / not accepted, 502, 504), ConflictError
        `unsupported_protocol` (not 2.0.1), ConflictError with the charger's refusal (`not_supported_priority`,
        `not_supported_message_format`, `not_supported_state`, `unknown_transaction`,
        `display_message_rejected`, naming the field) — nothing is stored then."""
        check(msg if not assign_id else msgspec.structs.replace(msg, id=1))
        require_201(self._commander.ready(charger_id, SET_DISPLAY_MESSAGE), charger_id, SET_DISPLAY_MESSAGE)
        reserved = self._reserved.setdefault(charger_id, set())
        if assign_id:
            msg = msgspec.structs.replace(msg, id=next_id([*self._view.ids(charger_id), *reserved]))
            if msg.id > MAX_INT32:
                raise ValidationError("no message id is left; give one", field="id")
        reserved.add(msg.id)
        try:
            reply = await self._commander.call(charger_id, SET_DISPLAY_MESSAGE, {"message": to_wire(msg)})
            status = reply_status(reply)
            if status != "Accepted":
                raise refusal(charger_id, str(status))
            row = await self._view.put(charger_id, msg, self._clock.now())
        finally:
            reserved.discard(msg.id)
            if not reserved:
                self._reserved.pop(charger_id, None)
        self._bus.publish(
            DisplayMessageSet(
                at=row.updated_at, charger_id=charger_id, message_id=msg.id, priority=msg.priority
            )
        )
        return row

    async def clear(self, charger_id: str, message_id: int) -> None:
        """Send ClearDisplayMessage; the view drops the message whatever the charger answered. Raises
        ValidationError (field message_id), the Commander's errors, ConflictError `unsupported_protocol`, and
        NotFoundError `unknown_message` when the charger answered Unknown."""
        if not 0 <= message_id <= MAX_INT32:
            raise ValidationError(f"message_id is 0 to {MAX_INT32}", field="message_id")
        require_201(
            self._commander.ready(charger_id, CLEAR_DISPLAY_MESSAGE), charger_id, CLEAR_DISPLAY_MESSAGE
        )
        reply = await self._commander.call(charger_id, CLEAR_DISPLAY_MESSAGE, {"id": message_id})
        status = str(reply_status(reply))
        # Unknown: the charger does not show it, so neither may the view.
        await self._view.delete(charger_id, message_id)
        self._bus.publish(
            DisplayMessageCleared(
                at=self._clock.now(), charger_id=charger_id, message_id=message_id, status=status
            )
        )
        if status != "Accepted":
            raise NotFoundError(
                f"charger {charger_id!r} has no display message {message_id}",
                field="message_id",
                code="unknown_message",
            )

    async def refresh(self, charger_id: str) -> RefreshResult:
        """Ask the charger for every message it has (GetDisplayMessages with a new requestId, no filter), wait
        until every NotifyDisplayMessages part is in, and replace the view with the list; an Unknown answer
        (it has none) empties the view. Raises the Commander's errors, ConflictError `unsupported_protocol`,
        ChargerTimeoutError when the list does not complete within the report timeout (the view then keeps
        what the parts received so far said, and nothing is removed)."""
        require_201(self._commander.ready(charger_id, GET_DISPLAY_MESSAGES), charger_id, GET_DISPLAY_MESSAGES)
        request_id, answer, complete = await self._reports.ask(
            self._commander,
            charger_id,
            GET_DISPLAY_MESSAGES,
            {},
            NOTIFY_DISPLAY_MESSAGES,
            self.report_timeout,
        )
        status = str(answer)
        msgs: list[DisplayMessage] = []
        if status == "Accepted":
            if not complete:
                raise ChargerTimeoutError(
                    f"{charger_id} did not list its display messages (request {request_id}) within "
                    f"{self.report_timeout:g} s"
                )
            found = self._parts.get(charger_id, NOTIFY_DISPLAY_MESSAGES, request_id)
            msgs = from_report_parts(found[1] if found is not None else [])
        await self._view.replace(charger_id, msgs, self._clock.now())
        self._bus.publish(
            DisplayMessagesRefreshed(
                at=self._clock.now(),
                charger_id=charger_id,
                request_id=request_id,
                status=status,
                messages=len(msgs),
            )
        )
        return RefreshResult(request_id=request_id, status=status, messages=len(msgs))
