"""The tariff model, with OCPI 2.2.1's names and meanings, and the session usage the engine prices.

Values only: frozen msgspec Structs with tuples inside, so a tariff or a usage can be shared, cached and
compared without anyone changing it underneath. Money and prices are `Decimal` and decode from JSON numbers
(and strings); encoders that face the wire are set to `decimal_format="number"` by their owners.

The tariff (`Tariff`, `TariffElement`, `PriceComponent`, `TariffRestrictions`, `Price`, `DisplayText`) keeps
OCPI's field names so the OCPI module can publish it as is (adding `country_code`, `party_id`, `last_updated`).
The usage (`SessionUsage`, `MeterSample`, `ChargingChange`, `Reservation`) and the signals (`PriceSignal`) are
ours: what the node knows about one session, in the shape the engine reads. The result (`Cost`,
`ChargingPeriod`, ...) is described in `ampgate.pricing.engine`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

__all__ = [
    "CURRENCY_DECIMALS",
    "CdrDimension",
    "CdrDimensionType",
    "ChargingChange",
    "ChargingPeriod",
    "Cost",
    "DayOfWeek",
    "DisplayText",
    "MeterSample",
    "Phase",
    "Price",
    "PriceComponent",
    "PriceSignal",
    "PricedDimension",
    "Reservation",
    "ReservationRestrictionType",
    "SessionUsage",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
]

# ISO 4217 codes a tariff may be in, with their minor units (the decimals a total is rounded to). The
# currencies of the markets where charging networks run, plus the zero- and three-decimal ones so that rounding
# is tested on something other than cents. A code missing here is refused by `validate` (not guessed at 2).
# HUF and CZK keep ISO's 2 although their cash has no coins below 1: card and bank payments still carry them.
CURRENCY_DECIMALS: dict[str, int] = {
    "AED": 2, "ARS": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2,
    "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2,
    "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MAD": 2, "MXN": 2, "MYR": 2, "NOK": 2,
    "NZD": 2, "OMR": 3, "PEN": 2, "PHP": 2, "PLN": 2, "QAR": 2, "RON": 2, "RSD": 2, "SAR": 2, "SEK": 2,
    "SGD": 2, "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "UYU": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip

TariffDimensionType = Literal["ENERGY", "FLAT", "PARKING_TIME", "TIME"]
DayOfWeek = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
ReservationRestrictionType = Literal["RESERVATION", "RESERVATION_EXPIRES"]
# The CDR dimensions the engine reports (OCPI 2.2.1 CdrDimensionType, the ones meant for CDRs). FLAT is not a
# CDR dimension in 2.2.1 (it was in 2.1.1): a flat fee shows in `ChargingPeriod.priced` and in `Cost.flat_cost`.
CdrDimensionType = Literal[
    "ENERGY",
    "MAX_CURRENT",
    "MIN_CURRENT",
    "MAX_POWER",
    "MIN_POWER",
    "PARKING_TIME",
    "RESERVATION_TIME",
    "TIME",
]
# Which part of a session a period belongs to: the reservation before it, the transaction, or the parking
# after the transaction ended while the EVSE was still occupied (what the CDR adds to the charger's total).
Phase = Literal["reservation", "transaction", "after_transaction"]

# OCPI's string formats for restrictions, checked again by `validate` for values built in code.
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_DATE = r"^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"

Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
TimeOfDay = Annotated[str, msgspec.Meta(pattern=_HHMM, description="HH:MM, local time of the location")]
LocalDate = Annotated[str, msgspec.Meta(pattern=_DATE, description="YYYY-MM-DD, local date of the location")]


class Price(msgspec.Struct, frozen=True, kw_only=True):
    """An amount of money (OCPI Price): without VAT, and with it when known."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None


class DisplayText(msgspec.Struct, frozen=True, kw_only=True):
    """Text in one language (OCPI DisplayText): ISO 639-1 `language`, plain `text` of at most 512 characters."""

    language: str
    text: str


class PriceComponent(msgspec.Struct, frozen=True, kw_only=True):
    """How one dimension is priced (OCPI PriceComponent).

    `price` is per unit, without VAT: per kWh (ENERGY), per hour charging (TIME), per hour not charging
    (PARKING_TIME), or the fee itself (FLAT); at most 4 decimals. `step_size` is the billing block in the
    dimension's base unit (Wh for ENERGY, seconds for the times; ignored for FLAT). `vat` is a percentage;
    None means no VAT applies (which prices like 0 % but is not the same statement)."""

    type: TariffDimensionType
    price: Decimal
    step_size: int = 1
    vat: Decimal | None = None


class TariffRestrictions(msgspec.Struct, frozen=True, kw_only=True):
    """When an element applies (OCPI TariffRestrictions): every field set must match (logical AND).

    Times and dates are local to the location (the engine's `tz`). `end_time` before `start_time` wraps past
    midnight and "00:00" as `end_time` means the end of the day; `end_date` is exclusive. Energy is the
    session's so far in kWh, current the sum over phases in A, power in kW; `min_*` inclusive, `max_*`
    exclusive. Durations are seconds since the session (or reservation) started. `reservation` makes the
    element a reservation element: it applies only to the reservation before a session (RESERVATION) or only
    to a reservation that expired unused (RESERVATION_EXPIRES), and never to the session itself."""

    start_time: TimeOfDay | None = None
    end_time: TimeOfDay | None = None
    start_date: LocalDate | None = None
    end_date: LocalDate | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: tuple[DayOfWeek, ...] = ()
    reservation: ReservationRestrictionType | None = None


class TariffElement(msgspec.Struct, frozen=True, kw_only=True):
    """Price components sharing one set of restrictions (OCPI TariffElement). None restrictions: always."""

    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions | None = None


class Tariff(msgspec.Struct, frozen=True, kw_only=True):
    """A tariff (OCPI Tariff, without the owner's country_code/party_id/last_updated that OCPI adds).

    For each dimension at each moment, the first element in `elements` that has a component of that dimension
    and whose restrictions all match prices it; overlapping restrictions are legal. `min_price` / `max_price`
    bound the session's total. `start_date_time` / `end_date_time` (UTC) say when the tariff is valid, for
    whoever picks a tariff for a session; the engine prices with the tariff it is given and ignores them."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=36)]
    currency: Currency
    elements: tuple[TariffElement, ...]
    min_price: Price | None = None
    max_price: Price | None = None
    tariff_alt_text: tuple[DisplayText, ...] = ()
    tariff_alt_url: str | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None


# -- what the engine prices ----------------------------------------------------------------------------------


class MeterSample(msgspec.Struct, frozen=True, array_like=True):
    """One meter reading of a session: `energy_wh` imported since the session started (the register minus its
    value at start; never decreasing: a reading below an earlier one is taken as the earlier one), and the
    power (W) and current (A, summed over phases) the charger reported with it, None when it did not.

    A sample describes the stretch from its `at` to the next sample: the power and current it carries, and the
    energy so far, are what the restrictions see until the next sample (see the engine's rules). Encoded as an
    array `[at, energy_wh, power_w, current_a]`: sessions carry hundreds of them."""

    at: datetime
    energy_wh: float
    power_w: float | None = None
    current_a: float | None = None


class ChargingChange(msgspec.Struct, frozen=True, array_like=True):
    """From `at` on, the EV is charging (energy requested and flowing: OCPI's TIME) or not (PARKING_TIME)."""

    at: datetime
    charging: bool


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    """The reservation before a session: made at `start`, over at `end` (when the driver started the session,
    or when it expired). `expired` True: it ended without a session, and only it is priced."""

    start: datetime
    end: datetime
    expired: bool = False


class SessionUsage(msgspec.Struct, frozen=True, kw_only=True):
    """What is known of one session, all instants aware.

    `samples` and `charging` in time order. Before the first `charging` change the EV counts as charging.
    `stopped_at`: the transaction ended (nothing is charged after it; the EVSE may stay occupied: parking).
    `ended_at`: the EVSE is free again, the session is over. Either is None while not known yet; `ended_at`
    without `stopped_at` means both happened then."""

    started_at: datetime
    samples: tuple[MeterSample, ...] = ()
    charging: tuple[ChargingChange, ...] = ()
    stopped_at: datetime | None = None
    ended_at: datetime | None = None
    reservation: Reservation | None = None


class PriceSignal(msgspec.Struct, frozen=True, kw_only=True):
    """A dynamic energy price over [start, end), in the tariff's currency per kWh without VAT: it replaces the
    price of the ENERGY component that applies during the window (see the engine's rules)."""

    start: datetime
    end: datetime
    energy_price: Decimal


# -- what the engine returns ---------------------------------------------------------------------------------


class CdrDimension(msgspec.Struct, frozen=True, kw_only=True):
    """A volume used in a period (OCPI CdrDimension): kWh for ENERGY, hours for the times, kW for power, A for
    current."""

    type: CdrDimensionType
    volume: Decimal


class PricedDimension(msgspec.Struct, frozen=True, kw_only=True):
    """One price component applied in a period: which element (index into `Tariff.elements`), at which unit
    price without VAT (a price signal's, where one replaced it), for what volume (kWh, hours, or 1 for FLAT),
    and the volume billed, which is larger on the period where a step size rounded the dimension up."""

    type: TariffDimensionType
    element: int
    price: Decimal
    vat: Decimal | None
    volume: Decimal
    billed_volume: Decimal


class ChargingPeriod(msgspec.Struct, frozen=True, kw_only=True):
    """A stretch of the session over which nothing that affects the price changed (OCPI ChargingPeriod, with
    its end, its phase and what was priced in it added). `dimensions` is what OCPI's CDR lists; `priced` the
    components applied (empty when nothing was priced, e.g. free parking)."""

    start_date_time: datetime
    end_date_time: datetime
    phase: Phase
    charging: bool
    dimensions: tuple[CdrDimension, ...]
    priced: tuple[PricedDimension, ...]
    tariff_id: str


class Cost(msgspec.Struct, frozen=True, kw_only=True):
    """What a session costs up to the instant it was priced to (see `ampgate.pricing.engine.price`).

    All amounts are `Price`s with both `excl_vat` and `incl_vat` set, rounded to the currency's decimals.
    `total_cost` is owed: min/max price applied. The breakdown `energy_cost + time_cost + parking_cost +
    flat_cost + reservation_cost + adjustment == total_cost` exactly, excl and incl VAT each; `adjustment` is
    what min_price / max_price added or took (zero when neither bound was reached). `parking_cost` includes
    the parking after the transaction; `parking_after_cost` is how much that added to the total, so
    `transaction_cost + parking_after_cost == total_cost` and `transaction_cost` is the amount told to the
    charger when the transaction ended. Volumes: `energy_wh` and the times in seconds, exact."""

    tariff_id: str
    currency: str
    total_cost: Price
    energy_cost: Price
    time_cost: Price
    parking_cost: Price
    flat_cost: Price
    reservation_cost: Price
    adjustment: Price
    transaction_cost: Price
    parking_after_cost: Price
    energy_wh: Decimal
    charging_time_s: Decimal
    parking_time_s: Decimal
    parking_after_s: Decimal
    reservation_time_s: Decimal
    charging_periods: tuple[ChargingPeriod, ...]
    # True once `until` reached the session's end (ended_at, or an expired reservation's end): nothing more
    # will be added and every step size has been applied.
    final: bool
