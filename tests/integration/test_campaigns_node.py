"""A firmware campaign on a real node, in-process (real gateway worker, sockets, SQLite, command queue), over
`ocpp` package charge points of both versions (schema validation on both sides, suppress=False) with images and
selection from the test: a 1.6 charger without the security extension gets the signed update, answers
NotImplemented, and gets the unsigned one; a 1.6 charger with it installs the signed update reporting
SignedFirmwareStatusNotification by request id; a 2.0.1 charger installs the way 2.0.1 orders a reboot
(InstallRebooting, BootNotification with the new version, then Installed); a 2.0.1 charger installs without
rebooting (Installing → Installed, no BootNotification) and is installed; a 2.0.1 charger that reports Installed
and soon after boots its old version (a rollback) is a version mismatch. The 1.6 chargers' BootNotification
confirms their Installed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from ampgate.campaigns.model import Selector
from ampgate.campaigns.ports import CampaignSources
from ampgate.config import NodeConfig
from ampgate.node import Node
from tests.integration.ocpp_clients import ocpp_charge_point

STEPS_16 = ["Downloading", "Downloaded", "Installing", "Installed"]
STEPS_SIGNED = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
STEPS_REBOOT = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting"]


@dataclass(frozen=True)
class Image:
    id: int = 1
    version: str = "2.0"
    location: str = "https://cdn.example/fw-2.0.bin"
    signing_certificate: str | None = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    signature: str | None = "U0lHTkFUVVJF"
    signed_only: bool = False


@dataclass(frozen=True)
class Target:
    id: str
    protocol: str | None
    vendor: str | None = "V"
    model: str | None = "M"
    firmware_version: str | None = "1.0"
    site_id: str | None = None


class Sources:
    """Images, selection and windows as the test states them."""

    def __init__(self, targets: list[Target]) -> None:
        self.image = Image()
        self.targets = targets

    def get(self, image_id: int) -> Image | None:
        return self.image if image_id == self.image.id else None

    def matches(self, image: Any, booted_version: str | None) -> bool:
        return booted_version == image.version

    def select_chargers(self, selector: Selector, limit: int, after: str | None) -> list[Target]:
        ids = selector.charger_ids
        return [t for t in self.targets if (ids is None or t.id in ids) and (after is None or t.id > after)][
            :limit
        ]

    def window_at(self, site_id: str, when: Any) -> None:
        return None

    def has_windows(self, site_id: str) -> bool:
        return False


class Plain16(ChargePoint16):
    """1.6 without the security extension: no SignedUpdateFirmware handler (the package answers NotImplemented)."""

    received: list[str]

    @on(Action16.update_firmware)
    async def on_update(self, location, retrieve_date, **_):
        self.received = [*getattr(self, "received", []), "UpdateFirmware"]
        return result16.UpdateFirmware()

    @after(Action16.update_firmware)
    async def walk(self, **_):
        for s in STEPS_16:
            await self.call(call16.FirmwareStatusNotification(status=s), suppress=False)
        await self.call(
            call16.BootNotification(charge_point_model="M", charge_point_vendor="V", firmware_version="2.0"),
            suppress=False,
        )


class Secure16(ChargePoint16):
    received: list[str]

    @on(Action16.signed_update_firmware)
    async def on_signed(self, request_id, firmware, **_):
        self.received = [*getattr(self, "received", []), "SignedUpdateFirmware"]
        assert firmware["signature"] == Image.signature
        return result16.SignedUpdateFirmware(status="Accepted")

    @after(Action16.signed_update_firmware)
    async def walk(self, request_id, **_):
        for s in STEPS_SIGNED:
            await self.call(
                call16.SignedFirmwareStatusNotification(status=s, request_id=request_id), suppress=False
            )
        await self.call(
            call16.BootNotification(charge_point_model="M", charge_point_vendor="V", firmware_version="2.0"),
            suppress=False,
        )


class Station201(ChargePoint201):
    """Reboots to install: InstallRebooting, BootNotification with the new version, then Installed (L01)."""

    received: list[str]

    @on(Action201.update_firmware)
    async def on_update(self, request_id, firmware, **_):
        self.received = [*getattr(self, "received", []), "UpdateFirmware"]
        return result201.UpdateFirmware(status="Accepted")

    @after(Action201.update_firmware)
    async def walk(self, request_id, **_):
        await self.report(request_id, STEPS_REBOOT)
        await self.boot("2.0")
        await self.report(request_id, ["Installed"])

    async def report(self, request_id: int, steps: list[str]) -> None:
        for s in steps:
            await self.call(
                call201.FirmwareStatusNotification(status=s, request_id=request_id), suppress=False
            )

    async def boot(self, version: str) -> None:
        station = {"model": "M", "vendor_name": "V", "firmware_version": version}
        await self.call(
            call201.BootNotification(charging_station=station, reason="FirmwareUpdate"), suppress=False
        )


class NoReboot201(Station201):
    """Installs without rebooting: Installing → Installed, and no BootNotification at all."""

    @after(Action201.update_firmware)
    async def walk(self, request_id, **_):
        await self.report(request_id, STEPS_SIGNED)


class Stale201(Station201):
    """Reports Installed without a reboot, then boots its old version at once: it rolled back."""

    @after(Action201.update_firmware)
    async def walk(self, request_id, **_):
        await self.report(request_id, STEPS_SIGNED)
        await self.boot("1.0")


def run_node(tmp_path: Path, sources: Sources, scenario: Callable[[str, str, str], Awaitable[None]]) -> None:
    """Run a node in-process with `sources`, and `scenario(ocpp_url, api_url, admin_token)` on asyncio in a
    thread (the `ocpp` package's charge points are asyncio-bound); the node stops when it returns."""
    config = NodeConfig(
        ocpp_host="127.0.0.1",
        ocpp_port=0,
        api_port=0,
        public_host="127.0.0.1",
        public_port=0,
        db_path=str(tmp_path / "campaign.db"),
        workers=1,
    )

    async def main() -> None:
        node = Node(
            config, campaign_sources=CampaignSources(images=sources, selection=sources, windows=sources)
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            assert node.first_admin_token is not None
            await trio.to_thread.run_sync(
                asyncio.run,
                scenario(
                    f"ws://127.0.0.1:{node.gateway.ocpp_port}/ocpp",
                    f"http://127.0.0.1:{node.api_port}/api/v1",
                    node.first_admin_token,
                ),
            )
            node.request_stop()

    trio.run(main)


CHARGERS = [
    ("FW16", Plain16, "ocpp1.6"),
    ("FW16S", Secure16, "ocpp1.6"),
    ("FW201", Station201, "ocpp2.0.1"),
    ("FW201NR", NoReboot201, "ocpp2.0.1"),
    ("FW201OLD", Stale201, "ocpp2.0.1"),
]


def test_a_campaign_over_both_versions_with_fallback_and_a_version_mismatch(tmp_path: Path) -> None:
    sources = Sources([Target(cid, proto) for cid, _, proto in CHARGERS])
    out: dict[str, Any] = {}

    async def chargers(ocpp_url: str, api_url: str, token: str) -> None:
        async with AsyncExitStack() as stack:
            cps = {}
            for cid, cls, proto in CHARGERS:
                cps[cid] = await stack.enter_async_context(
                    ocpp_charge_point(cls, ocpp_url, cid, proto, boot=True)
                )
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as http:
                spec = {
                    "image_id": 1,
                    "selector": {"charger_ids": [c for c, _, _ in CHARGERS]},
                    "groups": [{"percent": 100}],
                    "success_threshold_pct": 50,
                }
                r = await http.post("/firmware/campaigns", json=spec)
                assert r.status_code == 201, r.text
                url = f"/firmware/campaigns/{r.json()['id']}"
                assert (await http.post(f"{url}/start")).status_code == 200
                for _ in range(300):
                    summary = (await http.get(url)).json()
                    # FW201OLD's rollback may land just after the campaign finished: wait for it too.
                    if summary["state"] in ("finished", "paused") and summary["counts"]["failed"]:
                        break
                    await asyncio.sleep(0.1)
                out["summary"] = summary
                out["chargers"] = (await http.get(f"{url}/chargers")).json()["items"]
                # The operator's view in a terminal: the CLI over the HTTP API, the token from the environment.
                cli = [
                    sys.executable,
                    "-m",
                    "ampgate.cli",
                    "firmware",
                    "status",
                    str(summary["id"]),
                    "--watch",
                ]
                cli += ["--api-url", api_url.removesuffix("/api/v1")]
                env = {**os.environ, "AMPGATE_TOKEN": token, "COLUMNS": "150"}
                out["cli"] = await asyncio.to_thread(
                    subprocess.run, cli, capture_output=True, text=True, env=dict(env), timeout=60
                )
                env["AMPGATE_TOKEN"] = "not-a-token"
                out["cli_refused"] = await asyncio.to_thread(
                    subprocess.run, cli, capture_output=True, text=True, env=env, timeout=60
                )
            out["received"] = {cid: getattr(cp, "received", []) for cid, cp in cps.items()}

    run_node(tmp_path, sources, chargers)
    summary = out["summary"]
    assert summary["state"] == "finished", summary
    assert {k: v for k, v in summary["counts"].items() if v} == {"installed": 4, "failed": 1}
    rows = {c["charger_id"]: c for c in out["chargers"]}
    assert rows["FW201OLD"]["reason"] == "version_mismatch"
    assert [e["event"] for e in rows["FW201OLD"]["timeline"]][-2:] == ["Installed", "boot 1.0"]
    nr = [e["event"] for e in rows["FW201NR"]["timeline"]]
    assert rows["FW201NR"]["state"] == "installed" and nr[-1] == "Installed"
    assert not any(e.startswith("boot") or e == "trigger" for e in nr)
    rebooted = [e["event"] for e in rows["FW201"]["timeline"]]
    assert rebooted[-2:] == ["InstallRebooting", "boot 2.0"] and rows["FW201"]["state"] == "installed"
    assert out["received"] == {
        "FW16": ["UpdateFirmware"],
        "FW16S": ["SignedUpdateFirmware"],
        "FW201": ["UpdateFirmware"],
        "FW201NR": ["UpdateFirmware"],
        "FW201OLD": ["UpdateFirmware"],
    }
    fw16 = [e["event"] for e in rows["FW16"]["timeline"]]
    assert fw16[0].startswith("SignedUpdateFirmware") and fw16[1] == "call failed NotImplemented"
    assert fw16[2].startswith("fallback UpdateFirmware") and fw16[-1] == "boot 2.0"
    assert rows["FW16"]["action"] == "UpdateFirmware"
    signed = [e["event"] for e in rows["FW16S"]["timeline"]]
    # The reply's event and the first status race on the bus (the charger reports as soon as it has answered);
    # a reply that arrives after a status is moot and not recorded.
    assert signed[1:-1] in (["reply Accepted", *STEPS_SIGNED], STEPS_SIGNED)
    cli = out["cli"]
    assert cli.returncode == 0, cli.stderr
    assert f"campaign {summary['id']}" in cli.stdout and "finished" in cli.stdout
    assert "0 group" in cli.stdout and "5/5" in cli.stdout
    assert out["cli_refused"].returncode == 1 and "401" in out["cli_refused"].stderr


# -- pause and cancel follow what was sent --------------------------------------------------------------------------


class Silent201(ChargePoint201):
    """Accepts the update and says nothing more (no TriggerMessage handler: the package answers NotImplemented)."""

    received: list[str]

    @on(Action201.update_firmware)
    async def on_update(self, request_id, firmware, **_):
        self.received = [*getattr(self, "received", []), "UpdateFirmware"]
        return result201.UpdateFirmware(status="Accepted")


class Gated201(NoReboot201):
    """Reports Downloading, then waits for the test's gate before it goes on to Installed (no reboot)."""

    gate: asyncio.Event

    @after(Action201.update_firmware)
    async def walk(self, request_id, **_):
        await self.report(request_id, ["Downloading"])
        await self.gate.wait()
        await self.report(request_id, ["Downloaded", "Installing", "Installed"])


PAUSE_CANCEL = [
    ("PS1", Silent201),
    ("PS2", Station201),
    ("CG1", Gated201),
    ("CG2", Station201),
]


def test_pause_and_cancel_keep_following_the_updates_already_sent(tmp_path: Path) -> None:
    """On a real node over `ocpp` v201 charge points: a campaign paused with an update in flight still asks its
    silent charger and times it out, and sends nothing new; a campaign cancelled with an update in flight skips
    its pending charger ("cancelled"), keeps the charger in flight in itself for other campaigns, and records
    its Installed afterwards (the cancelled campaign's counts move)."""
    sources = Sources([Target(cid, "ocpp2.0.1") for cid, _ in PAUSE_CANCEL])
    out: dict[str, Any] = {}

    async def scenario(ocpp_url: str, api_url: str, token: str) -> None:
        Gated201.gate = asyncio.Event()
        async with AsyncExitStack() as stack:
            cps = {
                cid: await stack.enter_async_context(
                    ocpp_charge_point(cls, ocpp_url, cid, "ocpp2.0.1", boot=True)
                )
                for cid, cls in PAUSE_CANCEL
            }
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as http:

                async def create(ids: list[str], **over: Any) -> str:
                    body = {"image_id": 1, "selector": {"charger_ids": ids}, "groups": [{"percent": 100}]}
                    r = await http.post("/firmware/campaigns", json={**body, **over})
                    assert r.status_code == 201, r.text
                    url = f"/firmware/campaigns/{r.json()['id']}"
                    assert (await http.post(f"{url}/start")).status_code == 200
                    return url

                async def rows(url: str) -> dict[str, Any]:
                    return {c["charger_id"]: c for c in (await http.get(f"{url}/chargers")).json()["items"]}

                async def wait_for(url: str, charger_id: str, states: tuple[str, ...]) -> dict[str, Any]:
                    for _ in range(200):
                        row = (await rows(url))[charger_id]
                        if row["state"] in states:
                            return row
                        await asyncio.sleep(0.1)
                    raise AssertionError(f"{charger_id} never reached {states}: {row}")

                paused = await create(["PS1", "PS2"], max_in_flight=1, status_timeout_s=2)
                await wait_for(paused, "PS1", ("dispatched",))
                assert (await http.post(f"{paused}/pause", json={"reason": "look"})).status_code == 200
                out["paused_ps1"] = await wait_for(paused, "PS1", ("timed_out",))
                out["paused"] = (await http.get(paused)).json()

                cancelled = await create(["CG1", "CG2"], max_in_flight=1)
                await wait_for(cancelled, "CG1", ("downloading",))
                assert (await http.post(f"{cancelled}/cancel")).status_code == 200
                out["cancelled_rows"] = await rows(cancelled)
                other = await create(["CG1"])
                out["other_cg1"] = (await rows(other))["CG1"]
                Gated201.gate.set()
                out["cancelled_cg1"] = await wait_for(cancelled, "CG1", ("installed",))
                out["cancelled"] = (await http.get(cancelled)).json()
                later = await create(["CG1"])  # its update is final: no longer held by the cancelled campaign
                out["later_cg1"] = (await rows(later))["CG1"]
            out["received"] = {cid: getattr(cp, "received", []) for cid, cp in cps.items()}

    run_node(tmp_path, sources, scenario)
    assert [e["event"] for e in out["paused_ps1"]["timeline"]][-2:] == [
        "trigger",
        "silent after TriggerMessage",
    ]
    paused = out["paused"]
    assert paused["state"] == "paused"
    assert {k: v for k, v in paused["counts"].items() if v} == {"timed_out": 1, "pending": 1}
    assert out["received"]["PS2"] == []  # nothing new while paused

    rows = out["cancelled_rows"]
    assert (rows["CG2"]["state"], rows["CG2"]["reason"]) == ("skipped", "cancelled")
    assert rows["CG1"]["state"] == "downloading"
    assert out["received"]["CG2"] == []
    assert (out["other_cg1"]["state"], out["other_cg1"]["reason"]) == (
        "skipped",
        f"in_campaign:{out['cancelled']['id']}",
    )
    assert out["cancelled_cg1"]["timeline"][-1]["event"] == "Installed"
    cancelled = out["cancelled"]
    assert cancelled["state"] == "cancelled"
    assert {k: v for k, v in cancelled["counts"].items() if v} == {"installed": 1, "skipped": 1}
    assert out["later_cg1"]["state"] != "skipped"
