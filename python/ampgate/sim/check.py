"""The schema check of everything the central system sends the simulated chargers.

Each message comes from the engine (`Sim.take_checks()`) as (protocol, kind, action, payload JSON text) and is
decoded with the generated msgspec type of its action (`ampgate.ocpp.v16` / `v201`, proven equal to the
official JSON schemas by tests/ocpp/test_conformance.py): REQUESTS for a CALL the central system sent, RESPONSES
for its CALLRESULT to one of ours. A violation becomes one detail of error kind `invalid_from_csms`:
"{action}: {JSON path}: {message}", e.g. "BootNotification: $.status: invalid enum value 'Yes'".

This runs for every message the central system sends, so a decoder is built once per (protocol, kind, action)
and the valid case costs one dict lookup and one msgspec decode (about a microsecond for a Heartbeat reply).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import msgspec

from ampgate.errors import msgspec_problem
from ampgate.ocpp import v16, v201

__all__ = ["SchemaCheck", "describe"]

_VERSIONS: dict[str, ModuleType] = {"ocpp1.6": v16, "ocpp2.0.1": v201}

Decode = Callable[[str], Any]


def describe(action: str, err: msgspec.MsgspecError) -> str:
    """The `invalid_from_csms` detail for msgspec's error `err` on a payload of `action`:
    "{action}: {JSON path}: {message}", where a missing or unknown field is part of the path."""
    where, message = msgspec_problem(str(err))
    path = f"$.{where}" if where else "$"
    message = message[:1].lower() + message[1:]
    if isinstance(err, msgspec.DecodeError) and not isinstance(err, msgspec.ValidationError):
        message = f"not JSON ({message})"
    return f"{action}: {path}: {message}"


def _unknown_call(protocol: str, action: str) -> Decode:
    detail = f"{action}: $: not a CALL a central system sends in {protocol}"

    def fail(payload: str) -> Any:
        raise _Invalid(detail)

    return fail


class _Invalid(Exception):
    """A payload fails for a reason msgspec does not report (an action with no schema); args[0] is the detail."""


class SchemaCheck:
    """Validates batches of messages from the central system and collects the violations."""

    def __init__(self) -> None:
        self._decoders: dict[tuple[str, str, str], Decode | None] = {}

    def _decoder(self, protocol: str, kind: str, action: str) -> Decode | None:
        mod = _VERSIONS.get(protocol)
        if kind == "call":
            if mod is None or action not in mod.CSMS_INITIATED:
                return _unknown_call(protocol, action)
            return msgspec.json.Decoder(mod.REQUESTS[action]).decode
        # A reply to one of our own CALLs: the engine only sends actions it knows, so a missing schema would be
        # our mistake, not the central system's; such replies go unchecked.
        typ = mod.RESPONSES.get(action) if mod is not None else None
        return msgspec.json.Decoder(typ).decode if typ is not None else None

    def check(self, messages: Iterable[tuple[str, str, str, str]]) -> list[str]:
        """The `invalid_from_csms` details of the messages that fail their schema, in order (empty when all
        pass). Each message is (protocol "ocpp1.6"|"ocpp2.0.1", kind "call"|"result", action, payload JSON)."""
        bad: list[str] = []
        decoders = self._decoders
        for protocol, kind, action, payload in messages:
            key = (protocol, kind, action)
            try:
                decode = decoders[key]
            except KeyError:
                decode = decoders[key] = self._decoder(protocol, kind, action)
            if decode is None:
                continue
            try:
                decode(payload)
            except msgspec.MsgspecError as e:
                bad.append(describe(action, e))
            except _Invalid as e:
                bad.append(e.args[0])
        return bad
