"""Routes OCPP-J messages from the gateway to handlers and collects the replies.

Runs on the trio thread, synchronously, one gateway batch at a time, so the messages of one charger are handled
in the order they arrived. Replies are appended to the batch the pump sends back in one crossing.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec

from ampgate.errors import ChargerCallError, ValidationError
from ampgate.ocpp import actions, v16, v201
from ampgate.ocpp import calls as calls_mod
from ampgate.ocpp.calls import CallManager
from ampgate.ocpp.rpc import (
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
)

if TYPE_CHECKING:
    from ampgate.connectivity import Presence
    from ampgate.node import Node

log = logging.getLogger(__name__)

_decode = msgspec.json.Decoder().decode
_envelope = msgspec.json.Decoder(list[msgspec.Raw]).decode


def _decoder(typ: type) -> Callable[[msgspec.Raw], Any]:
    """A decoder straight from raw JSON into `typ` (one per type, built once)."""
    return msgspec.json.Decoder(typ).decode


# Boot states of a session. A charger accepted once (at a boot, or registered by an operator) is served on
# any later connection without a new BootNotification, as 2.0.1 allows [B01]; until then it is NEW.
ACCEPTED = "Accepted"
PENDING = "Pending"
REJECTED = "Rejected"
NEW = "New"

# What a Pending charger may still send [B02]: its boot, liveness, and what a TriggerMessage or GetBaseReport
# asks of it. Anything else, and anything at all from a Rejected or new charger, gets SecurityError [B03].
PENDING_CHARGER_ACTIONS = frozenset(
    {
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "NotifyReport",
        "NotifyEvent",
        "SecurityEventNotification",
        "FirmwareStatusNotification",
        "SignedFirmwareStatusNotification",
        "LogStatusNotification",
        "DiagnosticsStatusNotification",
    }
)


class Session(msgspec.Struct, gc=False):
    """One live charger connection."""

    conn_id: int
    charger_id: str
    protocol: str
    presence: Presence
    boot_state: str = NEW


Handler = Callable[[Session, Any], Any]


class OcppRouter:
    """OCPP message handling for every connected charger."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.sessions: dict[int, Session] = {}
        # action -> (payload type, handler) per protocol version.
        self._handlers: dict[str, dict[str, tuple[Callable[[msgspec.Raw], Any], Handler]]] = {
            OCPP16: {
                "BootNotification": (_decoder(v16.BootNotificationRequest), self._boot16),
                "Heartbeat": (_decoder(v16.HeartbeatRequest), self._heartbeat),
            },
            OCPP201: {
                "BootNotification": (_decoder(v201.BootNotificationRequest), self._boot201),
                "Heartbeat": (_decoder(v201.HeartbeatRequest), self._heartbeat),
            },
        }
        # CALLs we send to chargers (remote commands): one outstanding per charger, the rest queued.
        self.calls = CallManager(self._send_to_charger)
        # Refreshed by the pump once per batch: one clock read serves every reply in the batch.
        self.now = 0.0
        self.now_iso = ""

    def register(self, protocol: str, action: str, handler: Handler) -> None:
        """Handle charger-initiated `action` in `protocol` with `handler(session, request)`, where the request
        is the generated Request Struct (already validated). The handler returns the response payload (a
        Struct or a dict), or a coroutine when the reply must wait (e.g. for a commit); it raises RpcFault for
        a CallError. Raises KeyError if `action` is not one a charger sends in `protocol`."""
        mod = v16 if protocol == OCPP16 else v201
        if action not in mod.CHARGER_INITIATED:
            raise KeyError(f"{action} is not sent by {protocol} chargers")
        self._handlers[protocol][action] = (_decoder(mod.REQUESTS[action]), handler)

    # -- connection lifecycle ------------------------------------------------------------------------------

    def open(self, conn_id: int, presence: Presence, protocol: str) -> None:
        state = ACCEPTED if presence.charger_id in self._node.accepted else NEW
        self.sessions[conn_id] = Session(conn_id, presence.charger_id, protocol, presence, state)
        self.calls.connected(presence.charger_id)

    def close(self, conn_id: int) -> None:
        session = self.sessions.pop(conn_id, None)
        if session is not None:
            self.calls.connection_lost(session.charger_id)

    def _send_to_charger(self, charger_id: str, frame: bytes) -> bool:
        presence = self._node.presence.get(charger_id)
        if presence is None or not presence.online or presence.conn_id is None:
            return False
        self._node.gateway.hub.send([(presence.conn_id, frame)])
        return True

    # -- messages ------------------------------------------------------------------------------------------

    def on_message(self, conn_id: int, data: bytes, out: list[tuple[int, bytes]]) -> None:
        """Handle one message from `conn_id`; append any reply to `out`."""
        session = self.sessions.get(conn_id)
        if session is None:
            return  # The connection closed while this message was in flight.
        session.presence.last_seen_at = self.now
        reply = self._handle(session, data)
        if reply is not None:
            out.append((conn_id, reply))

    def _handle(self, session: Session, data: bytes) -> bytes | None:
        protocol = session.protocol
        # The envelope is decoded with its elements left as raw JSON, so a CALL's payload is decoded once,
        # straight into its generated Struct, without building Python dicts first (about 40% less work for a
        # 1.5 KB MeterValues).
        try:
            parts = _envelope(data)
        except (msgspec.DecodeError, RecursionError):
            # RecursionError: JSON nested deeper than the decoder's recursion limit (a few KB of "[[[[").
            return call_error(UNKNOWN_ID, RpcFault(Fault.NOT_RPC, "message is not a JSON array"), protocol)
        unique_id = _decode(parts[1]) if len(parts) >= 3 else None
        if not isinstance(unique_id, str):
            return call_error(
                UNKNOWN_ID,
                RpcFault(Fault.NOT_RPC, "message is not an OCPP-J array with a unique id"),
                protocol,
            )
        kind = _decode(parts[0])
        if kind == CALL:
            action = _decode(parts[2]) if len(parts) == 4 else None
            if not isinstance(action, str):
                return call_error(
                    unique_id, RpcFault(Fault.NOT_RPC, "a CALL is [2, id, action, payload]"), protocol
                )
            try:
                result = self._call(session, action, parts[3])
                if inspect.iscoroutine(result):
                    # A handler that must await (e.g. commit a transaction before answering) replies later,
                    # from its own task. The charger waits for this reply before its next CALL, so its messages
                    # stay in order.
                    self._node.spawn(self._reply_later, session, unique_id, action, result)
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
            if not self._on_reply(session, [_decode(p) for p in parts]):
                log.info(
                    "dropping reply %r from %s: no CALL pending with that id", unique_id, session.charger_id
                )
            return None
        return call_error(
            unique_id, RpcFault(Fault.UNKNOWN_MESSAGE_TYPE, f"unknown message type {kind!r}"), protocol
        )

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
            self._node.gateway.hub.send([(session.conn_id, frame)])

    def _on_reply(self, session: Session, msg: list[Any]) -> bool:
        """A CALLRESULT or CALLERROR for one of our CALLs; False if none with its id is outstanding."""
        cid, unique_id = session.charger_id, msg[1]
        action = self.calls.outstanding_action(cid, unique_id)
        if action is None:
            return False
        if msg[0] == CALLERROR:
            code = msg[2] if len(msg) > 2 and isinstance(msg[2], str) else "GenericError"
            description = msg[3] if len(msg) > 3 and isinstance(msg[3], str) else ""
            details = msg[4] if len(msg) > 4 else None
            return self.calls.answered(cid, unique_id, None, calls_mod.call_error(code, description, details))
        payload = msg[2] if len(msg) > 2 else None
        try:
            actions.validate_response(session.protocol, action, payload)
        except ValidationError as e:
            err = ChargerCallError(
                f"the charger's {action} reply does not match the schema: {e.message}",
                ocpp_code="InvalidResponse",
                details={"field": e.field},
            )
            err.code = "invalid_response"
            return self.calls.answered(cid, unique_id, None, err)
        return self.calls.answered(cid, unique_id, payload, None)

    def _call(self, session: Session, action: str, payload: msgspec.Raw) -> Any:
        # A charger that is not accepted gets SecurityError for any other CALL, whatever it holds [B03].
        state = session.boot_state
        if not (
            state == ACCEPTED
            or action == "BootNotification"
            or (state == PENDING and action in PENDING_CHARGER_ACTIONS)
        ):
            raise RpcFault(
                Fault.SECURITY, f"{action} refused: the charger is not accepted (boot status {state})"
            )
        entry = self._handlers[session.protocol].get(action)
        if entry is None:
            if action in actions.charger_actions(session.protocol):
                raise RpcFault(Fault.UNSUPPORTED_ACTION, f"{action} is not supported by this central system")
            raise RpcFault(Fault.UNKNOWN_ACTION, f"{action} is not an OCPP {session.protocol} action")
        decode, handler = entry
        try:
            req = decode(payload)
        except msgspec.ValidationError as err:
            raise fault_from_validation(err) from None
        return handler(session, req)

    # -- handlers ------------------------------------------------------------------------------------------

    def _heartbeat(self, session: Session, req: Any) -> dict[str, Any]:
        return {"currentTime": self.now_iso}

    def _boot_reply(self, session: Session) -> dict[str, Any]:
        """Decide the boot: a charger accepted before (or registered) is Accepted; a new one gets the
        configured policy, and is remembered when accepted."""
        node = self._node
        cid = session.charger_id
        if cid in node.accepted:
            status = ACCEPTED
        else:
            status = {"accept": ACCEPTED, "pending": PENDING, "reject": REJECTED}[node.config.unknown_boot]
            if status == ACCEPTED:
                node.accepted.add(cid)
                node.store.mark_accepted(cid)
        session.boot_state = status
        accepted = status == ACCEPTED
        return {
            "status": status,
            "currentTime": self.now_iso,
            "interval": node.config.heartbeat_interval if accepted else node.config.boot_retry_interval,
        }

    def _boot16(self, session: Session, req: v16.BootNotificationRequest) -> dict[str, Any]:
        self._node.store.record_boot(
            session.charger_id,
            vendor=req.charge_point_vendor,
            model=req.charge_point_model,
            serial=req.charge_point_serial_number or req.charge_box_serial_number,
            firmware=req.firmware_version,
            protocol=session.protocol,
            at=self._node.clock.now(),
        )
        return self._boot_reply(session)

    def _boot201(self, session: Session, req: v201.BootNotificationRequest) -> dict[str, Any]:
        cs = req.charging_station
        self._node.store.record_boot(
            session.charger_id,
            vendor=cs.vendor_name,
            model=cs.model,
            serial=cs.serial_number,
            firmware=cs.firmware_version,
            protocol=session.protocol,
            at=self._node.clock.now(),
        )
        return self._boot_reply(session)
