"""The charger_reports and charger_report_parts tables: one row per (charger, kind, request id) and one per part
received, its payload as the charger sent it (JSON). A part resent (same seqNo) replaces nothing."""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.reports.parts import complete
from ampgate.store import Store


class Part(msgspec.Struct, frozen=True, kw_only=True):
    """One part of a report as received: `seq_no` None for the kinds that number none (they are numbered in
    order of arrival)."""

    charger_id: str
    kind: str
    request_id: int
    seq_no: int | None
    tbc: bool
    generated_at: datetime | None
    received_at: datetime
    payload: bytes  # the request as JSON


_encode_part = msgspec.json.Encoder().encode


def part_of(charger_id: str, kind: str, req: Any, received_at: datetime) -> Part:
    """The part a report message `req` (its generated request Struct) is: its requestId, seqNo (None for the
    messages numbered by arrival), tbc, generatedAt, and the message itself as JSON."""
    return Part(
        charger_id=charger_id,
        kind=kind,
        request_id=req.request_id,
        seq_no=getattr(req, "seq_no", None),
        tbc=bool(req.tbc),
        generated_at=getattr(req, "generated_at", None),
        received_at=received_at,
        payload=_encode_part(req),
    )


class ReportRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    charger_id: str
    kind: str
    request_id: int
    requested_at: datetime | None
    completed_at: datetime | None
    parts: int


_COLUMNS = "id, charger_id, kind, request_id, requested_at, completed_at, parts"


def _row(v: tuple[Any, ...]) -> ReportRow:
    return ReportRow(
        id=v[0],
        charger_id=v[1],
        kind=v[2],
        request_id=v[3],
        requested_at=parse_iso(v[4]),
        completed_at=parse_iso(v[5]),
        parts=v[6],
    )


def open_report(db: sqlite_utils.Database, charger_id: str, kind: str, request_id: int, at: str) -> int:
    """A request of ours goes out: a fresh report row (a report of the same request id before is replaced)."""
    conn = db.conn
    old = conn.execute(
        "SELECT id FROM charger_reports WHERE charger_id = ? AND kind = ? AND request_id = ?",
        (charger_id, kind, request_id),
    ).fetchone()
    if old is not None:
        conn.execute("DELETE FROM charger_report_parts WHERE report_id = ?", (old[0],))
        conn.execute("DELETE FROM charger_reports WHERE id = ?", (old[0],))
    cur = conn.execute(
        "INSERT INTO charger_reports (charger_id, kind, request_id, requested_at) VALUES (?, ?, ?, ?)",
        (charger_id, kind, request_id, at),
    )
    assert cur.lastrowid is not None
    return int(cur.lastrowid)


def add_part(db: sqlite_utils.Database, part: Part) -> tuple[int, bool, bool]:
    """Store a part; returns (report id, stored: False for a resent seqNo, complete: the report is whole now
    and was not before)."""
    conn = db.conn
    received = iso_utc(part.received_at)
    found = conn.execute(
        "SELECT id, completed_at FROM charger_reports WHERE charger_id = ? AND kind = ? AND request_id = ?",
        (part.charger_id, part.kind, part.request_id),
    ).fetchone()
    if found is None:  # a report nobody asked this node for (or asked before a restart): kept all the same
        cur = conn.execute(
            "INSERT INTO charger_reports (charger_id, kind, request_id) VALUES (?, ?, ?)",
            (part.charger_id, part.kind, part.request_id),
        )
        assert cur.lastrowid is not None
        report_id, was_complete = int(cur.lastrowid), False
    else:
        report_id, was_complete = int(found[0]), found[1] is not None
    seq_no = part.seq_no
    if seq_no is None:
        seq_no = conn.execute(
            "SELECT coalesce(max(seq_no) + 1, 0) FROM charger_report_parts WHERE report_id = ?", (report_id,)
        ).fetchone()[0]
    cur = conn.execute(
        "INSERT OR IGNORE INTO charger_report_parts (report_id, seq_no, tbc, generated_at, received_at, payload)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            report_id,
            seq_no,
            int(part.tbc),
            None if part.generated_at is None else iso_utc(part.generated_at),
            received,
            part.payload.decode(),
        ),
    )
    if cur.rowcount == 0:
        return report_id, False, False
    seqs = [
        r[0]
        for r in conn.execute("SELECT seq_no FROM charger_report_parts WHERE report_id = ?", (report_id,))
    ]
    last = conn.execute(
        "SELECT min(seq_no) FROM charger_report_parts WHERE report_id = ? AND tbc = 0", (report_id,)
    ).fetchone()[0]
    now_complete = complete(seqs, last)
    conn.execute(
        "UPDATE charger_reports SET parts = ?, completed_at = CASE WHEN ? THEN coalesce(completed_at, ?) END"
        " WHERE id = ?",
        (len(seqs), now_complete, received, report_id),
    )
    return report_id, True, now_complete and not was_complete


def delete_report(db: sqlite_utils.Database, charger_id: str, kind: str, request_id: int) -> bool:
    """Remove a report and its parts (a writer op, for features that delete a report together with rows of
    their own); False if there was none."""
    found = db.conn.execute(
        "SELECT id FROM charger_reports WHERE charger_id = ? AND kind = ? AND request_id = ?",
        (charger_id, kind, request_id),
    ).fetchone()
    if found is None:
        return False
    db.conn.execute("DELETE FROM charger_report_parts WHERE report_id = ?", (found[0],))
    db.conn.execute("DELETE FROM charger_reports WHERE id = ?", (found[0],))
    return True


def read_report(
    conn: sqlite3.Connection, charger_id: str, kind: str, request_id: int
) -> tuple[ReportRow, list[bytes]] | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM charger_reports WHERE charger_id = ? AND kind = ? AND request_id = ?",
        (charger_id, kind, request_id),
    ).fetchone()
    if row is None:
        return None
    parts = conn.execute(
        "SELECT payload FROM charger_report_parts WHERE report_id = ? ORDER BY seq_no", (row[0],)
    ).fetchall()
    return _row(row), [p[0].encode() for p in parts]


class ReportRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def max_request_id(self) -> int:
        """The highest request id any report was kept under (0 for none)."""
        return int(
            self._store.reader.execute("SELECT coalesce(max(request_id), 0) FROM charger_reports").fetchone()[
                0
            ]
        )

    async def open(self, charger_id: str, kind: str, request_id: int, at: datetime) -> int:
        """Begin the report our request `request_id` asks for; returns its row id."""
        return await self._store.write(
            functools.partial(
                open_report, charger_id=charger_id, kind=kind, request_id=request_id, at=iso_utc(at)
            )
        )

    async def add(self, part: Part) -> tuple[int, bool, bool]:
        """Store a part and wait for the commit: (report id, stored, completed by this part)."""
        return await self._store.write(functools.partial(add_part, part=part))

    def get(self, charger_id: str, kind: str, request_id: int) -> tuple[ReportRow, list[bytes]] | None:
        """The report and its parts' payloads in order, or None."""
        return read_report(self._store.reader, charger_id, kind, request_id)

    def page(self, charger_id: str, kind: str, limit: int, before: int | None = None) -> list[ReportRow]:
        """The charger's reports of `kind`, newest first."""
        args: tuple[Any, ...] = (charger_id, kind)
        clause = ""
        if before is not None:
            clause, args = " AND id < ?", (*args, before)
        cur = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM charger_reports WHERE charger_id = ? AND kind = ?{clause}"
            " ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        return [_row(v) for v in cur.fetchall()]

    async def delete(self, charger_id: str, kind: str, request_id: int) -> bool:
        """Remove a report and its parts (personal data on request); False if there was none."""

        return await self._store.write(
            functools.partial(delete_report, charger_id=charger_id, kind=kind, request_id=request_id)
        )
