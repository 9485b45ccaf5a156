"""The wire forms: 2.0.1 message contents and amounts, and the three California Pricing DataTransfer payloads
with the fields chargers that implement the whitepaper read (EVerest libocpp, MicroOcpp)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ampgate.costdisplay import messages
from ampgate.pricing import price
from tests.pricing.builders import comp, element, session, tariff

START = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
# 0.30/kWh and 2.00/h charging, both +20 % VAT; a 1.00 start fee without VAT; 6.00/h parking, +20 %.
FULL = tariff(
    element(
        comp("ENERGY", "0.30", vat=20),
        comp("TIME", "2.00", vat=20),
        comp("FLAT", "1.00"),
        comp("PARKING_TIME", "6.00", vat=20),
    )
)


def cost_of_full():
    # 60 min charging 10 kWh: 3.00 + 2.00 + 1.00 = 6.00 excl; 3.60 + 2.40 + 1.00 = 7.00 incl.
    usage = session(START, charge_min=60, kwh=10, ended=False)
    return price(FULL, usage, until=START + timedelta(minutes=60), tz=UTC)


def test_the_amount_is_the_total_with_vat_and_goes_as_a_number() -> None:
    cost = cost_of_full()
    assert messages.amount(cost) == Decimal("7.00")
    assert messages.wire_number(Decimal("7.00")) == 7.0
    assert json.dumps(messages.wire_number(Decimal("12.34"))) == "12.34"


def test_message_content_is_utf8_cut_to_512_with_a_language_that_fits() -> None:
    assert messages.message_content("x" * 600, "de") == {
        "format": "UTF8",
        "content": "x" * 512,
        "language": "de",
    }
    assert messages.message_content("hi", None) == {"format": "UTF8", "content": "hi"}
    assert "language" not in messages.message_content("hi", "x-very-long-tag")


def test_the_tariff_text_is_in_the_primary_language() -> None:
    t = tariff(element(comp("ENERGY", "0.25", vat=19), comp("FLAT", "0.50", vat=20)))
    assert messages.tariff_text(t, "de-AT") == "0.60 EUR Start + 0.2975 EUR/kWh"
    assert messages.tariff_text(t, None) == "0.60 EUR start + 0.2975 EUR/kWh"


def test_set_user_price() -> None:
    req = messages.set_user_price("TAG1", "0.36 EUR/kWh")
    assert (req["vendorId"], req["messageId"]) == ("org.openchargealliance.costmsg", "SetUserPrice")
    assert json.loads(req["data"]) == {"idToken": "TAG1", "priceText": "0.36 EUR/kWh"}


def test_running_cost_carries_the_register_the_cost_the_state_and_the_unit_prices() -> None:
    cost = cost_of_full()
    at = datetime(2026, 3, 4, 10, 0, tzinfo=UTC).timestamp()
    req = messages.running_cost(7, at, 1_234_567.4, cost, False, FULL)
    assert req["messageId"] == "RunningCost"
    assert '"cost":7.00' in req["data"]  # a JSON number, never a string
    assert json.loads(req["data"]) == {
        "transactionId": 7,
        "timestamp": "2026-03-04T10:00:00.000Z",
        "meterValue": 1_234_567,
        "cost": 7.0,
        "state": "Idle",
        "chargingPrice": {"kWhPrice": 0.36, "hourPrice": 2.4, "flatFee": 1.0},
        "idlePrice": {"hourPrice": 7.2},
    }


def test_running_cost_without_a_tariff_still_has_a_charging_price_object() -> None:
    req = messages.running_cost(7, 0.0, 10.0, cost_of_full(), True, None)
    data = json.loads(req["data"])
    assert data["chargingPrice"] == {} and "idlePrice" not in data and data["state"] == "Charging"


def test_a_price_that_varies_by_restrictions_is_the_last_periods_or_left_out() -> None:
    day_night = tariff(
        element(comp("ENERGY", "0.40"), start_time="07:00", end_time="22:00"),
        element(comp("ENERGY", "0.20")),
    )
    usage = session(START, charge_min=30, kwh=5, ended=False)
    with_periods = price(day_night, usage, until=START + timedelta(minutes=30), tz=UTC)
    assert messages.unit_prices(day_night, with_periods)[0] == {"kWhPrice": Decimal("0.4000")}
    totals_only = price(day_night, usage, until=START + timedelta(minutes=30), tz=UTC, periods=False)
    assert messages.unit_prices(day_night, totals_only) == ({}, {})


def test_reservation_elements_do_not_count_as_the_charging_price() -> None:
    t = tariff(
        element(comp("TIME", "9.00"), reservation="RESERVATION"),
        element(comp("ENERGY", "0.30")),
    )
    charging, _ = messages.unit_prices(t, cost_of_full())
    assert charging == {"kWhPrice": Decimal("0.3000")}


def test_final_cost_with_its_text() -> None:
    cost = cost_of_full()
    req = messages.final_cost(7, cost, "nl")
    assert req["messageId"] == "FinalCost"
    assert json.loads(req["data"]) == {
        "transactionId": 7,
        "cost": 7.0,
        "priceText": "Totaal 7.00 EUR (10.00 kWh, 1:00 h)",
    }
    assert messages.final_text(cost, None).startswith("Total 7.00 EUR")
