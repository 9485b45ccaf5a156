"""Replies on their way to the workers, guarded so that no message, however large, stops the pump.

The hub refuses a whole `send` batch (ValueError, nothing sent) when one message in it is larger than a worker
link can carry (`HUB_MAX_SEND`). A reply is built from what a charger sent (a CALLERROR names the field and the
unique id it was given), so a charger could otherwise make a send raise in the pump, or in its reply task, and
take the node down with it. Here the batch is retried without the messages that cannot go, and their connections
are closed with a reason: the charger is told, the other chargers in the batch get their replies.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ampgate.config import HUB_MAX_SEND

log = logging.getLogger(__name__)

# A reply we cannot send is our failure to answer, not the charger's protocol error: 1011 (internal error),
# with a reason the charger's log shows.
REPLY_TOO_LARGE_CODE = 1011
REPLY_TOO_LARGE_REASON = "reply too large to send"


class Hub(Protocol):
    """The native hub's sending side."""

    def send(self, batch: list[tuple[int, bytes]], /) -> None: ...
    def close(self, batch: list[tuple[int, int, str]], /) -> None: ...


class Outgoing:
    """`send` and `close` of the hub, with every message that cannot go dropped and its connection closed
    instead of an exception. `refused` counts the messages dropped so."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.refused = 0

    def send(self, batch: list[tuple[int, bytes]], /) -> None:
        """Send `batch`; a message over the hub's limit is dropped and its connection closed with 1011. Never
        raises for a message's size."""
        try:
            self._hub.send(batch)
            return
        except ValueError:
            pass  # the rare path: one message in the batch is too large; the batch went nowhere
        fits = [(c, m) for c, m in batch if len(m) <= HUB_MAX_SEND]
        too_large = list(dict.fromkeys(c for c, m in batch if len(m) > HUB_MAX_SEND))
        self.refused += len(batch) - len(fits)
        for conn_id in too_large:
            log.error("dropping a reply to connection %#x over %d bytes; closing it", conn_id, HUB_MAX_SEND)
        if fits:
            try:
                self._hub.send(fits)
            except ValueError:
                # Only if the hub's limit is lower than ours: still never the pump's exception.
                log.exception("the hub refused a batch of %d replies", len(fits))
        if too_large:
            self._hub.close([(c, REPLY_TOO_LARGE_CODE, REPLY_TOO_LARGE_REASON) for c in too_large])

    def close(self, batch: list[tuple[int, int, str]], /) -> None:
        """Close connections: `(conn_id, code, reason)`."""
        self._hub.close(batch)
