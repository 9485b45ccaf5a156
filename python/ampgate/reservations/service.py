"""`Reservations`: what an operator does with reservations (create, cancel, read) and the task that ends them
when their time passes.

Create: the request is checked against the charger's protocol version, a row is written pending (its id is the
reservationId the charger gets: the node assigns it), ReserveNow goes out through the Commander, and the row
becomes active only when the charger answers Accepted. Any other status (Faulted, Occupied, Rejected,
Unavailable) is kept as the row's outcome (state refused) and raised as `ReservationRefusedError` (409 with
the charger's status); a failed call (offline, CALLERROR, timeout) leaves the row failed with the error code.
The wait for the charger is shielded from the caller's cancellation (an HTTP client that hangs up), so the
outcome is always recorded. After a timeout the charger may still have taken the reservation, so a
CancelReservation follows in the background: a reservation the node counts as failed must not hold a connector.

Cancel: CancelReservation to the charger; Accepted ends it (`cancelled`); Rejected means the charger has no such
reservation (it already ended there), so it ends too. Cancelling what is no longer active changes nothing and
answers its current state (the API's verb rule); an offline charger, a CALLERROR or a timeout change nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol, get_args

import trio

from ampgate.bus import EventBus, Subscription
from ampgate.clock import Clock, iso_utc
from ampgate.errors import (
    AmpgateError,
    ChargerTimeoutError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from ampgate.events import ConnectorStatusChanged
from ampgate.ocpp.authorization import GROUP_TOKEN_TYPE
from ampgate.ocpp.envelope import OCPP16
from ampgate.ocpp.id_tokens import TYPES, validate_id_token
from ampgate.ocpp.v201 import ConnectorEnumType
from ampgate.reservations.book import ACCEPTED, ReservationBook
from ampgate.reservations.repository import NewReservation, ReservationRepository, ReservationRow
from ampgate.store.id_tokens import IdTokenRow

log = logging.getLogger(__name__)

# How often the sweep ends reservations whose expiry passed. The rules already ignore an expired reservation
# at once, so this only bounds how late the row, the event and the API show the end; a second is prompt for
# people and costs a heap peek.
SWEEP_INTERVAL = 1.0
CONNECTOR_STATUS = str(ConnectorStatusChanged.__struct_config__.tag)
# 1.6 idTag and parentIdTag are CiString20.
ID_TAG_MAX_16 = 20
CONNECTOR_TYPES: tuple[str, ...] = get_args(ConnectorEnumType)
# Token types a 2.0.1 reservation may name: a NoAuthorization token needs no reservation to start.
RESERVABLE_TYPES: tuple[str, ...] = tuple(t for t in TYPES if t != "NoAuthorization")


class ReservationRefusedError(ConflictError):
    """The charger answered ReserveNow with a status other than Accepted; `details` carries it."""

    default_code = "reservation_refused"

    def __init__(self, message: str, *, reservation_id: int, status: str) -> None:
        super().__init__(message)
        self.details = {"status": status, "reservation_id": reservation_id}


class CommandPort(Protocol):
    """What the service needs of `ampgate.ocpp.commander.Commander`."""

    def ready(self, charger_id: str, action: str, /) -> str: ...
    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


class TokenLookup(Protocol):
    """The id-token table (`ampgate.store.IdTokenRepository`): a reserved token's stored type and group."""

    def get(self, id_token: str, /) -> IdTokenRow | None: ...


def _status(reply: Any) -> str | None:
    status = reply.get("status") if isinstance(reply, dict) else None
    return status if isinstance(status, str) else None


class Reservations:
    """Reservations as an operator handles them. Start `run` in the node's nursery: it loads the book from the
    table and runs the sweep."""

    def __init__(
        self,
        book: ReservationBook,
        rows: ReservationRepository,
        commander: CommandPort,
        tokens: TokenLookup,
        clock: Clock,
        bus: EventBus | None = None,
    ) -> None:
        self._bus = bus
        self._book = book
        self._rows = rows
        self._commander = commander
        self._tokens = tokens
        self._clock = clock
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the live reservations into the book, then sweep expired ones every SWEEP_INTERVAL until
        cancelled. Hosts the background cancels that follow a timed-out ReserveNow, and (with a bus) ends 1.6
        reservations whose connector the charger reports Faulted or Unavailable."""
        self._book.load(self._rows.live())
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self._bus is not None:
                nursery.start_soon(self._follow_connectors, self._bus.subscribe([CONNECTOR_STATUS]))
            task_status.started()
            while True:
                self._book.sweep()
                await trio.sleep(SWEEP_INTERVAL)

    async def _follow_connectors(self, sub: Subscription) -> None:
        with sub:
            async for event in sub:
                # 2.0.1 chargers say so themselves (ReservationStatusUpdate Removed); an EventsLost needs no
                # reconciling: a reservation missed here still ends at its expiry.
                if isinstance(event, ConnectorStatusChanged) and event.evse_id is None and event.charger_id:
                    self._book.connector_status16(event.charger_id, event.connector_id, event.status)

    # -- reads --------------------------------------------------------------------------------------------------

    def get(self, rid: int) -> ReservationRow | None:
        return self._rows.get(rid)

    def page(
        self,
        limit: int,
        *,
        before: int | None = None,
        charger_id: str | None = None,
        state: str | None = None,
    ) -> list[ReservationRow]:
        """Up to `limit` reservations newest first (ids below `before`), filtered by charger and state."""
        return self._rows.page(limit, before=before, charger_id=charger_id, state=state)

    # -- create -------------------------------------------------------------------------------------------------

    async def create(
        self,
        *,
        charger_id: str,
        expires_at: datetime,
        id_token: str,
        evse_id: int | None = None,
        connector_id: int | None = None,
        connector_type: str | None = None,
        id_token_type: str | None = None,
        group_id_token: str | None = None,
    ) -> ReservationRow:
        """Reserve at `charger_id` until `expires_at` for `id_token` (and its group: `group_id_token`, else the
        token's group in the id-token table). A 1.6 charger takes `connector_id` (None or 0: any connector); a
        2.0.1 one `evse_id` (None: any EVSE) and `connector_type`, and the token's type (`id_token_type`, else
        the stored token's). Returns the active reservation.

        Raises NotFoundError(field="charger_id"), ChargerOfflineError, ConflictError (charger not accepted),
        ValidationError naming the field, ReservationRefusedError (409: the charger's status in `details`),
        ChargerCallError (502), ChargerTimeoutError (504)."""
        # What any charger would refuse is refused before the charger is looked at.
        if expires_at.tzinfo is None:
            raise ValidationError("expires_at needs a time zone (e.g. a trailing Z)", field="expires_at")
        if expires_at <= self._clock.now():
            raise ValidationError("expires_at is not in the future", field="expires_at")
        validate_id_token(id_token)
        if group_id_token is not None:
            validate_id_token(group_id_token, "group_id_token")
        try:
            protocol = self._commander.ready(charger_id, "ReserveNow")
        except NotFoundError as e:
            raise NotFoundError(e.message, field="charger_id") from None
        new = self._checked(
            protocol,
            charger_id=charger_id,
            expires_at=expires_at,
            id_token=id_token,
            evse_id=evse_id,
            connector_id=connector_id,
            connector_type=connector_type,
            id_token_type=id_token_type,
            group_id_token=group_id_token,
        )
        # Shielded from the row's insert on: once the row exists, ReserveNow goes out and its outcome is
        # recorded whatever the caller does (the Commander bounds the wait), so no row is left pending.
        with trio.CancelScope(shield=True):
            row = await self._rows.insert(new)
            self._book.sent(row)
            try:
                reply = await self._commander.call(charger_id, "ReserveNow", _payload(row))
            except AmpgateError as e:
                self._book.not_accepted(row.id)
                await self._rows.settle(row.id, "failed", e.code)
                if isinstance(e, ChargerTimeoutError):
                    self._cancel_in_background(row)
                raise
            status = _status(reply) or "unknown"
            if status != ACCEPTED:
                self._book.not_accepted(row.id)
                await self._rows.settle(row.id, "refused", status)
                raise ReservationRefusedError(
                    f"charger {charger_id!r} answered ReserveNow with {status}",
                    reservation_id=row.id,
                    status=status,
                )
            settled = await self._rows.settle(row.id, "active", status)
        assert settled is not None
        self._book.accepted(settled)
        return self._rows.get(row.id) or settled

    def _checked(
        self,
        protocol: str,
        *,
        charger_id: str,
        expires_at: datetime,
        id_token: str,
        evse_id: int | None,
        connector_id: int | None,
        connector_type: str | None,
        id_token_type: str | None,
        group_id_token: str | None,
    ) -> NewReservation:
        """The reservation to send, or ValidationError naming the field that does not fit the charger."""
        stored = self._tokens.get(id_token)
        group = group_id_token
        if group is None and stored is not None:
            group = stored.group
        if protocol == OCPP16:
            if evse_id is not None:
                raise ValidationError("a 1.6 charger has no EVSEs: reserve a connector_id", field="evse_id")
            if connector_type is not None:
                raise ValidationError("1.6 cannot reserve by connector type", field="connector_type")
            if id_token_type is not None:
                raise ValidationError("a 1.6 idTag has no type", field="id_token_type")
            if len(id_token) > ID_TAG_MAX_16:
                raise ValidationError(f"a 1.6 idTag is at most {ID_TAG_MAX_16} characters", field="id_token")
            if group is not None and len(group) > ID_TAG_MAX_16:
                if group_id_token is None:
                    group = (
                        None  # the stored group cannot be a 1.6 parentIdTag; cutting it could merge groups
                    )
                else:
                    raise ValidationError(
                        f"a 1.6 parentIdTag is at most {ID_TAG_MAX_16} characters", field="group_id_token"
                    )
            return NewReservation(
                charger_id=charger_id,
                protocol=protocol,
                evse_id=None,
                connector_id=connector_id or None,  # 0 is the spec's "any connector"
                connector_type=None,
                id_token=id_token,
                id_token_type=None,
                group_id_token=group,
                expires_at=expires_at,
            )
        if connector_id is not None:
            raise ValidationError(
                f"a {protocol} charger reserves an EVSE: give evse_id, not connector_id", field="connector_id"
            )
        if connector_type is not None and connector_type not in CONNECTOR_TYPES:
            raise ValidationError(
                f"connector_type must be one of {', '.join(CONNECTOR_TYPES)}", field="connector_type"
            )
        type_ = id_token_type or (stored.type if stored is not None else None)
        if type_ is None:
            raise ValidationError(
                f"a {protocol} idToken needs its type, and the id-token table has none for it",
                field="id_token_type",
            )
        if type_ not in RESERVABLE_TYPES:
            raise ValidationError(
                f"id_token_type must be one of {', '.join(RESERVABLE_TYPES)}", field="id_token_type"
            )
        return NewReservation(
            charger_id=charger_id,
            protocol=protocol,
            evse_id=evse_id,
            connector_id=None,
            connector_type=connector_type,
            id_token=id_token,
            id_token_type=type_,
            group_id_token=group,
            expires_at=expires_at,
        )

    def _cancel_in_background(self, row: ReservationRow) -> None:
        if self._nursery is None:
            log.warning(
                "reservation %d timed out and cannot be cancelled: the service is not running", row.id
            )
            return
        self._nursery.start_soon(self._cancel_orphan, row)

    async def _cancel_orphan(self, row: ReservationRow) -> None:
        try:
            reply = await self._commander.call(row.charger_id, "CancelReservation", {"reservationId": row.id})
        except AmpgateError as e:
            log.warning("reservation %d timed out; cancelling it at %s failed: %s", row.id, row.charger_id, e)
            return
        log.info(
            "reservation %d timed out; %s answered its cancel %s", row.id, row.charger_id, _status(reply)
        )

    # -- cancel -------------------------------------------------------------------------------------------------

    async def cancel(self, rid: int) -> ReservationRow:
        """Cancel reservation `rid` at its charger and return it. Not active (ended, refused, failed): nothing
        is sent and it is returned as it is. Raises NotFoundError(field="id"), ConflictError
        `reservation_pending` (ReserveNow still waiting for the charger), ChargerOfflineError, ConflictError
        (charger not accepted), ChargerCallError, ChargerTimeoutError: in all of these nothing changes."""
        row = self._rows.get(rid)
        if row is None:
            raise NotFoundError(f"reservation {rid} does not exist", field="id")
        if row.state == "pending":
            raise ConflictError(
                f"reservation {rid} is waiting for the charger's answer to ReserveNow",
                code="reservation_pending",
            )
        if self._book.active(rid) is None:
            return row
        with trio.CancelScope(shield=True):
            reply = await self._commander.call(row.charger_id, "CancelReservation", {"reservationId": rid})
            status = _status(reply)
            if status != ACCEPTED:
                # Rejected: "no reservation with this id" at the charger; it is over there, so it is over here.
                log.info("%s answered CancelReservation %d with %s: ended", row.charger_id, rid, status)
            await self._book.end(rid, "cancelled")
        return self._rows.get(rid) or row


def _payload(row: ReservationRow) -> dict[str, Any]:
    """ReserveNow for `row`, as its protocol version writes it."""
    expiry = iso_utc(row.expires_at)
    if row.protocol == OCPP16:
        p: dict[str, Any] = {
            "connectorId": row.connector_id or 0,
            "expiryDate": expiry,
            "idTag": row.id_token,
            "reservationId": row.id,
        }
        if row.group_id_token is not None:
            p["parentIdTag"] = row.group_id_token
        return p
    p = {
        "id": row.id,
        "expiryDateTime": expiry,
        "idToken": {"idToken": row.id_token, "type": row.id_token_type},
    }
    if row.evse_id is not None:
        p["evseId"] = row.evse_id
    if row.connector_type is not None:
        p["connectorType"] = row.connector_type
    if row.group_id_token is not None:
        p["groupIdToken"] = {"idToken": row.group_id_token, "type": GROUP_TOKEN_TYPE}
    return p
