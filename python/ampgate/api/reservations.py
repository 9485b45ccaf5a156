"""/api/v1/reservations: reserve a connector (1.6) or EVSE (2.0.1) for an id token (ReserveNow), list and read
reservations, cancel one (CancelReservation)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter, QueryParameter

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import ReservationService
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor
from ampgate.api.schemas import ErrorBody, ReservationCreate, ReservationPage, ReservationRead
from ampgate.errors import NotFoundError, ValidationError
from ampgate.reservations import ReservationRow
from ampgate.reservations.repository import STATES

PATH = "/api/v1/reservations"

_NOT_FOUND = {404: ResponseSpec(ErrorBody, description="No such reservation (`field`: id)")}
_CHARGER_ERRORS = {
    409: ResponseSpec(
        ErrorBody,
        description="The charger is offline (`charger_offline`) or not accepted, or refused: "
        "`reservation_refused` with the charger's status in `details.status` (Occupied, Faulted, Unavailable, "
        "Rejected)",
    ),
    502: ResponseSpec(ErrorBody, description="The charger answered with a CALLERROR or an invalid reply"),
    504: ResponseSpec(ErrorBody, description="The charger did not answer in time"),
}

ChargerFilter = Annotated[str | None, Parameter(description="Only this charger's reservations")]
# `state` is a name Litestar reserves for the app state, so the handler's argument has another name.
StateFilter = Annotated[
    str | None,
    QueryParameter(name="state", description=f"Only reservations in this state: {', '.join(STATES)}"),
]


def reservation_read(row: ReservationRow) -> ReservationRead:
    """The API's view of a stored reservation."""
    return ReservationRead(
        id=row.id,
        charger_id=row.charger_id,
        protocol=row.protocol,
        evse_id=row.evse_id,
        connector_id=row.connector_id,
        connector_type=row.connector_type,
        id_token=row.id_token,
        id_token_type=row.id_token_type,
        group_id_token=row.group_id_token,
        expires_at=row.expires_at,
        state=row.state,
        charger_status=row.outcome,
        end_reason=row.end_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
    )


def _row(reservations: ReservationService, rid: int) -> ReservationRow:
    row = reservations.get(rid)
    if row is None:
        raise NotFoundError(f"reservation {rid} does not exist", field="id")
    return row


class ReservationController(Controller):
    path = PATH
    tags = ("reservations",)

    @post(
        "/",
        operation_id="create_reservation",
        guards=[requires_operator],
        status_code=201,
        responses={
            **COMMON_ERRORS,
            404: ResponseSpec(ErrorBody, description="Unknown charger (`field`: charger_id)"),
            **_CHARGER_ERRORS,
        },
        summary="Reserve a connector or EVSE for an id token",
        description="Role: operator. Sends ReserveNow (the node assigns the reservation id) and waits for the "
        "charger: 201 with the active reservation and its Location when it answers Accepted; any other status "
        "is 409 reservation_refused with the charger's status in details.status, and nothing becomes active.",
    )
    async def create_reservation(
        self, reservations: NamedDependency[ReservationService], data: JSONBody[ReservationCreate]
    ) -> Response[ReservationRead]:
        """Role: operator. Sends ReserveNow (the node assigns the reservation id) and waits for the charger:
        201 with the active reservation and its `Location` when it answers Accepted. Any other status is 409
        `reservation_refused` (the charger's status in `details.status`; the reservation is kept as refused,
        never active). 422 names the field that does not fit the charger: `connector_id` for 2.0.1, `evse_id`
        and `connector_type` for 1.6, `expires_at` not in the future, `id_token_type` a 2.0.1 token needs."""
        row = await reservations.create(
            charger_id=data.charger_id,
            expires_at=data.expires_at,
            id_token=data.id_token,
            evse_id=data.evse_id,
            connector_id=data.connector_id,
            connector_type=data.connector_type,
            id_token_type=data.id_token_type,
            group_id_token=data.group_id_token,
        )
        return Response(reservation_read(row), status_code=201, headers={"Location": f"{PATH}/{row.id}"})

    @get(
        "/",
        operation_id="list_reservations",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="List reservations",
        description="Role: viewer. Reservations newest first, filtered by charger_id and state.",
    )
    async def list_reservations(
        self,
        reservations: NamedDependency[ReservationService],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        charger_id: ChargerFilter = None,
        state_filter: StateFilter = None,
    ) -> ReservationPage:
        """Role: viewer. Reservations newest first, filtered by `charger_id` and `state`. 422 naming limit,
        cursor or state."""
        state = state_filter
        if state is not None and state not in STATES:
            raise ValidationError(f"state must be one of {', '.join(STATES)}", field="state")
        rows = reservations.page(limit + 1, before=int_cursor(cursor), charger_id=charger_id, state=state)
        more = len(rows) > limit
        rows = rows[:limit]
        return ReservationPage(
            items=[reservation_read(r) for r in rows], next_cursor=str(rows[-1].id) if more else None
        )

    @get(
        "/{id:int}",
        operation_id="get_reservation",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="One reservation",
        description="Role: viewer. One reservation by its id (the reservationId its charger knows).",
    )
    async def get_reservation(
        self,
        reservations: NamedDependency[ReservationService],
        id: Annotated[int, Parameter(description="The reservation id")],
    ) -> ReservationRead:
        """Role: viewer. The reservation `id`; 404 (field id) if there is none."""
        return reservation_read(_row(reservations, id))

    @post(
        "/{id:int}/cancel",
        operation_id="cancel_reservation",
        guards=[requires_operator],
        status_code=200,
        responses={
            **COMMON_ERRORS,
            **_NOT_FOUND,
            409: ResponseSpec(
                ErrorBody,
                description="The charger is offline or not accepted, or the reservation is still waiting for "
                "the charger's answer to ReserveNow (`reservation_pending`)",
            ),
            502: _CHARGER_ERRORS[502],
            504: _CHARGER_ERRORS[504],
        },
        summary="Cancel a reservation",
        description="Role: operator. Sends CancelReservation and answers the ended reservation; idempotent: a "
        "reservation no longer active is answered as it is and nothing is sent.",
    )
    async def cancel_reservation(
        self,
        reservations: NamedDependency[ReservationService],
        id: Annotated[int, Parameter(description="The reservation id")],
    ) -> ReservationRead:
        """Role: operator. Sends CancelReservation and answers the reservation, ended (`end_reason`
        cancelled). Idempotent: a reservation no longer active is answered as it is, and nothing is sent. When
        the charger is offline, errs or times out, nothing changes (the reservation still ends at its
        expiry)."""
        return reservation_read(await reservations.cancel(id))
