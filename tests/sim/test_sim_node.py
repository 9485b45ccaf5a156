"""`ampgate sim` against a real node (both protocol versions): every simulated charger boots, heartbeats and
finishes a transaction, and the report's counters equal what the node recorded in its store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .nodes import all_pages

CHARGERS = 20
# Heartbeats every second, and a transaction about every 0.1 s of a charger's idle time (exponential gaps), so
# every charger has finished at least one 2 s transaction well before the run's 8 s are up.
SCENARIO = """
[run]
duration = 8
heartbeat_interval = 1

[transactions]
per_hour = 36000
duration = 2
meter_period = 1
"""


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
def test_every_charger_boots_heartbeats_and_finishes_a_transaction(node, tmp_path, protocol):
    with node.api() as api:
        assert api.post("/id-tokens", json={"id_token": "SIMTAG", "status": "Accepted"}).status_code == 201
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "report.json"
    prefix = f"SIM{protocol.replace('.', '')}-"
    args = [
        "sim", "--url", node.ocpp_url, "--chargers", str(CHARGERS), "--protocol", protocol,
        "--scenario-file", str(scenario), "--id-prefix", prefix, "--seed", "1", "--processes", "2",
        "--report", str(out), "--quiet",
    ]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "ampgate.cli", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    report = json.loads(out.read_text())

    assert report["chargers"] == CHARGERS and report["processes"] == 2
    assert report["errors"] == {}, report["error_details"]
    assert (
        report["ever_booted"] == CHARGERS and report["connected"] == CHARGERS and report["booted"] == CHARGERS
    )
    assert report["responses"]["BootNotification"] == {"Accepted": CHARGERS}
    assert report["latency_ms"]["BootNotification"]["count"] == CHARGERS
    assert report["latency_ms"]["Heartbeat"]["count"] >= CHARGERS
    assert report["latency_ms"]["Heartbeat"]["p99"] > 0
    assert report["transactions"]["refused"] == 0
    assert report["messages_per_s"] > 0 and report["boots_per_s"] > 0

    chargers = {c["id"]: c for c in all_pages(node, "/chargers") if c["id"].startswith(prefix)}
    assert set(chargers) == {f"{prefix}{i}" for i in range(CHARGERS)}
    wire = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}[protocol]
    for c in chargers.values():
        assert c["protocol"] == wire and c["last_boot_at"] is not None
        assert (c["vendor"], c["model"], c["firmware"]) == ("ampgate", "sim", "1.0.0")

    txs = [t for t in all_pages(node, "/transactions") if t["charger_id"].startswith(prefix)]
    stopped = [t for t in txs if t["stopped_at"] is not None]
    assert len(txs) == report["transactions"]["started"]
    assert len(stopped) == report["transactions"]["stopped"]
    assert {t["charger_id"] for t in stopped} == set(chargers)
    assert all(t["id_token"] == "SIMTAG" for t in txs)
    assert all(t["energy_wh"] is not None and t["energy_wh"] > 0 for t in stopped)
