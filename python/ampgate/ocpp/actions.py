"""The OCPP actions of each protocol version and their payload types, from the generated modules."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

import msgspec

from ampgate.errors import ValidationError
from ampgate.ocpp import v16, v201

_VERSIONS: dict[str, ModuleType] = {"ocpp1.6": v16, "ocpp2.0.1": v201}
# msgspec names the JSON path of the offending value at the end of its message ("... - at `$.type`") and,
# for a missing field, the field itself ("Object missing required field `type`").
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def charger_actions(protocol: str) -> frozenset[str]:
    """Actions a charger speaking `protocol` may send to the central system."""
    return frozenset(_VERSIONS[protocol].CHARGER_INITIATED)


def _field(err: msgspec.ValidationError) -> str | None:
    text = str(err)
    path = _PATH.search(text)
    where = path.group(1) if path else ""
    missing = _MISSING.search(text)
    if missing:
        return f"{where}.{missing.group(1)}" if where else missing.group(1)
    return where or None


def _validate(types: dict[str, type], action: str, payload: Any, what: str) -> None:
    typ = types[action]
    if not isinstance(payload, dict):
        raise ValidationError(f"the {action} {what} must be a JSON object")
    try:
        msgspec.convert(payload, typ)
    except msgspec.ValidationError as e:
        raise ValidationError(str(e).split(" - at ", 1)[0], field=_field(e)) from None


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
