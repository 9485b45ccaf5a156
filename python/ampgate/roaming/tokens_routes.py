"""The Tokens module, Receiver interface (mod_tokens): eMSPs push their Tokens with PUT and PATCH under
`/ocpi/2.2.1/tokens/{country_code}/{party_id}/{token_uid}[?type=…]` and read them back with GET. Registered
parties only.

Tokens are Client Owned Objects (transport_and_format): the URL names the owner, which must be one of the
caller's credentials roles (else HTTP 404, which the spec allows "to block access to objects that do not belong
to them"); the object pushed must carry the owner, uid and type the URL names (else 2001 naming the field).
`type` defaults to RFID. PUT answers HTTP 201 for a new Token and 200 for a replaced one (status_codes); PATCH
must carry `last_updated` (2001) and changes the fields present, the result checked as a whole Token; a PATCH or
GET of a Token we do not hold is HTTP 404 with status 2004 (unknown token).
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec
from litestar import Request, Response, get, patch, put
from litestar.di import NamedDependency

from ampgate.roaming.credentials import Caller
from ampgate.roaming.errors import OcpiError, invalid
from ampgate.roaming.server import VERSION_PATH, Module, OcpiContext, answer, body_of, caller
from ampgate.roaming.token_rows import PartyTokenRepository
from ampgate.roaming.types import (
    InterfaceRole,
    MalformedObject,
    ModuleId,
    StatusCode,
    Token,
    TokenPatch,
    TokenType,
    decode,
)

PATH = "tokens"
_OBJECT = f"{VERSION_PATH}/{PATH}/{{country_code:str}}/{{party_id:str}}/{{token_uid:str}}"


class TokensContext(OcpiContext, Protocol):
    """`ampgate.roaming.Roaming`: its party tokens."""

    @property
    def party_tokens(self) -> PartyTokenRepository: ...


def _owner(who: Caller, country_code: str, party_id: str) -> None:
    if not who.owns(country_code, party_id):
        raise OcpiError(
            f"{country_code}*{party_id} is not one of your credentials roles",
            status_code=StatusCode.CLIENT_ERROR,
            http_status=404,
        )


def _type(request: Request[Any, Any, Any]) -> TokenType:
    text = request.query_params.get("type")
    if text is None:
        return TokenType.RFID
    try:
        return TokenType(text)
    except ValueError:
        raise invalid(f"type is one of {', '.join(t.value for t in TokenType)}", "type") from None


def _unknown(uid: str, type_: TokenType) -> OcpiError:
    return OcpiError(f"no {type_.value} token {uid!r}", status_code=StatusCode.UNKNOWN_TOKEN, http_status=404)


def _same(token: Token, country_code: str, party_id: str, uid: str, type_: TokenType) -> None:
    """The pushed Token must be the one the URL names. Raises OcpiError 2001 naming the field that differs."""
    for field, ours, theirs in (
        ("country_code", country_code, token.country_code),
        ("party_id", party_id, token.party_id),
        ("uid", uid, token.uid),
    ):
        if ours.upper() != theirs.upper():
            raise invalid(f"{field} {theirs!r} is not the {ours!r} of the URL", field)
    if token.type != type_:
        raise invalid(f"type {token.type.value} is not the {type_.value} of the URL (default RFID)", "type")


@get(_OBJECT, operation_id="ocpi_token_get", summary="A Token as we hold it")
async def get_token(
    request: Request[Any, Any, Any],
    ocpi: NamedDependency[TokensContext],
    country_code: str,
    party_id: str,
    token_uid: str,
) -> Response[bytes]:
    who = caller(request, ocpi)
    _owner(who, country_code, party_id)
    type_ = _type(request)
    stored = ocpi.party_tokens.get(country_code, party_id, token_uid, type_.value)
    if stored is None:
        raise _unknown(token_uid, type_)
    return answer(request, stored.token, caller=who)


@put(_OBJECT, operation_id="ocpi_token_put", status_code=200, summary="Push a new or replaced Token")
async def put_token(
    request: Request[Any, Any, Any],
    ocpi: NamedDependency[TokensContext],
    country_code: str,
    party_id: str,
    token_uid: str,
) -> Response[bytes]:
    who = caller(request, ocpi)
    _owner(who, country_code, party_id)
    type_ = _type(request)
    token = await body_of(request, Token)
    _same(token, country_code, party_id, token_uid, type_)
    created = await ocpi.party_tokens.put(who.party.id, token)
    return answer(request, http_status=201 if created else 200, caller=who)


@patch(_OBJECT, operation_id="ocpi_token_patch", summary="Change some fields of a Token")
async def patch_token(
    request: Request[Any, Any, Any],
    ocpi: NamedDependency[TokensContext],
    country_code: str,
    party_id: str,
    token_uid: str,
) -> Response[bytes]:
    who = caller(request, ocpi)
    _owner(who, country_code, party_id)
    type_ = _type(request)
    await body_of(request, TokenPatch)  # 400 / 2001 naming the field (last_updated is required)
    changes = msgspec.json.decode(await request.body())
    stored = ocpi.party_tokens.get(country_code, party_id, token_uid, type_.value)
    if stored is None:
        raise _unknown(token_uid, type_)
    merged = msgspec.to_builtins(stored.token) | changes
    try:
        token = decode(msgspec.json.encode(merged), Token)
    except MalformedObject as e:
        raise invalid(e.message, e.field) from None
    _same(token, country_code, party_id, token_uid, type_)
    await ocpi.party_tokens.put(who.party.id, token)
    return answer(request, caller=who)


TOKENS = Module(
    identifier=ModuleId.TOKENS,
    role=InterfaceRole.RECEIVER,
    path=PATH,
    handlers=(get_token, put_token, patch_token),
)
