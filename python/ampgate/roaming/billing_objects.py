"""The OCPI Session, CDR and Tariff objects built from what the node keeps: pure functions, unit-tested without
I/O (`tests/roaming/test_billing_objects.py` decodes every object they build back with our Structs).

- A **Tariff** is the operator's tariff (`ampgate.pricing.Tariff`, OCPI's names already) with our country code,
  party id and its `last_updated`.
- A **Session** is a transaction (ours: `session_id(tx)` is its id) and what let it in (the eMSP's token, its
  auth method and authorization_reference from `ocpi_authorizations`), where it happens (`Place`), and what the
  one pricing engine says it costs so far (kwh, total_cost, charging periods).
- A **CDR** is billing's CDR (never changed) in OCPI's words: the Location and EVSE as they were at the start
  (the Session's place, kept when the session was first seen), the tariff snapshot the session was priced by,
  the charging periods and every total from the engine's Cost, the charger's signed meter values. A credit CDR
  is the original's data with its own id, `credit` true, `credit_reference_id` the original's id, and
  `total_cost` negated (mod_cdrs: "only the values in the total_cost field SHALL contain the negative amounts").

Numbers: OCPI's have 4 decimals unless said otherwise (types.asciidoc), so volumes (kWh, hours, kW, A) are
rounded half-up to 4; money comes rounded to the currency already.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

import msgspec

from ampgate.pricing import ChargingPeriod as EnginePeriod
from ampgate.pricing import Cost
from ampgate.pricing import Price as EnginePrice
from ampgate.pricing import Tariff as EngineTariff
from ampgate.roaming import cdr_types as o
from ampgate.roaming.mapping import evse_uid, session_id
from ampgate.roaming.types import AuthMethod, DisplayText, Evse, Location, Token, ocpi_time
from ampgate.store.transactions import OCPP16, SignedValue, TransactionRow

__all__ = [
    "Place",
    "PlaceSource",
    "cdr_location",
    "cdr_object",
    "cdr_token",
    "charging_periods",
    "credit_object",
    "hours",
    "kwh",
    "ocpi_tariff",
    "place_of",
    "price",
    "session_object",
    "signed_data",
]

_FOUR = Decimal("0.0001")
# The signed meter value contexts (2.0.1 ReadingContextEnumType, 1.6 ReadingContext) that OCPI's SignedValue
# nature names; any other context is a value taken during the session.
_NATURE = {"Transaction.Begin": "Start", "Transaction.End": "End"}
_SIGNED_MAX = 5000  # SignedValue plain_data and signed_data: string(5000)


def _four(x: Decimal | float) -> Decimal:
    return Decimal(str(x)).quantize(_FOUR, rounding=ROUND_HALF_UP)


def kwh(wh: Decimal | float | None) -> Decimal:
    """Wh as OCPI's kWh (4 decimals); None as 0."""
    return _four(Decimal(0) if wh is None else Decimal(str(wh)) / 1000)


def hours(seconds: Decimal | float) -> Decimal:
    """Seconds as OCPI's hours (4 decimals)."""
    return _four(Decimal(str(seconds)) / 3600)


def price(p: EnginePrice) -> o.Price:
    return o.Price(excl_vat=p.excl_vat, incl_vat=p.incl_vat)


def _negated(p: o.Price) -> o.Price:
    return o.Price(excl_vat=-p.excl_vat, incl_vat=None if p.incl_vat is None else -p.incl_vat)


# -- tariffs ----------------------------------------------------------------------------------------------------


def ocpi_tariff(t: EngineTariff, *, country_code: str, party_id: str, last_updated: datetime) -> o.Tariff:
    """The operator's tariff as OCPI publishes it (the model has OCPI's names; only the owner and last_updated
    are added)."""
    elements = []
    for e in t.elements:
        r = e.restrictions
        restrictions = None
        if r is not None:
            restrictions = o.TariffRestrictions(
                start_time=r.start_time,
                end_time=r.end_time,
                start_date=r.start_date,
                end_date=r.end_date,
                min_kwh=r.min_kwh,
                max_kwh=r.max_kwh,
                min_current=r.min_current,
                max_current=r.max_current,
                min_power=r.min_power,
                max_power=r.max_power,
                min_duration=r.min_duration,
                max_duration=r.max_duration,
                day_of_week=[o.DayOfWeek(d) for d in r.day_of_week] or None,
                reservation=None if r.reservation is None else o.ReservationRestrictionType(r.reservation),
            )
        elements.append(
            o.TariffElement(
                price_components=[
                    o.PriceComponent(
                        type=o.TariffDimensionType(c.type), price=c.price, step_size=c.step_size, vat=c.vat
                    )
                    for c in e.price_components
                ],
                restrictions=restrictions,
            )
        )
    return o.Tariff(
        country_code=country_code,
        party_id=party_id,
        id=t.id,
        currency=t.currency,
        elements=elements,
        tariff_alt_text=[DisplayText(language=d.language, text=d.text) for d in t.tariff_alt_text] or None,
        tariff_alt_url=t.tariff_alt_url,
        min_price=None if t.min_price is None else price(t.min_price),
        max_price=None if t.max_price is None else price(t.max_price),
        start_date_time=None if t.start_date_time is None else ocpi_time(t.start_date_time),
        end_date_time=None if t.end_date_time is None else ocpi_time(t.end_date_time),
        last_updated=ocpi_time(last_updated),
    )


# -- shared parts ---------------------------------------------------------------------------------------------


def cdr_token(token: Token) -> o.CdrToken:
    return o.CdrToken(
        country_code=token.country_code,
        party_id=token.party_id,
        uid=token.uid,
        type=token.type,
        contract_id=token.contract_id,
    )


def _period(p: EnginePeriod) -> o.ChargingPeriod:
    dims = [o.CdrDimension(type=o.CdrDimensionType(d.type), volume=_four(d.volume)) for d in p.dimensions]
    if not dims:
        # OCPI wants at least one dimension; a stretch where nothing was measured had no energy.
        dims = [o.CdrDimension(type=o.CdrDimensionType.ENERGY, volume=_four(0))]
    return o.ChargingPeriod(
        start_date_time=ocpi_time(p.start_date_time), dimensions=dims, tariff_id=p.tariff_id
    )


def charging_periods(cost: Cost) -> list[o.ChargingPeriod]:
    """The engine's periods as OCPI's (its phases, prices and ends are ours alone: an OCPI period ends when the
    next one starts)."""
    return [_period(p) for p in cost.charging_periods]


def _unpriced_period(
    started_at: datetime, energy_wh: float, charging_s: float, parking_s: float
) -> list[o.ChargingPeriod]:
    """One period for a session no tariff priced: its volumes, no tariff (OCPI: none was relevant)."""
    dims = [
        o.CdrDimension(type=o.CdrDimensionType.ENERGY, volume=kwh(energy_wh)),
        o.CdrDimension(type=o.CdrDimensionType.TIME, volume=hours(charging_s)),
    ]
    if parking_s > 0:
        dims.append(o.CdrDimension(type=o.CdrDimensionType.PARKING_TIME, volume=hours(parking_s)))
    return [o.ChargingPeriod(start_date_time=ocpi_time(started_at), dimensions=dims)]


# -- where a session is ----------------------------------------------------------------------------------------


class Place(msgspec.Struct, frozen=True, kw_only=True):
    """Where a session happens in OCPI's ids, and the CdrLocation as it was when the session was first seen
    (None when the charger's site is not published as a Location: no address to put on a CDR)."""

    location_id: str
    evse_uid: str
    connector_id: str
    cdr_location: o.CdrLocation | None = None


class PlaceSource(Protocol):
    """`ampgate.roaming.locations.LocationBook`."""

    def published_evses(self, charger_id: str, /) -> list[tuple[str, Evse]] | None: ...
    def location(self, location_id: str, /) -> Location | None: ...


def place_of(tx: TransactionRow, book: PlaceSource) -> Place | None:
    """Where transaction `tx` happens: its charger's site (the Location's id, published or not), the EVSE's uid
    (1.6: the connector is the EVSE), the connector's id. None when the charger is placed at no site, or none
    of its EVSEs is known yet."""
    evses = book.published_evses(tx.charger_id)
    if not evses:
        return None
    number = tx.connector_id if tx.protocol == OCPP16 else tx.evse_id
    uid = evse_uid(tx.charger_id, 1 if number is None else number)
    location_id = evses[0][0]
    evse = next((e for _, e in evses if e.uid == uid), None)
    connector = str(tx.connector_id) if tx.connector_id is not None else None
    if connector is None:
        connector = evse.connectors[0].id if evse is not None else "1"
    location = book.location(location_id)
    found = None if location is None or evse is None else cdr_location(location, evse, connector)
    return Place(location_id=location_id, evse_uid=uid, connector_id=connector, cdr_location=found)


def cdr_location(location: Location, evse: Evse, connector_id: str) -> o.CdrLocation:
    """The Location with only `evse` and its connector `connector_id` (else its first). The EVSE's eMI3 id, or
    its uid when it has none (CdrLocation requires one; ours is absent for charger ids eMI3 cannot carry)."""
    connector = next((c for c in evse.connectors if c.id == connector_id), evse.connectors[0])
    return o.CdrLocation(
        id=location.id,
        name=location.name,
        address=location.address[:45].rstrip(),
        city=location.city[:45].rstrip(),
        postal_code=location.postal_code,
        state=None if location.state is None else location.state[:20],
        country=location.country,
        coordinates=location.coordinates,
        evse_uid=evse.uid,
        evse_id=evse.evse_id or evse.uid,
        connector_id=connector.id,
        connector_standard=connector.standard,
        connector_format=connector.format,
        connector_power_type=connector.power_type,
    )


# -- sessions --------------------------------------------------------------------------------------------------


def session_object(
    *,
    country_code: str,
    party_id: str,
    tx: TransactionRow,
    token: Token,
    auth_method: AuthMethod,
    authorization_reference: str | None,
    place: Place,
    currency: str,
    status: o.SessionStatus,
    energy_wh: Decimal | float | None,
    total_cost: EnginePrice | None,
    periods: list[o.ChargingPeriod] | None,
    end_date_time: datetime | None,
    last_updated: datetime,
) -> o.Session:
    """A Session (mod_sessions) of transaction `tx`, started with `token`. `total_cost` None: no price
    information (OCPI: not "free")."""
    return o.Session(
        country_code=country_code,
        party_id=party_id,
        id=session_id(tx.id),
        start_date_time=ocpi_time(tx.started_at),
        end_date_time=None if end_date_time is None else ocpi_time(end_date_time),
        kwh=kwh(energy_wh),
        cdr_token=cdr_token(token),
        auth_method=auth_method,
        authorization_reference=authorization_reference,
        location_id=place.location_id,
        evse_uid=place.evse_uid,
        connector_id=place.connector_id,
        currency=currency,
        charging_periods=periods,
        total_cost=None if total_cost is None else price(total_cost),
        status=status,
        last_updated=ocpi_time(last_updated),
    )


# -- signed meter values ---------------------------------------------------------------------------------------


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(text)


def _plain(text: str) -> str:
    """The readable form of a signed value: its Base64 decoded when that is text (OCMF is), else as sent."""
    if _is_base64(text):
        try:
            decoded = base64.b64decode(text).decode("utf-8")
        except UnicodeDecodeError:
            return text
        if decoded.isprintable():
            return decoded
    return text


def _encoding(v: SignedValue) -> str:
    """The encoding method of a signed value: the charger's (2.0.1 encodingMethod, else signingMethod), else
    OCMF when the data says so (1.6 SignedData carries no method), else the format's name."""
    named = v.encoding_method or v.signing_method
    if named:
        return named[:36]
    return "OCMF" if _plain(v.signed_data).startswith("OCMF|") else v.format[:36]


def signed_data(values: Sequence[SignedValue]) -> o.SignedData | None:
    """The charger's signed meter values as OCPI's SignedData: those of the first value's encoding method (a CDR
    has one), in time order, nature from the reading context (Start, End, else Intermediate), `signed_data`
    Base64 (encoded here when the charger's was not), `plain_data` its readable form; a value longer than OCPI
    allows is left out. None when there is none."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: v.at)
    method = _encoding(ordered[0])
    out = []
    for v in ordered:
        if _encoding(v) != method:
            continue
        signed = (
            v.signed_data if _is_base64(v.signed_data) else base64.b64encode(v.signed_data.encode()).decode()
        )
        plain = _plain(v.signed_data)
        if len(signed) > _SIGNED_MAX or len(plain) > _SIGNED_MAX:
            continue
        out.append(
            o.SignedValue(
                nature=_NATURE.get(v.context or "", "Intermediate"), plain_data=plain, signed_data=signed
            )
        )
    if not out:
        return None
    key = next((v.public_key for v in ordered if v.public_key), None)
    return o.SignedData(
        encoding_method=method,
        signed_values=out,
        public_key=key if key is not None and len(key) <= 512 else None,
    )


# -- CDRs ------------------------------------------------------------------------------------------------------


class BillingCdr(Protocol):
    """`ampgate.billing.Cdr`: what a CDR is built from."""

    @property
    def id(self) -> int: ...
    @property
    def transaction_id(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime: ...
    @property
    def energy_wh(self) -> float: ...
    @property
    def charging_time_s(self) -> float: ...
    @property
    def parking_time_s(self) -> float: ...
    @property
    def tariff(self) -> EngineTariff | None: ...
    @property
    def cost(self) -> Cost | None: ...
    @property
    def signed_meter_values(self) -> tuple[SignedValue, ...]: ...
    @property
    def created_at(self) -> datetime: ...


def cdr_object(
    cdr: BillingCdr,
    *,
    country_code: str,
    party_id: str,
    token: Token,
    auth_method: AuthMethod,
    authorization_reference: str | None,
    location: o.CdrLocation,
    currency: str,
    tariff_updated_at: datetime | None = None,
) -> o.Cdr:
    """The OCPI CDR of billing's `cdr` (not a credit: see `credit_object`). `currency` is used when no tariff
    priced the session (a CDR of zero cost then, OCPI's "free of charge", with its volumes in one period);
    `tariff_updated_at` the snapshot's last_updated (default: the session's start)."""
    cost = cdr.cost
    total_time = Decimal(str(cdr.charging_time_s)) + Decimal(str(cdr.parking_time_s))
    common: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": str(cdr.id),
        "start_date_time": ocpi_time(cdr.started_at),
        "end_date_time": ocpi_time(cdr.ended_at),
        "session_id": session_id(cdr.transaction_id),
        "cdr_token": cdr_token(token),
        "auth_method": auth_method,
        "authorization_reference": authorization_reference,
        "cdr_location": location,
        "signed_data": signed_data(cdr.signed_meter_values),
        "total_energy": kwh(cdr.energy_wh),
        "total_time": hours(total_time),
        "total_parking_time": hours(cdr.parking_time_s),
        "last_updated": ocpi_time(cdr.created_at),
    }
    if cost is None or cdr.tariff is None:
        return o.Cdr(
            **common,
            currency=currency,
            charging_periods=_unpriced_period(
                cdr.started_at, cdr.energy_wh, cdr.charging_time_s, cdr.parking_time_s
            ),
            total_cost=o.Price(excl_vat=Decimal(0), incl_vat=Decimal(0)),
        )
    periods = charging_periods(cost) or _unpriced_period(
        cdr.started_at, cdr.energy_wh, cdr.charging_time_s, cdr.parking_time_s
    )
    return o.Cdr(
        **common,
        currency=cost.currency,
        tariffs=[
            ocpi_tariff(
                cdr.tariff,
                country_code=country_code,
                party_id=party_id,
                last_updated=tariff_updated_at or cdr.started_at,
            )
        ],
        charging_periods=periods,
        total_cost=price(cost.total_cost),
        total_fixed_cost=price(cost.flat_cost),
        total_energy_cost=price(cost.energy_cost),
        total_time_cost=price(cost.time_cost),
        total_parking_cost=price(cost.parking_cost),
        total_reservation_cost=price(cost.reservation_cost) if cost.reservation_time_s > 0 else None,
    )


def credit_object(original: o.Cdr, *, credit_id: int, created_at: datetime) -> o.Cdr:
    """The credit CDR of `original` (mod_cdrs "Credit CDRs"): its data, its own id, `credit` true,
    `credit_reference_id` the original's id, `total_cost` negated."""
    return msgspec.structs.replace(
        original,
        id=str(credit_id),
        credit=True,
        credit_reference_id=original.id,
        total_cost=_negated(original.total_cost),
        last_updated=ocpi_time(created_at),
    )
