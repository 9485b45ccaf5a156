"""The local authorization list a charger keeps for offline use, built from the node's id-token table
(1.6 SendLocalList `localAuthorizationList` of idTag + idTagInfo; 2.0.1 of idToken + idTokenInfo)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ampgate.clock import iso
from ampgate.store.id_tokens import IdTokenRow

# OCPP caps: a 1.6 idTag (and parentIdTag) is at most 20 characters, a 2.0.1 idToken at most 36. Longer
# tokens cannot go into that charger's list; they are counted as skipped, never truncated (a truncated token
# would authorize someone else).
_MAX_ID = {"ocpp1.6": 20, "ocpp2.0.1": 36}
# A 2.0.1 list entry needs an idToken type; a token stored without one (it matches any type) goes out as
# "Central", the type for identifiers the central system issued.
_DEFAULT_TYPE_201 = "Central"
# Statuses 2.0.1 has that 1.6 lacks fold to Invalid there; 1.6's five all exist in 2.0.1.
_STATUS_16 = frozenset({"Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"})


def build(
    protocol: str, rows: Iterable[IdTokenRow], version: int, update_type: str
) -> tuple[dict[str, Any], int]:
    """The SendLocalList request payload (wire names) for `protocol`, and how many tokens did not fit."""
    limit = _MAX_ID[protocol]
    entries: list[dict[str, Any]] = []
    skipped = 0
    for row in rows:
        if len(row.id_token) > limit or (row.group is not None and len(row.group) > limit):
            skipped += 1
            continue
        if protocol == "ocpp1.6":
            info: dict[str, Any] = {"status": row.status if row.status in _STATUS_16 else "Invalid"}
            if row.expiry is not None:
                info["expiryDate"] = iso(row.expiry.timestamp())
            if row.group is not None:
                info["parentIdTag"] = row.group
            entries.append({"idTag": row.id_token, "idTagInfo": info})
        else:
            info = {"status": row.status}
            if row.expiry is not None:
                info["cacheExpiryDateTime"] = iso(row.expiry.timestamp())
            if row.group is not None:
                info["groupIdToken"] = {"idToken": row.group, "type": _DEFAULT_TYPE_201}
            token = {"idToken": row.id_token, "type": row.type or _DEFAULT_TYPE_201}
            entries.append({"idToken": token, "idTokenInfo": info})
    if protocol == "ocpp1.6":
        payload: dict[str, Any] = {"listVersion": version, "updateType": update_type}
    else:
        payload = {"versionNumber": version, "updateType": update_type}
    if entries:
        payload["localAuthorizationList"] = entries
    return payload, skipped
