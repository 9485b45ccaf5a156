"""Tariffs as the operator keeps them, and which one a session gets.

`TariffRepository` owns the `tariffs` table (each tariff as its OCPI JSON) and `tariff_assignments` (scope
charger | site | id_token_group | default). `Tariffs` is the operator's service over them and the node's
`TariffLookup`: it keeps every tariff (compiled once) and every assignment in memory, being their only
writer, so resolving a session's tariff reads no table but the id token's group.

Resolution, most specific first: the id token's group tariff, then the charger's, then its site's, then the
default. A tariff outside its own `start_date_time` / `end_date_time` at the instant asked about is skipped, and
the next level decides (`resolve`).

Changes publish `tariff.changed` (created, updated, deleted) and `tariff.assigned`; the OCPI locations book
follows them, since what a session without a group gets (`ad_hoc_tariff_id`) is what OCPI's connectors name. A
tariff cannot be deleted while an assignment names it or an open session uses it (409 `tariff_in_use`):
sessions keep the tariff they started with (a snapshot), so replacing a tariff never reprices one, but deleting
the one a session will be billed by would leave its CDR pointing at nothing.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec
import sqlite_utils

from ampgate.bus import Publisher
from ampgate.clock import Clock, iso_utc, parse_iso
from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.events import TariffAssigned, TariffChanged
from ampgate.pricing import CompiledTariff, Tariff, compile_tariff
from ampgate.store.store import Store

__all__ = [
    "SCOPES",
    "Assignment",
    "Resolution",
    "Scope",
    "TariffRepository",
    "TariffRow",
    "Tariffs",
    "decode_tariff",
    "encode_tariff",
    "resolve",
]

Scope = Literal["id_token_group", "charger", "site", "default"]
# The order in which assignments decide a session's tariff: the most specific first.
SCOPES: tuple[Scope, ...] = ("id_token_group", "charger", "site", "default")
# An id-token group as OCPP carries it (2.0.1 groupIdToken idToken: at most 36 characters).
MAX_GROUP = 36

# Decimals as JSON numbers (exact: msgspec writes a Decimal's digits), as on the wire.
_encoder = msgspec.json.Encoder(decimal_format="number")


def encode_tariff(tariff: Tariff) -> str:
    """A tariff as stored (and as a CDR's snapshot): its OCPI JSON."""
    return _encoder.encode(tariff).decode()


def decode_tariff(text: str) -> Tariff:
    """A stored tariff back."""
    return msgspec.json.decode(text, type=Tariff)


class TariffRow(msgspec.Struct, frozen=True, kw_only=True):
    """A tariff as stored."""

    tariff: Tariff
    created_at: datetime
    updated_at: datetime

    @property
    def id(self) -> str:
        return self.tariff.id


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """What a scope's subject is assigned (`tariff_id` None: nothing), and since when."""

    scope: Scope
    subject: str | None
    tariff_id: str | None
    updated_at: datetime | None


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    """The tariff a session gets, and the scope that decided it."""

    tariff: Tariff
    compiled: CompiledTariff
    scope: Scope


def _at(text: str) -> datetime:
    at = parse_iso(text)
    assert at is not None
    return at


# -- the tables -------------------------------------------------------------------------------------------------


def _upsert_tariff(db: sqlite_utils.Database, tariff: Tariff, at: str, create: bool) -> TariffRow:
    conn = db.conn
    found = conn.execute("SELECT created_at FROM tariffs WHERE id = ?", (tariff.id,)).fetchone()
    if create and found is not None:
        raise ConflictError(f"tariff {tariff.id!r} exists", field="id", code="tariff_exists")
    if not create and found is None:
        raise NotFoundError(f"tariff {tariff.id!r} does not exist", field="id")
    created = at if found is None else found[0]
    conn.execute(
        "INSERT INTO tariffs (id, currency, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET currency = excluded.currency, body = excluded.body,"
        " updated_at = excluded.updated_at",
        (tariff.id, tariff.currency, encode_tariff(tariff), created, at),
    )
    return TariffRow(tariff=tariff, created_at=_at(created), updated_at=_at(at))


def _delete_tariff(db: sqlite_utils.Database, tariff_id: str, stale: list[tuple[str, str]]) -> None:
    conn = db.conn
    if conn.execute("DELETE FROM tariffs WHERE id = ?", (tariff_id,)).rowcount == 0:
        raise NotFoundError(f"tariff {tariff_id!r} does not exist", field="id")
    # Assignments to chargers or sites deleted since: they named this tariff for nobody.
    conn.executemany("DELETE FROM tariff_assignments WHERE scope = ? AND subject = ?", stale)


def _assign(db: sqlite_utils.Database, scope: str, subject: str, tariff_id: str | None, at: str) -> None:
    if tariff_id is None:
        db.conn.execute("DELETE FROM tariff_assignments WHERE scope = ? AND subject = ?", (scope, subject))
        return
    if db.conn.execute("SELECT 1 FROM tariffs WHERE id = ?", (tariff_id,)).fetchone() is None:
        # Deleted between the service's check and this write.
        raise ValidationError(f"tariff {tariff_id!r} does not exist", field="tariff_id")
    db.conn.execute(
        "INSERT OR REPLACE INTO tariff_assignments (scope, subject, tariff_id, updated_at) VALUES (?, ?, ?, ?)",
        (scope, subject, tariff_id, at),
    )


def _read_rows(conn: sqlite3.Connection) -> list[TariffRow]:
    cur = conn.execute("SELECT body, created_at, updated_at FROM tariffs ORDER BY id")
    return [TariffRow(tariff=decode_tariff(b), created_at=_at(c), updated_at=_at(u)) for b, c, u in cur]


class TariffRepository:
    """The `tariffs` and `tariff_assignments` tables. Writes wait for their commit (an operator's change)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def now(self) -> str:
        return iso_utc(self._store.now())

    async def put(self, tariff: Tariff, *, create: bool) -> TariffRow:
        """Create (`create`: ConflictError tariff_exists if it exists) or replace (NotFoundError if it does
        not) a tariff."""
        return await self._store.write(
            functools.partial(_upsert_tariff, tariff=tariff, at=self.now(), create=create)
        )

    async def delete(self, tariff_id: str, stale: list[tuple[str, str]]) -> None:
        """Delete a tariff and the `stale` assignments (scope, subject) naming it. NotFoundError if none."""
        await self._store.write(functools.partial(_delete_tariff, tariff_id=tariff_id, stale=stale))

    async def assign(self, scope: Scope, subject: str, tariff_id: str | None) -> str:
        """Set (or with None remove) the assignment; returns its time. ValidationError(field tariff_id) when
        the tariff does not exist."""
        at = self.now()
        await self._store.write(
            functools.partial(_assign, scope=scope, subject=subject, tariff_id=tariff_id, at=at)
        )
        return at

    def rows(self) -> list[TariffRow]:
        """Every tariff, by id."""
        return _read_rows(self._store.reader)

    def assignments(self) -> list[tuple[str, str, str, str]]:
        """Every assignment as (scope, subject, tariff id, updated_at)."""
        cur = self._store.reader.execute(
            "SELECT scope, subject, tariff_id, updated_at FROM tariff_assignments"
        )
        return [tuple(v) for v in cur.fetchall()]


# -- resolution (pure) -----------------------------------------------------------------------------------------


def _valid(tariff: Tariff, at: datetime | None) -> bool:
    if at is None:
        return True
    if tariff.start_date_time is not None and at < tariff.start_date_time:
        return False
    return tariff.end_date_time is None or at < tariff.end_date_time


def resolve(
    assignments: Mapping[tuple[str, str], str],
    tariffs: Mapping[str, Tariff],
    *,
    group: str | None,
    charger_id: str,
    site_id: str | None,
    at: datetime | None = None,
) -> tuple[str, Scope] | None:
    """The tariff id and deciding scope for a session of `charger_id` (at `site_id`, by a token of `group`),
    most specific first: id-token group, charger, site, default. An assignment naming a tariff that does not
    exist, or one not valid at `at` (its start/end_date_time), is passed over. None: no tariff applies."""
    subjects: dict[Scope, str | None] = {
        "id_token_group": group,
        "charger": charger_id,
        "site": site_id,
        "default": "",
    }
    for scope in SCOPES:
        subject = subjects[scope]
        if subject is None:
            continue
        tariff_id = assignments.get((scope, subject))
        if tariff_id is None:
            continue
        tariff = tariffs.get(tariff_id)
        if tariff is not None and _valid(tariff, at):
            return tariff_id, scope
    return None


# -- the service -----------------------------------------------------------------------------------------------


class GroupOf(Protocol):
    """The id-token table (`ampgate.store.IdTokenRepository`): a token's group."""

    def get(self, id_token: str, /) -> Any: ...


class Tariffs:
    """Tariffs and their assignments: the operator's CRUD, and the node's `TariffLookup`.

    `charger_exists` and `site_exists` say whether a charger / site exists, `site_of` where a charger is
    placed, `groups` an id token's group, `in_use` whether an open session uses a tariff (the billing
    sessions)."""

    def __init__(
        self,
        rows: TariffRepository,
        *,
        charger_exists: Callable[[str], bool],
        site_exists: Callable[[str], bool],
        site_of: Callable[[str], str | None],
        groups: GroupOf,
        in_use: Callable[[str], bool],
        bus: Publisher,
        clock: Clock,
    ) -> None:
        self._rows = rows
        self._charger_exists = charger_exists
        self._site_exists = site_exists
        self._site_of = site_of
        self._groups = groups
        self._bus = bus
        self._clock = clock
        self._in_use = in_use
        self._tariffs: dict[str, TariffRow] = {}
        self._bodies: dict[str, Tariff] = {}
        self._compiled: dict[str, CompiledTariff] = {}
        self._assigned: dict[tuple[str, str], str] = {}
        self._assigned_at: dict[tuple[str, str], datetime] = {}
        self.reload()

    def reload(self) -> None:
        """Read every tariff and assignment again (they only change through this service)."""
        self._tariffs = {r.id: r for r in self._rows.rows()}
        self._bodies = {k: r.tariff for k, r in self._tariffs.items()}
        self._compiled = {}
        rows = self._rows.assignments()
        self._assigned = {(s, subj): t for s, subj, t, _ in rows}
        self._assigned_at = {(s, subj): _at(u) for s, subj, _, u in rows}

    def _keep(self, row: TariffRow, compiled: CompiledTariff) -> None:
        self._tariffs[row.id] = row
        self._bodies[row.id] = row.tariff
        self._compiled[row.id] = compiled

    # -- tariffs ---------------------------------------------------------------------------------------------

    def get(self, tariff_id: str) -> TariffRow | None:
        """The tariff, or None."""
        return self._tariffs.get(tariff_id)

    def page(self, limit: int, after: str | None = None) -> list[TariffRow]:
        """Up to `limit` tariffs in id order, after `after`."""
        ids = sorted(i for i in self._tariffs if after is None or i > after)
        return [self._tariffs[i] for i in ids[:limit]]

    def compiled(self, tariff_id: str) -> CompiledTariff | None:
        """The stored tariff compiled (once per version)."""
        c = self._compiled.get(tariff_id)
        if c is None:
            row = self._tariffs.get(tariff_id)
            if row is None:
                return None
            c = self._compiled[tariff_id] = compile_tariff(row.tariff)
        return c

    async def create(self, tariff: Tariff) -> TariffRow:
        """Store a new tariff. Raises ValidationError naming the field (`ampgate.pricing.validate`: e.g.
        `elements[0].restrictions.min_kwh`, a price with more than 4 decimals), ConflictError tariff_exists."""
        compiled = compile_tariff(tariff)  # validates first: nothing is written for a tariff that fails
        row = await self._rows.put(tariff, create=True)
        self._keep(row, compiled)
        self._bus.publish(
            TariffChanged(at=self._clock.now(), tariff_id=row.id, change="created", currency=tariff.currency)
        )
        return row

    async def replace(self, tariff: Tariff) -> TariffRow:
        """Replace a tariff (sessions already started keep the version they started with). Raises
        ValidationError naming the field, NotFoundError (field id)."""
        compiled = compile_tariff(tariff)
        row = await self._rows.put(tariff, create=False)
        self._keep(row, compiled)
        self._bus.publish(
            TariffChanged(at=self._clock.now(), tariff_id=row.id, change="updated", currency=tariff.currency)
        )
        return row

    async def delete(self, tariff_id: str) -> None:
        """Delete a tariff. Raises NotFoundError (field id); ConflictError tariff_in_use while an assignment
        names it (of a charger or site that still exists; others are removed with it) or an open session
        uses it."""
        row = self._tariffs.get(tariff_id)
        if row is None:
            raise NotFoundError(f"tariff {tariff_id!r} does not exist", field="id")
        stale: list[tuple[str, str]] = []
        users: list[str] = []
        for (scope, subject), tid in self._assigned.items():
            if tid != tariff_id:
                continue
            if (scope == "charger" and not self._charger_exists(subject)) or (
                scope == "site" and not self._site_exists(subject)
            ):
                stale.append((scope, subject))
            else:
                users.append(scope if scope == "default" else f"{scope} {subject}")
        if users:
            raise ConflictError(
                f"tariff {tariff_id!r} is assigned ({', '.join(sorted(users))}): assign another first",
                field="id",
                code="tariff_in_use",
            )
        if self._in_use(tariff_id):
            raise ConflictError(
                f"tariff {tariff_id!r} prices a session that has not ended yet",
                field="id",
                code="tariff_in_use",
            )
        await self._rows.delete(tariff_id, stale)
        self._tariffs.pop(tariff_id, None)
        self._bodies.pop(tariff_id, None)
        self._compiled.pop(tariff_id, None)
        for key in stale:
            self._assigned.pop(key, None)
            self._assigned_at.pop(key, None)
        self._bus.publish(
            TariffChanged(
                at=self._clock.now(), tariff_id=tariff_id, change="deleted", currency=row.tariff.currency
            )
        )

    # -- assignments -----------------------------------------------------------------------------------------

    def _subject(self, scope: Scope, subject: str | None) -> str:
        if scope == "default":
            return ""
        assert subject is not None
        if scope == "charger" and not self._charger_exists(subject):
            raise NotFoundError(f"charger {subject!r} is not registered", field="id")
        if scope == "site" and not self._site_exists(subject):
            raise NotFoundError(f"site {subject!r} does not exist", field="site_id")
        if scope == "id_token_group" and not 1 <= len(subject) <= MAX_GROUP:
            raise ValidationError(f"a group is 1 to {MAX_GROUP} characters", field="group")
        return subject

    def assignment(self, scope: Scope, subject: str | None = None) -> Assignment:
        """What `subject` (None for default) is assigned at `scope`. Raises NotFoundError for an unknown
        charger (field id) or site (field site_id)."""
        key = self._subject(scope, subject)
        return Assignment(
            scope=scope,
            subject=subject,
            tariff_id=self._assigned.get((scope, key)),
            updated_at=self._assigned_at.get((scope, key)),
        )

    async def assign(self, scope: Scope, subject: str | None, tariff_id: str | None) -> Assignment:
        """Assign `tariff_id` (None: remove the assignment) to `subject` (None for default). Applies to sessions
        starting from now. Raises NotFoundError for an unknown charger or site, ValidationError (field
        tariff_id) for an unknown tariff, (field group) for a malformed group."""
        key = self._subject(scope, subject)
        if tariff_id is not None and tariff_id not in self._tariffs:
            raise ValidationError(f"tariff {tariff_id!r} does not exist", field="tariff_id")
        previous = self._assigned.get((scope, key))
        at = await self._rows.assign(scope, key, tariff_id)
        if tariff_id is None:
            self._assigned.pop((scope, key), None)
            self._assigned_at.pop((scope, key), None)
        else:
            self._assigned[(scope, key)] = tariff_id
            self._assigned_at[(scope, key)] = _at(at)
        self._bus.publish(
            TariffAssigned(
                at=self._clock.now(),
                charger_id=subject if scope == "charger" else None,
                scope=scope,
                subject=subject,
                tariff_id=tariff_id,
                previous_tariff_id=previous,
            )
        )
        return self.assignment(scope, subject)

    # -- resolution ------------------------------------------------------------------------------------------

    def group_of(self, id_token: str | None) -> str | None:
        """The id token's group (1.6 parentIdTag, 2.0.1 groupIdToken) from the id-token table, or None."""
        if not id_token:
            return None
        row = self._groups.get(id_token)
        return None if row is None else row.group

    def resolve(
        self,
        charger_id: str,
        *,
        group: str | None,
        site_id: str | None,
        at: datetime | None = None,
    ) -> Resolution | None:
        """The tariff for a session (see `resolve`), compiled, or None."""
        found = resolve(
            self._assigned,
            self._bodies,
            group=group,
            charger_id=charger_id,
            site_id=site_id,
            at=at,
        )
        if found is None:
            return None
        tariff_id, scope = found
        compiled = self.compiled(tariff_id)
        assert compiled is not None
        return Resolution(tariff=self._tariffs[tariff_id].tariff, compiled=compiled, scope=scope)

    def ad_hoc_tariff_id(self, charger_id: str, site_id: str | None, at: datetime, /) -> str | None:
        """The id of the tariff a session starting at `at` at `charger_id` (placed at `site_id`) gets when its id
        token is in no group: an ad-hoc driver, or an eMSP's driver (their tokens are not in our id-token table):
        `resolve` without a group, so the charger's, else the site's, else the default, each only while valid.
        What OCPI's connectors name (`tariff_ids`); None: no tariff applies."""
        found = resolve(
            self._assigned, self._bodies, group=None, charger_id=charger_id, site_id=site_id, at=at
        )
        return None if found is None else found[0]

    def next_validity_edge(self, after: datetime, /) -> datetime | None:
        """The earliest `start_date_time` or `end_date_time` of any tariff later than `after`: when `resolve`'s
        answer may next change with no assignment changing. None: never."""
        edges = [
            edge
            for t in self._bodies.values()
            for edge in (t.start_date_time, t.end_date_time)
            if edge is not None and edge > after
        ]
        return min(edges, default=None)

    def tariff_for(self, charger_id: str, id_token: str | None, /) -> Tariff | None:
        """`TariffLookup`: the tariff a session of `id_token` at `charger_id` starting now would get."""
        found = self.resolve(
            charger_id,
            group=self.group_of(id_token),
            site_id=self._site_of(charger_id),
            at=self._clock.now(),
        )
        return None if found is None else found.tariff
