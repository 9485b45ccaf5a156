"""The charger-fleet simulator (`ampgate sim`): scenarios compiled into the settings of Rust engine processes
(scenario), the processes themselves (proc) and their runner (runner), the schema check of what the central
system sends (check), and merged reports (report). Connections, timers and each charger's state machine run in
the engine, `ampgate._native.Sim`; Python never handles a charger's messages one by one, except to check them.

The names below are imported on first use: `ampgate serve` (whose parser lists the built-in scenarios) and
every simulator process import this package, and neither needs the runner or `rich`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BUILTINS": "scenario",
    "FleetOptions": "scenario",
    "Scenario": "scenario",
    "ScenarioError": "scenario",
    "load_scenario": "scenario",
    "SimError": "runner",
    "SimPlan": "runner",
    "execute": "runner",
    "make_plan": "runner",
    "run_sim": "runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"ampgate.sim.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'ampgate.sim' has no attribute {name!r}")
