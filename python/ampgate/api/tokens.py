"""/api/v1/tokens: the operator API's own bearer tokens (admin): create one (its secret shown once), list them
(never a secret nor its digest), revoke one. A revoked or expired token is refused (401) from its next request:
the authentication middleware reads the table on every request, there is no cache to wait for."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin
from ampgate.api.deps import TokenRoles
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor
from ampgate.api.schemas import ErrorBody
from ampgate.clock import iso_utc
from ampgate.errors import NotFoundError
from ampgate.store import ApiTokenRow
from ampgate.store.api_tokens import LABEL_MAX

TOKENS_PATH = "/api/v1/tokens"
_NOT_FOUND = {404: ResponseSpec(ErrorBody, description="No such token (`field`: id)")}
TokenId = Annotated[int, Parameter(description="The token's id (from the list or its creation)", ge=1)]


class ApiTokenRead(msgspec.Struct, kw_only=True):
    """An API token as listed: never its secret. `state` is `active`, `expired` or `revoked`."""

    id: int
    role: str
    label: str | None
    state: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    # When it last authenticated a request, to the minute (written at most once a minute per token).
    last_used_at: str | None


class ApiTokenCreated(ApiTokenRead, kw_only=True):
    """The token just created, with its secret: shown this once, only its SHA-256 is stored."""

    token: str


class ApiTokenCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    role: Annotated[str, Meta(description="viewer, operator or admin")]
    label: Annotated[str, Meta(max_length=LABEL_MAX, description="A note: whose, what for")] | None = None
    expires_at: Annotated[
        datetime | None, Meta(description="Refused from this time on (any offset; null: never expires)")
    ] = None


class ApiTokenPage(msgspec.Struct, kw_only=True):
    """One page of tokens in id order; `next_cursor` null on the last."""

    items: list[ApiTokenRead]
    next_cursor: str | None


def token_state(row: ApiTokenRow, now: str) -> str:
    """`revoked`, `expired` (its expiry at or before `now`, both iso_utc text: fixed width, so text order is
    time order) or `active`."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def token_read(row: ApiTokenRow, now: str) -> ApiTokenRead:
    return ApiTokenRead(
        id=row.id,
        role=row.role,
        label=row.label,
        state=token_state(row, now),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class ApiTokenController(Controller):
    path = TOKENS_PATH
    tags = ("tokens",)

    @post(
        "/",
        operation_id="create_api_token",
        guards=[requires_admin],
        status_code=201,
        responses=COMMON_ERRORS,
        summary="Create an API token; its secret is in this answer only (role: admin)",
    )
    async def create_api_token(
        self, api_tokens: NamedDependency[TokenRoles], data: JSONBody[ApiTokenCreate]
    ) -> Response[ApiTokenCreated]:
        """Role: admin. 201 with the token (`token`: the secret, shown this once) and `Location`. Raises 422
        naming `role`, `label` or `expires_at` (in the past, without a zone, or over ten years ahead)."""
        row, secret = await api_tokens.add(data.role, data.label, data.expires_at)
        read = token_read(row, iso_utc(api_tokens.now()))
        created = ApiTokenCreated(**msgspec.structs.asdict(read), token=secret)
        return Response(created, status_code=201, headers={"Location": f"{TOKENS_PATH}/{row.id}"})

    @get(
        "/",
        operation_id="list_api_tokens",
        guards=[requires_admin],
        responses=COMMON_ERRORS,
        summary="API tokens in id order, revoked and expired ones too (role: admin)",
    )
    async def list_api_tokens(
        self, api_tokens: NamedDependency[TokenRoles], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> ApiTokenPage:
        """Role: admin. Tokens with role, label, state, created / expires / revoked / last-used times; never a
        secret. Raises 422 naming `limit` or `cursor`."""
        rows = api_tokens.page(limit + 1, int_cursor(cursor))
        more = len(rows) > limit
        rows = rows[:limit]
        now = iso_utc(api_tokens.now())
        return ApiTokenPage(
            items=[token_read(r, now) for r in rows], next_cursor=str(rows[-1].id) if more else None
        )

    @get(
        "/{id:int}",
        operation_id="get_api_token",
        guards=[requires_admin],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="One API token (role: admin)",
    )
    async def get_api_token(self, api_tokens: NamedDependency[TokenRoles], id: TokenId) -> ApiTokenRead:
        """Role: admin. Token `id`, never its secret; 404 naming `id`."""
        row = api_tokens.get(id)
        if row is None:
            raise NotFoundError(f"no API token {id}", field="id")
        return token_read(row, iso_utc(api_tokens.now()))

    @post(
        "/{id:int}/revoke",
        operation_id="revoke_api_token",
        guards=[requires_admin],
        status_code=200,
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="Revoke an API token: refused (401) from its next request (role: admin)",
    )
    async def revoke_api_token(self, api_tokens: NamedDependency[TokenRoles], id: TokenId) -> ApiTokenRead:
        """Role: admin. Idempotent: a revoked token is answered as it is (its first revocation time). A token may
        revoke itself; `ampgate token create` on the node's database makes a new one. 404 naming `id`."""
        return token_read(await api_tokens.revoke(id), iso_utc(api_tokens.now()))
