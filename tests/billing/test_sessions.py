"""`BillingSessions` over a real store: the running cost is the engine's price of what was recorded and never
decreases, the final cost is the stop's, the CDR is made once when the EVSE is free again (or the charger goes
offline, or the longest wait passes) and equals price() over the same data; sessions keep the tariff they started
with; restarts between the stop and the EVSE free still give exactly one CDR."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
import pytest
import trio

from ampgate.billing.signals import SignalWindow
from ampgate.errors import ConflictError
from ampgate.events import CdrCreated, TariffAssigned, TariffChanged
from ampgate.openadr import Price
from ampgate.pricing import ChargingChange, MeterSample, PriceSignal, SessionUsage, Tariff, price
from ampgate.store import SignedValue
from ampgate.store.transactions import TransactionRow
from tests.pricing.builders import comp, element, tariff

from .conftest import Harness, minutes

UTC_ZONE = ZoneInfo("UTC")
TARIFF = tariff(
    element(
        comp("FLAT", "0.50", vat=20),
        comp("ENERGY", "0.30", vat=20),
        comp("TIME", "1.20", vat=20),
        comp("PARKING_TIME", "6.00", vat=20),
    ),
    id="STD",
)
CHEAP = tariff(element(comp("ENERGY", "0.10")), id="CHEAP")


def usage16(stopped: float | None = 30, ended: float | None = None) -> SessionUsage:
    """The session `drive16` records, as the engine should see it."""
    samples = [MeterSample(minutes(10), 2000.0), MeterSample(minutes(20), 4000.0)]
    if stopped is not None:
        samples.append(MeterSample(minutes(stopped), 5000.0))
    return SessionUsage(
        started_at=minutes(0),
        samples=tuple(samples),
        charging=(ChargingChange(minutes(25), False),),
        stopped_at=None if stopped is None else minutes(stopped),
        ended_at=None if ended is None else minutes(ended),
    )


async def drive16(h: Harness, charger: str = "CP1", *, check_running: bool = True) -> int:
    """A 1.6 session: start at 0 (meter 1000 Wh), Charging, 3000 Wh at 10, 5000 at 20, SuspendedEV at 25, stop
    at 30 (6000 Wh), Finishing. The running cost is checked against the engine every 5 minutes on the way."""
    h.clock.t = minutes(0)
    h.status(charger, "Preparing", minutes(0))
    tx = await h.start16(charger, minutes(0), meter_start=1000)
    h.status(charger, "Charging", minutes(0))
    await h.settle()
    seen = []
    for m, action in (
        (5, None),
        (10, ("meter", 3000)),
        (15, None),
        (20, ("meter", 5000)),
        (25, ("status", "SuspendedEV")),
        (28, None),
    ):
        h.clock.t = minutes(m)
        if action is not None and action[0] == "meter":
            await h.meter16(charger, tx, minutes(m), float(action[1]))
        elif action is not None:
            h.status(charger, str(action[1]), minutes(m))
        await h.settle()
        cost = h.billing.running_cost(tx)
        if check_running:
            assert cost is not None
            assert cost == price(TARIFF, _upto(m), until=minutes(m), tz=UTC_ZONE, periods=False)
            seen.append(cost.total_cost.incl_vat)
    assert seen == sorted(seen) and len(set(seen)) > 3 if check_running else True
    h.clock.t = minutes(30)
    await h.stop16(charger, tx, minutes(30), 6000)
    h.status(charger, "Finishing", minutes(30))
    await h.settle()
    return tx


def _upto(m: float) -> SessionUsage:
    u = usage16(stopped=None)
    return SessionUsage(
        started_at=u.started_at,
        samples=tuple(s for s in u.samples if s.at <= minutes(m)),
        charging=tuple(c for c in u.charging if c.at <= minutes(m)),
    )


def test_16_running_final_and_cdr_agree_with_the_engine(billing) -> None:
    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.chargers.register("CP1", None)
        await h.tariffs.assign("charger", "CP1", "STD")
        assert [e.change for e in h.events(TariffChanged)] == ["created"]
        tx = await drive16(h)
        final = await h.billing.final_cost(tx)
        expected_final = price(TARIFF, usage16(), until=minutes(30), tz=UTC_ZONE)
        assert final == expected_final
        # Parking after the stop: the running cost grows by PARKING_TIME, never past what the CDR will say.
        h.clock.t = minutes(40)
        parked = h.billing.running_cost(tx)
        assert parked is not None and parked.total_cost.incl_vat > final.total_cost.incl_vat
        assert parked.transaction_cost == final.total_cost
        with pytest.raises(ConflictError) as e:
            await h.tariffs.delete("STD")
        assert e.value.code == "tariff_in_use"
        assert h.cdr_rows.of_transaction(tx) is None
        h.status("CP1", "Available", minutes(45))
        await h.at(minutes(46))
        cdr = await h.cdr_of(tx)
        assert cdr is not None
        expected = price(TARIFF, usage16(ended=45), until=minutes(45), tz=UTC_ZONE)
        assert cdr.cost == expected and expected.final
        assert cdr.total_cost == expected.total_cost.incl_vat
        assert cdr.cost.transaction_cost == final.total_cost
        assert cdr.cost.parking_after_cost.incl_vat == Decimal("1.80")  # 15 min at 6.00/h + 20 %
        assert (cdr.started_at, cdr.stopped_at, cdr.ended_at, cdr.end_reason) == (
            minutes(0),
            minutes(30),
            minutes(45),
            "evse_free",
        )
        assert (cdr.energy_wh, cdr.charging_time_s, cdr.parking_time_s, cdr.parking_after_s) == (
            5000.0,
            1500.0,
            1200.0,
            900.0,
        )
        assert cdr.tariff == TARIFF and cdr.currency == "EUR" and cdr.credit_of is None
        assert cdr.id_token == "TAG" and cdr.connector_id == 1 and cdr.site_id is None
        assert [e.cdr_id for e in h.events(CdrCreated)] == [cdr.id]
        # The session is over: its cost is the CDR's; another Available changes nothing.
        assert h.billing.running_cost(tx) == cdr.cost
        h.status("CP1", "Preparing", minutes(50))
        h.status("CP1", "Available", minutes(51))
        await h.at(minutes(52))
        assert h.events(CdrCreated) == []
        # Nothing prices with it any more; still assigned, though.
        with pytest.raises(ConflictError):
            await h.tariffs.delete("STD")
        await h.tariffs.assign("charger", "CP1", None)
        await h.tariffs.delete("STD")

    billing(body)


def test_a_restart_between_the_stop_and_the_evse_free_gives_exactly_one_cdr(billing, db_path) -> None:
    from .conftest import FakeWall, run_billing

    wall = FakeWall()
    ids: list[int] = []

    async def first(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        ids.append(await drive16(h, "CP9", check_running=False))
        assert h.cdr_rows.of_transaction(ids[0]) is None

    async def second(h: Harness) -> None:
        # The charger reconnects and reports its connector free: the session loaded at start ends.
        h.status("CP9", "Available", minutes(45))
        await h.at(minutes(46))
        cdr = await h.cdr_of(ids[0])
        assert cdr is not None and cdr.ended_at == minutes(45)
        assert cdr.cost == price(TARIFF, usage16(ended=45), until=minutes(45), tz=UTC_ZONE)
        assert len(h.events(CdrCreated)) == 1

    async def third(h: Harness) -> None:
        h.status("CP9", "Available", minutes(60))
        h.disconnected("CP9")
        await h.at(minutes(120))
        assert h.events(CdrCreated) == []
        assert len(h.cdrs.page(10)) == 1

    run_billing(db_path, first, clock=wall)
    run_billing(db_path, second, clock=wall)
    run_billing(db_path, third, clock=wall)


def test_a_connector_freed_while_the_node_was_down_ends_the_session_at_start(billing, db_path) -> None:
    from .conftest import FakeWall, run_billing

    wall = FakeWall()
    ids: list[int] = []

    async def first(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        ids.append(await drive16(h, "CP8", check_running=False))

    async def between(h: Harness) -> None:
        # Recorded by the status handler (its event went to a node that no longer runs billing).
        h.status("CP8", "Available", minutes(44))

    async def second(h: Harness) -> None:
        cdr = await h.cdr_of(ids[0])
        assert cdr is not None and (cdr.ended_at, cdr.end_reason) == (minutes(44), "evse_free")

    run_billing(db_path, first, clock=wall)
    run_billing(db_path, between, clock=wall, start=False)
    wall.t = minutes(50)
    run_billing(db_path, second, clock=wall)


def test_the_longest_wait_ends_a_session_nobody_frees_and_caps_its_running_cost(billing) -> None:
    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        tx = await drive16(h, check_running=False)
        deadline = minutes(30) + timedelta(seconds=600)
        h.clock.t = minutes(39)
        assert h.cdr_rows.of_transaction(tx) is None
        capped = price(TARIFF, usage16(), until=deadline, tz=UTC_ZONE, periods=False)
        h.clock.t = minutes(55)  # past the deadline, before a sweep saw it
        assert h.billing.running_cost(tx) == capped
        await h.at(minutes(55))
        cdr = await h.cdr_of(tx)
        assert cdr is not None and (cdr.ended_at, cdr.end_reason) == (deadline, "max_parking")
        assert cdr.total_cost == capped.total_cost.incl_vat

    billing(body, max_parking_s=600)


def test_the_charger_going_offline_for_a_minute_ends_a_parked_session_not_a_running_one(billing) -> None:
    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        tx = await drive16(h, "CPA", check_running=False)
        other = await h.start16("CPA", minutes(31), connector=2, meter_start=0)
        h.clock.t = minutes(32)
        h.disconnected("CPA", "node shutdown")
        h.disconnected("CPA", "replaced by a newer connection of this charger")
        await h.at(minutes(34))
        assert h.cdr_rows.of_transaction(tx) is None
        # Back within a minute: not offline.
        h.disconnected("CPA")
        h.connected("CPA")
        await h.at(minutes(35))
        assert h.cdr_rows.of_transaction(tx) is None
        h.clock.t = minutes(36)
        h.disconnected("CPA")
        await h.at(minutes(36) + timedelta(seconds=59))
        assert h.cdr_rows.of_transaction(tx) is None
        await h.at(minutes(37))
        cdr = await h.cdr_of(tx)
        assert cdr is not None and (cdr.ended_at, cdr.end_reason) == (minutes(36), "charger_offline")
        assert h.cdr_rows.of_transaction(other) is None
        assert h.billing.running_cost(other) is not None

    billing(body)


def test_201_charging_state_sets_time_and_parking_and_a_free_evse_before_the_end_ends_it_at_the_stop(
    billing,
) -> None:
    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        h.clock.t = minutes(0)
        tx = await h.event201("CS2", "tx-a", 0, "Started", minutes(0), wh=10_000, charging=False)
        await h.event201("CS2", "tx-a", 1, "Updated", minutes(2), wh=10_000, charging=True)
        await h.event201("CS2", "tx-a", 2, "Updated", minutes(20), wh=14_000)
        await h.event201("CS2", "tx-a", 3, "Updated", minutes(40), wh=16_000, charging=False)
        await h.settle()
        h.clock.t = minutes(45)
        usage = SessionUsage(
            started_at=minutes(0),
            samples=(
                MeterSample(minutes(0), 0.0),
                MeterSample(minutes(2), 0.0),
                MeterSample(minutes(20), 4000.0),
                MeterSample(minutes(40), 6000.0),
            ),
            charging=(
                ChargingChange(minutes(0), False),
                ChargingChange(minutes(2), True),
                ChargingChange(minutes(40), False),
            ),
        )
        assert h.billing.running_cost(tx) == price(
            TARIFF, usage, until=minutes(45), tz=UTC_ZONE, periods=False
        )
        # The cable unplugged: the status first, then the Ended (with its last reading).
        h.status("CS2", "Available", minutes(50), evse=1)
        await h.settle()
        assert h.cdr_rows.of_transaction(tx) is None
        h.clock.t = minutes(50)
        await h.event201("CS2", "tx-a", 4, "Ended", minutes(50), wh=16_500)
        final = await h.billing.final_cost(tx)
        await h.settle()
        cdr = await h.cdr_of(tx)
        assert cdr is not None and cdr.ended_at == minutes(50)
        ended = SessionUsage(
            started_at=usage.started_at,
            samples=(*usage.samples, MeterSample(minutes(50), 6500.0)),
            charging=usage.charging,
            stopped_at=minutes(50),
            ended_at=minutes(50),
        )
        assert cdr.cost == price(TARIFF, ended, until=minutes(50), tz=UTC_ZONE)
        assert final is not None and cdr.cost is not None
        assert final.total_cost == cdr.cost.total_cost == cdr.cost.transaction_cost
        assert cdr.cost.parking_after_cost.incl_vat == 0
        assert cdr.parking_time_s == 2 * 60 + 10 * 60

    billing(body)


def test_a_session_keeps_the_tariff_it_started_with(billing) -> None:
    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.create(CHEAP)
        await h.tariffs.assign("default", None, "STD")
        h.clock.t = minutes(0)
        tx = await h.start16("CP1", minutes(0))
        await h.settle()
        dearer = tariff(element(comp("ENERGY", "0.90")), id="STD")
        await h.tariffs.replace(dearer)
        await h.tariffs.assign("default", None, "CHEAP")
        assert [e.tariff_id for e in h.events(TariffAssigned)] == ["STD", "CHEAP"]
        await h.meter16("CP1", tx, minutes(10), 2000)
        await h.settle()
        h.clock.t = minutes(10)
        cost = h.billing.running_cost(tx)
        assert cost is not None and cost.tariff_id == "STD"
        assert cost.energy_cost.excl_vat == Decimal("0.60")  # 2 kWh at the old 0.30
        assert h.billing.tariff_of(tx) == TARIFF
        later = await h.start16("CP1", minutes(11), connector=2)
        await h.settle()
        assert h.billing.tariff_of(later) == CHEAP
        # Assigned nowhere any more, but a session not ended is priced by it.
        await h.tariffs.assign("default", None, None)
        await h.session_rows.flush()
        with pytest.raises(ConflictError) as e:
            await h.tariffs.delete("STD")
        assert e.value.code == "tariff_in_use"

    billing(body)


def test_the_id_token_group_tariff_wins_over_the_charger_and_the_site(billing) -> None:
    async def body(h: Harness) -> None:
        for t in (TARIFF, CHEAP, tariff(element(comp("ENERGY", "0.20")), id="SITE")):
            await h.tariffs.create(t)
        await h.site("S1", "Europe/Berlin")
        h.placed["CP1"] = "S1"
        await h.chargers.register("CP1", None)
        await h.id_tokens.create("FLEET-1", status="Accepted", type=None, expiry=None, group="FLEET")
        await h.tariffs.assign("site", "S1", "SITE")
        await h.tariffs.assign("id_token_group", "FLEET", "CHEAP")
        a = await h.start16("CP1", minutes(0), token="FLEET-1")
        b = await h.start16("CP1", minutes(0), connector=2, token="OTHER")
        await h.settle()  # billing has seen them (a session's tariff is resolved then)
        await h.tariffs.assign("charger", "CP1", "STD")
        c = await h.start16("CP1", minutes(1), connector=3, token="OTHER")
        d = await h.start16("CP1", minutes(1), connector=4, token="fleet-1")  # tokens are case-insensitive
        await h.settle()
        assert [h.billing.tariff_of(t).id for t in (a, b, c, d)] == ["CHEAP", "SITE", "STD", "CHEAP"]
        row = h.session_rows.get(a)
        assert row is not None and (row.site_id, row.time_zone, row.group_id) == (
            "S1",
            "Europe/Berlin",
            "FLEET",
        )
        assert h.tariffs.tariff_for("CP1", "FLEET-1") == CHEAP
        assert h.tariffs.tariff_for("CP1", None) == TARIFF
        # What OCPI's connectors name: the resolution without a group (never the group's tariff).
        assert h.tariffs.ad_hoc_tariff_id("CP1", "S1", minutes(1)) == "STD"
        assert h.tariffs.ad_hoc_tariff_id("CP2", "S1", minutes(1)) == "SITE"
        assert h.tariffs.ad_hoc_tariff_id("CP2", None, minutes(1)) is None

    billing(body)


def test_the_ad_hoc_tariff_follows_validity_and_says_when_it_may_next_change(billing) -> None:
    async def body(h: Harness) -> None:
        start, end = minutes(60), minutes(120)
        await h.tariffs.create(
            tariff(element(comp("ENERGY", "0.50")), id="PROMO", start_date_time=start, end_date_time=end)
        )
        await h.tariffs.create(CHEAP)
        await h.site("S1")
        await h.chargers.register("CP1", None)
        await h.tariffs.assign("site", "S1", "PROMO")
        await h.tariffs.assign("default", None, "CHEAP")
        assert h.tariffs.ad_hoc_tariff_id("CP1", "S1", minutes(0)) == "CHEAP"
        assert h.tariffs.ad_hoc_tariff_id("CP1", "S1", start) == "PROMO"
        assert h.tariffs.ad_hoc_tariff_id("CP1", "S1", end) == "CHEAP"
        assert h.tariffs.next_validity_edge(minutes(0)) == start
        assert h.tariffs.next_validity_edge(start) == end
        assert h.tariffs.next_validity_edge(end) is None

    billing(body)


def test_an_unpriced_session_gets_a_cdr_without_cost(billing) -> None:
    async def body(h: Harness) -> None:
        tx = await drive16(h, check_running=False)
        assert h.billing.running_cost(tx) is None
        assert await h.billing.final_cost(tx) is None
        h.status("CP1", "Available", minutes(40))
        await h.settle()
        cdr = await h.cdr_of(tx)
        assert cdr is not None and cdr.cost is None and cdr.currency is None and cdr.tariff is None
        assert (cdr.energy_wh, cdr.charging_time_s, cdr.parking_after_s) == (5000.0, 1500.0, 600.0)
        assert h.events(CdrCreated)[0].total_cost is None

    billing(body)


def test_signed_meter_values_go_on_the_cdr_and_credits_negate_once(billing) -> None:
    signed = SignedValue(
        at="2026-03-02T08:30:00.000Z",
        measurand="Energy.Active.Import.Register",
        phase="",
        context="Transaction.End",
        format="SignedData",
        signed_data="OCMF|{...}|{...}",
    )

    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        h.clock.t = minutes(0)
        tx = await h.start16("CP1", minutes(0))
        h.clock.t = minutes(30)
        await h.stop16("CP1", tx, minutes(30), 2000, signed=[signed])
        h.status("CP1", "Available", minutes(31))
        await h.settle()
        cdr = await h.cdr_of(tx)
        assert cdr is not None and cdr.signed_meter_values == (signed,)
        h.events(CdrCreated)
        credit = await h.cdrs.credit(cdr.id)
        assert credit.credit_of == cdr.id and credit.transaction_id == tx
        assert credit.cost is not None and cdr.cost is not None
        assert credit.total_cost == -cdr.cost.total_cost.incl_vat
        assert credit.cost.total_cost.excl_vat == -cdr.cost.total_cost.excl_vat
        assert credit.cost.energy_wh == cdr.cost.energy_wh
        assert [(e.cdr_id, e.credit_of) for e in h.events(CdrCreated)] == [(credit.id, cdr.id)]
        for target, code in ((cdr.id, "already_credited"), (credit.id, "cdr_is_credit")):
            with pytest.raises(ConflictError) as e:
                await h.cdrs.credit(target)
            assert e.value.code == code
        assert [c.id for c in h.cdrs.page(10)] == [credit.id, cdr.id]
        assert h.cdr_rows.of_transaction(tx) == cdr

    billing(body)


class Granted(msgspec.Struct, frozen=True):
    authorization_reference: str | None


class Authorizations:
    """OCPI's token authority as billing sees it: what let each transaction in, by the charger's id token."""

    def __init__(self, **by_token: str | None) -> None:
        self.by_token = by_token
        self.asked: list[int] = []

    async def authorization_for(self, tx: TransactionRow) -> Granted | None:
        self.asked.append(tx.id)
        if tx.id_token not in self.by_token:
            return None
        return Granted(self.by_token[tx.id_token])


def test_a_cdr_carries_the_authorization_reference_of_what_let_its_transaction_in(billing) -> None:
    async def body(h: Harness) -> None:
        # Before any authority is wired (a node without OCPI): none.
        tx0 = await h.start16("CP0", minutes(0), token="LOCAL")
        await h.stop16("CP0", tx0, minutes(1), 100)
        h.status("CP0", "Available", minutes(2))
        await h.settle()
        assert (await h.cdr_of(tx0)).authorization_reference is None
        auths = Authorizations(**{"EMSP-1": "REF-1", "EMSP-2": None})
        h.billing.authorizations = auths
        ids = {}
        for n, token in enumerate(("EMSP-1", "EMSP-2", "LOCAL"), start=1):
            charger = f"CP{n}"
            ids[token] = tx = await h.start16(charger, minutes(0), token=token)
            await h.stop16(charger, tx, minutes(10), 1000)
            h.status(charger, "Available", minutes(11))
        await h.settle()
        # The eMSP's reference; an eMSP token let in without one (the whitelist); our own token: none.
        got = {token: (await h.cdr_of(tx)).authorization_reference for token, tx in ids.items()}
        assert got == {"EMSP-1": "REF-1", "EMSP-2": None, "LOCAL": None}
        assert sorted(auths.asked) == sorted(ids.values())

    billing(body)


def test_a_cdr_whose_authorization_cannot_be_read_is_made_later_not_without_it(billing) -> None:
    async def body(h: Harness) -> None:
        auths = Authorizations(**{"EMSP-1": "REF-1"})
        failing = [True]

        async def authorization_for(tx: TransactionRow) -> Granted | None:
            if failing[0]:
                raise sqlite3.OperationalError("database is locked")
            return await Authorizations.authorization_for(auths, tx)

        auths.authorization_for = authorization_for  # type: ignore[method-assign]
        h.billing.authorizations = auths
        tx = await h.start16("CP1", minutes(0), token="EMSP-1")
        await h.stop16("CP1", tx, minutes(10), 1000)
        h.status("CP1", "Available", minutes(11))
        await h.settle()
        assert h.cdr_rows.of_transaction(tx) is None
        failing[0] = False
        # The next reconcile finds the connector free in the stored statuses and ends the session then.
        await h.billing.reconcile()
        cdr = await h.cdr_of(tx)
        assert cdr.authorization_reference == "REF-1" and cdr.ended_at == minutes(11)

    billing(body)


def test_site_price_signals_in_the_tariffs_currency_price_the_energy(billing) -> None:
    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        await h.site("S1")
        h.placed["CP1"] = "S1"
        windows = [
            SignalWindow(
                start_at=minutes(0), end_at=minutes(15), energy_price=Decimal("0.05"), currency="EUR"
            ),
            SignalWindow(start_at=minutes(0), end_at=minutes(60), energy_price=Decimal("9"), currency="USD"),
        ]
        await h.signals.replace("S1", windows)
        tx = await drive16(h, check_running=False)
        h.clock.t = minutes(40)
        h.status("CP1", "Available", minutes(40))
        await h.settle()
        cdr = await h.cdr_of(tx)
        signal = PriceSignal(start=minutes(0), end=minutes(15), energy_price=Decimal("0.05"))
        expected = price(TARIFF, usage16(ended=40), until=minutes(40), tz=UTC_ZONE, signals=[signal])
        assert cdr is not None and cdr.cost == expected
        assert expected != price(TARIFF, usage16(ended=40), until=minutes(40), tz=UTC_ZONE)

    billing(body)


def test_openadr_price_intervals_in_the_tariffs_currency_price_the_running_cost_and_the_cdr(billing) -> None:
    def interval(i: int, start: float, end: float, value: float, currency: str, units: str | None) -> Price:
        return Price(
            site_id="S1",
            event_id="EV-1",
            program_id="DAY-AHEAD",
            interval_id=i,
            start=minutes(start),
            end=minutes(end),
            price=value,
            currency=currency,
            units=units,
        )

    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        await h.site("S1")
        h.placed["CP1"] = "S1"
        # 50.00 EUR/MWh until minute 15, then 0.2 EUR/kWh (no units: per kWh); a USD interval is not the tariff's.
        await h.openadr_prices.replace_event(
            "EV-1",
            [
                interval(0, 0, 15, 50.0, "EUR", "MWH"),
                interval(1, 15, 60, 0.2, "EUR", None),
                interval(2, 0, 60, 9.0, "USD", "KWH"),
            ],
        )
        signals = [
            PriceSignal(start=minutes(0), end=minutes(15), energy_price=Decimal("0.05")),
            PriceSignal(start=minutes(15), end=minutes(60), energy_price=Decimal("0.2")),
        ]
        tx = await drive16(h, check_running=False)
        h.clock.t = minutes(35)
        running = h.billing.running_cost(tx)
        expected_running = price(TARIFF, usage16(), until=minutes(35), tz=UTC_ZONE, signals=signals)
        assert running is not None and running.total_cost == expected_running.total_cost
        h.status("CP1", "Available", minutes(40))
        await h.settle()
        cdr = await h.cdr_of(tx)
        expected = price(TARIFF, usage16(ended=40), until=minutes(40), tz=UTC_ZONE, signals=signals)
        assert cdr.cost == expected
        # 3000 Wh until minute 15 (2000 at 10, 4000 at 20, spread linearly) at 0.05, the other 2000 at 0.20: the
        # tariff's 0.30 nowhere.
        assert cdr.cost is not None and cdr.cost.energy_cost.excl_vat == Decimal("0.55")
        assert expected != price(TARIFF, usage16(ended=40), until=minutes(40), tz=UTC_ZONE)

    billing(body)


def test_after_lost_events_the_samples_are_read_from_the_store(billing) -> None:
    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        h.clock.t = minutes(0)
        tx = await h.start16("CP1", minutes(0), meter_start=1000)
        await h.settle()
        # Recorded, but its event lost.
        from .conftest import energy

        assert await h.transactions.add_samples("CP1", tx, energy(minutes(10), 3000))
        h.clock.t = minutes(12)
        before = h.billing.running_cost(tx)
        await h.billing.reconcile(lost=True)
        after = h.billing.running_cost(tx)
        assert before is not None and after is not None and after.energy_wh == 2000 > before.energy_wh

    billing(body)


def test_a_tariff_that_fails_validation_is_not_stored() -> None:
    bad: Tariff = tariff(element(comp("ENERGY", "0.123456")), id="BAD")
    from ampgate.errors import ValidationError
    from ampgate.pricing import validate

    with pytest.raises(ValidationError) as e:
        validate(bad)
    assert e.value.field == "elements[0].price_components[0].price"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_slow_cdr_write_is_not_cut_short_by_the_next_sweep(billing) -> None:
    from ampgate.billing.sessions import RECONCILE_INTERVAL_S, SWEEP_INTERVAL_S

    async def body(h: Harness) -> None:
        real = h.billing._cdrs
        slow_create = real.create

        async def create(cdr):
            await trio.sleep(SWEEP_INTERVAL_S * 3)  # the loop's next sweep is due meanwhile
            return await slow_create(cdr)

        real.create = create  # type: ignore[method-assign]
        await h.tariffs.create(TARIFF)
        await h.tariffs.assign("default", None, "STD")
        tx = await drive16(h, check_running=False)
        began = trio.current_time()
        h.status("CP1", "Available", minutes(40))
        cdr = await h.cdr_of(tx)
        # Made by the status itself, not retried by a reconcile minutes later.
        assert trio.current_time() - began < RECONCILE_INTERVAL_S
        assert cdr.ended_at == minutes(40)
        assert h.billing.running_cost(tx) == cdr.cost

    billing(body)
