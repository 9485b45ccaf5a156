"""/api/v1/id-tokens: the tokens chargers present (1.6 idTag, 2.0.1 idToken): create, list, change, delete."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import IdTokenService
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from ampgate.api.schemas import ErrorBody, IdTokenCreate, IdTokenPage, IdTokenRead, IdTokenUpdate
from ampgate.ocpp.id_tokens import validate_id_token
from ampgate.store import IdTokenRow

_ERRORS = COMMON_ERRORS
_NOT_FOUND = {404: ResponseSpec(ErrorBody, description="No such id token")}


def id_token_read(row: IdTokenRow) -> IdTokenRead:
    """The API's view of a stored id token."""
    return IdTokenRead(
        id_token=row.id_token,
        type=row.type,
        status=row.status,
        expiry=row.expiry,
        group=row.group,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class IdTokenController(Controller):
    path = "/api/v1/id-tokens"
    tags = ("id-tokens",)

    @get(
        "/",
        operation_id="list_id_tokens",
        guards=[requires_viewer],
        responses=_ERRORS,
        summary="List id tokens (role: viewer)",
    )
    async def list_id_tokens(
        self,
        id_tokens: NamedDependency[IdTokenService],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> IdTokenPage:
        """Id tokens in id_token order, one page at a time. Raises 422 naming `limit` or `cursor`."""
        after = None if cursor is None else decode_cursor(cursor, validate_id_token)
        rows = id_tokens.page(limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        return IdTokenPage(
            items=[id_token_read(r) for r in rows],
            next_cursor=encode_cursor(rows[-1].id_token) if more else None,
        )

    @post(
        "/",
        operation_id="create_id_token",
        guards=[requires_operator],
        status_code=201,
        responses={**_ERRORS, 409: ResponseSpec(ErrorBody, description="The id token exists")},
        summary="Create an id token (role: operator)",
    )
    async def create_id_token(
        self, id_tokens: NamedDependency[IdTokenService], data: JSONBody[IdTokenCreate]
    ) -> IdTokenRead:
        """Create a token (201). Raises 409 id_token_exists, 422 naming the field."""
        row = await id_tokens.create(
            data.id_token, status=data.status, type=data.type, expiry=data.expiry, group=data.group
        )
        return id_token_read(row)

    @patch(
        "/{id_token:str}",
        operation_id="update_id_token",
        guards=[requires_operator],
        responses={**_ERRORS, **_NOT_FOUND},
        summary="Change an id token's status, expiry, group or type (role: operator)",
    )
    async def update_id_token(
        self,
        id_tokens: NamedDependency[IdTokenService],
        id_token: Annotated[str, Parameter(description="The id token")],
        data: JSONBody[IdTokenUpdate],
    ) -> IdTokenRead:
        """Change the fields present in the body. Raises 404 (field id_token), 422 naming the field."""
        changes = {f: v for f in data.__struct_fields__ if (v := getattr(data, f)) is not msgspec.UNSET}
        return id_token_read(await id_tokens.update(id_token, changes))

    @delete(
        "/{id_token:str}",
        operation_id="delete_id_token",
        guards=[requires_operator],
        status_code=204,
        responses={**_ERRORS, **_NOT_FOUND},
        summary="Delete an id token (role: operator)",
    )
    async def delete_id_token(
        self,
        id_tokens: NamedDependency[IdTokenService],
        id_token: Annotated[str, Parameter(description="The id token")],
    ) -> Response[None]:
        """Delete the token (204): chargers presenting it get Invalid from now on. Raises 404."""
        await id_tokens.delete(id_token)
        return Response(None, status_code=204)
