"""The OCPP router fuzz at bench size: up to --messages malformed and valid messages (default 10^6) against one
real node, from a 1.6 and a 2.0.1 charger, with a bystander charger's heartbeats
timed throughout. The generator, the oracle and the client are tests/fuzz/ocpp_fuzz.py's (the same checks as
tests/fuzz/test_ocpp_router_fuzz.py, which runs ~10^4 in `make test`); the client runs hypothesis in
chunks of --chunk examples, chunk k seeded with seed * 1000 + k, so a run is reproducible from its seed and
--clients (client i of --clients N runs as seed + i, in its own process).

Stops at --messages or --max-seconds, whichever comes first, and reports the exact count. Prints a table and
writes JSON (--json): messages sent, answers by kind and code, mismatches (must be 0), the node alive, tracebacks
and ERROR lines in its log (must be 0), heartbeats of the bystander and the slowest.

    flock /tmp/bench.lock .venv/bin/python bench/fuzz_router.py --messages 1000000 --clients 2 --json bench/results/fuzz-router.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "python")]

from hypothesis import seed  # noqa: E402
from tests.conftest import start_node  # noqa: E402
from tests.fuzz.ocpp_fuzz import OCPP16, OCPP201, FuzzCharger, Mismatch  # noqa: E402
from tests.fuzz.test_ocpp_router_fuzz import Bystander, connector, fuzz_one  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


def client(url: str, index: int, base_seed: int, chunk: int, until: float, budget: int) -> dict[str, Any]:
    """One client: its two chargers take turns, a chunk of examples each, until the budget or time."""
    chargers = [
        FuzzCharger(connector(f"{url}/BZ-{index}-{tag}", p), p, f"BZ-{index}-{tag}")
        for p, tag in ((OCPP16, "16"), (OCPP201, "201"))
    ]
    for c in chargers:
        c.open()
    mismatches: list[str] = []
    k = 0
    start = time.monotonic()
    while time.monotonic() < until and sum(c.stats.sent for c in chargers) < budget:
        charger = chargers[k % 2]
        batch = seed(base_seed * 1000 + k)(fuzz_one(charger, chunk, derandomize=False))
        try:
            batch()
        except Mismatch as e:  # recorded, and the run goes on with the next chunk
            mismatches.append(f"{type(e).__name__}: {e}"[:4000])
        except ConnectionClosed as e:  # a close the oracle did not expect: a mismatch too
            mismatches.append(f"{type(e).__name__}: {e}"[:4000])
            charger.close()
            charger.open()
        except BaseExceptionGroup as e:
            if not e.subgroup(Mismatch):
                raise
            mismatches.append(str(e.exceptions)[:4000])
        k += 1
        if k % 10 == 0:
            sent = sum(c.stats.sent for c in chargers)
            print(f"{time.monotonic() - start:7.0f} s {sent:>10,} messages", file=sys.stderr, flush=True)
    for c in chargers:
        c.close()
    stats = [c.stats for c in chargers]
    return {
        "sent": sum(s.sent for s in stats),
        "errors": sum(s.errors for s in stats),
        "results": sum(s.results for s in stats),
        "silent": sum(s.silent for s in stats),
        "closed": sum(s.closed for s in stats),
        "codes": {code: sum(s.codes.get(code, 0) for s in stats) for s in stats for code in s.codes},
        "mismatches": mismatches,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--chunk", type=int, default=200, help="hypothesis examples per chunk")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=1, help="client processes, each its own two chargers")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="fuzz-router-"))
    node = start_node(workdir, "--charger-msg-rate", "0")  # the router under fuzz, not the rate limit
    bystander = Bystander(node.ocpp_url + "/BZ-BYSTANDER")
    bystander.start()
    started = time.monotonic()
    until = started + args.max_seconds
    # The generator is what costs (hypothesis draws, ~1.5 ms a 1.6 message and ~6 ms a 2.0.1 one); the node
    # answers far faster than one client generates, so --clients 2 on two cores nearly doubles the rate. Client i
    # seeds its chunks from seed + i (chunk k of client i: (seed + i) * 1000 + k) and takes an equal share.
    if args.clients == 1:
        parts = [client(node.ocpp_url, 0, args.seed, args.chunk, until, args.messages)]
    else:
        share = -(-args.messages // args.clients)
        with ProcessPoolExecutor(args.clients, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [
                pool.submit(client, node.ocpp_url, i, args.seed + i, args.chunk, until, share)
                for i in range(args.clients)
            ]
            parts = [f.result() for f in futures]
    elapsed = time.monotonic() - started
    bystander.stop.set()
    bystander.join(10)
    alive = node.proc.poll() is None
    node.stop()
    log = node.log()
    codes: dict[str, int] = {}
    for part in parts:
        for code, n in part["codes"].items():
            codes[code] = codes.get(code, 0) + n
    result = {
        "command": " ".join(sys.argv),
        "messages": sum(p["sent"] for p in parts),
        "target": args.messages,
        "seconds": round(elapsed, 1),
        "messages_per_s": round(sum(p["sent"] for p in parts) / elapsed, 1),
        "seed": args.seed,
        "clients": args.clients,
        "callerrors": sum(p["errors"] for p in parts),
        "callresults": sum(p["results"] for p in parts),
        "no_reply_owed": sum(p["silent"] for p in parts),
        "closed_1009_over_max_message": sum(p["closed"] for p in parts),
        "codes": dict(sorted(codes.items())),
        "mismatches": sum(len(p["mismatches"]) for p in parts),
        "mismatch_samples": [m for p in parts for m in p["mismatches"]][:5],
        "node_alive_at_end": alive,
        "tracebacks_in_log": log.count("Traceback"),
        "error_lines_in_log": sum(1 for line in log.splitlines() if " ERROR " in line),
        "bystander_heartbeats": bystander.answered,
        "bystander_slowest_ms": round(bystander.slowest * 1000, 1),
        "bystander_failure": bystander.failure,
    }
    print(f"{'messages':<24}{result['messages']:>12,} (target {args.messages:,})")
    print(f"{'seconds':<24}{result['seconds']:>12}")
    print(f"{'messages/s':<24}{result['messages_per_s']:>12}")
    for key in ("callerrors", "callresults", "no_reply_owed", "closed_1009_over_max_message", "mismatches", "tracebacks_in_log",
                "error_lines_in_log", "bystander_heartbeats", "bystander_slowest_ms"):  # fmt: skip
        print(f"{key:<24}{result[key]:>12}")
    print(f"{'node alive at end':<24}{alive!s:>12}")
    for code, n in result["codes"].items():
        print(f"  {code:<30}{n:>10,}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    ok = result["mismatches"] == 0 and alive and result["tracebacks_in_log"] == 0 and not bystander.failure
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
