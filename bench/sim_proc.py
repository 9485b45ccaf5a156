"""One simulator process of bench/connections.py, driven over its stdin and stdout through the bench's phases.

    python bench/sim_proc.py SETTINGS_JSON

SETTINGS_JSON is a `ampgate._native.Sim` settings dict (bench/connections.py builds it: a Heartbeat load that
only runs when told, no heartbeats of the chargers' own, and `check_replies` off, the simulator's unchecked
bench mode). The process prints one JSON line when ready (`{"ready": true, "pid": ...}`, or `{"error": "..."}`
and exits 2), then reads one JSON command per line and answers each with one JSON line, so the orchestrator
can move every process through the phases together:

    {"cmd": "boot", "timeout": 60}                                   connect, upgrade and boot every charger
    {"cmd": "hold", "seconds": 10}                                   hold the links, no load
    {"cmd": "heartbeats", "duration": 10, "rate": 0, "inflight": 0}  the load for `duration` s (rate 0:
                                                                     saturation with `inflight` outstanding)
    {"cmd": "storm", "backoff": 0, "timeout": 60}                    drop every link at once (no close frame),
                                                                     each charger back after [0, backoff] s;
                                                                     answers once all are back (or timeout)
    {"cmd": "mark"}                                                  note the counters now, for the next
                                                                     `firmware` to count from
    {"cmd": "firmware", "expect": 100, "timeout": 600, "sample": 0.25}
                                                                     run until `expect` more firmware updates
                                                                     than at the mark (or at its start) have
                                                                     ended (installed and booted again, or
                                                                     failed), sampling the updates received
    {"cmd": "between", "run": true}                                  from now on keep the engine running while
                                                                     no command is there (answer the node's
                                                                     pings, finish reboots), not only in a phase
    {"cmd": "close", "timeout": 5}                                   close every link (1000) and finish
    {"cmd": "exit"}

The engine is the fleet simulator's (rust/sim/, the same chargers `ampgate sim` runs: each also sends a
StatusNotification after its boot, as a real one does); every phase runs in Rust with the GIL released in
slices of SLICE s, and this process's Python does nothing per connection or per message.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from typing import Any

from ampgate import _native

SLICE = 0.05
# After a load phase's duration, how long the CALLs still outstanding may take to be answered, so that the next
# phase starts with none (each charger has at most one outstanding, as OCPP-J requires).
DRAIN = 5.0
# After the last firmware update of a `firmware` phase ended (its charger booted again), how long the engine keeps
# running so that the CALLs that follow the boot (StatusNotification, the Installed notification) are answered.
FW_DRAIN = 1.0
_UPDATES = ("UpdateFirmware", "SignedUpdateFirmware")


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _run_for(sim: Any, seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sim.run(min(SLICE, left))


def _errors(sim: Any) -> dict[str, int]:
    return dict(sim.report()["errors"])


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    out = {k: n - before.get(k, 0) for k, n in after.items()}
    return {k: n for k, n in out.items() if n}


def boot(sim: Any, count: int, timeout: float) -> dict[str, Any]:
    t0 = time.monotonic()
    while sim.stats()["booted"] < count and time.monotonic() - t0 < timeout:
        sim.run(SLICE)
    wall = time.monotonic() - t0
    stats, report = sim.stats(), sim.report()
    # First connect to the last first boot: the engine's own clock, not this process's slicing.
    window = report["boot_window_s"] if stats["booted"] >= count else wall
    return {
        "attempted": count,
        "connected": stats["connected"],
        "booted": stats["booted"],
        "failures": dict(report["errors"]),
        "elapsed_s": window or wall,
        "boot_histogram": report["latency_us"].get("boot", []),
    }


def hold(sim: Any, seconds: float) -> dict[str, Any]:
    before, at_start = _errors(sim), sim.stats()["booted"]
    _run_for(sim, seconds)
    return {
        "seconds": seconds,
        "open_at_start": at_start,
        "open_at_end": sim.stats()["booted"],
        "lost": _delta(_errors(sim), before),
    }


def heartbeats(sim: Any, duration: float, rate: float, inflight: int) -> dict[str, Any]:
    before = _errors(sim)
    sim.take_load_window()
    sim.set_load(rate, inflight)
    _run_for(sim, duration)
    sim.pause_load()
    within = sim.take_load_window()
    t0 = time.monotonic()
    while sim.load_in_flight() and time.monotonic() - t0 < DRAIN:
        sim.run(SLICE)
    late = sim.take_load_window()
    merged: dict[int, int] = {}
    for upper, n in [*within["latency_us"], *late["latency_us"]]:
        merged[upper] = merged.get(upper, 0) + n
    lost = _delta(_errors(sim), before)
    for kind in ("call_error", "timeout"):  # counted below as errors and unanswered
        lost.pop(kind, None)
    return {
        "duration_s": duration,
        "target_rate": rate,
        "inflight": inflight,
        "sent": within["sent"] + late["sent"],
        "answered": within["answered"],
        "answered_late": late["answered"],
        "errors": within["errors"] + late["errors"],
        "unanswered": within["unanswered"] + late["unanswered"] + sim.load_in_flight(),
        "skipped": within["skipped"],
        "lost": lost,
        "open": sim.stats()["booted"],
        "histogram": sorted(merged.items()),
        "max_ms": max(within["latency_max_us"], late["latency_max_us"]) / 1000,
    }


def _buckets_delta(after: list[list[int]], before: list[list[int]]) -> list[tuple[int, int]]:
    was = {upper: n for upper, n in before}
    return [(upper, n - was.get(upper, 0)) for upper, n in after if n - was.get(upper, 0) > 0]


def storm(sim: Any, count: int, backoff: float, timeout: float) -> dict[str, Any]:
    """Every link drops at once; the answer comes when every charger is connected (and Accepted: a charger
    that was accepted resumes without a new boot) again, with the storm's own figures."""
    before = sim.report()
    t0 = time.monotonic()
    dropped = sim.storm_now(backoff)
    while sim.stats()["connected"] < count and time.monotonic() - t0 < timeout:
        sim.run(0.01)
    back_s = time.monotonic() - t0
    after, stats = sim.report(), sim.stats()
    return {
        "dropped": dropped,
        "back": stats["connected"],
        "booted": stats["booted"],
        "all_back_s": back_s,
        "refused_busy": after["refused_busy"] - before["refused_busy"],
        "retry_after_given": after["retry_after_given"] - before["retry_after_given"],
        "connect_histogram": _buckets_delta(
            after["latency_us"].get("connect", []), before["latency_us"].get("connect", [])
        ),
        "failures": _delta(dict(after["errors"]), dict(before["errors"])),
    }


def firmware(
    sim: Any, expect: int, timeout: float, sample: float, mark: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run until `expect` more of this process's chargers have ended a firmware update (the engine counts one
    installed at the boot that follows it, one failed at its failure status) than at `mark` (a report taken
    before the node was asked to send the updates; default: now), or `timeout` s.
    Every `sample` s the cumulative UpdateFirmware CALLs received and updates ended since the mark are kept with
    the time (time.monotonic(): CLOCK_MONOTONIC, the same clock in every process, so the orchestrator can add up
    the processes' series)."""

    def counts(r: dict[str, Any]) -> tuple[int, int, int]:
        calls = sum(r["csms_calls"].get(a, 0) for a in _UPDATES)
        return calls, r["firmware"]["installed"], r["firmware"]["failed"]

    before = mark if mark is not None else sim.report()
    calls0, installed0, failed0 = counts(before)
    t0 = time.monotonic()
    series: list[tuple[float, int, int]] = []
    ended_at = None
    while True:
        calls, installed, failed = counts(sim.report())
        ended = installed - installed0 + failed - failed0
        series.append((time.monotonic(), calls - calls0, ended))
        if ended >= expect:
            ended_at = series[-1][0]
            break
        if time.monotonic() - t0 >= timeout:
            break
        _run_for(sim, sample)
    _run_for(sim, FW_DRAIN)
    after = sim.report()
    calls, installed, failed = counts(after)
    statuses = {
        k: n - before["firmware"]["statuses"].get(k, 0) for k, n in after["firmware"]["statuses"].items()
    }
    return {
        "expect": expect,
        "updates_received": calls - calls0,
        "installed": installed - installed0,
        "failed": failed - failed0,
        "statuses": {k: n for k, n in statuses.items() if n},
        "reboots": after["reboots"] - before["reboots"],
        "all_ended": ended_at is not None,
        "ended_at": ended_at,
        "series": series,
        "open": sim.stats()["booted"],
        "failures": _delta(dict(after["errors"]), dict(before["errors"])),
    }


def close(sim: Any, timeout: float) -> dict[str, Any]:
    closing = sim.stats()["connected"]
    sim.stop()
    t0 = time.monotonic()
    while not sim.run(SLICE) and time.monotonic() - t0 < timeout:
        pass
    return {"closing": closing, "clean": sim.report()["closed_clean"], "elapsed_s": time.monotonic() - t0}


class Commands:
    """The orchestrator's commands, one JSON line each, read from stdin's descriptor directly, so that with
    `between` on the engine runs in slices while no command is there (by default it runs only inside a phase,
    and between phases the chargers' links are frozen: a node that pings them may drop them)."""

    def __init__(self) -> None:
        self.between = False
        self._buf = b""
        self._eof = False

    def next(self, sim: Any) -> str | None:
        """The next command line, or None at the end of stdin."""
        running = True
        while b"\n" not in self._buf:
            if self._eof:
                return None
            if self.between and running and not select.select([0], [], [], 0)[0]:
                running = not sim.run(SLICE)  # True once the run is over: then only wait for commands
                continue
            chunk = os.read(0, 65536)
            self._eof = not chunk
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()


def main(argv: list[str]) -> int:
    # The orchestrator owns Ctrl-C; it tells us to exit (or kills us) itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = json.loads(argv[0])
    count = int(settings["count"])
    _native.raise_nofile_limit()
    try:
        sim = _native.Sim(settings, bytes(count))
    except (OSError, ValueError) as e:
        _reply({"error": str(e)})
        return 2
    _reply({"ready": True, "pid": os.getpid(), "count": count})
    commands = Commands()
    mark: dict[str, Any] | None = None
    while (line := commands.next(sim)) is not None:
        cmd = json.loads(line)
        name = cmd.get("cmd")
        t0 = time.monotonic()
        if name == "boot":
            out = boot(sim, count, float(cmd.get("timeout", 60.0)))
        elif name == "hold":
            out = hold(sim, float(cmd["seconds"]))
        elif name == "heartbeats":
            out = heartbeats(
                sim, float(cmd["duration"]), float(cmd.get("rate", 0.0)), int(cmd.get("inflight", 0))
            )
        elif name == "storm":
            out = storm(sim, count, float(cmd.get("backoff", 0.0)), float(cmd.get("timeout", 60.0)))
        elif name == "mark":
            mark = sim.report()
            out = {}
        elif name == "firmware":
            out = firmware(
                sim,
                int(cmd["expect"]),
                float(cmd.get("timeout", 600.0)),
                float(cmd.get("sample", 0.25)),
                mark,
            )
            mark = None
        elif name == "between":
            commands.between = bool(cmd.get("run", True))
            out = {"between": commands.between}
        elif name == "close":
            out = close(sim, float(cmd.get("timeout", 5.0)))
        elif name == "exit":
            _reply({"bye": True})
            return 0
        else:
            out = {"error": f"unknown command {name!r}"}
        out["cmd"] = name
        out["wall_s"] = time.monotonic() - t0
        _reply(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
