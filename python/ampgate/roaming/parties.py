"""The parties we roam with and their credentials tokens: the `ocpi_parties` table.

Token words, by what they do rather than by the spec's letters (which swap with the direction of the handshake):
- the **registration token** (the spec's CREDENTIALS_TOKEN_A when the party registers with us): issued when an
  admin adds the party, shown once, good only for versions, version details and credentials, and forgotten once
  the party registered;
- **our token**: what the party calls us with once registered (TOKEN_C we generated when it registered with us,
  or TOKEN_B we gave it when we registered with it);
- **their token**: what we call the party with (TOKEN_B it gave us, or TOKEN_C it answered us with).

Tokens that let someone in are kept as SHA-256 digests only (256 random bits: nothing to guess, and a lookup
stays an indexed equality on every request); their token is kept as it is, since we must send it.

Writes go through the store's writer thread and are awaited; reads take the reader connection.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.errors import ConflictError, NotFoundError
from ampgate.roaming.types import CredentialsRole, Endpoint
from ampgate.store.store import Store

# A party's states: an admin added it (registration token issued, nothing agreed yet); the handshake completed
# (in either direction); the party (or we) unregistered, so no token of it works any more.
PENDING = "pending"
REGISTERED = "registered"
UNREGISTERED = "unregistered"
# Who started the handshake that registered it.
BY_THEM = "them"
BY_US = "us"

# Credentials tokens we generate: 32 random bytes as URL-safe base64 (43 characters): printable non-whitespace
# ASCII, well within the spec's string(64), and nothing to guess.
TOKEN_BYTES = 32

_COLUMNS = (
    "id, country_code, party_id, role, name, state, registered_by, their_token, versions_url, version,"
    " endpoints, roles, registered_at, created_at, updated_at"
)
_endpoints = msgspec.json.Decoder(list[Endpoint])
_roles = msgspec.json.Decoder(list[CredentialsRole])
_encode = msgspec.json.Encoder().encode


def new_token() -> str:
    """A fresh credentials token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> str:
    """How a token that lets someone in is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Party(msgspec.Struct, frozen=True, kw_only=True):
    """A party as stored. `their_token`, `versions_url`, `version`, `endpoints` and `roles` are set once
    registered (`endpoints`: the modules it offers in the agreed version)."""

    id: int
    country_code: str
    party_id: str
    role: str
    name: str | None
    state: str
    registered_by: str | None
    their_token: str | None
    versions_url: str | None
    version: str | None
    endpoints: tuple[Endpoint, ...]
    roles: tuple[CredentialsRole, ...]
    registered_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def endpoint(self, module: str, role: str) -> str | None:
        """The URL of the party's `module` endpoint implementing interface `role` (SENDER / RECEIVER), if it
        offers one."""
        for e in self.endpoints:
            if e.identifier == module and e.role == role:
                return e.url
        return None


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    """What a completed handshake agreed: the token we call the party with, its versions URL, the version, its
    endpoints and roles."""

    their_token: str
    versions_url: str
    version: str
    endpoints: tuple[Endpoint, ...]
    roles: tuple[CredentialsRole, ...]


def _row(v: tuple[Any, ...]) -> Party:
    created = parse_iso(v[13])
    updated = parse_iso(v[14])
    assert created is not None and updated is not None  # NOT NULL
    return Party(
        id=v[0],
        country_code=v[1],
        party_id=v[2],
        role=v[3],
        name=v[4],
        state=v[5],
        registered_by=v[6],
        their_token=v[7],
        versions_url=v[8],
        version=v[9],
        endpoints=tuple(_endpoints.decode(v[10])) if v[10] else (),
        roles=tuple(_roles.decode(v[11])) if v[11] else (),
        registered_at=parse_iso(v[12]),
        created_at=created,
        updated_at=updated,
    )


def _read(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> Party | None:
    v = conn.execute(f"SELECT {_COLUMNS} FROM ocpi_parties WHERE {where}", args).fetchone()
    return None if v is None else _row(v)


class PartyRepository:
    """The ocpi_parties table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _now(self) -> str:
        return iso_utc(self._store.now())

    # -- reads ---------------------------------------------------------------------------------------------------

    def get(self, party_id: int) -> Party | None:
        return _read(self._store.reader, "id = ?", (party_id,))

    def page(self, limit: int, after: int | None = None) -> list[Party]:
        """Parties in id order, after id `after`."""
        cur = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM ocpi_parties WHERE id > ? ORDER BY id LIMIT ?", (after or 0, limit)
        )
        return [_row(v) for v in cur.fetchall()]

    def registered(self) -> list[Party]:
        """Every registered party (the push targets are among them)."""
        cur = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM ocpi_parties WHERE state = ? ORDER BY id", (REGISTERED,)
        )
        return [_row(v) for v in cur.fetchall()]

    def by_registration_token(self, token: str) -> Party | None:
        """The pending party whose registration token this is."""
        return _read(self._store.reader, "token_a_hash = ? AND state = ?", (digest(token), PENDING))

    def by_token(self, token: str) -> Party | None:
        """The registered party that calls us with this token."""
        return _read(self._store.reader, "our_token_hash = ? AND state = ?", (digest(token), REGISTERED))

    # -- writes --------------------------------------------------------------------------------------------------

    async def create(
        self, country_code: str, party_id: str, role: str, name: str | None
    ) -> tuple[Party, str]:
        """Add a party with a fresh registration token; returns it with the token in plain text, the only time
        it exists so. Raises ConflictError `party_exists` when the country code and party id (compared without
        case, as OCPI's CiString) name a party already."""
        token = new_token()
        at = self._now()

        def op(db: sqlite_utils.Database) -> Party:
            try:
                cur = db.conn.execute(
                    "INSERT INTO ocpi_parties (country_code, party_id, role, name, state, token_a_hash,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (country_code, party_id, role, name, PENDING, digest(token), at, at),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(
                    f"a party {country_code}*{party_id} exists already", field="party_id", code="party_exists"
                ) from None
            party = _read(db.conn, "id = ?", (cur.lastrowid,))
            assert party is not None
            return party

        return await self._store.write(op), token

    async def register(self, party_id: int, registration: Registration, by: str, our_token: str) -> Party:
        """Record a completed handshake: the registration token is forgotten and `our_token` (the one the party
        calls us with from now on) is kept as its digest. Raises NotFoundError when the party was deleted
        meanwhile."""
        at = self._now()

        def op(db: sqlite_utils.Database) -> Party:
            cur = db.conn.execute(
                "UPDATE ocpi_parties SET state = ?, registered_by = ?, token_a_hash = NULL, our_token_hash = ?,"
                " their_token = ?, versions_url = ?, version = ?, endpoints = ?, roles = ?, registered_at = ?,"
                " updated_at = ? WHERE id = ?",
                (
                    REGISTERED,
                    by,
                    digest(our_token),
                    registration.their_token,
                    registration.versions_url,
                    registration.version,
                    _encode(list(registration.endpoints)).decode(),
                    _encode(list(registration.roles)).decode(),
                    at,
                    at,
                    party_id,
                ),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"OCPI party {party_id} does not exist", field="id")
            party = _read(db.conn, "id = ?", (party_id,))
            assert party is not None
            return party

        return await self._store.write(op)

    async def unregister(self, party_id: int) -> Party | None:
        """Forget every token of the party and what was agreed (DELETE on credentials, from either side); the
        party stays, unregistered. None when it does not exist."""
        at = self._now()

        def op(db: sqlite_utils.Database) -> Party | None:
            db.conn.execute(
                "UPDATE ocpi_parties SET state = ?, token_a_hash = NULL, our_token_hash = NULL,"
                " their_token = NULL, endpoints = NULL, updated_at = ? WHERE id = ?",
                (UNREGISTERED, at, party_id),
            )
            return _read(db.conn, "id = ?", (party_id,))

        return await self._store.write(op)

    async def delete(self, party_id: int) -> Party:
        """Remove the party and the Tokens it pushed. Raises NotFoundError."""

        def op(db: sqlite_utils.Database) -> Party:
            party = _read(db.conn, "id = ?", (party_id,))
            if party is None:
                raise NotFoundError(f"OCPI party {party_id} does not exist", field="id")
            db.conn.execute("DELETE FROM ocpi_parties WHERE id = ?", (party_id,))
            # Its Tokens go with it (a party added again starts from nothing); what authorized sessions stays
            # (ocpi_authorizations: it is what their Sessions and CDRs report).
            db.conn.execute("DELETE FROM ocpi_tokens WHERE party_ref = ?", (party_id,))
            return party

        return await self._store.write(op)
