"""The firmware-campaign benchmark at CI size: a real node, 300 simulated chargers updated by a campaign and then
again without one, every charger installed both times, nothing lost. No timing is asserted (CI machines vary); the
benchmark's own figures are printed for the log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHARGERS = 300


@pytest.mark.slow
@pytest.mark.timeout(120, func_only=True)
def test_small_campaign_updates_every_charger_with_and_without_a_campaign(tmp_path: Path) -> None:
    out = tmp_path / "campaign.json"
    cmd = [
        sys.executable, str(ROOT / "bench" / "campaign.py"), "--chargers", str(CHARGERS), "--away", "5",
        "--canary", "10", "--groups", "50,50", "--step", "0.1", "--reboot-delay", "0.2", "--idle-seconds", "1",
        "--smoke", "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=110, cwd=ROOT)
    print(proc.stdout[-2500:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["errors"] == {}
    c, b = r["campaign"], r["baseline"]
    assert c["counts"] == {"installed": CHARGERS}
    assert c["groups"] == [10, 150, 140]
    assert c["sims"]["updates_received"] == CHARGERS and c["sims"]["reboots"] == CHARGERS
    assert c["dispatch"]["updates_received"] == CHARGERS
    assert c["summary_ms"]["samples"] > 0 and not c["summary_ms"]["errors"]
    assert b["updated"] == CHARGERS and b["sims"]["updates_received"] == CHARGERS
    assert r["api"]["posts"] == 5 * 50
    assert c["node_counters"]["bus_events_lost"] == 0
    for phase in ("campaign", "baseline", "api_per_command"):
        assert r["cpu_per_charger"][phase]["control_plane_ms"] > 0, phase
