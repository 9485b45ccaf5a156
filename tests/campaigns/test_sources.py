"""The campaigns' sources over the parts that own them: a site's windows evaluated in its time zone (and a site
without windows, or gone, holding nothing back), the selector handed to the fleet's selection, an image's
location and version match as the images service gives them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ampgate.campaigns.model import Selector
from ampgate.campaigns.sources import ImagesFrom, SelectionFrom, WindowsFrom
from ampgate.errors import NotFoundError
from ampgate.firmware_images.model import ImageRow
from ampgate.fleet.tags import ChargerSelection, ChargerSelector
from ampgate.load.windows import MaintenanceWindow, SiteWindows


class Sites:
    def maintenance_windows(self, site_id: str) -> SiteWindows:
        if site_id == "gone":
            raise NotFoundError("no such site", field="site_id")
        windows = (MaintenanceWindow(cron="0 2 * * *", duration_s=3600),) if site_id == "AMS" else ()
        return SiteWindows(site_id=site_id, time_zone="Europe/Amsterdam", windows=windows, updated_at=None)


def test_windows_in_the_site_time_zone_and_sites_without_windows() -> None:
    w = WindowsFrom(Sites())
    # 02:00-03:00 in Amsterdam is 01:00-02:00 UTC in winter
    assert w.window_at("AMS", datetime(2026, 12, 1, 1, 30, tzinfo=UTC)) == (
        datetime(2026, 12, 1, 1, 0, tzinfo=UTC),
        datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
    )
    assert w.window_at("AMS", datetime(2026, 12, 1, 2, 30, tzinfo=UTC)) is None
    assert w.has_windows("AMS")
    assert not w.has_windows("BER") and w.window_at("BER", datetime(2026, 12, 1, 1, 30, tzinfo=UTC)) is None
    assert not w.has_windows("gone")


class Fleet:
    def __init__(self) -> None:
        self.asked: list[tuple[ChargerSelector, int, str | None]] = []

    def select_chargers(self, selector: ChargerSelector, limit: int, after: str | None = None) -> list[Any]:
        self.asked.append((selector, limit, after))
        return [
            ChargerSelection(
                id="CP1", protocol="ocpp1.6", vendor="V", model="M", firmware_version="1.0", site_id="AMS"
            )
        ]


def test_the_selector_goes_to_the_fleet() -> None:
    fleet = Fleet()
    got = SelectionFrom(fleet).select_chargers(
        Selector(vendor="V", site="AMS", tags=["north", "dc"], charger_ids=["CP1"]), 10, "CP0"
    )
    assert [c.id for c in got] == ["CP1"]
    assert fleet.asked == [
        (ChargerSelector(vendor="V", site_id="AMS", tags=("north", "dc"), charger_ids=("CP1",)), 10, "CP0")
    ]
    SelectionFrom(fleet).select_chargers(Selector(model="M"), 5, None)
    assert fleet.asked[-1][0] == ChargerSelector(model="M", tags=(), charger_ids=None)


def row(**over: Any) -> ImageRow:
    base: dict[str, Any] = dict(
        id=7, version="v2.0+build5", vendor=None, model=None, release_notes=None, location=None, token="t",
        file_path="f", file_name="fw-v2.0+build5.bin", original_name=None, size=1, sha256="00",
        signing_certificate=None, signature=None, signed_only=False, version_match="normalized",
        created_at=datetime(2026, 11, 30, tzinfo=UTC),
    )  # fmt: skip
    base.update(over)
    return ImageRow(**base)


class Images:
    def get(self, image_id: int) -> ImageRow | None:
        return row() if image_id == 7 else None

    def location(self, r: ImageRow) -> str:
        return f"https://node.example/firmware/files/{r.token}/{r.file_name}"


def test_an_uploaded_image_is_sent_at_the_node_url_and_matched_by_its_version_match() -> None:
    images = ImagesFrom(Images())
    assert images.get(8) is None
    image = images.get(7)
    assert image is not None
    assert image.location == "https://node.example/firmware/files/t/fw-v2.0+build5.bin"
    assert images.matches(image, "2.0") and images.matches(image, "v2.0-b7")
    assert not images.matches(image, "1.9") and not images.matches(image, None)
