"""The OCPI Session, CDR (a credit CDR too) and Tariff objects as the builders make them from our transaction, the
eMSP's authorization, billing's CDR and the one engine's Cost: each is encoded as it goes on the wire (money as
JSON numbers) and decoded back with our msgspec types, and its fields are the ones mod_sessions, mod_cdrs and
mod_tariffs name, with the numbers the engine gave."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from ampgate.billing.model import Cdr
from ampgate.pricing import DisplayText, Price
from ampgate.roaming import cdr_types as o
from ampgate.roaming.billing_objects import (
    Place,
    cdr_location,
    cdr_object,
    credit_object,
    hours,
    kwh,
    ocpi_tariff,
    place_of,
    session_object,
    signed_data,
)
from ampgate.roaming.types import (
    AuthMethod,
    Connector,
    ConnectorFormat,
    ConnectorType,
    Evse,
    EvseStatus,
    GeoLocation,
    Location,
    MalformedObject,
    PowerType,
    Token,
    TokenType,
    WhitelistType,
    decode,
)
from ampgate.store.transactions import OCPP16, OCPP201, SignedValue, TransactionRow
from tests.pricing.builders import comp, cost_of, element, session, tariff

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
_wire = msgspec.json.Encoder(decimal_format="number")

TARIFF = tariff(
    element(comp("FLAT", "0.50", vat=20)),
    element(comp("ENERGY", "0.30", step=100, vat=20), start_time="07:00", end_time="20:00"),
    element(comp("ENERGY", "0.25", vat=20)),
    element(
        comp("TIME", "1.20", step=60, vat=20),
        comp("PARKING_TIME", "6.00", step=300, vat=20),
        day_of_week=["MONDAY", "TUESDAY"],
        min_kwh="0.5",
    ),
    id="STD",
    min_price=("1.00", "1.20"),
    tariff_alt_text=(DisplayText(language="nl", text="Laden bij Amp"),),
)
TOKEN = Token(
    country_code="NL",
    party_id="EMP",
    uid="APP-1",
    type=TokenType.APP_USER,
    contract_id="NL-EMP-C12345678",
    issuer="Test eMSP",
    valid=True,
    whitelist=WhitelistType.ALLOWED,
    last_updated=T0,
)


def wire(obj: object) -> bytes:
    return _wire.encode(obj)


def roundtrip(obj: object, type_: type) -> dict:
    """`obj` as sent, decoded back with our type (equal to what was built), and as plain JSON for the checks."""
    raw = wire(obj)
    assert decode(raw, type_) == obj
    return dict(msgspec.json.decode(raw))


def location() -> Location:
    return Location(
        country_code="NL",
        party_id="AMP",
        id="S1",
        publish=True,
        name="Site S1",
        address="Stationsplein 1, behind the long building at the end of the road",
        city="Utrecht",
        postal_code="3511",
        country="NLD",
        coordinates=GeoLocation(latitude="52.089400", longitude="5.110000"),
        time_zone="Europe/Amsterdam",
        last_updated=T0,
        evses=[evse()],
    )


def evse(emi3: str | None = "NL*AMP*ECP1*1") -> Evse:
    return Evse(
        uid="CP1-1",
        evse_id=emi3,
        status=EvseStatus.CHARGING,
        connectors=[
            Connector(
                id="1",
                standard=ConnectorType.IEC_62196_T2,
                format=ConnectorFormat.SOCKET,
                power_type=PowerType.AC_3_PHASE,
                max_voltage=230,
                max_amperage=32,
                last_updated=T0,
            )
        ],
        last_updated=T0,
    )


def tx(**kw: object) -> TransactionRow:
    fields: dict = {
        "id": 42,
        "charger_id": "CP1",
        "protocol": OCPP16,
        "remote_id": None,
        "evse_id": None,
        "connector_id": 1,
        "id_token": "APP-1",
        "started_at": T0,
        "stopped_at": None,
        "meter_start_wh": 1000.0,
        "meter_stop_wh": None,
        "energy_wh": 2345.0,
        "stop_reason": None,
    }
    fields.update(kw)
    return TransactionRow(**fields)


def billing_cdr(**kw: object) -> Cdr:
    usage = session(T0, charge_min=40, kwh=12.3456, park_min=10, after_min=15)
    cost = cost_of(TARIFF, usage)
    fields: dict = {
        "id": 7,
        "transaction_id": 42,
        "credit_of": None,
        "charger_id": "CP1",
        "site_id": "S1",
        "evse_id": None,
        "connector_id": 1,
        "id_token": "APP-1",
        "group_id": None,
        "authorization_reference": None,
        "started_at": T0,
        "stopped_at": T0 + timedelta(minutes=50),
        "ended_at": T0 + timedelta(minutes=65),
        "end_reason": "evse_free",
        "energy_wh": float(cost.energy_wh),
        "charging_time_s": float(cost.charging_time_s),
        "parking_time_s": float(cost.parking_time_s),
        "parking_after_s": float(cost.parking_after_s),
        "currency": "EUR",
        "tariff": TARIFF,
        "cost": cost,
        "signed_meter_values": (),
        "created_at": T0 + timedelta(minutes=65, seconds=2),
    }
    fields.update(kw)
    return Cdr(**fields)


OCMF = 'OCMF|{"FV":"1.0","GI":"AMP","RD":[{"TM":"2026-03-02T08:00:00,000+0000","RV":1.0}]}|{"SD":"3045"}'


def test_a_tariff_is_published_with_our_owner_and_last_updated_money_as_numbers() -> None:
    t = ocpi_tariff(TARIFF, country_code="NL", party_id="AMP", last_updated=T0 + timedelta(microseconds=5))
    doc = roundtrip(t, o.Tariff)
    assert (doc["country_code"], doc["party_id"], doc["id"], doc["currency"]) == ("NL", "AMP", "STD", "EUR")
    assert doc["last_updated"] == "2026-03-02T08:00:00Z"
    assert doc["min_price"] == {"excl_vat": 1.0, "incl_vat": 1.2}
    assert doc["tariff_alt_text"] == [{"language": "nl", "text": "Laden bij Amp"}]
    first, energy, _, timed = doc["elements"]
    assert first == {"price_components": [{"type": "FLAT", "price": 0.5, "step_size": 1, "vat": 20}]}
    assert energy["restrictions"] == {"start_time": "07:00", "end_time": "20:00"}
    assert energy["price_components"][0]["step_size"] == 100
    assert timed["restrictions"] == {"day_of_week": ["MONDAY", "TUESDAY"], "min_kwh": 0.5}
    assert [c["type"] for c in timed["price_components"]] == ["TIME", "PARKING_TIME"]
    plain = ocpi_tariff(
        tariff(element(comp("ENERGY", "0.2500"))), country_code="NL", party_id="AMP", last_updated=T0
    )
    assert roundtrip(plain, o.Tariff)["elements"] == [
        {"price_components": [{"type": "ENERGY", "price": 0.25, "step_size": 1}]}
    ]


def test_a_session_carries_the_token_its_authorization_the_place_and_the_engine_numbers() -> None:
    usage = session(T0, charge_min=30, kwh=7.5, ended=False)
    running = cost_of(TARIFF, usage, until=T0 + timedelta(minutes=30))
    place = Place(location_id="S1", evse_uid="CP1-1", connector_id="1")
    s = session_object(
        country_code="NL",
        party_id="AMP",
        tx=tx(),
        token=TOKEN,
        auth_method=AuthMethod.COMMAND,
        authorization_reference="REF-1",
        place=place,
        currency="EUR",
        status=o.SessionStatus.ACTIVE,
        energy_wh=running.energy_wh,
        total_cost=running.total_cost,
        periods=None,
        end_date_time=None,
        last_updated=T0 + timedelta(minutes=30, milliseconds=400),
    )
    doc = roundtrip(s, o.Session)
    assert doc["id"] == "42" and doc["status"] == "ACTIVE" and doc["auth_method"] == "COMMAND"
    assert doc["cdr_token"] == {
        "country_code": "NL",
        "party_id": "EMP",
        "uid": "APP-1",
        "type": "APP_USER",
        "contract_id": "NL-EMP-C12345678",
    }
    assert (doc["location_id"], doc["evse_uid"], doc["connector_id"]) == ("S1", "CP1-1", "1")
    assert doc["kwh"] == 7.5 and doc["authorization_reference"] == "REF-1"
    assert doc["total_cost"] == {
        "excl_vat": float(running.total_cost.excl_vat),
        "incl_vat": float(running.total_cost.incl_vat),  # type: ignore[arg-type]
    }
    assert doc["start_date_time"] == "2026-03-02T08:00:00Z" and doc["last_updated"] == "2026-03-02T08:30:00Z"
    assert "end_date_time" not in doc and "charging_periods" not in doc
    # No tariff: no price information at all (OCPI: an omitted total_cost is not "free").
    unpriced = msgspec.structs.replace(s, total_cost=None)
    assert "total_cost" not in roundtrip(unpriced, o.Session)


def test_volumes_have_four_decimals() -> None:
    assert kwh(12345.678) == Decimal("12.3457") and kwh(None) == Decimal("0.0000")
    assert hours(1800) == Decimal("0.5000") and hours(Decimal("100")) == Decimal("0.0278")


def test_a_cdr_maps_every_total_of_the_engine_and_the_location_as_at_the_start() -> None:
    c = billing_cdr(
        signed_meter_values=(
            SignedValue(
                at="2026-03-02T08:50:00.000Z",
                measurand="Energy.Active.Import.Register",
                phase="",
                context="Transaction.End",
                format="signedMeterValue",
                signed_data=base64.b64encode(OCMF.encode()).decode(),
                signing_method="ECDSA-secp256r1-SHA256",
                encoding_method="OCMF",
                public_key="MFkwEwYHKoZIzj0CAQ",
            ),
            SignedValue(
                at="2026-03-02T08:00:00.000Z",
                measurand="Energy.Active.Import.Register",
                phase="",
                context="Transaction.Begin",
                format="signedMeterValue",
                signed_data=base64.b64encode(OCMF.encode()).decode(),
                encoding_method="OCMF",
            ),
        )
    )
    assert c.cost is not None
    where = cdr_location(location(), evse(), "1")
    cdr = cdr_object(
        c,
        country_code="NL",
        party_id="AMP",
        token=TOKEN,
        auth_method=AuthMethod.WHITELIST,
        authorization_reference=None,
        location=where,
        currency="SEK",
        tariff_updated_at=T0 - timedelta(days=3),
    )
    doc = roundtrip(cdr, o.Cdr)
    cost = c.cost
    assert doc["id"] == "7" and doc["session_id"] == "42" and doc["currency"] == "EUR"
    assert doc["start_date_time"] == "2026-03-02T08:00:00Z" and doc["end_date_time"] == "2026-03-02T09:05:00Z"
    assert doc["last_updated"] == "2026-03-02T09:05:02Z"
    assert "authorization_reference" not in doc and doc["auth_method"] == "WHITELIST"

    def money(p: Price) -> dict:
        return {"excl_vat": float(p.excl_vat), "incl_vat": float(p.incl_vat)}  # type: ignore[arg-type]

    assert doc["total_cost"] == money(cost.total_cost)
    assert doc["total_energy_cost"] == money(cost.energy_cost)
    assert doc["total_time_cost"] == money(cost.time_cost)
    assert doc["total_parking_cost"] == money(cost.parking_cost)
    assert doc["total_fixed_cost"] == money(cost.flat_cost)
    assert "total_reservation_cost" not in doc
    assert doc["total_energy"] == 12.3456
    assert Decimal(str(doc["total_time"])) == hours(cost.charging_time_s + cost.parking_time_s)
    assert Decimal(str(doc["total_parking_time"])) == hours(cost.parking_time_s) == Decimal("0.4167")
    assert doc["tariffs"][0]["id"] == "STD" and doc["tariffs"][0]["last_updated"] == "2026-02-27T08:00:00Z"
    periods = doc["charging_periods"]
    assert len(periods) == len(cost.charging_periods) > 1
    assert periods[0]["start_date_time"] == "2026-03-02T08:00:00Z" and periods[0]["tariff_id"] == "STD"
    assert sum(
        Decimal(str(d["volume"])) for p in periods for d in p["dimensions"] if d["type"] == "ENERGY"
    ) == (Decimal("12.3456"))
    assert {d["type"] for p in periods for d in p["dimensions"]} >= {"ENERGY", "TIME", "PARKING_TIME"}
    loc = doc["cdr_location"]
    assert loc["address"] == "Stationsplein 1, behind the long building at"  # string(45) in a CdrLocation
    assert (loc["evse_uid"], loc["evse_id"], loc["connector_id"]) == ("CP1-1", "NL*AMP*ECP1*1", "1")
    assert (loc["connector_standard"], loc["connector_format"], loc["connector_power_type"]) == (
        "IEC_62196_T2",
        "SOCKET",
        "AC_3_PHASE",
    )
    signed = doc["signed_data"]
    assert signed["encoding_method"] == "OCMF" and signed["public_key"] == "MFkwEwYHKoZIzj0CAQ"
    assert [v["nature"] for v in signed["signed_values"]] == ["Start", "End"]
    assert signed["signed_values"][0]["plain_data"] == OCMF
    assert base64.b64decode(signed["signed_values"][0]["signed_data"]).decode() == OCMF


def test_a_credit_cdr_repeats_the_original_with_its_total_negated() -> None:
    where = cdr_location(location(), evse(), "1")
    original = cdr_object(
        billing_cdr(),
        country_code="NL",
        party_id="AMP",
        token=TOKEN,
        auth_method=AuthMethod.AUTH_REQUEST,
        authorization_reference="AUTH-9",
        location=where,
        currency="EUR",
    )
    credit = credit_object(original, credit_id=8, created_at=T0 + timedelta(days=1))
    doc = roundtrip(credit, o.Cdr)
    first = roundtrip(original, o.Cdr)
    assert doc["id"] == "8" and doc["credit"] is True and doc["credit_reference_id"] == "7"
    assert doc["total_cost"] == {k: -v for k, v in first["total_cost"].items()}
    assert doc["last_updated"] == "2026-03-03T08:00:00Z"
    same = {
        k: v
        for k, v in doc.items()
        if k not in ("id", "credit", "credit_reference_id", "total_cost", "last_updated")
    }
    assert same == {k: v for k, v in first.items() if k not in ("id", "total_cost", "last_updated")}
    assert "credit" not in first and first["authorization_reference"] == "AUTH-9"


def test_a_cdr_no_tariff_priced_is_free_of_charge_with_its_volumes() -> None:
    c = billing_cdr(
        tariff=None, cost=None, currency=None, energy_wh=3000.0, charging_time_s=1800.0, parking_time_s=900.0
    )
    cdr = cdr_object(
        c,
        country_code="NL",
        party_id="AMP",
        token=TOKEN,
        auth_method=AuthMethod.WHITELIST,
        authorization_reference=None,
        location=cdr_location(location(), evse(None), "1"),
        currency="SEK",
    )
    doc = roundtrip(cdr, o.Cdr)
    assert doc["currency"] == "SEK" and doc["total_cost"] == {"excl_vat": 0, "incl_vat": 0}
    assert "tariffs" not in doc and "total_energy_cost" not in doc
    assert doc["charging_periods"] == [
        {
            "start_date_time": "2026-03-02T08:00:00Z",
            "dimensions": [
                {"type": "ENERGY", "volume": 3.0},
                {"type": "TIME", "volume": 0.5},
                {"type": "PARKING_TIME", "volume": 0.25},
            ],
        }
    ]
    assert doc["total_time"] == 0.75 and doc["total_parking_time"] == 0.25
    # An EVSE without an eMI3 id names its uid (CdrLocation requires an evse_id).
    assert doc["cdr_location"]["evse_id"] == "CP1-1"


def test_1_6_signed_data_without_a_method_and_not_base64() -> None:
    raw = SignedValue(
        at="2026-03-02T08:00:00.000Z",
        measurand="Energy.Active.Import.Register",
        phase="",
        context="Sample.Periodic",
        format="SignedData",
        signed_data=OCMF,
    )
    other = msgspec.structs.replace(raw, signed_data="ABCDEF==", at="2026-03-02T08:01:00.000Z")
    found = signed_data([raw, other])
    assert found is not None and found.encoding_method == "OCMF"
    assert [(v.nature, v.plain_data) for v in found.signed_values] == [("Intermediate", OCMF)]
    assert base64.b64decode(found.signed_values[0].signed_data).decode() == OCMF
    assert signed_data([]) is None


@pytest.mark.parametrize(
    ("missing", "field"), [("cdr_location", "cdr_location"), ("total_cost", "total_cost")]
)
def test_a_cdr_missing_a_required_field_names_it(missing: str, field: str) -> None:
    cdr = cdr_object(
        billing_cdr(),
        country_code="NL",
        party_id="AMP",
        token=TOKEN,
        auth_method=AuthMethod.WHITELIST,
        authorization_reference=None,
        location=cdr_location(location(), evse(), "1"),
        currency="EUR",
    )
    doc = msgspec.json.decode(wire(cdr))
    del doc[missing]
    with pytest.raises(MalformedObject) as e:
        decode(msgspec.json.encode(doc), o.Cdr)
    assert e.value.field == field


class Book:
    def __init__(self, published: bool) -> None:
        self.published = published

    def published_evses(self, charger_id: str) -> list[tuple[str, Evse]] | None:
        return [("S1", evse())] if charger_id == "CP1" else None

    def location(self, location_id: str) -> Location | None:
        return location() if self.published else None


def test_where_a_transaction_is() -> None:
    found = place_of(tx(), Book(published=True))
    assert found is not None and (found.location_id, found.evse_uid, found.connector_id) == (
        "S1",
        "CP1-1",
        "1",
    )
    assert found.cdr_location is not None and found.cdr_location.evse_id == "NL*AMP*ECP1*1"
    # 2.0.1: the EVSE number names the EVSE, the connector id its connector.
    two = place_of(tx(protocol=OCPP201, evse_id=1, connector_id=None), Book(published=True))
    assert two is not None and (two.evse_uid, two.connector_id) == ("CP1-1", "1")
    # An unpublished site still names the place; there is no CdrLocation then.
    bare = place_of(tx(), Book(published=False))
    assert bare is not None and bare.cdr_location is None
    assert place_of(tx(charger_id="NOWHERE"), Book(published=True)) is None
