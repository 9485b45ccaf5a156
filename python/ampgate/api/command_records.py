"""/api/v1/commands/{command_id} and /api/v1/chargers/{id}/commands: the record of every command asked for
through the API (sent at once or queued), and cancelling a queued one."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter, QueryParameter

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import ChargerReads, CommandRecords
from ampgate.api.paging import (
    CHARGER_ERRORS,
    COMMON_ERRORS,
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    int_cursor,
    require_charger,
)
from ampgate.api.schemas import CommandPage, CommandRead, ErrorBody
from ampgate.commands import CommandRow
from ampgate.commands.model import STATES
from ampgate.errors import NotFoundError, ValidationError

COMMANDS_PATH = "/api/v1/commands"

_NOT_FOUND = {404: ResponseSpec(ErrorBody, description="No such command (`field`: command_id)")}
CommandId = Annotated[str, Parameter(description="The command's id (its X-Command-Id)")]
# `state` is a name Litestar reserves for the app state, so the handler's argument has another name.
StateFilter = Annotated[
    str | None,
    QueryParameter(name="state", description=f"Only commands in this state: {', '.join(STATES)}"),
]


def command_read(row: CommandRow) -> CommandRead:
    """The API's view of a stored command."""
    return CommandRead(
        id=row.id,
        charger_id=row.charger_id,
        action=row.action,
        payload=row.payload,
        protocol=row.protocol,
        queued=row.queued,
        state=row.state,
        reply=row.reply,
        error_code=row.error_code,
        error_message=row.error_message,
        ocpp_code=row.ocpp_code,
        unique_id=row.unique_id,
        superseded_by=row.superseded_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        sent_at=row.sent_at,
        finished_at=row.finished_at,
    )


def _command(commands: CommandRecords, command_id: str) -> CommandRow:
    row = commands.get(command_id)
    if row is None:
        raise NotFoundError(f"no command {command_id!r}", field="command_id")
    return row


class CommandRecordController(Controller):
    path = COMMANDS_PATH
    tags = ("commands",)

    @get(
        "/{command_id:str}",
        operation_id="get_command",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="One command",
        description="Role: viewer. A command by its id: its state, the charger's reply or the error, and when it "
        "was created, sent and finished.",
    )
    async def get_command(
        self, commands: NamedDependency[CommandRecords], command_id: CommandId
    ) -> CommandRead:
        """Role: viewer. The command `command_id`; 404 (field command_id) if there is none (finished commands
        are kept 30 days)."""
        return command_read(_command(commands, command_id))

    @post(
        "/{command_id:str}/cancel",
        operation_id="cancel_command",
        guards=[requires_operator],
        status_code=200,
        responses={
            **COMMON_ERRORS,
            **_NOT_FOUND,
            409: ResponseSpec(
                ErrorBody,
                description="It is no longer queued: sent, answered, failed or expired (`command_not_cancellable`)",
            ),
        },
        summary="Cancel a queued command",
        description="Role: operator. A queued command is cancelled and never sent; idempotent: cancelling a "
        "cancelled command answers it as it is.",
    )
    async def cancel_command(
        self, commands: NamedDependency[CommandRecords], command_id: CommandId
    ) -> CommandRead:
        """Role: operator. Cancels a queued command (never sent); cancelling it again answers it unchanged; a
        command already sent, answered, failed or expired is 409 `command_not_cancellable`."""
        return command_read(await commands.cancel(command_id))


class ChargerCommandController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/commands"
    tags = ("commands",)

    @get(
        "/",
        operation_id="list_charger_commands",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="A charger's commands",
        description="Role: viewer. The charger's commands newest first (its queue: state=queued), filtered by "
        "state.",
    )
    async def list_charger_commands(
        self,
        commands: NamedDependency[CommandRecords],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        state_filter: StateFilter = None,
    ) -> CommandPage:
        """Role: viewer. The charger's commands newest first; `state=queued` is its queue (delivered oldest
        first). 404 (field id) for an unknown charger; 422 naming limit, cursor or state."""
        require_charger(chargers, charger_id)
        state = state_filter
        if state is not None and state not in STATES:
            raise ValidationError(f"state must be one of {', '.join(STATES)}", field="state")
        rows = commands.page(charger_id, limit + 1, int_cursor(cursor), state)
        more = len(rows) > limit
        rows = rows[:limit]
        return CommandPage(
            items=[command_read(r) for r in rows], next_cursor=str(rows[-1].seq) if more else None
        )
