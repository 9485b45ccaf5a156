"""What an OCPI request can be answered with besides success: one exception carrying the HTTP status and the
OCPI status code, mapped to the envelope in one place (`ampgate.roaming.server`).

The HTTP status follows status_codes.asciidoc: a request that reached the OCPI layer (valid JSON, an existing
resource, an authenticated caller) is answered HTTP 200 with the OCPI code saying what went wrong (2001 for a
malformed object, 3001 when the client's API could not be used during registration, …); HTTP errors are for what
the transport rules name: 401 (no or unknown token, or the registration token outside versions and credentials),
405 (credentials POST when registered, PUT or DELETE when not), 404 (a GET of an object that does not exist),
400 (a body that is not JSON)."""

from __future__ import annotations

from typing import Any

from ampgate.roaming.types import StatusCode


class OcpiError(Exception):
    """Answer with `http_status` and an envelope of `status_code` and `message` (`data`: what may help the
    caller, e.g. the offending field)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = StatusCode.CLIENT_ERROR,
        http_status: int = 200,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = int(status_code)
        self.http_status = http_status
        self.data = data
        self.headers = headers or {}


def unauthorized(message: str) -> OcpiError:
    return OcpiError(message, http_status=401, headers={"WWW-Authenticate": "Token"})


def not_allowed(message: str) -> OcpiError:
    return OcpiError(message, http_status=405)


def invalid(message: str, field: str) -> OcpiError:
    """Status 2001 naming `field` (in the message and as `data.field`)."""
    where = field or "the body"
    return OcpiError(
        f"invalid or missing {where}: {message}",
        status_code=StatusCode.INVALID_PARAMETERS,
        data={"field": field or "$"},
    )


def unknown_object(message: str) -> OcpiError:
    return OcpiError(message, status_code=StatusCode.UNKNOWN_LOCATION, http_status=404)
