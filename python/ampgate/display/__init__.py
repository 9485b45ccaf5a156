"""Display messages (2.0.1 functional block O): what each charger shows its users, as the node knows it.

Owns the `display_messages` table (the node's view: a message enters it when the charger accepts our
SetDisplayMessage or lists it in NotifyDisplayMessages, and leaves it on ClearDisplayMessage or a refresh that
no longer lists it), the NotifyDisplayMessages handler (parts kept by `ampgate.reports`, numbered by arrival),
and the service that sends SetDisplayMessage / ClearDisplayMessage / GetDisplayMessages through the Commander.
`messages` holds the values and rules as pure functions. The HTTP routes live in `ampgate.api.display_messages`.
"""

from ampgate.display.handlers import NOTIFY_DISPLAY_MESSAGES, DisplayMessageHandlers
from ampgate.display.messages import Display, DisplayMessage
from ampgate.display.repository import DisplayMessageRepository, DisplayMessageRow
from ampgate.display.service import DisplayMessages, RefreshResult

__all__ = [
    "NOTIFY_DISPLAY_MESSAGES",
    "Display",
    "DisplayMessage",
    "DisplayMessageHandlers",
    "DisplayMessageRepository",
    "DisplayMessageRow",
    "DisplayMessages",
    "RefreshResult",
]
