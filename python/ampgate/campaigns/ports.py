"""What the campaigns need from the rest of the node, each as a narrow Protocol the node wires: firmware images,
charger selection, site maintenance windows, presence, whether a charger is charging, whether it has the 1.6
security extension, and the command queue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ampgate.campaigns.model import Selector
from ampgate.commands.model import QueuedRequest


class FirmwareImage(Protocol):
    """One firmware image (`ampgate.firmware_images`): `signed_only` images are never sent unsigned."""

    @property
    def id(self) -> int: ...
    @property
    def version(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def signing_certificate(self) -> str | None: ...
    @property
    def signature(self) -> str | None: ...
    @property
    def signed_only(self) -> bool: ...


class ImageCatalog(Protocol):
    """The firmware images: lookup by id, and whether a booted version is the image's (its `version_match`)."""

    def get(self, image_id: int, /) -> FirmwareImage | None: ...
    def matches(self, image: FirmwareImage, booted_version: str | None, /) -> bool: ...


class TargetCharger(Protocol):
    """A charger as the selection answers it."""

    @property
    def id(self) -> str: ...
    @property
    def protocol(self) -> str | None: ...
    @property
    def vendor(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def firmware_version(self) -> str | None: ...
    @property
    def site_id(self) -> str | None: ...


class ChargerSelection(Protocol):
    """Chargers matching a selector (vendor, model, firmware version, site, tags, ids), in id order, `limit` at a
    time after id `after`."""

    def select_chargers(
        self, selector: Selector, limit: int, after: str | None, /
    ) -> Sequence[TargetCharger]: ...


class MaintenanceWindows(Protocol):
    """A site's maintenance windows (`ampgate.load.windows.window_at` over the site's windows and time zone): the
    window open at `when` as (start, end), None when none is; `has_windows`: whether the site has any (a site
    without windows does not hold a campaign back)."""

    def window_at(self, site_id: str, when: datetime, /) -> tuple[datetime, datetime] | None: ...
    def has_windows(self, site_id: str, /) -> bool: ...


class LinkView(Protocol):
    @property
    def online(self) -> bool: ...
    @property
    def protocol(self) -> str | None: ...
    @property
    def last_seen_at(self) -> float | None: ...


class Links(Protocol):
    """Presence (`ampgate.connectivity.PresenceRegistry`)."""

    def get(self, charger_id: str, /) -> LinkView | None: ...


class ChargerActivity(Protocol):
    """Whether a charger has a transaction in progress (an update is not dispatched to it until it is idle)."""

    def in_transaction(self, charger_id: str, /) -> bool: ...


class SignedSupport(Protocol):
    """Whether a 1.6 charger has the security extension (its device model or configuration); None: unknown."""

    def supports_signed_updates(self, charger_id: str, /) -> bool | None: ...


class CommandView(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def reply(self) -> Any: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def ocpp_code(self) -> str | None: ...


class Commands(Protocol):
    """The durable command queue (`ampgate.commands.CommandQueue`)."""

    async def enqueue(
        self,
        charger_id: str,
        action: str,
        payload: Any,
        *,
        ttl_s: float | None = None,
        supersede_key: str | None = None,
        command_id: str | None = None,
    ) -> object: ...
    async def enqueue_many(self, requests: Sequence[QueuedRequest], /) -> Sequence[object]: ...
    async def cancel(self, command_id: str, /) -> object: ...
    def get(self, command_id: str, /) -> CommandView | None: ...


@dataclass(frozen=True)
class CampaignSources:
    """The three sources other parts of the node own: firmware images, the selection over charger tags and
    sites, and sites' maintenance windows (the node builds them with `sources.wire`)."""

    images: ImageCatalog
    selection: ChargerSelection
    windows: MaintenanceWindows


class Capabilities(Protocol):
    @property
    def signed_firmware(self) -> bool | None: ...


class DeviceModelSigned:
    """`SignedSupport` from the device model (`ampgate.devicemodel.DeviceModel.capabilities_of`): 1.6 chargers
    whose configuration has the security extension's keys; None when nothing is known (the signed call is tried,
    and its NotSupported answer remembered per charger)."""

    def __init__(self, capabilities_of: Callable[[str], Capabilities | None]) -> None:
        self._capabilities_of = capabilities_of

    def supports_signed_updates(self, charger_id: str, /) -> bool | None:
        caps = self._capabilities_of(charger_id)
        return None if caps is None else caps.signed_firmware
