"""The connections benchmark at CI size: every charger connects, boots and stays; nothing is dropped.

No timing is asserted (CI machines vary); the benchmark's own figures are printed for the log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 2000
REQUIRED_KEYS = (
    "connections_held",
    "handshakes_per_s",
    "rss_kb_per_conn",
    "workers",
    "heartbeats_per_s",
    "heartbeat_p50_ms",
    "heartbeat_p99_ms",
    "limit_heartbeats_per_s",
)


@pytest.mark.slow
# The limit server's build (the `limit_binary` fixture, a cold cargo build on a fresh clone) is not timed.
@pytest.mark.timeout(110, func_only=True)
@pytest.mark.usefixtures("limit_binary")
def test_small_run_holds_every_connection(tmp_path: Path) -> None:
    out = tmp_path / "connections.json"
    cmd = [
        sys.executable, str(ROOT / "bench" / "connections.py"),
        "--connections", str(CONNECTIONS), "--duration", "2", "--hold", "2", "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=100, cwd=ROOT)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    for key in REQUIRED_KEYS:
        assert key in r, key
    assert r["booted"] == CONNECTIONS
    assert r["connections_held"] == CONNECTIONS
    assert r["limit_booted"] == CONNECTIONS
    assert r["errors"] == {}
    assert r["dropped"] == 0
    assert r["heartbeats_per_s"] > 0 and r["limit_heartbeats_per_s"] > 0
    assert r["rss_kb_per_conn"] is not None
