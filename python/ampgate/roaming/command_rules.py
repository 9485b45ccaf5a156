"""The pure rules of the Commands module (`ampgate.roaming.commands`), unit-tested without I/O: each command's
OCPP request per protocol version, and the charger's answer as a CommandResult.

| command | OCPP 1.6 | OCPP 2.0.1 |
|---|---|---|
| START_SESSION | RemoteStartTransaction {connectorId = EVSE, idTag = uid} | RequestStartTransaction {evseId, remoteStartId, idToken {uid, ISO14443 / Central}, groupIdToken} |
| STOP_SESSION | RemoteStopTransaction {transactionId = our id} | RequestStopTransaction {transactionId = the charger's} |
| UNLOCK_CONNECTOR | UnlockConnector {connectorId = EVSE} | UnlockConnector {evseId, connectorId} |
| RESERVE_NOW | ReserveNow, built by `ampgate.reservations` | the same |
| CANCEL_RESERVATION | CancelReservation, by `ampgate.reservations` | the same |

A 1.6 charger has no EVSE level: each connector is published as an EVSE of its own (docs/ocpi.md), so the EVSE
number is the connector id.
"""

from __future__ import annotations

from typing import Any

from ampgate.errors import AmpgateError, ChargerCallError, ChargerTimeoutError
from ampgate.ocpp.authorization import GROUP_TOKEN_TYPE
from ampgate.ocpp.envelope import OCPP16
from ampgate.roaming.mapping import ocpp_token_type
from ampgate.roaming.types import CommandResultType, EvseStatus, Token
from ampgate.store.transactions import TransactionRow

# A 1.6 idTag (and parentIdTag) is CiString20; an OCPI uid may be 36.
ID_TAG_MAX_16 = 20

R = CommandResultType
# The charger's answer, per OCPP action and status, as a CommandResult. A status not listed is FAILED.
RESULTS: dict[tuple[str, str], CommandResultType] = {
    ("RemoteStartTransaction", "Accepted"): R.ACCEPTED,
    ("RemoteStartTransaction", "Rejected"): R.REJECTED,
    ("RequestStartTransaction", "Accepted"): R.ACCEPTED,
    ("RequestStartTransaction", "Rejected"): R.REJECTED,
    ("RemoteStopTransaction", "Accepted"): R.ACCEPTED,
    ("RemoteStopTransaction", "Rejected"): R.REJECTED,
    ("RequestStopTransaction", "Accepted"): R.ACCEPTED,
    ("RequestStopTransaction", "Rejected"): R.REJECTED,
    ("UnlockConnector", "Unlocked"): R.ACCEPTED,
    ("UnlockConnector", "UnlockFailed"): R.FAILED,
    ("UnlockConnector", "NotSupported"): R.NOT_SUPPORTED,  # 1.6
    ("UnlockConnector", "OngoingAuthorizedTransaction"): R.REJECTED,  # 2.0.1: a session holds the cable
    ("UnlockConnector", "UnknownConnector"): R.FAILED,  # 2.0.1
    ("ReserveNow", "Accepted"): R.ACCEPTED,
    ("ReserveNow", "Occupied"): R.EVSE_OCCUPIED,
    ("ReserveNow", "Faulted"): R.EVSE_INOPERATIVE,
    ("ReserveNow", "Unavailable"): R.EVSE_INOPERATIVE,
    ("ReserveNow", "Rejected"): R.REJECTED,
}
# A remote start the charger rejected, said more precisely from the EVSE's status as we publish it.
_START_REFUSED_AT: dict[EvseStatus, CommandResultType] = {
    EvseStatus.CHARGING: R.EVSE_OCCUPIED,
    EvseStatus.RESERVED: R.EVSE_OCCUPIED,
    EvseStatus.INOPERATIVE: R.EVSE_INOPERATIVE,
    EvseStatus.OUTOFORDER: R.EVSE_INOPERATIVE,
}


def result_of(action: str, reply: Any) -> CommandResultType:
    """The CommandResult of the charger's `reply` to `action` (`RESULTS`)."""
    status = reply.get("status") if isinstance(reply, dict) else None
    return RESULTS.get((action, status if isinstance(status, str) else ""), R.FAILED)


def result_of_error(error: AmpgateError) -> CommandResultType:
    """The CommandResult of a call that failed: TIMEOUT when the charger did not answer in time, NOT_SUPPORTED
    when it answered it does not do this (CALLERROR NotSupported / NotImplemented), else FAILED."""
    if isinstance(error, ChargerTimeoutError):
        return R.TIMEOUT
    if isinstance(error, ChargerCallError) and error.ocpp_code in ("NotSupported", "NotImplemented"):
        return R.NOT_SUPPORTED
    return R.FAILED


def start_request(
    protocol: str, token: Token, evse: int | None, remote_start_id: int
) -> tuple[str, dict[str, Any]]:
    """The remote start of `token` at EVSE `evse` (None: the charger chooses): (action, payload)."""
    if protocol == OCPP16:
        payload: dict[str, Any] = {"idTag": token.uid}
        if evse is not None:
            payload["connectorId"] = evse
        return "RemoteStartTransaction", payload
    payload = {
        "remoteStartId": remote_start_id,
        "idToken": {"idToken": token.uid, "type": ocpp_token_type(token.type)},
    }
    if evse is not None:
        payload["evseId"] = evse
    if token.group_id is not None:
        payload["groupIdToken"] = {"idToken": token.group_id, "type": GROUP_TOKEN_TYPE}
    return "RequestStartTransaction", payload


def stop_request(tx: TransactionRow) -> tuple[str, dict[str, Any]]:
    """The remote stop of transaction `tx`, in the version it was started in: (action, payload)."""
    if tx.protocol == OCPP16:
        return "RemoteStopTransaction", {"transactionId": tx.id}
    return "RequestStopTransaction", {"transactionId": tx.charger_transaction_id}


def unlock_request(protocol: str, evse: int, connector_id: int) -> tuple[str, dict[str, Any]]:
    """The unlock of connector `connector_id` of EVSE `evse`: (action, payload)."""
    if protocol == OCPP16:
        return "UnlockConnector", {"connectorId": evse}
    return "UnlockConnector", {"evseId": evse, "connectorId": connector_id}


def start_refused(status: EvseStatus | None) -> CommandResultType:
    """A remote start the charger rejected, said more precisely from the EVSE's status as we publish it."""
    return _START_REFUSED_AT.get(status or EvseStatus.UNKNOWN, R.REJECTED)
