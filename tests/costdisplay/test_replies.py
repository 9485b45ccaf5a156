"""The cost display inside the OCPP replies, in-process: the real router, Authorize and transaction handlers and
`ReplyHooks` (over the transaction handlers' in-memory repository, stand-in tariffs, costs and Commander), on
trio's MockClock.

2.0.1: the tariff text in idTokenInfo.personalMessage, updatedPersonalMessage when the text changes mid-session,
totalCost on Ended (0.00 when free, omitted without a tariff). 1.6: SetUserPrice after Authorize (not again at
the start that follows), FinalCost after StopTransaction. And the handlers never fail because pricing did: the
reply goes without the cost, the failure counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import trio
import trio.testing

from ampgate.costdisplay.replies import RECENT_PRICE_S, ReplyHooks
from ampgate.costdisplay.resolver import Modes
from ampgate.costdisplay.sender import Sender
from ampgate.costdisplay.stats import Counts
from ampgate.ocpp.authorization import Authorizer
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.transactions import TransactionHandlers
from ampgate.pricing import SessionUsage, price
from ampgate.store import IdTokenRow
from tests.pricing.builders import comp, element, session, tariff

from ..ocpp.fakes import NOW, Harness
from ..ocpp.test_transactions import Records
from .fakes import Calls, Chargers, Costs, Rows, Tariffs, Variables

T0 = "2026-11-30T07:00:00Z"
T1 = "2026-11-30T07:30:00Z"
START = datetime(2026, 11, 30, 7, tzinfo=UTC)
ENERGY = tariff(element(comp("ENERGY", "0.30", vat=20)), id="ENERGY")  # 0.36/kWh incl VAT
FREE = tariff(element(comp("ENERGY", "0")), id="FREE")
TIMED = tariff(element(comp("TIME", "2.00")), id="TIMED")


class Tokens:
    """Every token is Accepted but BLOCKED."""

    def get(self, id_token: str) -> IdTokenRow | None:
        status = "Blocked" if id_token == "BLOCKED" else "Accepted"
        return IdTokenRow(
            id_token=id_token,
            type=None,
            status=status,
            expiry=None,
            group=None,
            created_at=NOW,
            updated_at=NOW,
        )


class Rig:
    """A router with the node's Authorize and transaction handlers and the cost display's hooks. CS1 (2.0.1)
    has TariffCostCtrlr enabled, CP1 (1.6) CustomDisplayCostAndPrice; CS2 and CP2 say nothing (mode none)."""

    def __init__(self) -> None:
        self.h = Harness(accepted=["CS1", "CS2", "CP1", "CP2"])
        self.records = Records()
        self.variables = Variables()
        self.variables.values[("CS1", "TariffCostCtrlr", "Enabled", "Tariff")] = "true"
        self.variables.values[("CP1", "", "CustomDisplayCostAndPrice", "")] = "true"
        self.modes = Modes(
            Rows(),  # type: ignore[arg-type]
            Chargers(CS1=OCPP201, CS2=OCPP201, CP1=OCPP16, CP2=OCPP16),
            self.variables,
            self.h.bus,
            self.h.clock,
        )
        self.modes.load()
        self.tariffs = Tariffs()
        self.costs = Costs()
        self.calls = Calls()
        self.counts = Counts()
        self.sender = Sender(self.calls, self.counts)  # type: ignore[arg-type]
        self.hooks = ReplyHooks(
            self.modes,
            self.tariffs,
            self.costs,
            self.records,  # type: ignore[arg-type]
            self.sender,
            self.counts,
            self.h.clock,
            final_wait=2.0,
        )
        auth = Authorizer(Tokens(), self.h.clock.now, costs=self.hooks)
        auth.register(self.h.router)
        TransactionHandlers(self.records, auth, self.h.bus, self.h.clock, costs=self.hooks).register(
            self.h.router
        )
        self._ids = 0

    async def send(self, session: Any, action: str, payload: dict[str, Any]) -> Any:
        """One CALL; its reply payload, once it went out (after any write it waits for)."""
        self._ids += 1
        uid = f"m{self._ids}"
        out: list[tuple[int, bytes]] = []
        self.h.router.on_message(session.conn_id, msgspec.json.encode([2, uid, action, payload]), out)
        await trio.testing.wait_all_tasks_blocked()
        replies = [msgspec.json.decode(b) for _, b in out] + [m for _, m in self.h.link.sent]
        (reply,) = [r for r in replies if r[1] == uid]
        assert reply[0] == 3, reply
        return reply[2]


def run(body) -> None:
    async def main() -> None:
        rig = Rig()
        async with trio.open_nursery() as nursery:
            await nursery.start(rig.h.router.run)
            await nursery.start(rig.sender.run)
            await body(rig)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def token(id_token: str = "TOK") -> dict[str, str]:
    return {"idToken": id_token, "type": "ISO14443"}


def event(kind: str, seq: int, *, tx: str = "TX1", at: str = T0, **extra: Any) -> dict[str, Any]:
    return {
        "eventType": kind,
        "timestamp": at,
        "triggerReason": "Authorized" if kind == "Started" else "MeterValuePeriodic",
        "seqNo": seq,
        "transactionInfo": {"transactionId": tx},
        "evse": {"id": 1, "connectorId": 1},
        **extra,
    }


def final(t, kwh: float):
    usage = session(START, charge_min=30, kwh=kwh, ended=False)
    stopped = SessionUsage(
        started_at=usage.started_at, samples=usage.samples, stopped_at=START + timedelta(minutes=30)
    )
    return price(t, stopped, until=START + timedelta(minutes=30), tz=UTC)


# -- 2.0.1 ---------------------------------------------------------------------------------------------------------


def test_201_the_tariff_text_goes_in_personal_message_at_authorize_and_start() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CS1"] = ENERGY
        cs1 = rig.h.open("CS1", OCPP201, conn_id=1)
        reply = await rig.send(cs1, "Authorize", {"idToken": token()})
        assert reply == {
            "idTokenInfo": {
                "status": "Accepted",
                "personalMessage": {"format": "UTF8", "content": "0.36 EUR/kWh"},
            }
        }
        assert rig.tariffs.asked[-1] == ("CS1", "TOK")
        reply = await rig.send(cs1, "TransactionEvent", event("Started", 0, idToken=token()))
        assert reply["idTokenInfo"]["personalMessage"]["content"] == "0.36 EUR/kWh"
        # A blocked token is shown no price.
        reply = await rig.send(cs1, "Authorize", {"idToken": token("BLOCKED")})
        assert reply == {"idTokenInfo": {"status": "Blocked"}}
        assert rig.counts.get("personalMessage", "added") == 2

    run(body)


def test_201_the_charger_default_language_and_the_tokens_language1() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CS1"] = tariff(element(comp("ENERGY", "0.30"), comp("PARKING_TIME", "2.00")))
        rig.variables.values[("CS1", "DisplayMessageCtrlr", "Language", "")] = "de"
        cs1 = rig.h.open("CS1", OCPP201, conn_id=1)
        reply = await rig.send(cs1, "Authorize", {"idToken": token()})
        assert reply["idTokenInfo"]["personalMessage"] == {
            "format": "UTF8",
            "content": "0.30 EUR/kWh + 2.00 EUR/h Parken",
            "language": "de",
        }
        # Where the answer names the token's language, that one wins.
        info: dict[str, Any] = {"status": "Accepted", "language1": "fr"}
        rig.hooks.authorize201("CS1", "TOK", info)
        assert info["personalMessage"]["language"] == "fr"
        assert info["personalMessage"]["content"] == "0.30 EUR/kWh + 2.00 EUR/h stationnement"

    run(body)


def test_201_updated_personal_message_when_the_tariff_changes_mid_session() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CS1"] = ENERGY
        cs1 = rig.h.open("CS1", OCPP201, conn_id=1)
        await rig.send(cs1, "TransactionEvent", event("Started", 0, idToken=token()))
        assert await rig.send(cs1, "TransactionEvent", event("Updated", 1)) == {}
        rig.tariffs.by_charger["CS1"] = TIMED
        reply = await rig.send(cs1, "TransactionEvent", event("Updated", 2))
        assert reply == {"updatedPersonalMessage": {"format": "UTF8", "content": "2.00 EUR/h"}}
        assert rig.tariffs.asked[-1] == ("CS1", "TOK")  # the transaction's token, though the event had none
        assert await rig.send(cs1, "TransactionEvent", event("Updated", 3)) == {}
        assert rig.counts.get("updatedPersonalMessage", "added") == 1

    run(body)


def test_201_total_cost_on_ended_free_is_zero_and_no_tariff_omits_it() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CS1"] = ENERGY
        cs1 = rig.h.open("CS1", OCPP201, conn_id=1)
        for n, (tx, cost) in enumerate(
            [("PAID", final(ENERGY, 10)), ("FREE", final(FREE, 10)), ("NONE", None)]
        ):
            await rig.send(cs1, "TransactionEvent", event("Started", 0, tx=tx, idToken=token()))
            tx_id = n + 1
            rig.costs.final[tx_id] = cost
            reply = await rig.send(cs1, "TransactionEvent", event("Ended", 1, tx=tx, at=T1))
            expected = {"PAID": {"totalCost": 3.6}, "FREE": {"totalCost": 0.0}, "NONE": {}}[tx]
            assert reply == expected
        # A resent Ended (its reply was lost) carries the total again.
        reply = await rig.send(cs1, "TransactionEvent", event("Ended", 1, tx="PAID", at=T1))
        assert reply == {"totalCost": 3.6}
        assert (rig.counts.get("totalCost", "added"), rig.counts.get("totalCost", "no_tariff")) == (3, 1)

    run(body)


def test_201_a_charger_in_mode_none_gets_nothing() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CS2"] = ENERGY
        rig.costs.final[1] = final(ENERGY, 10)
        cs2 = rig.h.open("CS2", OCPP201, conn_id=2)
        assert await rig.send(cs2, "Authorize", {"idToken": token()}) == {
            "idTokenInfo": {"status": "Accepted"}
        }
        await rig.send(cs2, "TransactionEvent", event("Started", 0, idToken=token()))
        assert await rig.send(cs2, "TransactionEvent", event("Ended", 1, at=T1)) == {}
        assert rig.tariffs.asked == []

    run(body)


def test_201_pricing_failures_leave_the_cost_out_and_the_reply_goes() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CS1"] = RuntimeError("tariff store down")
        cs1 = rig.h.open("CS1", OCPP201, conn_id=1)
        assert await rig.send(cs1, "Authorize", {"idToken": token()}) == {
            "idTokenInfo": {"status": "Accepted"}
        }
        reply = await rig.send(cs1, "TransactionEvent", event("Started", 0, idToken=token()))
        assert reply == {"idTokenInfo": {"status": "Accepted"}}
        assert await rig.send(cs1, "TransactionEvent", event("Updated", 1)) == {}
        rig.costs.final[1] = ZeroDivisionError("engine bug")
        assert await rig.send(cs1, "TransactionEvent", event("Ended", 2, at=T1)) == {}
        assert rig.counts.get("personalMessage", "pricing_error") == 2
        assert rig.counts.get("updatedPersonalMessage", "pricing_error") == 1
        assert rig.counts.get("totalCost", "pricing_error") == 1
        assert rig.records.rows[1]["stopped_at"] is not None  # the stop itself was recorded

    run(body)


def test_201_a_final_cost_that_does_not_come_is_waited_for_a_bounded_time() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CS1"] = ENERGY
        rig.costs.hang = True
        cs1 = rig.h.open("CS1", OCPP201, conn_id=1)
        await rig.send(cs1, "TransactionEvent", event("Started", 0, idToken=token()))
        out: list[tuple[int, bytes]] = []
        ended = msgspec.json.encode([2, "end", "TransactionEvent", event("Ended", 1, at=T1)])
        rig.h.router.on_message(1, ended, out)

        def replies() -> list[Any]:
            return [m for _, m in rig.h.link.sent if m[1] == "end"]

        await trio.sleep(1.9)
        assert replies() == []  # waiting for the total...
        await trio.sleep(0.2)
        assert replies() == [[3, "end", {}]]  # ...for 2 s, then the reply goes without it
        assert rig.counts.get("totalCost", "timeout") == 1

    run(body)


# -- 1.6 California Pricing ----------------------------------------------------------------------------------------


def data(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["vendorId"] == "org.openchargealliance.costmsg"
    return json.loads(payload["data"])


def test_16_set_user_price_after_authorize_not_again_at_the_start_and_final_cost_after_the_stop() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CP1"] = ENERGY
        cp1 = rig.h.open("CP1", OCPP16, conn_id=3)
        assert await rig.send(cp1, "Authorize", {"idTag": "TAG"}) == {"idTagInfo": {"status": "Accepted"}}
        await trio.testing.wait_all_tasks_blocked()
        ((cid, payload),) = rig.calls.of("SetUserPrice")
        assert cid == "CP1" and data(payload) == {"idToken": "TAG", "priceText": "0.36 EUR/kWh"}

        start = {"connectorId": 1, "idTag": "TAG", "meterStart": 1000, "timestamp": T0}
        reply = await rig.send(cp1, "StartTransaction", start)
        assert reply["transactionId"] == 1
        assert len(rig.calls.of("SetUserPrice")) == 1  # the price shown at Authorize still stands
        assert rig.counts.get("SetUserPrice", "already_shown") == 1

        rig.costs.final[1] = final(ENERGY, 10)
        assert (
            await rig.send(cp1, "StopTransaction", {"transactionId": 1, "meterStop": 11000, "timestamp": T1})
            == {}
        )
        await trio.testing.wait_all_tasks_blocked()
        ((_, payload),) = rig.calls.of("FinalCost")
        assert data(payload) == {
            "transactionId": 1,
            "cost": 3.6,
            "priceText": "Total 3.60 EUR (10.00 kWh, 0:30 h)",
        }
        assert rig.counts.get("FinalCost", "accepted") == 1

    run(body)


def test_16_a_start_without_a_recent_authorize_gets_the_price() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CP1"] = ENERGY
        cp1 = rig.h.open("CP1", OCPP16, conn_id=3)
        await rig.send(cp1, "Authorize", {"idTag": "TAG"})
        await trio.sleep(RECENT_PRICE_S + 1)
        await rig.send(
            cp1, "StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": T0}
        )
        await trio.testing.wait_all_tasks_blocked()
        # Another token, or one whose price the charger rejected: sent at the start too.
        rig.calls.replies["SetUserPrice"] = {"status": "Rejected"}
        await rig.send(cp1, "Authorize", {"idTag": "OTHER"})
        await trio.testing.wait_all_tasks_blocked()
        await rig.send(
            cp1, "StartTransaction", {"connectorId": 2, "idTag": "OTHER", "meterStart": 0, "timestamp": T0}
        )
        await trio.testing.wait_all_tasks_blocked()
        assert [data(p)["idToken"] for _, p in rig.calls.of("SetUserPrice")] == [
            "TAG",
            "TAG",
            "OTHER",
            "OTHER",
        ]
        assert rig.counts.get("SetUserPrice", "rejected") == 2

    run(body)


def test_16_nothing_for_a_blocked_tag_a_charger_in_mode_none_or_without_a_tariff() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CP2"] = ENERGY
        cp1 = rig.h.open("CP1", OCPP16, conn_id=3)
        cp2 = rig.h.open("CP2", OCPP16, conn_id=4)
        await rig.send(cp1, "Authorize", {"idTag": "TAG"})  # CP1 has no tariff
        await rig.send(cp2, "Authorize", {"idTag": "TAG"})  # CP2 shows no cost
        rig.tariffs.by_charger["CP1"] = ENERGY
        assert await rig.send(cp1, "Authorize", {"idTag": "BLOCKED"}) == {"idTagInfo": {"status": "Blocked"}}
        await rig.send(
            cp1, "StartTransaction", {"connectorId": 1, "idTag": "X", "meterStart": 0, "timestamp": T0}
        )
        rig.costs.final[1] = None
        await rig.send(cp1, "StopTransaction", {"transactionId": 1, "meterStop": 0, "timestamp": T1})
        await trio.testing.wait_all_tasks_blocked()
        assert [data(p)["idToken"] for _, p in rig.calls.of("SetUserPrice")] == ["X"]
        assert rig.calls.of("FinalCost") == []
        assert rig.counts.get("FinalCost", "no_tariff") == 1

    run(body)


def test_16_pricing_failures_and_an_offline_charger_leave_the_replies_alone() -> None:
    async def body(rig: Rig) -> None:
        rig.tariffs.by_charger["CP1"] = ValueError("no")
        cp1 = rig.h.open("CP1", OCPP16, conn_id=3)
        assert await rig.send(cp1, "Authorize", {"idTag": "TAG"}) == {"idTagInfo": {"status": "Accepted"}}
        start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": T0}
        assert (await rig.send(cp1, "StartTransaction", start))["transactionId"] == 1
        rig.costs.final[1] = final(ENERGY, 1)
        rig.calls.offline.add("CP1")
        assert (
            await rig.send(cp1, "StopTransaction", {"transactionId": 1, "meterStop": 0, "timestamp": T1})
            == {}
        )
        await trio.testing.wait_all_tasks_blocked()
        assert rig.counts.get("SetUserPrice", "pricing_error") == 2
        assert rig.counts.get("FinalCost", "charger_offline") == 1

    run(body)
