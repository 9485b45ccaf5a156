"""Load management against a real node, with `ocpp` package charge points of both versions (schema validation on,
calls with suppress=False): the fallback profiles at boot, each session's TxProfile as sessions come and go, a
demand-response event lowering the site, a charger going offline counted at its failsafe draw, and the site's
load view. Every profile a charge point receives is validated against its version's schema by the `ocpp`
package before our handler sees it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.ocpp_clients import ocpp_charge_point

NOW = "2026-11-30T07:00:00Z"
LIMIT_A = 32.0


class Point(ChargePoint16):
    profiles: list[dict[str, Any]]

    @on(Action16.set_charging_profile)
    async def on_profile(self, connector_id, cs_charging_profiles, **_):
        self.__dict__.setdefault("profiles", []).append(
            {"connector_id": connector_id, **cs_charging_profiles}
        )
        return result16.SetChargingProfile(status="Accepted")


class Station(ChargePoint201):
    profiles: list[dict[str, Any]]

    @on(Action201.set_charging_profile)
    async def on_profile(self, evse_id, charging_profile, **_):
        self.__dict__.setdefault("profiles", []).append({"evse_id": evse_id, **charging_profile})
        return result201.SetChargingProfile(status="Accepted")


def tx_limits(cp: Any) -> list[float]:
    """The limits of the TxProfiles `cp` received, in order."""
    out = []
    for p in cp.__dict__.get("profiles", []):
        if p["charging_profile_purpose"] == "TxProfile":
            schedule = p["charging_schedule"]
            schedule = schedule[0] if isinstance(schedule, list) else schedule
            out.append(float(schedule["charging_schedule_period"][0]["limit"]))
    return out


async def until(what: str, check: Any, within: float = 15.0, show: Any = None) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {within} s" + (f": {show()}" if show else ""))
        await asyncio.sleep(0.05)


def test_sessions_share_the_site_and_follow_demand_response_and_the_failsafe(node_factory) -> None:
    node = node_factory("--load-tick", "0.2", "--load-min-interval", "0.2", "--load-min-hold", "0")
    with node.api() as api:
        assert api.post("/id-tokens", json={"id_token": "LMTAG", "status": "Accepted"}).status_code == 201
        r = api.post("/sites", json={"id": "LMSITE", "phase_limits_a": [LIMIT_A] * 3})
        assert r.status_code == 201, r.text
        for cp in ("LM16", "LM201"):
            assert api.post("/chargers", json={"id": cp}).status_code in (200, 201)
            r = api.put(
                f"/chargers/{cp}/placement", json={"node_id": "LMSITE", "phases": "L1L2L3", "max_a": 32}
            )
            assert r.status_code == 200, r.text

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        http = httpx.AsyncClient(
            base_url=node.api_url, headers={"Authorization": f"Bearer {node.admin_token}"}, timeout=30
        )
        async with (
            http,
            ocpp_charge_point(Point, node.ocpp_url, "LM16", "ocpp1.6", boot=True) as p16,
        ):
            # Boot: the charger-wide maximum and the default for every transaction, on connector 0.
            boot = await until(
                "boot profiles", lambda: len(p16.__dict__.get("profiles", [])) >= 2 and p16.profiles
            )
            out["boot16"] = [(p["connector_id"], p["charging_profile_purpose"]) for p in boot]
            out["boot16_limits"] = [
                float(p["charging_schedule"]["charging_schedule_period"][0]["limit"]) for p in boot
            ]
            start = await p16.call(
                call16.StartTransaction(connector_id=1, id_tag="LMTAG", meter_start=0, timestamp=NOW),
                suppress=False,
            )
            tx16 = start.transaction_id
            # Alone on the site: the whole 32 A (its rating).
            await until("a first TxProfile", lambda: tx_limits(p16))
            first = p16.profiles[-1]
            out["first16"] = (first["connector_id"], first["transaction_id"], tx_limits(p16)[-1])

            async with ocpp_charge_point(Station, node.ocpp_url, "LM201", "ocpp2.0.1", boot=True) as s201:
                await s201.call(
                    call201.TransactionEvent(
                        event_type="Started",
                        timestamp=NOW,
                        trigger_reason="CablePluggedIn",
                        seq_no=0,
                        transaction_info={"transaction_id": "lm-tx-1"},
                        evse={"id": 1, "connector_id": 1},
                        id_token={"id_token": "LMTAG", "type": "ISO14443"},
                    ),
                    suppress=False,
                )
                # A placed charger's EV needs are Accepted: its share comes as a TxProfile [K15].
                needs = await s201.call(
                    call201.NotifyEVChargingNeeds(
                        evse_id=1,
                        charging_needs={
                            "requested_energy_transfer": "AC_three_phase",
                            "departure_time": (datetime.now(UTC) + timedelta(hours=5)).isoformat(),
                            "ac_charging_parameters": {
                                "energy_amount": 20000,
                                "ev_min_current": 6,
                                "ev_max_current": 32,
                                "ev_max_voltage": 400,
                            },
                        },
                    ),
                    suppress=False,
                )
                out["needs"] = needs.status
                # Two sessions under 32 A per phase: 16 A each; the 1.6 one is lowered at once.
                await until(
                    "the share of two",
                    lambda: tx_limits(p16)[-1:] == [16.0] and tx_limits(s201)[-1:] == [16.0],
                )
                p = [x for x in s201.profiles if x["charging_profile_purpose"] == "TxProfile"][-1]
                out["tx201"] = (p["evse_id"], p["transaction_id"], p["id"])
                view = (await http.get("/sites/LMSITE/load")).json()
                out["view"] = view

                # Demand response: the site may draw 7.36 kW (about 10.7 A per phase over three phases): both
                # sessions drop to what fits, rounded down to 0.1 A... below 6 A each, so one of them pauses.
                ends = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
                r = await http.post(
                    "/demand-response/events",
                    json={
                        "node_id": "LMSITE",
                        "limit_kw": 7.36,
                        "starts_at": datetime.now(UTC).isoformat(),
                        "ends_at": ends,
                    },
                )
                assert r.status_code == 201, r.text
                event_id = r.json()["id"]
                await until(
                    "the demand-response limit",
                    lambda: sorted([tx_limits(p16)[-1], tx_limits(s201)[-1]]) == [0.0, 10.6],
                    show=lambda: (tx_limits(p16), tx_limits(s201)),
                )
                out["dr"] = sorted([tx_limits(p16)[-1], tx_limits(s201)[-1]])
                r = await http.post(f"/demand-response/events/{event_id}/cancel")
                assert r.status_code == 200 and r.json()["state"] == "cancelled"
                await until(
                    "the end of the event", lambda: tx_limits(p16)[-1] == 16.0 and tx_limits(s201)[-1] == 16.0
                )

            # The 2.0.1 station went away with its session open: it is counted at its rating (32 A), so the 1.6
            # one has nothing left and is paused rather than pushed over the site's limit.
            await until("the failsafe", lambda: tx_limits(p16)[-1] == 0.0)
            out["after_offline"] = tx_limits(p16)[-1]
            view = (await http.get("/sites/LMSITE/load")).json()
            out["offline_view"] = {a["charger_id"]: (a["online"], a["limit_a"]) for a in view["allocations"]}
            await p16.call(
                call16.StopTransaction(transaction_id=tx16, meter_stop=1000, timestamp=NOW), suppress=False
            )
            out["tx16"] = tx16
        return out

    out = asyncio.run(scenario())
    assert out["boot16"] == [(0, "ChargePointMaxProfile"), (0, "TxDefaultProfile")]
    assert out["boot16_limits"] == [32.0, 6.0]
    assert out["first16"] == (1, out["tx16"], 32.0)
    assert out["tx201"] == (1, "lm-tx-1", 9_100_001)
    assert out["needs"] == "Accepted"
    site, *_ = out["view"]["nodes"]
    assert site["id"] == "LMSITE" and site["limit_a"] == [32.0, 32.0, 32.0]
    assert site["allocated_a"] == [32.0, 32.0, 32.0]
    assert sorted((a["charger_id"], a["limit_a"], a["paused"]) for a in out["view"]["allocations"]) == [
        ("LM16", 16.0, False),
        ("LM201", 16.0, False),
    ]
    assert out["dr"] == [0.0, 10.6]
    assert out["after_offline"] == 0.0
    assert out["offline_view"]["LM201"][0] is False
