"""Which protocol version a command exists in, checked before anything is stored or sent: the features built on
2.0.1-only messages (display messages, customer information, firmware publishing) refuse other chargers with a
clear 409 instead of the generic "not a command the central system sends" 404."""

from __future__ import annotations

from ampgate.errors import ConflictError
from ampgate.ocpp.envelope import OCPP201


def require_201(protocol: str, charger_id: str, action: str) -> None:
    """Raise ConflictError `unsupported_protocol` unless `protocol` is OCPP 2.0.1."""
    if protocol != OCPP201:
        raise ConflictError(
            f"{action} exists in OCPP 2.0.1 only; charger {charger_id!r} speaks {protocol}",
            code="unsupported_protocol",
        )
