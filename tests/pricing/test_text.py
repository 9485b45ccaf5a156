"""The tariff line for a charger's display."""

from __future__ import annotations

from ampgate.pricing import DisplayText, summary
from tests.pricing.builders import comp, element, tariff


def test_generated_line_shows_the_unit_prices() -> None:
    t = tariff(element(comp("ENERGY", "0.35"), comp("PARKING_TIME", "2.00")))
    assert summary(t) == "0.35 EUR/kWh + 2.00 EUR/h parking"


def test_prices_incl_vat_by_default_with_up_to_four_decimals() -> None:
    t = tariff(element(comp("FLAT", "0.50", vat=19), comp("ENERGY", "0.25", vat=19)))
    assert summary(t) == "0.60 EUR start + 0.2975 EUR/kWh"  # the fee 0.595 is an amount: 0.60
    assert summary(t, incl_vat=False) == "0.50 EUR start + 0.25 EUR/kWh"


def test_a_price_that_varies_shows_its_range_and_reservations_are_left_out() -> None:
    t = tariff(
        element(comp("ENERGY", "0.20"), max_power=16),
        element(comp("ENERGY", "0.50")),
        element(comp("TIME", "9.00"), reservation="RESERVATION"),
        max_price=("30.00", None),
    )
    assert summary(t) == "0.20–0.50 EUR/kWh (max 30.00 EUR)"


def test_zero_decimal_currency_and_free() -> None:
    assert summary(tariff(element(comp("ENERGY", "35")), currency="JPY")) == "35 JPY/kWh"
    assert summary(tariff(element(comp("FLAT", "0")))) == "Free"
    assert summary(tariff(element(comp("FLAT", "0"))), language="de") == "Kostenlos"


def test_alt_text_in_the_language_follows_the_prices() -> None:
    t = tariff(
        element(comp("TIME", "1.90", step=300, vat="5.2")),
        tariff_alt_text=(
            DisplayText(language="en", text="Billed per 5 minutes."),
            DisplayText(language="nl", text="Per 5 minuten."),
        ),
    )
    assert summary(t, language="nl") == "1.9988 EUR/h. Per 5 minuten."
    assert summary(t, language="fr") == "1.9988 EUR/h"


def test_cut_to_the_display_length() -> None:
    t = tariff(element(comp("ENERGY", "0.35")), tariff_alt_text=(DisplayText(language="en", text="x" * 600),))
    line = summary(t, language="en")
    assert len(line) == 512 and line.endswith("…")
    assert summary(t, max_length=10) == "0.35 EUR/…"
