"""Payload types for the actions this layer handles so far, as msgspec Structs.

Hand-written for the foundation: the full set, generated from the `ocpp` package's JSON schemas, replaces
this module with the OCPP layer (issue 3). Field names are the wire names (camelCase) so no renaming is needed.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Str20 = Annotated[str, msgspec.Meta(max_length=20)]
Str25 = Annotated[str, msgspec.Meta(max_length=25)]
Str50 = Annotated[str, msgspec.Meta(max_length=50)]


class BootNotification16(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    chargePointVendor: Str20
    chargePointModel: Str20
    chargePointSerialNumber: Str25 | None = None
    chargeBoxSerialNumber: Str25 | None = None
    firmwareVersion: Str50 | None = None
    iccid: Str20 | None = None
    imsi: Str20 | None = None
    meterType: Str25 | None = None
    meterSerialNumber: Str25 | None = None


class Modem201(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    iccid: Str20 | None = None
    imsi: Str20 | None = None
    customData: dict | None = None


class ChargingStation201(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    model: Str20
    vendorName: Str50
    serialNumber: Str25 | None = None
    firmwareVersion: Str50 | None = None
    modem: Modem201 | None = None
    customData: dict | None = None


BootReason201 = Literal[
    "ApplicationReset",
    "FirmwareUpdate",
    "LocalReset",
    "PowerUp",
    "RemoteReset",
    "ScheduledReset",
    "Triggered",
    "Unknown",
    "Watchdog",
]


class BootNotification201(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    chargingStation: ChargingStation201
    reason: BootReason201
    customData: dict | None = None


class Heartbeat16(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    pass


class Heartbeat201(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    customData: dict | None = None
