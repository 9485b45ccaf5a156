"""/api/v1/ocpi/cdr-deliveries: the CDRs owed to eMSPs and how their delivery goes (docs/ocpi.md, "CDRs and the
delivery queue"). Each is one CDR to one party: `pending` (tried again at `next_attempt_at`), `sent` (the eMSP
took it: `location` is where it keeps it) or `failed` (given up, or the party is gone).

Roles: reading is for viewers, as CDRs are (finance follows what is owed); a retry sends money to a party,
which is an admin's (OCPI parties are admin). Without `--ocpi-*` options every route is 409 `ocpi_not_configured`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter, QueryParameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import CdrDeliveries
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor
from ampgate.api.schemas import ErrorBody
from ampgate.errors import NotFoundError, ValidationError
from ampgate.roaming.billing_rows import Delivery
from ampgate.roaming.mapping import session_id

DELIVERIES_PATH = "/api/v1/ocpi/cdr-deliveries"
STATES = ("pending", "sent", "failed")


class DeliveryRead(msgspec.Struct, kw_only=True):
    """A CDR's delivery to an OCPI party. `cdr_id` is the CDR (`/api/v1/cdrs/{id}`, and its OCPI id),
    `party_ref` the party (`/api/v1/ocpi/parties/{id}`); `attempts` counts the POSTs that reached the party;
    `credit_of` is set for a credit CDR, which waits until the original's delivery is sent."""

    id: int
    cdr_id: int
    transaction_id: int
    session_id: str
    credit_of: int | None
    party_ref: int
    state: Annotated[str, Meta(description="pending, sent or failed")]
    attempts: int
    next_attempt_at: datetime | None
    give_up_at: datetime
    last_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    location: Annotated[str | None, Meta(description="Where the eMSP keeps the CDR (its POST answer)")]
    created_at: datetime


class DeliveryPage(msgspec.Struct, kw_only=True):
    items: list[DeliveryRead]
    next_cursor: str | None


def _read(d: Delivery) -> DeliveryRead:
    return DeliveryRead(
        id=d.id,
        cdr_id=d.cdr_id,
        transaction_id=d.transaction_id,
        session_id=session_id(d.transaction_id),
        credit_of=d.credit_of,
        party_ref=d.party_ref,
        state=d.state,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        give_up_at=d.give_up_at,
        last_attempt_at=d.last_attempt_at,
        last_error=d.last_error,
        sent_at=d.sent_at,
        location=d.location,
        created_at=d.created_at,
    )


DeliveryRef = Annotated[int, Parameter(description="The delivery's id")]
_404 = {404: ResponseSpec(ErrorBody, description="No such delivery (`field`: id)")}
_409 = {409: ResponseSpec(ErrorBody, description="`ocpi_not_configured` (no --ocpi-* options)")}


class CdrDeliveryController(Controller):
    path = DELIVERIES_PATH
    tags = ("ocpi",)

    @get(
        "/",
        operation_id="list_cdr_deliveries",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_409},
        summary="List CDR deliveries to OCPI parties",
        description="Role: viewer. In id order; `state` (pending, sent, failed) and `party_id` (the party's OCPI "
        "party id, e.g. EMP) filter.",
    )
    async def list_deliveries(
        self,
        cdr_deliveries: NamedDependency[CdrDeliveries],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        state_filter: Annotated[
            str | None,
            QueryParameter(name="state", description="Only deliveries in this state: pending, sent, failed"),
        ] = None,
        party_id: Annotated[str | None, Parameter(description="The party's OCPI party id")] = None,
    ) -> DeliveryPage:
        """Role: viewer. One page; 422 naming limit, cursor or state."""
        if state_filter is not None and state_filter not in STATES:
            raise ValidationError(f"state is one of {', '.join(STATES)}", field="state")
        rows = cdr_deliveries.page(limit + 1, int_cursor(cursor), state=state_filter, party_id=party_id)
        more = len(rows) > limit
        rows = rows[:limit]
        return DeliveryPage(
            items=[_read(d) for d in rows], next_cursor=str(rows[-1].id) if more and rows else None
        )

    @get(
        "/{ref:int}",
        operation_id="get_cdr_delivery",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_404, **_409},
        summary="One CDR delivery",
        description="Role: viewer.",
    )
    async def get_delivery(
        self, cdr_deliveries: NamedDependency[CdrDeliveries], ref: DeliveryRef
    ) -> DeliveryRead:
        """Role: viewer. 404 (field id)."""
        found = cdr_deliveries.get(ref)
        if found is None:
            raise NotFoundError(f"CDR delivery {ref} does not exist", field="id")
        return _read(found)

    @post(
        "/{ref:int}/retry",
        operation_id="retry_cdr_delivery",
        guards=[requires_admin],
        status_code=200,
        responses={
            **COMMON_ERRORS,
            **_404,
            409: ResponseSpec(
                ErrorBody, description="`already_delivered` (the eMSP took it), `ocpi_not_configured`"
            ),
        },
        summary="Try a CDR delivery again now",
        description="Role: admin. A pending delivery is tried at once; a failed one is pending again (given up a "
        "week from now if it keeps failing). Idempotent: 200 with the delivery. 409 `already_delivered` for a sent "
        "one (sending it again would bill twice).",
    )
    async def retry(self, cdr_deliveries: NamedDependency[CdrDeliveries], ref: DeliveryRef) -> DeliveryRead:
        """Role: admin. 200; 404 (field id); 409 already_delivered."""
        return _read(await cdr_deliveries.retry(ref))
