"""kill -9 at CI size (bench/kill9.py, 100 kills in the bench): the node SIGKILLed 10 times at random points under
`ampgate sim` transaction load (1.6 and 2.0.1), restarted on the same database each time; every transaction
message a charger saw acknowledged is there exactly once, no transaction id was handed out twice, every charger
told Accepted is still accepted and none got SecurityError."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(180, func_only=True)
def test_ten_kills_lose_no_acknowledged_transaction_message(tmp_path: Path) -> None:
    out = tmp_path / "kill9.json"
    cmd = [
        sys.executable, str(ROOT / "bench" / "kill9.py"), "--kills", "10", "--chargers", "20",
        "--min-up", "1", "--max-up", "3", "--settle", "5", "--seed", "7",
        "--workdir", str(tmp_path / "run"), "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=170, cwd=ROOT)
    print(proc.stdout[-2500:])
    assert out.exists(), proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["kills"] == 10
    # Enough happened to mean something: transactions started and stopped, readings acknowledged in both
    # versions, across the kills.
    assert r["acked"].get("StartTransaction", 0) > 5 and r["acked"].get("StopTransaction", 0) > 0
    assert r["acked"].get("TransactionEvent", 0) > 50 and r["acked"].get("MeterValues", 0) > 50
    assert r["accepted_chargers"] == 20
    assert r["lost"] == {} and r["lost_examples"] == []
    assert r["doubled"] == 0 and r["reused_ids"] == []
    assert r["accepted_forgotten"] == []
    assert r["call_errors_seen"].get("SecurityError", 0) == 0
    assert r["ok"] and proc.returncode == 0, proc.stderr[-3000:]
