"""Registering a charger: the operator's act that lets it connect with its credentials and makes it accepted.
The row is committed, the boot policy accepts it, and every gateway worker knows the credentials before this
returns (so the charger's very next handshake is checked against them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from ampgate.store.chargers import ChargerRow


class ChargerTable(Protocol):
    """The charger repository (`ampgate.store.ChargerRepository`)."""

    async def register(self, cp_id: str, password: str | None, /) -> tuple[ChargerRow, bool]: ...
    def credential(self, cp_id: str, /) -> str | None: ...


class Acceptor(Protocol):
    def accept(self, charger_ids: Iterable[str], /) -> None: ...


PushCredentials = Callable[[list[tuple[str, str]]], Awaitable[None]]
"""Adds or replaces `(charger_id, password hash or "")` on every gateway worker; returns once they applied it."""


class ChargerRegistration:
    """Registers chargers (an admin's act)."""

    def __init__(self, table: ChargerTable, policy: Acceptor, push_credentials: PushCredentials) -> None:
        self._table = table
        self._policy = policy
        self._push = push_credentials

    async def register(self, charger_id: str, password: str | None) -> tuple[ChargerRow, bool]:
        """Register a charger (or replace its password) and make every gateway worker know it before
        returning. Returns `(row, created)`. Raises ampgate.errors.ValidationError naming `id` or `password`."""
        row, created = await self._table.register(charger_id, password)
        self._policy.accept([charger_id])
        await self._push([(charger_id, self._table.credential(charger_id) or "")])
        return row, created
