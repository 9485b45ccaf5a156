"""The `log_requests` table: one row per GetLog / GetDiagnostics the node sent, as stored.

Every write here is awaited by its caller (a request must exist before its upload URL goes out, and a
notification finds its request inside the writer's op, where it sees every earlier write in order). Matching a
notification to its request is decided by `ampgate.logs.state`; the ops here only read the candidates and store
the outcome. Reads take the reader connection.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.errors import ConflictError
from ampgate.logs import state
from ampgate.logs.state import Candidate, TimelineEntry
from ampgate.store.store import Store

# Upload states of a row: the node receives the file (`open` until it has it, then `received`), or the token
# was voided (the charger refused, the call failed). NULL: the operator gave the location; the node receives
# nothing.
UPLOAD_OPEN = "open"
UPLOAD_RECEIVED = "received"
UPLOAD_VOID = "void"
# How many of a charger's latest GetDiagnostics rows a DiagnosticsStatusNotification is matched against: the
# open one is among the newest unless an operator sent this many more without any of them finishing.
DIAGNOSTICS_CANDIDATES = 20

_COLUMNS = (
    "id, charger_id, protocol, command, log_type, request_id, location, upload_state, upload_expires_at,"
    " status, timeline, error_code, error_message, charger_filename, created_at, updated_at, file_name,"
    " file_size, file_sha256, file_received_at, file_path"
)
_timeline_decode = msgspec.json.Decoder(list[TimelineEntry]).decode
_encode = msgspec.json.encode


class NewLogRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A request about to be sent. `request_id` None: the node numbers it (the row's id). `location` as shown
    to operators (the node's own upload URL without its token); `upload_token_hash` set when the node
    receives the file."""

    charger_id: str
    protocol: str
    command: str
    log_type: str
    request_id: int | None
    location: str
    upload_token_hash: str | None
    upload_expires_at: datetime | None
    at: datetime


class LogRow(msgspec.Struct, frozen=True, kw_only=True):
    """One log request with its timeline and, once received, its file."""

    id: int
    charger_id: str
    protocol: str
    command: str  # GetLog or GetDiagnostics
    log_type: str  # DiagnosticsLog or SecurityLog
    request_id: int  # the requestId the charger knows (GetDiagnostics: the node's own)
    location: str
    upload_state: str | None  # open, received, void; None: the operator's location
    upload_expires_at: datetime | None
    status: str  # the last of `timeline`
    timeline: list[TimelineEntry]
    error_code: str | None
    error_message: str | None
    charger_filename: str | None  # the name the charger's reply gave
    created_at: datetime
    updated_at: datetime
    file_name: str | None
    file_size: int | None
    file_sha256: str | None
    file_received_at: datetime | None
    file_path: str | None


class FileInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A file received for a request, already on disk."""

    path: str
    name: str | None
    size: int
    sha256: str
    at: datetime


def _row(v: tuple[Any, ...]) -> LogRow:
    created, updated = parse_iso(v[14]), parse_iso(v[15])
    assert created is not None and updated is not None  # NOT NULL
    return LogRow(
        id=v[0],
        charger_id=v[1],
        protocol=v[2],
        command=v[3],
        log_type=v[4],
        request_id=v[5] if v[5] is not None else v[0],
        location=v[6],
        upload_state=v[7],
        upload_expires_at=parse_iso(v[8]),
        status=v[9],
        timeline=_timeline_decode(v[10]),
        error_code=v[11],
        error_message=v[12],
        charger_filename=v[13],
        created_at=created,
        updated_at=updated,
        file_name=v[16],
        file_size=v[17],
        file_sha256=v[18],
        file_received_at=parse_iso(v[19]),
        file_path=v[20],
    )


def read_one(conn: sqlite3.Connection, log_id: int) -> LogRow | None:
    v = conn.execute(f"SELECT {_COLUMNS} FROM log_requests WHERE id = ?", (log_id,)).fetchone()
    return None if v is None else _row(v)


def _must(conn: sqlite3.Connection, log_id: int) -> LogRow:
    row = read_one(conn, log_id)
    if row is None:
        raise KeyError(f"log request {log_id} does not exist")
    return row


# -- write ops (writer thread) -------------------------------------------------------------------------------------


def _insert(db: sqlite_utils.Database, new: NewLogRequest) -> LogRow:
    at = iso_utc(new.at)
    timeline = state.append([], state.REQUESTED, new.at)
    cur = db.conn.execute(
        "INSERT INTO log_requests (charger_id, protocol, command, log_type, request_id, location,"
        " upload_token_hash, upload_state, upload_expires_at, status, timeline, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new.charger_id,
            new.protocol,
            new.command,
            new.log_type,
            new.request_id,
            new.location,
            new.upload_token_hash,
            UPLOAD_OPEN if new.upload_token_hash is not None else None,
            None if new.upload_expires_at is None else iso_utc(new.upload_expires_at),
            state.REQUESTED,
            _encode(timeline),
            at,
            at,
        ),
    )
    log_id = cur.lastrowid
    assert log_id is not None
    if new.request_id is None:
        db.conn.execute("UPDATE log_requests SET request_id = id WHERE id = ?", (log_id,))
    return _must(db.conn, log_id)


def _add_status(conn: sqlite3.Connection, row: LogRow, status: str, at: datetime, **columns: Any) -> LogRow:
    """Append `status` to the row's timeline, set its status, void its token when the status says the charger
    will not upload, and set `columns` as given."""
    sets = {"status": status, "timeline": _encode(state.append(row.timeline, status, at))}
    sets["updated_at"] = iso_utc(at)
    if row.upload_state == UPLOAD_OPEN and not state.token_stays_valid(status):
        sets["upload_state"] = UPLOAD_VOID
    sets.update(columns)
    assignments = ", ".join(f"{k} = ?" for k in sets)
    conn.execute(f"UPDATE log_requests SET {assignments} WHERE id = ?", (*sets.values(), row.id))
    return _must(conn, row.id)


def _reply(
    db: sqlite_utils.Database, log_id: int, status: str, filename: str | None, at: datetime
) -> tuple[LogRow, list[LogRow]]:
    conn = db.conn
    row = _add_status(conn, _must(conn, log_id), status, at, charger_filename=filename)
    canceled: list[LogRow] = []
    if status == state.ACCEPTED_CANCELED:
        # The charger dropped the upload it had under way for this one: the charger's other open GetLogs end.
        cur = conn.execute(
            f"SELECT {_COLUMNS} FROM log_requests WHERE charger_id = ? AND command = ? AND id < ?"
            " ORDER BY id DESC LIMIT ?",
            (row.charger_id, state.GET_LOG, row.id, DIAGNOSTICS_CANDIDATES),
        )
        for other in [_row(v) for v in cur.fetchall()]:
            if state.is_open(other.status):
                canceled.append(_add_status(conn, other, state.CANCELED, at))
    return row, canceled


def _failure(
    db: sqlite_utils.Database, log_id: int, status: str, code: str, message: str, at: datetime
) -> LogRow:
    conn = db.conn
    return _add_status(conn, _must(conn, log_id), status, at, error_code=code, error_message=message)


def _set_command(db: sqlite_utils.Database, log_id: int, command: str) -> LogRow:
    db.conn.execute("UPDATE log_requests SET command = ? WHERE id = ?", (command, log_id))
    return _must(db.conn, log_id)


def _notification(
    db: sqlite_utils.Database,
    charger_id: str,
    command: str,
    request_id: int | None,
    status: str,
    at: datetime,
) -> LogRow | None:
    conn = db.conn
    if not state.notification_applies(status, request_id):
        return None
    if request_id is not None:
        v = conn.execute(
            f"SELECT {_COLUMNS} FROM log_requests WHERE charger_id = ? AND request_id = ? AND command = ?"
            " ORDER BY id DESC LIMIT 1",
            (charger_id, request_id, command),
        ).fetchone()
        if v is None:
            return None
        return _add_status(conn, _row(v), status, at)
    cur = conn.execute(
        "SELECT id, status FROM log_requests WHERE charger_id = ? AND command = ? ORDER BY id DESC LIMIT ?",
        (charger_id, command, DIAGNOSTICS_CANDIDATES),
    )
    target = state.latest_open([Candidate(i, s) for i, s in cur.fetchall()])
    if target is None:
        return None
    return _add_status(conn, _must(conn, target), status, at)


def _file(db: sqlite_utils.Database, log_id: int, info: FileInfo) -> LogRow:
    conn = db.conn
    cur = conn.execute(
        "UPDATE log_requests SET upload_state = ?, file_path = ?, file_name = ?, file_size = ?, file_sha256 = ?,"
        " file_received_at = ?, updated_at = ? WHERE id = ? AND upload_state = ?",
        (
            UPLOAD_RECEIVED,
            info.path,
            info.name,
            info.size,
            info.sha256,
            iso_utc(info.at),
            iso_utc(info.at),
            log_id,
            UPLOAD_OPEN,
        ),
    )
    if cur.rowcount != 1:
        raise ConflictError("this upload URL was already used or is no longer valid", code="upload_used")
    return _must(conn, log_id)


class LogRepository:
    """The log_requests table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, new: NewLogRequest) -> LogRow:
        """Store a request about to be sent (status Requested), committed before it returns. Raises
        sqlite3.IntegrityError if the token hash is already used (a 256-bit token: never)."""
        return await self._store.write(functools.partial(_insert, new=new))

    async def set_command(self, log_id: int, command: str) -> LogRow:
        """The request goes out as `command` instead (a 1.6 GetLog falling back to GetDiagnostics)."""
        return await self._store.write(functools.partial(_set_command, log_id=log_id, command=command))

    async def record_reply(
        self, log_id: int, status: str, filename: str | None, at: datetime
    ) -> tuple[LogRow, list[LogRow]]:
        """The charger's reply: its status and file name. Returns the row and the charger's other GetLog rows
        this reply cancelled (AcceptedCanceled)."""
        return await self._store.write(
            functools.partial(_reply, log_id=log_id, status=status, filename=filename, at=at)
        )

    async def record_failure(self, log_id: int, status: str, code: str, message: str, at: datetime) -> LogRow:
        """The call failed (`status` Failed: the token is void) or got no answer (TimedOut: it stays valid)."""
        return await self._store.write(
            functools.partial(_failure, log_id=log_id, status=status, code=code, message=message, at=at)
        )

    async def record_notification(
        self, charger_id: str, command: str, request_id: int | None, status: str, at: datetime
    ) -> LogRow | None:
        """A charger's status notification, added to the request it belongs to (see `ampgate.logs.state`):
        the charger's newest `command` row with `request_id`, or without one its newest open row. Returns the
        row, or None when it belongs to none."""
        return await self._store.write(
            functools.partial(
                _notification,
                charger_id=charger_id,
                command=command,
                request_id=request_id,
                status=status,
                at=at,
            )
        )

    async def record_file(self, log_id: int, info: FileInfo) -> LogRow:
        """The file of the request was received. Raises ConflictError `upload_used` if the row no longer
        takes an upload (received already, or voided meanwhile)."""
        return await self._store.write(functools.partial(_file, log_id=log_id, info=info))

    def by_token_hash(self, token_hash: str) -> LogRow | None:
        """The request whose upload token has this SHA-256, or None."""
        v = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM log_requests WHERE upload_token_hash = ?", (token_hash,)
        ).fetchone()
        return None if v is None else _row(v)

    def get(self, log_id: int) -> LogRow | None:
        """The request `log_id`, or None."""
        return read_one(self._store.reader, log_id)

    def page(self, charger_id: str, limit: int, before: int | None = None) -> list[LogRow]:
        """Up to `limit` of the charger's requests, newest first, with an id below `before`."""
        if before is None:
            cur = self._store.reader.execute(
                f"SELECT {_COLUMNS} FROM log_requests WHERE charger_id = ? ORDER BY id DESC LIMIT ?",
                (charger_id, limit),
            )
        else:
            cur = self._store.reader.execute(
                f"SELECT {_COLUMNS} FROM log_requests WHERE charger_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (charger_id, before, limit),
            )
        return [_row(v) for v in cur.fetchall()]
