"""Reconnect storms: every charger of a fleet loses its link at once (a network outage) and reconnects, while a
group of chargers that stayed connected keeps sending heartbeats. Against ampgate with its admission control on
(the defaults) and off, and against the peers of bench/compare.py at the sizes they hold.

    python bench/storm.py --connections 100000                      # ampgate, admission on and off
    python bench/storm.py --connections 10000 --systems websockets,picows,ampgate
    python bench/storm.py --connections 2000 --smoke                # CI size (tests/bench)

For each system: boot the fleet (the `stayers` and the stormers), then one storm per `--backoff` value: every
stormer's link drops without a close frame and each reconnects after a uniform random wait in [0, backoff] s
(0: all at once, the hot case), honouring a 503's Retry-After as the simulator does by default. The stayers
send heartbeats at a fixed rate throughout. Figures per storm:

- all_back_s: from the drop until every stormer is connected again. The chargers were accepted before, so they
  resume without a new BootNotification (2.0.1 B01; 1.6 chargers do the same after a network-only drop), so
  connected is Accepted here; a power outage (every charger booting again) is what boot spreading is for.
- connect_p50_ms / connect_p99_ms: TCP connect to the 101 of each reconnect (a refused attempt's retry is
  part of the next one's wait, not of these).
- refused_503: upgrades answered HTTP 503 by admission control (a peer has none: it takes every upgrade).
- stayers' heartbeat p50 / p99 / max during the storm, and peak RSS of the server's processes (sampled).

Prints JSON and a table; `--out FILE` writes the JSON (bench/results/storm-N.json).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from compare import PeerSystem
from connections import (
    ADMISSION_OFF,
    PHASE_SLACK,
    RUN_FOREVER,
    SOURCE_IPS_PER_PROCESS,
    BenchError,
    Node,
    SimGroup,
    add_failures,
    merge_histograms,
    quantile_ms,
)

PER_PROCESS = 12_500
# The stayers' heartbeats: each stayer about once every STAYER_PERIOD s.
STAYER_PERIOD = 2.0
SAMPLE_PERIOD = 0.25
SETTLE = 3.0


def settings(
    port: int, count: int, first: int, proc: int, prefix: str, inflight: int, protocol: str
) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "path_prefix": "/ocpp",
        "id_prefix": prefix,
        "first_index": first,
        "count": count,
        "protocol": protocol,
        "source_ips": [f"127.0.{proc + 1}.{i}" for i in range(1, SOURCE_IPS_PER_PROCESS + 1)],
        "max_inflight": inflight,
        "duration": RUN_FOREVER,
        "heartbeat_interval": RUN_FOREVER,
        "load_message": "Heartbeat",
        "load_start": RUN_FOREVER,
        "check_replies": False,
        # Connect again at once after a failure that carries no Retry-After.
        "reconnect_backoff": 1.0,
    }


def fleet(port: int, n: int, stayers: int, protocol: str) -> list[dict[str, Any]]:
    """Process 0 holds the stayers, the others the stormers (at most PER_PROCESS each)."""
    storm_n = n - stayers
    procs = max(1, math.ceil(storm_n / PER_PROCESS))
    base, extra = divmod(storm_n, procs)
    inflight = max(64, 4096 // procs)
    out = [settings(port, stayers, 0, 0, "STAY", 256, protocol)]
    first = 0
    for p in range(procs):
        count = base + (1 if p < extra else 0)
        out.append(settings(port, count, first, p + 1, "STORM", inflight, protocol))
        first += count
    return out


class RssSampler:
    """Peak resident memory of the server's processes together, sampled every SAMPLE_PERIOD s."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss_kb(self) -> int:
        total = 0
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * 4
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._rss_kb())
            self._stop.wait(SAMPLE_PERIOD)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_system(
    label: str, port: int, pids: list[int], a: argparse.Namespace, errors: dict[str, int]
) -> dict[str, Any]:
    n, stayers = a.connections, a.stayers
    configs = fleet(port, n, stayers, a.protocol)
    group = SimGroup.start(configs, PHASE_SLACK)
    try:
        boot_timeout = max(60.0, n / 500)
        t0 = time.monotonic()
        with RssSampler(pids) as boot_rss:
            booted = group.ask({"cmd": "boot", "timeout": boot_timeout}, boot_timeout + PHASE_SLACK)
        boot_s = time.monotonic() - t0
        add_failures(errors, f"{label} boot", booted, "failures")
        out: dict[str, Any] = {
            "booted": sum(b["booted"] for b in booted),
            "boot_s": round(boot_s, 2),
            "boot_peak_rss_mb": round(boot_rss.peak_kb / 1024),
            "storms": [],
        }
        rate = stayers / STAYER_PERIOD
        for backoff in a.backoff:
            time.sleep(SETTLE)
            window = a.storm_timeout + backoff
            cmds: list[dict[str, Any]] = [
                {"cmd": "heartbeats", "duration": window, "rate": rate, "inflight": 0}
            ] + [{"cmd": "storm", "backoff": backoff, "timeout": window}] * (len(configs) - 1)
            with RssSampler(pids) as rss:
                answers = group.ask(cmds, window + PHASE_SLACK)
            stay, storm = answers[0], answers[1:]
            where = f"{label} storm backoff {backoff:g}"
            add_failures(errors, where, storm, "failures")
            add_failures(errors, where, [stay], "lost")
            for field in ("errors", "unanswered"):
                if stay[field]:
                    errors[f"{where}: stayer heartbeat {field}"] = stay[field]
            connect = merge_histograms(storm, "connect_histogram")
            hb = stay["histogram"]
            back = sum(s["back"] for s in storm)
            out["storms"].append(
                {
                    "backoff_s": backoff,
                    "dropped": sum(s["dropped"] for s in storm),
                    "back": back,
                    "all_back": back == sum(c["count"] for c in configs[1:]),
                    "all_back_s": round(max(s["all_back_s"] for s in storm), 2),
                    "connect_p50_ms": quantile_ms(connect, 0.5),
                    "connect_p99_ms": quantile_ms(connect, 0.99),
                    "refused_503": sum(s["refused_busy"] for s in storm),
                    "stayers": stayers,
                    "stayer_heartbeats": stay["answered"],
                    "stayer_hb_p50_ms": quantile_ms(hb, 0.5),
                    "stayer_hb_p99_ms": quantile_ms(hb, 0.99),
                    "stayer_hb_max_ms": stay["max_ms"],
                    "stayers_open_at_end": stay["open"],
                    "peak_rss_mb": round(rss.peak_kb / 1024),
                }
            )
        group.ask({"cmd": "close", "timeout": 10.0}, 10.0 + PHASE_SLACK)
        return out
    finally:
        group.stop()


def run_ampgate(a: argparse.Namespace, admission: str, errors: dict[str, int]) -> dict[str, Any]:
    from ampgate.config import default_workers

    workers = default_workers(a.connections)
    extra = ADMISSION_OFF if admission == "off" else ()
    with tempfile.TemporaryDirectory(prefix="ampgate-storm-") as tmp:
        node = Node(Path(tmp), a.connections, workers, extra=extra)
        try:
            info = node.wait_ready()
            label = f"ampgate (admission {admission})"
            r = one_system(label, info["ocpp_port"], list(node.pids.values()), a, errors)
            r["server"] = f"ampgate serve, {workers} gateway workers, admission control {admission}"
            return r
        except BenchError as e:
            raise BenchError(f"{e}\n-- node log --\n{node.log_tail()}") from None
        finally:
            node.stop()


def run_peer(a: argparse.Namespace, name: str, errors: dict[str, int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ampgate-storm-") as tmp:
        peer = PeerSystem(Path(tmp), name)
        try:
            r = one_system(name, peer.port, list(peer.pids.values()), a, errors)
            r["server"] = peer.server
            return r
        finally:
            peer.stop()


def table(result: dict[str, Any]) -> str:
    head = (
        f"{'system':<28} {'backoff':>7} {'back':>9} {'all back s':>10} {'conn p99':>9} {'503s':>8} "
        f"{'stay hb p99':>11} {'hb max':>8} {'peak RSS':>9}"
    )
    lines = [
        f"reconnect storm: {result['connections']:,} chargers ({result['stayers']:,} stay connected)",
        head,
        "-" * len(head),
    ]
    for label, r in result["systems"].items():
        for s in r["storms"]:
            lines.append(
                f"{label:<28} {s['backoff_s']:>6g}s {s['back']:>9,} {s['all_back_s']:>10.2f} "
                f"{s['connect_p99_ms']:>7.1f}ms {s['refused_503']:>8,} {s['stayer_hb_p99_ms']:>9.1f}ms "
                f"{s['stayer_hb_max_ms']:>6.0f}ms {s['peak_rss_mb']:>6,} MB"
            )
    t = result["target"]
    lines.append(
        f"target: all {t['connections']:,} back within {t['all_back_s']} s without back-off, stayers' heartbeat "
        f"p99 < {t['stayer_hb_p99_ms']} ms -> {'met' if t['met'] else 'MISSED'}"
    )
    if result["errors"]:
        lines.append(f"errors: {result['errors']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=100_000)
    p.add_argument("--stayers", type=int, default=0, help="default: 5%% of the fleet, at least 100")
    p.add_argument("--backoff", default="0,10", help="storms, by the chargers' back-off in s (default 0,10)")
    p.add_argument("--storm-timeout", type=float, default=30.0, help="s a storm may take (plus its back-off)")
    p.add_argument("--systems", default="ampgate,ampgate-no-admission")
    p.add_argument("--protocol", default="ocpp2.0.1", choices=("ocpp1.6", "ocpp2.0.1"))
    p.add_argument("--smoke", action="store_true", help="CI size: exit 1 unless every storm ends all back")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    a.backoff = [float(x) for x in a.backoff.split(",") if x.strip()]
    a.stayers = a.stayers or max(100, a.connections // 20)
    if a.stayers >= a.connections:
        p.error("--stayers must be fewer than --connections")
    errors: dict[str, int] = {}
    systems: dict[str, Any] = {}
    for name in [s.strip() for s in a.systems.split(",") if s.strip()]:
        if name == "ampgate":
            systems["ampgate"] = run_ampgate(a, "on", errors)
        elif name == "ampgate-no-admission":
            systems["ampgate (no admission)"] = run_ampgate(a, "off", errors)
        else:
            systems[name] = run_peer(a, name, errors)
    hot = [s for s in systems.get("ampgate", {}).get("storms", []) if s["backoff_s"] == 0]
    target = {
        "connections": a.connections,
        "all_back_s": 15,
        "stayer_hb_p99_ms": 100,
        "met": bool(hot)
        and all(s["all_back"] and s["all_back_s"] <= 15 and s["stayer_hb_p99_ms"] < 100 for s in hot),
    }
    result = {
        "connections": a.connections,
        "stayers": a.stayers,
        "protocol": a.protocol,
        "command": "python bench/storm.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "systems": systems,
        "target": target,
        "errors": errors,
    }
    print(json.dumps(result, indent=2))
    print(table(result))
    if a.out:
        a.out.write_text(json.dumps(result, indent=2) + "\n")
    if a.smoke:
        bad = [
            f"{label}: backoff {s['backoff_s']:g}: {s['back']} back of {s['dropped']}"
            for label, r in systems.items()
            for s in r["storms"]
            if not s["all_back"]
        ]
        if bad or errors:
            print("smoke run failed:", bad or errors, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
