"""A tariff in one line for a charger's display: "0.35 EUR/kWh + 2.00 EUR/h parking".

Generated from the elements (the prices are always shown), followed by the tariff's own `tariff_alt_text` in
the driver's language when it has one. OCPI says that when a tariff has both, the alternative text carries only
what the elements do not say, so showing it alone could leave the prices out. Unit prices are shown incl VAT
by default (what a driver pays, as consumer price rules ask), with the currency's decimals and up to 4 when
the price has them. A dimension priced differently by restrictions shows its range ("0.20–0.50 EUR/kWh").
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from ampgate.pricing.model import CURRENCY_DECIMALS, Price, PriceComponent, Tariff

__all__ = ["MAX_MESSAGE", "summary"]

# OCPP 2.0.1 MessageContentType.content (personalMessage) is at most 512 characters.
MAX_MESSAGE = 512
_ORDER = ("FLAT", "ENERGY", "TIME", "PARKING_TIME")
# The few words the line has, in the languages chargers in our markets display most; others get English.
_WORDS = {
    "en": {"FLAT": "start", "PARKING_TIME": "parking", "min": "min", "max": "max", "free": "Free"},
    "de": {"FLAT": "Start", "PARKING_TIME": "Parken", "min": "min.", "max": "max.", "free": "Kostenlos"},
    "fr": {"FLAT": "départ", "PARKING_TIME": "stationnement", "min": "min", "max": "max", "free": "Gratuit"},
    "nl": {"FLAT": "start", "PARKING_TIME": "parkeren", "min": "min.", "max": "max.", "free": "Gratis"},
}
_UNIT = {"FLAT": "", "ENERGY": "/kWh", "TIME": "/h", "PARKING_TIME": "/h"}


def summary(
    tariff: Tariff, *, language: str | None = None, max_length: int = MAX_MESSAGE, incl_vat: bool = True
) -> str:
    """One line describing `tariff`, at most `max_length` characters (cut with "…"). `language` (ISO 639-1)
    picks the words and the alternative text; `incl_vat` False shows prices without VAT. Never raises for a
    validated tariff."""
    words = _WORDS.get((language or "en").lower(), _WORDS["en"])
    cur = tariff.currency
    dec = CURRENCY_DECIMALS.get(cur, 2)
    parts: list[str] = []
    for dim in _ORDER:
        prices = sorted(
            {
                _unit(c, incl_vat)
                for e in tariff.elements
                if e.restrictions is None or e.restrictions.reservation is None
                for c in e.price_components
                if c.type == dim
            }
        )
        paid = [p for p in prices if p > 0]
        if not paid:
            continue
        lo, hi = prices[0], prices[-1]
        # A fee is an amount paid, shown as one (2.88); unit prices keep up to 4 decimals (0.2975/kWh).
        places = dec if dim == "FLAT" else 4
        amount = _fmt(lo, dec, places) if lo == hi else f"{_fmt(lo, dec, places)}–{_fmt(hi, dec, places)}"
        text = f"{amount} {cur}{_UNIT[dim]}"
        if dim in ("FLAT", "PARKING_TIME"):
            text += f" {words[dim]}"
        parts.append(text)
    line = " + ".join(parts) if parts else words["free"]
    bounds = [
        f"{words[name]} {_fmt(_bound(p, incl_vat), dec, dec)} {cur}"
        for name, p in (("min", tariff.min_price), ("max", tariff.max_price))
        if p is not None
    ]
    if bounds and parts:
        line += f" ({', '.join(bounds)})"
    if language is not None:
        alt = next((t.text for t in tariff.tariff_alt_text if t.language == language.lower()), None)
        if alt:
            line += f". {alt.strip()}"
    if len(line) > max_length:
        line = line[: max(max_length - 1, 0)].rstrip() + "…"
    return line[:max_length]


def _unit(c: PriceComponent, incl_vat: bool) -> Decimal:
    if incl_vat and c.vat is not None:
        return c.price * (1 + c.vat / 100)
    return c.price


def _bound(p: Price, incl_vat: bool) -> Decimal:
    return p.incl_vat if incl_vat and p.incl_vat is not None else p.excl_vat


def _fmt(d: Decimal, dec: int, places: int) -> str:
    """At least the currency's decimals, up to `places` when the value has them: 0.35, 0.2975, 12 (JPY)."""
    exact = d.quantize(Decimal(1).scaleb(-max(places, dec)), ROUND_HALF_UP)
    minimal = exact.quantize(Decimal(1).scaleb(-dec))
    return f"{minimal if minimal == exact else exact.normalize():f}"
