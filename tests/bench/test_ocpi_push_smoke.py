"""The OCPI push benchmark at CI size: a node with OCPI, 200 simulated chargers changing statuses, the bench's
eMSP receiver registered: every status change of the measured phase reaches the eMSP and every EVSE it holds at
the end equals what the node publishes. No timing is asserted (CI machines vary); the figures are printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHARGERS = 200


@pytest.mark.slow
@pytest.mark.timeout(90, func_only=True)
def test_every_status_change_reaches_the_emsp(tmp_path: Path) -> None:
    out = tmp_path / "ocpi-push.json"
    cmd = [
        sys.executable, str(ROOT / "bench" / "ocpi_push.py"), "--chargers", str(CHARGERS), "--rate", "100",
        "--phase", "2", "--warmup", "0", "--settle-window", "1", "--emsp-blast", "0.3",
        "--heartbeat-rate", "100", "--smoke", "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=80, cwd=ROOT)
    print(proc.stdout[-2500:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["errors"] == {} and r["booted"] == CHARGERS
    fresh = r["freshness"]
    assert fresh["delivered"] > 0 and fresh["undelivered"] == 0
    assert r["final_check"]["evses_at_node"] == CHARGERS and r["final_check"]["different"] == 0
    assert r["phases"]["with_pushes"]["pushes_received"] > 0
    assert r["phases"]["without_pushes"]["pushes_received"] == 0
