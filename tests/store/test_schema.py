"""The schema is created on first open, recorded in schema_version, and left alone on later opens."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ampgate.clock import iso_utc
from ampgate.load import TopologyRepository
from ampgate.store import (
    ApiTokenRepository,
    BootReport,
    ChargerRepository,
    ConnectorStatusRepository,
    IdTokenRepository,
    Store,
    TransactionRepository,
    schema,
)
from ampgate.store.schema import MIGRATIONS, schema_version

RELEASE_DUMP = Path(__file__).parent / "data" / "release-0.1.0.sql"

BOOT = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def test_new_file_gets_every_table_and_wal(db_path: str) -> None:
    Store(db_path).close()
    with sqlite3.connect(db_path) as conn:
        assert columns(conn, "chargers") == [
            "id",
            "password_hash",
            "vendor",
            "model",
            "serial",
            "firmware",
            "protocol",
            "registered_at",
            "last_boot_at",
            "accepted",
            "firmware_status",
            "firmware_request_id",
            "firmware_status_at",
            "security_profile",
        ]
        assert columns(conn, "api_tokens") == [
            "id",
            "token_hash",
            "role",
            "label",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]
        assert schema_version(conn) == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopening_keeps_data_and_version(db_path: str) -> None:
    s = Store(db_path)
    ApiTokenRepository(s).create("viewer")
    s.close()
    s2 = Store(db_path)
    assert ApiTokenRepository(s2).count() == 1
    s2.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    conn.close()


def test_a_version_2_database_gains_the_firmware_status_columns_and_keeps_its_rows(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database as the ampgate before migration 3 left it, made by the real mechanism stopped at 2.
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:2])
    old = Store(db_path)
    ChargerRepository(old).record_boot(
        BootReport(
            charger_id="CP-OLD",
            vendor="V",
            model="M",
            serial=None,
            firmware="1.0",
            protocol="ocpp1.6",
            at=BOOT,
        )
    )
    old.close()  # runs the queued boot record
    with sqlite3.connect(db_path) as conn:
        assert schema_version(conn) == 2 and "firmware_status" not in columns(conn, "chargers")
    conn.close()
    monkeypatch.undo()

    store = Store(db_path)
    try:
        row = ChargerRepository(store).get("CP-OLD")
        assert row is not None and (row.firmware, row.last_boot_at) == ("1.0", BOOT)
        assert (row.firmware_status, row.firmware_request_id, row.firmware_status_at) == (None, None, None)
        ChargerRepository(store).record_firmware_status("CP-OLD", status="Downloading", request_id=4, at=BOOT)
    finally:
        store.close()
    with sqlite3.connect(db_path) as conn:
        assert schema_version(conn) == len(MIGRATIONS)
        assert conn.execute(
            "SELECT firmware, firmware_status, firmware_request_id, firmware_status_at FROM chargers"
        ).fetchall() == [("1.0", "Downloading", 4, "2026-03-04T05:06:07.890Z")]
    conn.close()


def test_database_from_a_newer_ampgate_is_refused(db_path: str) -> None:
    Store(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        Store(db_path)


def test_timestamps_are_utc_with_z() -> None:
    from datetime import datetime, timedelta, timezone

    paris = timezone(timedelta(hours=1))
    assert iso_utc(datetime(2026, 1, 2, 4, 5, 6, 789123, tzinfo=paris)) == "2026-01-02T03:05:06.789Z"
    with pytest.raises(ValueError):
        iso_utc(datetime(2026, 1, 2))


def test_a_database_of_the_released_version_opens_and_reads_through_every_repository(db_path: str) -> None:
    # Written by ampgate 0.1.0 as released (its own Store API), dumped to SQL: the file an operator upgrading
    # from that release has. It must open (migrating if the schema moved on) and read back unchanged.
    with sqlite3.connect(db_path) as conn:
        conn.executescript(RELEASE_DUMP.read_text())
        assert schema_version(conn) == 3
    conn.close()
    store = Store(db_path)
    try:
        with sqlite3.connect(db_path) as conn:
            assert schema_version(conn) == len(MIGRATIONS)
        conn.close()
        chargers = ChargerRepository(store)
        assert [r.id for r in chargers.page(10)] == ["CP-201", "CP-REG"]
        reg = chargers.get("CP-REG")
        assert (
            reg is not None
            and reg.accepted
            and reg.has_password
            and (reg.vendor, reg.firmware) == ("Acme", "1.0")
        )
        v2 = chargers.get("CP-201")
        assert (
            v2 is not None
            and v2.accepted
            and (v2.firmware_status, v2.firmware_request_id) == ("Installed", 5)
        )
        assert sorted(chargers.accepted_ids()) == ["CP-201", "CP-REG"]
        assert [s.status for s in ConnectorStatusRepository(store).statuses("CP-201")] == ["Occupied"]
        assert ConnectorStatusRepository(store).statuses("CP-REG")[0].evse_id is None
        token = IdTokenRepository(store).get("tag-1")
        assert token is not None and (token.status, token.group) == ("Accepted", "FLEET")
        txs = TransactionRepository(store).page(10)
        assert [(t.charger_id, t.energy_wh) for t in txs] == [("CP-201", 0.0), ("CP-REG", 7000.0)]
        assert [s.value for s in TransactionRepository(store).samples(txs[1].id)] == [4500.0]
        assert ApiTokenRepository(store).count() == 1
        # Tables added since: there, and empty.
        topology = TopologyRepository(store)
        assert topology.sites(10) == [] and topology.placement("CP-REG") is None
    finally:
        store.close()


def test_migrating_to_autoincrement_keeps_transactions_and_starts_above_every_id_ever_named(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration that rebuilds `transactions` with AUTOINCREMENT keeps every row and index, and the next id
    is above the highest one any table names: here transaction 9 is gone (only its samples are left), so a
    plain INTEGER PRIMARY KEY would hand 9 out again."""
    at = iso_utc(BOOT)
    before = next(i for i, m in enumerate(MIGRATIONS) if "AUTOINCREMENT" in m)
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:before])
    Store(db_path).close()
    monkeypatch.undo()
    with sqlite3.connect(db_path) as conn:
        conn.executemany(
            "INSERT INTO transactions (id, charger_id, protocol, started_at, meter_start_wh) VALUES (?, ?, ?, ?, ?)",
            [(i, "CP", "ocpp1.6", at, float(i)) for i in (1, 2, 5)],
        )
        conn.execute(
            "INSERT INTO meter_samples (transaction_id, at, measurand, value, unit) VALUES (9, ?, 'E', 1, 'Wh')",
            (at,),
        )
        assert conn.execute("SELECT max(id) + 1 FROM transactions").fetchone()[0] == 6
    conn.close()

    Store(db_path).close()
    with sqlite3.connect(db_path) as conn:
        assert schema_version(conn) == len(MIGRATIONS)
        assert (
            "AUTOINCREMENT"
            in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'transactions'").fetchone()[0]
        )
        assert conn.execute("SELECT id, meter_start_wh FROM transactions ORDER BY id").fetchall() == [
            (1, 1.0),
            (2, 2.0),
            (5, 5.0),
        ]
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'transactions'")
        }
        assert indexes >= {
            "transactions_remote",
            "transactions_start16",
            "transactions_charger",
            "transactions_started",
            "transactions_open",
        }
        conn.execute(
            "INSERT INTO transactions (charger_id, protocol, started_at) VALUES ('CP', 'ocpp1.6', ?)", (at,)
        )
        assert conn.execute("SELECT max(id) FROM transactions").fetchone()[0] == 10
    conn.close()
