"""Meter values of both protocol versions normalised into store samples: energy in Wh, power in W, current in
A (per phase), state of charge in percent. Other measurands are not kept (nothing in the node reads them yet).
Signed meter values (2.0.1 `signedMeterValue`, 1.6 values in format SignedData) are kept as received, whatever
their measurand: they go on the bill as the meter signed them (`signed16`, `signed201`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

from ampgate.clock import iso_utc
from ampgate.store.transactions import ENERGY, Sample, SignedValue

log = logging.getLogger(__name__)

# Measurand -> the unit it is stored in. Both versions default an unnamed measurand to the energy register.
KEPT: dict[str, str] = {
    ENERGY: "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "SoC": "Percent",
}
# A 2.0.1 unitOfMeasure.multiplier is a power of ten the schema does not bound; beyond this no meter reading
# is meaningful (and 10.0**309 overflows a float).
MAX_MULTIPLIER = 30
# Units a charger may report that we scale into the stored unit (1.6 UnitOfMeasure; 2.0.1 uses the same names).
_SCALE: dict[str, tuple[str, float]] = {
    "Wh": ("Wh", 1.0),
    "kWh": ("Wh", 1000.0),
    "W": ("W", 1.0),
    "kW": ("W", 1000.0),
    "A": ("A", 1.0),
    "Percent": ("Percent", 1.0),
}


def _sample(
    at: str,
    measurand: str | None,
    phase: str | None,
    value: float,
    unit: str | None,
    context: Any,
    location: str | None,
) -> Sample | None:
    if not math.isfinite(value):
        # "NaN" and "Infinity" parse as floats; stored, they would fail the NOT NULL column (NaN becomes NULL
        # in SQLite) and take the whole message, a StopTransaction with them, down with it.
        log.info("dropping non-finite sampled value %r", value)
        return None
    if location not in (None, "Outlet"):
        # The energy delivered is the outlet's; Inlet/EV/Body readings of the same measurand and instant would
        # otherwise compete for the one sample kept per (transaction, time, measurand, phase).
        return None
    measurand = measurand or ENERGY
    wanted = KEPT.get(measurand)
    if wanted is None:
        return None
    stored, factor = _SCALE.get(unit or wanted, (None, 1.0))
    if stored != wanted:
        log.info("dropping %s sample in unit %r", measurand, unit)
        return None
    return Sample(at, measurand, phase or "", value * factor, stored, context)


def samples16(meter_values: Iterable[Any]) -> list[Sample]:
    """Samples of 1.6 MeterValue / transactionData entries (values are strings; SignedData is skipped)."""
    out = []
    for mv in meter_values:
        at = iso_utc(mv.timestamp)
        for sv in mv.sampled_value:
            if sv.format == "SignedData":
                continue
            try:
                value = float(sv.value)
            except ValueError:
                log.info("dropping unreadable sampled value %r", sv.value)
                continue
            s = _sample(at, sv.measurand, sv.phase, value, sv.unit, sv.context, sv.location)
            if s is not None:
                out.append(s)
    return out


def samples201(meter_values: Iterable[Any] | None) -> list[Sample]:
    """Samples of 2.0.1 MeterValueType entries (unitOfMeasure with its power-of-ten multiplier)."""
    out = []
    for mv in meter_values or ():
        at = iso_utc(mv.timestamp)
        for sv in mv.sampled_value:
            uom = sv.unit_of_measure
            unit = uom.unit if uom is not None else None
            multiplier = uom.multiplier if uom is not None and uom.multiplier is not None else 0
            if not -MAX_MULTIPLIER <= multiplier <= MAX_MULTIPLIER:
                log.info("dropping sampled value with multiplier %d", multiplier)
                continue
            value = sv.value * 10.0**multiplier
            s = _sample(at, sv.measurand, sv.phase, value, unit, sv.context, sv.location)
            if s is not None:
                out.append(s)
    return out


def signed16(meter_values: Iterable[Any]) -> list[SignedValue]:
    """The 1.6 sampled values in format SignedData, as the charger sent them (the value is the signed data)."""
    out = []
    for mv in meter_values:
        at = iso_utc(mv.timestamp)
        for sv in mv.sampled_value:
            if sv.format == "SignedData" and sv.value:
                out.append(
                    SignedValue(
                        at=at,
                        measurand=sv.measurand or ENERGY,
                        phase=sv.phase or "",
                        context=sv.context,
                        format="SignedData",
                        signed_data=sv.value,
                    )
                )
    return out


def signed201(meter_values: Iterable[Any] | None) -> list[SignedValue]:
    """The 2.0.1 sampled values that carry a `signedMeterValue`, as the charger sent it."""
    out = []
    for mv in meter_values or ():
        at = iso_utc(mv.timestamp)
        for sv in mv.sampled_value:
            signed = sv.signed_meter_value
            if signed is None:
                continue
            out.append(
                SignedValue(
                    at=at,
                    measurand=sv.measurand or ENERGY,
                    phase=sv.phase or "",
                    context=sv.context,
                    format="signedMeterValue",
                    signed_data=signed.signed_meter_data,
                    signing_method=signed.signing_method,
                    encoding_method=signed.encoding_method,
                    public_key=signed.public_key,
                )
            )
    return out
