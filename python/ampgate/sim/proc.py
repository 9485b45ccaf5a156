"""One simulator process: `python -m ampgate.sim.proc`, started by ampgate.sim.runner (one per share of the fleet).

Protocol, JSON lines:
  stdin, first line:  {"settings": {...}, "traits": "<base64, one byte per charger>", "parent_pid": 123}
  stdin, later:       "stop" (or end of file): end the run early, closing the links
  stdout:             {"started": {"pid": ..., "count": ...}} once the engine is built
                      {"progress": Sim.stats(), "invalid": n} about every PROGRESS_PERIOD s
                      {"report": Sim.report() with invalid_from_csms merged in} at the end; exit 0
                      {"error": "...", "kind": "settings" | "limit" | "engine"}; exit 2 (bad settings) or 1
The engine runs in slices of SLICE s with the GIL released; between slices this process validates what the
central system sent (ampgate.sim.check) and reports progress. Only this module touches `_native.Sim`.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from ampgate.sim.check import SchemaCheck

# Seconds per engine slice: short enough that progress and an early stop are prompt, long enough that the
# Python between slices costs nothing next to the engine's work.
SLICE = 0.25
PROGRESS_PERIOD = 0.5
# Distinct invalid_from_csms details kept per process; the rest are counted under OTHER_DETAIL. A broken
# central system can send a different bad value in every message, and the report must stay readable.
MAX_DETAILS = 200
OTHER_DETAIL = "(other details)"
PR_SET_PDEATHSIG = 1


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _die_with_parent(parent_pid: int | None) -> None:
    """SIGKILL this process when the runner dies (Linux), and exit now if it is already gone. The runner also
    ends the run by closing our stdin, but a runner killed with SIGKILL leaves that to the kernel."""
    if sys.platform == "linux":
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def _watch_stdin(stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


class InvalidCounter:
    """The invalid_from_csms details seen so far, bounded to MAX_DETAILS distinct ones."""

    def __init__(self) -> None:
        self.total = 0
        self.details: dict[str, int] = {}

    def add(self, details: list[str]) -> None:
        self.total += len(details)
        for d in details:
            if d not in self.details and len(self.details) >= MAX_DETAILS:
                d = OTHER_DETAIL
            self.details[d] = self.details.get(d, 0) + 1

    def merge_into(self, report: dict[str, Any]) -> dict[str, Any]:
        """`report` with invalid_from_csms added to `errors` and `error_details` (only when there were any)."""
        if self.total:
            report.setdefault("errors", {})["invalid_from_csms"] = self.total
            report.setdefault("error_details", {})["invalid_from_csms"] = dict(self.details)
        return report


def run(sim: Any, stop: threading.Event) -> dict[str, Any]:
    """Drive `sim` to the end of its run (or, once `stop` is set, to an early end), validating what the
    central system sent after every slice and emitting progress; return the report."""
    checker = SchemaCheck()
    invalid = InvalidCounter()
    stopping = False
    next_progress = time.monotonic() + PROGRESS_PERIOD
    while True:
        done = sim.run(SLICE)
        invalid.add(checker.check(sim.take_checks()))
        if done:
            break
        if stop.is_set() and not stopping:
            stopping = True
            early_stop = getattr(sim, "stop", None)
            if early_stop is None:
                break  # an engine without an early stop: the links are dropped when we exit
            early_stop()
        now = time.monotonic()
        if now >= next_progress:
            next_progress = now + PROGRESS_PERIOD
            _emit({"progress": sim.stats(), "invalid": invalid.total})
    report = invalid.merge_into(dict(sim.report()))
    if stopping:
        report["stopped_early"] = True
    return report


def main(engine: Any = None) -> int:
    """Run one process's share of the fleet (see the module docstring); `engine` replaces `_native.Sim` in
    tests. Returns the exit code."""
    # The runner owns Ctrl-C: it tells us to stop (a "stop" line) so the links still close properly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    first = sys.stdin.readline()
    if not first:
        return 1  # the runner went away before telling us anything
    job = json.loads(first)
    _die_with_parent(job.get("parent_pid"))
    settings, traits = job["settings"], base64.b64decode(job["traits"])

    from ampgate import _native

    _native.raise_nofile_limit()
    engine = engine or getattr(_native, "Sim", None)
    if engine is None:
        _emit({"error": "this build of ampgate has no simulator engine (_native.Sim)", "kind": "engine"})
        return 1
    try:
        sim = engine(settings, traits)
    except ValueError as e:
        _emit({"error": str(e), "kind": "settings"})
        return 2
    except OSError as e:
        _emit({"error": str(e), "kind": "limit"})
        return 1
    stop = threading.Event()
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True, name="stdin").start()
    _emit({"started": {"pid": os.getpid(), "count": settings.get("count", 0)}})
    try:
        report = run(sim, stop)
    except Exception as e:  # the engine failed mid-run: tell the runner in words, not a traceback
        _emit({"error": f"{type(e).__name__}: {e}", "kind": "engine"})
        return 1
    _emit({"report": report})
    return 0


if __name__ == "__main__":
    sys.exit(main())
