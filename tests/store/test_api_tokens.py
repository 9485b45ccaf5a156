"""API tokens: created once in plaintext, stored hashed, readable by a running store at once."""

from __future__ import annotations

import sqlite3

import pytest

from ampgate.errors import NotFoundError, ValidationError
from ampgate.store import ApiTokenRepository, Store, role_at_least

from .conftest import Runner


def test_token_resolves_to_its_role_and_is_stored_hashed(db_path: str) -> None:
    store = Store(db_path)
    try:
        token = ApiTokenRepository(store).create("operator", label="ci")
        assert token.startswith("agt_") and len(token) > 40
        assert ApiTokenRepository(store).role_for(token) == "operator"
        assert ApiTokenRepository(store).role_for(token + "x") is None
        assert ApiTokenRepository(store).role_for("") is None
        assert ApiTokenRepository(store).count() == 1
    finally:
        store.close()
    conn = sqlite3.connect(db_path)
    try:
        (stored,) = conn.execute("SELECT token_hash FROM api_tokens").fetchone()
    finally:
        conn.close()
    assert token not in stored and len(stored) == 64


def test_a_token_made_by_another_store_on_the_file_works_at_once(running: Runner, db_path: str) -> None:
    """The CLI creates tokens with its own Store while a node runs; the node must accept them immediately."""

    async def body(node_store: Store) -> None:
        assert ApiTokenRepository(node_store).count() == 0
        cli = Store(db_path)
        try:
            token = ApiTokenRepository(cli).create("admin")
        finally:
            cli.close()
        assert ApiTokenRepository(node_store).role_for(token) == "admin"
        assert ApiTokenRepository(node_store).count() == 1
        # And the other way round: the running store's own tokens land in the same table.
        mine = ApiTokenRepository(node_store).create("viewer")
        assert ApiTokenRepository(node_store).role_for(mine) == "viewer"

    running(body)


def test_invalid_role_and_label_name_their_field(db_path: str) -> None:
    store = Store(db_path)
    try:
        with pytest.raises(ValidationError) as info:
            ApiTokenRepository(store).create("root")
        assert info.value.field == "role"
        with pytest.raises(ValidationError) as info:
            ApiTokenRepository(store).create("viewer", label="x" * 201)
        assert info.value.field == "label"
        assert ApiTokenRepository(store).count() == 0
    finally:
        store.close()


def test_tokens_are_unique(db_path: str) -> None:
    store = Store(db_path)
    try:
        tokens = {ApiTokenRepository(store).create("viewer") for _ in range(20)}
        assert len(tokens) == 20
    finally:
        store.close()


def test_role_order() -> None:
    assert role_at_least("admin", "viewer") and role_at_least("operator", "operator")
    assert not role_at_least("viewer", "operator") and not role_at_least("operator", "admin")
    assert not role_at_least("root", "viewer")
    with pytest.raises(ValueError):
        role_at_least("admin", "root")


def test_expiry_revocation_and_last_used_written_once_a_minute(db_path: str) -> None:
    from datetime import UTC, datetime, timedelta

    from ampgate.store.api_tokens import LAST_USED_INTERVAL_S

    now = [datetime(2026, 12, 1, 8, 0, tzinfo=UTC)]
    store = Store(db_path, now=lambda: now[0])

    async def body(s: Store) -> None:
        tokens = ApiTokenRepository(s)
        row, token = await tokens.add("viewer", "short", expires_at=now[0] + timedelta(minutes=10))
        assert row.expires_at == "2026-12-01T08:10:00.000Z" and row.last_used_at is None
        writes = []
        real_submit = s.submit
        s.submit = lambda op: (writes.append(op), real_submit(op))  # type: ignore[method-assign]
        for _ in range(50):
            assert tokens.role_for(token) == "viewer"
        now[0] += timedelta(seconds=LAST_USED_INTERVAL_S - 1)
        assert tokens.role_for(token) == "viewer"
        assert len(writes) == 1  # one write for 51 requests within the minute
        now[0] += timedelta(seconds=2)
        assert tokens.role_for(token) == "viewer"
        assert len(writes) == 2
        await s.write(lambda db: None)  # the fire-and-forget writes have committed
        got = tokens.get(row.id)
        assert got is not None and got.last_used_at == "2026-12-01T08:01:01.000Z"
        # Expired at its time exactly.
        now[0] = datetime(2026, 12, 1, 8, 10, tzinfo=UTC)
        assert tokens.role_for(token) is None
        # Revoked: refused at once, idempotent, 404 for an unknown id.
        other_row, other = await tokens.add("admin")
        assert tokens.role_for(other) == "admin"
        first = await tokens.revoke(other_row.id)
        assert tokens.role_for(other) is None and first.revoked_at is not None
        now[0] += timedelta(hours=1)
        assert (await tokens.revoke(other_row.id)).revoked_at == first.revoked_at
        with pytest.raises(NotFoundError):
            await tokens.revoke(999)
        with pytest.raises(ValidationError) as e:
            await tokens.add("viewer", expires_at=now[0] - timedelta(seconds=1))
        assert e.value.field == "expires_at"
        # Nothing listed holds the secret or its digest.
        assert all(not hasattr(r, "token_hash") for r in tokens.page(10))
        assert [r.id for r in tokens.page(10)] == [row.id, other_row.id]

    from .conftest import run_store

    run_store(db_path, body, store)
