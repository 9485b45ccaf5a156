"""Simulated chargers honour the central system's boot answer: Pending and Rejected chargers send nothing but
their BootNotification again after the interval they were given, and are not counted as booted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCENARIO = """
[run]
duration = 5
heartbeat_interval = 0.5

[transactions]
per_hour = 36000
duration = 1
meter_period = 0.5
"""


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["pending", "reject"])
def test_pending_and_rejected_chargers_boot_again_after_the_interval_and_send_nothing_else(
    node_factory, tmp_path, policy
):
    node = node_factory("--unknown-boot", policy, "--boot-retry-interval", "2")
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "report.json"
    args = [
        "sim", "--url", node.ocpp_url, "--chargers", "5", "--scenario-file", str(scenario),
        "--id-prefix", f"BP{policy}", "--report", str(out), "--quiet",
    ]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "ampgate.cli", *args], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr + run.stdout
    report = json.loads(out.read_text())

    status = {"pending": "Pending", "reject": "Rejected"}[policy]
    boots = report["responses"]["BootNotification"]
    # Boots at 0, 2 and 4 s: three each, every one answered with the policy's status, none accepted.
    assert set(boots) == {status}
    assert boots[status] == 15, boots
    assert report["booted"] == 0 and report["ever_booted"] == 0 and report["connected"] == 5
    # Nothing but BootNotification went out: no heartbeats, no status, no transactions.
    assert set(report["latency_ms"]) == {"BootNotification", "connect"}, report["latency_ms"]
    assert report["messages_sent"] == 15
    assert report["errors"] == {}, report["error_details"]
