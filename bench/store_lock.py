"""A locked database under load: what the node holds while another process keeps SQLite's write lock, with the
write queue bounded (`--store-queue-max`) and, in the same run, bounded so loosely it never binds.

    flock /tmp/bench.lock python bench/store_lock.py [--chargers 2000] [--bound 500] [--lock-s 8] [--json OUT]

Load: the simulator's MeterValues bench load at saturation (docs/simulator.md, "The bench load"): every charger
runs a transaction on connector 1 and keeps one MeterValues in it outstanding, each answered once its sample is
committed. After --warm-s s of load the bench takes the database's write lock (`BEGIN EXCLUSIVE` on its own
connection) for --lock-s s, then releases it and lets the load go on for --settle-s s. Every 0.25 s it samples the
node's /metrics (the store's write-queue depth, replies' producers that waited, degraded) and /api/v1/health and
the control-plane process's RSS (/proc/PID/status VmRSS; the gateway worker is another process).

Figures per setting: the peak write-queue depth and RSS growth while locked, how long until the node said
degraded after the lock and ok after the release, how many times the pump (or an awaited write) waited for room,
and the check that nothing acknowledged was lost: the samples in the database are at least the MeterValues the
simulator saw answered. Prints JSON and a table; --json writes the JSON (bench/results/store-lock.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from nodeproc import NodeProc, finish_sim, start_node, start_sim

# The loosest bound the node accepts: with it the queue never binds at these fleet sizes (the comparison).
UNBOUNDED = 1_000_000
SAMPLE_S = 0.25


def scenario(seconds: float) -> str:
    return f"""
[run]
duration = {seconds}
connectors = 2
check = false
call_timeout = 60
[load]
message = "MeterValues"
rate = 0
start = 1
"""


def metrics(node: NodeProc) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{node.api_port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("ampgate_store_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def health(node: NodeProc) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.api_port}/api/v1/health", timeout=10) as r:
        result: dict[str, Any] = json.loads(r.read())
        return result


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one(workdir: Path, bound: int, a: argparse.Namespace) -> dict[str, Any]:
    db = workdir / f"bound-{bound}.db"
    node = start_node(workdir, db, "--store-queue-max", str(bound))
    seconds = a.warm_s + a.lock_s + a.settle_s
    sim, report = start_sim(workdir, node.url, a.chargers, scenario(seconds), name=f"sim-{bound}")
    try:
        deadline = time.monotonic() + 60
        while health(node)["chargers_online"] < a.chargers:
            if time.monotonic() > deadline:
                raise RuntimeError("the fleet did not connect within 60 s")
            time.sleep(0.2)
        time.sleep(a.warm_s)
        rss_before = rss_mb(node.pid)
        lock = sqlite3.connect(str(db), isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        locked_at = time.monotonic()
        peak_queue = 0.0
        peak_rss = rss_before
        degraded_after: float | None = None
        while time.monotonic() - locked_at < a.lock_s:
            m = metrics(node)
            peak_queue = max(peak_queue, m.get("ampgate_store_write_queue_depth", 0.0))
            peak_rss = max(peak_rss, rss_mb(node.pid))
            if degraded_after is None and health(node)["status"] == "degraded":
                degraded_after = time.monotonic() - locked_at
            time.sleep(SAMPLE_S)
        lock.execute("ROLLBACK")
        lock.close()
        released_at = time.monotonic()
        ok_after: float | None = None
        while time.monotonic() - released_at < a.settle_s:
            if ok_after is None and health(node)["status"] == "ok":
                ok_after = time.monotonic() - released_at
            time.sleep(SAMPLE_S)
        m = metrics(node)
        result = finish_sim(sim, report, timeout=seconds + 120)
    finally:
        if sim.poll() is None:
            sim.kill()
        node.stop()
    conn = sqlite3.connect(str(db))
    try:
        (samples,) = conn.execute("SELECT count(*) FROM meter_samples").fetchone()
    finally:
        conn.close()
    answered = int(result["load"]["answered"])
    return {
        "store_queue_max": bound,
        "chargers": a.chargers,
        "lock_s": a.lock_s,
        "peak_write_queue": int(peak_queue),
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_locked_mb": round(peak_rss, 1),
        "rss_growth_mb": round(peak_rss - rss_before, 1),
        "degraded_after_s": None if degraded_after is None else round(degraded_after, 2),
        "ok_after_release_s": None if ok_after is None else round(ok_after, 2),
        "full_waits": int(m.get("ampgate_store_full_waits_total", 0)),
        "write_retries": int(m.get("ampgate_store_write_retries_total", 0)),
        "load_answered": answered,
        "samples_stored": int(samples),
        "nothing_lost": samples >= answered,
        "sim_errors": result.get("errors", {}),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chargers", type=int, default=2000)
    p.add_argument("--bound", type=int, default=500, help="--store-queue-max of the bounded run")
    p.add_argument("--warm-s", type=float, default=3.0)
    p.add_argument("--lock-s", type=float, default=8.0)
    p.add_argument("--settle-s", type=float, default=6.0)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ampgate-store-lock-") as tmp:
        workdir = a.workdir or Path(tmp)
        runs = [one(workdir, bound, a) for bound in (a.bound, UNBOUNDED)]
    out = {
        "bench": "store_lock",
        "command": " ".join(["python", "bench/store_lock.py", *sys.argv[1:]]),
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "runs": runs,
    }
    print(json.dumps(out, indent=2))
    cols = (
        "store_queue_max",
        "peak_write_queue",
        "rss_growth_mb",
        "degraded_after_s",
        "ok_after_release_s",
        "full_waits",
        "load_answered",
        "samples_stored",
        "nothing_lost",
    )
    print(" | ".join(cols))
    for r in runs:
        print(" | ".join(str(r[c]) for c in cols))
    if a.json is not None:
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if all(r["nothing_lost"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
