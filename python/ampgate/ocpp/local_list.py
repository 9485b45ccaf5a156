"""The local authorization list a charger keeps for offline use, built from the node's id-token table
(1.6 SendLocalList `localAuthorizationList` of idTag + idTagInfo; 2.0.1 of idToken + idTokenInfo), and sent
through the Commander."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ampgate.clock import Clock, iso_utc
from ampgate.devicemodel.limits import split_request
from ampgate.errors import ConflictError
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
                info["expiryDate"] = iso_utc(row.expiry)
            if row.group is not None:
                info["parentIdTag"] = row.group
            entries.append({"idTag": row.id_token, "idTagInfo": info})
        else:
            info = {"status": row.status}
            if row.expiry is not None:
                info["cacheExpiryDateTime"] = iso_utc(row.expiry)
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


# Rows read from the id-token table per query while building a list.
_PAGE = 1000


class TokenPages(Protocol):
    def page(self, limit: int, after: str | None = None, /) -> list[IdTokenRow]: ...


class CommandSender(Protocol):
    """The Commander (`ampgate.ocpp.commander.Commander`)."""

    def ready(self, charger_id: str, action: str, /) -> str: ...
    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


# (entries per message, bytes per message, entries the charger holds) for a charger and its protocol.
Limits = Callable[[str, str], tuple[int | None, int | None, int | None]]


def _no_limits(charger_id: str, protocol: str) -> tuple[int | None, int | None, int | None]:
    return None, None, None


class LocalLists:
    """Sends chargers their local authorization list, built from the whole id-token table, in as many
    SendLocalList calls as the charger's limits need."""

    def __init__(
        self, tokens: TokenPages, commander: CommandSender, clock: Clock, limits: Limits = _no_limits
    ) -> None:
        self._tokens = tokens
        self._commander = commander
        self._clock = clock
        self._limits = limits

    async def send(self, charger_id: str, update_type: str, version: int | None) -> dict[str, Any]:
        """Send the charger its list (SendLocalList in its protocol version; `version` defaults to the current
        epoch second, so every list is newer than the last). Returns {"version", "entries", "skipped",
        "status"}. Raises what `Commander.call` raises."""
        protocol = self._commander.ready(charger_id, "SendLocalList")
        rows: list[IdTokenRow] = []
        after: str | None = None
        while page := self._tokens.page(_PAGE, after):
            rows.extend(page)
            after = page[-1].id_token
        version = version if version is not None else int(self._clock.wall())
        payload, skipped = build(protocol, rows, version, update_type)
        entries = payload.get("localAuthorizationList", [])
        per_message, size, capacity = self._limits(charger_id, protocol)
        if capacity is not None and len(entries) > capacity:
            raise ConflictError(
                f"the list has {len(entries)} entries; charger {charger_id!r} holds at most {capacity}",
                code="local_list_too_long",
            )
        # More entries than one message may carry: the first part replaces the list (Full), the others add to it
        # (Differential), all with the same version, which the charger holds once the last is in.
        sent = 0
        status = None
        for i, part in enumerate(split_request("SendLocalList", payload, per_message, size)):
            if i:
                part = {**part, "updateType": "Differential"}
            reply = await self._commander.call(charger_id, "SendLocalList", part)
            status = reply.get("status")
            if status != "Accepted":
                break
            sent += len(part.get("localAuthorizationList", []))
        return {"version": version, "entries": sent, "skipped": skipped, "status": status}
