"""The Commander: the one way any part of the node (the API, the local list, later campaigns and load
management) sends an OCPP command to a charger and waits for its answer.

It decides whether the charger may be sent this command now (known? connected? its boot state allows it?),
checks the request against the generated types of the charger's protocol version, hands the CALL to the outbox
(one on the wire per charger, the rest in order) and bounds the wait. Each command's outcome is an event:
`command.sent` (from the outbox, when it goes on the wire), then `command.answered` or `command.failed`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import trio

from ampgate.clock import Clock
from ampgate.errors import (
    AmpgateError,
    ChargerCallError,
    ChargerOfflineError,
    ChargerTimeoutError,
    ConflictError,
    NotFoundError,
)
from ampgate.events import CommandAnswered, CommandFailed, Event
from ampgate.ocpp import boot_policy, payloads
from ampgate.ocpp.outbox import CallManager, OutboundCall, check_frame_size


class ChargerLink(Protocol):
    """A charger's live link (`ampgate.connectivity.Presence`)."""

    @property
    def online(self) -> bool: ...
    @property
    def protocol(self) -> str | None: ...
    @property
    def conn_id(self) -> int | None: ...


class PresenceLookup(Protocol):
    def get(self, charger_id: str, /) -> ChargerLink | None: ...


class SessionView(Protocol):
    @property
    def boot_state(self) -> str: ...

    solicited: frozenset[str]


class SessionLookup(Protocol):
    """The router's live sessions by connection id."""

    def get(self, conn_id: int, /) -> SessionView | None: ...


class Commands(Protocol):
    """What a part that sends commands needs of the Commander (or of what wraps it)."""

    def ready(self, charger_id: str, action: str, /) -> str: ...
    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


class TrackedCommands(Protocol):
    """The Commander as a part that keeps records of its commands, or that wraps it, needs it: the request check
    without sending, and `call` with the command's id and a hook that is handed the outbox's call (whose `sent`
    says whether it went on the wire). The Commander, the device model's splitting and `ObservedCommands` are
    one."""

    def ready(self, charger_id: str, action: str, /) -> str: ...
    def check(self, charger_id: str, action: str, payload: Any, /) -> str: ...
    async def call(
        self,
        charger_id: str,
        action: str,
        payload: Any,
        /,
        *,
        command_id: str | None = None,
        on_enqueued: Callable[[Any], None] | None = None,
    ) -> Any: ...


def reply_status(payload: Any) -> str | None:
    """The `status` field of a reply payload, when it has a string one."""
    status = payload.get("status") if isinstance(payload, dict) else None
    return status if isinstance(status, str) else None


class Commander:
    """Sends commands to chargers. `known(charger_id)` says whether the node knows a charger that has no live
    link (to tell "unknown" from "offline"); `timeout` bounds each command, queueing included."""

    def __init__(
        self,
        outbox: CallManager,
        presence: PresenceLookup,
        sessions: SessionLookup,
        known: Callable[[str], bool],
        *,
        publish: Callable[[Event], None],
        clock: Clock,
        timeout: float,
        max_message: int | None = None,
    ) -> None:
        self._outbox = outbox
        self._max_message = max_message
        self._presence = presence
        self._sessions = sessions
        self._known = known
        self._publish = publish
        self._clock = clock
        self.timeout = timeout

    def ready(self, charger_id: str, action: str) -> str:
        """The protocol of `charger_id` if `action` may be sent to it now. Raises NotFoundError (unknown
        charger), ChargerOfflineError, ConflictError `charger_not_accepted` (its boot state forbids it)."""
        return self._ready(charger_id, action)[0]

    def _ready(self, charger_id: str, action: str) -> tuple[str, SessionView]:
        presence = self._presence.get(charger_id)
        if presence is None and not self._known(charger_id):
            raise NotFoundError(f"charger {charger_id!r} is not registered", field="id")
        if presence is None or not presence.online or presence.protocol is None:
            raise ChargerOfflineError(f"charger {charger_id!r} is not connected")
        session = self._sessions.get(presence.conn_id) if presence.conn_id is not None else None
        state = session.boot_state if session is not None else None
        if state is None or not boot_policy.rule(state).may_be_sent(action):
            raise ConflictError(
                f"charger {charger_id!r} {boot_policy.command_refusal(state)}", code="charger_not_accepted"
            )
        assert session is not None
        return presence.protocol, session

    def check(self, charger_id: str, action: str, payload: Any) -> str:
        """The charger's protocol if `action` with `payload` may be sent to it now: `call`'s checks without
        sending (for a caller that sends one request as several calls and must not send half of it)."""
        return self._checked(charger_id, action, payload)[0]

    def _checked(self, charger_id: str, action: str, payload: Any) -> tuple[str, SessionView]:
        protocol, session = self._ready(charger_id, action)
        try:
            payloads.validate_request(protocol, action, payload)
        except KeyError:
            raise NotFoundError(
                f"{action} is not a command the central system sends in {protocol}",
                field="name",
                code="unknown_command",
            ) from None
        if self._max_message is not None:
            check_frame_size(action, payload, self._max_message)
        return protocol, session

    async def call(
        self,
        charger_id: str,
        action: str,
        payload: Any,
        *,
        command_id: str | None = None,
        on_enqueued: Callable[[OutboundCall], None] | None = None,
    ) -> Any:
        """Send OCPP `action` with `payload` (the request as the spec writes it for the charger's protocol
        version) to a charger and return its reply payload. Raises NotFoundError (unknown charger, or an action
        the central system does not send in that version), ChargerOfflineError, ConflictError, ValidationError
        naming the field, PayloadTooLargeError `message_too_large` (the CALL would be over `max_message`),
        ChargerSendError (the gateway refused the frame), ChargerCallError (a CALLERROR, or a reply that breaks the schema),
        ChargerTimeoutError. `command_id` (the command's record, `ampgate.commands`) goes into its events;
        `on_enqueued` is handed the outbox's call (whose `sent` says afterwards whether it went on the wire)."""
        _, session = self._checked(charger_id, action, payload)
        if session.boot_state != boot_policy.ACCEPTED:
            # Asked before it goes out: the charger may answer with the message before the reply arrives.
            session.solicited |= boot_policy.solicited(action, payload)
        c = self._outbox.enqueue(charger_id, action, payload)
        if on_enqueued is not None:
            on_enqueued(c)
        try:
            with trio.move_on_after(self.timeout):
                result = await self._outbox.wait(charger_id, c)
                self._publish(
                    CommandAnswered(
                        at=self._clock.now(),
                        charger_id=charger_id,
                        unique_id=c.unique_id,
                        action=action,
                        status=reply_status(result),
                        command_id=command_id,
                    )
                )
                return result
            raise ChargerTimeoutError(f"{charger_id} did not answer {action} within {self.timeout:g} s")
        except AmpgateError as e:
            self._publish(
                CommandFailed(
                    at=self._clock.now(),
                    charger_id=charger_id,
                    unique_id=c.unique_id,
                    action=action,
                    code=e.code,
                    message=e.message,
                    ocpp_code=e.ocpp_code if isinstance(e, ChargerCallError) else None,
                    command_id=command_id,
                )
            )
            raise
