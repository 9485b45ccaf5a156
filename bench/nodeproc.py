"""An `ampgate serve` node in a subprocess for the durability benches (bench/durability.py, bench/kill9.py):
started on loopback with a ready file, stopped by SIGTERM or killed by SIGKILL, restarted on the same database
and port. Also runs `ampgate sim` with a scenario file and returns its report."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A node starts its gateway workers (an interpreter each) before it writes its ready file.
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NodeProc:
    proc: subprocess.Popen[bytes]
    ocpp_port: int
    api_port: int
    log_path: Path
    admin_token: str | None = None  # only the first start of a database writes one
    ocpp_tls_port: int | None = None  # with --ocpp-tls-port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (the node flushes its store) and wait; SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL the node and its gateway workers (its process group: the workers die with it, as on a
        crash of the machine's node process they would lose their parent)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def start_node(workdir: Path, db: Path, *args: str, ocpp_port: int = 0) -> NodeProc:
    """Start a node on `db` (one worker unless `args` say --workers); return once it is ready. RuntimeError
    if it exits or hangs."""
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = time.monotonic_ns()
    ready = workdir / f"ready-{stamp}.json"
    log_path = workdir / f"node-{stamp}.log"
    cmd = [
        sys.executable, "-m", "ampgate.cli", "serve",
        "--ocpp-host", "127.0.0.1", "--ocpp-port", str(ocpp_port),
        "--api-host", "127.0.0.1", "--api-port", "0",
        "--public-host", "127.0.0.1", "--public-port", "0",
        "--db", str(db), "--ready-file", str(ready),
        *(() if "--workers" in args else ("--workers", "1")),
        # The bench fleets are made-up ids: unmetered, as in bench/connections.py.
        "--unknown-ids-per-minute", "0",
        *args,
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its own process group: kill() takes the workers too
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"node not ready after {START_TIMEOUT:g} s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return NodeProc(
        proc,
        int(info["ocpp_port"]) if info["ocpp_port"] is not None else 0,
        int(info["api_port"]),
        log_path,
        info.get("admin_token"),
        info.get("ocpp_tls_port"),
    )


def sim_command() -> list[str]:
    return [sys.executable, "-m", "ampgate.cli", "sim"]


def start_sim(
    workdir: Path, url: str, chargers: int, scenario: str, *extra: str, name: str = "sim"
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start `ampgate sim` (its own process group) with `scenario` (TOML text); returns it and its report path."""
    scenario_path = workdir / f"{name}.toml"
    scenario_path.write_text(scenario)
    report = workdir / f"{name}.report.json"
    log = workdir / f"{name}.log"
    cmd = [*sim_command(), "--url", url, "--chargers", str(chargers), "--scenario-file", str(scenario_path)]
    cmd += ["--report", str(report), "--quiet", *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, report


def finish_sim(proc: subprocess.Popen[bytes], report: Path, timeout: float) -> dict[str, Any]:
    """Wait for the simulator to end and return its report; RuntimeError if it fails or hangs (stopped by SIGINT,
    exit 130 with `interrupted` in the report, counts as ended)."""
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError(f"the simulator hung past {timeout:g} s") from None
    if rc not in (0, 130) or not report.exists():
        log = report.with_name(report.name.replace(".report.json", ".log"))
        raise RuntimeError(f"`ampgate sim` exited with {rc}:\n{log.read_text(errors='replace')[-3000:]}")
    result: dict[str, Any] = json.loads(report.read_text())
    return result
