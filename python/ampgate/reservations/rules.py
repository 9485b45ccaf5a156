"""The reservation rules, pure: which reservation holds a connector or EVSE at an instant, and whether a token
may start there. No I/O, no clock of its own: every function takes `now`.

What a reservation covers (OCPP 1.6 §5.13, 2.0.1 H01/H03):
- a 1.6 reservation of connector c covers connector c;
- a 2.0.1 reservation of EVSE e covers every connector of EVSE e;
- a reservation of no particular place (1.6 connectorId 0, 2.0.1 without evseId, or by connectorType) covers
  no connector in particular: the charger keeps *one* free for the token, and only it knows which. The node
  therefore never refuses a start because of one; a start by the reserving token anywhere on the charger uses it.

Who may use it (1.6 §5.13, "except when the incoming idTag or the parent idTag match the idTag or parent idTag
of the reservation"; 2.0.1 H03 with groupIdToken): the presented token or its group equal the reservation's
token or its group. Tokens compare case-insensitively, as OCPP compares identifiers.

A reservation counts until the instant of its expiry (exclusive), whatever the sweep has written yet.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """An active reservation as the rules see it. `evse_id` is set for a 2.0.1 EVSE reservation,
    `connector_id` for a 1.6 connector reservation; neither for a reservation of no particular place."""

    id: int
    charger_id: str
    protocol: str
    evse_id: int | None
    connector_id: int | None
    id_token: str
    group: str | None
    expires_at: datetime

    @property
    def anywhere(self) -> bool:
        """Whether it reserves no particular connector or EVSE."""
        return self.evse_id is None and self.connector_id is None


class Verdict(msgspec.Struct, frozen=True):
    """The answer for a start: `refused_by` the reservation that forbids it (None: allowed); `uses` the
    reservation the start consumes (None: none)."""

    refused_by: Hold | None = None
    uses: Hold | None = None


ALLOWED = Verdict()


def live(hold: Hold, now: datetime) -> bool:
    """Whether `hold` still counts at `now` (its expiry is exclusive)."""
    return now < hold.expires_at


def covers(hold: Hold, evse_id: int | None, connector_id: int | None) -> bool:
    """Whether `hold` reserves the place a start happens at: EVSE `evse_id` (2.0.1) or connector
    `connector_id` (1.6, `evse_id` None). A reservation of no particular place covers none."""
    if hold.evse_id is not None:
        return evse_id == hold.evse_id
    if hold.connector_id is not None:
        return evse_id is None and connector_id == hold.connector_id
    return False


def _norm(token: str | None) -> str | None:
    return None if token is None else token.casefold()


def token_matches(hold: Hold, id_token: str, group: str | None) -> bool:
    """Whether the presented `id_token` (with its `group`, when known) may use `hold`: either of the two
    equals the reservation's token or group (case-insensitively)."""
    presented = {_norm(id_token), _norm(group)} - {None}
    reserved = {_norm(hold.id_token), _norm(hold.group)} - {None}
    return not presented.isdisjoint(reserved)


def judge_start(
    holds: list[Hold] | tuple[Hold, ...],
    now: datetime,
    evse_id: int | None,
    connector_id: int | None,
    id_token: str,
    group: str | None,
) -> Verdict:
    """May `id_token` (of `group`) start at (`evse_id`, `connector_id`) while `holds` (one charger's active
    reservations) stand? Allowed and using a reservation when the token may use one that covers the place
    (preferred) or one of no particular place; refused when another's reservation covers the place; else
    allowed. Expired holds count for nothing. Never raises."""
    blocking: Hold | None = None
    anywhere: Hold | None = None
    for hold in holds:
        if not live(hold, now):
            continue
        here = covers(hold, evse_id, connector_id)
        if token_matches(hold, id_token, group):
            if here:
                return Verdict(uses=hold)
            if hold.anywhere and anywhere is None:
                anywhere = hold
        elif here and blocking is None:
            blocking = hold
    if blocking is not None:
        return Verdict(refused_by=blocking)
    if anywhere is not None:
        return Verdict(uses=anywhere)
    return ALLOWED


def held_for(holds: list[Hold] | tuple[Hold, ...], now: datetime, id_token: str) -> Hold | None:
    """The live reservation `id_token` itself (or as a group token) may use on this charger, or None: what
    lets a token unknown to the id-token table in at the charger its operator reserved for it."""
    for hold in holds:
        if live(hold, now) and token_matches(hold, id_token, None):
            return hold
    return None


def expired(holds: list[Hold] | tuple[Hold, ...], now: datetime) -> list[Hold]:
    """The holds whose expiry has passed at `now`."""
    return [h for h in holds if not live(h, now)]
