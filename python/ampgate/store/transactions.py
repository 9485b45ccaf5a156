"""Charging transactions as stored, the same record for OCPP 1.6 (StartTransaction / MeterValues /
StopTransaction) and 2.0.1 (TransactionEvent), with their meter samples.

Every op here is idempotent against a charger that resends after a reconnect (1.6 §3.7, 2.0.1 [E04]):
- 1.6 StartTransaction: the same connector + idTag + timestamp + meterStart finds the transaction it created;
- 1.6 StopTransaction of a stopped transaction changes nothing;
- 2.0.1 TransactionEvent: (transactionId, seqNo) is recorded and a repeat changes nothing;
- meter samples are keyed by (transaction, timestamp, measurand, phase), so a resent sample is one sample;
  signed meter values the same;
- a transaction's charging timeline (charging or not, from an instant on) is keyed by (transaction, instant).

Write ops run on the writer thread (they take a `sqlite_utils.Database`); reads take the reader connection.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store.store import Store

# The measurand whose register readings give a transaction's energy (both versions' default measurand).
ENERGY = "Energy.Active.Import.Register"
# The protocol column: transactions numbered by the node (1.6) and named by the charger (2.0.1).
OCPP16 = "ocpp1.6"
OCPP201 = "ocpp2.0.1"
StopOutcome = Literal["stopped", "already", "unknown"]

_COLUMNS = (
    "id, charger_id, protocol, remote_id, evse_id, connector_id, id_token, started_at, stopped_at,"
    " meter_start_wh, meter_stop_wh, energy_wh, stop_reason"
)


class Sample(msgspec.Struct, frozen=True, array_like=True):
    """One normalised meter reading: Wh, W, A or Percent; `phase` "" when the reading is not per phase."""

    at: str  # ISO 8601 UTC as stored
    measurand: str
    phase: str
    value: float
    unit: str
    context: str | None = None


class SignedValue(msgspec.Struct, frozen=True, kw_only=True):
    """A meter value as the charger's meter signed it, kept as received (what calibration law wants on a bill):
    2.0.1 `signedMeterValue` (`format` "signedMeterValue" with its signing and encoding methods and public key)
    or a 1.6 sampled value in format SignedData (`format` "SignedData", the value as `signed_data`)."""

    at: str  # ISO 8601 UTC as stored
    measurand: str
    phase: str
    context: str | None
    format: str
    signed_data: str
    signing_method: str | None = None
    encoding_method: str | None = None
    public_key: str | None = None


class TransactionStart(msgspec.Struct, frozen=True, kw_only=True):
    """A transaction the node numbers, as the charger started it (1.6 StartTransaction)."""

    charger_id: str
    connector_id: int
    id_token: str
    started_at: datetime
    meter_start_wh: float


class TransactionStop(msgspec.Struct, frozen=True, kw_only=True):
    """The end of a transaction the node numbered, with its last samples (1.6 StopTransaction)."""

    charger_id: str
    tx_id: int
    stopped_at: datetime
    meter_stop_wh: float
    reason: str
    samples: list[Sample]
    signed: list[SignedValue] = []


class TransactionChange(msgspec.Struct, frozen=True, kw_only=True):
    """One event (Started, Updated or Ended) of a transaction the charger names (2.0.1 TransactionEvent)."""

    charger_id: str
    remote_id: str
    seq_no: int
    event_type: str
    at: datetime
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    stop_reason: str | None
    samples: list[Sample]
    # From this event's instant on the EV is charging (True) or not (False); None: the event does not say.
    charging: bool | None = None
    signed: list[SignedValue] = []


class TransactionRow(msgspec.Struct, frozen=True, kw_only=True):
    """One transaction, whichever protocol version produced it."""

    id: int  # the node's id; also the 1.6 transactionId the charger was given
    charger_id: str
    protocol: str
    remote_id: str | None  # the 2.0.1 transactionId the charger chose
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    started_at: datetime
    stopped_at: datetime | None
    meter_start_wh: float | None
    meter_stop_wh: float | None
    energy_wh: float | None  # (stop, or latest register reading) - start, when both are known
    stop_reason: str | None

    @property
    def charger_transaction_id(self) -> str:
        """The id the charger uses: the one it chose (2.0.1), else the node's (1.6) as text."""
        return self.remote_id if self.remote_id is not None else str(self.id)


def _row(v: tuple[Any, ...]) -> TransactionRow:
    started = parse_iso(v[7])
    assert started is not None  # NOT NULL in the schema
    return TransactionRow(
        id=v[0],
        charger_id=v[1],
        protocol=v[2],
        remote_id=v[3],
        evse_id=v[4],
        connector_id=v[5],
        id_token=v[6],
        started_at=started,
        stopped_at=parse_iso(v[8]),
        meter_start_wh=v[9],
        meter_stop_wh=v[10],
        energy_wh=v[11],
        stop_reason=v[12],
    )


# -- reads ----------------------------------------------------------------------------------------------------


def read_transaction(conn: sqlite3.Connection, tx_id: int) -> TransactionRow | None:
    """The transaction with the node's id `tx_id`, or None."""
    v = conn.execute(f"SELECT {_COLUMNS} FROM transactions WHERE id = ?", (tx_id,)).fetchone()
    return None if v is None else _row(v)


def read_page(
    conn: sqlite3.Connection,
    limit: int,
    before: int | None,
    charger_id: str | None,
    since: str | None,
    until: str | None,
) -> list[TransactionRow]:
    """Up to `limit` transactions, newest id first, with an id below `before` (keyset pagination), of
    `charger_id` if given, started at or after `since` and before `until` (ISO 8601 UTC as stored)."""
    where, args = [], []
    for cond, arg in (
        ("id < ?", before),
        ("charger_id = ?", charger_id),
        ("started_at >= ?", since),
        ("started_at < ?", until),
    ):
        if arg is not None:
            where.append(cond)
            args.append(arg)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM transactions {clause} ORDER BY id DESC LIMIT ?", (*args, limit)
    )
    return [_row(v) for v in cur.fetchall()]


def read_samples(conn: sqlite3.Connection, tx_id: int) -> list[Sample]:
    """Every sample of the transaction in time order (tests and offline tools; the API pages them)."""
    cur = conn.execute(
        "SELECT at, measurand, phase, value, unit, context FROM meter_samples WHERE transaction_id = ?"
        " ORDER BY at, measurand, phase",
        (tx_id,),
    )
    return [Sample(*v) for v in cur.fetchall()]


# A sample's place in its transaction's time order: (at, measurand, phase), the primary key after the
# transaction id, so a page is one range read of the key.
SampleKey = tuple[str, str, str]


def read_sample_page(
    conn: sqlite3.Connection, tx_id: int, limit: int, after: SampleKey | None, measurand: str | None
) -> list[Sample]:
    """Up to `limit` samples of the transaction in time order (at, measurand, phase), after the key `after`
    (keyset pagination), of one `measurand` if given. Reads only the page's rows of the primary key (plus the
    skipped ones of other measurands when filtering)."""
    return read_samples_of(conn, tx_id, None if measurand is None else (measurand,), limit, after)


def read_samples_of(
    conn: sqlite3.Connection,
    tx_id: int,
    measurands: Sequence[str] | None,
    limit: int,
    after: SampleKey | None,
) -> list[Sample]:
    """Up to `limit` samples of the transaction of the given `measurands` (at least one; None: every one) in
    time order (at, measurand, phase), after the key `after`: one range read of the primary key that returns
    only those."""
    where, args = ["transaction_id = ?"], list[object]([tx_id])
    if after is not None:
        where.append("(at, measurand, phase) > (?, ?, ?)")
        args.extend(after)
    if measurands is not None:
        where.append(f"measurand IN ({', '.join('?' * len(measurands))})")
        args.extend(measurands)
    cur = conn.execute(
        "SELECT at, measurand, phase, value, unit, context FROM meter_samples"
        f" WHERE {' AND '.join(where)} ORDER BY at, measurand, phase LIMIT ?",
        (*args, limit),
    )
    return [Sample(*v) for v in cur.fetchall()]


def read_charging(conn: sqlite3.Connection, tx_id: int) -> list[tuple[str, bool]]:
    """The transaction's charging timeline, (ISO 8601 UTC instant, charging) in time order."""
    cur = conn.execute(
        "SELECT at, charging FROM transaction_charging WHERE transaction_id = ? ORDER BY at", (tx_id,)
    )
    return [(v[0], bool(v[1])) for v in cur.fetchall()]


def read_signed(conn: sqlite3.Connection, tx_id: int) -> list[SignedValue]:
    """The transaction's signed meter values in time order."""
    cur = conn.execute(
        "SELECT at, measurand, phase, context, format, signed_data, signing_method, encoding_method, public_key"
        " FROM signed_meter_values WHERE transaction_id = ? ORDER BY at, measurand, phase",
        (tx_id,),
    )
    return [
        SignedValue(
            at=v[0],
            measurand=v[1],
            phase=v[2],
            context=v[3],
            format=v[4],
            signed_data=v[5],
            signing_method=v[6],
            encoding_method=v[7],
            public_key=v[8],
        )
        for v in cur.fetchall()
    ]


def read_last_samples(conn: sqlite3.Connection, tx_ids: list[int]) -> dict[int, list[Sample]]:
    """For each transaction, its samples taken at its latest sample time (its last meter values)."""
    out: dict[int, list[Sample]] = {i: [] for i in tx_ids}
    for tx_id in tx_ids:
        cur = conn.execute(
            "SELECT at, measurand, phase, value, unit, context FROM meter_samples WHERE transaction_id = ?1"
            " AND at = (SELECT max(at) FROM meter_samples WHERE transaction_id = ?1) ORDER BY measurand, phase",
            (tx_id,),
        )
        out[tx_id] = [Sample(*v) for v in cur.fetchall()]
    return out


# -- writes ---------------------------------------------------------------------------------------------------


def _add_samples(conn: sqlite3.Connection, tx_id: int, samples: list[Sample]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO meter_samples (transaction_id, at, measurand, phase, value, unit, context)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(tx_id, s.at, s.measurand, s.phase, s.value, s.unit, s.context) for s in samples],
    )


def _add_signed(conn: sqlite3.Connection, tx_id: int, signed: list[SignedValue]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO signed_meter_values (transaction_id, at, measurand, phase, context, format,"
        " signed_data, signing_method, encoding_method, public_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                tx_id,
                v.at,
                v.measurand,
                v.phase,
                v.context,
                v.format,
                v.signed_data,
                v.signing_method,
                v.encoding_method,
                v.public_key,
            )
            for v in signed
        ],
    )


def set_charging(db: sqlite_utils.Database, tx_id: int, at: str, charging: bool) -> None:
    """From `at` (ISO 8601 UTC) on, transaction `tx_id` is charging or not; a later report for the same instant
    replaces the earlier one."""
    db.conn.execute(
        "INSERT OR REPLACE INTO transaction_charging (transaction_id, at, charging) VALUES (?, ?, ?)",
        (tx_id, at, int(charging)),
    )


def _energy_reading(conn: sqlite3.Connection, tx_id: int, at: str, later: bool) -> float | None:
    # The register reading at `at` (or the latest one from `at` on): a read of the key range from the samples
    # just added, never the transaction's whole history.
    op, order = (">=", "DESC") if later else ("=", "ASC")
    v = conn.execute(
        f"SELECT value FROM meter_samples WHERE transaction_id = ? AND at {op} ? AND measurand = ?"
        f" AND phase = '' ORDER BY at {order} LIMIT 1",
        (tx_id, at, ENERGY),
    ).fetchone()
    return None if v is None else float(v[0])


def _update_energy(conn: sqlite3.Connection, tx_id: int, added: list[Sample]) -> None:
    """Keep the transaction's running energy state current after `added` samples went in: fill the start
    reading from the first register sample when the charger gave none (2.0.1), keep the latest register reading
    (`meter_last_wh`), and energy = (stop or latest) - start.

    Incremental: the row's columns are the running state, so a batch without register samples reads no sample
    at all, and one with them reads only the key range from its own instants on (normally just its own rows).
    The start is filled only while it is null, i.e. before any register sample was stored, so the batch's
    earliest reading is the transaction's first one."""
    ats = [s.at for s in added if s.measurand == ENERGY and s.phase == ""]
    first = last = None
    if ats:
        # What is stored now (a resent sample keeps the value stored first: INSERT OR IGNORE).
        last = _energy_reading(conn, tx_id, max(ats), later=True)
        first = _energy_reading(conn, tx_id, min(ats), later=False)
    conn.execute(
        """
        UPDATE transactions SET
            meter_start_wh = coalesce(meter_start_wh, ?1),
            meter_last_wh = coalesce(?2, meter_last_wh),
            energy_wh = coalesce(meter_stop_wh, ?2, meter_last_wh, meter_start_wh)
                - coalesce(meter_start_wh, ?1)
        WHERE id = ?3
        """,
        (first, last, tx_id),
    )


def _owned(conn: sqlite3.Connection, charger_id: str, tx_id: int) -> tuple[Any, ...] | None:
    return conn.execute(
        "SELECT id, stopped_at FROM transactions WHERE id = ? AND charger_id = ?", (tx_id, charger_id)
    ).fetchone()


def start16(db: sqlite_utils.Database, start: TransactionStart) -> tuple[int, bool]:
    """Record a 1.6 StartTransaction; returns (transactionId, created). The same start resent (same connector,
    idTag, timestamp and meterStart) returns the id it got the first time and creates nothing. Raises
    ValueError for a naive `started_at`."""
    conn = db.conn
    key = (start.charger_id, start.connector_id, iso_utc(start.started_at), OCPP16, start.id_token)
    found = conn.execute(
        "SELECT id FROM transactions WHERE charger_id = ? AND connector_id = ? AND started_at = ?"
        " AND protocol = ? AND id_token = ? AND meter_start_wh = ?",
        (*key, start.meter_start_wh),
    ).fetchone()
    if found is not None:
        return int(found[0]), False
    cur = conn.execute(
        "INSERT INTO transactions (charger_id, connector_id, started_at, protocol, id_token, meter_start_wh,"
        " energy_wh) VALUES (?, ?, ?, ?, ?, ?, 0)",
        (*key, start.meter_start_wh),
    )
    assert cur.lastrowid is not None
    return int(cur.lastrowid), True


def meter_values16(
    db: sqlite_utils.Database,
    charger_id: str,
    tx_id: int,
    samples: list[Sample],
    signed: list[SignedValue] | tuple[()] = (),
) -> bool:
    """Add 1.6 MeterValues samples (and signed values) to transaction `tx_id` of the charger; False (nothing
    written) when the charger has no such transaction."""
    conn = db.conn
    if _owned(conn, charger_id, tx_id) is None:
        return False
    _add_samples(conn, tx_id, samples)
    _add_signed(conn, tx_id, list(signed))
    _update_energy(conn, tx_id, samples)
    return True


def stop16(db: sqlite_utils.Database, stop: TransactionStop) -> StopOutcome:
    """Record a 1.6 StopTransaction (with its transactionData). Returns "stopped", "already" (it was stopped
    before: nothing changes, so a resent stop is not a second stop) or "unknown" (no such transaction). Raises
    ValueError for a naive `stopped_at`."""
    conn = db.conn
    stopped_at = iso_utc(stop.stopped_at)
    found = _owned(conn, stop.charger_id, stop.tx_id)
    if found is None:
        return "unknown"
    if found[1] is not None:
        return "already"
    _add_samples(conn, stop.tx_id, stop.samples)
    _add_signed(conn, stop.tx_id, stop.signed)
    conn.execute(
        "UPDATE transactions SET stopped_at = ?, meter_stop_wh = ?, stop_reason = ? WHERE id = ?",
        (stopped_at, stop.meter_stop_wh, stop.reason, stop.tx_id),
    )
    _update_energy(conn, stop.tx_id, stop.samples)
    return "stopped"


def event201(db: sqlite_utils.Database, change: TransactionChange) -> tuple[int, bool]:
    """Apply a 2.0.1 TransactionEvent; returns (the node's id, duplicate). The transaction is created by the
    first event that names it (normally Started; offline delivery may reorder). A (transactionId, seqNo) seen
    before is a duplicate [E04] and changes nothing. Raises ValueError for a naive `at`."""
    at = iso_utc(change.at)
    reported = (change.evse_id, change.connector_id, change.id_token)
    conn = db.conn
    found = conn.execute(
        "SELECT id FROM transactions WHERE charger_id = ? AND remote_id = ?",
        (change.charger_id, change.remote_id),
    ).fetchone()
    if found is None:
        cur = conn.execute(
            "INSERT INTO transactions (charger_id, protocol, remote_id, evse_id, connector_id, id_token,"
            " started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (change.charger_id, OCPP201, change.remote_id, *reported, at),
        )
        assert cur.lastrowid is not None
        tx_id = int(cur.lastrowid)
    else:
        tx_id = int(found[0])
    seen = conn.execute(
        "INSERT OR IGNORE INTO transaction_events (transaction_id, seq_no) VALUES (?, ?)",
        (tx_id, change.seq_no),
    )
    if seen.rowcount == 0:
        return tx_id, True
    conn.execute(
        "UPDATE transactions SET evse_id = coalesce(evse_id, ?), connector_id = coalesce(connector_id, ?),"
        " id_token = coalesce(id_token, ?) WHERE id = ?",
        (*reported, tx_id),
    )
    if change.event_type == "Started":
        # A Started that arrives after a later event (offline reordering) still gives the start time.
        conn.execute("UPDATE transactions SET started_at = min(started_at, ?) WHERE id = ?", (at, tx_id))
    _add_samples(conn, tx_id, change.samples)
    _add_signed(conn, tx_id, change.signed)
    if change.charging is not None:
        set_charging(db, tx_id, at, change.charging)
    _update_energy(conn, tx_id, change.samples)
    if change.event_type == "Ended":
        # The stop reading is the latest register reading, which the running state already holds.
        conn.execute(
            "UPDATE transactions SET stopped_at = coalesce(stopped_at, ?), stop_reason = coalesce(?, stop_reason),"
            " meter_stop_wh = meter_last_wh,"
            " energy_wh = coalesce(meter_last_wh, meter_start_wh) - meter_start_wh WHERE id = ?",
            (at, change.stop_reason, tx_id),
        )
    return tx_id, False


class TransactionRepository:
    """The transactions table and their meter samples. Every message's write waits for its commit, made durable
    (fsynced): these are the messages a charger must not have to send twice, and the handler replies after
    the commit, so an acknowledged one survives a power cut as well as a crash."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def start(self, start: TransactionStart) -> tuple[int, bool]:
        """Record a transaction the node numbers (1.6 StartTransaction); returns (its id, created). The same
        start resent (same connector, token, time and meter start) returns the first id and creates nothing.
        Raises ValueError for a naive `started_at`."""
        return await self._store.write(functools.partial(start16, start=start), durable=True)

    async def add_samples(
        self,
        charger_id: str,
        tx_id: int,
        samples: list[Sample],
        signed: list[SignedValue] | tuple[()] = (),
    ) -> bool:
        """Add meter samples (and the signed values among them) to the charger's transaction `tx_id`; False
        (nothing written) when it has none."""
        return await self._store.write(
            functools.partial(
                meter_values16, charger_id=charger_id, tx_id=tx_id, samples=samples, signed=signed
            ),
            durable=True,
        )

    def record_charging(self, tx_id: int, at: datetime, charging: bool) -> None:
        """From `at` on, transaction `tx_id` is charging or not (fire-and-forget: a timeline another part
        derives, e.g. from 1.6 connector statuses, and can derive again). Raises ValueError for a naive `at`."""
        self._store.submit(functools.partial(set_charging, tx_id=tx_id, at=iso_utc(at), charging=charging))

    def charging(self, tx_id: int) -> list[tuple[datetime, bool]]:
        """The transaction's charging timeline: (from when, charging) in time order; empty when nobody said."""
        out = []
        for at, charging in read_charging(self._store.reader, tx_id):
            when = parse_iso(at)
            assert when is not None
            out.append((when, charging))
        return out

    def signed(self, tx_id: int) -> list[SignedValue]:
        """The signed meter values the charger sent with the transaction, in time order."""
        return read_signed(self._store.reader, tx_id)

    def after(self, tx_id: int, limit: int) -> list[TransactionRow]:
        """Up to `limit` transactions with an id above `tx_id`, oldest id first (whoever follows transactions
        from the bus finds the ones it missed)."""
        rows = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM transactions WHERE id > ? ORDER BY id LIMIT ?", (tx_id, limit)
        ).fetchall()
        return [_row(v) for v in rows]

    def last_id(self) -> int:
        """The highest transaction id so far (0 before the first)."""
        v = self._store.reader.execute("SELECT max(id) FROM transactions").fetchone()
        return int(v[0] or 0)

    async def stop(self, stop: TransactionStop) -> StopOutcome:
        """Record the end of the charger's transaction `tx_id` with its last samples: "stopped", "already"
        (stopped before: nothing changes) or "unknown". Raises ValueError for a naive `stopped_at`."""
        return await self._store.write(functools.partial(stop16, stop=stop), durable=True)

    async def apply_event(self, change: TransactionChange) -> tuple[int, bool]:
        """Apply an event (Started, Updated or Ended) of the transaction the charger names (2.0.1
        TransactionEvent); returns (the node's id, duplicate). The first event naming it creates it; a seq_no
        seen before changes nothing. Raises ValueError for a naive `at`."""
        return await self._store.write(functools.partial(event201, change=change), durable=True)

    def get(self, tx_id: int) -> TransactionRow | None:
        """The transaction with the node's id `tx_id`, or None."""
        return read_transaction(self._store.reader, tx_id)

    def ongoing(self, charger_id: str, evse_id: int) -> TransactionRow | None:
        """The charger's latest transaction on `evse_id` that has not ended (2.0.1), or None."""
        v = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM transactions WHERE charger_id = ? AND evse_id = ? AND stopped_at IS NULL"
            " ORDER BY id DESC LIMIT 1",
            (charger_id, evse_id),
        ).fetchone()
        return None if v is None else _row(v)

    def in_transaction(self, charger_id: str) -> bool:
        """Whether the charger has a transaction that has not ended (a firmware campaign installs when idle)."""
        return (
            self._store.reader.execute(
                "SELECT 1 FROM transactions WHERE charger_id = ? AND stopped_at IS NULL LIMIT 1",
                (charger_id,),
            ).fetchone()
            is not None
        )

    def open_transactions(self) -> list[TransactionRow]:
        """Every transaction that has not ended (the load ticker's truth about live sessions)."""
        rows = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM transactions WHERE stopped_at IS NULL ORDER BY id"
        ).fetchall()
        return [_row(v) for v in rows]

    def page(
        self,
        limit: int,
        *,
        before: int | None = None,
        charger_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[TransactionRow]:
        """Up to `limit` transactions, newest first, with an id below `before`, optionally of one charger and
        started in [since, until). Raises ValueError for a naive `since`/`until`."""
        return read_page(
            self._store.reader,
            limit,
            before,
            charger_id,
            None if since is None else iso_utc(since),
            None if until is None else iso_utc(until),
        )

    def samples(self, tx_id: int) -> list[Sample]:
        """Every meter sample of the transaction, in time order."""
        return read_samples(self._store.reader, tx_id)

    def sample_page(
        self, tx_id: int, limit: int, *, after: SampleKey | None = None, measurand: str | None = None
    ) -> list[Sample]:
        """Up to `limit` samples of the transaction in time order after the key `after`, optionally of one
        measurand."""
        return read_sample_page(self._store.reader, tx_id, limit, after, measurand)

    def samples_of(
        self, tx_id: int, measurands: Sequence[str], limit: int, *, after: SampleKey | None = None
    ) -> list[Sample]:
        """Up to `limit` samples of the transaction of one of `measurands`, in time order after the key
        `after` (what pricing reads: the register, power and current, page by page)."""
        return read_samples_of(self._store.reader, tx_id, measurands, limit, after)

    def last_samples(self, tx_ids: list[int]) -> dict[int, list[Sample]]:
        """Each transaction's samples at its latest sample time."""
        return read_last_samples(self._store.reader, tx_ids)
