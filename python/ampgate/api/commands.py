"""/api/v1/chargers/{id}/commands/{name}: send an OCPP command to a charger and answer with its reply, or queue
it for a charger that is away (`?queue=true`); the command records themselves are `ampgate.api.command_records`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

from ampgate.api.auth import requires_operator, role_of
from ampgate.api.command_records import COMMANDS_PATH, command_read
from ampgate.api.deps import CommandRecords, LocalListSender, LogRequests
from ampgate.api.schemas import CommandRead, ErrorBody
from ampgate.commands.model import MAX_TTL_S
from ampgate.commands.roles import check_command_role
from ampgate.errors import ValidationError
from ampgate.logs.state import LOG_COMMANDS
from ampgate.store import role_at_least

COMMAND_ID_HEADER = "X-Command-Id"

_ERRORS = {
    401: ResponseSpec(ErrorBody, description="No token, or an unknown one"),
    403: ResponseSpec(
        ErrorBody,
        description="The token's role is too low for this action or payload (`ampgate.commands.roles`; "
        "`details`: action, required_role); nothing was sent or queued",
    ),
    404: ResponseSpec(ErrorBody, description="Unknown charger (`field`: id) or command (`field`: name)"),
    409: ResponseSpec(
        ErrorBody,
        description="The charger is not connected (`charger_offline`) or not accepted; queueing: it never "
        "connected, so its OCPP version is unknown (`protocol_unknown`)",
    ),
    429: ResponseSpec(ErrorBody, description="Queueing: the charger's queue is full (`queue_full`)"),
    422: ResponseSpec(
        ErrorBody, description="The body is not a valid request for this command; `field` names it"
    ),
    502: ResponseSpec(
        ErrorBody, description="The charger answered with a CALLERROR (`ocpp_code`) or an invalid reply"
    ),
    504: ResponseSpec(ErrorBody, description="The charger did not answer in time"),
}


def requires_command_role(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The route's guard: a token below operator may send no command, and is told which role the action in the
    path needs (the same 403 as the handler's payload check, naming `name`). Raises ForbiddenError."""
    role = role_of(connection)
    if role is None or not role_at_least(role, "operator"):
        check_command_role(role, connection.path_params.get("name", ""), None)
        requires_operator(connection, _)  # unreachable while every action needs operator or more: fail closed


class CommandController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/commands"
    tags = ("commands",)

    @post(
        "/{name:str}",
        operation_id="send_command",
        guards=[requires_command_role],
        status_code=200,
        responses={
            **_ERRORS,
            202: ResponseSpec(CommandRead, description="Queued (`queue=true`): the command, state queued"),
        },
        summary="Send an OCPP command to a charger, or queue it (role: operator or admin, per action)",
    )
    async def send_command(
        self,
        request: Request[Any, Any, Any],
        commands: NamedDependency[CommandRecords],
        logs: NamedDependency[LogRequests],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        name: Annotated[str, Parameter(description="The OCPP action, e.g. Reset")],
        data: JSONBody[dict[str, Any]],
        queue: Annotated[
            bool,
            Parameter(
                description="Queue the command for the charger: delivered in order once it is online and "
                "accepted (at once if it is now), kept across node restarts, never sent after its time to live"
            ),
        ] = False,
        ttl_s: Annotated[
            float | None,
            Parameter(
                description=f"With queue=true: seconds it may wait, default 86400, at most {MAX_TTL_S}"
            ),
        ] = None,
    ) -> Response[Any]:
        """Role: operator for day-to-day actions, admin for security, network, certificate, firmware-from-a-URL
        and DataTransfer commands and for security keys / variables (the table in `ampgate.commands.roles`,
        listed in docs/api.md); checked before anything else, so a refused command is neither sent nor queued
        nor recorded. `name` is the OCPP action (`Reset`, `TriggerMessage`, ...); the body is its request
        payload as the specification writes it for the charger's protocol version (e.g. `{"type": "Soft"}` for a
        1.6 Reset). Every command is recorded: its id is in the `X-Command-Id` header (also on an error once the
        command was recorded) and `GET /api/v1/commands/{id}` shows it.

        Without `queue`: waits for the charger and answers with its reply payload. With `queue=true`: the
        request is checked against the protocol version the charger last spoke and answered 202 with the
        command (state queued); `ttl_s` bounds its wait. GetLog and GetDiagnostics are recorded as log requests
        (GET …/logs), and without a location (`log.remoteLocation`, `location`) the charger is told the node's
        own one-time upload URL; they are sent now only (422 naming `queue`)."""
        check_command_role(role_of(request), name, data)
        if ttl_s is not None and not queue:
            raise ValidationError("ttl_s is for a queued command (queue=true)", field="ttl_s")
        if name in LOG_COMMANDS:
            if queue:
                raise ValidationError(
                    f"{name} is sent now only: its upload URL is one-time and short-lived", field="queue"
                )
            return Response(await logs.command(charger_id, name, data))
        if queue:
            row = await commands.enqueue(charger_id, name, data, ttl_s=ttl_s)
            return Response(
                command_read(row),
                status_code=202,
                headers={COMMAND_ID_HEADER: row.id, "Location": f"{COMMANDS_PATH}/{row.id}"},
            )
        command_id, reply = await commands.send(charger_id, name, data)
        return Response(reply, headers={COMMAND_ID_HEADER: command_id})


class LocalListRequest(msgspec.Struct, forbid_unknown_fields=True):
    # Only Full: a list built from the whole table cannot express deletions, so a Differential one would leave
    # deleted tokens authorized on the charger. Differential updates go through the SendLocalList command.
    update_type: Literal["Full"] = "Full"
    version: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | None = None


class LocalListResult(msgspec.Struct):
    version: int
    entries: int
    skipped: int  # tokens too long for the charger's protocol version (never truncated)
    status: str | None  # the charger's SendLocalList status


class LocalListController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/local-list"
    tags = ("commands",)

    @post(
        "/",
        operation_id="send_local_list",
        guards=[requires_operator],
        status_code=200,
        responses=_ERRORS,
        summary="Send the charger its local authorization list, built from the id-token table (role: operator)",
    )
    async def send_local_list(
        self,
        local_lists: NamedDependency[LocalListSender],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        data: JSONBody[LocalListRequest],
    ) -> LocalListResult:
        """Build SendLocalList (1.6 or 2.0.1, as the charger speaks) from every id token, send it and return
        the version sent, how many entries went and were skipped, and the charger's status. Errors as for
        commands. Read the charger's version back with the `GetLocalListVersion` command."""
        r = await local_lists.send(charger_id, data.update_type, data.version)
        return LocalListResult(**r)
