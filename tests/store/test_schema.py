"""The schema is created on first open, recorded in schema_version, and left alone on later opens."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from ampgate.store import Store, schema
from ampgate.store.schema import MIGRATIONS, iso_utc, schema_version

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
        ]
        assert columns(conn, "api_tokens") == ["id", "token_hash", "role", "label", "created_at"]
        assert schema_version(conn) == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopening_keeps_data_and_version(db_path: str) -> None:
    s = Store(db_path)
    s.create_token("viewer")
    s.close()
    s2 = Store(db_path)
    assert s2.count_tokens() == 1
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
    old.record_boot("CP-OLD", vendor="V", model="M", serial=None, firmware="1.0", protocol="ocpp1.6", at=BOOT)
    old.close()  # runs the queued boot record
    with sqlite3.connect(db_path) as conn:
        assert schema_version(conn) == 2 and "firmware_status" not in columns(conn, "chargers")
    conn.close()
    monkeypatch.undo()

    store = Store(db_path)
    try:
        row = store.charger("CP-OLD")
        assert row is not None and (row.firmware, row.last_boot_at) == ("1.0", BOOT)
        assert (row.firmware_status, row.firmware_request_id, row.firmware_status_at) == (None, None, None)
        store.record_firmware_status("CP-OLD", status="Downloading", request_id=4, at=BOOT)
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
