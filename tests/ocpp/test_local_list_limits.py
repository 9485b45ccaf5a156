"""SendLocalList to a charger's limits, in-process: more entries than one message carries go as a Full list
and then Differential parts with the same version; a list larger than the charger holds is refused before
anything is sent; a part the charger does not accept stops the rest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import trio

from ampgate.clock import Clock
from ampgate.errors import ConflictError
from ampgate.ocpp.local_list import LocalLists
from ampgate.store import IdTokenRow

NOW = datetime(2026, 11, 30, 7, tzinfo=UTC)


def token(i: int) -> IdTokenRow:
    return IdTokenRow(
        id_token=f"TAG{i:03}",
        type=None,
        status="Accepted",
        expiry=None,
        group=None,
        created_at=NOW,
        updated_at=NOW,
    )


class Tokens:
    def __init__(self, n: int) -> None:
        self.rows = [token(i) for i in range(n)]

    def page(self, limit: int, after: str | None = None) -> list[IdTokenRow]:
        rest = [r for r in self.rows if after is None or r.id_token > after]
        return rest[:limit]


class Charger:
    def __init__(self, protocol: str, refuse_at: int | None = None) -> None:
        self.protocol = protocol
        self.calls: list[dict[str, Any]] = []
        self.refuse_at = refuse_at

    def ready(self, charger_id: str, action: str) -> str:
        return self.protocol

    async def call(self, charger_id: str, action: str, payload: Any) -> Any:
        self.calls.append(payload)
        return {"status": "Failed" if len(self.calls) == self.refuse_at else "Accepted"}


def send(charger: Charger, n: int, limits: tuple[int | None, int | None, int | None]) -> dict[str, Any]:
    lists = LocalLists(Tokens(n), charger, Clock(), lambda cid, protocol: limits)
    return trio.run(lists.send, "CP1", "Full", 7)


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0.1"])
def test_a_long_list_goes_as_full_then_differential_parts(protocol: str) -> None:
    charger = Charger(protocol)
    result = send(charger, 5, (2, None, 10))
    assert result == {"version": 7, "entries": 5, "skipped": 0, "status": "Accepted"}
    assert [(c["updateType"], len(c["localAuthorizationList"])) for c in charger.calls] == [
        ("Full", 2),
        ("Differential", 2),
        ("Differential", 1),
    ]
    version = "listVersion" if protocol == "ocpp1.6" else "versionNumber"
    assert {c[version] for c in charger.calls} == {7}


def test_a_list_larger_than_the_charger_holds_sends_nothing() -> None:
    charger = Charger("ocpp1.6")
    with pytest.raises(ConflictError) as e:
        send(charger, 5, (None, None, 4))
    assert e.value.code == "local_list_too_long" and charger.calls == []


def test_a_refused_part_stops_the_rest_and_says_how_far_it_got() -> None:
    charger = Charger("ocpp2.0.1", refuse_at=2)
    assert send(charger, 5, (2, None, None)) == {"version": 7, "entries": 2, "skipped": 0, "status": "Failed"}
    assert len(charger.calls) == 2


def test_no_limits_one_message() -> None:
    charger = Charger("ocpp1.6")
    assert send(charger, 5, (None, None, None))["entries"] == 5 and len(charger.calls) == 1
