"""The campaigns' three sources over the parts of the node that own them: firmware images
(`ampgate.firmware_images.FirmwareImages`: an uploaded image's location is the node's public URL of its file),
the selection over tags, sites, vendor, model and version (`ampgate.fleet.Fleet`), and sites' maintenance
windows in their time zones (`ampgate.load.Sites` + `ampgate.load.windows.window_at`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ampgate.campaigns.model import Selector
from ampgate.campaigns.ports import CampaignSources, FirmwareImage, TargetCharger
from ampgate.errors import NotFoundError
from ampgate.firmware_images.model import ImageRow, matches
from ampgate.fleet.tags import ChargerSelection, ChargerSelector
from ampgate.load.windows import SiteWindows


class Images(Protocol):
    def get(self, image_id: int, /) -> ImageRow | None: ...
    def location(self, row: ImageRow, /) -> str: ...


class Fleet(Protocol):
    def select_chargers(
        self, selector: ChargerSelector, limit: int, after: str | None = None, /
    ) -> list[ChargerSelection]: ...


class Sites(Protocol):
    def maintenance_windows(self, site_id: str, /) -> SiteWindows: ...


@dataclass(frozen=True)
class Image:
    """An image as a campaign sends it: `location` is where chargers download it (for an uploaded file, the
    node's public URL); `row` keeps what the version match reads."""

    row: ImageRow
    location: str

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def version(self) -> str:
        return self.row.version

    @property
    def signing_certificate(self) -> str | None:
        return self.row.signing_certificate

    @property
    def signature(self) -> str | None:
        return self.row.signature

    @property
    def signed_only(self) -> bool:
        return self.row.signed_only


class ImagesFrom:
    def __init__(self, images: Images) -> None:
        self._images = images

    def get(self, image_id: int, /) -> FirmwareImage | None:
        row = self._images.get(image_id)
        return None if row is None else Image(row=row, location=self._images.location(row))

    def matches(self, image: FirmwareImage, booted_version: str | None, /) -> bool:
        """The image's own version match (exact, or normalized) against what the charger booted."""
        if isinstance(image, Image):
            return matches(image.row, booted_version)
        return booted_version == image.version


class SelectionFrom:
    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def select_chargers(
        self, selector: Selector, limit: int, after: str | None, /
    ) -> Sequence[TargetCharger]:
        return self._fleet.select_chargers(
            ChargerSelector(
                vendor=selector.vendor,
                model=selector.model,
                firmware_version=selector.firmware_version,
                site_id=selector.site,
                tags=tuple(selector.tags or ()),
                charger_ids=None if selector.charger_ids is None else tuple(selector.charger_ids),
            ),
            limit,
            after,
        )


class WindowsFrom:
    """A site that has no windows (or no longer exists) holds no campaign back; one that has them lets a
    campaign dispatch only inside one."""

    def __init__(self, sites: Sites) -> None:
        self._sites = sites

    def _windows(self, site_id: str) -> SiteWindows | None:
        try:
            return self._sites.maintenance_windows(site_id)
        except NotFoundError:
            return None

    def window_at(self, site_id: str, when: datetime, /) -> tuple[datetime, datetime] | None:
        sw = self._windows(site_id)
        return None if sw is None or not sw.windows else sw.window_at(when)

    def has_windows(self, site_id: str, /) -> bool:
        sw = self._windows(site_id)
        return sw is not None and bool(sw.windows)


def wire(images: Images, fleet: Fleet, sites: Sites) -> CampaignSources:
    return CampaignSources(
        images=ImagesFrom(images), selection=SelectionFrom(fleet), windows=WindowsFrom(sites)
    )
