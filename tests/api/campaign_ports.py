"""In-test stand-ins for what the campaign runner reads from the rest of the node: one firmware image (id 1,
version 2.0), a fleet to select from, no maintenance windows, every charger offline and idle; commands that
record what was queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ampgate.campaigns.model import Selector


@dataclass(frozen=True)
class Image:
    id: int = 1
    version: str = "2.0"
    location: str = "https://cdn.example/fw-2.0.bin"
    signing_certificate: str | None = None
    signature: str | None = None
    signed_only: bool = False


@dataclass(frozen=True)
class Target:
    id: str
    protocol: str | None = "ocpp2.0.1"
    vendor: str | None = "V"
    model: str | None = "M"
    firmware_version: str | None = "1.0"
    site_id: str | None = None


class CampaignPorts:
    def __init__(self) -> None:
        self.image = Image()
        self.fleet = [Target(f"CP{i:03}") for i in range(30)] + [Target("DONE", firmware_version="2.0")]
        self.queued: list[tuple[str, str, Any]] = []

    def get(self, key: object) -> Any:
        return self.image if key == self.image.id else None

    def matches(self, image: Any, booted_version: str | None) -> bool:
        return booted_version == image.version

    def select_chargers(self, selector: Selector, limit: int, after: str | None) -> list[Target]:
        return [
            t
            for t in self.fleet
            if (after is None or t.id > after)
            and (selector.vendor is None or t.vendor == selector.vendor)
            and (selector.charger_ids is None or t.id in selector.charger_ids)
        ][:limit]

    def window_at(self, site_id: str, when: datetime) -> tuple[datetime, datetime] | None:
        return None

    def has_windows(self, site_id: str) -> bool:
        return False

    def in_transaction(self, charger_id: str) -> bool:
        return False

    def supports_signed_updates(self, charger_id: str) -> bool | None:
        return None

    async def enqueue(self, charger_id: str, action: str, payload: Any, **kw: Any) -> object:
        self.queued.append((charger_id, action, payload))
        return object()

    async def enqueue_many(self, requests: Any) -> list[object]:
        return [await self.enqueue(r.charger_id, r.action, r.payload) for r in requests]

    async def cancel(self, command_id: str) -> object:
        return object()
