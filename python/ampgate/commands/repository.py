"""The commands table: the row type and `CommandRepository`. Writes run on the store's writer thread (they take a
`sqlite_utils.Database`); reads take the reader connection on the trio thread.

Every transition is a conditional UPDATE on the state it leaves (`WHERE state = 'queued'`), and the one writer
thread runs them one at a time: a cancel and a delivery racing for the same queued command cannot both win.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import uuid
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store.store import Store

_COLUMNS = (
    "seq, id, charger_id, action, payload, protocol, queued, state, supersede_key, superseded_by, unique_id,"
    " reply, error_code, error_message, ocpp_code, created_at, expires_at, sent_at, finished_at"
)


class CommandRow(msgspec.Struct, frozen=True, kw_only=True):
    """One command as stored. `queued` says whether it was asked to wait for its charger (else it went out at
    once or failed at once). `reply` is the charger's CALLRESULT payload; `error_*` say why it failed."""

    seq: int
    id: str
    charger_id: str
    action: str
    payload: Any
    protocol: str
    queued: bool
    state: str
    supersede_key: str | None
    superseded_by: str | None
    unique_id: str | None
    reply: Any
    error_code: str | None
    error_message: str | None
    ocpp_code: str | None
    created_at: datetime
    expires_at: datetime | None
    sent_at: datetime | None
    finished_at: datetime | None


def _row(v: tuple[Any, ...]) -> CommandRow:
    created = parse_iso(v[15])
    assert created is not None  # NOT NULL
    return CommandRow(
        seq=v[0],
        id=v[1],
        charger_id=v[2],
        action=v[3],
        payload=json.loads(v[4]),
        protocol=v[5],
        queued=bool(v[6]),
        state=v[7],
        supersede_key=v[8],
        superseded_by=v[9],
        unique_id=v[10],
        reply=None if v[11] is None else json.loads(v[11]),
        error_code=v[12],
        error_message=v[13],
        ocpp_code=v[14],
        created_at=created,
        expires_at=parse_iso(v[16]),
        sent_at=parse_iso(v[17]),
        finished_at=parse_iso(v[18]),
    )


def new_command_id() -> str:
    """A command id: random (not guessable from another one), 32 hex digits."""
    return uuid.uuid4().hex


# -- reads ----------------------------------------------------------------------------------------------------


def read_command(conn: sqlite3.Connection, command_id: str) -> CommandRow | None:
    values = conn.execute(f"SELECT {_COLUMNS} FROM commands WHERE id = ?", (command_id,)).fetchone()
    return None if values is None else _row(values)


def read_page(
    conn: sqlite3.Connection, charger_id: str, limit: int, before: int | None, state: str | None
) -> list[CommandRow]:
    """Up to `limit` of a charger's commands, newest first (by seq), below `before`, optionally in one state."""
    where, args = ["charger_id = ?"], [charger_id]
    if before is not None:
        where.append("seq < ?")
        args.append(before)  # type: ignore[arg-type]
    if state is not None:
        where.append("state = ?")
        args.append(state)
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM commands WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
        (*args, limit),
    )
    return [_row(v) for v in cur.fetchall()]


def read_next_queued(conn: sqlite3.Connection, charger_id: str) -> CommandRow | None:
    values = conn.execute(
        f"SELECT {_COLUMNS} FROM commands WHERE charger_id = ? AND state = 'queued' ORDER BY seq LIMIT 1",
        (charger_id,),
    ).fetchone()
    return None if values is None else _row(values)


def count_queued(conn: sqlite3.Connection, charger_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM commands WHERE charger_id = ? AND state = 'queued'", (charger_id,)
    ).fetchone()
    return int(row[0])


def read_waiting_chargers(conn: sqlite3.Connection) -> list[str]:
    """Every charger with a queued command."""
    cur = conn.execute("SELECT DISTINCT charger_id FROM commands WHERE state = 'queued'")
    return [r[0] for r in cur.fetchall()]


# -- writes ---------------------------------------------------------------------------------------------------


class NewCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A command about to be recorded (already checked). `expires_at` is set for a queued one."""

    id: str
    charger_id: str
    action: str
    payload: Any
    protocol: str
    queued: bool
    supersede_key: str | None = None
    expires_at: datetime | None = None


def insert(
    db: sqlite_utils.Database, new: NewCommand, state: str, at: str
) -> tuple[CommandRow, list[CommandRow]]:
    """Record `new` in `state` (queued, or sent for one that goes out at once). A queued one with a
    `supersede_key` cancels the charger's queued commands with the same key first; those are returned too."""
    superseded: list[CommandRow] = []
    if new.queued and new.supersede_key is not None:
        cur = db.conn.execute(
            f"UPDATE commands SET state = 'cancelled', superseded_by = ?, finished_at = ?"
            f" WHERE charger_id = ? AND supersede_key = ? AND state = 'queued' RETURNING {_COLUMNS}",
            (new.id, at, new.charger_id, new.supersede_key),
        )
        superseded = [_row(v) for v in cur.fetchall()]
    db.conn.execute(
        "INSERT INTO commands (id, charger_id, action, payload, protocol, queued, state, supersede_key,"
        " created_at, expires_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new.id,
            new.charger_id,
            new.action,
            json.dumps(new.payload, separators=(",", ":")),
            new.protocol,
            int(new.queued),
            state,
            new.supersede_key,
            at,
            None if new.expires_at is None else iso_utc(new.expires_at),
            at if state == "sent" else None,
        ),
    )
    row = read_command(db.conn, new.id)
    assert row is not None
    return row, superseded


def insert_many(
    db: sqlite_utils.Database, news: list[NewCommand], state: str, at: str
) -> list[tuple[CommandRow, list[CommandRow]]]:
    """`insert` of every one of `news`, in order, in the same write."""
    return [insert(db, new, state, at) for new in news]


def take_for_delivery(db: sqlite_utils.Database, command_id: str, at: str) -> CommandRow | None:
    """queued -> sent; None when it is no longer queued (cancelled or expired meanwhile)."""
    cur = db.conn.execute(
        f"UPDATE commands SET state = 'sent', sent_at = ? WHERE id = ? AND state = 'queued' RETURNING {_COLUMNS}",
        (at, command_id),
    )
    values = cur.fetchone()
    return None if values is None else _row(values)


def put_back(db: sqlite_utils.Database, command_id: str) -> None:
    """sent -> queued: it never reached the charger."""
    db.conn.execute(
        "UPDATE commands SET state = 'queued', sent_at = NULL WHERE id = ? AND state = 'sent'", (command_id,)
    )


def finish(
    db: sqlite_utils.Database,
    command_id: str,
    state: str,
    at: str,
    *,
    unique_id: str | None = None,
    reply: Any = None,
    error: tuple[str, str, str | None] | None = None,
) -> CommandRow | None:
    """sent -> answered (with the reply) or failed (with (code, message, ocpp_code))."""
    code, message, ocpp_code = error or (None, None, None)
    db.conn.execute(
        "UPDATE commands SET state = ?, finished_at = ?, unique_id = coalesce(?, unique_id), reply = ?,"
        " error_code = ?, error_message = ?, ocpp_code = ? WHERE id = ? AND state = 'sent'",
        (
            state,
            at,
            unique_id,
            None if reply is None else json.dumps(reply, separators=(",", ":")),
            code,
            message,
            ocpp_code,
            command_id,
        ),
    )
    return read_command(db.conn, command_id)


def cancel(db: sqlite_utils.Database, command_id: str, at: str) -> CommandRow | None:
    """queued -> cancelled; returns the row as it is after (whatever its state)."""
    db.conn.execute(
        "UPDATE commands SET state = 'cancelled', finished_at = ? WHERE id = ? AND state = 'queued'",
        (at, command_id),
    )
    return read_command(db.conn, command_id)


def expire_due(db: sqlite_utils.Database, now: str) -> list[CommandRow]:
    """Every queued command whose time to live passed -> expired; returns them."""
    cur = db.conn.execute(
        f"UPDATE commands SET state = 'expired', finished_at = ? WHERE state = 'queued' AND expires_at <= ?"
        f" RETURNING {_COLUMNS}",
        (now, now),
    )
    return [_row(v) for v in cur.fetchall()]


def fail_in_flight(db: sqlite_utils.Database, code: str, message: str, at: str) -> list[CommandRow]:
    """Every sent command -> failed (at start: the node stopped with them on the wire)."""
    cur = db.conn.execute(
        f"UPDATE commands SET state = 'failed', error_code = ?, error_message = ?, finished_at = ?"
        f" WHERE state = 'sent' RETURNING {_COLUMNS}",
        (code, message, at),
    )
    return [_row(v) for v in cur.fetchall()]


def prune(db: sqlite_utils.Database, before: str) -> int:
    """Delete finished commands that finished before `before`."""
    cur = db.conn.execute(
        "DELETE FROM commands WHERE state IN ('answered', 'failed', 'expired', 'cancelled') AND finished_at < ?",
        (before,),
    )
    return cur.rowcount


class CommandRepository:
    """The commands table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def now(self) -> datetime:
        return self._store.now()

    def _at(self) -> str:
        return iso_utc(self._store.now())

    # reads
    def get(self, command_id: str) -> CommandRow | None:
        return read_command(self._store.reader, command_id)

    def page(self, charger_id: str, limit: int, before: int | None, state: str | None) -> list[CommandRow]:
        return read_page(self._store.reader, charger_id, limit, before, state)

    def next_queued(self, charger_id: str) -> CommandRow | None:
        return read_next_queued(self._store.reader, charger_id)

    def count_queued(self, charger_id: str) -> int:
        return count_queued(self._store.reader, charger_id)

    def queued_total(self) -> int:
        """Commands queued over every charger."""
        return int(
            self._store.reader.execute("SELECT count(*) FROM commands WHERE state = 'queued'").fetchone()[0]
        )

    def waiting_chargers(self) -> list[str]:
        return read_waiting_chargers(self._store.reader)

    # writes (each waits for its commit)
    async def insert(self, new: NewCommand, state: str) -> tuple[CommandRow, list[CommandRow]]:
        if new.expires_at is not None:
            iso_utc(new.expires_at)  # a naive time raises here, not on the writer thread
        return await self._store.write(functools.partial(insert, new=new, state=state, at=self._at()))

    async def insert_many(
        self, news: list[NewCommand], state: str
    ) -> list[tuple[CommandRow, list[CommandRow]]]:
        """`insert` of each of `news` in one write: one commit for all (a batch of a campaign's updates)."""
        for new in news:
            if new.expires_at is not None:
                iso_utc(new.expires_at)
        return await self._store.write(
            functools.partial(insert_many, news=list(news), state=state, at=self._at())
        )

    async def take_for_delivery(self, command_id: str) -> CommandRow | None:
        return await self._store.write(
            functools.partial(take_for_delivery, command_id=command_id, at=self._at())
        )

    async def put_back(self, command_id: str) -> None:
        await self._store.write(functools.partial(put_back, command_id=command_id))

    async def finish(
        self,
        command_id: str,
        state: str,
        *,
        unique_id: str | None = None,
        reply: Any = None,
        error: tuple[str, str, str | None] | None = None,
    ) -> CommandRow | None:
        return await self._store.write(
            functools.partial(
                finish,
                command_id=command_id,
                state=state,
                at=self._at(),
                unique_id=unique_id,
                reply=reply,
                error=error,
            )
        )

    async def cancel(self, command_id: str) -> CommandRow | None:
        return await self._store.write(functools.partial(cancel, command_id=command_id, at=self._at()))

    async def expire_due(self) -> list[CommandRow]:
        return await self._store.write(functools.partial(expire_due, now=self._at()))

    async def fail_in_flight(self, code: str, message: str) -> list[CommandRow]:
        return await self._store.write(
            functools.partial(fail_in_flight, code=code, message=message, at=self._at())
        )

    async def prune(self, before: datetime) -> int:
        return await self._store.write(functools.partial(prune, before=iso_utc(before)))
