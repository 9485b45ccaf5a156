"""Routes OCPP-J messages from the gateway to handlers and collects the replies.

Runs on the trio thread, synchronously, one gateway batch at a time, so the messages of one charger are handled
in the order they arrived. Replies are appended to the batch the pump sends back in one crossing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ampgate.ocpp import messages as m
from ampgate.ocpp.rpc import (
    CALL,
    CALLERROR,
    CALLRESULT,
    OCPP16,
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


class Session(msgspec.Struct, gc=False):
    """One live charger connection."""

    conn_id: int
    charger_id: str
    protocol: str
    presence: Presence


Handler = Callable[[Session, Any], Any]


class OcppRouter:
    """OCPP message handling for every connected charger."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.sessions: dict[int, Session] = {}
        # action -> (payload type, handler) per protocol version.
        self._handlers: dict[str, dict[str, tuple[type, Handler]]] = {
            OCPP16: {
                "BootNotification": (m.BootNotification16, self._boot16),
                "Heartbeat": (m.Heartbeat16, self._heartbeat),
            },
            "ocpp2.0.1": {
                "BootNotification": (m.BootNotification201, self._boot201),
                "Heartbeat": (m.Heartbeat201, self._heartbeat),
            },
        }
        # Refreshed by the pump once per batch: one clock read serves every reply in the batch.
        self.now = 0.0
        self.now_iso = ""

    # -- connection lifecycle ------------------------------------------------------------------------------

    def open(self, conn_id: int, presence: Presence, protocol: str) -> None:
        self.sessions[conn_id] = Session(conn_id, presence.charger_id, protocol, presence)

    def close(self, conn_id: int) -> None:
        self.sessions.pop(conn_id, None)

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
        try:
            msg = _decode(data)
        except msgspec.DecodeError:
            return call_error(UNKNOWN_ID, RpcFault(Fault.NOT_RPC, "message is not valid JSON"), protocol)
        if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[1], str):
            return call_error(
                UNKNOWN_ID,
                RpcFault(Fault.NOT_RPC, "message is not an OCPP-J array with a unique id"),
                protocol,
            )
        kind, unique_id = msg[0], msg[1]
        if kind == CALL:
            if len(msg) != 4 or not isinstance(msg[2], str):
                return call_error(unique_id, RpcFault(Fault.NOT_RPC, "a CALL has 4 elements"), protocol)
            try:
                return call_result(unique_id, self._call(session, msg[2], msg[3]))
            except RpcFault as fault:
                return call_error(unique_id, fault, protocol)
            except Exception:
                log.exception("handler for %s from %s failed", msg[2], session.charger_id)
                return call_error(
                    unique_id, RpcFault(Fault.INTERNAL, "the node failed handling it"), protocol
                )
        if kind in (CALLRESULT, CALLERROR):
            # No CSMS-initiated CALLs exist yet on this layer: nothing can be pending.
            log.info("dropping reply %r from %s: no CALL pending with that id", unique_id, session.charger_id)
            return None
        return call_error(
            unique_id, RpcFault(Fault.UNKNOWN_MESSAGE_TYPE, f"unknown message type {kind!r}"), protocol
        )

    def _call(self, session: Session, action: str, payload: Any) -> Any:
        entry = self._handlers[session.protocol].get(action)
        if entry is None:
            raise RpcFault(Fault.UNKNOWN_ACTION, f"{action} is not implemented by this central system")
        typ, handler = entry
        if not isinstance(payload, dict):
            raise RpcFault(Fault.FORMAT, "payload is not a JSON object")
        try:
            req: Any = msgspec.convert(payload, typ)
        except msgspec.ValidationError as err:
            raise fault_from_validation(err) from None
        return handler(session, req)

    # -- handlers ------------------------------------------------------------------------------------------

    def _heartbeat(self, session: Session, req: Any) -> dict[str, Any]:
        return {"currentTime": self.now_iso}

    def _boot_reply(self) -> dict[str, Any]:
        return {
            "status": "Accepted",
            "currentTime": self.now_iso,
            "interval": self._node.config.heartbeat_interval,
        }

    def _boot16(self, session: Session, req: m.BootNotification16) -> dict[str, Any]:
        self._node.store.record_boot(
            session.charger_id,
            vendor=req.chargePointVendor,
            model=req.chargePointModel,
            serial=req.chargePointSerialNumber or req.chargeBoxSerialNumber,
            firmware=req.firmwareVersion,
            protocol=session.protocol,
            at=self._node.clock.now(),
        )
        return self._boot_reply()

    def _boot201(self, session: Session, req: m.BootNotification201) -> dict[str, Any]:
        cs = req.chargingStation
        self._node.store.record_boot(
            session.charger_id,
            vendor=cs.vendorName,
            model=cs.model,
            serial=cs.serialNumber,
            firmware=cs.firmwareVersion,
            protocol=session.protocol,
            at=self._node.clock.now(),
        )
        return self._boot_reply()
