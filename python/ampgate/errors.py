"""Errors a user, an operator or a charger can cause: typed values with a code, a message and, where one field
is at fault, its name.

Each class carries the HTTP status it maps to (`status_hint`); the API maps the whole family to responses in
one place (`ampgate.api.errors`), so nothing else turns these into HTTP. Programmer errors stay ordinary
exceptions (RuntimeError, ValueError, ...) and surface as 500s with a log line, never as one of these.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "AmpgateError",
    "ChargerCallError",
    "ChargerOfflineError",
    "ChargerSendError",
    "ChargerTimeoutError",
    "ConflictError",
    "ForbiddenError",
    "MsgspecKind",
    "MsgspecProblem",
    "NotFoundError",
    "PayloadTooLargeError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
    "msgspec_problem",
    "read_msgspec_error",
]


class AmpgateError(Exception):
    """Base of every error a user or a charger can cause.

    `code` is a stable snake_case identifier clients may branch on; `message` is for a human and may change;
    `field` names the offending input field (JSON key, query parameter or path parameter) when there is one.
    """

    default_code: ClassVar[str] = "error"
    status_hint: ClassVar[int] = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.code: str = code or self.default_code
        self.message: str = message
        self.field: str | None = field
        # Response headers the API adds to this error's response (e.g. X-Command-Id of the failed command).
        self.headers: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, field={self.field!r})"


class ValidationError(AmpgateError):
    """An input value is malformed or out of range."""

    default_code = "invalid_field"
    status_hint = 422


class NotFoundError(AmpgateError):
    """The named thing (charger, token, ...) does not exist."""

    default_code = "not_found"
    status_hint = 404


class ConflictError(AmpgateError):
    """The request contradicts the current state (e.g. a duplicate that must be unique)."""

    default_code = "conflict"
    status_hint = 409


class PayloadTooLargeError(AmpgateError):
    """A request body (an uploaded file) is larger than the node accepts."""

    default_code = "too_large"
    status_hint = 413


class UnauthorizedError(AmpgateError):
    """No credentials, or credentials that identify nobody."""

    default_code = "unauthorized"
    status_hint = 401


class ForbiddenError(AmpgateError):
    """Valid credentials whose role is too low for the operation."""

    default_code = "forbidden"
    status_hint = 403


class TooManyError(AmpgateError):
    """A bound on what may wait was reached (a charger's command queue is full): take something out first."""

    default_code = "too_many"
    status_hint = 429


class UnavailableError(AmpgateError):
    """The node cannot take this now (a capacity is full); `retry_after` says in how many seconds to retry."""

    default_code = "unavailable"
    status_hint = 503

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ChargerOfflineError(AmpgateError):
    """A command for a charger that has no live connection."""

    default_code = "charger_offline"
    status_hint = 409


class ChargerCallError(AmpgateError):
    """The charger answered a command with a CALLERROR; `ocpp_code` is its error code, `details` its
    errorDetails."""

    default_code = "charger_error"
    status_hint = 502

    def __init__(self, message: str, *, ocpp_code: str, details: object = None) -> None:
        super().__init__(message)
        self.ocpp_code = ocpp_code
        self.details = details


class ChargerSendError(AmpgateError):
    """A command could not be put on the charger's connection (the gateway link refused it): it never went on
    the wire, and the commands after it go on."""

    default_code = "send_failed"
    status_hint = 502


class ChargerTimeoutError(AmpgateError):
    """The charger did not answer a command in time (or its connection dropped before it answered)."""

    default_code = "charger_timeout"
    status_hint = 504


# msgspec's error text is read here and nowhere else. It ends a validation message with the JSON path of the
# offending value ("... - at `$.idTagInfo.status`") and names a missing or unknown field only in the message
# ("Object missing required field `status`"); its wording says what kind of rule was broken.
_MSGSPEC_AT = re.compile(r" - at `(\$[^`]*)`$")
# A field's name is whatever the sender wrote: empty, or with backticks or newlines in it (the router fuzz sent
# `{"": 1}` and got TypeConstraintViolation for what is a FormationViolation).
_MSGSPEC_FIELD = (
    (re.compile(r"^Object missing required field `(.*)`$", re.DOTALL), "missing required field"),
    (re.compile(r"^Object contains unknown field `(.*)`$", re.DOTALL), "unknown field"),
)
# A number outside its bounds, e.g. "Expected `int` >= 0", "Expected `float` that's a multiple of 0.1".
_MSGSPEC_RANGE = re.compile(r"Expected `(int|float|number)` ([<>]=? |that's a multiple of )")


class MsgspecKind(enum.Enum):
    """What kind of rule a value broke, read from msgspec's wording."""

    MISSING = "missing"  # a required field is absent
    UNKNOWN_FIELD = "unknown_field"  # a field the type does not have
    NOT_OBJECT = "not_object"  # an object was expected
    ITEMS = "items"  # an array with too few or too many items
    LENGTH = "length"  # a string too long or too short
    ENUM = "enum"  # a value outside its enumeration
    RANGE = "range"  # a number outside its bounds
    TYPE = "type"  # any other wrong type or malformed value


@dataclass(frozen=True, slots=True)
class MsgspecProblem:
    """One msgspec error, read. `path` is the dotted path below the document ("" for the document itself),
    ending in the field's name when a field is missing or unknown; `json_path` is msgspec's own path ("$",
    "$.a.b": the object holding a missing field); `text` is the message without the path; `message` the same,
    shortened to "missing required field" / "unknown field" for those two kinds."""

    path: str
    json_path: str
    text: str
    message: str
    kind: MsgspecKind


def read_msgspec_error(err: BaseException | str) -> MsgspecProblem:
    """Read a msgspec error (or its text). Never raises: text msgspec did not write is a TYPE problem of the
    document."""
    text = str(err)
    at = _MSGSPEC_AT.search(text)
    json_path = at.group(1) if at else "$"
    path = json_path[2:] if json_path.startswith("$.") else ""
    bare = text[: at.start()] if at else text
    message = bare
    kind = None
    for (pattern, what), k in zip(
        _MSGSPEC_FIELD, (MsgspecKind.MISSING, MsgspecKind.UNKNOWN_FIELD), strict=True
    ):
        m = pattern.match(bare)
        if m:
            path, message, kind = (f"{path}.{m.group(1)}" if path else m.group(1)), what, k
            break
    if kind is None:
        if bare.startswith("Expected `object`"):
            kind = MsgspecKind.NOT_OBJECT
        elif "`array` of length" in bare:
            kind = MsgspecKind.ITEMS
        elif "of length" in bare:
            kind = MsgspecKind.LENGTH
        elif "Invalid enum value" in bare:
            kind = MsgspecKind.ENUM
        elif _MSGSPEC_RANGE.search(bare):
            kind = MsgspecKind.RANGE
        else:
            kind = MsgspecKind.TYPE
    return MsgspecProblem(path, json_path, bare, message, kind)


def msgspec_problem(text: str) -> tuple[str, str]:
    """Where and what of a msgspec error's text: (path, message) of `read_msgspec_error`."""
    p = read_msgspec_error(text)
    return p.path, p.message
