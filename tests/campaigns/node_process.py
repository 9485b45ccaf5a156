"""A node process with firmware images and charger selection from the test (the parts that own them are wired
by the node once merged): `python -m tests.campaigns.node_process CONFIG_JSON`. The config names the database,
the ports, the ready file, and the fleet (`prefix`, `chargers`, `protocol`) that the selection answers, in
index order; the one image is "fw2", version 2.0.0, at a location whose file name the simulator installs."""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from typing import Any

import trio

from ampgate.campaigns.model import Selector
from ampgate.campaigns.ports import CampaignSources
from ampgate.config import NodeConfig
from ampgate.node import Node

NEW_VERSION = "2.0.0"


@dataclass(frozen=True)
class Image:
    id: str = "fw2"
    version: str = NEW_VERSION
    location: str = f"http://fw.example/img/{NEW_VERSION}.bin"
    signing_certificate: str | None = None
    signature: str | None = None
    signed_only: bool = False


@dataclass(frozen=True)
class Target:
    id: str
    protocol: str | None
    vendor: str | None = "SimVendor"
    model: str | None = "SimModel"
    firmware_version: str | None = "1.0.0"
    site_id: str | None = None


class Sources:
    def __init__(self, prefix: str, chargers: int, protocol: str) -> None:
        self.image = Image()
        self.targets = [Target(f"{prefix}{i}", protocol) for i in range(chargers)]

    def get(self, image_id: str) -> Image | None:
        return self.image if image_id == self.image.id else None

    def matches(self, image: Any, booted_version: str | None) -> bool:
        return booted_version == image.version

    def select_chargers(self, selector: Selector, limit: int, after: str | None) -> list[Target]:
        ids = selector.charger_ids
        start = 0 if after is None else next(i for i, t in enumerate(self.targets) if t.id == after) + 1
        return [t for t in self.targets[start:] if ids is None or t.id in ids][:limit]

    def window_at(self, site_id: str, when: Any) -> None:
        return None

    def has_windows(self, site_id: str) -> bool:
        return False


async def main(cfg: dict[str, Any]) -> None:
    config = NodeConfig(
        ocpp_host="127.0.0.1",
        ocpp_port=cfg["ocpp_port"],
        api_port=cfg["api_port"],
        public_host="127.0.0.1",
        public_port=0,
        db_path=cfg["db"],
        ready_file=cfg["ready"],
        workers=1,
    )
    sources = Sources(cfg["prefix"], cfg["chargers"], cfg["protocol"])
    node = Node(config, campaign_sources=CampaignSources(images=sources, selection=sources, windows=sources))
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await nursery.start(node.run)
            node.write_ready_file()
            async for _ in signals:
                node.request_stop()
                break


if __name__ == "__main__":
    trio.run(main, json.loads(sys.argv[1]))
