"""The Commands module, Receiver interface (mod_commands): `POST /ocpi/2.2.1/commands/{command}` with the
command's object. Registered parties only. A malformed object is status 2001 naming the field; otherwise the
answer is a CommandResponse (see `ampgate.roaming.commands`), in an envelope of status 1000, or 2003 when the
Location, EVSE or connector named is not one we publish."""

from __future__ import annotations

from typing import Any, Protocol

from litestar import Request, Response, post
from litestar.di import NamedDependency

from ampgate.roaming.commands import CommandReceiver
from ampgate.roaming.server import VERSION_PATH, Module, OcpiContext, answer, body_of, caller
from ampgate.roaming.types import (
    CancelReservation,
    CommandType,
    InterfaceRole,
    ModuleId,
    ReserveNow,
    StartSession,
    StopSession,
    UnlockConnector,
)

PATH = "commands"
# The object each command carries.
BODIES: dict[str, type[Any]] = {
    CommandType.START_SESSION: StartSession,
    CommandType.STOP_SESSION: StopSession,
    CommandType.UNLOCK_CONNECTOR: UnlockConnector,
    CommandType.RESERVE_NOW: ReserveNow,
    CommandType.CANCEL_RESERVATION: CancelReservation,
}


class CommandsContext(OcpiContext, Protocol):
    """`ampgate.roaming.Roaming`: its command receiver."""

    @property
    def commands(self) -> CommandReceiver: ...


@post(
    f"{VERSION_PATH}/{PATH}/{{command:str}}",
    operation_id="ocpi_command",
    status_code=200,
    summary="A command for a charge point",
)
async def post_command(
    request: Request[Any, Any, Any], ocpi: NamedDependency[CommandsContext], command: str
) -> Response[bytes]:
    who = caller(request, ocpi)
    type_ = BODIES.get(command)
    body = None if type_ is None else await body_of(request, type_)
    response, status_code = await ocpi.commands.receive(who, command, body)
    message = response.message[0].text if status_code != 1000 and response.message else None
    return answer(request, response, status_code=status_code, message=message, caller=who)


COMMANDS = Module(
    identifier=ModuleId.COMMANDS,
    role=InterfaceRole.RECEIVER,
    path=PATH,
    handlers=(post_command,),
)
