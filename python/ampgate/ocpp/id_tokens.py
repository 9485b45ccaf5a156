"""Id tokens, the identifiers a driver presents (1.6 idTag; 2.0.1 idToken + type): the rules for their values,
and `IdTokens`, the operator's way to create, change and delete them (checked here, stored by the repository)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, get_args

from ampgate.errors import ValidationError
from ampgate.ocpp.v201 import IdTokenEnumType
from ampgate.store.id_tokens import IdTokenRow

# Statuses an operator may give a token: the 1.6 AuthorizationStatus values, which 2.0.1 also has.
STATUSES: tuple[str, ...] = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
# 2.0.1 IdTokenEnumType, from the generated types (the 1.6 idTag has no type; a token stored without one
# matches any type).
TYPES: tuple[str, ...] = get_args(IdTokenEnumType)
# 1.6 idTag is CiString20, 2.0.1 idToken is identifierString 36: store up to the longer; a 1.6 charger simply
# never presents one longer than 20.
ID_TOKEN_MAX = 36


def validate_id_token(value: str, field: str = "id_token") -> str:
    """Return `value` if it is 1–36 printable characters, else raise ValidationError(field=`field`)."""
    if not isinstance(value, str) or not 1 <= len(value) <= ID_TOKEN_MAX:
        raise ValidationError(f"an id token is 1 to {ID_TOKEN_MAX} characters", field=field)
    if not value.isprintable():
        raise ValidationError("an id token is printable characters only", field=field)
    return value


def validate_status(status: str) -> str:
    """Return `status` if it is one of STATUSES, else raise ValidationError(field="status")."""
    if status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}", field="status")
    return status


def validate_type(type_: str | None) -> str | None:
    """Return `type_` if it is None or one of TYPES, else raise ValidationError(field="type")."""
    if type_ is not None and type_ not in TYPES:
        raise ValidationError(f"type must be one of {', '.join(TYPES)}", field="type")
    return type_


class IdTokenTable(Protocol):
    """The id-token repository (`ampgate.store.IdTokenRepository`)."""

    async def create(
        self, id_token: str, *, status: str, type: str | None, expiry: datetime | None, group: str | None
    ) -> IdTokenRow: ...
    async def update(self, id_token: str, changes: dict[str, Any], /) -> IdTokenRow: ...
    async def delete(self, id_token: str, /) -> None: ...
    def get(self, id_token: str, /) -> IdTokenRow | None: ...
    def page(self, limit: int, after: str | None = None, /) -> list[IdTokenRow]: ...


class IdTokens:
    """The id-token table as an operator changes it: every value checked before it is stored."""

    def __init__(self, table: IdTokenTable) -> None:
        self._table = table

    async def create(
        self,
        id_token: str,
        *,
        status: str,
        type: str | None = None,
        expiry: datetime | None = None,
        group: str | None = None,
    ) -> IdTokenRow:
        """Create an id token and return it as committed. Raises ValidationError naming `id_token`, `type`,
        `status`, `expiry` or `group`; ConflictError(field="id_token") if it exists (case-insensitively)."""
        validate_id_token(id_token)
        validate_type(type)
        validate_status(status)
        if group is not None:
            validate_id_token(group, "group")
        return await self._table.create(id_token, status=status, type=type, expiry=expiry, group=group)

    async def update(self, id_token: str, changes: dict[str, Any]) -> IdTokenRow:
        """Change `status`, `expiry`, `group` or `type` (keys of `changes`; a None value clears expiry, group
        or type). Raises ValidationError naming the field, NotFoundError(field="id_token")."""
        for key, value in changes.items():
            if key == "status":
                validate_status(value)
            elif key == "group" and value is not None:
                validate_id_token(value, "group")
            elif key == "type":
                validate_type(value)
        return await self._table.update(id_token, changes)

    async def delete(self, id_token: str) -> None:
        """Delete an id token. Raises NotFoundError(field="id_token") if there is none."""
        await self._table.delete(id_token)

    def get(self, id_token: str) -> IdTokenRow | None:
        return self._table.get(id_token)

    def page(self, limit: int, after: str | None = None) -> list[IdTokenRow]:
        """Up to `limit` id tokens in id_token order, after `after`."""
        return self._table.page(limit, after)
