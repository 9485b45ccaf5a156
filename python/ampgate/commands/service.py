"""`CommandQueue`: every command the API asks for gets a record (a `command_id`), and a command may wait, durably
and in order, for a charger that is away.

Sending now (`send`): the command is recorded as sent, goes through the Commander (its checks, the outbox, the
wait), and the record ends answered or failed, as the caller sees. Queueing (`enqueue`): the request is checked
against the protocol version the charger last spoke (so a bad payload is refused now, not discovered later), the
record is written queued with its time to live, and the charger's delivery starts if it is there. Delivery sends
a charger's queued commands one at a time in order, only while it is online and accepted, and stops at the first
one it cannot deliver now; it starts again when the charger connects or boots (bus events), and from the sweep
every SWEEP_INTERVAL (events are hints: one lost, or a restart, is caught up there). The sweep also expires what
outlived its time to live (never sent late) and prunes finished records after `model.RETENTION`.

The rules a record moves by are in `ampgate.commands.model`; what survives a restart is what the table holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import trio

from ampgate.bus import EventBus, Subscription
from ampgate.clock import Clock
from ampgate.commands import model
from ampgate.commands.repository import CommandRepository, CommandRow, NewCommand, new_command_id
from ampgate.errors import (
    AmpgateError,
    ChargerCallError,
    ConflictError,
    NotFoundError,
    TooManyError,
)
from ampgate.events import (
    ChargerBooted,
    ChargerConnected,
    CommandCancelled,
    CommandExpired,
    CommandFailed,
    CommandQueued,
)
from ampgate.ocpp.commander import TrackedCommands as CommanderPort
from ampgate.ocpp.outbox import check_frame_size

log = logging.getLogger(__name__)

# How often the sweep expires, catches up deliveries and prunes. Expiry is also checked right before sending,
# so this bounds only how late an expired command shows as expired.
SWEEP_INTERVAL = 5.0
PRUNE_INTERVAL = 3600.0
# `enqueue_many` checks (two reads each) and announces (a bus event and a delivery task each) this many requests
# per task step, then lets the loop run: a firmware campaign hands over 500 at once, which in one step held the
# loop (the pump, the API) for tens of milliseconds, and started 500 delivery tasks into one scheduling round.
ENQUEUE_CHUNK = 50
_TRIGGERS = [str(ChargerConnected.__struct_config__.tag), str(ChargerBooted.__struct_config__.tag)]


class SentCall(Protocol):
    """The outbox's call (`ampgate.ocpp.outbox.OutboundCall`)."""

    unique_id: str
    sent: bool


class ChargerView(Protocol):
    @property
    def protocol(self) -> str | None: ...


class ChargerLookup(Protocol):
    """Registered chargers (`ampgate.store.ChargerRepository`): whether one exists, and the protocol it last
    spoke."""

    def get(self, charger_id: str, /) -> ChargerView | None: ...


class LinkView(Protocol):
    @property
    def online(self) -> bool: ...
    @property
    def protocol(self) -> str | None: ...


class PresenceLookup(Protocol):
    def get(self, charger_id: str, /) -> LinkView | None: ...


class RequestCheck(Protocol):
    """`ampgate.ocpp.payloads.validate_request`: raises ValidationError naming the field, KeyError for an action
    the central system does not send in that protocol."""

    def __call__(self, protocol: str, action: str, payload: Any, /) -> None: ...


class CommandQueue:
    """Commands with records, sent now or queued. Start `run` in the node's nursery."""

    def __init__(
        self,
        rows: CommandRepository,
        commander: CommanderPort,
        chargers: ChargerLookup,
        presence: PresenceLookup,
        check_request: RequestCheck,
        bus: EventBus,
        clock: Clock,
        *,
        max_queued: int = model.MAX_QUEUED,
        max_message: int | None = None,
    ) -> None:
        self._rows = rows
        self._commander = commander
        self._chargers = chargers
        self._presence = presence
        self._check_request = check_request
        self._bus = bus
        self._clock = clock
        self._max_queued = max_queued
        self._max_message = max_message
        self._nursery: trio.Nursery | None = None
        # Chargers with a queued command, and those whose delivery is running now.
        self._waiting: set[str] = set()
        self._delivering: set[str] = set()

    # -- sending now ------------------------------------------------------------------------------------------

    async def send(self, charger_id: str, action: str, payload: Any) -> tuple[str, Any]:
        """Send now and wait for the answer: (command_id, reply payload). Raises what `Commander.call` raises,
        with the command's id in the error's `X-Command-Id` header once a record exists. A command refused
        before it could go (unknown charger or action, offline, a bad payload) leaves no record."""
        protocol = self._commander.check(charger_id, action, payload)
        command_id = new_command_id()
        new = NewCommand(
            id=command_id,
            charger_id=charger_id,
            action=action,
            payload=payload,
            protocol=protocol,
            queued=False,
        )
        await self._rows.insert(new, "sent")
        sent: list[SentCall] = []
        try:
            with trio.CancelScope(shield=True):  # the record ends however the HTTP client behaves
                reply = await self._commander.call(
                    charger_id, action, payload, command_id=command_id, on_enqueued=sent.append
                )
                await self._rows.finish(
                    command_id, "answered", unique_id=sent[0].unique_id if sent else None, reply=reply
                )
        except AmpgateError as e:
            with trio.CancelScope(shield=True):
                await self._rows.finish(
                    command_id, "failed", unique_id=sent[0].unique_id if sent else None, error=_error_of(e)
                )
            e.headers["X-Command-Id"] = command_id
            raise
        return command_id, reply

    # -- queueing ---------------------------------------------------------------------------------------------

    async def enqueue(
        self,
        charger_id: str,
        action: str,
        payload: Any,
        *,
        ttl_s: float | None = None,
        supersede_key: str | None = None,
        command_id: str | None = None,
    ) -> CommandRow:
        """Queue a command for `charger_id`, delivered in order once it is online and accepted (at once if it is
        now). `supersede_key` (for features: e.g. a charging profile's connector): a queued command of this
        charger with the same key is cancelled as superseded. `command_id` (for features that record it before
        queueing, so a restart between the two finds the command or knows it was never queued): the record's id,
        a new random one when None. Raises ValidationError (`ttl_s`, or the payload's
        field), NotFoundError (unknown charger; an action the central system does not send), ConflictError
        `protocol_unknown` (the charger never connected: which version to check against is unknown),
        TooManyError `queue_full`, PayloadTooLargeError `message_too_large` (the CALL would be over
        `max_message`)."""
        now = self._clock.now()
        new = self._checked(
            model.QueuedRequest(
                charger_id=charger_id,
                action=action,
                payload=payload,
                ttl_s=ttl_s,
                supersede_key=supersede_key,
                command_id=command_id,
            ),
            now,
        )
        row, superseded = await self._rows.insert(new, "queued")
        self._queued(row, superseded, now)
        return row

    async def enqueue_many(self, requests: Sequence[model.QueuedRequest]) -> list[CommandRow | AmpgateError]:
        """`enqueue` of each request, recorded in one write (one commit for the batch, where `enqueue` costs a
        commit each), then delivered as `enqueue` delivers. The answer is in order: the record, or the error
        `enqueue` would have raised for that request (nothing is recorded for it; the others are). Checks and
        announcements yield to the loop every ENQUEUE_CHUNK requests (as `enqueue` does between its check and
        its write, a command queued meanwhile for the same charger is not counted against its queue's bound)."""
        now = self._clock.now()
        checked: list[NewCommand | AmpgateError] = []
        for i, r in enumerate(requests):
            if i and i % ENQUEUE_CHUNK == 0:
                await trio.lowlevel.checkpoint()
            try:
                checked.append(self._checked(r, now))
            except AmpgateError as e:
                checked.append(e)
        news = [c for c in checked if isinstance(c, NewCommand)]
        written = iter(await self._rows.insert_many(news, "queued") if news else [])
        out: list[CommandRow | AmpgateError] = []
        for i, c in enumerate(checked):
            if i and i % ENQUEUE_CHUNK == 0:
                await trio.lowlevel.checkpoint()
            if isinstance(c, AmpgateError):
                out.append(c)
                continue
            row, superseded = next(written)
            self._queued(row, superseded, now)
            out.append(row)
        return out

    def _checked(self, r: model.QueuedRequest, now: datetime) -> NewCommand:
        """The record `r` would be, or the error that refuses it (see `enqueue`)."""
        life = model.ttl(r.ttl_s)
        charger_id, action, payload = r.charger_id, r.action, r.payload
        charger = self._chargers.get(charger_id)
        if charger is None:
            raise NotFoundError(f"charger {charger_id!r} is not registered", field="id")
        link = self._presence.get(charger_id)
        protocol = link.protocol if link is not None and link.protocol else charger.protocol
        if protocol is None:
            raise ConflictError(
                f"charger {charger_id!r} has never connected: the OCPP version to send it is unknown",
                code="protocol_unknown",
            )
        try:
            self._check_request(protocol, action, payload)
        except KeyError:
            raise NotFoundError(
                f"{action} is not a command the central system sends in {protocol}",
                field="name",
                code="unknown_command",
            ) from None
        if self._max_message is not None:
            check_frame_size(action, payload, self._max_message)
        if self._rows.count_queued(charger_id) >= self._max_queued:
            raise TooManyError(
                f"charger {charger_id!r} has {self._max_queued} commands queued already; cancel some or wait",
                code="queue_full",
            )
        return NewCommand(
            id=r.command_id or new_command_id(),
            charger_id=charger_id,
            action=action,
            payload=payload,
            protocol=protocol,
            queued=True,
            supersede_key=r.supersede_key,
            expires_at=now + life,
        )

    def _queued(self, row: CommandRow, superseded: list[CommandRow], now: datetime) -> None:
        """A queued record written: announce it (and what it superseded) and start the charger's delivery."""
        charger_id = row.charger_id
        for old in superseded:
            self._bus.publish(
                CommandCancelled(
                    at=now,
                    charger_id=charger_id,
                    command_id=old.id,
                    action=old.action,
                    reason="superseded",
                    superseded_by=row.id,
                )
            )
        assert row.expires_at is not None
        self._bus.publish(
            CommandQueued(
                at=now, charger_id=charger_id, command_id=row.id, action=row.action, expires_at=row.expires_at
            )
        )
        self._waiting.add(charger_id)
        self._kick(charger_id)

    async def cancel(self, command_id: str) -> CommandRow:
        """Cancel a queued command; cancelling a cancelled one answers its state. Raises NotFoundError
        (`command_id`), ConflictError `command_not_cancellable` (it was sent, answered, failed or expired)."""
        row = self._rows.get(command_id)
        if row is None:
            raise NotFoundError(f"no command {command_id!r}", field="command_id")
        outcome = model.cancel_outcome(row.state)
        if outcome == "refuse":
            raise ConflictError(
                f"command {command_id} is {row.state}: too late to cancel", code="command_not_cancellable"
            )
        if outcome == "unchanged":
            return row
        after = await self._rows.cancel(command_id)
        assert after is not None
        if after.state == "cancelled" and row.state == "queued":
            self._bus.publish(
                CommandCancelled(
                    at=self._clock.now(),
                    charger_id=after.charger_id,
                    command_id=after.id,
                    action=after.action,
                    reason="cancelled",
                )
            )
        elif after.state != "cancelled":
            # Delivery took it between the read and the write.
            raise ConflictError(
                f"command {command_id} is {after.state}: too late to cancel", code="command_not_cancellable"
            )
        return after

    # -- reads ------------------------------------------------------------------------------------------------

    def get(self, command_id: str) -> CommandRow | None:
        return self._rows.get(command_id)

    def page(self, charger_id: str, limit: int, before: int | None, state: str | None) -> list[CommandRow]:
        return self._rows.page(charger_id, limit, before, state)

    def delivering(self, charger_id: str) -> bool:
        """The charger's queue is being delivered now."""
        return charger_id in self._delivering

    def kick(self, charger_id: str) -> None:
        """Deliver the charger's queue now if it can go (what a connect or boot of the charger does)."""
        self._kick(charger_id)

    # -- delivery ---------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fail what a previous run left on the wire, then follow connects and boots and sweep until
        cancelled."""
        for row in await self._rows.fail_in_flight(
            model.NODE_RESTARTED,
            "the node stopped while the command was on the wire; it may or may not have run",
        ):
            self._publish_failed(row)
        self._waiting = set(self._rows.waiting_chargers())
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._follow, self._bus.subscribe(_TRIGGERS))
            task_status.started()
            next_prune = 0.0
            while True:
                await self._sweep()
                if self._clock.monotonic() >= next_prune:
                    next_prune = self._clock.monotonic() + PRUNE_INTERVAL
                    await self._rows.prune(self._clock.now() - model.RETENTION)
                await trio.sleep(SWEEP_INTERVAL)

    async def _follow(self, sub: Subscription) -> None:
        with sub:
            while True:
                event: object = await sub.receive()
                # One wake-up per batch the pump published (a boot storm's thousands), not one per event.
                while event is not None:
                    charger_id = getattr(event, "charger_id", None)
                    refused = isinstance(event, ChargerBooted) and event.boot_status != "Accepted"
                    if charger_id is not None and charger_id in self._waiting and not refused:
                        self._kick(charger_id)
                    # An EventsLost needs nothing here: the sweep catches up every waiting charger.
                    event = sub.receive_nowait()

    async def _sweep(self) -> None:
        await self._expire_due()
        for charger_id in list(self._waiting):
            link = self._presence.get(charger_id)
            if link is not None and link.online:
                self._kick(charger_id)

    def _kick(self, charger_id: str) -> None:
        if self._nursery is None or charger_id in self._delivering:
            return
        self._delivering.add(charger_id)
        self._nursery.start_soon(self._deliver, charger_id)

    async def _deliver(self, charger_id: str) -> None:
        """Send the charger's queued commands in order until none is left or one cannot go now."""
        try:
            while True:
                row = self._rows.next_queued(charger_id)
                if row is None:
                    self._waiting.discard(charger_id)
                    return
                if model.is_expired(row.expires_at, self._clock.now()):
                    await self._expire_due()
                    still = self._rows.get(row.id)
                    if still is not None and still.state == "queued":
                        return  # the store's clock is behind ours: the sweep expires it
                    continue
                try:
                    self._commander.check(charger_id, row.action, row.payload)
                except AmpgateError as e:
                    if model.requeue_after(e, reached_charger=False):
                        return  # not deliverable now; a connect, a boot or the sweep starts again
                    taken = await self._rows.take_for_delivery(row.id)
                    if taken is not None:
                        self._publish_failed(await self._rows.finish(row.id, "failed", error=_error_of(e)))
                    continue
                if await self._rows.take_for_delivery(row.id) is None:
                    continue  # cancelled or expired meanwhile
                if not await self._send_queued(charger_id, row):
                    return
        finally:
            self._delivering.discard(charger_id)

    async def _send_queued(self, charger_id: str, row: CommandRow) -> bool:
        """Send one taken command; False when it went back to the queue (the charger went away first)."""
        sent: list[SentCall] = []
        try:
            reply = await self._commander.call(
                charger_id, row.action, row.payload, command_id=row.id, on_enqueued=sent.append
            )
        except AmpgateError as e:
            reached = any(c.sent for c in sent)  # a request sent as several calls: any of them
            if model.requeue_after(e, reached_charger=reached):
                await self._rows.put_back(row.id)
                return False
            await self._rows.finish(
                row.id, "failed", unique_id=sent[0].unique_id if sent else None, error=_error_of(e)
            )
            return True
        except Exception as e:
            # Not one of ours: a send that raised (or a bug on the way). The command must not stay taken at the
            # head of the charger's queue, nor take the node's nursery down: it fails with the error, and the
            # next one goes.
            log.exception("delivering command %s (%s) to %s failed", row.id, row.action, charger_id)
            error = ("send_failed", f"{row.action} could not be sent: {type(e).__name__}: {e}", None)
            failed = await self._rows.finish(
                row.id, "failed", unique_id=sent[0].unique_id if sent else None, error=error
            )
            self._publish_failed(failed)
            return True
        await self._rows.finish(
            row.id, "answered", unique_id=sent[0].unique_id if sent else None, reply=reply
        )
        return True

    async def _expire_due(self) -> None:
        now = self._clock.now()
        for row in await self._rows.expire_due():
            self._bus.publish(
                CommandExpired(at=now, charger_id=row.charger_id, command_id=row.id, action=row.action)
            )

    def _publish_failed(self, row: CommandRow | None) -> None:
        if row is None or row.state != "failed":
            return
        self._bus.publish(
            CommandFailed(
                at=self._clock.now(),
                charger_id=row.charger_id,
                unique_id=row.unique_id or "",
                action=row.action,
                code=row.error_code or "error",
                message=row.error_message or "",
                ocpp_code=row.ocpp_code,
                command_id=row.id,
            )
        )


def _error_of(e: AmpgateError) -> tuple[str, str, str | None]:
    return (e.code, e.message, e.ocpp_code if isinstance(e, ChargerCallError) else None)
