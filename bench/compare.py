"""The comparison benchmark: ampgate beside peer OCPP central systems, all driven by `ampgate sim`.

    python bench/compare.py [--chargers N] [--json OUT] [--full] [--smoke] [--protocol 1.6|2.0.1]

Systems, one at a time on this machine, each started fresh and stopped before the next:
  ampgate     a node (`ampgate serve`, its own temporary database), as bench/connections.py starts it;
  websockets  peer 1: the `ocpp` package's ChargePoint on a `websockets` server (bench/peers/ocpp_websockets.py);
  picows      peer 2: the same ChargePoint classes on `picows` (bench/peers/ocpp_picows.py);
  ocpp-rpc    peer 3: the Node.js `ocpp-rpc` package's RPCServer in strict mode (bench/peers/ocpp_rpc/server.js;
              `make bench-peers` installs Node.js and the package's locked dependencies; without them the
              default run skips it and says why);
  limit       the canned-reply Rust server of bench/connections.py (every CALL answered in Rust, no Python).
Against each, the same `ampgate sim` runs (a subprocess each, `--quiet --report R`):
  boot storm   N chargers connect and boot as fast as the server takes them (2,048 in flight, --storm-inflight),
               then idle: connections held at the end, handshake+boot rate, and the growth of the server
               processes' PSS from idle to the held plateau / connections = KB per connection;
  saturation   Heartbeat, then meter values in a transaction, each charger sending the next as soon as one is
               answered (scenario [load] rate = 0): round trips per s, and server CPU seconds per 1k round
               trips (CPU time of the server processes over the load window / round trips in it). For the meter
               values every charger first starts a transaction of the load's own on connector 1 (1.6
               StartTransaction, 2.0.1 TransactionEvent Started; at boot, before the load window, and not
               counted), then each round trip is one reading in it: 1.6 MeterValues with its transactionId,
               2.0.1 TransactionEvent Updated. The figures come from the report's `load` (the load CALLs
               alone, whatever action they went out as);
  50% rate     the same message at half the saturation rate: p99 round-trip latency.
The systems do not do the same work per message (PER_MESSAGE, in the JSON as `per_message` and under the
table): ampgate validates every message and commits every transaction message (its meter values included) to
SQLite before it replies; the Python peers validate with jsonschema, the Node.js one with ajv, and they answer
from memory, storing nothing; the limit answers with a canned reply and validates nothing.
The peers are single processes under the per-process open-file limit: they are compared at sizes all systems
hold (N, or the file limit less some room), each peer's ceiling is shown by a boot storm above the limit, and
ampgate (and the limit server) alone run the size beyond it, on a fresh server. Ratios ampgate/peer are the
headline. The simulator shares the machine's cores with the server: its CPU is recorded beside each run.
The chargers' id tag (ID_TAG) is registered in ampgate before the runs, since the peers and the limit accept any.
Sizes: --smoke (at most 2k; asserts correctness only: everything booted, every load transaction started,
messages answered, no errors), the default 10k, --full 100k. Results: bench/results/compare-N.json (a smoke run
given --json writes only there), and a table on stdout. Every wait is bounded; every child process is stopped on
exit, on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connections import (
    IDLE_SETTLE,
    NODE_START_TIMEOUT,
    BenchError,
    CannedServer,
    Node,
    cpu_seconds,
    pss_kb,
)

HERE = Path(__file__).resolve().parent
PEERS = {
    "websockets": HERE / "peers" / "ocpp_websockets.py",
    "picows": HERE / "peers" / "ocpp_picows.py",
    "ocpp-rpc": HERE / "peers" / "ocpp_rpc" / "server.js",
}
# The peers that run on Node.js (`node <script>`) rather than this Python.
NODE_PEERS = frozenset({"ocpp-rpc"})
SYSTEMS = ("ampgate", "websockets", "picows", "ocpp-rpc", "limit")
LABELS = {
    "ampgate": "ampgate",
    "websockets": "ocpp+websockets",
    "picows": "ocpp+picows",
    "ocpp-rpc": "ocpp-rpc (Node.js)",
    "limit": "limit (canned Rust)",
}
# What each system does with a message before it replies: the figures compare systems doing this, not equal
# work. Written into the JSON (`per_message`) and under the table.
_PEER_WORK = (
    "the ocpp package validates every message and its reply against the OCPP JSON schemas (jsonschema) and "
    "answers from memory: it stores nothing (its 1.6 StartTransaction ids come from a counter)"
)
PER_MESSAGE = {
    "ampgate": (
        "validates every message (msgspec types generated from the OCPP JSON schemas); answers Heartbeat from "
        "memory; queues each boot and status record to its SQLite writer without waiting; commits each "
        "transaction message (start, meter values, stop) with every sample to SQLite before it replies"
    ),
    "websockets": _PEER_WORK,
    "picows": _PEER_WORK,
    "ocpp-rpc": (
        "the ocpp-rpc package in strict mode validates every message and its reply against the OCPP JSON "
        "schemas (ajv) and answers from memory: it stores nothing (its 1.6 StartTransaction ids come from a "
        "counter)"
    ),
    "limit": (
        "a canned reply per action from the gateway's Rust connection state machine (ampgate-limit): no "
        "validation, no Python, nothing stored"
    ),
}
# The id tag of the simulated chargers. ampgate answers an unknown tag Invalid (the load's transaction would go
# on all the same) while the peers and the limit accept any: it is registered in ampgate so that every system
# gives the same answer.
ID_TAG = "SIMTAG"
API_TIMEOUT = 15.0

SMOKE_CHARGERS = 1000
SMOKE_MAX = 2000
DEFAULT_CHARGERS = 10_000
FULL_CHARGERS = 100_000
# Peers are compared at most at the file limit less this much, rounded down to a thousand: room for the
# listener, epoll, log files and the JSON schemas the `ocpp` package opens lazily (at the very limit it cannot
# open them and answers NotImplemented).
PEER_HEADROOM = 1000
# The ceiling probe: a boot storm this much above the file limit shows where each peer stops.
CEILING_EXTRA = 1000
# Boot rates (per s) assumed for a system's first boot storm, before its own is measured: low on purpose (the
# peers measured ~1,000/s here, ampgate ~15,000/s), since a storm cut short by its duration measures nothing.
ASSUMED_BOOT_RATE = {
    "ampgate": 2000.0,
    "limit": 2000.0,
    "websockets": 300.0,
    "picows": 300.0,
    "ocpp-rpc": 500.0,
}
# Later runs give the boot this many times the measured boot window (plus BOOT_SLACK s) before the load starts.
BOOT_MARGIN = 1.5
# Round trips each charger makes after its boot to start the meter-value load's transaction (its connector's
# StatusNotification and the start itself): the meter runs give them the time of as many heartbeats at the
# system's own heartbeat saturation, times BOOT_MARGIN, before the load starts, so that the window measures
# readings only (a peer answers ~2,000 messages per s: 2 × 19,000 of them take ~20 s).
LOAD_TX_SETUP_TRIPS = 2
BOOT_SLACK = 3.0  # (1 s in a smoke run)
# Time allowed on top of a sim run's duration before it counts as hung: start-up, and closing every link.
SIM_SLACK = 120.0
# Connects+boots in flight over the fleet in a boot storm, as bench/connections.py: the listen backlog is capped
# by net.core.somaxconn (4096 here), and a storm of every charger at once would time the kernel's 1 s SYN retry
# (and the peers' 10 s opening-handshake timeout) more than the servers. --storm-inflight 0 is the built-in
# `boot-storm` scenario (no cap), for a robustness run rather than a rate.
STORM_INFLIGHT = 2048
# At saturation every charger has a call outstanding, so a round (each charger answered once) takes N / rate s.
# A server that answers in waves (the `ocpp` package validates on a FIFO thread pool: every request of a round
# is validated before the first reply) completes whole rounds only, so the window must hold several for the
# count to measure a rate: a run with fewer is repeated with a window long enough (at most MAX_LOAD_WINDOW).
MIN_ROUNDS = 4
# Every system also takes heartbeats at this one rate, under every peer's 50% point here (~1,200/s): the p99
# at 50% compares each system at its own load, this compares them at the same load.
COMMON_RATE = 1000.0
MAX_LOAD_WINDOW = 90.0
# For the same reason a call at saturation waits N / rate s in a slow server's queue: a charger's 30 s timeout
# would turn that queue into errors and leave no rate to measure, so the load runs wait longer.
LOAD_CALL_TIMEOUT = 300.0
# A 50% run that gets less than this share of the rate it asked for was an overload (of the server, or of the
# simulator on the same cores): the table says so beside its p99.
HALF_RATE_SHORTFALL = 0.95
# Server readings (CPU, PSS, open files) this often during a run.
SAMPLE_PERIOD = 0.5
# The CPU window starts this long after the nominal load start: the sim's own start-up (processes spawned,
# modules imported) delays its clock behind ours by about a second.
CPU_WINDOW_LEAD = 2.5
# After a run, wait (at most this long) for the server to close its links before the next run starts.
DRAIN_TIMEOUT = 60.0
PEER_START_TIMEOUT = 30.0
PEER_STOP_TIMEOUT = 10.0
# Every child process group we started, so that cleanup reaches the simulator's worker processes too.
_SIM_GROUPS: set[int] = set()


# -- the systems under test ------------------------------------------------------------------------------


class System:
    """A server under test: started on a free loopback port, its processes known by pid, stopped at the end."""

    name = ""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = 0
        self.log_path = workdir / f"{self.name}.log"
        self.server = ""

    @property
    def pids(self) -> dict[str, int]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def stop(self) -> None:
        raise NotImplementedError

    def log_errors(self) -> int:
        """ERROR lines in the server's log (a peer at its file limit logs every failed accept)."""
        n = 0
        with contextlib.suppress(FileNotFoundError), open(self.log_path, "rb") as f:
            for line in f:
                n += b" ERROR " in line or b"Traceback" in line
        return n


class AmpgateSystem(System):
    name = "ampgate"

    def __init__(self, workdir: Path, max_chargers: int) -> None:
        from ampgate.config import default_workers

        super().__init__(workdir)
        self.workers = default_workers(max_chargers)
        self.node = Node(workdir, max_chargers, self.workers)
        self.log_path = self.node.log_path
        try:
            info = self.node.wait_ready()
        except BaseException:
            self.node.stop()
            raise
        self.port = info["ocpp_port"]
        self.server = f"ampgate serve, {self.workers} gateway workers"
        try:
            self._accept_id_tag(info)
        except BaseException:
            self.node.stop()
            raise

    @staticmethod
    def _accept_id_tag(info: dict[str, Any]) -> None:
        """Register ID_TAG as Accepted through the node's API (POST /api/v1/id-tokens)."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{info['api_port']}/api/v1/id-tokens",
            data=json.dumps({"id_token": ID_TAG, "status": "Accepted"}).encode(),
            headers={"Authorization": f"Bearer {info['admin_token']}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=API_TIMEOUT) as resp:
                status = resp.status
        except OSError as e:
            raise BenchError(f"registering the id tag {ID_TAG} in ampgate: {e}") from None
        if status != 201:
            raise BenchError(f"registering the id tag {ID_TAG} in ampgate: HTTP {status}")

    @property
    def pids(self) -> dict[str, int]:
        return self.node.pids

    def stop(self) -> None:
        self.node.stop()


def peer_unavailable(name: str) -> str | None:
    """Why a peer cannot run on this machine (None: it can). Only the Node.js peers need more than this
    Python: Node.js, and their packages installed from the committed lockfile."""
    if name not in NODE_PEERS:
        return None
    if shutil.which("node") is None:
        return "Node.js (`node`) is not installed; `make bench-peers` installs it"
    modules = PEERS[name].parent / "node_modules"
    if not (modules / "ocpp-rpc").is_dir():
        return f"{modules} is missing; `make bench-peers` installs it"
    return None


def peer_command(name: str) -> list[str]:
    if name in NODE_PEERS:
        return [shutil.which("node") or "node", str(PEERS[name])]
    return [sys.executable, str(PEERS[name])]


class PeerSystem(System):
    def __init__(self, workdir: Path, name: str) -> None:
        self.name = name
        super().__init__(workdir)
        ready = workdir / f"{name}.ready"
        cmd = [*peer_command(name), "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--ready-file", str(ready)]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the child writes to it until stop()
        # Its own session: a Ctrl-C at the terminal reaches us, and we stop the peer in order.
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + PEER_START_TIMEOUT
        try:
            while not ready.exists():
                if self.proc.poll() is not None:
                    raise BenchError(f"peer {name} exited with {self.proc.returncode}: {self._tail()}")
                if time.monotonic() > deadline:
                    raise BenchError(f"peer {name} not listening after {PEER_START_TIMEOUT:.0f} s")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        info = json.loads(ready.read_text())
        self.port = info["port"]
        self.server = f"{info['server']}, one process, open-file limit {info['nofile']:,}"

    def _tail(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
        return ""

    @property
    def pids(self) -> dict[str, int]:
        return {self.name: self.proc.pid}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(PEER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class LimitSystem(System):
    name = "limit"

    def __init__(self, workdir: Path, workers: int) -> None:
        super().__init__(workdir)
        self.canned = CannedServer(workers)
        try:
            self.canned.wait_ready(NODE_START_TIMEOUT)
        except BaseException:
            self.canned.stop()
            raise
        self.port = self.canned.port
        self.server = (
            f"{workers} canned-reply servers (ampgate-limit: the gateway's connection state machine)"
        )

    @property
    def pids(self) -> dict[str, int]:
        return self.canned.pids

    def stop(self) -> None:
        self.canned.stop()


def start_system(name: str, workdir: Path, max_chargers: int) -> System:
    from ampgate.config import default_workers

    if name == "ampgate":
        return AmpgateSystem(workdir, max_chargers)
    if name == "limit":
        return LimitSystem(workdir, default_workers(max_chargers))
    return PeerSystem(workdir, name)


# -- readings of the server's processes ------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic()
    cpu_s: float  # user + system seconds, all processes
    pss_kb: int
    files: int  # open descriptors, all processes


def read_sample(pids: dict[str, int]) -> Sample:
    cpu = pss = files = 0.0
    for pid in pids.values():
        u, s, _ = cpu_seconds(pid)
        cpu += u + s
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, BenchError):
            pss += pss_kb(pid)
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            files += len(os.listdir(f"/proc/{pid}/fd"))
    return Sample(time.monotonic(), cpu, int(pss), int(files))


class Sampler:
    """Reads the server's CPU, PSS and open files every SAMPLE_PERIOD s on a thread, while a run goes."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self.samples.append(read_sample(self.pids))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_PERIOD):
            self.samples.append(read_sample(self.pids))


def wait_drained(pids: dict[str, int], files: int) -> None:
    """Wait until the server is back to about `files` open descriptors (its links closed), bounded in time."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline and read_sample(pids).files > files + 16:
        time.sleep(0.25)


# -- one simulator run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    message: str  # "Heartbeat" | "MeterValues" (in a transaction of the load's own: see the module's doc)
    rate: float  # total per s; 0 = saturation
    start: float  # s after the start of the run


def scenario_toml(load: Load | None, storm_inflight: int) -> str:
    """The scenario file of a run (ampgate/sim/scenario.py has the format): a boot storm with at most
    `storm_inflight` connects+boots in flight over the fleet (0: all at once, the built-in `boot-storm`), or a
    fleet that boots and then sends `load`."""
    if load is None:
        return f"# written by bench/compare.py\n[run]\nmax_inflight = {storm_inflight}\n"
    return (
        "# written by bench/compare.py\n"
        "[run]\n"
        f"call_timeout = {LOAD_CALL_TIMEOUT:.0f}\n"
        "[load]\n"
        f'message = "{load.message}"\n'
        f"rate = {load.rate:.1f}\n"
        f"start = {load.start:.2f}\n"
    )


def sim_command(a: argparse.Namespace) -> list[str]:
    return a.sim_cmd.split() if a.sim_cmd else [sys.executable, "-m", "ampgate.cli", "sim"]


def kill_group(pgid: int) -> None:
    """Stop a simulator and its worker processes (its own process group, created by us)."""
    for sig, pause in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    _SIM_GROUPS.discard(pgid)


@dataclass
class SimRun:
    report: dict[str, Any]
    samples: list[Sample]
    t_spawn: float
    duration: float
    load: Load | None
    wall_s: float  # spawn to exit of the simulator
    sim_cpu_s: float  # CPU of the simulator's processes: it shares the machine with the server


def _children_cpu() -> float:
    """CPU seconds of our reaped descendants: a simulator run's processes once it has been waited for (the
    servers are still running, so not in it)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_sim(
    a: argparse.Namespace, system: System, name: str, chargers: int, duration: float, load: Load | None
) -> SimRun:
    """One `ampgate sim` run against `system`, with the server sampled throughout; BenchError if it fails."""
    report = system.workdir / f"{system.name}-{name}.report.json"
    log = system.workdir / f"{system.name}-{name}.sim.log"
    cmd = [*sim_command(a), "--url", system.url, "--chargers", str(chargers), "--protocol", a.protocol]
    cmd += ["--id-tag", ID_TAG]
    scenario = system.workdir / f"{system.name}-{name}.toml"
    scenario.write_text(scenario_toml(load, a.storm_inflight))
    cmd += ["--scenario-file", str(scenario), "--duration", f"{duration:.2f}"]
    cmd += ["--report", str(report), "--quiet", "--seed", "1"]
    if a.sim_processes:
        cmd += ["--processes", str(a.sim_processes)]
    before = read_sample(system.pids)
    cpu0 = _children_cpu()
    with open(log, "wb") as out, Sampler(system.pids) as sampler:
        t_spawn = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _SIM_GROUPS.add(proc.pid)
        try:
            rc = proc.wait(duration + SIM_SLACK)
        except subprocess.TimeoutExpired:
            raise BenchError(
                f"{name} against {system.name}: the simulator hung past {duration + SIM_SLACK:.0f} s"
            ) from None
        finally:
            kill_group(proc.pid)
            proc.wait()  # reaped: the group is gone (SIGKILLed above if it was not)
        wall = time.monotonic() - t_spawn
    if rc != 0 or not report.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise BenchError(f"{name} against {system.name}: `ampgate sim` exited with {rc}:\n{tail}")
    sim_cpu = _children_cpu() - cpu0
    wait_drained(system.pids, before.files)
    samples = [before, *sampler.samples]
    return SimRun(json.loads(report.read_text()), samples, t_spawn, duration, load, wall, sim_cpu)


# -- figures from a run ----------------------------------------------------------------------------------


def errors_of(report: dict) -> dict[str, int]:
    return {kind: n for kind, n in report.get("errors", {}).items() if n}


def storm_figures(run: SimRun) -> dict[str, Any]:
    """Held, rate and KB per connection of a boot storm: PSS growth over the last sample before closing in
    which the server had about as many files open as at its peak."""
    r = run.report
    held = int(r.get("booted", 0))
    window = float(r.get("boot_window_s") or 0.0)
    before = run.samples[0]
    open_phase = [s for s in run.samples if s.t <= run.t_spawn + run.duration]
    peak = max((s.files for s in open_phase), default=0)
    plateau = [s for s in open_phase if s.files >= peak - max(16, peak // 200)]
    kb = (plateau[-1].pss_kb - before.pss_kb) / held if plateau and held else None
    return {
        "chargers": int(r.get("chargers", 0)),
        "connections_held": held,
        "connected_at_end": int(r.get("connected", 0)),
        "ever_booted": int(r.get("ever_booted", 0)),
        "boot_window_s": round(window, 3),
        "handshakes_per_s": round(int(r.get("ever_booted", 0)) / window) if window > 0 else None,
        "kb_per_conn": round(kb, 2) if kb is not None else None,
        "server_pss_idle_kb": before.pss_kb,
        "server_pss_held_kb": plateau[-1].pss_kb if plateau else None,
        "server_files_peak": peak,
        "sim_cores": round(run.sim_cpu_s / run.wall_s, 2),
        "errors": errors_of(r),
    }


def load_figures(run: SimRun) -> dict[str, Any]:
    """Round trips per s over the load window, server CPU per 1k of them, and the latency percentiles, from
    the report's `load`: the load CALLs alone (a 2.0.1 meter value goes out as a TransactionEvent, and the
    per-action figures would count the load's TransactionEvent Started, and any the scenario sends, too)."""
    assert run.load is not None
    r = run.report
    load = r.get("load") or {}
    action = load.get("action", run.load.message)
    window = run.duration - run.load.start
    # Answers that came while the links closed are outside the window.
    trips = int(load.get("answered", 0)) - int(load.get("answered_after_end", 0))
    per_s = trips / window if window > 0 else 0.0
    # A short window (a smoke run) keeps at least its later part.
    lead = min(CPU_WINDOW_LEAD, 0.5 * window)
    lo, hi = run.t_spawn + run.load.start + lead, run.t_spawn + run.duration
    inside = [s for s in run.samples if lo <= s.t <= hi]
    cpu_per_1k = cores = None
    if len(inside) >= 2 and per_s > 0:
        cores = (inside[-1].cpu_s - inside[0].cpu_s) / (inside[-1].t - inside[0].t)
        cpu_per_1k = cores / per_s * 1000
    lat = load.get("latency_ms", {}).get(action, {})
    return {
        "chargers": int(r.get("chargers", 0)),
        "booted": int(r.get("booted", 0)),
        "message": run.load.message,
        "sent_as": action,
        "load_transactions": load.get("transactions"),
        "rate_asked": run.load.rate,
        "load_window_s": round(window, 2),
        "round_trips": trips,
        "per_s": round(per_s),
        "p50_ms": lat.get("p50"),
        "p99_ms": lat.get("p99"),
        "max_ms": lat.get("max"),
        "server_cores": round(cores, 2) if cores is not None else None,
        "cpu_s_per_1k": round(cpu_per_1k, 4) if cpu_per_1k is not None else None,
        # The simulator's average over its whole run (boot and closing too): with the server on the same
        # cores, a saturation figure is the machine's, shared between the two.
        "sim_cores": round(run.sim_cpu_s / run.wall_s, 2),
        "errors": errors_of(r),
    }


# -- the run ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    chargers: int  # N asked for
    compare: int  # the size every system runs
    ceiling_probe: int | None  # peers' boot storm above the file limit (None: not probed)
    beyond: int | None  # ampgate and the limit alone: a boot storm of this size (None: not run)
    beyond_load: bool  # ...and the load runs at N too
    hold: float  # s of idle after the boot storm's expected end
    phase: float  # s of each load run's load window
    boot_slack: float  # s added to every boot budget


def make_plan(a: argparse.Namespace, nofile: int) -> Plan:
    peer_max = (nofile - PEER_HEADROOM) // 1000 * 1000
    compare = min(a.chargers, peer_max)
    if a.smoke:
        return Plan(a.chargers, compare, None, None, False, hold=1.0, phase=3.0, boot_slack=1.0)
    probe = nofile + CEILING_EXTRA
    beyond = max(a.chargers, probe)
    return Plan(
        a.chargers, compare, probe, beyond, a.chargers > compare, a.hold, a.duration, boot_slack=BOOT_SLACK
    )


def storm_duration(n: int, rate: float, plan: Plan) -> float:
    return n / rate * BOOT_MARGIN + plan.boot_slack + plan.hold


def load_series(a: argparse.Namespace, system: System, n: int, boot_s: float, plan: Plan) -> dict[str, Any]:
    """Saturation then 50% rate, for Heartbeat and for MeterValues (in the load's transaction), each a run of n
    chargers."""
    out: dict[str, Any] = {}
    boot_start, phase = boot_s * BOOT_MARGIN + plan.boot_slack, plan.phase
    for message, key in (("Heartbeat", "heartbeat"), ("MeterValues", "meter_values")):
        start = boot_start
        heartbeat_rate = out.get("heartbeat_saturation", {}).get("per_s")
        if message == "MeterValues" and heartbeat_rate:
            start += LOAD_TX_SETUP_TRIPS * n / heartbeat_rate * BOOT_MARGIN
        saturation = Load(message, 0, start)
        sat = load_figures(run_sim(a, system, f"{key}-saturation", n, start + phase, saturation))
        rounds = sat["round_trips"] / n
        if rounds < MIN_ROUNDS and phase < MAX_LOAD_WINDOW:
            window = min(MAX_LOAD_WINDOW, phase * MIN_ROUNDS / rounds) if rounds else MAX_LOAD_WINDOW
            name = f"{key}-saturation-long"
            sat = load_figures(run_sim(a, system, name, n, start + window, saturation))
        sat["rounds"] = round(sat["round_trips"] / n, 1)
        out[f"{key}_saturation"] = sat
        if sat["per_s"] > 0:
            half = Load(message, sat["per_s"] / 2, start)
            out[f"{key}_half"] = load_figures(run_sim(a, system, f"{key}-half", n, start + phase, half))
        if key == "heartbeat" and not a.smoke:
            common = Load(message, COMMON_RATE, start)
            out[f"{key}_common"] = load_figures(run_sim(a, system, f"{key}-common", n, start + phase, common))
    return out


def run_system(a: argparse.Namespace, name: str, plan: Plan, workdir: Path) -> dict[str, Any]:
    """Every run of one system: the compared size on a fresh server (then a peer's ceiling probe), and the
    size beyond the peers on another fresh server, so that each boot storm's memory growth starts from idle
    (an allocator keeps and reuses what earlier runs freed)."""
    max_chargers = max(plan.compare, plan.beyond or 0)
    result: dict[str, Any] = {"label": LABELS[name]}
    system = start_system(name, workdir / "compare", max_chargers)
    result["server"] = system.server
    try:
        runs, rate = storm_and_load(a, system, plan.compare, ASSUMED_BOOT_RATE[name], plan, plan.compare)
        result["runs"] = runs
        if name in PEERS and plan.ceiling_probe:
            # Last: at its file limit a peer cannot even open the `ocpp` package's schema files any more,
            # and logs every accept that fails.
            result["server_log_errors_before_ceiling"] = system.log_errors()
            n = plan.ceiling_probe
            result["ceiling"] = storm_figures(
                run_sim(a, system, "ceiling", n, storm_duration(n, rate, plan), None)
            )
    finally:
        system.stop()
        result["server_log_errors"] = system.log_errors()
    if name in PEERS or not plan.beyond or plan.beyond <= plan.compare:
        return result
    system = start_system(name, workdir / "beyond", max_chargers)
    try:
        load_n = plan.chargers if plan.beyond_load else None
        result["beyond"], _ = storm_and_load(a, system, plan.beyond, rate, plan, load_n)
    finally:
        system.stop()
        result["server_log_errors_beyond"] = system.log_errors()
    return result


def storm_and_load(
    a: argparse.Namespace, system: System, storm_n: int, rate_guess: float, plan: Plan, load_n: int | None
) -> tuple[dict[str, Any], float]:
    """A boot storm of storm_n from idle, then (unless load_n is None) the load runs with load_n chargers;
    returns the figures and the boot rate measured."""
    time.sleep(IDLE_SETTLE)  # imports finish, allocations settle before the idle PSS
    storm = run_sim(a, system, "boot-storm", storm_n, storm_duration(storm_n, rate_guess, plan), None)
    runs: dict[str, Any] = {"boot_storm": storm_figures(storm)}
    rate = runs["boot_storm"]["handshakes_per_s"] or rate_guess
    if load_n is not None:
        runs.update(load_series(a, system, load_n, load_n / rate, plan))
    return runs, rate


def figures(runs: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one system at one size."""
    storm = runs.get("boot_storm", {})

    def get(run: str, key: str) -> Any:
        return runs.get(run, {}).get(key)

    return {
        "connections_held": storm.get("connections_held"),
        "handshakes_per_s": storm.get("handshakes_per_s"),
        "heartbeats_per_s": get("heartbeat_saturation", "per_s"),
        "meter_values_per_s": get("meter_values_saturation", "per_s"),
        "heartbeat_p99_ms_at_half": get("heartbeat_half", "p99_ms"),
        "heartbeats_per_s_at_half": get("heartbeat_half", "per_s"),
        "meter_values_p99_ms_at_half": get("meter_values_half", "p99_ms"),
        "meter_values_per_s_at_half": get("meter_values_half", "per_s"),
        "heartbeat_p99_ms_at_common_rate": get("heartbeat_common", "p99_ms"),
        "kb_per_conn": storm.get("kb_per_conn"),
        "cpu_s_per_1k_heartbeats": get("heartbeat_saturation", "cpu_s_per_1k"),
        "cpu_s_per_1k_meter_values": get("meter_values_saturation", "cpu_s_per_1k"),
    }


# Which way is better for each figure: ratios are ampgate/peer, the advantage says how many times better.
HIGHER_IS_BETTER = {
    "connections_held": True,
    "handshakes_per_s": True,
    "heartbeats_per_s": True,
    "meter_values_per_s": True,
    "heartbeat_p99_ms_at_half": False,
    "meter_values_p99_ms_at_half": False,
    "heartbeat_p99_ms_at_common_rate": False,
    "kb_per_conn": False,
    "cpu_s_per_1k_heartbeats": False,
    "cpu_s_per_1k_meter_values": False,
}


def headline(figs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ours = figs.get("ampgate")
    out: dict[str, dict[str, Any]] = {}
    if not ours:
        return out
    for other, theirs in figs.items():
        if other == "ampgate":
            continue
        row = {}
        for key, higher in HIGHER_IS_BETTER.items():
            a, b = ours.get(key), theirs.get(key)
            if a is None or b is None or a <= 0 or b <= 0:  # missing, or memory growth lost in noise
                row[key] = {"ampgate_over_other": None, "advantage": None}
                continue
            ratio = a / b
            row[key] = {
                "ampgate_over_other": round(ratio, 3),
                "advantage": round(ratio if higher else 1 / ratio, 2),
            }
        out[other] = row
    return out


def smoke_failures(result: dict[str, Any]) -> list[str]:
    """Correctness only: every system booted every charger in every run, answered the load, and no errors."""
    failures = []
    n = result["compare_size"]
    for name, sysres in result["systems"].items():
        for run_name, run in sysres.get("runs", {}).items():
            where = f"{name} {run_name}"
            booted = run.get("connections_held", run.get("booted"))
            if booted != n:
                failures.append(f"{where}: {booted} of {n} chargers booted")
            if "round_trips" in run and run["round_trips"] <= 0:
                failures.append(f"{where}: no {run['message']} answered")
            started = (run.get("load_transactions") or {}).get("started")
            if run.get("message") == "MeterValues" and started != n:
                failures.append(f"{where}: {started} of {n} load transactions started")
            if run["errors"]:
                failures.append(f"{where}: errors {run['errors']}")
        if sysres.get("runs", {}).get("boot_storm", {}).get("kb_per_conn") is None:
            failures.append(f"{name}: no memory figure")
    return failures


def run(a: argparse.Namespace) -> dict[str, Any]:
    _soft, nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Our soft limit up to the hard one, for the children to inherit: the Python peers raise their own, but
    # Node.js has no setrlimit, so the Node.js peer runs under the limit it is started with.
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    plan = make_plan(a, nofile)
    result: dict[str, Any] = {
        "chargers": plan.chargers,
        "compare_size": plan.compare,
        "ceiling_probe_size": plan.ceiling_probe,
        "beyond_size": plan.beyond if plan.beyond and plan.beyond > plan.compare else None,
        "beyond_load_size": plan.chargers if plan.beyond_load else None,
        "protocol": a.protocol,
        "mode": "smoke" if a.smoke else "full" if a.full else "default",
        "storm_inflight": a.storm_inflight,
        "sim_processes": a.sim_processes or "as few as the open-file limit allows",
        "hold_s": plan.hold,
        "load_window_s": plan.phase,
        "machine": {"cores": os.cpu_count(), "open_file_limit": nofile},
        "versions": versions(),
        "per_message": {name: PER_MESSAGE[name] for name in a.systems},
        # Peers left out of a default run because they cannot run here, and why.
        "skipped": dict(a.skipped),
        "systems": {},
    }
    with tempfile.TemporaryDirectory(prefix="ampgate-compare-") as tmp:
        for name in a.systems:
            workdir = Path(tmp) / name
            workdir.mkdir()
            print(f"-- {LABELS[name]}", file=sys.stderr, flush=True)
            result["systems"][name] = run_system(a, name, plan, workdir)
    figs = {name: figures(s.get("runs", {})) for name, s in result["systems"].items()}
    result["figures"] = figs
    result["headline"] = headline(figs)
    result["ceilings"] = {
        name: s["ceiling"]["connections_held"] for name, s in result["systems"].items() if "ceiling" in s
    }
    result["beyond"] = {name: figures(s["beyond"]) for name, s in result["systems"].items() if "beyond" in s}
    if a.smoke:
        result["smoke_failures"] = smoke_failures(result)
        result["smoke_ok"] = not result["smoke_failures"]
    return result


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("ampgate", "ocpp", "websockets", "picows", "aiofastnet"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    node = shutil.which("node")
    out["node"] = "not installed"
    if node:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out["node"] = subprocess.run(
                [node, "--version"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
    out["ocpp-rpc"] = "not installed"
    package = PEERS["ocpp-rpc"].parent / "node_modules" / "ocpp-rpc" / "package.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        out["ocpp-rpc"] = json.loads(package.read_text())["version"]
    return out


# -- output ----------------------------------------------------------------------------------------------

ROWS = (
    ("connections held", "connections_held", "{:,.0f}"),
    ("handshakes+boots per s", "handshakes_per_s", "{:,.0f}"),
    ("heartbeats per s (saturation)", "heartbeats_per_s", "{:,.0f}"),
    ("meter values in a transaction per s (saturation)", "meter_values_per_s", "{:,.0f}"),
    ("heartbeat p99 ms at 50%", "heartbeat_p99_ms_at_half", "{:,.2f}"),
    ("  (at heartbeats per s)", "heartbeats_per_s_at_half", "{:,.0f}"),
    ("meter values in a transaction p99 ms at 50%", "meter_values_p99_ms_at_half", "{:,.2f}"),
    ("  (at meter values per s)", "meter_values_per_s_at_half", "{:,.0f}"),
    (f"heartbeat p99 ms at {COMMON_RATE:,.0f}/s (all)", "heartbeat_p99_ms_at_common_rate", "{:,.2f}"),
    ("KB per connection (PSS)", "kb_per_conn", "{:,.2f}"),
    ("CPU s per 1k heartbeats", "cpu_s_per_1k_heartbeats", "{:,.4f}"),
    ("CPU s per 1k meter values in a transaction", "cpu_s_per_1k_meter_values", "{:,.4f}"),
)


# The row labels' column: the longest label and a gap.
LABEL_WIDTH = max(len(row[0]) for row in ROWS) + 2


def _fmt(v: Any, fmt: str) -> str:
    return "n/a" if v is None else fmt.format(v)


def _times(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.0f}x" if v >= 10 else f"{v:.1f}x" if v >= 1 else f"{v:.2f}x"


def table(r: dict[str, Any]) -> str:
    names = list(r["systems"])
    others = [n for n in names if n != "ampgate"] if "ampgate" in names else []
    w = 21
    lines = [
        f"ampgate beside peer OCPP central systems: {r['compare_size']:,} chargers ({r['protocol']}), one "
        f"{r['machine']['cores']}-core machine, `ampgate sim` as the load ({r['mode']} run)",
        "",
        f"{'':<{LABEL_WIDTH}}"
        + "".join(f"{LABELS[n]:>{w}}" for n in names)
        + "".join(f"{'vs ' + n:>{w}}" for n in others),
    ]
    for label, key, fmt in ROWS:
        cells = "".join(f"{_fmt(r['figures'][n].get(key), fmt):>{w}}" for n in names)
        adv = "".join(
            f"{_times(r['headline'][o][key]['advantage']) if key in HIGHER_IS_BETTER else '':>{w}}"
            for o in others
        )
        lines.append(f"{label:<{LABEL_WIDTH}}{cells}{adv}".rstrip())
    lines.append("")
    lines.append(
        "vs: how many times better ampgate is (ampgate/peer for rates and connections, peer/ampgate for "
        "latency, memory and CPU); JSON `headline` has the plain ampgate/peer ratios."
    )
    lines.append("what each system does with a message before it replies (JSON `per_message`):")
    for n in names:
        lines.append(f"  {LABELS[n]}: {r.get('per_message', {}).get(n, 'n/a')}")
    for n, why in r.get("skipped", {}).items():
        lines.append(f"skipped: {LABELS[n]}: {why}")
    for n, s in r["systems"].items():
        for run_name, run in s.get("runs", {}).items():
            asked, got = run.get("rate_asked"), run.get("per_s")
            if asked and got is not None and got < HALF_RATE_SHORTFALL * asked:
                lines.append(
                    f"note: {LABELS[n]} {run_name}: {got:,}/s answered of {asked:,.0f}/s asked (the simulator "
                    f"used {run['sim_cores']} cores, the server {run['server_cores']}): an overload, not 50%"
                )
    if r["ceilings"]:
        probe = r["ceiling_probe_size"]
        lines.append("")
        lines.append(
            f"ceilings (connections held in a boot storm of {probe:,}, open-file limit "
            f"{r['machine']['open_file_limit']:,} per process):"
        )
        for n, held in r["ceilings"].items():
            lines.append(f"  {LABELS[n]:<32}{held:>12,}")
    for n, figs in r["beyond"].items():
        lines.append("")
        size = f"{r['beyond_size']:,}"
        if r.get("beyond_load_size"):
            size += f" (load runs at {r['beyond_load_size']:,})"
        lines.append(f"beyond the peers: {LABELS[n]} alone at {size}:")
        for label, key, fmt in ROWS:
            if figs.get(key) is not None:
                lines.append(f"  {label:<{LABEL_WIDTH}}{_fmt(figs[key], fmt):>12}")
    lines.append("")
    lines.append("errors by system and run:")
    any_errors = False
    for n, s in r["systems"].items():
        groups = [
            ("", s.get("runs", {})),
            ("ceiling ", {"storm": s["ceiling"]} if "ceiling" in s else {}),
            ("beyond ", s.get("beyond", {})),
        ]
        for prefix, runs in groups:
            for run_name, run in runs.items():
                if run.get("errors"):
                    any_errors = True
                    lines.append(f"  {LABELS[n]} {prefix}{run_name}: {run['errors']}")
        if s.get("server_log_errors"):
            before = s.get("server_log_errors_before_ceiling")
            when = "" if before is None else f" ({before:,} of them before the ceiling probe)"
            lines.append(f"  {LABELS[n]}: {s['server_log_errors']:,} ERROR lines in the server's log{when}")
    if not any_errors:
        lines.append("  none")
    if "smoke_ok" in r:
        lines.append("")
        lines.append("smoke: " + ("ok" if r["smoke_ok"] else "FAILED\n  " + "\n  ".join(r["smoke_failures"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--chargers", type=int, default=0, help="N (default 10,000; --full 100,000; --smoke 1,000)"
    )
    p.add_argument(
        "--json",
        default=None,
        help="also write the results here (besides bench/results/compare-N.json, which a --smoke run given --json skips)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="100k chargers: ampgate alone far beyond the peers")
    size.add_argument("--smoke", action="store_true", help="CI size (at most 2k); asserts correctness only")
    p.add_argument("--protocol", choices=["1.6", "2.0.1"], default="1.6")
    p.add_argument("--duration", type=float, default=10.0, help="s of each load window (default %(default)s)")
    p.add_argument(
        "--hold", type=float, default=5.0, help="s of idle after a boot storm (default %(default)s)"
    )
    p.add_argument(
        "--systems",
        default=None,
        help=f"comma-separated subset of {','.join(SYSTEMS)} (the default: all that can run here; headline "
        "ratios need ampgate)",
    )
    p.add_argument(
        "--storm-inflight",
        type=int,
        default=STORM_INFLIGHT,
        help="connects+boots in flight in a boot storm (default %(default)s; 0 = all at once)",
    )
    p.add_argument(
        "--sim-processes",
        type=int,
        default=0,
        help="simulator processes per run (default: as few as the open-file limit allows)",
    )
    p.add_argument(
        "--sim-cmd", default="", help="the simulator command (default: this Python's `ampgate sim`)"
    )
    a = p.parse_args(argv)
    a.chargers = a.chargers or (SMOKE_CHARGERS if a.smoke else FULL_CHARGERS if a.full else DEFAULT_CHARGERS)
    if a.chargers < 1 or (a.smoke and a.chargers > SMOKE_MAX):
        p.error(f"--chargers must be at least 1 (and at most {SMOKE_MAX:,} with --smoke)")
    chosen = a.systems is not None
    a.systems = [s.strip() for s in (a.systems or ",".join(SYSTEMS)).split(",") if s.strip()]
    unknown = set(a.systems) - set(SYSTEMS)
    if unknown or not a.systems:
        p.error(f"--systems: pick from {', '.join(SYSTEMS)}")
    # A peer that cannot run here (the Node.js one without Node.js or its packages) is left out of a default
    # run with its reason printed and kept in the JSON; named in --systems, it is an error.
    a.skipped = {}
    for name in list(a.systems):
        why = peer_unavailable(name)
        if why is None:
            continue
        if chosen:
            p.error(f"--systems {name}: {why}")
        a.systems.remove(name)
        a.skipped[name] = why
        print(f"-- skipping {LABELS[name]}: {why}", file=sys.stderr, flush=True)
    # SIGTERM ends the run like Ctrl-C: through the `finally`s that stop every child.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = run(a)
    except BenchError as e:
        print(f"compare benchmark failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("compare benchmark interrupted", file=sys.stderr)
        return 130
    finally:
        for pgid in list(_SIM_GROUPS):
            kill_group(pgid)
    text = json.dumps(result, indent=2) + "\n"
    # A smoke run with --json (the CI test) leaves the committed results alone.
    outs = [] if a.smoke and a.json else [HERE / "results" / f"compare-{a.chargers}.json"]
    if a.json:
        outs.append(Path(a.json))
    for out in outs:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    print(table(result))
    print("\nJSON: " + ", ".join(str(o) for o in outs))
    return 1 if result.get("smoke_ok") is False else 0


if __name__ == "__main__":
    sys.exit(main())
