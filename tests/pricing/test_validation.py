"""Every rule `validate` enforces, with the field it names; a generated valid tariff with one defect put into
it is refused naming exactly that field; and tariffs decode from JSON with Decimal prices from numbers."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ampgate.errors import ValidationError
from ampgate.pricing import (
    Price,
    PriceComponent,
    Tariff,
    TariffElement,
    TariffRestrictions,
    problems,
    validate,
)
from tests.pricing.builders import comp, element, tariff
from tests.pricing.strategies import tariffs

ENERGY = comp("ENERGY", "0.25", vat=19)


def with_restrictions(**kw: Any) -> Tariff:
    return tariff(element(ENERGY), element(comp("TIME", "1.00"), **kw))


CASES: list[tuple[str, Callable[[], Tariff], str]] = [
    ("unknown currency", lambda: tariff(element(ENERGY), currency="EUX"), "currency"),
    ("no elements", lambda: Tariff(id="T", currency="EUR", elements=()), "elements"),
    (
        "element without components",
        lambda: tariff(element(ENERGY), TariffElement(price_components=())),
        "elements[1].price_components",
    ),
    (
        "negative price",
        lambda: tariff(element(comp("ENERGY", "-0.01"))),
        "elements[0].price_components[0].price",
    ),
    (
        "five decimals",
        lambda: tariff(element(comp("TIME", "0.12345"))),
        "elements[0].price_components[0].price",
    ),
    (
        "step below 1",
        lambda: tariff(element(comp("ENERGY", "0.25", step=0))),
        "elements[0].price_components[0].step_size",
    ),
    (
        "vat over 100",
        lambda: tariff(element(comp("ENERGY", "0.25", vat=101))),
        "elements[0].price_components[0].vat",
    ),
    (
        "two ENERGY in one element",
        lambda: tariff(element(ENERGY, comp("ENERGY", "0.30"))),
        "elements[0].price_components[1].type",
    ),
    (
        "PARKING_TIME in a reservation element",
        lambda: tariff(element(comp("PARKING_TIME", "1.00"), reservation="RESERVATION")),
        "elements[0].price_components[0].type",
    ),
    (
        "min_kwh above max_kwh",
        lambda: with_restrictions(min_kwh=20, max_kwh=10),
        "elements[1].restrictions.min_kwh",
    ),
    (
        "min_kwh equal to max_kwh",
        lambda: with_restrictions(min_kwh=10, max_kwh=10),
        "elements[1].restrictions.min_kwh",
    ),
    (
        "min_power above max_power",
        lambda: with_restrictions(min_power=22, max_power=11),
        "elements[1].restrictions.min_power",
    ),
    (
        "min_current above max_current",
        lambda: with_restrictions(min_current=32, max_current=16),
        "elements[1].restrictions.min_current",
    ),
    (
        "min_duration above max_duration",
        lambda: with_restrictions(min_duration=7200, max_duration=3600),
        "elements[1].restrictions.min_duration",
    ),
    ("negative min_kwh", lambda: with_restrictions(min_kwh=-1), "elements[1].restrictions.min_kwh"),
    (
        "empty time window",
        lambda: with_restrictions(start_time="10:00", end_time="10:00"),
        "elements[1].restrictions.start_time",
    ),
    ("bad time", lambda: with_restrictions(start_time="24:00"), "elements[1].restrictions.start_time"),
    (
        "start_date after end_date",
        lambda: with_restrictions(start_date="2025-02-01", end_date="2025-01-01"),
        "elements[1].restrictions.start_date",
    ),
    (
        "empty date range",
        lambda: with_restrictions(start_date="2025-01-01", end_date="2025-01-01"),
        "elements[1].restrictions.start_date",
    ),
    (
        "impossible date",
        lambda: with_restrictions(end_date="2025-02-30"),
        "elements[1].restrictions.end_date",
    ),
    (
        "max_price below min_price",
        lambda: tariff(element(ENERGY), min_price=("5.00", "5.95"), max_price=("4.00", "4.76")),
        "max_price.excl_vat",
    ),
    (
        "min_price incl below excl",
        lambda: tariff(element(ENERGY), min_price=("5.00", "4.00")),
        "min_price.incl_vat",
    ),
    (
        "min_price without incl when taxed",
        lambda: tariff(element(ENERGY), min_price=("5.00", None)),
        "min_price.incl_vat",
    ),
    (
        "min_price with five decimals",
        lambda: tariff(element(ENERGY), min_price=("0.00001", "0.00001")),
        "min_price.excl_vat",
    ),
    (
        "end before start",
        lambda: tariff(element(ENERGY), start_date_time=_at("2025-02-01"), end_date_time=_at("2025-01-01")),
        "end_date_time",
    ),
]


def _at(day: str) -> Any:
    from datetime import UTC, datetime

    return datetime.fromisoformat(day).replace(tzinfo=UTC)


@pytest.mark.parametrize(("what", "build", "field"), CASES, ids=[c[0] for c in CASES])
def test_refused_naming_the_field(what: str, build: Callable[[], Tariff], field: str) -> None:
    t = build()
    with pytest.raises(ValidationError) as e:
        validate(t)
    assert e.value.field == field
    assert e.value.code == "invalid_field" and e.value.status_hint == 422


def test_every_problem_is_listed() -> None:
    t = tariff(element(comp("ENERGY", "-1", step=0)), currency="XXX")
    assert [p.field for p in problems(t)] == [
        "currency",
        "elements[0].price_components[0].price",
        "elements[0].price_components[0].step_size",
    ]


def test_legal_overlaps_and_wraps_pass() -> None:
    t = tariff(
        element(comp("ENERGY", "0.20"), start_time="22:00", end_time="06:00"),
        element(comp("ENERGY", "0.30"), start_time="20:00", end_time="00:00"),
        element(comp("ENERGY", "0.2975", vat="7.7"), min_kwh=0),
        min_price=("0.50", "0.54"),
    )
    validate(t)


def test_decodes_from_ocpi_json_with_numbers() -> None:
    body = (
        b'{"id": "12", "currency": "EUR", "country_code": "DE", "party_id": "ALL", "last_updated": "2015-06-29T20:39:09Z",'
        b' "elements": [{"price_components": [{"type": "TIME", "price": 1.90, "vat": 5.2, "step_size": 300}],'
        b' "restrictions": {"max_current": 32.00, "day_of_week": ["MONDAY"]}}],'
        b' "min_price": {"excl_vat": 0.50, "incl_vat": 0.55}}'
    )
    t = msgspec.json.decode(body, type=Tariff)
    validate(t)
    assert t.elements[0].price_components[0] == PriceComponent(
        type="TIME", price=Decimal("1.90"), step_size=300, vat=Decimal("5.2")
    )
    assert t.elements[0].restrictions == TariffRestrictions(
        max_current=Decimal("32.00"), day_of_week=("MONDAY",)
    )
    assert t.min_price == Price(excl_vat=Decimal("0.50"), incl_vat=Decimal("0.55"))
    wire = msgspec.json.Encoder(decimal_format="number").encode(t)
    assert b'"price":1.90' in wire


DEFECTS: list[tuple[str, Callable[[PriceComponent], PriceComponent]]] = [
    ("price", lambda c: msgspec.structs.replace(c, price=Decimal("-1"))),
    ("price", lambda c: msgspec.structs.replace(c, price=Decimal("1.00001"))),
    ("step_size", lambda c: msgspec.structs.replace(c, step_size=0)),
]


@settings(max_examples=100, deadline=None)
@given(tariffs(), st.data())
def test_one_defect_is_refused_naming_it(t: Tariff, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(t.elements) - 1))
    el = t.elements[i]
    j = data.draw(st.integers(0, len(el.price_components) - 1))
    name, defect = data.draw(st.sampled_from(DEFECTS))
    comps = list(el.price_components)
    comps[j] = defect(comps[j])
    elements = list(t.elements)
    elements[i] = msgspec.structs.replace(el, price_components=tuple(comps))
    broken = msgspec.structs.replace(t, elements=tuple(elements))
    with pytest.raises(ValidationError) as e:
        validate(broken)
    assert e.value.field == f"elements[{i}].price_components[{j}].{name}"
