"""OpenADR in a closed loop: a capacity-limit event from the (stand-in) VTN lowers a site whose `ampgate sim`
chargers obey the profiles they get, and the VEN reports what the site drew (DEMAND, USAGE) back to the VTN.

A real node (in process: real SQLite, the gateway with real sockets, the public listener for the VTN's callback)
with one site of 20 chargers on 100 A per phase, all with EVs wanting 32 A on three phases: the site sits at its
limit (about 69 kW). The VTN then sends IMPORT_CAPACITY_LIMIT 30 kW for an interval starting now: within two
ticks and a meter period the site's measured draw is under 30 kW, and after the interval ends the VTN holds a
report for the event with the site's DEMAND (kW) and USAGE (kWh) of that interval.
"""

from __future__ import annotations

import functools
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ampgate.load.model import PlacementSpec, SiteSpec, gs1_check_digit
from ampgate.node import Node

from .conftest import GAC_PROGRAM, capacity_event, run_node_with_vtn
from .vtn import StandInVtn

EAN = "87168712345678901" + str(gs1_check_digit("87168712345678901"))
CHARGERS = 20
LIMIT_KW = 30.0
EVENT_S = 20
SCENARIO = """
[run]
duration = 75
connectors = 1
[transactions]
per_hour = 3600
duration = 300
meter_period = 1
[evs]
[[evs.mix]]
share = 1
phases = "3"
max_current_a = 32
"""


async def eventually(check: Any, within: float) -> Any:
    with trio.fail_after(within):
        while not (value := check()):  # noqa: ASYNC110 (the node's tasks have no event for the test to wait on)
            await trio.sleep(0.1)
    return value


@pytest.mark.slow
def test_a_vtn_capacity_event_lowers_a_charging_site_and_its_usage_is_reported(tmp_path: Path) -> None:
    scenario_file = tmp_path / "oadr.toml"
    scenario_file.write_text(SCENARIO)

    async def scenario(node: Node, vtn: StandInVtn, nursery: trio.Nursery) -> None:
        await node.sites.create_site(SiteSpec(id="OA", phase_limits_a=(100.0, 100.0, 100.0), ean=EAN))
        for i in range(CHARGERS):
            await node.api_services.chargers.register(f"OA-{i}", None)  # type: ignore[attr-defined]
            await node.sites.place(f"OA-{i}", PlacementSpec(node_id="OA", phases="L1L2L3", max_a=32.0))
        api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{node.api_port}/api/v1",
            headers={"Authorization": f"Bearer {node.first_admin_token}"},
        )
        async with api:
            r = await api.post("/id-tokens", json={"id_token": "SIMTAG", "status": "Accepted"})
            assert r.status_code == 201, r.text
        program = await vtn.add_program(GAC_PROGRAM)
        await eventually(lambda: vtn.subscriptions, 30)

        args = [
            sys.executable, "-m", "ampgate.cli", "sim",
            "--url", f"ws://127.0.0.1:{node.gateway.ocpp_port}/ocpp", "--chargers", str(CHARGERS),
            "--protocol", "2.0.1", "--scenario-file", str(scenario_file), "--id-prefix", "OA-",
            "--seed", "3", "--processes", "1", "--quiet",
        ]  # fmt: skip
        sim = trio.CancelScope()

        async def run_sim() -> None:
            with sim:
                await trio.run_process(args, capture_stdout=True, capture_stderr=True, check=False)

        nursery.start_soon(run_sim)

        # Every EV charging: the site at its limit, far above the event's.
        await eventually(lambda: (node.load.measured_kw("OA") or 0.0) > 50.0, 40)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        event = await vtn.put_event(
            capacity_event(
                str(program["id"]),
                kw=[LIMIT_KW],
                start=start,
                duration=f"PT{EVENT_S}S",
                targets=[{"type": "POWER_SERVICE_LOCATION", "values": [EAN]}],
            )
        )
        # Two ticks and a meter period after the start (and a second for the round trips), the site is under it.
        await trio.sleep_until(trio.current_time() + (start - datetime.now(UTC)).total_seconds() + 4.0)
        drawn = []
        while datetime.now(UTC) < start + timedelta(seconds=EVENT_S - 1):
            drawn.append(node.load.measured_kw("OA"))
            await trio.sleep(0.5)
        assert drawn and max(d or 0.0 for d in drawn) <= LIMIT_KW * 1.01, drawn
        assert min(d or 0.0 for d in drawn) > LIMIT_KW * 0.5  # lowered to the limit, not switched off

        # After the interval, the VEN reports the event's DEMAND and USAGE for the site.
        def reported() -> dict[str, Any] | None:
            for report in vtn.reports:
                if report.get("eventID") == event["id"]:
                    return report
            return None

        report = await eventually(reported, 40)
        values = {
            p["type"]: v
            for resource in report["resources"]
            for interval in resource["intervals"]
            for p in interval["payloads"]
            for v in p["values"]
        }
        assert report["resources"][0]["resourceName"] == "OA"
        assert 0.0 < values["DEMAND"] <= LIMIT_KW * 1.2, values
        # Usage over a 20 s interval at up to 30 kW: at most 30 kW × 20 s ≈ 0.17 kWh (minute means: some slack).
        assert 0.0 < values["USAGE"] <= 69.0 * EVENT_S / 3600, values
        sim.cancel()

    trio.run(
        functools.partial(
            run_node_with_vtn,
            tmp_path,
            scenario,
            within=120,
            openadr_poll_interval=1.0,
            load_min_interval=2.0,
        )
    )
