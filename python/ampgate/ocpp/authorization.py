"""Authorize, for both protocol versions, answered from the id-token table (no cache: an operator's change
applies to the next message), and the decision itself.

Unknown token: Invalid. Past its expiry: Expired. Else its stored status (Accepted, Blocked, Invalid,
ConcurrentTx, Expired). A 2.0.1 token of type NoAuthorization is Accepted without a lookup: it means the
station needs none (e.g. a free-vend connector), and there is nothing to look up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import msgspec

from ampgate.clock import iso_utc
from ampgate.ocpp import v16, v201
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.store.id_tokens import IdTokenRow

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


class Authorizer:
    """The node's answer to presented tokens, and its Authorize handlers. `now` gives the time expiries are
    judged against."""

    def __init__(self, tokens: IdTokenLookup, now: Callable[[], datetime]) -> None:
        self._tokens = tokens
        self._now = now

    def register(self, router: OcppRouter) -> None:
        """Handle Authorize in both versions."""
        router.register(OCPP16, "Authorize", self._authorize16)
        router.register(OCPP201, "Authorize", self._authorize201)

    def check16(self, id_tag: str) -> Authorization:
        """The decision for a 1.6 idTag. Never raises."""
        return decide(self._tokens.get(id_tag), self._now())

    def check201(self, token: v201.IdTokenType) -> Authorization:
        """The decision for a 2.0.1 idToken (matching its type when the stored token has one)."""
        if token.type == "NoAuthorization":
            return Authorization("Accepted")
        return decide(self._tokens.get(token.id_token), self._now(), token.type)

    def _authorize16(self, session: Session, req: v16.AuthorizeRequest) -> dict[str, Any]:
        return {"idTagInfo": id_tag_info(self.check16(req.id_tag))}

    def _authorize201(self, session: Session, req: v201.AuthorizeRequest) -> dict[str, Any]:
        return {"idTokenInfo": id_token_info(self.check201(req.id_token))}
