"""The reconnect-storm benchmark at CI size, against ampgate (admission control at its defaults) and one peer:
every stormer comes back after every storm, the stayers stay, and nothing fails. No timing is asserted (CI
machines vary); the benchmark's own figures are printed for the log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 1000


@pytest.mark.slow
@pytest.mark.timeout(120, func_only=True)
def test_small_storms_bring_every_charger_back(tmp_path: Path) -> None:
    out = tmp_path / "storm.json"
    cmd = [
        sys.executable, str(ROOT / "bench" / "storm.py"), "--connections", str(CONNECTIONS),
        "--backoff", "0,2", "--storm-timeout", "6", "--systems", "ampgate,websockets",
        "--smoke", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=110, cwd=ROOT)
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["errors"] == {}
    assert set(r["systems"]) == {"ampgate", "websockets"}
    stormers = CONNECTIONS - r["stayers"]
    for label, system in r["systems"].items():
        assert system["booted"] == CONNECTIONS, label
        assert [s["backoff_s"] for s in system["storms"]] == [0, 2], label
        for s in system["storms"]:
            assert s["dropped"] == stormers and s["back"] == stormers, (label, s)
            assert s["stayers_open_at_end"] == r["stayers"], (label, s)
            assert s["stayer_heartbeats"] > 0, (label, s)
    # A peer takes every upgrade; 1,000 chargers are far under ampgate's default budget.
    assert all(s["refused_503"] == 0 for system in r["systems"].values() for s in system["storms"])
