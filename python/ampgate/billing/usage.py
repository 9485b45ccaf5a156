"""A session's usage as the pricing engine reads it, assembled from what the node stores: pure, no I/O.

The same assembly serves the running cost (from samples the bus delivered, kept in memory) and the final cost
and CDR (from the store), so the two can only differ by what one of them has not seen yet:

- `Meter` collects normalised meter samples (`ampgate.store.Sample`) by instant and gives the engine's
  `MeterSample`s: at each instant with an energy register reading, the energy imported since the start (the
  register minus the start reading: 1.6 meterStart, else the first reading, as the store computes it), with the
  power (W) and current (A, summed over phases) reported at that instant. Instants without a register reading
  are left out: the engine holds a sample's power until the next one, and a reading without energy would hold
  a stale energy.
- `session_usage` adds the stop: the register at the stop (1.6 meterStop, 2.0.1 the last reading) as a sample
  at `stopped_at`, so the transaction's energy is exactly what the store says even when the charger sent no
  sample then, and the charging timeline.
- `charging_from_status` says what a 1.6 connector status means for TIME vs PARKING_TIME (2.0.1 reports
  `chargingState` in its TransactionEvents, mapped by the OCPP handler); `FREE_STATUSES` when the EVSE is free
  again (the session's end).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import datetime

from ampgate.clock import parse_iso
from ampgate.pricing import ChargingChange, MeterSample, SessionUsage
from ampgate.store.transactions import ENERGY, Sample

__all__ = ["FREE_STATUSES", "PRICED_MEASURANDS", "Meter", "charging_from_status", "session_usage"]

POWER = "Power.Active.Import"
CURRENT = "Current.Import"
# The only measurands pricing reads (`_reading`): a session's other samples (voltage, SoC, temperature, ...) are
# never read for it.
PRICED_MEASURANDS = (ENERGY, POWER, CURRENT)
# Per-phase readings summed into the charger's total when it sent no total: the phase conductors (and the
# phase-to-neutral readings of power), never the neutral or phase-to-phase values.
_PHASES = frozenset({"L1", "L2", "L3", "L1-N", "L2-N", "L3-N"})

# 1.6 ChargePointStatus during a transaction: only Charging is energy flowing (OCPI TIME); the EV or the EVSE
# suspending, finishing, or a fault count as not charging (PARKING_TIME). Preparing, Available, Reserved and
# Unavailable say nothing about a running transaction's charging and are ignored.
_CHARGING_16: dict[str, bool] = {
    "Charging": True,
    "SuspendedEV": False,
    "SuspendedEVSE": False,
    "Finishing": False,
    "Faulted": False,
}
# The connector is free again: the EV is gone (Available), or it was set aside for the next driver (Reserved).
FREE_STATUSES = frozenset({"Available", "Reserved"})


def charging_from_status(protocol: str, status: str) -> bool | None:
    """Whether a connector status reported during a transaction means charging (True), not charging (False)
    or nothing (None). 2.0.1 connector statuses (Available, Occupied, ...) never say: its TransactionEvents'
    chargingState does."""
    if protocol != "ocpp1.6":
        return None
    return _CHARGING_16.get(status)


def _reading(samples: Sequence[Sample]) -> tuple[float | None, float | None, float | None]:
    """(energy register Wh, power W, current A) of the samples of one instant; per-phase power and current
    summed where the charger sent no total."""
    energy = power = current = None
    powers: dict[str, float] = {}
    currents: dict[str, float] = {}
    for s in samples:
        if s.measurand == ENERGY:
            if s.phase == "":
                energy = s.value
        elif s.measurand == POWER:
            if s.phase == "":
                power = s.value
            elif s.phase in _PHASES:
                powers[s.phase] = s.value
        elif s.measurand == CURRENT:
            if s.phase == "":
                current = s.value
            elif s.phase in _PHASES:
                currents[s.phase] = s.value
    if power is None and powers:
        power = sum(powers.values())
    if current is None and currents:
        current = sum(currents.values())
    return energy, power, current


class Meter:
    """A session's meter samples as the engine reads them. `add` the store's normalised samples as they come
    (in any order; an instant seen before keeps what it had unless the new samples say more); `samples()`
    gives them in time order. Each instant costs one `MeterSample` (about 200 bytes)."""

    __slots__ = ("_ats", "_samples", "_tuple", "start_wh")

    def __init__(self, start_wh: float | None = None) -> None:
        # The register at the start (1.6 meterStart); None: the first register reading added becomes it, as the
        # store fills meter_start_wh for 2.0.1.
        self.start_wh = start_wh
        self._ats: list[datetime] = []
        self._samples: list[MeterSample] = []
        self._tuple: tuple[MeterSample, ...] | None = ()

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, samples: Iterable[Sample]) -> None:
        """Take in samples (of one or several instants)."""
        by_at: dict[str, list[Sample]] = {}
        for s in samples:
            by_at.setdefault(s.at, []).append(s)
        for text, group in by_at.items():
            energy, power, current = _reading(group)
            at = parse_iso(text)
            assert at is not None
            ats = self._ats
            i = bisect_left(ats, at)
            if i < len(ats) and ats[i] == at:
                old = self._samples[i]
                self._samples[i] = MeterSample(
                    at,
                    old.energy_wh if energy is None else energy - (self.start_wh or 0.0),
                    old.power_w if power is None else power,
                    old.current_a if current is None else current,
                )
            elif energy is not None:
                if self.start_wh is None:
                    self.start_wh = energy
                ats.insert(i, at)
                self._samples.insert(i, MeterSample(at, energy - self.start_wh, power, current))
            else:
                continue
            self._tuple = None

    def samples(self) -> tuple[MeterSample, ...]:
        """The engine's samples: energy since the start (Wh), power (W) and current (A) at each instant that has
        a register reading, in time order."""
        t = self._tuple
        if t is None:
            t = self._tuple = tuple(self._samples)
        return t


def session_usage(
    started_at: datetime,
    samples: tuple[MeterSample, ...],
    charging: Sequence[ChargingChange],
    *,
    stopped_at: datetime | None = None,
    stop_energy_wh: float | None = None,
    ended_at: datetime | None = None,
) -> SessionUsage:
    """The engine's usage of a session. With `stopped_at`, `stop_energy_wh` (the register at the stop minus the
    start reading) becomes the sample at the stop, replacing one the charger sent for the same instant."""
    if stopped_at is not None and stop_energy_wh is not None:
        kept = tuple(s for s in samples if s.at < stopped_at)
        last = next((s for s in samples if s.at == stopped_at), None)
        stop_sample = MeterSample(
            stopped_at,
            stop_energy_wh,
            None if last is None else last.power_w,
            None if last is None else last.current_a,
        )
        later = tuple(s for s in samples if s.at > stopped_at)
        samples = (*kept, stop_sample, *later)
    return SessionUsage(
        started_at=started_at,
        samples=samples,
        charging=tuple(charging),
        stopped_at=stopped_at,
        ended_at=ended_at,
    )
