"""The rules of a customer-information request, as pure functions: which customer it names, the payload sent,
and the report's text assembled from its parts.

A CustomerInformation request asks a 2.0.1 charger to report (`report`) and/or delete (`clear`) what it holds
about one customer, named by one of a vendor-specific `customer_identifier`, an `id_token` or a
`customer_certificate` (the spec: "one of ... should be set"; the API's convention for unions: exactly one, the
422 naming the field). Its life: `Requested` (the node; the row exists and the CALL is on its way), then the
charger's answer `Accepted`, `Rejected` or `Invalid`, or the call's failure `Failed` / `TimedOut`. A report
arrives as NotifyCustomerInformation parts numbered by seqNo; its text is their `data` in seqNo order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from ampgate.errors import ValidationError
from ampgate.ocpp import payloads, v201
from ampgate.ocpp.envelope import OCPP201

CUSTOMER_INFORMATION = "CustomerInformation"
NOTIFY_CUSTOMER_INFORMATION = "NotifyCustomerInformation"
REQUESTED = "Requested"
ACCEPTED = "Accepted"
FAILED = "Failed"
TIMED_OUT = "TimedOut"
IDENTIFIERS = ("customer_identifier", "id_token", "customer_certificate")


class IdToken(msgspec.Struct, frozen=True, kw_only=True):
    """2.0.1 IdTokenType in the API's terms (additionalInfo is not offered: no use case needs it here)."""

    id_token: str
    type: str


class CertificateHash(msgspec.Struct, frozen=True, kw_only=True):
    """2.0.1 CertificateHashDataType in the API's terms."""

    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str


class Customer(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Whom a request is about: exactly one of the three is set. Personal data: kept with the request (operator
    reads, admin deletes), never put in an event."""

    customer_identifier: str | None = None
    id_token: IdToken | None = None
    customer_certificate: CertificateHash | None = None


class CustomerRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the operator asks for."""

    report: bool
    clear: bool
    customer: Customer


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(path: str) -> str:
    return ".".join(_CAMEL.sub("_", p).lower() for p in path.split("."))


def build_payload(request_id: int, spec: CustomerRequest) -> dict[str, Any]:
    """The CustomerInformation request (wire names)."""
    payload: dict[str, Any] = {"requestId": request_id, "report": spec.report, "clear": spec.clear}
    c = spec.customer
    if c.customer_identifier is not None:
        payload["customerIdentifier"] = c.customer_identifier
    if c.id_token is not None:
        payload["idToken"] = {"idToken": c.id_token.id_token, "type": c.id_token.type}
    if c.customer_certificate is not None:
        h = c.customer_certificate
        payload["customerCertificate"] = {
            "hashAlgorithm": h.hash_algorithm,
            "issuerNameHash": h.issuer_name_hash,
            "issuerKeyHash": h.issuer_key_hash,
            "serialNumber": h.serial_number,
        }
    return payload


def check(spec: CustomerRequest) -> dict[str, Any]:
    """The payload of `spec` (request id 0: the node numbers it later) if it can be sent, else ValidationError
    naming the API field: `report` when it asks for nothing, the first identifier when it names no customer or
    several, or the field the schema refuses (`id_token.type`, `customer_certificate.serial_number`, ...)."""
    if not spec.report and not spec.clear:
        raise ValidationError(
            "report, clear or both must be true: this request asks for nothing", field="report"
        )
    given = [name for name in IDENTIFIERS if getattr(spec.customer, name) is not None]
    if len(given) != 1:
        raise ValidationError(
            f"name the customer with exactly one of {', '.join(IDENTIFIERS)} (given: {', '.join(given) or 'none'})",
            field=given[1] if len(given) > 1 else IDENTIFIERS[0],
        )
    payload = build_payload(0, spec)
    try:
        payloads.validate_request(OCPP201, CUSTOMER_INFORMATION, payload)
    except ValidationError as e:
        raise ValidationError(e.message, field=None if e.field is None else _snake(e.field)) from None
    return payload


_decode_part = msgspec.json.Decoder(v201.NotifyCustomerInformationRequest).decode


def assemble(parts: Iterable[bytes]) -> str:
    """The report's text: the `data` of its parts (as stored, in seqNo order) joined."""
    return "".join(_decode_part(p).data for p in parts)
