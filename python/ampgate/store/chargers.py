"""Chargers as stored: the row type, the rules for ids and passwords, and `ChargerRepository`, the one way to
their table. Write ops here run on the writer thread (they take a `sqlite_utils.Database`); read helpers take the
reader's `sqlite3.Connection`.
"""

from __future__ import annotations

import functools
import sqlite3
import unicodedata
from datetime import datetime
from typing import Any, Final

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.errors import NotFoundError, ValidationError
from ampgate.store.hashing import hash_password
from ampgate.store.store import PendingWrite, Store

# OCPP's identityString / charge point id is at most 48 characters (CiString48Type in 1.6, identifierString
# in 2.0.1); the gateway's handshake enforces the same bound on the URL path.
CHARGER_ID_MAX = 48
# OCPP 2.0.1 BasicAuthPassword: 16 to 40 characters (1.6 security profile 1 uses 16–20 byte keys, inside this).
PASSWORD_MIN = 16
PASSWORD_MAX = 40
# Characters the id may not contain: '/' would split the URL path the charger connects to, ':' would split the
# HTTP Basic credentials (user:password) it authenticates with.
FORBIDDEN_ID_CHARS = frozenset("/:")
# Unicode categories an id may not contain, so what an operator reads is what the charger sent and two ids that
# look alike cannot both exist: Cc control characters, Cf format characters (invisible ones such as U+200B
# ZERO WIDTH SPACE, U+00AD SOFT HYPHEN, and the direction changers U+202A–U+202E, U+2066–U+2069 that can make an
# id display reversed), Zl / Zp line and paragraph separators, Cs surrogates, Co private use (no agreed glyph)
# and Cn unassigned code points (a later Unicode may make them any of the above).
FORBIDDEN_ID_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
# The only space an id may hold is U+0020: the other Zs spaces (no-break, en, em, thin, ideographic, ...) look
# the same and would make a second id that reads like the first.
ID_SPACE = " "
# Ids are kept in Unicode normalization form C: the API normalizes what it is given, and a charger must send
# its id in NFC (composed: "é" as U+00E9, not "e" + U+0301), else "Café" could exist twice.
ID_NORMAL_FORM: Final = "NFC"

_COLUMNS = (
    "id, vendor, model, serial, firmware, protocol, registered_at, last_boot_at,"
    " password_hash IS NOT NULL, accepted, firmware_status, firmware_request_id, firmware_status_at,"
    " security_profile"
)
# OCPP security profiles: 1 plain ws + Basic auth, 2 TLS + Basic auth, 3 TLS with a client certificate.
SECURITY_PROFILES = (1, 2, 3)


class BootReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a charger said of itself when it booted, and when (aware)."""

    charger_id: str
    vendor: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    protocol: str | None
    at: datetime


class ChargerRow(msgspec.Struct, frozen=True, kw_only=True):
    """One charger as the store knows it (no live state: that is `connectivity`'s)."""

    id: str
    vendor: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    protocol: str | None  # the subprotocol it last connected or booted with, e.g. "ocpp1.6"
    registered_at: datetime  # when the row was created (registration, or first boot of an unknown charger)
    last_boot_at: datetime | None
    has_password: bool
    accepted: bool  # registered by an operator (True) rather than only seen booting (False)
    # The last FirmwareStatusNotification (or 1.6 SignedFirmwareStatusNotification): its status as sent, its
    # requestId (None when it carried none) and when the node received it. All None until the first one.
    firmware_status: str | None
    firmware_request_id: int | None
    firmware_status_at: datetime | None
    # The lowest OCPP security profile the charger may connect with (the gateway refuses a lower one).
    security_profile: int = 1


def validate_charger_id(cp_id: str) -> str:
    """Return `cp_id` if it is a valid charger id: 1–48 characters in Unicode NFC, no '/', no ':', no control,
    format (invisible or direction-changing), separator, surrogate, private-use or unassigned characters, and
    no space but U+0020 (docs/api.md "Charger ids"). Raises ValidationError(field="id") otherwise."""
    if not isinstance(cp_id, str) or not 1 <= len(cp_id) <= CHARGER_ID_MAX:
        raise ValidationError(f"a charger id is 1 to {CHARGER_ID_MAX} characters", field="id")
    for ch in cp_id:
        if ch in FORBIDDEN_ID_CHARS:
            raise ValidationError(f"a charger id may not contain {ch!r}", field="id")
        category = unicodedata.category(ch)
        if category == "Cc":
            raise ValidationError("a charger id may not contain control characters", field="id")
        if category in FORBIDDEN_ID_CATEGORIES or (category == "Zs" and ch != ID_SPACE):
            raise ValidationError(
                f"a charger id may not contain U+{ord(ch):04X} (invisible, direction-changing or look-alike "
                f"characters are refused)",
                field="id",
            )
    if not unicodedata.is_normalized(ID_NORMAL_FORM, cp_id):
        raise ValidationError(
            f"a charger id must be in Unicode {ID_NORMAL_FORM} (e.g. {unicodedata.normalize(ID_NORMAL_FORM, cp_id)!r})",
            field="id",
        )
    return cp_id


def normalize_charger_id(cp_id: str) -> str:
    """`cp_id` in Unicode NFC, validated (what registration stores: a decomposed spelling of an existing id
    names that charger, not a second one). Raises ValidationError(field="id")."""
    if not isinstance(cp_id, str):
        raise ValidationError("a charger id is a string", field="id")
    return validate_charger_id(unicodedata.normalize(ID_NORMAL_FORM, cp_id))


def charger_id_allowed(cp_id: str) -> bool:
    """Whether `cp_id` (as a charger sent it in its URL) is a valid id as it stands, without normalizing: a
    charger that sends a non-NFC spelling is refused, not mapped onto another id."""
    try:
        validate_charger_id(cp_id)
    except ValidationError:
        return False
    return True


def validate_password(password: str) -> str:
    """Return `password` if it is 16–40 printable ASCII characters (space to '~'), else raise
    ValidationError(field="password")."""
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValidationError(
            f"a charger password is {PASSWORD_MIN} to {PASSWORD_MAX} characters", field="password"
        )
    if not all(" " <= ch <= "~" for ch in password):
        raise ValidationError("a charger password is printable ASCII only", field="password")
    return password


def _row(values: tuple[Any, ...]) -> ChargerRow:
    cp_id, vendor, model, serial, firmware, protocol, registered_at, last_boot_at = values[:8]
    has_pw, accepted, fw_status, fw_request_id, fw_status_at, profile = values[8:]
    registered = parse_iso(registered_at)
    assert registered is not None  # NOT NULL in the schema
    return ChargerRow(
        id=cp_id,
        vendor=vendor,
        model=model,
        serial=serial,
        firmware=firmware,
        protocol=protocol,
        registered_at=registered,
        last_boot_at=parse_iso(last_boot_at),
        has_password=bool(has_pw),
        accepted=bool(accepted),
        firmware_status=fw_status,
        firmware_request_id=fw_request_id,
        firmware_status_at=parse_iso(fw_status_at),
        security_profile=profile,
    )


# -- reads (the reader connection, trio thread) ---------------------------------------------------------------


def read_charger(conn: sqlite3.Connection, cp_id: str) -> ChargerRow | None:
    """The charger `cp_id`, or None if unknown."""
    values = conn.execute(f"SELECT {_COLUMNS} FROM chargers WHERE id = ?", (cp_id,)).fetchone()
    return None if values is None else _row(values)


def read_page(
    conn: sqlite3.Connection,
    limit: int,
    after: str | None,
    firmware: str | None = None,
    firmware_status: str | None = None,
) -> list[ChargerRow]:
    """Up to `limit` chargers in id order, starting after id `after` (keyset pagination on the primary key),
    only those whose `firmware` version and last `firmware_status` equal the ones given (None: any)."""
    where, args = [], []
    for cond, arg in (
        ("id > ?", after),
        ("firmware = ?", firmware),
        ("firmware_status = ?", firmware_status),
    ):
        if arg is not None:
            where.append(cond)
            args.append(arg)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cursor = conn.execute(f"SELECT {_COLUMNS} FROM chargers {clause} ORDER BY id LIMIT ?", (*args, limit))
    return [_row(v) for v in cursor.fetchall()]


# -- writes (the writer thread) -------------------------------------------------------------------------------


def upsert_boot(db: sqlite_utils.Database, boot: BootReport, at: str) -> None:
    """Record a BootNotification: create the charger (registered_at = the boot) or update what it reported."""
    db.execute(
        """
        INSERT INTO chargers (id, vendor, model, serial, firmware, protocol, registered_at, last_boot_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET
            vendor = excluded.vendor, model = excluded.model, serial = excluded.serial,
            firmware = excluded.firmware, protocol = excluded.protocol, last_boot_at = excluded.last_boot_at
        """,
        (boot.charger_id, boot.vendor, boot.model, boot.serial, boot.firmware, boot.protocol, at, at),
    )


def upsert_connection(db: sqlite_utils.Database, cp_id: str, protocol: str | None, at: str) -> None:
    """Record that the charger connected: create it if unknown (registered_at = now), keep its protocol
    current. Skips the write when nothing changed, so a reconnect storm of known chargers costs no pages."""
    db.conn.execute(
        """
        INSERT INTO chargers (id, protocol, registered_at) VALUES (?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET protocol = excluded.protocol
        WHERE chargers.protocol IS NOT excluded.protocol
        """,
        (cp_id, protocol, at),
    )


def update_firmware_status(
    db: sqlite_utils.Database, cp_id: str, status: str, request_id: int | None, at: str
) -> None:
    """Set the charger's last firmware status, request id (None: the notification had none) and the time it
    was received. The latest notification received wins: the writer runs ops in the order they were queued.
    An unknown charger is left alone (a charger that may send one is Accepted: its boot was queued first)."""
    db.execute(
        "UPDATE chargers SET firmware_status = ?, firmware_request_id = ?, firmware_status_at = ?"
        " WHERE id = ?",
        (status, request_id, at, cp_id),
    )


def _accept(db: sqlite_utils.Database, cp_id: str) -> None:
    db.conn.execute("UPDATE chargers SET accepted = 1 WHERE id = ?", (cp_id,))


def upsert_registration(
    db: sqlite_utils.Database, cp_id: str, password_hash: str | None, at: str, keep_password: bool = False
) -> tuple[ChargerRow, bool]:
    """Create the charger or replace its password (None clears it; `keep_password` leaves it); mark it
    accepted. Returns the row as committed-to-be and whether it was created."""
    conn = db.conn
    existed = conn.execute("SELECT 1 FROM chargers WHERE id = ?", (cp_id,)).fetchone() is not None
    if existed and keep_password:
        conn.execute("UPDATE chargers SET accepted = 1 WHERE id = ?", (cp_id,))
    elif existed:
        conn.execute(
            "UPDATE chargers SET password_hash = ?, accepted = 1 WHERE id = ?", (password_hash, cp_id)
        )
    else:
        conn.execute(
            "INSERT INTO chargers (id, password_hash, registered_at, accepted) VALUES (?, ?, ?, 1)",
            (cp_id, password_hash, at),
        )
    row = read_charger(conn, cp_id)
    assert row is not None
    return row, not existed


def update_security_profile(db: sqlite_utils.Database, cp_id: str, profile: int) -> ChargerRow | None:
    """Set the charger's lowest allowed security profile; None if there is no such charger."""
    db.conn.execute("UPDATE chargers SET security_profile = ? WHERE id = ?", (profile, cp_id))
    return read_charger(db.conn, cp_id)


class ChargerRepository:
    """The chargers table. Reads are synchronous (the trio thread, indexed); boot, connection and firmware
    records are fire-and-forget writes (a reply never waits for the disk); registration waits for its commit."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record_boot(self, boot: BootReport) -> None:
        """Record a BootNotification, fire-and-forget. Creates the charger if unknown (not accepted, no
        password) and sets what it reported plus last_boot_at = `boot.at`. Raises ValueError for a naive time,
        StoreClosedError after shutdown; write failures are logged."""
        self._store.submit(functools.partial(upsert_boot, boot=boot, at=iso_utc(boot.at)))

    def record_connection(self, cp_id: str, *, protocol: str | None, at: datetime) -> None:
        """Record, fire-and-forget, that charger `cp_id` connected with `protocol`: for a known one only its
        protocol is kept current; an unknown id would be created (not accepted, no password, registered_at =
        `at`), which is why the link tracker calls this only for chargers the store knows (an unknown charger is
        recorded by its boot, `record_boot`). Raises ValueError for a naive `at`,
        StoreClosedError after shutdown; write failures are logged."""
        self._store.submit(
            functools.partial(upsert_connection, cp_id=cp_id, protocol=protocol, at=iso_utc(at))
        )

    def record_firmware_status(
        self, cp_id: str, *, status: str, request_id: int | None, at: datetime
    ) -> None:
        """Record, fire-and-forget, the firmware status charger `cp_id` reported (as sent), the requestId of
        the update it belongs to (None: the notification carried none) and `at`, when the node received it.
        It replaces the previous one; a charger the store does not know is left alone. Raises ValueError for a
        naive `at`, StoreClosedError after shutdown; write failures are logged."""
        self._store.submit(
            functools.partial(
                update_firmware_status, cp_id=cp_id, status=status, request_id=request_id, at=iso_utc(at)
            )
        )

    def mark_accepted(self, cp_id: str) -> PendingWrite[None]:
        """Remember that charger `cp_id` was accepted at boot: queued at once (after its boot record, so the row
        exists when this runs), durable; await the result before telling the charger it is Accepted."""
        return self._store.write_now(functools.partial(_accept, cp_id=cp_id), durable=True)

    async def register(
        self, cp_id: str, password: str | None, *, keep_password: bool = False
    ) -> tuple[ChargerRow, bool]:
        """Create charger `cp_id` with `password` (stored hashed; None: it connects without a password), or
        replace the password of an existing one (`keep_password`: leave it as it is, `password` ignored);
        either way it becomes accepted. Returns the committed row and whether it was created. Raises
        ValidationError with field "id" or "password" for a bad value."""
        validate_charger_id(cp_id)
        password_hash = (
            None if password is None or keep_password else hash_password(validate_password(password))
        )
        at = iso_utc(self._store.now())
        return await self._store.write(
            functools.partial(
                upsert_registration,
                cp_id=cp_id,
                password_hash=password_hash,
                at=at,
                keep_password=keep_password,
            )
        )

    def get(self, cp_id: str) -> ChargerRow | None:
        """The charger `cp_id` as last committed, or None if unknown. Never raises for an odd id."""
        return read_charger(self._store.reader, cp_id)

    def exists(self, cp_id: str) -> bool:
        """Whether the store knows charger `cp_id`."""
        row = self._store.reader.execute("SELECT 1 FROM chargers WHERE id = ?", (cp_id,)).fetchone()
        return row is not None

    def page(
        self,
        limit: int,
        after: str | None = None,
        *,
        firmware: str | None = None,
        firmware_status: str | None = None,
    ) -> list[ChargerRow]:
        """Up to `limit` chargers ordered by id, those with an id greater than `after` (keyset pagination: pass
        the last id of the previous page), only those running `firmware` (the version of their last boot) and
        whose last firmware status is `firmware_status`, when given. Without an index on either, a filter
        scans the table from `after` until the page is full. Raises ValidationError(field="limit") if
        `limit` < 1."""
        if limit < 1:
            raise ValidationError("limit must be at least 1", field="limit")
        return read_page(self._store.reader, limit, after, firmware, firmware_status)

    def credentials(self, limit: int, after: str | None = None) -> list[tuple[str, str | None, int]]:
        """Up to `limit` known charger ids with their password hashes (None: no password) and lowest allowed
        security profiles, in id order, those after `after` (keyset pages: the gateway's handshake table is
        pushed a page at a time, so a worker restart at 100k chargers never holds the trio thread for the
        whole table)."""
        if after is None:
            rows = self._store.reader.execute(
                "SELECT id, password_hash, security_profile FROM chargers ORDER BY id LIMIT ?", (limit,)
            )
        else:
            rows = self._store.reader.execute(
                "SELECT id, password_hash, security_profile FROM chargers WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            )
        return list(rows.fetchall())

    def security_profile(self, cp_id: str) -> int:
        """The lowest security profile charger `cp_id` may connect with (1 for an unknown id)."""
        row = self._store.reader.execute(
            "SELECT security_profile FROM chargers WHERE id = ?", (cp_id,)
        ).fetchone()
        return 1 if row is None else int(row[0])

    async def set_security_profile(self, cp_id: str, profile: int) -> ChargerRow:
        """Set the lowest security profile charger `cp_id` may connect with; returns the committed row.
        Raises ValidationError(field="security_profile") for a value other than 1, 2 or 3 and
        NotFoundError(field="id") for an unknown charger."""
        if isinstance(profile, bool) or profile not in SECURITY_PROFILES:
            raise ValidationError("security_profile must be 1, 2 or 3", field="security_profile")
        row = await self._store.write(
            functools.partial(update_security_profile, cp_id=cp_id, profile=profile), durable=True
        )
        if row is None:
            raise NotFoundError(f"charger {cp_id!r} is not registered", field="id")
        return row

    def credential(self, cp_id: str) -> str | None:
        """The password hash of charger `cp_id`, or None if it has none or is unknown."""
        row = self._store.reader.execute(
            "SELECT password_hash FROM chargers WHERE id = ?", (cp_id,)
        ).fetchone()
        return None if row is None else row[0]

    def accepted_ids(self) -> list[str]:
        """Ids of every charger that has been accepted (registered by an operator, or accepted at boot). Scans
        the table; start-up only."""
        rows = self._store.reader.execute("SELECT id FROM chargers WHERE accepted = 1").fetchall()
        return [r[0] for r in rows]

    def count(self) -> int:
        """How many chargers are known."""
        return int(self._store.reader.execute("SELECT count(*) FROM chargers").fetchone()[0])
