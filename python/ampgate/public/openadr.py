"""`POST /public/v1/openadr/notifications`: where the VTN posts OpenADR subscription callbacks
(`ampgate.openadr.OpenAdrVen.notify`).

Authentication is the bearer token the VEN put in its subscriptions (OpenADR 3.0.1: "callback endpoints should
accept the provided bearer token to authenticate VTN requests"), compared in constant time; no other credential
is accepted. A notification the VEN cannot use is still answered 200 once read: it was counted, published and
logged, and a VTN that gets an error may retry the same bad object for ever. A body that is not a
notification at all is 422.
"""

from __future__ import annotations

import hmac
from typing import Any, Protocol, runtime_checkable

import msgspec
from litestar import Request, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, RequestBody, Schema

from ampgate.errors import UnauthorizedError, ValidationError
from ampgate.openadr.mapping import Rejection
from ampgate.public.app import error_responses, operation_with_body, rate_limit

NOTIFICATIONS_PATH = "/public/v1/openadr/notifications"
# Callbacks per second from one address. A VTN sends one per changed object; a burst of a few hundred events
# (a day-ahead schedule for many sites) passes, a flood does not.
NOTIFY_RATE_PER_S = 50


@runtime_checkable
class NotificationTarget(Protocol):
    """`ampgate.openadr.OpenAdrVen`."""

    callback_token: str

    async def notify(self, body: bytes, /) -> Rejection | None: ...


class NotificationOutcome(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Whether the notification's event was applied; when not, why (`reason`) and the field at fault."""

    applied: bool
    reason: str | None = None
    field: str | None = None


# OpenADR 3.0.1's notification object: what changed (`object`, of `objectType`) and how (`operation`). The VEN
# reads it itself (after the bearer token is checked), so Litestar cannot describe it.
NotificationOperation = operation_with_body(
    "NotificationOperation",
    RequestBody(
        description="An OpenADR 3.0.1 notification",
        required=True,
        content={
            "application/json": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["objectType", "operation", "object"],
                    properties={
                        "objectType": Schema(type=OpenAPIType.STRING),
                        "operation": Schema(type=OpenAPIType.STRING, enum=["GET", "POST", "PUT", "DELETE"]),
                        "object": Schema(type=OpenAPIType.OBJECT),
                    },
                )
            )
        },
    ),
)


@post(
    NOTIFICATIONS_PATH,
    operation_id="openadr_notification",
    operation_class=NotificationOperation,
    responses=error_responses(
        {
            401: "Without the subscription's bearer token (`unauthorized`)",
            413: "The body is larger than the listener's 64 KiB",
            422: "A body that is no notification (`malformed_notification`)",
            429: "Too many requests from this address (`RateLimit-*`)",
        }
    ),
    middleware=[rate_limit("openadr", NOTIFY_RATE_PER_S)],
    status_code=200,
    summary="An OpenADR subscription callback from the VTN (the subscription's bearer token; rate-limited)",
)
async def openadr_notification(
    request: Request[Any, Any, Any], openadr: NamedDependency[NotificationTarget]
) -> NotificationOutcome:
    """Reconcile the event the notification carries. 401 without the subscription's bearer token; 422
    `malformed_notification` for a body that is no notification; otherwise 200 `{"applied"}` (false with
    `reason` and `field` when the event was rejected)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), openadr.callback_token.encode()):
        raise UnauthorizedError("a callback needs the bearer token of the subscription")
    rejection = await openadr.notify(await request.body())
    if rejection is None:
        return NotificationOutcome(applied=True)
    if rejection.event_id is None and rejection.field == "$":
        raise ValidationError(rejection.message, field="body", code="malformed_notification")
    return NotificationOutcome(applied=False, reason=rejection.reason, field=rejection.field)
