"""The bench load's MeterValues against a real node, both protocol versions: every charger starts a transaction
of the load's own, and the node stores one energy sample per load message it answered, exactly, in those
transactions (none outside them, none unanswered)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from typing import Any

import pytest

from .nodes import all_pages, ts

CHARGERS = 10
ENERGY = "Energy.Active.Import.Register"
# The load's start leaves time to boot and start the transactions; the run is short, the load at saturation
# (or a modest rate) still sends thousands of readings.
DURATION = 4.0
LOAD_START = 1.5
SIM_TIMEOUT = 90.0


def run_load(node, tmp_path, protocol: str, rate: float, prefix: str, bench: bool = False) -> dict[str, Any]:
    """`bench`: the unchecked bench mode with a cap of 4 load CALLs outstanding over the fleet."""
    scenario = tmp_path / "load.toml"
    scenario.write_text(
        f"[run]\nduration = {DURATION}\ncheck = {'false' if bench else 'true'}\n"
        f'[load]\nmessage = "MeterValues"\nrate = {rate}\nstart = {LOAD_START}\ninflight = {4 if bench else 0}\n'
    )
    out = tmp_path / "report.json"
    args = [
        "sim", "--url", node.ocpp_url, "--chargers", str(CHARGERS), "--protocol", protocol,
        "--scenario-file", str(scenario), "--id-prefix", prefix, "--seed", "1", "--processes", "2",
        "--report", str(out), "--quiet",
    ]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "ampgate.cli", *args], capture_output=True, text=True, timeout=SIM_TIMEOUT
    )
    assert run.returncode == 0, run.stderr + run.stdout
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("protocol", "rate", "bench"),
    [("1.6", 0, False), ("2.0.1", 0, False), ("2.0.1", 400, False), ("1.6", 0, True)],
)
def test_every_answered_load_reading_is_stored_in_the_load_transactions(
    node, tmp_path, protocol, rate, bench
):
    with node.api() as api:
        assert api.post("/id-tokens", json={"id_token": "SIMTAG", "status": "Accepted"}).status_code == 201
    prefix = f"LOAD{protocol.replace('.', '')}{'B' if bench else ''}-"
    report = run_load(node, tmp_path, protocol, rate, prefix, bench)
    assert report["checked"] is (not bench)

    assert report["errors"] == {}, report["error_details"]
    assert report["booted"] == CHARGERS
    load = report["load"]
    assert load["message"] == "MeterValues"
    assert load["action"] == ("MeterValues" if protocol == "1.6" else "TransactionEvent")
    assert load["transactions"] == {"started": CHARGERS, "stopped": 0, "refused": 0}
    answered = load["answered"]
    assert answered > 10 * CHARGERS, load  # every charger sent many
    assert load["sent"] == answered
    # The load's own round trips, apart from its transaction starts.
    assert load["latency_ms"][load["action"]]["count"] == answered
    if protocol == "2.0.1":
        assert report["latency_ms"]["TransactionEvent"]["count"] == answered + CHARGERS

    txs = [t for t in all_pages(node, "/transactions") if t["charger_id"].startswith(prefix)]
    # One transaction per charger, on connector 1 (EVSE 1), with the run's id tag, still open.
    assert sorted(t["charger_id"] for t in txs) == sorted(f"{prefix}{i}" for i in range(CHARGERS))
    for t in txs:
        assert t["connector_id"] == 1 and t["id_token"] == "SIMTAG" and t["stopped_at"] is None, t
        if protocol == "2.0.1":
            assert t["evse_id"] == 1 and t["transaction_id"].startswith("L"), t

    stored = 0
    for t in txs:
        energy = all_pages(node, f"/transactions/{t['id']}/samples", measurand=ENERGY)
        assert energy, t
        stored += len(energy)
        # Strictly later each time; the register never goes back.
        for a, b in itertools.pairwise(energy):
            assert ts(a["at"]) < ts(b["at"]), (a, b)
            assert a["value"] <= b["value"], (a, b)
    assert stored == answered
