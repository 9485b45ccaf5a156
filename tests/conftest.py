"""Shared fixtures: a real `ampgate serve` node in a subprocess, on free ports and a temporary database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

# A node starts its workers (one Python interpreter each) before it reports ready.
NODE_START_TIMEOUT = 30.0

# `make test` runs pytest on two xdist workers (`-n 2 --dist loadgroup`). These modules drive a fleet hard enough
# to load the box (the benches at CI size, the closed loops with a one-second tick, the 300-charger campaigns):
# they share one xdist group, so they run one after another on one worker and never against each other, while
# the other worker takes the rest of the suite.
HEAVY = frozenset(
    {
        "tests/bench/test_compare_smoke.py",
        "tests/bench/test_storm_smoke.py",
        "tests/bench/test_connections_smoke.py",
        "tests/bench/test_ocpi_push_smoke.py",
        "tests/bench/test_kill9_smoke.py",
        "tests/sim/test_load_closed_loop.py",
        "tests/campaigns/test_campaigns_sim.py",
        "tests/openadr/test_closed_loop.py",
        "tests/integration/test_campaign_windows_node.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        if item.path.relative_to(root).as_posix() in HEAVY:
            item.add_marker(pytest.mark.xdist_group("heavy"))


@dataclass
class RunningNode:
    """A node process started for a test."""

    proc: subprocess.Popen
    db: Path
    ocpp_port: int
    api_port: int
    public_port: int
    public_base_url: str
    admin_token: str
    worker_pids: list[int]
    log_path: Path
    extra: dict = field(default_factory=dict)
    ocpp_tls_port: int | None = None

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    @property
    def ocpp_tls_url(self) -> str:
        return f"wss://127.0.0.1:{self.ocpp_tls_port}/ocpp"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    def api(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the API with `token` (default: the admin token)."""
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            timeout=15,
        )

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        """One API GET with a client that is closed afterwards."""
        with self.api(token) as api:
            return api.get(path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_node(tmp_path: Path, *args: str, db: Path | None = None) -> RunningNode:
    """Start `ampgate serve` on free ports; returns once it wrote its ready file."""
    db = db or tmp_path / "ampgate.db"
    ready = tmp_path / f"ready-{time.monotonic_ns()}.json"
    log_path = tmp_path / f"node-{time.monotonic_ns()}.log"
    cmd = [
        sys.executable,
        "-m",
        "ampgate.cli",
        "serve",
        "--ocpp-host",
        "127.0.0.1",
        "--ocpp-port",
        "0",
        "--api-port",
        "0",
        "--public-host",
        "127.0.0.1",
        "--public-port",
        "0",
        "--db",
        str(db),
        "--ready-file",
        str(ready),
        *args,
    ]
    if "--workers" not in args:
        cmd += ["--workers", "1"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    deadline = time.monotonic() + NODE_START_TIMEOUT
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"node not ready after {NODE_START_TIMEOUT}s:\n{log_path.read_text()}")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return RunningNode(
        proc,
        db,
        info["ocpp_port"],
        info["api_port"],
        info["public_port"],
        info["public_base_url"],
        info["admin_token"],
        info["workers"],
        log_path,
        ocpp_tls_port=info.get("ocpp_tls_port"),
    )


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator:
    """Start nodes with extra CLI arguments; every node is stopped when the test ends."""
    nodes: list[RunningNode] = []

    def factory(*args: str, db: Path | None = None) -> RunningNode:
        n = start_node(tmp_path, *args, db=db)
        nodes.append(n)
        return n

    yield factory
    for n in nodes:
        n.stop()


@pytest.fixture
def node(node_factory) -> RunningNode:
    """A node with one worker, unknown chargers admitted."""
    return node_factory()
