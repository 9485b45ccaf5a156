"""The Authorizer with tokens vouched for outside the id-token table (`ExternalTokens`, OCPI eMSPs' in the node):
the table first, the outside only for what it does not know, its late answer awaited, its failure or silence
leaving the table's answer."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime

import trio

from ampgate.ocpp.authorization import Authorization, Authorizer
from ampgate.store.id_tokens import IdTokenRow

AT = datetime(2026, 1, 1, tzinfo=UTC)


class Table:
    def get(self, id_token: str) -> IdTokenRow | None:
        if id_token.upper() != "OURS":
            return None
        return IdTokenRow(
            id_token="OURS",
            type=None,
            status="Blocked",
            expiry=None,
            group=None,
            created_at=AT,
            updated_at=AT,
        )


class Outside:
    """Knows ROAM (Accepted, later), FAILS (raises), NOBODY (asked, nobody knows it); says nothing of others."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str, str | None]] = []

    def authorize(
        self, charger_id: str, protocol: str, id_token: str, type_: str | None
    ) -> Awaitable[Authorization | None] | None:
        self.asked.append((charger_id, protocol, id_token, type_))
        if id_token not in ("ROAM", "FAILS", "NOBODY"):
            return None

        async def later() -> Authorization | None:
            await trio.lowlevel.checkpoint()
            if id_token == "FAILS":
                raise RuntimeError("the eMSP's answer broke us")
            return Authorization("Accepted", None, "G") if id_token == "ROAM" else None

        return later()

    def recall(
        self, charger_id: str, protocol: str, id_token: str, type_: str | None
    ) -> Authorization | None:
        return Authorization("Accepted") if id_token == "ROAM" else None


def test_the_table_first_then_the_outside_awaited_and_its_failure_harmless() -> None:
    outside = Outside()
    auth = Authorizer(Table(), lambda: AT, external=outside)

    async def main() -> None:
        # Known to the table: answered now, the outside not asked.
        assert auth.start16("CP", 1, "OURS", None) == Authorization("Blocked")
        # Nothing to say outside: answered now from the table.
        assert auth.start16("CP", 1, "STRANGER", None) == Authorization("Invalid")
        pending = auth.start16("CP", 1, "ROAM", None)
        assert not isinstance(pending, Authorization)
        assert await pending == Authorization("Accepted", None, "G")
        failing = auth.start16("CP", 1, "FAILS", None)
        assert not isinstance(failing, Authorization)
        assert await failing == Authorization("Invalid")
        nobody = auth.start16("CP", 1, "NOBODY", None)
        assert not isinstance(nobody, Authorization)
        assert await nobody == Authorization("Invalid")
        # A stop asks nobody: what is known now.
        assert auth.check16("ROAM", "CP").status == "Accepted"
        assert auth.check16("ROAM").status == "Invalid"  # no charger: the table alone

    trio.run(main)
    assert [a[2] for a in outside.asked] == ["STRANGER", "ROAM", "FAILS", "NOBODY"]
    assert outside.asked[1] == ("CP", "ocpp1.6", "ROAM", None)
