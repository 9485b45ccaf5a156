"""Routes OCPP-J messages from the gateway to handlers and collects the replies.

Runs on the trio thread, synchronously, one gateway batch at a time, so the messages of one charger are handled
in the order they arrived. Replies are appended to the batch the pump sends back in one crossing; a handler that
must wait (a commit) replies later from a task of the router's own nursery. Those late replies keep each
charger's order: one task per charger awaits them one after the other, in arrival order, so two transaction
messages of a charger in one batch (a charger emptying its offline queue, or a resend crossing the original)
are written, committed and answered in the order the charger sent them; trio runs newly started tasks in no
set order, and a handler may first await something else (an eMSP's authorization), so separate tasks would not.

Late replies are bounded: past `late_max` of them outstanding (over all chargers) `late_full()` is true, and the
gateway pump waits (`wait_late_room()`) before it takes another batch, so a slow disk cannot grow them without end.

The gate in front of the handlers is the boot policy's table (`ampgate.ocpp.boot_policy`): a charger not
accepted gets SecurityError for what its boot state does not allow.
"""

from __future__ import annotations

import collections
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import msgspec
import trio

from ampgate.clock import Clock, iso_utc
from ampgate.errors import ChargerCallError, ValidationError
from ampgate.ocpp import boot_policy, payloads, v16, v201
from ampgate.ocpp.boot_policy import BootState
from ampgate.ocpp.envelope import (
    CALL,
    CALLERROR,
    CALLRESULT,
    OCPP16,
    OCPP201,
    UNKNOWN_ID,
    Fault,
    RpcFault,
    call_error,
    call_result,
    fault_from_validation,
    may_leave_utc_range,
    utc_range_fault,
)
from ampgate.ocpp.outbox import CallManager
from ampgate.ocpp.outbox import call_error as outbox_call_error

log = logging.getLogger(__name__)

_decode = msgspec.json.Decoder().decode
_envelope = msgspec.json.Decoder(list[msgspec.Raw]).decode


class _Unreadable:
    """An envelope element that is JSON but no Python value: a number beyond a double's range (1e400). It is
    no string and equals no message type, so the checks below answer it as they would any wrong value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<number out of range>"


UNREADABLE = _Unreadable()


def _element(raw: msgspec.Raw) -> Any:
    """One element of the envelope as a Python value. The envelope's own decode already read it as JSON (its
    nesting within the decoder's depth), so the one failure left is a number msgspec cannot hold; raising here
    would drop the message unanswered (found by tests/fuzz/test_ocpp_router_fuzz.py)."""
    try:
        return _decode(raw)
    except msgspec.ValidationError:
        return UNREADABLE


def _decoder(typ: type) -> Callable[[msgspec.Raw], Any]:
    """A decoder straight from raw JSON into `typ` (one per type, built once)."""
    return msgspec.json.Decoder(typ).decode


class Link(Protocol):
    """The gateway: sends text messages on live connections."""

    def send(self, batch: list[tuple[int, bytes]], /) -> None: ...


class Liveness(Protocol):
    """A charger's presence record: every message it sends refreshes `last_seen_at` (epoch seconds), every
    Heartbeat `last_heartbeat_at`; a BootNotification sets `recorded` (the charger has a row from then on)."""

    last_seen_at: float | None
    last_heartbeat_at: float | None
    recorded: bool


class BootPolicyView(Protocol):
    def initial_state(self, charger_id: str, /) -> BootState: ...


class Session(msgspec.Struct, gc=False):
    """One live charger connection."""

    conn_id: int
    charger_id: str
    protocol: str
    presence: Liveness
    boot_state: BootState = boot_policy.NEW
    # What the central system asked this charger to send while it is not accepted (TriggerMessage,
    # GetBaseReport): the boot policy lets a Pending charger send these [B02.FR.09].
    solicited: frozenset[str] = frozenset()


Handler = Callable[[Session, Any], Any]


class _LateReply:
    """A reply that waits: the handler's coroutine, and where its answer goes."""

    __slots__ = ("action", "pending", "session", "unique_id")

    def __init__(
        self, session: Session, unique_id: str, action: str, pending: Coroutine[Any, Any, Any]
    ) -> None:
        self.session = session
        self.unique_id = unique_id
        self.action = action
        self.pending = pending


class BatchTime:
    """The time of the batch being handled: read once per gateway batch, so every reply in it (a heartbeat's
    currentTime, ...) costs no clock read and no formatting of its own."""

    __slots__ = ("iso", "now")

    def __init__(self) -> None:
        self.now = 0.0
        self.iso = ""

    def set(self, now: float) -> None:
        self.now = now
        self.iso = iso_utc(now)


# Late replies (each a handler waiting for its commit) outstanding over the whole node before the gateway pump
# waits for some to finish: the store's write-queue bound (ampgate.store.writer.QUEUE_MAX), as each holds a
# queued write; the node passes --store-queue-max.
LATE_MAX = 20_000


class OcppRouter:
    """OCPP message handling for every connected charger: its sessions, the handlers by protocol and action,
    and the replies to our own CALLs (handed to the outbox). `late_max`: late replies outstanding before
    `late_full()` (see the module docstring)."""

    def __init__(
        self,
        policy: BootPolicyView,
        link: Link,
        outbox: CallManager,
        clock: Clock,
        *,
        late_max: int = LATE_MAX,
    ) -> None:
        self._policy = policy
        self._link = link
        self._outbox = outbox
        self._clock = clock
        self.sessions: dict[int, Session] = {}
        self.time = BatchTime()
        # action -> (payload decoder, handler) per protocol version.
        self._handlers: dict[str, dict[str, tuple[Callable[[msgspec.Raw], Any], Handler]]] = {
            OCPP16: {},
            OCPP201: {},
        }
        self._nursery: trio.Nursery | None = None
        # Per charger, the late replies not yet sent, oldest first; the charger's reply task drains it and
        # removes it when empty. A charger is here only while it has one outstanding.
        self._late: dict[str, collections.deque[_LateReply]] = {}
        # Late replies queued or being awaited, over all chargers; what waits for there to be fewer than
        # late_max (set and dropped when one finishes below it).
        self.late_max = late_max
        self.late_pending = 0
        self._late_room: trio.Event | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the handlers' late replies until cancelled (they are cancelled with it)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def register(self, protocol: str, action: str, handler: Handler) -> None:
        """Handle charger-initiated `action` in `protocol` with `handler(session, request)`, where the request
        is the generated Request Struct (already validated). The handler returns the response payload (a
        Struct or a dict), or a coroutine when the reply must wait (e.g. for a commit); it raises RpcFault for
        a CallError. Raises KeyError if `action` is not one a charger sends in `protocol`."""
        mod = v16 if protocol == OCPP16 else v201
        if action not in mod.CHARGER_INITIATED:
            raise KeyError(f"{action} is not sent by {protocol} chargers")
        self._handlers[protocol][action] = (_decoder(mod.REQUESTS[action]), handler)

    def handles(self, protocol: str, action: str) -> bool:
        """Whether a handler is registered for charger-initiated `action` in `protocol`."""
        return action in self._handlers[protocol]

    # -- connection lifecycle ------------------------------------------------------------------------------

    def open(self, conn_id: int, charger_id: str, protocol: str, presence: Liveness) -> Session:
        """A new connection of `charger_id`: its session starts in the boot state the policy gives, and
        commands that waited for the charger go out."""
        session = Session(conn_id, charger_id, protocol, presence, self._policy.initial_state(charger_id))
        self.sessions[conn_id] = session
        self._outbox.connected(charger_id)
        return session

    def close(self, conn_id: int) -> None:
        """The connection is gone (or replaced): the CALL it had on the wire can no longer be answered."""
        session = self.sessions.pop(conn_id, None)
        if session is not None:
            self._outbox.connection_lost(session.charger_id)

    def knows(self, conn_id: int) -> bool:
        """Whether `conn_id` has a session (opened and not yet closed)."""
        return conn_id in self.sessions

    # -- messages ------------------------------------------------------------------------------------------

    def begin_batch(self) -> None:
        """A gateway batch begins: read the clock once for all of it."""
        self.time.set(self._clock.wall())

    def on_message(self, conn_id: int, data: bytes, out: list[tuple[int, bytes]]) -> None:
        """Handle one message from `conn_id`; append any reply to `out`."""
        session = self.sessions.get(conn_id)
        if session is None:
            return  # The connection closed while this message was in flight.
        session.presence.last_seen_at = self.time.now
        reply = self.handle(session, data)
        if reply is not None:
            out.append((conn_id, reply))

    def handle(self, session: Session, data: bytes) -> bytes | None:
        """The reply to one message of `session` (None: no reply now, or none at all)."""
        protocol = session.protocol
        # The envelope is decoded with its elements left as raw JSON, so a CALL's payload is decoded once,
        # straight into its generated Struct, without building Python dicts first (about 40% less work for a
        # 1.5 KB MeterValues).
        try:
            parts = _envelope(data)
        except (msgspec.DecodeError, RecursionError):
            # RecursionError: JSON nested deeper than the decoder's recursion limit (a few KB of "[[[[").
            return call_error(UNKNOWN_ID, RpcFault(Fault.NOT_RPC, "message is not a JSON array"), protocol)
        unique_id = _element(parts[1]) if len(parts) >= 3 else None
        if not isinstance(unique_id, str):
            return call_error(
                UNKNOWN_ID,
                RpcFault(Fault.NOT_RPC, "message is not an OCPP-J array with a unique id"),
                protocol,
            )
        kind = _element(parts[0])
        if kind == CALL:
            action = _element(parts[2]) if len(parts) == 4 else None
            if not isinstance(action, str):
                return call_error(
                    unique_id, RpcFault(Fault.NOT_RPC, "a CALL is [2, id, action, payload]"), protocol
                )
            try:
                result = self._call(session, action, parts[3], may_leave_utc_range(data))
                if inspect.iscoroutine(result):
                    # A handler that must await (e.g. commit a transaction before answering) replies later,
                    # from its charger's reply task, after the late replies the charger is owed already.
                    self._queue_late(_LateReply(session, unique_id, action, result))
                    return None
                return call_result(unique_id, result)
            except RpcFault as fault:
                return call_error(unique_id, fault, protocol)
            except Exception:
                log.exception("handler for %s from %s failed", action, session.charger_id)
                return call_error(
                    unique_id, RpcFault(Fault.INTERNAL, "the node failed handling it"), protocol
                )
        if kind in (CALLRESULT, CALLERROR):
            if not self._on_reply(session, [_element(p) for p in parts]):
                log.info(
                    "dropping reply %r from %s: no CALL pending with that id", unique_id, session.charger_id
                )
            return None
        return call_error(
            unique_id, RpcFault(Fault.UNKNOWN_MESSAGE_TYPE, f"unknown message type {kind!r}"), protocol
        )

    def late_full(self) -> bool:
        """Whether `late_max` late replies or more are outstanding."""
        return self.late_pending >= self.late_max

    async def wait_late_room(self) -> None:
        """Return once fewer than `late_max` late replies are outstanding (without a checkpoint if so now)."""
        while self.late_pending >= self.late_max:
            if self._late_room is None:
                self._late_room = trio.Event()
            await self._late_room.wait()

    def _late_done(self, n: int = 1) -> None:
        self.late_pending -= n
        if self._late_room is not None and self.late_pending < self.late_max:
            self._late_room.set()
            self._late_room = None

    def _queue_late(self, late: _LateReply) -> None:
        self.late_pending += 1
        cid = late.session.charger_id
        queue = self._late.get(cid)
        if queue is not None:
            queue.append(late)
            return
        assert self._nursery is not None, "the router is not running"
        queue = self._late[cid] = collections.deque((late,))
        self._nursery.start_soon(self._drain_late, cid, queue)

    async def _drain_late(self, charger_id: str, queue: collections.deque[_LateReply]) -> None:
        """The charger's reply task: each late reply in arrival order, the next one's handler resumed only
        once the previous reply went out (or failed). Replies of a connection that closed meanwhile are still
        run (their writes commit: the charger resends and finds them) but go nowhere."""
        try:
            while queue:
                late = queue.popleft()
                try:
                    await self._reply_later(late.session, late.unique_id, late.action, late.pending)
                finally:
                    self._late_done()
        finally:
            if self._late.get(charger_id) is queue:
                del self._late[charger_id]
            for late in queue:  # cancelled (shutdown): these never ran
                late.pending.close()
            self._late_done(len(queue))

    async def _reply_later(
        self, session: Session, unique_id: str, action: str, pending: Coroutine[Any, Any, Any]
    ) -> None:
        try:
            frame = call_result(unique_id, await pending)
        except RpcFault as fault:
            frame = call_error(unique_id, fault, session.protocol)
        except Exception:
            log.exception("handler for %s from %s failed", action, session.charger_id)
            frame = call_error(
                unique_id, RpcFault(Fault.INTERNAL, "the node failed handling it"), session.protocol
            )
        if self.sessions.get(session.conn_id) is session:
            self._link.send([(session.conn_id, frame)])

    def _on_reply(self, session: Session, msg: list[Any]) -> bool:
        """A CALLRESULT or CALLERROR for one of our CALLs; False if none with its id is outstanding."""
        cid, unique_id = session.charger_id, msg[1]
        action = self._outbox.outstanding_action(cid, unique_id)
        if action is None:
            return False
        if msg[0] == CALLERROR:
            code = msg[2] if len(msg) > 2 and isinstance(msg[2], str) else "GenericError"
            description = msg[3] if len(msg) > 3 and isinstance(msg[3], str) else ""
            details = msg[4] if len(msg) > 4 and msg[4] is not UNREADABLE else None
            return self._outbox.answered(cid, unique_id, None, outbox_call_error(code, description, details))
        payload = msg[2] if len(msg) > 2 else None
        try:
            payloads.validate_response(session.protocol, action, payload)
        except ValidationError as e:
            err = ChargerCallError(
                f"the charger's {action} reply does not match the schema: {e.message}",
                ocpp_code="InvalidResponse",
                details={"field": e.field},
            )
            err.code = "invalid_response"
            return self._outbox.answered(cid, unique_id, None, err)
        return self._outbox.answered(cid, unique_id, payload, None)

    def _call(self, session: Session, action: str, payload: msgspec.Raw, check_times: bool) -> Any:
        # A charger not accepted gets SecurityError for what its boot state does not allow, whatever the
        # payload holds [B03].
        state = session.boot_state
        if not boot_policy.rule(state).charger_may_send(action) and action not in session.solicited:
            raise RpcFault(
                Fault.SECURITY, f"{action} refused: the charger is not accepted (boot status {state})"
            )
        entry = self._handlers[session.protocol].get(action)
        if entry is None:
            if action in payloads.charger_actions(session.protocol):
                raise RpcFault(Fault.UNSUPPORTED_ACTION, f"{action} is not supported by this central system")
            if action in payloads.csms_actions(session.protocol):
                raise RpcFault(Fault.CSMS_ONLY_ACTION, f"{action} is sent by the central system, not to it")
            raise RpcFault(Fault.UNKNOWN_ACTION, f"{action} is not an OCPP {session.protocol} action")
        decode, handler = entry
        try:
            req = decode(payload)
        except msgspec.ValidationError as err:
            raise fault_from_validation(err) from None
        if check_times and (fault := utc_range_fault(req)) is not None:
            raise fault
        return handler(session, req)
