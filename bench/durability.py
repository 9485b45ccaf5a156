"""What durable transaction messages cost: the same transaction load against a node whose store fsyncs nothing
at commit (`--store-sync normal`, the setting before durable writes), the node's default (`durable`: the
commits that hold a transaction message are fsynced, one fsync per group commit) and every commit fsynced
(`full`), in one run.

    flock /tmp/bench.lock python bench/durability.py [--chargers 200] [--seconds 10] [--rate 500]
                                                     [--protocol 1.6] [--rounds 1] [--json OUT]

The load is the simulator's MeterValues bench load (docs/simulator.md, "The bench load"): every charger starts a
transaction on connector 1 (1.6 StartTransaction / 2.0.1 TransactionEvent Started) and then sends one
transaction message at a time in it (1.6 MeterValues with the transactionId / 2.0.1 TransactionEvent Updated),
the next as soon as one is answered. Each answer waits for the message's commit, so the answer's round trip
is where an fsync shows. Two loads per setting:

- saturation: every charger keeps one message outstanding: transaction messages/s the node sustains;
- paced: `--rate` messages/s over the fleet: round trip p50 / p99 at a load the node carries either way.

Figures from the simulator's report (load CALLs only): answered, answered per second over the load's window,
round trip p50 / p90 / p99 / max (ms); and, first, what one fsync of a 4 KiB append costs on that disk (p50 / p99
of 200), the unit the durable settings pay per commit. The database is on the disk of --workdir (default: a temporary
directory; fsync costs what that disk makes it cost: tmpfs would make it free, so the JSON says which file
system). Prints JSON and a table; --json writes the JSON (bench/results/durability.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nodeproc import finish_sim, start_node, start_sim

MODES = ("normal", "durable", "full")
# The load starts this long after the simulator (every charger connected, booted and in its transaction).
LOAD_START = 3.0
# Time the simulator takes past its duration (closing, writing the report) before we call it hung.
SIM_SLACK = 60.0


def scenario(seconds: float, rate: float) -> str:
    return f"""
[run]
duration = {LOAD_START + seconds}
connectors = 2
check = false
[transactions]
per_hour = 0
[load]
message = "MeterValues"
rate = {rate}
start = {LOAD_START}
"""


def file_system(path: Path) -> str:
    """The file system type of `path` (from /proc/mounts: the longest mount point that contains it)."""
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mount, fstype = parts[1], parts[2]
                if str(path.resolve()).startswith(mount) and len(mount) > len(best):
                    best, kind = mount, fstype
    except OSError:
        pass
    return kind


def fsync_probe(workdir: Path, count: int = 200) -> dict[str, float]:
    """What one fsync costs on the work dir's disk: append 4 KiB to a file and fsync it, `count` times (ms)."""
    path = workdir / "fsync-probe"
    took: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        block = b"x" * 4096
        for _ in range(count):
            t = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            took.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    took.sort()
    return {
        "count": count,
        "p50_ms": round(took[len(took) // 2], 3),
        "p99_ms": round(took[int(len(took) * 0.99) - 1], 3),
        "max_ms": round(took[-1], 3),
    }


def one_run(a: argparse.Namespace, workdir: Path, mode: str, load: str, rate: float) -> dict[str, Any]:
    run_dir = workdir / f"{mode}-{load}-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    node = start_node(run_dir, run_dir / "ampgate.db", "--store-sync", mode)
    try:
        sim, report_path = start_sim(
            run_dir,
            node.url,
            a.chargers,
            scenario(a.seconds, rate),
            "--protocol",
            a.protocol,
            "--seed",
            "1",
        )
        report = finish_sim(sim, report_path, LOAD_START + a.seconds + SIM_SLACK)
    finally:
        node.stop()
    lo = report["load"]
    action = lo["action"]
    lat = report["latency_ms"].get(action, {})
    return {
        "mode": mode,
        "load": load,
        "rate": rate,
        "action": action,
        "answered": lo["answered"],
        "per_s": round(lo["answered"] / a.seconds, 1),
        "p50_ms": lat.get("p50"),
        "p90_ms": lat.get("p90"),
        "p99_ms": lat.get("p99"),
        "max_ms": lat.get("max"),
        "errors": report["errors"],
    }


def table(runs: list[dict[str, Any]]) -> str:
    head = f"{'setting':<9} {'load':<11} {'answered':>9} {'msg/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    lines = [head, "-" * len(head)]
    for r in runs:
        load = "saturation" if r["load"] == "saturation" else f"{r['rate']:g}/s"
        lines.append(
            f"{r['mode']:<9} {load:<11} {r['answered']:>9} {r['per_s']:>9} {r['p50_ms']:>8} {r['p90_ms']:>8}"
            f" {r['p99_ms']:>8} {r['max_ms']:>8}"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chargers", type=int, default=200)
    p.add_argument("--seconds", type=float, default=10.0, help="load window per run")
    p.add_argument("--rate", type=float, default=500.0, help="the paced load, messages/s over the fleet")
    p.add_argument("--protocol", choices=("1.6", "2.0.1"), default="1.6")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--rounds", type=int, default=1, help="every setting this many times, interleaved")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="ampgate-durability-"))
    workdir.mkdir(parents=True, exist_ok=True)
    probe = fsync_probe(workdir)
    print(json.dumps({"fsync_probe": probe}), file=sys.stderr, flush=True)
    runs: list[dict[str, Any]] = []
    for _ in range(a.rounds):
        for load, rate in (("saturation", 0.0), ("paced", a.rate)):
            for mode in modes:
                r = one_run(a, workdir, mode, load, rate)
                runs.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    out = {
        "bench": "durability",
        "chargers": a.chargers,
        "seconds": a.seconds,
        "protocol": a.protocol,
        "rounds": a.rounds,
        "file_system": file_system(workdir),
        "fsync_probe": probe,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
        ).stdout.strip(),
        "runs": runs,
    }
    print(json.dumps(out, indent=2))
    print(table(runs))
    print(f"one fsync of a 4 KiB append on this disk: p50 {probe['p50_ms']} ms, p99 {probe['p99_ms']} ms")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
