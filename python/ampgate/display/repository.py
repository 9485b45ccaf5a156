"""The `display_messages` table: the node's view of what each charger shows, one row per (charger, message id).

Rows change only on what a charger said: a SetDisplayMessage it accepted (`source` set), a message it listed in
NotifyDisplayMessages (`source` report), a ClearDisplayMessage it answered, and a whole refresh (everything the
charger did not list is removed). Every write is awaited by its caller except the notification's upsert, which
is queued before the report part it came in (the writer runs them in order, so a refresh woken by the part's
commit sees it).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.display.messages import Display, DisplayMessage
from ampgate.store.store import Store

SET = "set"
REPORT = "report"

_COLUMNS = (
    "charger_id, id, priority, state, start_at, end_at, transaction_id, format, language, content, display,"
    " source, updated_at"
)
_encode = msgspec.json.encode
_display = msgspec.json.Decoder(Display).decode


class DisplayMessageRow(msgspec.Struct, frozen=True, kw_only=True):
    """A message in the view: what the charger shows, where the node learned it, and when."""

    charger_id: str
    message: DisplayMessage
    source: str  # set (the charger accepted our SetDisplayMessage) or report (it listed the message)
    updated_at: datetime


def _row(v: tuple[Any, ...]) -> DisplayMessageRow:
    updated = parse_iso(v[12])
    assert updated is not None  # NOT NULL
    return DisplayMessageRow(
        charger_id=v[0],
        message=DisplayMessage(
            id=v[1],
            priority=v[2],
            state=v[3],
            start_at=parse_iso(v[4]),
            end_at=parse_iso(v[5]),
            transaction_id=v[6],
            format=v[7],
            language=v[8],
            content=v[9],
            display=None if v[10] is None else _display(v[10]),
        ),
        source=v[11],
        updated_at=updated,
    )


def _upsert(
    conn: sqlite3.Connection, charger_id: str, msgs: Iterable[DisplayMessage], source: str, at: str
) -> None:
    conn.executemany(
        f"INSERT OR REPLACE INTO display_messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                charger_id,
                m.id,
                m.priority,
                m.state,
                None if m.start_at is None else iso_utc(m.start_at),
                None if m.end_at is None else iso_utc(m.end_at),
                m.transaction_id,
                m.format,
                m.language,
                m.content,
                None if m.display is None else _encode(m.display).decode(),
                source,
                at,
            )
            for m in msgs
        ],
    )


def _reported(db: sqlite_utils.Database, charger_id: str, msgs: list[DisplayMessage], at: str) -> None:
    _upsert(db.conn, charger_id, msgs, REPORT, at)


def _replace(db: sqlite_utils.Database, charger_id: str, msgs: list[DisplayMessage], at: str) -> None:
    db.conn.execute("DELETE FROM display_messages WHERE charger_id = ?", (charger_id,))
    _upsert(db.conn, charger_id, msgs, REPORT, at)


def _delete(db: sqlite_utils.Database, charger_id: str, message_id: int) -> bool:
    cur = db.conn.execute(
        "DELETE FROM display_messages WHERE charger_id = ? AND id = ?", (charger_id, message_id)
    )
    return cur.rowcount > 0


class DisplayMessageRepository:
    """The display_messages table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def put(self, charger_id: str, msg: DisplayMessage, at: datetime) -> DisplayMessageRow:
        """The charger accepted `msg` (replacing any message of its id); committed before it returns."""

        def op(db: sqlite_utils.Database) -> None:
            _upsert(db.conn, charger_id, [msg], SET, iso_utc(at))

        await self._store.write(op)
        row = self.get(charger_id, msg.id)
        assert row is not None
        return row

    def record_reported(self, charger_id: str, msgs: list[DisplayMessage], at: datetime) -> None:
        """Messages a charger listed in a NotifyDisplayMessages part: queued (fire-and-forget); the caller's next
        awaited write commits after it."""
        self._store.submit(functools.partial(_reported, charger_id=charger_id, msgs=msgs, at=iso_utc(at)))

    async def replace(self, charger_id: str, msgs: list[DisplayMessage], at: datetime) -> None:
        """The charger's whole list is `msgs` (a refresh): every other message of it is removed."""
        await self._store.write(functools.partial(_replace, charger_id=charger_id, msgs=msgs, at=iso_utc(at)))

    async def delete(self, charger_id: str, message_id: int) -> bool:
        """The charger no longer shows `message_id`; False if the view did not have it."""
        return await self._store.write(
            functools.partial(_delete, charger_id=charger_id, message_id=message_id)
        )

    def get(self, charger_id: str, message_id: int) -> DisplayMessageRow | None:
        v = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM display_messages WHERE charger_id = ? AND id = ?",
            (charger_id, message_id),
        ).fetchone()
        return None if v is None else _row(v)

    def ids(self, charger_id: str) -> list[int]:
        """The message ids the view holds for the charger."""
        cur = self._store.reader.execute(
            "SELECT id FROM display_messages WHERE charger_id = ?", (charger_id,)
        )
        return [r[0] for r in cur.fetchall()]

    def page(self, charger_id: str, limit: int, after: int | None = None) -> list[DisplayMessageRow]:
        """Up to `limit` of the charger's messages by id, with an id above `after`."""
        cur = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM display_messages WHERE charger_id = ? AND id > ? ORDER BY id LIMIT ?",
            (charger_id, -1 if after is None else after, limit),
        )
        return [_row(v) for v in cur.fetchall()]
