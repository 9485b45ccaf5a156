"""The outbox: CALLs from the central system to chargers, one outstanding per charger, the rest queued in order.

OCPP-J (1.6 §4.1.1, 2.0.1 part 4 §4.1.1): neither side sends a new CALL before its previous one was answered
or timed out. So every charger has an outbox, keyed by charger id (not by connection, so a charger that drops
and reconnects gets its queued commands in order on the new connection). The CALL that was on the wire when the
connection dropped cannot be answered on another connection; it fails at once.

Everything here runs on the trio thread. A caller awaits its command's outcome with a deadline; the outbox
sends the next command when the previous one is answered, fails, or times out.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
import trio

from ampgate.errors import (
    AmpgateError,
    ChargerCallError,
    ChargerSendError,
    ChargerTimeoutError,
    PayloadTooLargeError,
)
from ampgate.events import CommandSent, Event

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode

# Unique ids must be unique per sender across reconnects (OCPP-J 2.0.1 part 4 §4.1.3): a prefix drawn once per
# node process plus a counter. 36 characters at most (the 2.0.1 limit); ours are ~16.
_ID_PREFIX = os.urandom(4).hex()


# The longest unique id a CALL of ours can carry (the 2.0.1 limit; ours are shorter): what a frame's size is
# estimated with before its id is drawn.
UNIQUE_ID_MAX = 36


def check_frame_size(action: str, payload: Any, max_message: int) -> None:
    """Raises PayloadTooLargeError (code message_too_large, field payload) when the CALL of `action` with
    `payload` would be larger than `max_message` bytes: the largest message the node lets a charger send is the
    largest it sends one (a charger sized for it may refuse more, and the gateway link carries no more than
    16 MiB)."""
    size = len(_encode([2, "0" * UNIQUE_ID_MAX, action, payload]))
    if size > max_message:
        raise PayloadTooLargeError(
            f"the {action} request is {size} bytes as an OCPP message, over the node's limit of {max_message}"
            " bytes (--max-message)",
            field="payload",
            code="message_too_large",
        )


class OutboundCall:
    """One command: its CALL frame and, once settled, its result payload or error."""

    __slots__ = ("action", "done", "error", "frame", "result", "sent", "unique_id")

    def __init__(self, unique_id: str, action: str, payload: Any) -> None:
        self.unique_id = unique_id
        self.action = action
        self.frame = _encode([2, unique_id, action, payload])
        # It went on the wire (the charger may have acted on it, answered or not).
        self.sent = False
        self.done = trio.Event()
        self.result: Any = None
        self.error: AmpgateError | None = None

    def settle(self, result: Any = None, error: AmpgateError | None = None) -> None:
        if not self.done.is_set():
            self.result, self.error = result, error
            self.done.set()


class Outbox:
    """A charger's commands: at most one on the wire, the rest waiting in order."""

    __slots__ = ("outstanding", "queue")

    def __init__(self) -> None:
        self.queue: collections.deque[OutboundCall] = collections.deque()
        self.outstanding: OutboundCall | None = None


Send = Callable[[str, bytes], bool]
"""Sends a frame to a charger's live connection; False when it has none."""


class CallManager:
    """Every charger's outbox. `send(charger_id, frame)` puts a frame on the charger's live connection;
    `publish` (with `now` for the time) hears a `command.sent` event for each CALL put on the wire."""

    def __init__(
        self,
        send: Send,
        *,
        publish: Callable[[Event], None] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._send = send
        self._publish = publish
        self._now = now
        self._outboxes: dict[str, Outbox] = {}
        self._ids = itertools.count(1)

    async def call(self, charger_id: str, action: str, payload: Any) -> Any:
        """Queue `action` for `charger_id` and wait for its answer: `wait(enqueue(...))`."""
        c = self.enqueue(charger_id, action, payload)
        return await self.wait(charger_id, c)

    def enqueue(self, charger_id: str, action: str, payload: Any) -> OutboundCall:
        """Queue `action` for `charger_id` (it goes on the wire at once if the charger is connected and has
        nothing outstanding) and return it; `wait` for its outcome."""
        c = OutboundCall(f"{_ID_PREFIX}-{next(self._ids)}", action, payload)
        box = self._outboxes.setdefault(charger_id, Outbox())
        box.queue.append(c)
        self._next(charger_id, box)
        self._forget_if_idle(charger_id, box)  # it may have failed at once
        return c

    async def wait(self, charger_id: str, c: OutboundCall) -> Any:
        """Wait for the answer to `c` (queued for `charger_id`); returns the CALLRESULT payload (as JSON
        values). Raises ChargerCallError for a CALLERROR and ChargerTimeoutError when the connection dropped
        with the CALL on the wire. The caller bounds the wait (`trio.move_on_after`): a cancelled call leaves
        the queue, and if it was on the wire the next one may go (OCPP-J allows that after a timeout)."""
        try:
            await c.done.wait()
        finally:
            if not c.done.is_set():
                box = self._outboxes.get(charger_id)
                if box is not None:
                    self._abandon(charger_id, box, c)
        if c.error is not None:
            raise c.error
        return c.result

    def _abandon(self, charger_id: str, box: Outbox, c: OutboundCall) -> None:
        if box.outstanding is c:
            # Timed out on the wire: the next CALL may go now (OCPP-J allows it after a timeout).
            box.outstanding = None
            self._next(charger_id, box)
        else:
            try:
                box.queue.remove(c)
            except ValueError:
                pass
        self._forget_if_idle(charger_id, box)

    def _next(self, charger_id: str, box: Outbox) -> None:
        """Put the head of the charger's queue on the wire if nothing is outstanding. A head whose send raises
        (the gateway refused it: too large for the link, or a link failure) leaves the queue failed with that
        error (never sent; a ChargerSendError unless the sender raised one of ours) and the next one is tried,
        so one command can never wedge the charger's queue."""
        while box.outstanding is None and box.queue:
            c = box.queue[0]
            try:
                sent = self._send(charger_id, c.frame)
            except AmpgateError as e:
                box.queue.popleft()
                c.settle(error=e)
                continue
            except Exception as e:
                log.exception("sending %s %s to %s failed", c.action, c.unique_id, charger_id)
                box.queue.popleft()
                c.settle(error=ChargerSendError(f"{c.action} could not be sent to {charger_id}: {e}"))
                continue
            if sent:
                box.queue.popleft()
                box.outstanding = c
                c.sent = True
                if self._publish is not None and self._now is not None:
                    self._publish(
                        CommandSent(
                            at=self._now(), charger_id=charger_id, unique_id=c.unique_id, action=c.action
                        )
                    )
            # Else the charger is offline: the queue waits for it to reconnect (or for the callers to time out).
            return

    def _forget_if_idle(self, charger_id: str, box: Outbox) -> None:
        if box.outstanding is None and not box.queue:
            self._outboxes.pop(charger_id, None)

    # -- from the OCPP router -------------------------------------------------------------------------

    def answered(self, charger_id: str, unique_id: str, result: Any, error: AmpgateError | None) -> bool:
        """A CALLRESULT (`result`) or CALLERROR (`error`) arrived. Returns False if no CALL of ours with that id
        is outstanding for the charger (the caller logs and drops it)."""
        box = self._outboxes.get(charger_id)
        if box is None or box.outstanding is None or box.outstanding.unique_id != unique_id:
            return False
        c = box.outstanding
        box.outstanding = None
        c.settle(result, error)
        self._next(charger_id, box)
        self._forget_if_idle(charger_id, box)
        return True

    def outstanding_action(self, charger_id: str, unique_id: str) -> str | None:
        """The action of our outstanding CALL `unique_id` to the charger, if it is one."""
        box = self._outboxes.get(charger_id)
        if box is None or box.outstanding is None or box.outstanding.unique_id != unique_id:
            return None
        return box.outstanding.action

    def connection_lost(self, charger_id: str) -> None:
        """The charger's connection dropped: the CALL on the wire can no longer be answered; queued ones wait."""
        box = self._outboxes.get(charger_id)
        if box is None or box.outstanding is None:
            return
        c = box.outstanding
        box.outstanding = None
        c.settle(error=ChargerTimeoutError(f"{charger_id} disconnected before answering {c.action}"))
        self._forget_if_idle(charger_id, box)

    def connected(self, charger_id: str) -> None:
        """The charger has a live connection again: send what waited for it."""
        box = self._outboxes.get(charger_id)
        if box is not None:
            self._next(charger_id, box)
            self._forget_if_idle(charger_id, box)

    def pending(self, charger_id: str) -> int:
        """Commands waiting or on the wire for `charger_id`."""
        box = self._outboxes.get(charger_id)
        return 0 if box is None else len(box.queue) + (box.outstanding is not None)


def call_error(ocpp_code: str, description: str, details: Any) -> ChargerCallError:
    """The error a command's caller gets for a CALLERROR from the charger."""
    return ChargerCallError(
        f"the charger answered {ocpp_code}: {description}", ocpp_code=ocpp_code, details=details
    )
