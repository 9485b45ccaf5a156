"""Registering a charger: the operator's act that lets it connect with its credentials and makes it accepted.
The row is committed, the boot policy accepts it, and every gateway worker knows the credentials before this
returns (so the charger's very next handshake is checked against them).

Also which charger ids the node knows (`KnownChargers`): registered, or recorded at a boot. An unknown id
gets no row until it boots; its first boot makes it known to the gateway workers too, so its later
connections are no longer charged to the rate of new unknown ids."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from ampgate.store.chargers import ChargerRow, normalize_charger_id
from ampgate.store.hashing import verify_password


class ChargerTable(Protocol):
    """The charger repository (`ampgate.store.ChargerRepository`)."""

    async def register(
        self, cp_id: str, password: str | None, /, *, keep_password: bool = False
    ) -> tuple[ChargerRow, bool]: ...
    def credential(self, cp_id: str, /) -> str | None: ...
    def security_profile(self, cp_id: str, /) -> int: ...
    async def set_security_profile(self, cp_id: str, profile: int, /) -> ChargerRow: ...


class Acceptor(Protocol):
    def accept(self, charger_ids: Iterable[str], /) -> None: ...


DropConnection = Callable[[str], object]
"""Closes the charger's live connection, if it has one (`LinkTracker.drop` with the credentials-changed reason)."""

PushCredentials = Callable[[list[tuple[str, str, int]]], Awaitable[None]]
"""Adds or replaces `(charger_id, password hash or "", lowest security profile)` on every gateway worker;
returns once they applied it."""

ConnectionProfile = Callable[[str], "int | None"]
"""The security profile of the charger's live connection, None when it is not connected."""


class ChargerRegistration:
    """Registers chargers (an admin's act)."""

    def __init__(
        self,
        table: ChargerTable,
        policy: Acceptor,
        push_credentials: PushCredentials,
        drop_connection: DropConnection | None = None,
        connection_profile: ConnectionProfile | None = None,
    ) -> None:
        self._table = table
        self._policy = policy
        self._push = push_credentials
        self._drop = drop_connection
        self._connection_profile = connection_profile

    async def register(
        self, charger_id: str, password: str | None, *, keep_password: bool = False
    ) -> tuple[ChargerRow, bool]:
        """Register a charger (or replace its password; `keep_password`: leave an existing one as it is, and
        create a new charger without one) and make every gateway worker know it before returning. Returns
        `(row, created)`. Raises ampgate.errors.ValidationError naming `id` or `password`.

        When the credentials changed, the charger's live connection (which authenticated with the old ones, or
        with none as an unknown charger) is closed once every worker knows the new ones, so its next handshake
        is checked against them. Credentials that did not change (the same password again, or none kept)
        leave the connection alone."""
        charger_id = normalize_charger_id(charger_id)
        before = self._table.credential(charger_id)
        row, created = await self._table.register(charger_id, password, keep_password=keep_password)
        self._policy.accept([charger_id])
        await self._push(self._entry(charger_id))
        if self._drop is not None and _changed(before, password, keep_password):
            self._drop(charger_id)
        return row, created

    async def set_security_profile(self, charger_id: str, profile: int) -> ChargerRow:
        """Set the lowest OCPP security profile registered charger `charger_id` may connect with (1 plain ws,
        2 TLS, 3 TLS with a client certificate) and make every gateway worker enforce it before returning. A
        live connection below the new profile is closed: its next handshake must meet it. Raises
        ValidationError(field="security_profile") and NotFoundError(field="id")."""
        charger_id = normalize_charger_id(charger_id)
        row = await self._table.set_security_profile(charger_id, profile)
        await self._push(self._entry(charger_id))
        live = None if self._connection_profile is None else self._connection_profile(charger_id)
        if self._drop is not None and live is not None and live < profile:
            self._drop(charger_id)
        return row

    def _entry(self, charger_id: str) -> list[tuple[str, str, int]]:
        table = self._table
        return [(charger_id, table.credential(charger_id) or "", table.security_profile(charger_id))]


def _changed(before: str | None, password: str | None, keep_password: bool) -> bool:
    """Whether registering with `password` changes the credentials a connection authenticated with when the
    stored hash was `before` (None: no password, or no such charger)."""
    if keep_password:
        return False
    if password is None:
        return before is not None
    return before is None or not verify_password(password, before)


class AcceptedIds(Protocol):
    """The boot policy's accepted chargers (`ampgate.ocpp.boot_policy.BootPolicy`)."""

    def is_accepted(self, charger_id: str, /) -> bool: ...


class ChargerRows(Protocol):
    """The charger repository's indexed existence check."""

    def exists(self, cp_id: str, /) -> bool: ...


AuthSet = Callable[[list[tuple[str, str, int]]], object]
"""Adds `(charger_id, password hash or "", lowest security profile)` to every gateway worker's handshake
table, without waiting."""


class KnownChargers:
    """Whether the node knows a charger id (registered, or recorded at a boot), and what an unknown charger's
    first boot changes. `known` is the accepted set (O(1)), else one indexed read of the committed rows."""

    def __init__(self, accepted: AcceptedIds, rows: ChargerRows, auth_set: AuthSet) -> None:
        self._accepted = accepted
        self._rows = rows
        self._auth_set = auth_set

    def known(self, charger_id: str) -> bool:
        return self._accepted.is_accepted(charger_id) or self._rows.exists(charger_id)

    def first_boot(self, charger_id: str) -> None:
        """Charger `charger_id`, connected as unknown, boots and is about to be recorded (call before its boot
        record is queued, so the check below sees only committed rows of others' doing): from now on the
        workers know it, without a password, so its reconnects are not charged to the rate of new unknown ids.
        A charger registered meanwhile is left alone: its registration pushed its credentials already, and
        an empty entry must never replace a password."""
        if not self.known(charger_id):
            self._auth_set([(charger_id, "", 1)])
