"""Payload checks by action for each protocol version, with the generated types: the requests the central
system sends (remote commands) and the replies chargers give to them."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import msgspec

from ampgate.errors import ValidationError, read_msgspec_error
from ampgate.ocpp import v16, v201

_VERSIONS: dict[str, ModuleType] = {"ocpp1.6": v16, "ocpp2.0.1": v201}


def charger_actions(protocol: str) -> frozenset[str]:
    """Actions a charger speaking `protocol` may send to the central system."""
    return frozenset(_VERSIONS[protocol].CHARGER_INITIATED)


def csms_actions(protocol: str) -> frozenset[str]:
    """Actions the central system sends to a charger speaking `protocol`."""
    return frozenset(_VERSIONS[protocol].CSMS_INITIATED)


def _validate(types: dict[str, type], action: str, payload: Any, what: str) -> None:
    typ = types[action]
    if not isinstance(payload, dict):
        raise ValidationError(f"the {action} {what} must be a JSON object")
    try:
        msgspec.convert(payload, typ)
    except msgspec.ValidationError as e:
        problem = read_msgspec_error(e)
        raise ValidationError(problem.text, field=problem.path or None) from None


def validate_request(protocol: str, action: str, payload: Any) -> None:
    """Check a request payload the central system is about to send. Raises ValidationError naming the field,
    or KeyError if `action` is not one the central system sends in `protocol`."""
    mod = _VERSIONS[protocol]
    if action not in mod.CSMS_INITIATED:
        raise KeyError(action)
    _validate(mod.REQUESTS, action, payload, "request")


def validate_response(protocol: str, action: str, payload: Any) -> None:
    """Check a charger's CALLRESULT payload for our CALL `action`. Raises ValidationError naming the field."""
    _validate(_VERSIONS[protocol].RESPONSES, action, payload, "reply")
