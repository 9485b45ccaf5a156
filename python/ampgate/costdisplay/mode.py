"""Which cost display a charger gets, as pure functions: from its device model, or an admin's override.

- `ocpp201`: OCPP 2.0.1 tariff and cost (functional block I): the tariff text in `personalMessage`, the running
  cost by `CostUpdated`, `totalCost` when the transaction ends. Only for 2.0.1 chargers.
- `california`: the OCA "OCPP & California Pricing Requirements" customization for OCPP 1.6: DataTransfer
  vendorId `org.openchargealliance.costmsg`, messageIds SetUserPrice, RunningCost, FinalCost. Only for 1.6.
- `none`: nothing is shown.

What the device model says (as the node last read it): a 2.0.1 charger whose `TariffCostCtrlr.Enabled` is true
for instance `Tariff` or `Cost` gets `ocpp201`; a 1.6 charger whose configuration key
`CustomDisplayCostAndPrice` is true gets `california`; anything else (unknown included) `none`. An override
that does not fit the protocol the charger speaks (it was set before the charger changed protocol) is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from ampgate.ocpp.envelope import OCPP16, OCPP201

Mode = Literal["ocpp201", "california", "none"]
MODES: tuple[Mode, ...] = get_args(Mode)
Source = Literal["override", "device_model"]

# 2.0.1 appendix 3 (TariffCostCtrlr): Enabled[Tariff] shows tariff texts, Enabled[Cost] shows costs.
TARIFF_COST_CTRLR = "TariffCostCtrlr"
ENABLED = "Enabled"
TARIFF = "Tariff"
COST = "Cost"
# 2.0.1 DisplayMessageCtrlr.Language: the station's default language (RFC 5646).
DISPLAY_MESSAGE_CTRLR = "DisplayMessageCtrlr"
LANGUAGE = "Language"
# 1.6 California Pricing configuration keys: the charger supports (and shows) cost messages; its default
# user-interface language.
CUSTOM_DISPLAY_COST_AND_PRICE = "CustomDisplayCostAndPrice"
LANGUAGE_16 = "Language"
# A 1.6 configuration key is stored as a variable of no component.
CONFIGURATION = ""

# The protocol each mode is defined for (`none` fits any).
_PROTOCOL: dict[Mode, str | None] = {"ocpp201": OCPP201, "california": OCPP16, "none": None}

Read = Callable[[str, str, str], str | None]
"""`read(component, variable, instance)`: a charger-level Actual value of the device model, or None."""


def is_true(text: str | None) -> bool:
    """OCPP booleans are the strings "true" / "false" (1.6 configuration values and 2.0.1 variables alike);
    chargers differ in case and spacing."""
    return text is not None and text.strip().lower() == "true"


def fits(protocol: str | None, mode: Mode) -> bool:
    """Whether `mode` can be used with a charger speaking `protocol` (None: not known yet, anything fits)."""
    wanted = _PROTOCOL[mode]
    return wanted is None or protocol is None or protocol == wanted


def misfit(protocol: str | None, mode: Mode) -> str | None:
    """Why `mode` cannot be set for a charger speaking `protocol`, or None when it can."""
    if fits(protocol, mode):
        return None
    if mode == "ocpp201":
        return "mode ocpp201 is OCPP 2.0.1 tariff and cost; this charger speaks OCPP 1.6 (use california)"
    return "mode california is the OCPP 1.6 DataTransfer customization; this charger speaks OCPP 2.0.1 (use ocpp201)"


def from_device_model(protocol: str | None, read: Read) -> Mode:
    """The mode the charger's device model asks for (see the module docstring). Never raises."""
    if protocol == OCPP201:
        if any(is_true(read(TARIFF_COST_CTRLR, ENABLED, instance)) for instance in (TARIFF, COST)):
            return "ocpp201"
    elif protocol == OCPP16 and is_true(read(CONFIGURATION, CUSTOM_DISPLAY_COST_AND_PRICE, "")):
        return "california"
    return "none"


def default_language(protocol: str | None, read: Read) -> str | None:
    """The charger's default display language, as its device model says (2.0.1 DisplayMessageCtrlr.Language,
    1.6 California key Language), or None."""
    if protocol == OCPP201:
        text = read(DISPLAY_MESSAGE_CTRLR, LANGUAGE, "")
    elif protocol == OCPP16:
        text = read(CONFIGURATION, LANGUAGE_16, "")
    else:
        return None
    text = (text or "").strip()
    return text or None


def resolve(protocol: str | None, override: Mode | None, reported: Mode) -> tuple[Mode, Source]:
    """The mode in force and where it comes from: the override when one is set and fits the protocol, else
    what the device model reported."""
    if override is not None and fits(protocol, override):
        return override, "override"
    return reported, "device_model"
