"""/api/v1/chargers/{charger_id}/logs: ask a charger for its logs (GetLog / GetDiagnostics), follow each request's
status timeline, and download the files chargers uploaded to the node.

Roles: reading requests is for viewers; asking for logs and downloading files is for operators (log files can
hold what a viewer should not read: security logs, network details, id tokens).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
import trio
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ETag
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from litestar.response import File
from msgspec import Meta

from ampgate.api.auth import requires_operator, requires_viewer, role_of
from ampgate.api.deps import ChargerReads, LogRequests
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor, require_charger
from ampgate.api.schemas import ErrorBody
from ampgate.commands.roles import check_command_role
from ampgate.errors import NotFoundError
from ampgate.logs import LogRow, LogSpec
from ampgate.logs.state import MAX_INT32, MAX_LOCATION

# -- bodies -----------------------------------------------------------------------------------------------------


class LogRequestCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Ask a charger for a log."""

    log_type: Annotated[
        Literal["DiagnosticsLog", "SecurityLog"],
        Meta(description="Which log (1.6 chargers without the security extension have DiagnosticsLog only)"),
    ] = "DiagnosticsLog"
    location: (
        Annotated[
            str,
            Meta(
                description="Where the charger uploads (http, https, ftp, ftps or sftp URL, passed through "
                "unchanged). Omit it to have the charger upload to the node, which then serves the file.",
                max_length=MAX_LOCATION,
            ),
        ]
        | None
    ) = None
    oldest_at: Annotated[datetime | None, Meta(description="Oldest log entries wanted")] = None
    latest_at: Annotated[datetime | None, Meta(description="Newest log entries wanted")] = None
    retries: (
        Annotated[int, Meta(ge=0, le=MAX_INT32, description="Upload attempts after a failure")] | None
    ) = None
    retry_interval_s: (
        Annotated[int, Meta(ge=0, le=MAX_INT32, description="Seconds between upload attempts")] | None
    ) = None


class LogStatusRead(msgspec.Struct, kw_only=True):
    """One status of a request and when the node saw it."""

    status: str
    at: datetime


class LogFileRead(msgspec.Struct, kw_only=True):
    """The file a charger uploaded to the node."""

    name: str | None  # as the charger named it, made safe; null when it named none
    size: int
    sha256: str  # hex
    received_at: datetime


class LogRequestRead(msgspec.Struct, kw_only=True):
    """A log request: what was sent, what happened since, and the file once received."""

    id: int
    charger_id: str
    protocol: str
    command: str  # GetLog or GetDiagnostics
    log_type: str
    request_id: int  # the requestId the charger knows (GetDiagnostics: the node's own)
    # Where the charger was told to upload: the operator's location (its password hidden), or the node's upload
    # URL with `{token}` in place of the secret token.
    location: str
    # The node's upload URL: open (waiting for the file), received, void (the charger refused or the call
    # failed); null when the charger uploads to the operator's location.
    upload_state: str | None
    upload_expires_at: datetime | None
    status: str  # the last of `timeline`
    timeline: list[LogStatusRead]
    error_code: str | None  # why the call failed (status Failed / TimedOut)
    error_message: str | None
    charger_filename: str | None  # the file name in the charger's reply
    created_at: datetime
    updated_at: datetime
    file: LogFileRead | None


class LogRequestPage(msgspec.Struct, kw_only=True):
    """One page of a charger's log requests, newest first; `next_cursor` null on the last."""

    items: list[LogRequestRead]
    next_cursor: str | None


def log_read(row: LogRow) -> LogRequestRead:
    """The API's view of a stored request."""
    file = None
    if row.file_size is not None and row.file_sha256 is not None and row.file_received_at is not None:
        file = LogFileRead(
            name=row.file_name, size=row.file_size, sha256=row.file_sha256, received_at=row.file_received_at
        )
    return LogRequestRead(
        id=row.id,
        charger_id=row.charger_id,
        protocol=row.protocol,
        command=row.command,
        log_type=row.log_type,
        request_id=row.request_id,
        location=row.location,
        upload_state=row.upload_state,
        upload_expires_at=row.upload_expires_at,
        status=row.status,
        timeline=[LogStatusRead(status=e.status, at=datetime.fromisoformat(e.at)) for e in row.timeline],
        error_code=row.error_code,
        error_message=row.error_message,
        charger_filename=row.charger_filename,
        created_at=row.created_at,
        updated_at=row.updated_at,
        file=file,
    )


def _utc(at: datetime | None) -> datetime | None:
    # A time without a zone is read as UTC, the zone of every timestamp of the API.
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _charger_log(logs: LogRequests, charger_id: str, log_id: int) -> LogRow:
    row = logs.get(log_id)
    if row is None or row.charger_id != charger_id:
        raise NotFoundError(f"charger {charger_id!r} has no log request {log_id}", field="log_id")
    return row


_NOT_FOUND = {404: ResponseSpec(ErrorBody, description="Unknown charger (`field`: id) or request (log_id)")}
_COMMAND_ERRORS = {
    **COMMON_ERRORS,
    **_NOT_FOUND,
    409: ResponseSpec(ErrorBody, description="The charger is not connected, or not accepted"),
    502: ResponseSpec(ErrorBody, description="The charger answered with a CALLERROR or an invalid reply"),
    504: ResponseSpec(ErrorBody, description="The charger did not answer in time"),
}


class ChargerLogController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/logs"
    tags = ("logs",)

    @post(
        "/",
        operation_id="request_log",
        guards=[requires_operator],
        status_code=201,
        responses=_COMMAND_ERRORS,
        summary="Ask a charger for a log (role: operator)",
        description="Role: operator. Sends GetLog (2.0.1, 1.6 security extension) or GetDiagnostics (1.6 "
        "core, also when a 1.6 charger answers GetLog NotImplemented/NotSupported) and waits for the reply. "
        "Without `location` the charger uploads to a one-time URL on the node's public surface; a `location` "
        "of the caller's choosing needs admin (403 naming `location`).",
    )
    async def request_log(
        self,
        request: Request[Any, Any, Any],
        logs: NamedDependency[LogRequests],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        data: JSONBody[LogRequestCreate],
    ) -> Response[LogRequestRead]:
        """201 with the request once the charger answered: status Accepted, AcceptedCanceled or Rejected
        (then its upload URL is void). 404 unknown charger, 409 offline / not accepted, 422 naming the field,
        502 / 504 when the call failed (the request is kept, status Failed / TimedOut)."""
        # The same rule as the GetLog command (ampgate.commands.roles): logs sent anywhere need admin.
        check_command_role(role_of(request), "GetLog", {"location": data.location})
        spec = LogSpec(
            log_type=data.log_type,
            location=data.location,
            oldest_at=_utc(data.oldest_at),
            latest_at=_utc(data.latest_at),
            retries=data.retries,
            retry_interval_s=data.retry_interval_s,
        )
        row = await logs.request(charger_id, spec)
        return Response(
            log_read(row),
            status_code=201,
            headers={"Location": f"/api/v1/chargers/{charger_id}/logs/{row.id}"},
        )

    @get(
        "/",
        operation_id="list_logs",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="A charger's log requests (role: viewer)",
        description="Role: viewer. Newest first, each with its status timeline and file.",
    )
    async def list_logs(
        self,
        logs: NamedDependency[LogRequests],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> LogRequestPage:
        """The charger's log requests, newest first. 404 (field id) for an unknown charger, 422 naming limit
        or cursor."""
        before = int_cursor(cursor)
        require_charger(chargers, charger_id)
        rows = logs.page(charger_id, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return LogRequestPage(
            items=[log_read(r) for r in rows], next_cursor=str(rows[-1].id) if more else None
        )

    @get(
        "/{log_id:int}",
        operation_id="get_log",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="One log request (role: viewer)",
        description="Role: viewer.",
    )
    async def get_log(
        self,
        logs: NamedDependency[LogRequests],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        log_id: Annotated[int, Parameter(description="The request's id")],
    ) -> LogRequestRead:
        """The request `log_id` of the charger. 404 (field log_id) when the charger has no such request."""
        return log_read(_charger_log(logs, charger_id, log_id))

    @get(
        "/{log_id:int}/file",
        operation_id="get_log_file",
        guards=[requires_operator],
        responses={
            **COMMON_ERRORS,
            404: ResponseSpec(ErrorBody, description="No such request, or no file received (yet)"),
        },
        summary="Download the file a charger uploaded (operator)",
        description="Role: operator. The bytes as received; `ETag` is their SHA-256.",
        media_type="application/octet-stream",
    )
    async def get_log_file(
        self,
        logs: NamedDependency[LogRequests],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        log_id: Annotated[int, Parameter(description="The request's id")],
    ) -> File:
        """The file as an attachment (named as the charger named it). 404 `not_uploaded` until it arrived (or
        when the charger uploaded elsewhere), `file_missing` if it was removed from disk."""
        row = _charger_log(logs, charger_id, log_id)
        if row.file_path is None:
            raise NotFoundError(
                f"no file was received for log request {log_id}", field="log_id", code="not_uploaded"
            )
        if not await trio.Path(row.file_path).exists():
            raise NotFoundError(
                f"the file of log request {log_id} is no longer on disk", field="log_id", code="file_missing"
            )
        return File(
            row.file_path,
            filename=row.file_name or f"log-{row.id}",
            media_type="application/octet-stream",
            etag=ETag(value=row.file_sha256) if row.file_sha256 else None,
        )
