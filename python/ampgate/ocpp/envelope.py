"""The OCPP-J RPC envelope and its error codes, in one table for both protocol versions.

CALL `[2, uniqueId, action, payload]`, CALLRESULT `[3, uniqueId, payload]`,
CALLERROR `[4, uniqueId, errorCode, errorDescription, errorDetails]` (OCPP-J 1.6 §4, 2.0.1 part 4 §4).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import msgspec

from ampgate.errors import MsgspecKind, read_msgspec_error

CALL = 2
CALLRESULT = 3
CALLERROR = 4

OCPP16 = "ocpp1.6"
OCPP201 = "ocpp2.0.1"

# A CALLERROR whose unique id cannot be read echoes this (OCPP-J 2.0.1 part 4 §4.2.3).
UNKNOWN_ID = "-1"
# The longest errorDescription (OCPP-J 2.0.1 part 4: string[0..255]), and the longest text we put in errorDetails:
# both may quote what the charger sent (a field name, a value), so without a bound one large message would be
# answered with a larger one (the name appears in both), past what a worker link carries.
MAX_ERROR_TEXT = 255


class Fault(enum.Enum):
    """Why a message is refused, independent of protocol version; `code()` gives the wire error code."""

    NOT_RPC = "not_rpc"  # not JSON, not an array, unique id unreadable
    UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
    UNKNOWN_ACTION = "unknown_action"
    UNSUPPORTED_ACTION = "unsupported_action"  # known to OCPP, not handled by the node
    CSMS_ONLY_ACTION = "csms_only_action"  # an action only the central system sends (e.g. Reset)
    FORMAT = "format"  # payload not an object, or a property the schema forbids
    MISSING = "missing"  # required field missing
    TYPE = "type"  # wrong JSON type, string over its maxLength
    VALUE = "value"  # outside its enum or range
    SECURITY = "security"  # not allowed in the charger's current state (2.0.1 [B03])
    INTERNAL = "internal"


# The one table: condition -> (1.6 code, 2.0.1 code). Deliberately not the `ocpp` package's mapping,
# which differs from the specifications in places.
_CODES: dict[Fault, tuple[str, str]] = {
    Fault.NOT_RPC: ("ProtocolError", "RpcFrameworkError"),
    Fault.UNKNOWN_MESSAGE_TYPE: ("ProtocolError", "MessageTypeNotSupported"),
    Fault.UNKNOWN_ACTION: ("NotImplemented", "NotImplemented"),
    Fault.UNSUPPORTED_ACTION: ("NotSupported", "NotSupported"),
    # A charger sending what only the central system sends (Reset, ...): the action is recognised, and not
    # supported in that direction: NotSupported. NotImplemented is for an action the version does not have.
    Fault.CSMS_ONLY_ACTION: ("NotSupported", "NotSupported"),
    Fault.FORMAT: ("FormationViolation", "FormatViolation"),
    Fault.MISSING: ("OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
    Fault.TYPE: ("TypeConstraintViolation", "TypeConstraintViolation"),
    Fault.VALUE: ("PropertyConstraintViolation", "PropertyConstraintViolation"),
    Fault.SECURITY: ("SecurityError", "SecurityError"),
    Fault.INTERNAL: ("InternalError", "InternalError"),
}


def error_code(fault: Fault, protocol: str) -> str:
    """The CallError code for `fault` in `protocol` ("ocpp1.6" or "ocpp2.0.1")."""
    v16, v201 = _CODES[fault]
    return v16 if protocol == OCPP16 else v201


class RpcFault(Exception):
    """A message we answer with a CALLERROR. `description` is for humans; `details` goes in errorDetails."""

    def __init__(self, fault: Fault, description: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.fault = fault
        self.description = description
        self.details = details or {}


_encode = msgspec.json.Encoder().encode


def call_result(unique_id: str, payload: Any) -> bytes:
    return _encode([CALLRESULT, unique_id, payload])


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "\u2026"


def call_error(unique_id: str, fault: RpcFault, protocol: str) -> bytes:
    """The CALLERROR frame; its description and the texts in its details are cut to MAX_ERROR_TEXT characters,
    so its size is bounded by the unique id's (which is no longer than the message it came in)."""
    details = {k: _clip(v) if isinstance(v, str) else v for k, v in fault.details.items()}
    return _encode(
        [CALLERROR, unique_id, error_code(fault.fault, protocol), _clip(fault.description), details]
    )


# How each kind of schema violation is answered (OCPP-J 1.6 §4.2.3 / 2.0.1 part 4 §4.2.3): a missing field or an
# array with too few or too many items is an occurrence violation; a string over its maxLength is a type
# constraint violation; a value outside its enum or range is a property constraint violation.
_FAULT_OF_KIND: dict[MsgspecKind, Fault] = {
    MsgspecKind.MISSING: Fault.MISSING,
    MsgspecKind.UNKNOWN_FIELD: Fault.FORMAT,
    MsgspecKind.ITEMS: Fault.MISSING,
    MsgspecKind.LENGTH: Fault.TYPE,
    MsgspecKind.ENUM: Fault.VALUE,
    MsgspecKind.RANGE: Fault.VALUE,
    MsgspecKind.NOT_OBJECT: Fault.TYPE,
    MsgspecKind.TYPE: Fault.TYPE,
}


def fault_from_validation(err: msgspec.ValidationError) -> RpcFault:
    """Classify a msgspec validation error per the error table, with the JSON path msgspec names
    (`$.field`) in errorDetails. A payload that is not an object at all is a format violation."""
    problem = read_msgspec_error(err)
    fault = _FAULT_OF_KIND[problem.kind]
    if problem.kind is MsgspecKind.NOT_OBJECT and problem.json_path == "$":
        fault = Fault.FORMAT
    return RpcFault(fault, str(err), {"field": problem.json_path})


# DECISIONS["datetime_utc_range"]: a date-time whose UTC instant falls outside the years 1..9999
# ("0001-01-01T00:07:00+05:00" is 0000-12-31T19:07Z) decodes, but no handler can turn it into UTC: it is refused.
_UTC_MIN = datetime.min.replace(tzinfo=UTC)
_UTC_MAX = datetime.max.replace(tzinfo=UTC)
# Only a text with one of these can hold such a time (the year is 0001 or 9999, or a digit is escaped), so the
# walk below runs on almost no message: a substring search is all the hot path pays.
_EDGE_MARKS = (b"0001-", b"9999-", b"\\u")


def may_leave_utc_range(data: bytes) -> bool:
    """Whether the message text could hold a date-time outside UTC's range (see `utc_range_fault`)."""
    return any(mark in data for mark in _EDGE_MARKS)


def utc_range_fault(value: Any, path: str = "$") -> RpcFault | None:
    """A PropertyConstraintViolation naming the first date-time in a decoded payload whose UTC instant is
    outside the years 1..9999, or None."""
    stack = [(value, path)]
    while stack:
        v, where = stack.pop()
        if isinstance(v, datetime):
            if not _UTC_MIN <= v <= _UTC_MAX:
                return RpcFault(
                    Fault.VALUE, f"{where} is outside the years 1 to 9999 in UTC", {"field": where}
                )
        elif isinstance(v, msgspec.Struct):
            names = zip(v.__struct_fields__, v.__struct_encode_fields__, strict=True)
            stack.extend((getattr(v, name), f"{where}.{wire}") for name, wire in reversed(list(names)))
        elif isinstance(v, list):
            stack.extend((item, f"{where}[{i}]") for i, item in reversed(list(enumerate(v))))
    return None
