"""`ampgate sim`: the command around ampgate.sim.runner (live progress line, summary, JSON report, exit codes).

Exit codes: 0 the run completed (even with errors: they are its result), 2 a bad option or scenario (the
message names the field), 1 the simulation could not run or finish (a limit, a failed process), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from typing import Any

from rich.console import Console
from rich.live import Live

from ampgate.sim.report import progress_line, render_summary
from ampgate.sim.runner import SimError, execute, limit_hints, make_plan
from ampgate.sim.scenario import ScenarioError

__all__ = ["LiveProgress", "run_command"]

# Redraws of the live line per second.
REFRESH_PER_S = 4
# Seconds of counters the live messages-per-second figure is computed over.
RATE_WINDOW = 2.0


class LiveProgress:
    """The live progress line on stderr; messages per second come from the change in the counters between
    two updates."""

    def __init__(self, console: Console, chargers: int, duration: float) -> None:
        self.chargers, self.duration = chargers, duration
        self._live = Live(console=console, refresh_per_second=REFRESH_PER_S, transient=True)
        self._seen: deque[tuple[float, int]] = deque()
        self._rate = 0.0

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.__exit__(None, None, None)

    def update(self, stats: dict[str, Any], invalid: int) -> None:
        now, total = time.monotonic(), int(stats.get("sent", 0)) + int(stats.get("received", 0))
        self._seen.append((now, total))
        # The processes report every half second and we redraw more often: a rate over the last RATE_WINDOW
        # seconds does not flicker between 0 and twice the truth.
        while len(self._seen) > 2 and now - self._seen[1][0] >= RATE_WINDOW:
            self._seen.popleft()
        t0, n0 = self._seen[0]
        if now > t0:
            self._rate = (total - n0) / (now - t0)
        self._live.update(progress_line(stats, invalid, self.chargers, self.duration, self._rate))


def _fail(message: str, code: int) -> int:
    print(f"ampgate sim: {message}", file=sys.stderr)
    return code


def run_command(a: argparse.Namespace) -> int:
    """Run `ampgate sim` with parsed arguments; returns the exit code."""
    try:
        plan = make_plan(
            a.url,
            a.chargers,
            protocol=a.protocol,
            scenario=a.scenario,
            scenario_file=a.scenario_file,
            duration=a.duration,
            connectors=a.connectors,
            no_backoff=a.no_backoff,
            id_prefix=a.id_prefix,
            password=a.password,
            id_tag=a.id_tag,
            seed=a.seed,
            processes=a.processes,
            ca=a.ca,
            client_cert=a.client_cert,
            client_key=a.client_key,
            client_ca_cert=a.client_ca_cert,
            client_ca_key=a.client_ca_key,
        )
    except ScenarioError as e:
        is_option = (e.field or "").startswith("-")
        return _fail(str(e) if is_option or e.field is None else f"scenario error: {e}", 2)
    except SimError as e:
        return _fail(e.message, 1)
    err = Console(stderr=True)
    show = not a.quiet and err.is_terminal
    try:
        if show:
            with LiveProgress(err, plan.options.chargers, plan.duration) as live:
                report = execute(plan, live.update)
        else:
            report = execute(plan)
    except ScenarioError as e:
        return _fail(str(e), 2)
    except SimError as e:
        return _fail(e.message, 1)
    Console().print(render_summary(report))
    for hint in limit_hints(report):
        print(f"ampgate sim: {hint}", file=sys.stderr)
    if a.report:
        try:
            with open(a.report, "w") as f:
                json.dump(report, f, indent=2)
                f.write("\n")
        except OSError as e:
            return _fail(f"cannot write the report to {a.report}: {e}", 1)
    return 130 if report.get("interrupted") else 0
