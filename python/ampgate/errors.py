"""Errors a user, an operator or a charger can cause: typed values with a code, a message and, where one field
is at fault, its name.

Each class carries the HTTP status it maps to (`status_hint`); the API maps the whole family to responses in
one place (`ampgate.api.errors`), so nothing else turns these into HTTP. Programmer errors stay ordinary
exceptions (RuntimeError, ValueError, ...) and surface as 500s with a log line, never as one of these.
"""

from __future__ import annotations

import re
from typing import ClassVar

__all__ = [
    "AmpgateError",
    "ChargerCallError",
    "ChargerOfflineError",
    "ChargerTimeoutError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "UnauthorizedError",
    "ValidationError",
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


class UnauthorizedError(AmpgateError):
    """No credentials, or credentials that identify nobody."""

    default_code = "unauthorized"
    status_hint = 401


class ForbiddenError(AmpgateError):
    """Valid credentials whose role is too low for the operation."""

    default_code = "forbidden"
    status_hint = 403


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


class ChargerTimeoutError(AmpgateError):
    """The charger did not answer a command in time (or its connection dropped before it answered)."""

    default_code = "charger_timeout"
    status_hint = 504


# msgspec ends a validation message with the JSON path of the offending value ("... - at `$.idTagInfo.status`")
# and names a missing or unknown field only in the message ("Object missing required field `status`").
_MSGSPEC_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_MSGSPEC_FIELD = (
    (re.compile(r"^Object missing required field `([^`]+)`$"), "missing required field"),
    (re.compile(r"^Object contains unknown field `([^`]+)`$"), "unknown field"),
)


def msgspec_problem(text: str) -> tuple[str, str]:
    """Where and what of a msgspec error's text: (path, message). `path` is the dotted path below the document
    ("" for the document itself), ending in the field's name when a field is missing or unknown; `message` is
    the text without the path ("missing required field" / "unknown field" for those)."""
    at = _MSGSPEC_AT.search(text)
    path = at.group(1) if at else ""
    message = text[: at.start()] if at else text
    for pattern, what in _MSGSPEC_FIELD:
        m = pattern.match(message)
        if m:
            return (f"{path}.{m.group(1)}" if path else m.group(1)), what
    return path, message
