"""The schema is created on first open, recorded in schema_version, and left alone on later opens."""

from __future__ import annotations

import sqlite3

import pytest

from ampgate.store import Store
from ampgate.store.schema import MIGRATIONS, iso_utc, schema_version


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
