"""What goes on the wire, as pure functions: 2.0.1 message contents and amounts, and the three OCPP 1.6
"California Pricing" DataTransfer payloads.

The 1.6 payloads follow the OCA whitepaper "OCPP & California Pricing Requirements" as chargers implement it
(EVerest libocpp, MicroOcpp) and central systems send it (CitrineOS): `data` is a JSON text of
- SetUserPrice `{idToken, priceText}`;
- RunningCost `{transactionId, timestamp, meterValue, cost, state, chargingPrice, idlePrice?}`: `meterValue` the
  meter register in Wh (an integer), `state` "Charging" or "Idle", `chargingPrice` `{kWhPrice?, hourPrice?,
  flatFee?}` (always present, possibly empty: MicroOcpp refuses a RunningCost without it), `idlePrice`
  `{hourPrice}`;
- FinalCost `{transactionId, cost, priceText}`. `qrCodeText` (an invoice link) is optional in the whitepaper
  and left out: the node has no invoice URL to give.
Amounts are numbers: what the driver pays, VAT included.
"""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec

from ampgate.clock import iso_utc
from ampgate.pricing import CURRENCY_DECIMALS, Cost, Tariff, summary

VENDOR_ID = "org.openchargealliance.costmsg"
SET_USER_PRICE = "SetUserPrice"
RUNNING_COST = "RunningCost"
FINAL_COST = "FinalCost"
# 2.0.1 MessageContentType: content at most 512 characters, language at most 8 (RFC 5646).
MAX_CONTENT = 512
MAX_LANGUAGE = 8
# Unit prices carry up to 4 decimals (the tariff model's limit); VAT added keeps them at 4.
UNIT_PLACES = Decimal("0.0001")

# The California payloads are JSON text inside DataTransfer.data; money as JSON numbers, never strings.
_encode_data = msgspec.json.Encoder(decimal_format="number").encode

# The few words of the final-cost text; other languages get English (as the tariff line does).
_TOTAL = {"en": "Total", "de": "Gesamt", "fr": "Total", "nl": "Totaal"}


@functools.lru_cache(maxsize=4096)
def tariff_text(tariff: Tariff, language: str | None) -> str:
    """The tariff's display line (`ampgate.pricing.summary`, incl VAT) in `language`, at most 512 characters.
    Cached: tariffs are frozen values and the line is asked for on every authorization and transaction event;
    4,096 (tariff, language) pairs is far more than a network's distinct tariffs."""
    return summary(tariff, language=_primary(language), max_length=MAX_CONTENT)


def _primary(language: str | None) -> str | None:
    """The primary subtag of an RFC 5646 tag ("de-CH" → "de"): what the tariff's texts and words are keyed by."""
    if not language:
        return None
    return language.split("-", 1)[0].lower() or None


def message_content(text: str, language: str | None) -> dict[str, Any]:
    """A 2.0.1 MessageContentType (wire form) for `text`: UTF8, cut to 512 characters, with `language` when it
    fits the schema's 8 characters."""
    out: dict[str, Any] = {"format": "UTF8", "content": text[:MAX_CONTENT]}
    if language and len(language) <= MAX_LANGUAGE:
        out["language"] = language
    return out


def amount(cost: Cost) -> Decimal:
    """The number a charger shows and a driver pays: the total, VAT included (already rounded to the
    currency)."""
    total = cost.total_cost.incl_vat
    return cost.total_cost.excl_vat if total is None else total


def wire_number(value: Decimal) -> float:
    """`value` as an OCPP JSON number. A float, because the OCPP envelope's encoder writes Decimals as strings;
    a money amount rounded to its currency has at most a few significant digits, and a float's shortest repr
    (what msgspec writes) gives those digits back exactly (12.34 → 12.34)."""
    return float(value)


# -- OCPP 1.6 California Pricing --------------------------------------------------------------------------------


def data_transfer(message_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """A 1.6 DataTransfer request of the costmsg vendor (wire form)."""
    return {"vendorId": VENDOR_ID, "messageId": message_id, "data": _encode_data(data).decode()}


def set_user_price(id_tag: str, price_text: str) -> dict[str, Any]:
    """SetUserPrice: the price `id_tag` will pay, as text."""
    return data_transfer(SET_USER_PRICE, {"idToken": id_tag, "priceText": price_text})


def running_cost(
    transaction_id: int,
    at: float,
    meter_wh: float,
    cost: Cost,
    charging: bool,
    tariff: Tariff | None,
) -> dict[str, Any]:
    """RunningCost of transaction `transaction_id` at `at` (epoch seconds): the register `meter_wh`, the cost so
    far, whether the EV is charging, and the unit prices that apply now (from `tariff`, see `unit_prices`)."""
    charging_price, idle_price = unit_prices(tariff, cost)
    data: dict[str, Any] = {
        "transactionId": transaction_id,
        "timestamp": iso_utc(at),
        "meterValue": max(0, round(meter_wh)),
        "cost": amount(cost),
        "state": "Charging" if charging else "Idle",
        "chargingPrice": charging_price,
    }
    if idle_price:
        data["idlePrice"] = idle_price
    return data_transfer(RUNNING_COST, data)


def final_cost(transaction_id: int, cost: Cost, language: str | None) -> dict[str, Any]:
    """FinalCost of transaction `transaction_id`: what it cost until its stop, and that as text."""
    return data_transfer(
        FINAL_COST,
        {"transactionId": transaction_id, "cost": amount(cost), "priceText": final_text(cost, language)},
    )


def final_text(cost: Cost, language: str | None) -> str:
    """ "Total 3.31 EUR (23.40 kWh, 1:05 h)": the amount paid, the energy and how long the transaction ran."""
    word = _TOTAL.get(_primary(language) or "en", _TOTAL["en"])
    kwh = (cost.energy_wh / 1000).quantize(Decimal("0.01"), ROUND_HALF_UP)
    minutes = int((cost.charging_time_s + cost.parking_time_s - cost.parking_after_s) // 60)
    return f"{word} {amount(cost):f} {cost.currency} ({kwh:f} kWh, {minutes // 60}:{minutes % 60:02d} h)"


def unit_prices(tariff: Tariff | None, cost: Cost) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """(chargingPrice, idlePrice) as the whitepaper names them, VAT included: per kWh (`kWhPrice`), per hour
    charging (`hourPrice`), the start fee (`flatFee`); idle per hour (`hourPrice`). A dimension the tariff prices
    one way only gets that price; one priced differently by restrictions gets the price of the last charging
    period the engine reported (when the Cost carries periods), else it is left out rather than guessed."""
    charging: dict[str, Decimal] = {}
    idle: dict[str, Decimal] = {}
    if tariff is None:
        return charging, idle
    last = _last_prices(cost)
    for dim, into, key in (
        ("ENERGY", charging, "kWhPrice"),
        ("TIME", charging, "hourPrice"),
        ("FLAT", charging, "flatFee"),
        ("PARKING_TIME", idle, "hourPrice"),
    ):
        prices = {
            _incl_vat(c.price, c.vat)
            for e in tariff.elements
            if e.restrictions is None or e.restrictions.reservation is None
            for c in e.price_components
            if c.type == dim
        }
        if len(prices) == 1:
            price = prices.pop()
        elif prices and dim in last:
            price = last[dim]
        else:
            continue
        places = (
            Decimal(1).scaleb(-CURRENCY_DECIMALS.get(tariff.currency, 2)) if dim == "FLAT" else UNIT_PLACES
        )
        into[key] = price.quantize(places, ROUND_HALF_UP)
    return charging, idle


def _incl_vat(price: Decimal, vat: Decimal | None) -> Decimal:
    return price if vat is None else price * (1 + vat / 100)


def _last_prices(cost: Cost) -> dict[str, Decimal]:
    """Each dimension's unit price (incl VAT) in the latest transaction period that priced it."""
    out: dict[str, Decimal] = {}
    for period in cost.charging_periods:
        if period.phase != "transaction":
            continue
        for p in period.priced:
            out[p.type] = _incl_vat(p.price, p.vat)
    return out
