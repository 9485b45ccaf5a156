"""What makes a tariff acceptable: every rule, each naming the field at fault by its path in the tariff's JSON
("elements[0].restrictions.min_kwh").

`problems(tariff)` lists all of them (in field order); `validate(tariff)` raises `ValidationError` for the
first, with that path as its `field`, so the API answers 422 naming it. A tariff that passes can be priced:
the engine relies on these rules (prices have at most 4 decimals, steps are at least 1, ranges are not empty)
and compiles only tariffs that pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import msgspec

from ampgate.errors import ValidationError
from ampgate.pricing.model import CURRENCY_DECIMALS, Price, PriceComponent, Tariff, TariffRestrictions

__all__ = ["MAX_PRICE_DECIMALS", "MAX_TEXT", "Problem", "problems", "validate"]

# Unit prices carry up to 4 decimals (the rule: 0.2975 EUR/kWh is a real price, a fifth decimal is
# not); VAT percentages and min/max prices the same, so that every amount is an integer number of 1/10,000.
MAX_PRICE_DECIMALS = 4
# OCPI DisplayText: at most 512 characters (also OCPP's personalMessage content limit).
MAX_TEXT = 512
# A tariff with more elements is a mistake or an attack: OCPI tariffs in the wild have a handful; every
# element is looked at for each dimension of each period.
MAX_ELEMENTS = 100
MAX_COMPONENTS = 8
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_LANG = re.compile(r"[a-z]{2}")
# A reservation element prices the reservation's duration and a fee, nothing else (OCPI TariffRestrictions).
_RESERVATION_TYPES = frozenset({"FLAT", "TIME"})


class Problem(msgspec.Struct, frozen=True):
    """One broken rule: the field's path and a message for a human."""

    field: str
    message: str


def validate(tariff: Tariff) -> None:
    """Raise `ValidationError` (code `invalid_field`, `field` the path) for the tariff's first problem."""
    for p in problems(tariff):
        raise ValidationError(p.message, field=p.field)


def problems(tariff: Tariff) -> list[Problem]:
    """Every rule the tariff breaks, in the order of its fields; empty when it can be priced. Never raises."""
    return list(_tariff(tariff))


def _tariff(t: Tariff) -> Iterator[Problem]:
    if not t.id or len(t.id) > 36:
        yield Problem("id", "id must be 1 to 36 characters")
    if t.currency not in CURRENCY_DECIMALS:
        yield Problem("currency", f"unknown currency {t.currency!r} (ISO 4217 code expected)")
    if not t.elements:
        yield Problem("elements", "a tariff needs at least one element")
    elif len(t.elements) > MAX_ELEMENTS:
        yield Problem("elements", f"at most {MAX_ELEMENTS} elements")
    for i, element in enumerate(t.elements):
        at = f"elements[{i}]"
        r = element.restrictions
        if not element.price_components:
            yield Problem(f"{at}.price_components", "an element needs at least one price component")
        elif len(element.price_components) > MAX_COMPONENTS:
            yield Problem(f"{at}.price_components", f"at most {MAX_COMPONENTS} price components")
        seen: set[str] = set()
        for j, c in enumerate(element.price_components):
            where = f"{at}.price_components[{j}]"
            yield from _component(c, where)
            if c.type in seen:
                yield Problem(
                    f"{where}.type", f"a second {c.type} component in one element would never be used"
                )
            seen.add(c.type)
            if r is not None and r.reservation is not None and c.type not in _RESERVATION_TYPES:
                yield Problem(f"{where}.type", "a reservation element prices only FLAT and TIME")
        if r is not None:
            yield from _restrictions(r, f"{at}.restrictions")
    yield from _price(t.min_price, "min_price")
    yield from _price(t.max_price, "max_price")
    taxed = any(c.vat for e in t.elements for c in e.price_components if c.vat is not None and _finite(c.vat))
    for name, bound in (("min_price", t.min_price), ("max_price", t.max_price)):
        if bound is not None and bound.incl_vat is None and taxed:
            # The engine bounds the total incl VAT by this figure; with VAT in the components there is no
            # right guess for it (the VAT share of a total depends on what was used).
            yield Problem(f"{name}.incl_vat", f"{name}.incl_vat is required when price components carry VAT")
    if t.min_price is not None and t.max_price is not None:
        lo, hi = t.min_price, t.max_price
        if _finite(lo.excl_vat) and _finite(hi.excl_vat) and hi.excl_vat < lo.excl_vat:
            yield Problem("max_price.excl_vat", "max_price is below min_price")
        elif (
            lo.incl_vat is not None
            and hi.incl_vat is not None
            and _finite(lo.incl_vat)
            and _finite(hi.incl_vat)
            and hi.incl_vat < lo.incl_vat
        ):
            yield Problem("max_price.incl_vat", "max_price is below min_price")
    for i, text in enumerate(t.tariff_alt_text):
        if not _LANG.fullmatch(text.language):
            yield Problem(f"tariff_alt_text[{i}].language", "an ISO 639-1 code (two lower-case letters)")
        if len(text.text) > MAX_TEXT:
            yield Problem(f"tariff_alt_text[{i}].text", f"at most {MAX_TEXT} characters")
    if t.start_date_time is not None and t.end_date_time is not None and t.end_date_time <= t.start_date_time:
        yield Problem("end_date_time", "end_date_time must be after start_date_time")


def _finite(d: Decimal) -> bool:
    return isinstance(d, Decimal) and d.is_finite()


def _amount(d: Decimal, field: str, what: str) -> Iterator[Problem]:
    if not _finite(d):
        yield Problem(field, f"{what} must be a number")
    elif d < 0:
        yield Problem(field, f"{what} must not be negative")
    elif d != d.quantize(Decimal(1).scaleb(-MAX_PRICE_DECIMALS)):
        yield Problem(field, f"{what} has more than {MAX_PRICE_DECIMALS} decimals")


def _component(c: PriceComponent, at: str) -> Iterator[Problem]:
    yield from _amount(c.price, f"{at}.price", "price")
    if c.step_size < 1:
        yield Problem(f"{at}.step_size", "step_size must be at least 1")
    if c.vat is not None:
        yield from _amount(c.vat, f"{at}.vat", "vat")
        if _finite(c.vat) and c.vat > 100:
            yield Problem(f"{at}.vat", "vat is a percentage, at most 100")


def _price(p: Price | None, at: str) -> Iterator[Problem]:
    if p is None:
        return
    yield from _amount(p.excl_vat, f"{at}.excl_vat", at)
    if p.incl_vat is not None:
        yield from _amount(p.incl_vat, f"{at}.incl_vat", at)
        if _finite(p.incl_vat) and _finite(p.excl_vat) and p.incl_vat < p.excl_vat:
            yield Problem(f"{at}.incl_vat", f"{at}.incl_vat is below its excl_vat")


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _restrictions(r: TariffRestrictions, at: str) -> Iterator[Problem]:
    for name in ("start_time", "end_time"):
        value = getattr(r, name)
        if value is not None and not _HHMM.fullmatch(value):
            yield Problem(f"{at}.{name}", f"{name} must be HH:MM (00:00 to 23:59)")
    if r.start_time is not None and r.start_time == r.end_time and _HHMM.fullmatch(r.start_time):
        yield Problem(f"{at}.start_time", "start_time equals end_time: the window is empty")
    days: dict[str, date | None] = {}
    for name in ("start_date", "end_date"):
        value = getattr(r, name)
        if value is not None:
            days[name] = d = _day(value)
            if d is None or len(value) != 10:
                yield Problem(f"{at}.{name}", f"{name} must be a date YYYY-MM-DD")
    lo, hi = days.get("start_date"), days.get("end_date")
    if lo is not None and hi is not None and lo >= hi:
        yield Problem(f"{at}.start_date", "start_date must be before end_date (which is exclusive)")
    for low, high in (
        ("min_kwh", "max_kwh"),
        ("min_current", "max_current"),
        ("min_power", "max_power"),
        ("min_duration", "max_duration"),
    ):
        a, b = getattr(r, low), getattr(r, high)
        bad = False
        for name, v in ((low, a), (high, b)):
            if v is None:
                continue
            if isinstance(v, Decimal) and not v.is_finite():
                bad = True
                yield Problem(f"{at}.{name}", f"{name} must be a number")
            elif v < 0:
                bad = True
                yield Problem(f"{at}.{name}", f"{name} must not be negative")
        if not bad and a is not None and b is not None and a >= b:
            # max is exclusive, so min == max matches nothing either.
            yield Problem(f"{at}.{low}", f"{low} must be below {high}: no value matches both")
