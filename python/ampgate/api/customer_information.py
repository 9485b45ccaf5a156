"""/api/v1/chargers/{charger_id}/customer-information: ask a 2.0.1 charger to report and/or clear what it holds
about one customer (CustomerInformation), and read the reports it sent (NotifyCustomerInformation, assembled).

Roles: everything here is personal data. Asking and reading are for operators (not viewers: a viewer sees the
fleet, not the people using it); deleting a kept request and its report is for admins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_operator
from ampgate.api.deps import ChargerReads, CustomerInformationRequests
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor, require_charger
from ampgate.api.schemas import ErrorBody
from ampgate.customer import CertificateHash, Customer, CustomerInformation, CustomerRequest, IdToken
from ampgate.errors import NotFoundError

IdTokenType = Literal[
    "Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization"
]


class IdTokenBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """2.0.1 IdTokenType."""

    id_token: Annotated[str, Meta(max_length=36)]
    type: IdTokenType


class CertificateHashBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """2.0.1 CertificateHashDataType: the customer's certificate."""

    hash_algorithm: Literal["SHA256", "SHA384", "SHA512"]
    issuer_name_hash: Annotated[str, Meta(max_length=128)]
    issuer_key_hash: Annotated[str, Meta(max_length=128)]
    serial_number: Annotated[str, Meta(max_length=40)]


class CustomerInformationCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What to ask: `report` (the charger sends what it holds), `clear` (it deletes it), or both; and whom:
    exactly one of `customer_identifier`, `id_token`, `customer_certificate`."""

    report: Annotated[bool, Meta(description="The charger reports what it holds about the customer")] = False
    clear: Annotated[bool, Meta(description="The charger deletes what it holds about the customer")] = False
    customer_identifier: (
        Annotated[str, Meta(max_length=64, description="A vendor-specific customer identifier")] | None
    ) = None
    id_token: IdTokenBody | None = None
    customer_certificate: CertificateHashBody | None = None


class CustomerInformationSummary(msgspec.Struct, kw_only=True):
    """A request as kept: whom it named, the charger's answer (Requested until then; Failed / TimedOut when
    the call failed, with `error_code`), and its report: `parts` received, `complete` (null when no report was
    asked), `size` in characters."""

    id: int  # the requestId the charger knows (the same as request_id)
    request_id: int
    charger_id: str
    report: bool
    clear: bool
    customer_identifier: str | None
    id_token: IdToken | None
    customer_certificate: CertificateHash | None
    status: str
    error_code: str | None
    requested_at: datetime
    answered_at: datetime | None
    parts: int
    complete: bool | None
    size: int | None


class CustomerInformationRead(CustomerInformationSummary, kw_only=True):
    """A request with its report's text: the parts' `data` in seqNo order (null when no report was asked)."""

    data: str | None


class CustomerInformationPage(msgspec.Struct, kw_only=True):
    """One page of a charger's requests, newest first (without their text); `next_cursor` null on the last."""

    items: list[CustomerInformationSummary]
    next_cursor: str | None


def summary(info: CustomerInformation) -> CustomerInformationSummary:
    """The API's view of a kept request, without its text."""
    r = info.request
    return CustomerInformationSummary(
        id=r.request_id,
        request_id=r.request_id,
        charger_id=r.charger_id,
        report=r.report,
        clear=r.clear,
        customer_identifier=r.customer.customer_identifier,
        id_token=r.customer.id_token,
        customer_certificate=r.customer.customer_certificate,
        status=r.status,
        error_code=r.error_code,
        requested_at=r.requested_at,
        answered_at=r.answered_at,
        parts=info.parts,
        complete=info.complete,
        size=None if info.data is None else len(info.data),
    )


def read(info: CustomerInformation) -> CustomerInformationRead:
    """The API's view of a kept request with its report's text."""
    return CustomerInformationRead(**msgspec.structs.asdict(summary(info)), data=info.data)


def _spec(data: CustomerInformationCreate) -> CustomerRequest:
    return CustomerRequest(
        report=data.report,
        clear=data.clear,
        customer=Customer(
            customer_identifier=data.customer_identifier,
            id_token=None
            if data.id_token is None
            else IdToken(id_token=data.id_token.id_token, type=data.id_token.type),
            customer_certificate=None
            if data.customer_certificate is None
            else CertificateHash(**msgspec.structs.asdict(data.customer_certificate)),
        ),
    )


_NOT_FOUND = {
    404: ResponseSpec(ErrorBody, description="Unknown charger (`field`: id) or request (request_id)"),
}


class CustomerInformationController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/customer-information"
    tags = ("customer information",)

    @post(
        "/",
        operation_id="request_customer_information",
        guards=[requires_operator],
        status_code=201,
        responses={
            **COMMON_ERRORS,
            **_NOT_FOUND,
            409: ResponseSpec(
                ErrorBody,
                description="The charger is not connected or not accepted, or speaks OCPP 1.6 "
                "(`unsupported_protocol`)",
            ),
            502: ResponseSpec(
                ErrorBody, description="The charger answered with a CALLERROR or an invalid reply"
            ),
            504: ResponseSpec(ErrorBody, description="The charger did not answer in time"),
        },
        summary="Ask a charger to report and/or clear what it holds about a customer (operator)",
        description="Role: operator (personal data). OCPP 2.0.1 only. Sends CustomerInformation with a new "
        "requestId; with `report` and an Accepted answer, waits (at most the node's report timeout) for every "
        "NotifyCustomerInformation part and returns their text assembled; `complete` false if the report was "
        "not whole in time (later parts are still kept). The charger's status (Accepted, Rejected, Invalid) is "
        "in `status`.",
    )
    async def request_customer_information(
        self,
        customer_information: NamedDependency[CustomerInformationRequests],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        data: JSONBody[CustomerInformationCreate],
    ) -> Response[CustomerInformationRead]:
        """201 with the request and its report (`Location`: the request). 404 unknown charger, 409 offline / not
        accepted / 1.6, 422 naming the field (`report` when it asks for nothing; the identifier when none or
        several are given), 502 / 504 when the call failed (the request is kept, status Failed / TimedOut)."""
        info = await customer_information.request(charger_id, _spec(data))
        return Response(
            read(info),
            status_code=201,
            headers={
                "Location": f"/api/v1/chargers/{charger_id}/customer-information/{info.request.request_id}"
            },
        )

    @get(
        "/",
        operation_id="list_customer_information",
        guards=[requires_operator],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="A charger's customer-information requests (operator)",
        description="Role: operator (personal data). Newest first, without the reports' text.",
    )
    async def list_customer_information(
        self,
        customer_information: NamedDependency[CustomerInformationRequests],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> CustomerInformationPage:
        """The charger's requests, newest first. 404 (field id) for an unknown charger, 422 naming limit or
        cursor."""
        before = int_cursor(cursor)
        require_charger(chargers, charger_id)
        rows = customer_information.page(charger_id, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return CustomerInformationPage(
            items=[summary(r) for r in rows], next_cursor=str(rows[-1].request.request_id) if more else None
        )

    @get(
        "/{request_id:int}",
        operation_id="get_customer_information",
        guards=[requires_operator],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="One customer-information request with its report (operator)",
        description="Role: operator (personal data).",
    )
    async def get_customer_information(
        self,
        customer_information: NamedDependency[CustomerInformationRequests],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        request_id: Annotated[int, Parameter(description="The requestId")],
    ) -> CustomerInformationRead:
        """The request and its report's text. 404 (field request_id) when the charger has no such request."""
        info = customer_information.get(charger_id, request_id)
        if info is None:
            raise NotFoundError(
                f"charger {charger_id!r} has no customer information request {request_id}", field="request_id"
            )
        return read(info)

    @delete(
        "/{request_id:int}",
        operation_id="delete_customer_information",
        guards=[requires_admin],
        status_code=204,
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="Delete a customer-information request and its report (admin)",
        description="Role: admin (personal data). Removes the request and every part of its report in one "
        "commit. It does not touch the charger: to delete the data there, ask with `clear`.",
    )
    async def delete_customer_information(
        self,
        customer_information: NamedDependency[CustomerInformationRequests],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        request_id: Annotated[int, Parameter(description="The requestId")],
    ) -> None:
        """204 once removed; 404 (field request_id) when there was nothing."""
        await customer_information.delete(charger_id, request_id)
