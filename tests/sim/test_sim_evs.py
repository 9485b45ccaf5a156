"""Simulated EVs against a real node (2.0.1): one-phase EVs on L2 draw only there (per-phase current samples
stored by the node), and each reports its charging needs with NotifyEVChargingNeeds, which the node keeps with
the transaction."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .nodes import all_pages

CHARGERS = 4
SCENARIO = """
[run]
duration = 6
heartbeat_interval = 5

[transactions]
per_hour = 36000
duration = 3
meter_period = 1
power_w = 22000

[evs]
charging_needs = true

[[evs.mix]]
phases = "L2"
max_current_a = 16
capacity_kwh = 50
soc_start = 30
departure_after_s = 7200
energy_need_kwh = 20
"""


@pytest.mark.slow
def test_one_phase_evs_draw_on_their_phase_and_report_their_needs(node, tmp_path):
    with node.api() as api:
        assert api.post("/id-tokens", json={"id_token": "SIMTAG", "status": "Accepted"}).status_code == 201
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "report.json"
    args = [
        "sim", "--url", node.ocpp_url, "--chargers", str(CHARGERS), "--protocol", "2.0.1",
        "--scenario-file", str(scenario), "--id-prefix", "EV-", "--seed", "3", "--report", str(out), "--quiet",
    ]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "ampgate.cli", *args], capture_output=True, text=True, timeout=90
    )
    assert run.returncode == 0, run.stderr + run.stdout
    report = json.loads(out.read_text())
    assert report["errors"] == {}, report["error_details"]
    # The node has no load management yet: it answers the needs Rejected (NotEnabled).
    assert report["responses"].get("NotifyEVChargingNeeds") == {
        "Rejected": report["transactions"]["started"]
    }, report["responses"]

    txs = [t for t in all_pages(node, "/transactions") if t["charger_id"].startswith("EV-")]
    assert txs
    drawing = 0
    for t in txs:
        with node.api() as api:
            needs = api.get(
                f"/chargers/{t['charger_id']}/charging-reports",
                params={"kind": "ev_charging_needs", "transaction_id": t["id"]},
            ).json()["items"]
        currents = {
            s["phase"]: s["value"]
            for s in all_pages(node, f"/transactions/{t['id']}/samples", measurand="Current.Import")
            if s["value"] > 0
        }
        if currents:  # a transaction that ended before its first reading has none
            drawing += 1
            assert currents == {"L2": 16.0}
        assert len(needs) == 1
        ac = needs[0]["payload"]["chargingNeeds"]["acChargingParameters"]
        assert (ac["energyAmount"], ac["evMaxCurrent"]) == (20_000, 16)
        assert needs[0]["payload"]["chargingNeeds"]["requestedEnergyTransfer"] == "AC_single_phase"
    assert drawing > 0  # some readings were taken, and they were on L2 only
