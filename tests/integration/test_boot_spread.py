"""Boot spreading against a real node, with the `ocpp` package's charge points over `websockets`: boots past the
threshold within a second are answered Pending with an interval in [1, window]; the node sends those chargers
TriggerMessage BootNotification as room frees; their next boot is Accepted, and in the end every charger is.
With the threshold 0 nothing is spread. And the flags' checks."""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
import websockets
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from ampgate.cli import main

THRESHOLD = 2
WINDOW = 3
FLEET = 7
# Long enough for the node to trigger every waiting charger (a window's worth of room per second) on a loaded
# 2-core box.
SETTLE_S = 30.0


class Tracking:
    """What a test charger saw: its boot answers in order and the TriggerMessages it got."""

    def init_tracking(self) -> None:
        self.boots: list[tuple[str, int]] = []
        self.triggers: list[str] = []
        self.accepted = asyncio.Event()

    def note_boot(self, status: str, interval: int) -> None:
        self.boots.append((status, interval))
        if status == "Accepted":
            self.accepted.set()


class Charger201(Tracking, ChargePoint201):
    async def boot(self) -> None:
        r = await self.call(
            call201.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"),
            suppress=False,
        )
        self.note_boot(r.status, r.interval)

    @on(Action201.trigger_message)
    async def on_trigger_message(self, requested_message, **_):
        self.triggers.append(requested_message)
        return result201.TriggerMessage(status="Accepted")

    @after(Action201.trigger_message)
    async def after_trigger_message(self, requested_message, **_):
        if requested_message == "BootNotification":
            await self.boot()


class Charger16(Tracking, ChargePoint16):
    async def boot(self) -> None:
        r = await self.call(
            call16.BootNotification(charge_point_model="M", charge_point_vendor="V"), suppress=False
        )
        self.note_boot(r.status, r.interval)

    @on(Action16.trigger_message)
    async def on_trigger_message(self, requested_message, **_):
        self.triggers.append(requested_message)
        return result16.TriggerMessage(status="Accepted")

    @after(Action16.trigger_message)
    async def after_trigger_message(self, requested_message, **_):
        if requested_message == "BootNotification":
            await self.boot()


async def storm(url: str, fleet: int) -> list[Tracking]:
    """Connect `fleet` chargers (every third one 1.6), then boot them all at once; wait until each is Accepted
    (or SETTLE_S passes)."""
    async with contextlib.AsyncExitStack() as stack:
        chargers: list[Charger201 | Charger16] = []
        tasks = []
        for i in range(fleet):
            cid = f"STORM{i}"
            if i % 3 == 2:
                ws = await stack.enter_async_context(
                    websockets.connect(f"{url}/{cid}", subprotocols=["ocpp1.6"])
                )
                cp: Charger201 | Charger16 = Charger16(cid, ws)
            else:
                ws = await stack.enter_async_context(
                    websockets.connect(f"{url}/{cid}", subprotocols=["ocpp2.0.1"])
                )
                cp = Charger201(cid, ws)
            cp.init_tracking()
            chargers.append(cp)
            tasks.append(asyncio.create_task(cp.start()))
        await asyncio.gather(*(cp.boot() for cp in chargers))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(cp.accepted.wait() for cp in chargers)), SETTLE_S)
        for t in tasks:
            t.cancel()
        return list(chargers)


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m is not None, name
    return float(m.group(1))


def test_a_storm_past_the_threshold_is_spread_then_triggered_and_everyone_accepted(node_factory) -> None:
    node = node_factory("--boot-spread-threshold", str(THRESHOLD), "--boot-spread-window", str(WINDOW))
    chargers = asyncio.run(storm(node.ocpp_url, FLEET))

    first = [cp.boots[0] for cp in chargers]
    spread = [cp for cp in chargers if cp.boots[0][0] == "Pending"]
    # All boots came within a second (connected first, booted together): at most THRESHOLD Accepted at once.
    assert sum(status == "Accepted" for status, _ in first) <= THRESHOLD
    assert len(spread) >= FLEET - THRESHOLD, first
    assert all(1 <= interval <= WINDOW for _, interval in (cp.boots[0] for cp in spread)), first
    # The node asked each of them to boot again (these chargers never boot on their own), and the boot that
    # followed was Accepted; in the end every charger is.
    for cp in spread:
        assert "BootNotification" in cp.triggers, (cp.id, cp.boots, cp.triggers)
    assert all(cp.boots[-1] == ("Accepted", 300) for cp in chargers), [cp.boots for cp in chargers]
    # Those Accepted at once were never triggered.
    assert all(not cp.triggers for cp in chargers if cp.boots[0][0] == "Accepted")

    with node.api() as api:
        summary = api.get("/connectivity/summary").json()
        metrics = api.get(f"http://127.0.0.1:{node.api_port}/metrics").text
    assert summary["boot_spread_pending"] == 0
    assert metric(metrics, "ampgate_boots_spread_total") == len(spread)
    assert metric(metrics, "ampgate_boot_spread_pending") == 0
    assert metric(metrics, 'ampgate_boots_total{status="Accepted"}') == FLEET


def test_threshold_zero_spreads_nothing(node_factory) -> None:
    node = node_factory("--boot-spread-threshold", "0")
    chargers = asyncio.run(storm(node.ocpp_url, FLEET))
    assert [cp.boots for cp in chargers] == [[("Accepted", 300)]] * FLEET
    assert not any(cp.triggers for cp in chargers)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--boot-spread-threshold", "-1"], "--boot-spread-threshold: expected a whole number >= 0, got -1"),
        (["--boot-spread-threshold", "x"], "--boot-spread-threshold: expected a whole number, got 'x'"),
        (["--boot-spread-window", "0"], "--boot-spread-window: expected a whole number >= 1, got 0"),
        (["--boot-spread-window", "-5"], "--boot-spread-window: expected a whole number >= 1, got -5"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", *args])
    assert done.value.code == 2
    assert message in capsys.readouterr().err
