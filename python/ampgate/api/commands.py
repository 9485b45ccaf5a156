"""/api/v1/chargers/{id}/commands/{name}: send an OCPP command to a charger and answer with its reply."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

from ampgate.api.auth import requires_operator
from ampgate.api.deps import CommandSender, LocalListSender, LogRequests
from ampgate.api.schemas import ErrorBody
from ampgate.logs.state import LOG_COMMANDS

_ERRORS = {
    401: ResponseSpec(ErrorBody, description="No token, or an unknown one"),
    403: ResponseSpec(ErrorBody, description="The token's role is too low (operator needed)"),
    404: ResponseSpec(ErrorBody, description="Unknown charger (`field`: id) or command (`field`: name)"),
    409: ResponseSpec(ErrorBody, description="The charger is not connected"),
    422: ResponseSpec(
        ErrorBody, description="The body is not a valid request for this command; `field` names it"
    ),
    502: ResponseSpec(
        ErrorBody, description="The charger answered with a CALLERROR (`ocpp_code`) or an invalid reply"
    ),
    504: ResponseSpec(ErrorBody, description="The charger did not answer in time"),
}


class CommandController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/commands"
    tags = ("commands",)

    @post(
        "/{name:str}",
        operation_id="send_command",
        guards=[requires_operator],
        status_code=200,
        responses=_ERRORS,
        summary="Send an OCPP command to a charger (role: operator)",
    )
    async def send_command(
        self,
        commander: NamedDependency[CommandSender],
        logs: NamedDependency[LogRequests],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        name: Annotated[str, Parameter(description="The OCPP action, e.g. Reset")],
        data: JSONBody[dict[str, Any]],
    ) -> Any:
        """`name` is the OCPP action (`Reset`, `TriggerMessage`, ...); the body is its request payload as the
        specification writes it for the charger's protocol version (e.g. `{"type": "Soft"}` for a 1.6 Reset).
        Waits for the charger and answers with its reply payload. GetLog and GetDiagnostics are recorded as
        log requests (GET …/logs), and without a location (`log.remoteLocation`, `location`) the charger is
        told the node's own one-time upload URL."""
        if name in LOG_COMMANDS:
            return await logs.command(charger_id, name, data)
        return await commander.call(charger_id, name, data)


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
