"""API tokens: created once in plaintext, stored hashed, readable by a running store at once."""

from __future__ import annotations

import sqlite3

import pytest

from ampgate.errors import ValidationError
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
