"""Commands to chargers with a record each (a `command_id`), sent now or queued durably for a charger that is
away: the rules (`model`), the table (`repository`) and the service (`service.CommandQueue`)."""

from ampgate.commands.repository import CommandRepository, CommandRow
from ampgate.commands.service import CommandQueue

__all__ = ["CommandQueue", "CommandRepository", "CommandRow"]
