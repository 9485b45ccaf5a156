"""`bench/pricing.py --quick` runs, and its ways of pricing each case agree (compiled or not, with or without
periods). Its figures are not looked at: a handful of calls on a shared machine mean nothing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pricing.py"


def test_the_pricing_bench_runs_and_agrees() -> None:
    spec = importlib.util.spec_from_file_location("bench_pricing", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_pricing"] = module
    try:
        spec.loader.exec_module(module)
        result = module.run(0.0, quick=True)
    finally:
        del sys.modules["bench_pricing"]
    assert result["all_agree"]
    assert {c["case"] for c in result["cases"]} == {
        "energy_parking",
        "time_of_day",
        "power_bands",
        "complex",
        "worst_case",
    }
    assert all(c["samples"] == 1000 for c in result["cases"])
    assert next(c for c in result["cases"] if c["case"] == "worst_case")["periods"] == 1000
