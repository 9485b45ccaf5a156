"""Authorize, for both protocol versions, answered from the id-token table (no cache: an operator's change
applies to the next message), and the decision itself.

Unknown token: Invalid. Past its expiry: Expired. Else its stored status (Accepted, Blocked, Invalid,
ConcurrentTx, Expired). A 2.0.1 token of type NoAuthorization is Accepted without a lookup: it means the
station needs none (e.g. a free-vend connector), and there is nothing to look up.

A token the table does not know may be vouched for elsewhere (`ExternalTokens`, the node's
`ampgate.roaming.authority.TokenAuthority` when OCPI runs: the tokens eMSPs pushed, and real-time authorization
at the eMSP). The table always comes first; what the outside says may need a call, so Authorize, 1.6
StartTransaction and 2.0.1 TransactionEvent then answer later (the router's late reply; the charger waits for it
before its next CALL, so its messages stay in order). The outside bounds its own wait below the charger's.

Reservations then have their say (`ReservationRules`, the node's `ampgate.reservations.ReservationBook`): at
a transaction start, a place another token reserved refuses the start; a token nobody knows is Accepted where
it holds a reservation. The rules and the statuses chosen are documented there.

Last, the cost display (`costs`, `ampgate.ocpp.cost_hooks`) may add the tariff text to a 2.0.1 answer, or send a
1.6 charger the price after it (California Pricing).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import msgspec

from ampgate.clock import iso_utc
from ampgate.ocpp import v16, v201
from ampgate.ocpp.cost_hooks import CostReplies, NoCostReplies
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.store.id_tokens import IdTokenRow

log = logging.getLogger(__name__)

# 2.0.1 groupIdToken needs a type; a group is the operator's own grouping, known to the central system.
GROUP_TOKEN_TYPE = "Central"


class Authorization(msgspec.Struct, frozen=True):
    """What the node answers for a presented token: the status after expiry, plus expiry and group."""

    status: str
    expiry: datetime | None = None
    group: str | None = None


def decide(row: IdTokenRow | None, now: datetime, type_: str | None = None) -> Authorization:
    """The answer for a presented token: Invalid when unknown (or of another 2.0.1 type than stored), Expired
    when its expiry has passed, else its stored status. Never raises."""
    if row is None or (type_ is not None and row.type is not None and row.type != type_):
        return Authorization("Invalid")
    if row.expiry is not None and row.expiry <= now:
        return Authorization("Expired", row.expiry, row.group)
    return Authorization(row.status, row.expiry, row.group)


def id_tag_info(auth: Authorization) -> dict[str, Any]:
    """1.6 idTagInfo (wire form) for `auth`."""
    info: dict[str, Any] = {"status": auth.status}
    if auth.expiry is not None:
        info["expiryDate"] = iso_utc(auth.expiry)
    if auth.group is not None and len(auth.group) <= 20:
        # A longer group cannot be a 1.6 parentIdTag; cutting it could merge two groups, so it is left out.
        info["parentIdTag"] = auth.group
    return info


def id_token_info(auth: Authorization) -> dict[str, Any]:
    """2.0.1 idTokenInfo (wire form) for `auth`."""
    info: dict[str, Any] = {"status": auth.status}
    if auth.expiry is not None:
        info["cacheExpiryDateTime"] = iso_utc(auth.expiry)
    if auth.group is not None:
        info["groupIdToken"] = {"idToken": auth.group, "type": GROUP_TOKEN_TYPE}
    return info


class IdTokenLookup(Protocol):
    def get(self, id_token: str, /) -> IdTokenRow | None: ...


class ExternalTokens(Protocol):
    """Tokens the id-token table does not know that someone else may vouch for (OCPI eMSPs).

    `authorize`: None when there is nothing to say (nobody knows the token and nobody can be asked); else an
    awaitable of the answer, or of None when it turned out nobody knows it. It may call out (real-time
    authorization), within a bound of its own. `recall`: what is known now without calling anyone (for a
    transaction's stop, where the idTag is only informative)."""

    def authorize(
        self, charger_id: str, protocol: str, id_token: str, type_: str | None, /
    ) -> Awaitable[Authorization | None] | None: ...

    def recall(
        self, charger_id: str, protocol: str, id_token: str, type_: str | None, /
    ) -> Authorization | None: ...


# A decision and whether anyone knew the token (the table, or the outside).
Looked = tuple[Authorization, bool]


class ReservationRules(Protocol):
    """The charger's live reservations (`ampgate.reservations.ReservationBook`): given the token table's
    answer `auth` (and whether the table `known` the token), the answer once reservations count. `at_start`
    also ends the reservation the start uses (or names: `reservation_id`)."""

    def at_authorize(
        self, charger_id: str, id_token: str, auth: Authorization, known: bool, /
    ) -> Authorization: ...

    def at_start(
        self,
        charger_id: str,
        protocol: str,
        evse_id: int | None,
        connector_id: int | None,
        id_token: str | None,
        auth: Authorization | None,
        known: bool,
        reservation_id: int | None,
        /,
    ) -> Authorization | None: ...


class Authorizer:
    """The node's answer to presented tokens, and its Authorize handlers. `now` gives the time expiries are
    judged against; `reservations`, when given, has its say after the token table; `external` (settable later,
    e.g. once OCPI is built) answers for tokens the table does not know; `costs` is handed each Authorize answer
    (the tariff text, 1.6 SetUserPrice)."""

    def __init__(
        self,
        tokens: IdTokenLookup,
        now: Callable[[], datetime],
        reservations: ReservationRules | None = None,
        external: ExternalTokens | None = None,
        *,
        costs: CostReplies | None = None,
    ) -> None:
        self._tokens = tokens
        self._now = now
        self._reservations = reservations
        self.external = external
        self._costs: CostReplies = costs if costs is not None else NoCostReplies()

    def register(self, router: OcppRouter) -> None:
        """Handle Authorize in both versions."""
        router.register(OCPP16, "Authorize", self._authorize16)
        router.register(OCPP201, "Authorize", self._authorize201)

    def check16(self, id_tag: str, charger_id: str | None = None) -> Authorization:
        """The decision for a 1.6 idTag, without calling anyone (a transaction's stop). Never raises."""
        auth, known = self._lookup16(id_tag)
        return self._recall(charger_id, OCPP16, id_tag, None, auth, known)

    def check201(self, token: v201.IdTokenType, charger_id: str | None = None) -> Authorization:
        """The decision for a 2.0.1 idToken (matching its type when the stored token has one), without calling
        anyone."""
        auth, known = self._lookup201(token)
        return self._recall(charger_id, OCPP201, token.id_token, token.type, auth, known)

    def _recall(
        self,
        charger_id: str | None,
        protocol: str,
        id_token: str,
        type_: str | None,
        auth: Authorization,
        known: bool,
    ) -> Authorization:
        if known or self.external is None or charger_id is None:
            return auth
        return self.external.recall(charger_id, protocol, id_token, type_) or auth

    def _resolve(
        self, charger_id: str, protocol: str, id_token: str, type_: str | None, looked: Looked
    ) -> Looked | Awaitable[Looked]:
        """The table's answer when it knows the token (or nobody else is asked), else the outside's, which may
        come later."""
        if looked[1] or self.external is None:
            return looked
        pending = self.external.authorize(charger_id, protocol, id_token, type_)
        if pending is None:
            return looked

        async def later() -> Looked:
            try:
                found = await pending
            except Exception:
                # The outside failing must not fail the charger's message (a TransactionEvent answered with a
                # CALLERROR is sent again and again): nobody vouched, the table's answer stands.
                log.exception("deciding %s at %s outside the id-token table failed", id_token, charger_id)
                return looked
            return looked if found is None else (found, True)

        return later()

    def _lookup16(self, id_tag: str) -> tuple[Authorization, bool]:
        row = self._tokens.get(id_tag)
        return decide(row, self._now()), row is not None

    def _lookup201(self, token: v201.IdTokenType) -> tuple[Authorization, bool]:
        """The decision and whether the table knows the token (of this type)."""
        if token.type == "NoAuthorization":
            return Authorization("Accepted"), True
        row = self._tokens.get(token.id_token)
        known = row is not None and (row.type is None or row.type == token.type)
        return decide(row, self._now(), token.type), known

    def start16(
        self, charger_id: str, connector_id: int, id_tag: str, reservation_id: int | None
    ) -> Authorization | Awaitable[Authorization]:
        """The decision for a 1.6 StartTransaction: the token's, then the charger's reservations (which
        end the one the start uses); an awaitable when the outside is asked. Never raises."""
        looked = self._resolve(charger_id, OCPP16, id_tag, None, self._lookup16(id_tag))

        def then(auth: Authorization, known: bool) -> Authorization:
            if self._reservations is None:
                return auth
            out = self._reservations.at_start(
                charger_id, OCPP16, None, connector_id, id_tag, auth, known, reservation_id
            )
            return auth if out is None else out

        if isinstance(looked, tuple):
            return then(*looked)
        pending = looked

        async def later() -> Authorization:
            return then(*await pending)

        return later()

    def start201(
        self,
        charger_id: str,
        evse_id: int | None,
        connector_id: int | None,
        token: v201.IdTokenType | None,
        reservation_id: int | None,
    ) -> Authorization | Awaitable[Authorization | None] | None:
        """The decision for a 2.0.1 TransactionEvent (not Ended) at `evse_id`: None when it carries no
        idToken; the reservation it names (`reservation_id`) ends either way; an awaitable when the outside is
        asked. Never raises."""

        def then(auth: Authorization | None, known: bool) -> Authorization | None:
            if self._reservations is None:
                return auth
            return self._reservations.at_start(
                charger_id,
                OCPP201,
                evse_id,
                connector_id,
                None if token is None else token.id_token,
                auth,
                known,
                reservation_id,
            )

        if token is None:
            return then(None, False)
        looked = self._resolve(charger_id, OCPP201, token.id_token, token.type, self._lookup201(token))
        if isinstance(looked, tuple):
            return then(*looked)
        pending = looked

        async def later() -> Authorization | None:
            return then(*await pending)

        return later()

    def _authorize16(self, session: Session, req: v16.AuthorizeRequest) -> Any:
        looked = self._resolve(session.charger_id, OCPP16, req.id_tag, None, self._lookup16(req.id_tag))

        def answer(auth: Authorization, known: bool) -> dict[str, Any]:
            if self._reservations is not None:
                auth = self._reservations.at_authorize(session.charger_id, req.id_tag, auth, known)
            info = id_tag_info(auth)
            self._costs.authorize16(session.charger_id, req.id_tag, info)
            return {"idTagInfo": info}

        if isinstance(looked, tuple):
            return answer(*looked)
        pending = looked

        async def later() -> dict[str, Any]:
            return answer(*await pending)

        return later()

    def _authorize201(self, session: Session, req: v201.AuthorizeRequest) -> Any:
        token = req.id_token
        looked = self._resolve(
            session.charger_id, OCPP201, token.id_token, token.type, self._lookup201(token)
        )

        def answer(auth: Authorization, known: bool) -> dict[str, Any]:
            if self._reservations is not None:
                auth = self._reservations.at_authorize(session.charger_id, token.id_token, auth, known)
            info = id_token_info(auth)
            self._costs.authorize201(session.charger_id, token.id_token, info)
            return {"idTokenInfo": info}

        if isinstance(looked, tuple):
            return answer(*looked)
        pending = looked

        async def later() -> dict[str, Any]:
            return answer(*await pending)

        return later()
