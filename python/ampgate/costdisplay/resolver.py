"""`Modes`: which cost display each charger gets now, and in which language by default.

Asked on every Authorize and TransactionEvent of the fleet, so it is cheap: the overrides (few, changed only by
`set`) are all in memory, and what a charger's device model says is read from the store at most once per
`DEVICE_MODEL_TTL` seconds per charger. The API's view reads afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import msgspec

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.costdisplay import mode as modes
from ampgate.costdisplay.mode import Mode, Source
from ampgate.costdisplay.ports import VariableReads
from ampgate.costdisplay.repository import CostDisplayRepository, Override
from ampgate.errors import NotFoundError, ValidationError
from ampgate.events import CostDisplayChanged

# How long what a charger's device model says is taken as known before it is read again: a device model changes
# when an operator refreshes or sets it, and a minute's delay before the display follows is nothing next to
# reading it from SQLite on each of the fleet's thousands of messages a second.
DEVICE_MODEL_TTL = 60.0


class ChargerProtocol(Protocol):
    @property
    def protocol(self) -> str | None: ...


class ChargerReads(Protocol):
    """Registered chargers (`ampgate.store.ChargerRepository`)."""

    def get(self, charger_id: str, /) -> ChargerProtocol | None: ...


class CostDisplayView(msgspec.Struct, kw_only=True):
    """A charger's cost display as the API shows it: the mode in force and why (`source`), the admin's
    `override` (None: none set) and when it was set, what the device model says (`device_model_mode`), and the
    protocol the charger last spoke (None: never connected; then any override is accepted)."""

    charger_id: str
    mode: Mode
    source: Source
    override: Mode | None
    device_model_mode: Mode
    protocol: str | None
    updated_at: datetime | None


class _Reading:
    __slots__ = ("expires", "language", "mode", "protocol")

    def __init__(self, protocol: str, mode: Mode, language: str | None, expires: float) -> None:
        self.protocol = protocol
        self.mode = mode
        self.language = language
        self.expires = expires


class Modes:
    def __init__(
        self,
        overrides: CostDisplayRepository,
        chargers: ChargerReads,
        variables: VariableReads,
        bus: Publisher,
        clock: Clock,
    ) -> None:
        self._rows = overrides
        self._chargers = chargers
        self._variables = variables
        self._bus = bus
        self._clock = clock
        self._overrides: dict[str, Override] = {}
        self._readings: dict[str, _Reading] = {}

    def load(self) -> None:
        """Read every override (once, at start: afterwards `set` keeps memory and table alike)."""
        self._overrides = self._rows.all()

    def current(self, charger_id: str, protocol: str) -> tuple[Mode, str | None]:
        """The mode in force for `charger_id`, which speaks `protocol`, and its default display language (None:
        not known). Never raises for a store that answers."""
        reading = self._readings.get(charger_id)
        now = self._clock.monotonic()
        if reading is None or reading.expires <= now or reading.protocol != protocol:
            read = self._reader(charger_id)
            reading = _Reading(
                protocol,
                modes.from_device_model(protocol, read),
                modes.default_language(protocol, read),
                now + DEVICE_MODEL_TTL,
            )
            self._readings[charger_id] = reading
        override = self._overrides.get(charger_id)
        mode, _ = modes.resolve(protocol, None if override is None else override.mode, reading.mode)
        return mode, reading.language

    def view(self, charger_id: str) -> CostDisplayView:
        """The charger's cost display, read afresh. Raises NotFoundError (field id) for an unknown charger."""
        row = self._chargers.get(charger_id)
        if row is None:
            raise NotFoundError(f"charger '{charger_id}' is not registered", field="id")
        protocol = row.protocol
        reported = modes.from_device_model(protocol, self._reader(charger_id))
        override = self._overrides.get(charger_id)
        mode, source = modes.resolve(protocol, None if override is None else override.mode, reported)
        return CostDisplayView(
            charger_id=charger_id,
            mode=mode,
            source=source,
            override=None if override is None else override.mode,
            device_model_mode=reported,
            protocol=protocol,
            updated_at=None if override is None else override.updated_at,
        )

    async def set(self, charger_id: str, mode: Mode | None) -> CostDisplayView:
        """Override the charger's cost display with `mode` (None: clear the override; the device model decides
        again). Raises NotFoundError (field id), ValidationError (field mode, code `unsupported_mode`) for a mode
        the charger's protocol does not have."""
        row = self._chargers.get(charger_id)
        if row is None:
            raise NotFoundError(f"charger '{charger_id}' is not registered", field="id")
        if mode is not None and (why := modes.misfit(row.protocol, mode)) is not None:
            raise ValidationError(why, field="mode", code="unsupported_mode")
        now = self._clock.now()
        await self._rows.set(charger_id, mode, now)
        if mode is None:
            self._overrides.pop(charger_id, None)
        else:
            self._overrides[charger_id] = Override(mode=mode, updated_at=now)
        view = self.view(charger_id)
        self._bus.publish(
            CostDisplayChanged(at=now, charger_id=charger_id, mode=view.mode, override=view.override)
        )
        return view

    def _reader(self, charger_id: str) -> Callable[[str, str, str], str | None]:
        value = self._variables.value

        def read(component: str, variable: str, instance: str) -> str | None:
            return value(charger_id, component, variable, instance, "Actual")

        return read
