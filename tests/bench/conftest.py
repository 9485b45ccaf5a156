"""The benchmarks' limit server, built once per session for the smoke runs that start it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def limit_binary() -> Iterator[Path]:
    """Build `ampgate-limit` (bench/connections.py `limit_binary`: a no-op when it is up to date) and hand its
    path to the benchmark subprocesses through $AMPGATE_LIMIT_BIN, so the build happens here, outside their
    timeouts. Only the tests that run the limit system use it: `make test` builds it once, when they run."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT / "bench"))
        connections = importlib.import_module("connections")
        exe = connections.limit_binary()
        mp.setenv(connections.LIMIT_BIN_ENV, str(exe))
        yield exe
    sys.modules.pop("connections", None)
