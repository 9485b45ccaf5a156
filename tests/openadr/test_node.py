"""The VEN inside a real node (real SQLite, the real demand-response service, the public listener for callbacks,
the operator API) against the stand-in VTN: the node registers its site with the EAN, a capacity event posted at
the VTN reaches the node by callback and becomes a demand-response event of source openadr on that site, a
withdrawn event is cancelled, and GET /api/v1/openadr shows it all."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import trio

from ampgate.load.model import SiteSpec, gs1_check_digit
from ampgate.node import Node

from .conftest import GAC_PROGRAM, capacity_event, run_node_with_vtn
from .vtn import StandInVtn

EAN = "87168712345678901" + str(gs1_check_digit("87168712345678901"))


async def eventually(check: Any) -> Any:
    """Wait (bounded by the test's fail_after) until `check()` is truthy: the node's own tasks move on their
    own time."""
    while not (value := check()):  # noqa: ASYNC110 (the node's tasks have no event for the test to wait on)
        await trio.sleep(0.02)
    return value


def test_a_capacity_event_from_the_vtn_lowers_the_site_through_the_nodes_demand_response(
    tmp_path: Path,
) -> None:
    async def scenario(node: Node, vtn: StandInVtn, _: trio.Nursery) -> None:
        await node.sites.create_site(SiteSpec(id="S1", phase_limits_a=(100.0, 100.0, 100.0), ean=EAN))
        program = await vtn.add_program(GAC_PROGRAM)
        # The next poll registers the site (by its EAN) and subscribes to the program.
        await eventually(lambda: vtn.subscriptions)
        (resource,) = vtn.resources.values()
        assert resource["resourceName"] == "S1"
        assert {"type": "POWER_SERVICE_LOCATION", "values": [EAN]} in resource["targets"]

        start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
        event = await vtn.put_event(
            capacity_event(
                str(program["id"]),
                kw=[35.0],
                start=start,
                targets=[{"type": "POWER_SERVICE_LOCATION", "values": [EAN]}],
            )
        )
        assert vtn.callbacks == [("POST", 200)]
        ref = f"{event['id']}/0"
        assert node.demand_response.external_refs("openadr") == {ref}

        api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{node.api_port}/api/v1",
            headers={"Authorization": f"Bearer {node.first_admin_token}"},
        )
        async with api:
            r = await api.get("/demand-response/events")
            assert r.status_code == 200, r.text
            (dr,) = r.json()["items"]
            assert (dr["node_id"], dr["limit_kw"], dr["source"], dr["ref"]) == (
                "S1",
                35.0,
                "openadr",
                ref,
            )
            assert dr["starts_at"] == start.isoformat().replace("+00:00", "Z")
            assert dr["ends_at"] == (start + timedelta(minutes=15)).isoformat().replace("+00:00", "Z")

            await vtn.delete_event(str(event["id"]))
            assert node.demand_response.external_refs("openadr") == set()

            status = (await api.get("/openadr")).json()
            assert status["configured"] is True and status["vtn_reachable"] is True
            assert (status["ven_name"], status["resources"], status["subscriptions"]) == (
                "NL-AMP",
                1,
                1,
            )
            assert status["rejects"] == 0 and status["safe_mode_active"] is False

    trio.run(functools.partial(run_node_with_vtn, tmp_path, scenario, within=60, openadr_poll_interval=0.2))
