"""Which cost display a charger gets: from its device model (2.0.1 TariffCostCtrlr.Enabled, 1.6
CustomDisplayCostAndPrice), overridden by an admin where the override fits its protocol; and `Modes`, which
answers that on every message from memory and re-reads the device model only after its TTL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio

from ampgate.bus import EventBus
from ampgate.costdisplay import mode
from ampgate.costdisplay.resolver import DEVICE_MODEL_TTL, Modes
from ampgate.errors import NotFoundError, ValidationError
from ampgate.events import CostDisplayChanged
from ampgate.ocpp.envelope import OCPP16, OCPP201

from ..ocpp.fakes import FixedClock
from .fakes import Chargers, Monotonic, Rows, Variables

V201 = OCPP201
V16 = OCPP16


def reader(values: dict[tuple[str, str, str], str]):
    def read(component: str, variable: str, instance: str) -> str | None:
        return values.get((component, variable, instance))

    return read


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "none"),
        ({("TariffCostCtrlr", "Enabled", "Tariff"): "true"}, "ocpp201"),
        ({("TariffCostCtrlr", "Enabled", "Cost"): " TRUE "}, "ocpp201"),
        (
            {("TariffCostCtrlr", "Enabled", "Tariff"): "false", ("TariffCostCtrlr", "Enabled", "Cost"): "0"},
            "none",
        ),
        # Available says the charger could; only Enabled says it shows.
        ({("TariffCostCtrlr", "Available", "Tariff"): "true"}, "none"),
        # The 1.6 key means nothing to a 2.0.1 charger.
        ({("", "CustomDisplayCostAndPrice", ""): "true"}, "none"),
    ],
)
def test_a_2_0_1_charger_shows_cost_when_its_tariff_cost_controller_is_enabled(
    values: dict[tuple[str, str, str], str], expected: str
) -> None:
    assert mode.from_device_model(V201, reader(values)) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "none"),
        ({("", "CustomDisplayCostAndPrice", ""): "true"}, "california"),
        ({("", "CustomDisplayCostAndPrice", ""): "True"}, "california"),
        ({("", "CustomDisplayCostAndPrice", ""): "false"}, "none"),
        ({("TariffCostCtrlr", "Enabled", "Tariff"): "true"}, "none"),
    ],
)
def test_a_1_6_charger_shows_cost_when_it_has_custom_display_cost_and_price(
    values: dict[tuple[str, str, str], str], expected: str
) -> None:
    assert mode.from_device_model(V16, reader(values)) == expected


def test_a_charger_that_never_connected_shows_nothing_by_default() -> None:
    assert mode.from_device_model(None, reader({("TariffCostCtrlr", "Enabled", "Tariff"): "true"})) == "none"


def test_the_default_language_is_the_device_models() -> None:
    assert mode.default_language(V201, reader({("DisplayMessageCtrlr", "Language", ""): "de-CH"})) == "de-CH"
    assert mode.default_language(V16, reader({("", "Language", ""): " fr "})) == "fr"
    assert mode.default_language(V16, reader({("", "Language", ""): ""})) is None
    assert mode.default_language(None, reader({})) is None


def test_an_override_applies_where_it_fits_the_protocol() -> None:
    assert mode.resolve(V201, "none", "ocpp201") == ("none", "override")
    assert mode.resolve(V201, None, "ocpp201") == ("ocpp201", "device_model")
    assert mode.resolve(V16, "california", "none") == ("california", "override")
    # Set while the charger spoke the other version: ignored until it fits again.
    assert mode.resolve(V16, "ocpp201", "california") == ("california", "device_model")
    assert mode.resolve(V201, "california", "none") == ("none", "device_model")
    # Not connected yet: anything fits.
    assert mode.resolve(None, "ocpp201", "none") == ("ocpp201", "override")


def test_misfit_says_why_a_mode_cannot_be_set() -> None:
    assert mode.misfit(V201, "ocpp201") is None and mode.misfit(V16, "california") is None
    assert mode.misfit(V16, "none") is None and mode.misfit(None, "ocpp201") is None
    assert "1.6" in (mode.misfit(V16, "ocpp201") or "")
    assert "2.0.1" in (mode.misfit(V201, "california") or "")


# -- Modes ---------------------------------------------------------------------------------------------------------


def modes(**protocols: str | None) -> tuple[Modes, Variables, Rows, Monotonic, EventBus]:
    variables, rows, clock, bus = Variables(), Rows(), Monotonic(), EventBus()
    m = Modes(rows, Chargers(**protocols), variables, bus, clock)  # type: ignore[arg-type]
    m.load()
    return m, variables, rows, clock, bus


def test_modes_reads_the_device_model_once_per_ttl() -> None:
    m, variables, _, clock, _ = modes(A="ocpp2.0.1")
    assert m.current("A", V201) == ("none", None)
    reads = variables.reads
    variables.values[("A", "TariffCostCtrlr", "Enabled", "Tariff")] = "true"
    variables.values[("A", "DisplayMessageCtrlr", "Language", "")] = "nl"
    clock.mono = DEVICE_MODEL_TTL - 1
    assert m.current("A", V201) == ("none", None)  # still what was read
    assert variables.reads == reads
    clock.mono = DEVICE_MODEL_TTL
    assert m.current("A", V201) == ("ocpp201", "nl")
    # A charger that reconnects speaking the other version is read again at once.
    assert m.current("A", V16) == ("none", None)


def test_set_overrides_at_once_clears_and_publishes() -> None:
    async def main() -> None:
        m, variables, rows, _, bus = modes(A="ocpp2.0.1", B="ocpp1.6", NEW=None)
        events = bus.subscribe()
        variables.values[("A", "TariffCostCtrlr", "Enabled", "Cost")] = "true"
        assert m.current("A", V201)[0] == "ocpp201"
        view = await m.set("A", "none")
        assert (view.mode, view.source, view.override, view.device_model_mode) == (
            "none",
            "override",
            "none",
            "ocpp201",
        )
        assert view.updated_at == datetime(2026, 11, 30, 8, tzinfo=UTC)
        assert m.current("A", V201)[0] == "none"  # no wait for the TTL
        assert rows.rows["A"].mode == "none"
        ev = events.receive_nowait()
        assert isinstance(ev, CostDisplayChanged) and (ev.charger_id, ev.mode, ev.override) == (
            "A",
            "none",
            "none",
        )

        view = await m.set("A", None)
        assert (view.mode, view.source, view.override, view.updated_at) == (
            "ocpp201",
            "device_model",
            None,
            None,
        )
        assert "A" not in rows.rows

        with pytest.raises(ValidationError) as e:
            await m.set("B", "ocpp201")
        assert (e.value.field, e.value.code) == ("mode", "unsupported_mode")
        with pytest.raises(ValidationError):
            await m.set("A", "california")
        with pytest.raises(NotFoundError) as nf:
            await m.set("NOBODY", "none")
        assert nf.value.field == "id"
        # A charger that never connected takes any mode; it applies once its protocol fits.
        assert (await m.set("NEW", "ocpp201")).mode == "ocpp201"
        assert m.current("NEW", V16)[0] == "none"

        # Overrides survive a restart: a new Modes loads them.
        again = Modes(rows, Chargers(B="ocpp1.6"), variables, bus, FixedClock())  # type: ignore[arg-type]
        await m.set("B", "california")
        again.load()
        assert again.current("B", V16)[0] == "california"

    trio.run(main)
