"""/api/v1/chargers/{charger_id}/firmware-publications: have a 2.0.1 local controller publish a firmware image
to the chargers behind it (PublishFirmware), follow each publication's status timeline
(PublishFirmwareStatusNotification) and stop it (UnpublishFirmware).

Stopping is `POST …/{request_id}/unpublish`, not DELETE: a publication is a long-running thing whose record (its
timeline, what it published where) stays after it ends, and the conventions make such a state change a verb
that is idempotent (the second unpublish answers 200 with the current state and sends nothing). DELETE would
promise the resource is gone (204), which it is not.

Roles: reading is for viewers; publishing and unpublishing for operators.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import ChargerReads, FirmwarePublicationService
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor, require_charger
from ampgate.api.schemas import ErrorBody
from ampgate.errors import NotFoundError
from ampgate.firmware_publish import PublicationRow, PublishSpec
from ampgate.firmware_publish.state import MAX_INT32, MAX_LOCATION


class PublicationCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The image to publish."""

    location: Annotated[
        str,
        Meta(
            max_length=MAX_LOCATION,
            description="Where the controller downloads the image (http, https, ftp, ftps or sftp URL)",
        ),
    ]
    checksum: Annotated[str, Meta(description="The image's MD5, 32 hexadecimal characters")]
    retries: (
        Annotated[int, Meta(ge=0, le=MAX_INT32, description="Download attempts after a failure")] | None
    ) = None
    retry_interval_s: (
        Annotated[int, Meta(ge=0, le=MAX_INT32, description="Seconds between download attempts")] | None
    ) = None


class PublicationStatusRead(msgspec.Struct, kw_only=True):
    """One status of a publication and when the node saw it."""

    status: str
    at: datetime


class PublicationRead(msgspec.Struct, kw_only=True):
    """A publication: what was sent, its timeline (Requested, the controller's answer, its notifications, the
    answer to an unpublish), and the URIs it serves the image at once Published."""

    id: int  # the requestId the controller knows (the same as request_id)
    request_id: int
    charger_id: str
    location: str
    checksum: str
    retries: int | None
    retry_interval_s: int | None
    status: str  # the last of `timeline`
    timeline: list[PublicationStatusRead]
    published_locations: list[str] | None
    error_code: str | None  # why the call failed (status Failed / TimedOut)
    error_message: str | None
    created_at: datetime
    updated_at: datetime


class PublicationPage(msgspec.Struct, kw_only=True):
    """One page of a charger's publications, newest first; `next_cursor` null on the last."""

    items: list[PublicationRead]
    next_cursor: str | None


def publication_read(row: PublicationRow) -> PublicationRead:
    return PublicationRead(
        id=row.id,
        request_id=row.id,
        charger_id=row.charger_id,
        location=row.location,
        checksum=row.checksum,
        retries=row.retries,
        retry_interval_s=row.retry_interval_s,
        status=row.status,
        timeline=[
            PublicationStatusRead(status=e.status, at=datetime.fromisoformat(e.at)) for e in row.timeline
        ],
        published_locations=row.published_locations,
        error_code=row.error_code,
        error_message=row.error_message,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_NOT_FOUND = {
    404: ResponseSpec(ErrorBody, description="Unknown charger (`field`: id) or publication (request_id)"),
}
_COMMAND_ERRORS = {
    **COMMON_ERRORS,
    **_NOT_FOUND,
    409: ResponseSpec(
        ErrorBody,
        description="The charger is not connected or not accepted, speaks OCPP 1.6 (`unsupported_protocol`), "
        "or (unpublish) is still downloading the image (`download_ongoing`)",
    ),
    502: ResponseSpec(ErrorBody, description="The charger answered with a CALLERROR or an invalid reply"),
    504: ResponseSpec(ErrorBody, description="The charger did not answer in time"),
}


def _publication(
    publications: FirmwarePublicationService, charger_id: str, request_id: int
) -> PublicationRow:
    row = publications.get(charger_id, request_id)
    if row is None:
        raise NotFoundError(
            f"charger {charger_id!r} has no firmware publication {request_id}", field="request_id"
        )
    return row


class FirmwarePublicationController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/firmware-publications"
    tags = ("firmware publications",)

    @post(
        "/",
        operation_id="publish_firmware",
        guards=[requires_operator],
        status_code=201,
        responses=_COMMAND_ERRORS,
        summary="Have a local controller publish a firmware image: PublishFirmware (operator)",
        description="Role: operator. OCPP 2.0.1 only. The requestId is the node's; the publication is kept "
        "with its status timeline.",
    )
    async def publish_firmware(
        self,
        firmware_publications: NamedDependency[FirmwarePublicationService],
        charger_id: Annotated[str, Parameter(description="The local controller's charge point id")],
        data: JSONBody[PublicationCreate],
    ) -> Response[PublicationRead]:
        """201 with the publication once the controller answered (Accepted or Rejected). 404 unknown charger,
        409 offline / not accepted / 1.6, 422 naming the field (nothing stored), 502 / 504 when the call failed
        (the publication is kept, status Failed / TimedOut)."""
        spec = PublishSpec(
            location=data.location,
            checksum=data.checksum,
            retries=data.retries,
            retry_interval_s=data.retry_interval_s,
        )
        row = await firmware_publications.publish(charger_id, spec)
        return Response(
            publication_read(row),
            status_code=201,
            headers={"Location": f"/api/v1/chargers/{charger_id}/firmware-publications/{row.id}"},
        )

    @get(
        "/",
        operation_id="list_firmware_publications",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="A local controller's firmware publications (viewer)",
        description="Role: viewer. Newest first, each with its status timeline.",
    )
    async def list_firmware_publications(
        self,
        firmware_publications: NamedDependency[FirmwarePublicationService],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The local controller's charge point id")],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> PublicationPage:
        """The charger's publications, newest first. 404 (field id) for an unknown charger, 422 naming limit or
        cursor."""
        before = int_cursor(cursor)
        require_charger(chargers, charger_id)
        rows = firmware_publications.page(charger_id, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return PublicationPage(
            items=[publication_read(r) for r in rows], next_cursor=str(rows[-1].id) if more else None
        )

    @get(
        "/{request_id:int}",
        operation_id="get_firmware_publication",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="One firmware publication (viewer)",
        description="Role: viewer.",
    )
    async def get_firmware_publication(
        self,
        firmware_publications: NamedDependency[FirmwarePublicationService],
        charger_id: Annotated[str, Parameter(description="The local controller's charge point id")],
        request_id: Annotated[int, Parameter(description="The publication's requestId")],
    ) -> PublicationRead:
        """The publication, or 404 (field request_id)."""
        return publication_read(_publication(firmware_publications, charger_id, request_id))

    @post(
        "/{request_id:int}/unpublish",
        operation_id="unpublish_firmware",
        guards=[requires_operator],
        status_code=200,
        responses=_COMMAND_ERRORS,
        summary="Stop publishing the image: UnpublishFirmware (operator)",
        description="Role: operator. OCPP 2.0.1 only. Idempotent: a publication already unpublished (or that "
        "the controller said it has no firmware for) is returned as it is and nothing is sent. The controller "
        "unpublishes by checksum: every publication of that image on it gets the answer.",
    )
    async def unpublish_firmware(
        self,
        firmware_publications: NamedDependency[FirmwarePublicationService],
        charger_id: Annotated[str, Parameter(description="The local controller's charge point id")],
        request_id: Annotated[int, Parameter(description="The publication's requestId")],
    ) -> PublicationRead:
        """200 with the publication (status Unpublished or NoFirmware). 404, 409 `download_ongoing` (nothing
        changes), 502 / 504."""
        return publication_read(await firmware_publications.unpublish(charger_id, request_id))
