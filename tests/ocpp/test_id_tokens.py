"""Id tokens: the values an operator may give them, and the answer a charger gets for a presented token
(Invalid when unknown, Expired past its expiry, else its status), against a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.ocpp.authorization import Authorization, Authorizer, decide
from ampgate.ocpp.id_tokens import IdTokens
from ampgate.store import IdTokenRepository, Store

from ..store.conftest import run_store


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "ampgate.db")


def test_id_tokens_answer_invalid_expired_or_their_status(db_path: str) -> None:
    async def body(store: Store) -> None:
        table = IdTokenRepository(store)
        tokens = IdTokens(table)
        auth = Authorizer(table, lambda: datetime.now(UTC))

        def authorize(id_token: str, type_: str | None = None) -> Authorization:
            return decide(table.get(id_token), datetime.now(UTC), type_)

        assert authorize("NOPE").status == "Invalid"
        await tokens.create("GOOD", status="Accepted", group="FLEET")
        await tokens.create("OLD", status="Accepted", expiry=datetime.now(UTC) - timedelta(days=1))
        await tokens.create("CARD", status="Accepted", type="ISO14443")
        ok = authorize("good")  # OCPP compares tokens case-insensitively
        assert (ok.status, ok.group) == ("Accepted", "FLEET")
        assert authorize("OLD").status == "Expired"
        assert authorize("CARD", "ISO14443").status == "Accepted"
        assert authorize("CARD", "eMAID").status == "Invalid"
        with pytest.raises(ConflictError):
            await tokens.create("Good", status="Accepted")
        with pytest.raises(ValidationError) as e:
            await tokens.create("X", status="Maybe")
        assert e.value.field == "status"
        await tokens.update("GOOD", {"status": "Blocked"})
        assert authorize("GOOD").status == "Blocked"
        await tokens.delete("GOOD")
        assert authorize("GOOD").status == "Invalid"
        with pytest.raises(NotFoundError):
            await tokens.delete("GOOD")

        # The Authorize handlers ask the same decision (1.6 without a type, 2.0.1 with one).
        assert auth.check16("CARD").status == "Accepted"

    run_store(db_path, body)
