"""The OCPI 2.2.1 objects of the money modules: Sessions (mod_sessions), CDRs (mod_cdrs) and Tariffs (mod_tariffs),
as msgspec Structs with the spec's names. The rules of `ampgate.roaming.types` hold here too (optional fields left
out when unset, unknown fields ignored on decode, times through `ocpi_time`); a module of its own because these
objects carry money and stand apart from the transport, Locations, Tokens and Commands.

Money and volumes are `Decimal`, written as JSON numbers (the server's and the client's encoders use
`decimal_format="number"`): OCPI's `number`, with at most 4 decimals unless said otherwise (types.asciidoc),
which the builders in `ampgate.roaming.billing_objects` round to.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec
from msgspec import Meta

from ampgate.roaming.types import (
    AuthMethod,
    ConnectorFormat,
    ConnectorType,
    CountryCode,
    DisplayText,
    GeoLocation,
    PartyId,
    PowerType,
    ProfileType,
    TokenType,
)

__all__ = [
    "Cdr",
    "CdrDimension",
    "CdrDimensionType",
    "CdrLocation",
    "CdrToken",
    "ChargingPeriod",
    "ChargingPreferences",
    "ChargingPreferencesResponse",
    "DayOfWeek",
    "Price",
    "PriceComponent",
    "ReservationRestrictionType",
    "Session",
    "SessionPatch",
    "SessionStatus",
    "SignedData",
    "SignedValue",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
]

CiString36 = Annotated[str, Meta(min_length=1, max_length=36, pattern=r"^[ -~]+$")]
# A CDR id: 36 characters, 39 for a credit CDR (room for a suffix such as "-C").
CdrId = Annotated[str, Meta(min_length=1, max_length=39, pattern=r"^[ -~]+$")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]


class _Object(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


# -- shared ---------------------------------------------------------------------------------------------------


class Price(_Object):
    """An amount (types Price): without VAT, and with it when known."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None


class CdrDimensionType(enum.StrEnum):
    """What a ChargingPeriod's volume measures. CURRENT, ENERGY_EXPORT, ENERGY_IMPORT, POWER and STATE_OF_CHARGE
    are for Sessions only (mod_cdrs)."""

    CURRENT = "CURRENT"
    ENERGY = "ENERGY"
    ENERGY_EXPORT = "ENERGY_EXPORT"
    ENERGY_IMPORT = "ENERGY_IMPORT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    POWER = "POWER"
    RESERVATION_TIME = "RESERVATION_TIME"
    STATE_OF_CHARGE = "STATE_OF_CHARGE"
    TIME = "TIME"


class CdrDimension(_Object):
    type: CdrDimensionType
    volume: Decimal


class ChargingPeriod(_Object):
    """From `start_date_time` until the next period starts (the last: until the session ends)."""

    start_date_time: datetime
    dimensions: Annotated[list[CdrDimension], Meta(min_length=1)]
    tariff_id: CiString36 | None = None


class CdrToken(_Object):
    """The token a session was started with (mod_cdrs CdrToken)."""

    country_code: CountryCode
    party_id: PartyId
    uid: CiString36
    type: TokenType
    contract_id: CiString36


# -- sessions (mod_sessions) -----------------------------------------------------------------------------------


class SessionStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"
    RESERVATION = "RESERVATION"


class Session(_Object):
    country_code: CountryCode
    party_id: PartyId
    id: CiString36
    start_date_time: datetime
    kwh: Decimal
    cdr_token: CdrToken
    auth_method: AuthMethod
    location_id: CiString36
    evse_uid: CiString36
    connector_id: CiString36
    currency: Currency
    status: SessionStatus
    last_updated: datetime
    end_date_time: datetime | None = None
    authorization_reference: CiString36 | None = None
    meter_id: Annotated[str, Meta(max_length=255)] | None = None
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Price | None = None


class SessionPatch(_Object):
    """A PATCH of a Session: what changed, `last_updated` always (mod_sessions). `charging_periods` present
    means "add these" to the receiver's list."""

    last_updated: datetime
    status: SessionStatus | None = None
    kwh: Decimal | None = None
    total_cost: Price | None = None
    end_date_time: datetime | None = None
    start_date_time: datetime | None = None
    authorization_reference: CiString36 | None = None
    auth_method: AuthMethod | None = None
    charging_periods: list[ChargingPeriod] | None = None


class ChargingPreferences(_Object):
    profile_type: ProfileType
    departure_time: datetime | None = None
    energy_need: Decimal | None = None
    discharge_allowed: bool | None = None


class ChargingPreferencesResponse(enum.StrEnum):
    ACCEPTED = "ACCEPTED"
    DEPARTURE_REQUIRED = "DEPARTURE_REQUIRED"
    ENERGY_NEED_REQUIRED = "ENERGY_NEED_REQUIRED"
    NOT_POSSIBLE = "NOT_POSSIBLE"
    PROFILE_TYPE_NOT_SUPPORTED = "PROFILE_TYPE_NOT_SUPPORTED"


# -- tariffs (mod_tariffs) -------------------------------------------------------------------------------------


class TariffDimensionType(enum.StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class DayOfWeek(enum.StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class ReservationRestrictionType(enum.StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class PriceComponent(_Object):
    type: TariffDimensionType
    price: Decimal
    step_size: int
    vat: Decimal | None = None


class TariffRestrictions(_Object):
    start_time: Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None = None
    end_time: Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None = None
    start_date: Annotated[str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None = None
    end_date: Annotated[str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: list[DayOfWeek] | None = None
    reservation: ReservationRestrictionType | None = None


class TariffElement(_Object):
    price_components: Annotated[list[PriceComponent], Meta(min_length=1)]
    restrictions: TariffRestrictions | None = None


class Tariff(_Object):
    country_code: CountryCode
    party_id: PartyId
    id: CiString36
    currency: Currency
    elements: Annotated[list[TariffElement], Meta(min_length=1)]
    last_updated: datetime
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: Annotated[str, Meta(max_length=255)] | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None


# -- CDRs (mod_cdrs) ------------------------------------------------------------------------------------------


class CdrLocation(_Object):
    """The Location as it was at the session's start, with only its EVSE and connector."""

    id: CiString36
    address: Annotated[str, Meta(max_length=45)]
    city: Annotated[str, Meta(max_length=45)]
    country: Annotated[str, Meta(min_length=3, max_length=3)]
    coordinates: GeoLocation
    evse_uid: CiString36
    evse_id: Annotated[str, Meta(min_length=1, max_length=48)]
    connector_id: CiString36
    connector_standard: ConnectorType
    connector_format: ConnectorFormat
    connector_power_type: PowerType
    name: Annotated[str, Meta(max_length=255)] | None = None
    postal_code: Annotated[str, Meta(max_length=10)] | None = None
    state: Annotated[str, Meta(max_length=20)] | None = None


class SignedValue(_Object):
    """One signed meter value: `nature` Start, End or Intermediate; `signed_data` Base64."""

    nature: Annotated[str, Meta(min_length=1, max_length=32)]
    plain_data: Annotated[str, Meta(max_length=5000)]
    signed_data: Annotated[str, Meta(max_length=5000)]


class SignedData(_Object):
    encoding_method: CiString36
    signed_values: Annotated[list[SignedValue], Meta(min_length=1)]
    encoding_method_version: int | None = None
    public_key: Annotated[str, Meta(max_length=512)] | None = None
    url: Annotated[str, Meta(max_length=512)] | None = None


class Cdr(_Object):
    country_code: CountryCode
    party_id: PartyId
    id: CdrId
    start_date_time: datetime
    end_date_time: datetime
    cdr_token: CdrToken
    auth_method: AuthMethod
    cdr_location: CdrLocation
    currency: Currency
    charging_periods: Annotated[list[ChargingPeriod], Meta(min_length=1)]
    total_cost: Price
    total_energy: Decimal
    total_time: Decimal
    last_updated: datetime
    session_id: CiString36 | None = None
    authorization_reference: CiString36 | None = None
    meter_id: Annotated[str, Meta(max_length=255)] | None = None
    tariffs: list[Tariff] | None = None
    signed_data: SignedData | None = None
    total_fixed_cost: Price | None = None
    total_energy_cost: Price | None = None
    total_time_cost: Price | None = None
    total_parking_time: Decimal | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: Annotated[str, Meta(max_length=255)] | None = None
    invoice_reference_id: CdrId | None = None
    credit: bool | None = None
    credit_reference_id: CdrId | None = None
    home_charging_compensation: bool | None = None
