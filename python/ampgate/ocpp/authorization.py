"""Authorize, for both protocol versions, answered from the store's id-token table (no cache: an operator's
change applies to the next message).

Unknown token: Invalid. Past its expiry: Expired. Else its stored status (Accepted, Blocked, Invalid,
ConcurrentTx, Expired). A 2.0.1 token of type NoAuthorization is Accepted without a lookup: it means the
station needs none (e.g. a free-vend connector), and there is nothing to look up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ampgate.ocpp import v16, v201
from ampgate.ocpp.rpc import OCPP16, OCPP201
from ampgate.store.id_tokens import Authorization
from ampgate.store.schema import iso_utc

if TYPE_CHECKING:
    from ampgate.node import Node
    from ampgate.ocpp.router import OcppRouter, Session

# 2.0.1 groupIdToken needs a type; a group is the operator's own grouping, known to the central system.
GROUP_TOKEN_TYPE = "Central"


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


class Authorizer:
    """The node's answer to presented tokens, and its Authorize handlers."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def register(self, router: OcppRouter) -> None:
        """Handle Authorize in both versions."""
        router.register(OCPP16, "Authorize", self._authorize16)
        router.register(OCPP201, "Authorize", self._authorize201)

    def check16(self, id_tag: str) -> Authorization:
        """The decision for a 1.6 idTag. Never raises."""
        return self._node.store.authorize(id_tag)

    def check201(self, token: v201.IdTokenType) -> Authorization:
        """The decision for a 2.0.1 idToken (matching its type when the stored token has one)."""
        if token.type == "NoAuthorization":
            return Authorization("Accepted")
        return self._node.store.authorize(token.id_token, token.type)

    def _authorize16(self, session: Session, req: v16.AuthorizeRequest) -> dict[str, Any]:
        return {"idTagInfo": id_tag_info(self.check16(req.id_tag))}

    def _authorize201(self, session: Session, req: v201.AuthorizeRequest) -> dict[str, Any]:
        return {"idTokenInfo": id_token_info(self.check201(req.id_token))}
