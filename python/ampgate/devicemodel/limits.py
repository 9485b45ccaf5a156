"""Splitting a request into calls a charger accepts (pure) [B06.FR.05, B07]: at most `ItemsPerMessage` items and
`BytesPerMessage` bytes of JSON per call for GetVariables, SetVariables, SetVariableMonitoring (2.0.1; the
device model variables DeviceDataCtrlr.ItemsPerMessage / BytesPerMessage with the action as instance) and 1.6
GetConfiguration (`GetConfigurationMaxKeys`); their results are merged back in order."""

from __future__ import annotations

from typing import Any

import msgspec

# action -> (the list in the request, the list(s) in the reply).
SPLIT: dict[str, tuple[str, tuple[str, ...]]] = {
    "GetVariables": ("getVariableData", ("getVariableResult",)),
    "SetVariables": ("setVariableData", ("setVariableResult",)),
    "SetVariableMonitoring": ("setMonitoringData", ("setMonitoringResult",)),
    "GetConfiguration": ("key", ("configurationKey", "unknownKey")),
    # Each part is a report of its own: the parts after the first get request ids of their own (see DeviceModel).
    "GetReport": ("componentVariable", ()),
    # Sent by the local-list part, not through `DeviceModel.call`: its later parts go as Differential updates.
    "SendLocalList": ("localAuthorizationList", ()),
}

_size = msgspec.json.Encoder().encode


def split_request(
    action: str, payload: dict[str, Any], items: int | None, size: int | None
) -> list[dict[str, Any]]:
    """`payload` as one or more payloads of `action`, each with at most `items` items and (where one item
    alone is not larger) `size` bytes of JSON. A payload that needs no split comes back as it is."""
    field = SPLIT[action][0]
    entries = payload.get(field)
    if not isinstance(entries, list) or not entries:
        return [payload]
    per = max(1, items) if items else len(entries)
    out: list[dict[str, Any]] = []
    chunk: list[Any] = []
    for entry in entries:
        candidate = {**payload, field: [*chunk, entry]}
        if chunk and (len(chunk) >= per or (size and len(_size(candidate)) > size)):
            out.append({**payload, field: chunk})
            chunk = [entry]
        else:
            chunk.append(entry)
    out.append({**payload, field: chunk})
    return out


def merge_replies(action: str, replies: list[dict[str, Any]]) -> dict[str, Any]:
    """The replies to the split calls as one reply: their result lists concatenated in order."""
    if len(replies) == 1:
        return replies[0]
    if action == "GetReport":
        # Accepted when every part was; else the first other status (with its statusInfo).
        return next((r for r in replies if r.get("status") != "Accepted"), replies[0])
    merged: dict[str, Any] = {}
    for name in SPLIT[action][1]:
        values = [v for r in replies for v in (r.get(name) or [])]
        if values or any(name in r for r in replies):
            merged[name] = values
    return merged
