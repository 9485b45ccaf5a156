"""OpenADR PRICE intervals as the engine's price signals (pure, with fakes of the two tables billing reads): the
payload's units converted to a price per kWh (KWH or none as is, MWH / 1000, WH x 1000, more than 4 decimals
rounded half-up as the engine rounds), intervals without a currency, in other units or not a number left out,
only the tariff's currency applied, the operator's windows before OpenADR's, and the running cost's reads held
for OPENADR_TTL_S while the final cost's and the CDR's read the table every time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from ampgate.billing.signals import OPENADR_TTL_S, PriceSignals, SignalWindow, from_openadr
from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.pricing import PriceSignal

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


class Row(msgspec.Struct, frozen=True, kw_only=True):
    """The fields billing reads of an `ampgate.openadr.PriceRow`."""

    start: datetime = T0
    end: datetime = T0 + timedelta(minutes=15)
    price: float
    currency: str | None = "EUR"
    units: str | None = "KWH"


@pytest.mark.parametrize(
    ("units", "price", "per_kwh"),
    [
        ("KWH", 0.25, "0.25"),
        ("kWh", 0.25, "0.25"),  # descriptors are compared without case
        (None, 0.25, "0.25"),  # no units: per kWh, as the ElaadNL profile sends them
        ("MWH", 120.5, "0.1205"),
        ("MWh", 87.0, "0.087"),
        ("WH", 0.00031, "0.31"),
        ("MWH", 123.45, "0.1235"),  # 0.12345: half-up to 4 decimals, as the engine rounds a signal
        ("KWH", -0.05, "-0.05"),  # kept: the engine counts a negative price as 0
    ],
)
def test_a_price_is_converted_to_a_price_per_kwh(units: str | None, price: float, per_kwh: str) -> None:
    converted = from_openadr(Row(price=price, units=units))
    assert converted == ("EUR", PriceSignal(start=minutes(0), end=minutes(15), energy_price=Decimal(per_kwh)))


@pytest.mark.parametrize("units", ["KW", "THERM", "EUR/KWH", ""])
def test_a_price_in_units_that_are_not_energy_is_not_used(units: str) -> None:
    assert from_openadr(Row(price=0.25, units=units)) is None


@pytest.mark.parametrize("currency", [None, ""])
def test_a_price_without_a_currency_is_not_used(currency: str | None) -> None:
    assert from_openadr(Row(price=0.25, currency=currency)) is None


@pytest.mark.parametrize("price", [float("nan"), float("inf"), float("-inf")])
def test_a_price_that_is_not_a_number_is_not_used(price: float) -> None:
    assert from_openadr(Row(price=price)) is None


def test_the_currency_is_read_without_case() -> None:
    assert from_openadr(Row(price=0.25, currency="usd")) == (
        "USD",
        PriceSignal(start=minutes(0), end=minutes(15), energy_price=Decimal("0.25")),
    )


class Windows:
    """`PriceSignalRepository`'s read: the operator's windows of every site."""

    def __init__(self, *windows: SignalWindow) -> None:
        self.windows_ = windows

    def windows(self, site_id: str) -> tuple[tuple[SignalWindow, ...], datetime | None]:
        return self.windows_, None


class OpenAdr:
    """`ampgate.openadr.PriceRepository.prices`: the rows overlapping the asked window; every read recorded."""

    def __init__(self, *rows: Row) -> None:
        self.rows = list(rows)
        self.reads: list[tuple[str, datetime, datetime]] = []

    def prices(self, site_id: str, since: datetime, until: datetime) -> list[Row]:
        self.reads.append((site_id, since, until))
        return [r for r in self.rows if r.start < until and r.end > since]


class Wall(Clock):
    def __init__(self) -> None:
        self.t = T0
        self.mono = 0.0

    def wall(self) -> float:
        return self.t.timestamp()

    def monotonic(self) -> float:
        return self.mono


def signals(adr: OpenAdr, *windows: SignalWindow) -> tuple[PriceSignals, Wall]:
    wall = Wall()
    built = PriceSignals(
        Windows(*windows),  # type: ignore[arg-type]
        site_exists=lambda site_id: True,
        openadr=adr,
        bus=EventBus(),
        clock=wall,
    )
    return built, wall


def test_only_the_tariffs_currency_applies_and_the_operators_windows_come_first() -> None:
    adr = OpenAdr(
        Row(price=0.20),
        Row(price=90.0, units="MWH", start=minutes(15), end=minutes(30)),
        Row(price=0.33, currency="USD"),
        Row(price=0.50, currency=None),
        Row(price=0.60, units="KW"),
    )
    operator = SignalWindow(
        start_at=minutes(0), end_at=minutes(60), energy_price=Decimal("0.11"), currency="EUR"
    )
    priced, _ = signals(adr, operator)
    for fresh in (True, False):
        assert priced.signals("S1", "EUR", minutes(0), minutes(30), fresh=fresh) == [
            PriceSignal(start=minutes(0), end=minutes(60), energy_price=Decimal("0.11")),
            PriceSignal(start=minutes(0), end=minutes(15), energy_price=Decimal("0.2")),
            PriceSignal(start=minutes(15), end=minutes(30), energy_price=Decimal("0.09")),
        ]
        assert priced.signals("S1", "USD", minutes(0), minutes(30), fresh=fresh) == [
            PriceSignal(start=minutes(0), end=minutes(15), energy_price=Decimal("0.33"))
        ]
        assert priced.signals("S1", "GBP", minutes(0), minutes(30), fresh=fresh) == []
        # Only what overlaps the session.
        assert priced.signals("S1", "EUR", minutes(20), minutes(25), fresh=fresh)[1:] == [
            PriceSignal(start=minutes(15), end=minutes(30), energy_price=Decimal("0.09"))
        ]
    assert priced.signals(None, "EUR", minutes(0), minutes(30)) == []


def test_running_costs_reuse_a_read_for_a_while_final_costs_read_every_time() -> None:
    adr = OpenAdr(Row(price=0.20))
    priced, wall = signals(adr)
    wall.t = minutes(10)
    first = priced.signals("S1", "EUR", minutes(0), minutes(10))
    assert first == [PriceSignal(start=minutes(0), end=minutes(15), energy_price=Decimal("0.2"))]
    # One read around now serves the sessions of the site meanwhile.
    assert len(adr.reads) == 1 and adr.reads[0][1] <= minutes(0) and adr.reads[0][2] > minutes(10)
    adr.rows.append(Row(price=0.40, start=minutes(15), end=minutes(30)))
    wall.t, wall.mono = minutes(20), OPENADR_TTL_S - 1
    assert priced.signals("S1", "EUR", minutes(0), minutes(20)) == first
    assert len(adr.reads) == 1
    # The final cost and the CDR read the table: the interval just stored counts.
    assert priced.signals("S1", "EUR", minutes(0), minutes(20), fresh=True)[1:] == [
        PriceSignal(start=minutes(15), end=minutes(30), energy_price=Decimal("0.4"))
    ]
    assert adr.reads[-1] == ("S1", minutes(0), minutes(20))
    # Past the TTL the running cost reads again.
    wall.mono = OPENADR_TTL_S + 1
    assert len(priced.signals("S1", "EUR", minutes(0), minutes(20))) == 2
    assert len(adr.reads) == 3
    # A session that began before what was read is read again at once.
    priced.signals("S1", "EUR", minutes(0) - timedelta(days=3), minutes(20))
    assert len(adr.reads) == 4
