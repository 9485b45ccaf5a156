"""The one place where errors become HTTP responses: the AmpgateError family, Litestar's own exceptions
(validation, auth, routing) and anything unexpected, all as `ErrorBody` JSON: {"code", "message", "field"?}."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from ampgate.api.schemas import ErrorBody
from ampgate.errors import AmpgateError, ChargerCallError, MsgspecKind, UnavailableError, read_msgspec_error

log = logging.getLogger(__name__)

# Litestar reports a body-level problem (missing or unknown field, wrong top-level type) under the key of the
# handler argument ("data") and names the field only inside msgspec's message, which `read_msgspec_error` reads.
# Handler arguments that stand for the whole body rather than one field of it.
_BODY_KEYS = frozenset({"data", "$"})
# RFC 6750: a 401 for a bearer-protected resource says which scheme to use.
_WWW_AUTHENTICATE = {"WWW-Authenticate": "Bearer"}
# Litestar's message for a body that is not JSON at all (litestar/_kwargs/extractors.py).
_MALFORMED_JSON = "JSON is malformed"


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[ErrorBody]:
    """An error response with the common body (`extra`: ErrorBody's optional fields)."""
    body = ErrorBody(code=code, message=message, field=field, **extra)
    return Response(body, status_code=status, headers=headers)


def validation_details(exc: ValidationException) -> tuple[str, str | None]:
    """The message and offending field of Litestar's validation failure (its first error, when several)."""
    errors = exc.extra if isinstance(exc.extra, list) else []
    for error in errors:
        if isinstance(error, dict):
            problem = read_msgspec_error(str(error.get("message") or exc.detail))
            key = error.get("key")
            if isinstance(key, str) and key and key not in _BODY_KEYS:
                # A field missing from (or unknown to) a nested object: Litestar's key is the object
                # ("location") and msgspec's message names the field ("lon"); the field is both.
                if problem.kind in (MsgspecKind.MISSING, MsgspecKind.UNKNOWN_FIELD):
                    return problem.text, f"{key}.{problem.path}"
                return problem.text, key
            return problem.text, problem.path or None
    problem = read_msgspec_error(exc.detail)
    return exc.detail, problem.path or None


def _code_for_status(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def handle_ampgate_error(request: Request[Any, Any, Any], exc: AmpgateError) -> Response[ErrorBody]:
    """An AmpgateError becomes its `status_hint` with its code, message and field (and `details` when it has
    them)."""
    headers = _WWW_AUTHENTICATE if exc.status_hint == 401 else None
    if isinstance(exc, UnavailableError):
        headers = {"Retry-After": str(exc.retry_after)}
    extra: dict[str, Any] = {}
    if isinstance(exc, ChargerCallError):
        extra = {"ocpp_code": exc.ocpp_code, "details": exc.details}
    elif getattr(exc, "details", None) is not None:
        # An error that says more than its code (e.g. reservation_refused: the charger's status).
        extra = {"details": exc.details}  # type: ignore[attr-defined]
    if exc.headers:
        headers = {**(headers or {}), **exc.headers}
    return error_response(exc.status_hint, exc.code, exc.message, exc.field, headers, **extra)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's exceptions: validation failures become 422 invalid_field naming the field; 401, 403 and 404
    get our codes; anything else keeps its status with a code derived from it."""
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException):
        message, field = validation_details(exc)
        return error_response(422, "invalid_field", message, field)
    status = exc.status_code
    if status >= 500:
        log.error("HTTP %s on %s %s: %s", status, request.method, request.url.path, exc.detail, exc_info=exc)
        return error_response(status, "internal_error", "internal server error", headers=headers)
    if isinstance(exc, NotAuthorizedException) or status == 401:
        headers.update(_WWW_AUTHENTICATE)
        return error_response(401, "unauthorized", exc.detail, headers=headers)
    if status == 403:
        return error_response(403, "forbidden", exc.detail, headers=headers)
    if status == 404:
        return error_response(404, "not_found", exc.detail, headers=headers)
    if status == 400 and exc.detail.startswith(_MALFORMED_JSON):
        return error_response(400, "invalid_json", exc.detail, headers=headers)
    return error_response(status, _code_for_status(status), exc.detail, headers=headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """A bug: log it with its traceback; the client learns nothing about our insides."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    AmpgateError: handle_ampgate_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
