"""The tables of the Tokens module and of what authorized a roaming session: `ocpi_tokens` (the Tokens eMSPs
pushed, `PartyTokenRepository`) and `ocpi_authorizations` (`AuthorizationRepository`).

An **authorization** is one eMSP token let in at one of our chargers: by the whitelist, by the eMSP's answer to a
real-time authorization, or by a START_SESSION / RESERVE_NOW command carrying the token. It holds the token as
it was then, the eMSP that owns it, how it was authorized (OCPI's AuthMethod), the eMSP's
`authorization_reference`, and, once a transaction used it, the transaction's id. It is the seam the Sessions and
CDR modules read: `for_transaction(tx_id)` answers which token, which eMSP and which reference a session reports.

Writes go through the store's writer thread and are awaited; reads take the reader connection.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.roaming.parties import REGISTERED
from ampgate.roaming.types import AuthMethod, Token
from ampgate.store.store import Store

_token_json = msgspec.json.Decoder(Token)
_encode = msgspec.json.Encoder().encode


def as_utc(at: datetime) -> datetime:
    """`at` aware, in UTC: OCPI reads a time without a zone as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def normalized(token: Token) -> Token:
    """`token` as stored: its last_updated in UTC."""
    return msgspec.structs.replace(token, last_updated=as_utc(token.last_updated))


# -- ocpi_tokens ---------------------------------------------------------------------------------------------------


class StoredToken(msgspec.Struct, frozen=True, kw_only=True):
    """A Token as an eMSP pushed it, and which party pushed it (`party_ref`, an ocpi_parties id)."""

    party_ref: int
    token: Token
    received_at: datetime


_TOKEN_COLUMNS = "party_ref, token, received_at"


def _stored(v: tuple[Any, ...]) -> StoredToken:
    received = parse_iso(v[2])
    assert received is not None  # NOT NULL
    return StoredToken(party_ref=v[0], token=_token_json.decode(v[1]), received_at=received)


def _read_token(
    conn: sqlite3.Connection, country_code: str, party_id: str, uid: str, type_: str
) -> StoredToken | None:
    v = conn.execute(
        f"SELECT {_TOKEN_COLUMNS} FROM ocpi_tokens WHERE country_code = ? AND party_id = ? AND uid = ?"
        " AND type = ?",
        (country_code, party_id, uid, type_),
    ).fetchone()
    return None if v is None else _stored(v)


class PartyTokenRepository:
    """The ocpi_tokens table. Owners (country code, party id) and uids compare without case (CiString)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, country_code: str, party_id: str, uid: str, type_: str) -> StoredToken | None:
        return _read_token(self._store.reader, country_code, party_id, uid, type_)

    def find(self, uid: str) -> list[StoredToken]:
        """Every Token with this uid (any owner, any type) pushed by a party that is registered now, newest
        first: a party that unregistered (or was deleted) vouches for nothing."""
        cur = self._store.reader.execute(
            "SELECT t.party_ref, t.token, t.received_at FROM ocpi_tokens t JOIN ocpi_parties p"
            " ON p.id = t.party_ref WHERE t.uid = ? AND p.state = ? ORDER BY t.last_updated DESC",
            (uid, REGISTERED),
        )
        return [_stored(v) for v in cur.fetchall()]

    def count(self, party_ref: int) -> int:
        row = self._store.reader.execute(
            "SELECT count(*) FROM ocpi_tokens WHERE party_ref = ?", (party_ref,)
        ).fetchone()
        return int(row[0])

    async def put(self, party_ref: int, token: Token) -> bool:
        """Store `token` (pushed by party `party_ref`), replacing the one with its owner, uid and type; True when
        it is new."""
        token = normalized(token)
        at = iso_utc(self._store.now())
        body = _encode(token)

        def op(db: sqlite_utils.Database) -> bool:
            key = (token.country_code, token.party_id, token.uid, token.type.value)
            existed = _read_token(db.conn, *key) is not None
            db.conn.execute(
                "INSERT INTO ocpi_tokens (country_code, party_id, uid, type, party_ref, valid, whitelist, token,"
                " last_updated, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (country_code, party_id, uid, type) DO UPDATE SET party_ref = excluded.party_ref,"
                " valid = excluded.valid, whitelist = excluded.whitelist, token = excluded.token,"
                " last_updated = excluded.last_updated, received_at = excluded.received_at",
                (
                    *key,
                    party_ref,
                    int(token.valid),
                    token.whitelist.value,
                    body,
                    iso_utc(token.last_updated),
                    at,
                ),
            )
            return not existed

        return await self._store.write(op)


# -- ocpi_authorizations -------------------------------------------------------------------------------------------


class NewAuthorization(msgspec.Struct, frozen=True, kw_only=True):
    """An authorization about to be recorded (see the module docstring). `command`, `response_url`,
    `reservation_id` are set for one a command made (the reservation's: the eMSP's id)."""

    charger_id: str
    party_ref: int
    token: Token
    auth_method: AuthMethod
    expires_at: datetime
    authorization_reference: str | None = None
    location_id: str | None = None
    evse_uid: str | None = None
    command: str | None = None
    response_url: str | None = None
    reservation_id: str | None = None


class AuthorizationRow(msgspec.Struct, frozen=True, kw_only=True):
    """One authorization as stored. `expires_at`: until then it lets the token in at the charger without
    asking again; `transaction_id`: the transaction that used it (None until one did); `reservation_ref`: our
    reservation id, for one a RESERVE_NOW made."""

    id: int
    charger_id: str
    party_ref: int
    token: Token
    auth_method: AuthMethod
    authorization_reference: str | None
    location_id: str | None
    evse_uid: str | None
    command: str | None
    response_url: str | None
    reservation_id: str | None
    reservation_ref: int | None
    transaction_id: int | None
    created_at: datetime
    expires_at: datetime

    @property
    def uid(self) -> str:
        return self.token.uid


_AUTH_COLUMNS = (
    "id, charger_id, party_ref, token, auth_method, authorization_reference, location_id, evse_uid, command,"
    " response_url, reservation_id, reservation_ref, transaction_id, created_at, expires_at"
)


def _authorization(v: tuple[Any, ...]) -> AuthorizationRow:
    created, expires = parse_iso(v[13]), parse_iso(v[14])
    assert created is not None and expires is not None  # NOT NULL
    return AuthorizationRow(
        id=v[0],
        charger_id=v[1],
        party_ref=v[2],
        token=_token_json.decode(v[3]),
        auth_method=AuthMethod(v[4]),
        authorization_reference=v[5],
        location_id=v[6],
        evse_uid=v[7],
        command=v[8],
        response_url=v[9],
        reservation_id=v[10],
        reservation_ref=v[11],
        transaction_id=v[12],
        created_at=created,
        expires_at=expires,
    )


def _read_authorization(
    conn: sqlite3.Connection, where: str, args: tuple[Any, ...]
) -> AuthorizationRow | None:
    v = conn.execute(
        f"SELECT {_AUTH_COLUMNS} FROM ocpi_authorizations WHERE {where} ORDER BY id DESC LIMIT 1", args
    ).fetchone()
    return None if v is None else _authorization(v)


class AuthorizationRepository:
    """The ocpi_authorizations table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def insert(self, new: NewAuthorization) -> AuthorizationRow:
        """Record an authorization; returns it as stored."""
        token = normalized(new.token)
        at = iso_utc(self._store.now())

        def op(db: sqlite_utils.Database) -> AuthorizationRow:
            cur = db.conn.execute(
                "INSERT INTO ocpi_authorizations (charger_id, uid, token_type, party_ref, country_code, party_id,"
                " token, auth_method, authorization_reference, location_id, evse_uid, command, response_url,"
                " reservation_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.charger_id,
                    token.uid,
                    token.type.value,
                    new.party_ref,
                    token.country_code,
                    token.party_id,
                    _encode(token),
                    new.auth_method.value,
                    new.authorization_reference,
                    new.location_id,
                    new.evse_uid,
                    new.command,
                    new.response_url,
                    new.reservation_id,
                    at,
                    iso_utc(new.expires_at),
                ),
            )
            row = _read_authorization(db.conn, "id = ?", (cur.lastrowid,))
            assert row is not None
            return row

        return await self._store.write(op)

    def get(self, ref: int) -> AuthorizationRow | None:
        return _read_authorization(self._store.reader, "id = ?", (ref,))

    def live(self, now: datetime) -> list[AuthorizationRow]:
        """Every authorization no transaction used yet whose time has not passed, oldest first."""
        cur = self._store.reader.execute(
            f"SELECT {_AUTH_COLUMNS} FROM ocpi_authorizations WHERE transaction_id IS NULL AND expires_at > ?"
            " ORDER BY id",
            (iso_utc(now),),
        )
        return [_authorization(v) for v in cur.fetchall()]

    def for_transaction(self, tx_id: int) -> AuthorizationRow | None:
        """The authorization transaction `tx_id` used (the node's transaction id), or None: the Sessions and
        CDR modules' question (which token, which eMSP, which authorization_reference)."""
        return _read_authorization(self._store.reader, "transaction_id = ?", (tx_id,))

    def by_reservation(self, party_ref: int, reservation_id: str) -> AuthorizationRow | None:
        """The latest RESERVE_NOW of party `party_ref` with its `reservation_id` (compared without case)."""
        return _read_authorization(
            self._store.reader, "party_ref = ? AND reservation_id = ?", (party_ref, reservation_id)
        )

    def by_reservation_ref(self, reservation_ref: int) -> AuthorizationRow | None:
        """The RESERVE_NOW that made our reservation `reservation_ref`."""
        return _read_authorization(self._store.reader, "reservation_ref = ?", (reservation_ref,))

    async def bind(self, ref: int, tx_id: int) -> bool:
        """Record that transaction `tx_id` used authorization `ref`; False when either was bound already."""

        def op(db: sqlite_utils.Database) -> bool:
            try:
                cur = db.conn.execute(
                    "UPDATE ocpi_authorizations SET transaction_id = ? WHERE id = ? AND transaction_id IS NULL",
                    (tx_id, ref),
                )
            except sqlite3.IntegrityError:
                return False  # the transaction has an authorization already
            return cur.rowcount == 1

        return await self._store.write(op)

    async def set_reservation(self, ref: int, reservation_ref: int | None) -> None:
        """Record our reservation id for the RESERVE_NOW authorization `ref`."""
        await self._store.write(
            lambda db: db.conn.execute(
                "UPDATE ocpi_authorizations SET reservation_ref = ? WHERE id = ?", (reservation_ref, ref)
            )
        )

    async def prune(self, before: datetime) -> int:
        """Forget authorizations no transaction used whose time ended before `before` (nothing reports them);
        those a transaction used stay with it. Returns how many went."""
        cut = iso_utc(before)
        return await self._store.write(
            lambda db: (
                db.conn.execute(
                    "DELETE FROM ocpi_authorizations WHERE transaction_id IS NULL AND expires_at < ?", (cut,)
                ).rowcount
            )
        )
