"""A maintenance window keeps a campaign's dispatch inside it, on a real node whose scheduler runs on trio's
MockClock, with real chargers.

What is real: the whole node in-process (`ampgate.node.Node` as `ampgate serve` builds it: the Rust gateway
worker and its sockets, SQLite, the command queue and the Commander, the campaign runner with the node's own
sources: the image, the site, its maintenance window in its time zone and the placements all made over the
operator API), and the chargers: `ocpp` package charge points (1.6 and 2.0.1, schema validation on both sides)
over `websockets`, on asyncio in a thread, answering in real time.

What is virtual: the node's trio clock, and with it the node's wall clock (`VirtualClock`: the test's T0 plus
trio's time). It runs at real speed while the node starts and the test sets up (a worker's start-up timeout
must not be jumped over), then autojumps: once the trio loop has been idle for AUTOJUMP real seconds it leaps to
the next timer, so the minutes up to the window, through it and past it take seconds. Virtual time may also
leap while the loop waits on real I/O (a store commit, a charger's answer); that only makes the test harsher,
since a dispatch found inside the window must carry times inside it however long its writes took.

Asserted: nothing is dispatched to the site's chargers before the window opens (a charger without a site gets
its update at once, so the campaign is running); both get theirs inside it, the 2.0.1 UpdateFirmware with
retrieveDateTime and installDateTime inside it, the 1.6 one with retrieveDate inside it (1.6 has no install
time); a charger of the site that comes online after the window closed gets nothing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from ampgate.clock import Clock
from ampgate.config import NodeConfig
from ampgate.node import Node
from tests.integration.ocpp_clients import ocpp_charge_point

# 00:58:30 UTC is 01:58:30 in Amsterdam (CET): the site's window "0 2 * * *" for 180 s opens 90 s later (the
# set-up, at real speed, takes a few). Every virtual minute costs real seconds (the node's shortest timer ticks
# four times a second), so the test spans only what it must.
T0 = datetime(2026, 11, 30, 0, 58, 30, tzinfo=UTC)
OPENS = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
CLOSES = OPENS + timedelta(seconds=180)
# Real seconds the trio loop must be idle before the MockClock jumps: enough for the node's own steps to run
# between jumps; a store commit or a charger's answer may still take longer (see the module docstring).
AUTOJUMP = 0.01
# id: (protocol, placed at the site)
CHARGERS = {
    "W201": ("ocpp2.0.1", True),
    "W16": ("ocpp1.6", True),
    "FREE": ("ocpp2.0.1", False),
    "LATE": ("ocpp2.0.1", True),
}

# (charger id, action, payload as the `ocpp` package hands it over), appended from the asyncio thread.
RECEIVED: list[tuple[str, str, dict[str, Any]]] = []


class VirtualClock(Clock):
    """The node's wall clock follows trio's (MockClock) time from T0."""

    def wall(self) -> float:
        return T0.timestamp() + trio.current_time()


class Station(ChargePoint201):
    @on(Action201.update_firmware)
    async def on_update(self, request_id, firmware, **_):
        RECEIVED.append((self.id, "UpdateFirmware", firmware))
        return result201.UpdateFirmware(status="Accepted")


class Point16(ChargePoint16):
    @on(Action16.update_firmware)
    async def on_update(self, location, retrieve_date, **_):
        RECEIVED.append((self.id, "UpdateFirmware", {"location": location, "retrieve_date": retrieve_date}))
        return result16.UpdateFirmware()


class Fleet:
    """The chargers, on asyncio in their own thread; the trio side calls into it with `run`."""

    def __init__(self, ocpp_url: str) -> None:
        self.ocpp_url = ocpp_url
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.stacks: dict[str, AsyncExitStack] = {}
        self._stop: asyncio.Event | None = None

    def main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            for cid in list(self.stacks):
                await self.disconnect(cid)

    async def connect(self, charger_id: str) -> None:
        protocol, _ = CHARGERS[charger_id]
        stack = AsyncExitStack()
        cls = Station if protocol == "ocpp2.0.1" else Point16
        cp = await stack.enter_async_context(ocpp_charge_point(cls, self.ocpp_url, charger_id, protocol))
        self.stacks[charger_id] = stack
        if protocol == "ocpp1.6":
            req: Any = call16.BootNotification(
                charge_point_model="M", charge_point_vendor="V", firmware_version="1.0"
            )
        else:
            station = {"model": "M", "vendor_name": "V", "firmware_version": "1.0"}
            req = call201.BootNotification(charging_station=station, reason="PowerUp")
        reply = await cp.call(req, suppress=False)
        assert reply.status == "Accepted"

    async def disconnect(self, charger_id: str) -> None:
        await self.stacks.pop(charger_id).aclose()

    async def stop(self) -> None:
        assert self._stop is not None
        self._stop.set()

    async def run(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run `fn(*args)` on the fleet's loop and wait for it (the trio loop idles meanwhile)."""
        assert self.loop is not None
        fut: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(fn(*args), self.loop)
        await trio.to_thread.run_sync(fut.result)


def received(charger_id: str) -> list[dict[str, Any]]:
    return [p for cid, action, p in RECEIVED if cid == charger_id and action == "UpdateFirmware"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.slow
@pytest.mark.timeout(300)  # virtual minutes cost real seconds; on a loaded machine more of them
def test_a_maintenance_window_keeps_dispatch_inside_it(tmp_path: Path) -> None:
    RECEIVED.clear()
    config = NodeConfig(
        ocpp_host="127.0.0.1",
        ocpp_port=0,
        api_port=0,
        public_host="127.0.0.1",
        public_port=0,
        db_path=str(tmp_path / "windows.db"),
        workers=1,
        # Chargers here never send a Heartbeat: keep them online (not stale) however far virtual time goes.
        heartbeat_interval=86_400,
    )
    mock = trio.testing.MockClock(rate=1.0)
    out: dict[str, Any] = {}

    async def main() -> None:
        node = Node(config, clock=VirtualClock())
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            fleet = Fleet(f"ws://127.0.0.1:{node.gateway.ocpp_port}/ocpp")
            nursery.start_soon(trio.to_thread.run_sync, fleet.main)
            await trio.to_thread.run_sync(fleet.ready.wait)
            headers = {"Authorization": f"Bearer {node.first_admin_token}"}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{node.api_port}/api/v1",
                headers=headers,
                # Virtual time may leap while a request waits on a commit: no timeout; and no kept-alive
                # connection the server may have closed in a leap.
                timeout=None,
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as http:
                try:
                    await scenario(node, fleet, http)
                finally:
                    mock.autojump_threshold = float("inf")  # back to real time for the shutdown
                    mock.rate = 1.0
                    await fleet.run(fleet.stop)
            node.request_stop()

    async def scenario(node: Node, fleet: Fleet, http: httpx.AsyncClient) -> None:
        async def ok(r: Awaitable[httpx.Response], status: int = 200) -> Any:
            response = await r
            assert response.status_code == status, response.text
            return response.json()

        # Set up at real speed: the site with its window, the chargers placed, the image.
        for cid in CHARGERS:
            await fleet.run(fleet.connect, cid)
        await ok(
            http.post(
                "/sites", json={"id": "S", "phase_limits_a": [32, 32, 32], "time_zone": "Europe/Amsterdam"}
            ),
            201,
        )
        windows = await ok(
            http.put(
                "/sites/S/maintenance-windows", json={"windows": [{"cron": "0 2 * * *", "duration_s": 180}]}
            )
        )
        assert (at(windows["next"]["start_at"]), at(windows["next"]["end_at"])) == (OPENS, CLOSES)
        for cid, (_, placed) in CHARGERS.items():
            if placed:
                body = {"node_id": "S", "phases": "L1", "max_a": 16}
                await ok(http.put(f"/chargers/{cid}/placement", json=body))
        await fleet.run(fleet.disconnect, "LATE")  # away until the window has closed
        image = await ok(
            http.post(
                "/firmware/images", json={"version": "2.0", "location": "https://cdn.example/fw-2.0.bin"}
            ),
            201,
        )
        assert node.clock.now() < OPENS - timedelta(minutes=1)

        # From here the scheduler's time autojumps.
        mock.rate = 0.0
        mock.autojump_threshold = AUTOJUMP
        spec = {
            "image_id": image["id"],
            "selector": {"charger_ids": list(CHARGERS)},
            "groups": [{"percent": 100}],
        }
        campaign = await ok(http.post("/firmware/campaigns", json=spec), 201)
        url = f"/firmware/campaigns/{campaign['id']}"
        await ok(http.post(f"{url}/start"))
        with trio.fail_after(120):
            while not received("FREE"):  # noqa: ASYNC110 (the charger's thread fills the list)
                await trio.sleep(1)
        out["free"] = received("FREE")

        await trio.sleep_until((OPENS - timedelta(seconds=5) - T0).total_seconds())
        out["before"] = {cid: received(cid) for cid in CHARGERS}
        rows = (await ok(http.get(f"{url}/chargers")))["items"]
        out["before_states"] = {r["charger_id"]: r["state"] for r in rows}

        await trio.sleep_until((CLOSES + timedelta(seconds=10) - T0).total_seconds())
        out["during"] = {cid: received(cid) for cid in CHARGERS}

        await fleet.run(fleet.connect, "LATE")  # online again, after the window
        await trio.sleep_until((CLOSES + timedelta(minutes=2) - T0).total_seconds())
        out["after"] = {cid: received(cid) for cid in CHARGERS}
        rows = (await ok(http.get(f"{url}/chargers")))["items"]
        out["after_states"] = {r["charger_id"]: r["state"] for r in rows}
        out["campaign"] = await ok(http.get(url))

    trio.run(main, clock=mock)

    # A charger without a site is dispatched at once (well before the window: the campaign runs)...
    (free,) = out["free"]
    assert at(free["retrieve_date_time"]) < OPENS - timedelta(seconds=30)
    assert "install_date_time" not in free
    # ... the site's chargers not before the window opens ...
    assert out["before"] == {"W201": [], "W16": [], "FREE": [free], "LATE": []}
    assert out["before_states"] == {
        "W201": "pending",
        "W16": "pending",
        "FREE": "dispatched",
        "LATE": "pending",
    }
    # ... and inside it, each once, with its times inside it.
    (w201,) = out["during"]["W201"]
    assert OPENS <= at(w201["retrieve_date_time"]) < CLOSES
    assert OPENS <= at(w201["install_date_time"]) < CLOSES
    (w16,) = out["during"]["W16"]
    assert OPENS <= at(w16["retrieve_date"]) < CLOSES
    assert set(w16) == {"location", "retrieve_date"}  # 1.6 UpdateFirmware: no install time to bound
    # A charger of the site that came online after the window closed waits for the next one.
    assert out["after"]["LATE"] == [] and out["after_states"]["LATE"] == "pending"
    assert out["after"]["W201"] == [w201] and out["after"]["W16"] == [w16]
    assert out["campaign"]["state"] == "running"
