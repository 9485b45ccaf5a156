"""A firmware campaign over a simulated fleet against a real node, beside the same update done without a campaign.

    python bench/campaign.py --chargers 100000 --json bench/results/campaign-100000.json
    python bench/campaign.py --chargers 100000 --profile bench/results/campaign-100000-profile.txt
    python bench/campaign.py --chargers 300 --canary 10 --step 0.1 --reboot-delay 0.2 --idle-seconds 1 --smoke
                                                       # CI size (tests/bench): exit 1 unless every charger updated

One `ampgate serve` (its own temporary database, as many gateway workers as the open-file cap asks for, admission
control and boot spreading off as in the other capacity benches) and ceil(N / PER_PROCESS) simulator processes
(bench/sim_proc.py: the fleet simulator's engine, unchecked bench mode). Every charger walks the firmware states
as `ampgate sim` does: on UpdateFirmware it answers, reports Downloading, Downloaded, Installing (2.0.1 also
InstallRebooting) `--step` s apart, reboots (its link closes, it reconnects `--reboot-delay` s later and boots
with the version its location's file name ends in, then sends its StatusNotification) and reports Installed.
Phases, each timed by the CPU every process used in it (/proc):

1. boot: every charger connects and boots with firmware 1.0.0, and the control plane finishes the boot's tail
   (its history and event-log rows); `--away` more chargers boot and leave first (the offline chargers of phase
   4). From here on the simulators run their chargers between phases too (the node's pings answered).
2. idle: the node holding the fleet, nothing sent: its background CPU, taken out of the other phases' figures
   (each process and thread its own, per second of the phase).
3. campaign: an image with an external location (no file served) and a campaign over the whole fleet (selector
   vendor "ampgate": a canary, then groups by percent), `max_in_flight` = the fleet and no `dispatch_per_minute`
   (no rate cap; the highest one the API takes is 100,000 a minute), started through the API; the summary
   `GET /api/v1/firmware/campaigns/{id}` is polled every POLL_PERIOD s throughout and timed at the client. The
   phase ends when the campaign is finished, every charger has booted the new version, and the control plane is
   idle again.
4. api: POST /api/v1/chargers/{id}/commands/UpdateFirmware?queue=true to the offline chargers: the API's own
   cost of queueing one command (HTTP, auth, validation, the durable record), with nothing sent.
5. baseline: the same update of the same fleet without a campaign (to another version): UpdateFirmware queued
   for every charger through the same API, delivered by the same command queue, answered by the same status
   notifications, reboot and boot; the summary polled at the same rate. Its CPU less phase 4's per command is
   what the node spends on the messages themselves (the UpdateFirmware round trip, the statuses, the reconnect
   and the boot) without a campaign; the campaign's CPU less that is what the campaign machinery adds per charger.

Figures: control-plane CPU per charger updated (its trio thread, store writer and hub thread apart; the gateway
workers apart; raw and net of the idle background), the node's own counters per phase (store writes and commits,
bus events and events lost, from /metrics), the dispatch rate (UpdateFirmware received by the chargers per second: over the campaign, and the best
DISPATCH_WINDOW s), the campaign's duration from the start verb to finished, and the summary's answer time at the
client while the campaign runs (target: p99 <= 50 ms at 100k chargers, issue 13). Prints JSON and a table;
`--json FILE` writes the JSON; `--profile FILE` records the control plane with py-spy during the campaign phase and
writes where its CPU went and its trio thread's stalls (the figures of a profiled run are not the ones to keep).
Every wait is bounded; the node and every simulator are stopped on the way out,
on an error or a SIGTERM too.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connections import (
    PHASE_SLACK,
    RUN_FOREVER,
    SOURCE_IPS_PER_PROCESS,
    BenchError,
    CpuMeter,
    Node,
    SimGroup,
    add_failures,
)

# Simulated chargers per process: under the 20,000-file cap with room for the links a reboot reopens.
PER_PROCESS = 12_500
# Connects + boots in flight over the fleet (the node's listen backlog is 4096 here; see bench/connections.py).
INFLIGHT_TOTAL = 2048
OLD_VERSION = "1.0.0"  # what the simulator boots
CAMPAIGN_VERSION = "2.0.0"
BASELINE_VERSION = "3.0.0"
# An external location (a CDN): the simulator takes the version from the file name and downloads nothing.
LOCATION = "http://fw.example/img/{version}.bin"
# The summary is read this often in the campaign and baseline phases (4 a second: a dashboard or two watching).
POLL_PERIOD = 0.25
# The target for the summary at 100k chargers.
SUMMARY_TARGET_MS = 50.0
# The best dispatch rate is taken over windows of this many seconds (the simulators sample every SIM_SAMPLE s).
DISPATCH_WINDOW = 5.0
SIM_SAMPLE = 0.25
# Phase 4: commands queued per offline charger (the queue holds 100 at most) and how many offline chargers.
API_PER_AWAY = 50
DEFAULT_AWAY = 100
AWAY_VENDOR = "bench-away"
# A campaign whose counts have not moved for this long has stalled: the run fails instead of waiting out --timeout.
STALL_S = 60.0
# Concurrent API clients in phases 4 and 5 (each its own keep-alive connection): enough to keep the node's
# HTTP side busy without the bench's own Python becoming what limits the rate.
POSTERS = 8
# The start verb freezes the whole selection in one write: seconds at 100k chargers on a busy box.
HTTP_TIMEOUT = 60.0
# The control plane counts as idle again (a phase's tail done: the last writes, the last events) once it uses
# less than IDLE_CORES over a SETTLE_WINDOW, two windows running (its background at 10k chargers is ~0.07 cores);
# at most SETTLE_MAX s are waited for that, SETTLE_BOOT_MAX after the boot (at 100k chargers the boot's tail, the
# event log's and connection history's rows, runs on for tens of seconds after the last boot is answered).
IDLE_CORES = 0.2
SETTLE_WINDOW = 0.5
SETTLE_MAX = 30.0
SETTLE_BOOT_MAX = 180.0
# The idle phase: long enough to see the node's periodic work (sweeps every 5 s, the event log's flushes).
IDLE_SECONDS = 10.0
# --profile: py-spy's samples per second of the control plane (non-blocking: it never pauses the node, so the
# figures of a profiled run move little; still, the committed figures come from runs without it).
PROFILE_RATE = 100
PY_SPY = Path(sys.executable).with_name("py-spy")


# -- HTTP ------------------------------------------------------------------------------------------------------


class Api:
    """One keep-alive HTTP/1.1 connection to the node's API with the admin token (one per thread)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        """(status, decoded JSON body or None, wall ms from the request's first byte to the body's last)."""
        data = None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            t0 = time.perf_counter()
            try:
                self.conn.request(method, "/api/v1" + path, body=data, headers=self.headers)
                r = self.conn.getresponse()
                raw = r.read()
            except (http.client.HTTPException, ConnectionError):
                # The server closed an idle keep-alive connection: one new connection, then give up.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
                if attempt:
                    raise
                continue
            ms = (time.perf_counter() - t0) * 1000
            return r.status, json.loads(raw) if raw else None, ms
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def metrics(port: int) -> dict[str, float]:
    """The node's unlabelled Prometheus samples (GET /metrics)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


# What the node did in a phase, from its own counters.
METRICS = {
    "bus_events": "ampgate_bus_events_published_total",
    "bus_events_lost": "ampgate_bus_events_lost_total",
    "store_ops": "ampgate_store_ops_total",
    "store_commits": "ampgate_store_commits_total",
}


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    return {k: int(after.get(m, 0) - before.get(m, 0)) for k, m in METRICS.items()}


class Poller:
    """A thread that GETs `path` every `period` s and keeps (monotonic time, wall ms, body) per answer."""

    def __init__(self, port: int, token: str, path: str, period: float) -> None:
        self.api = Api(port, token)
        self.path = path
        self.period = period
        self.samples: list[tuple[float, float, dict[str, Any]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="summary-poller")

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                status, body, ms = self.api.call("GET", self.path)
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
            else:
                if status == 200:
                    self.samples.append((time.monotonic(), ms, body))
                else:
                    self.errors.append(f"{status}: {body}")
            next_at += self.period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def last(self) -> dict[str, Any] | None:
        return self.samples[-1][2] if self.samples else None

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(HTTP_TIMEOUT + 1)
        self.api.close()


def post_all(port: int, token: str, requests: list[tuple[str, Any]]) -> dict[str, Any]:
    """POST every (path, body) from POSTERS threads; statuses counted, client wall ms kept."""
    chunks = [requests[i::POSTERS] for i in range(POSTERS)]

    def run(chunk: list[tuple[str, Any]]) -> tuple[dict[int, int], list[float], list[str]]:
        api = Api(port, token)
        statuses: dict[int, int] = {}
        times: list[float] = []
        bad: list[str] = []
        try:
            for path, body in chunk:
                status, reply, ms = api.call("POST", path, body)
                statuses[status] = statuses.get(status, 0) + 1
                times.append(ms)
                if status >= 300 and len(bad) < 3:
                    bad.append(f"{status} {path}: {reply}")
        finally:
            api.close()
        return statuses, times, bad

    t0 = time.monotonic()
    with ThreadPoolExecutor(POSTERS) as pool:
        results = list(pool.map(run, chunks))
    wall = time.monotonic() - t0
    statuses: dict[int, int] = {}
    times: list[float] = []
    bad: list[str] = []
    for s, t, b in results:
        for k, n in s.items():
            statuses[k] = statuses.get(k, 0) + n
        times += t
        bad += b
    return {"statuses": statuses, "wall_s": wall, "ms": times, "bad": bad[:3]}


class Profile:
    """py-spy recording the control plane's Python stacks, every thread, waiting ones too, in speedscope's format
    (per thread, the samples in order: with waiting ones kept, a sample's place in its thread is its time)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        cmd = [str(PY_SPY), "record", "--pid", str(pid), "--rate", str(PROFILE_RATE), "--nonblocking"]
        cmd += ["--idle", "--threads", "--function", "--format", "speedscope", "--output", str(out)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        """Stop sampling (SIGINT makes py-spy write its file) and wait for the file."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(HTTP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# A sample whose top frame is one of these is its thread waiting (trio's epoll wait, the store writer's queue, an
# idle thread of trio's cache), not running: py-spy's non-blocking mode cannot always tell, so they are counted
# apart. The trio thread returns to its epoll wait once per scheduling round, so a run of its samples that never
# does is one round that long: a stall of the whole loop (every charger's messages and the API wait meanwhile).
IDLE_FRAMES = (
    "EpollIOManager.get_events (trio/_core/_io_epoll.py",
    "Condition.wait (",
    "WorkerThread._work (trio/_core/_thread_cache.py",
)
STALL_MS = 200


def _frame(f: dict[str, Any]) -> str:
    path = f.get("file") or ""
    parts = path.split("/")
    short = "/".join(parts[-3:]) if "site-packages" in path or "/lib/python" in path else path
    if "/python/ampgate/" in path:
        short = "ampgate/" + path.split("/python/ampgate/", 1)[1]
    elif "site-packages/" in path:
        short = path.split("site-packages/", 1)[1]
    return f"{f['name']} ({short}:{f.get('line') or 0})" if path else f["name"]


def profile_text(path: Path, top: int = 40) -> str:
    """The samples summed up: per thread running and waiting; the functions by their own samples and by the
    samples of the stacks they are in (each stack counted once per function), running samples only; then the
    trio thread's stalls over STALL_MS, each with the functions most of its samples were in."""
    doc = json.loads(path.read_text())
    names = [_frame(f) for f in doc["shared"]["frames"]]
    own: dict[str, int] = {}
    within: dict[str, int] = {}
    threads: dict[str, list[int]] = {}
    # A stall: its length in samples, where it began, and per function [samples it was in, its depth].
    stalls: list[tuple[int, int, dict[str, list[int]]]] = []
    total = 0
    for prof in doc["profiles"]:
        counts = threads.setdefault(prof["name"], [0, 0])
        trio_thread = "MainThread" in prof["name"]
        run_start = 0
        run: dict[str, list[int]] = {}
        for i, stack in enumerate([*prof["samples"], None]):
            frames = [names[k] for k in stack] if stack is not None else []
            waiting = stack is None or not frames or frames[-1].startswith(IDLE_FRAMES)
            if trio_thread and waiting and run and i - run_start >= STALL_MS * PROFILE_RATE / 1000:
                stalls.append((i - run_start, run_start, run))
            if waiting:
                if stack is not None:
                    counts[1] += 1
                run_start, run = i + 1, {}
                continue
            counts[0] += 1
            total += 1
            own[frames[-1]] = own.get(frames[-1], 0) + 1
            for f in set(frames[1:]):
                within[f] = within.get(f, 0) + 1
            if trio_thread:
                for depth, f in enumerate(frames):
                    seen = run.setdefault(f, [0, depth])
                    seen[0] += 1
    if not total:
        return "no samples\n"

    def rows(d: dict[str, int], of: int = total, n: int = top) -> list[str]:
        return [f"{100 * c / of:6.1f}%  {c:>7}  {f}" for f, c in sorted(d.items(), key=lambda x: -x[1])[:n]]

    out = [
        f"{total} samples of a thread running, at {PROFILE_RATE}/s; percentages of those",
        "",
        "by thread:",
    ]
    out += [f"  {name}: {r} running, {w} waiting" for name, (r, w) in threads.items()]
    out += ["", "own time (the function on top of the stack):", *rows(own), ""]
    out += ["within (the function anywhere in the stack):", *rows(within), ""]
    out.append(
        f"stalls of the trio thread over {STALL_MS} ms (one scheduling round that long), longest first:"
    )
    for n, at, run in sorted(stalls, key=lambda x: -x[0])[:10]:
        # The deepest frames present in most of the stall's samples say what it was doing.
        common = sorted(((d, c, f) for f, (c, d) in run.items() if c >= 0.6 * n), reverse=True)[:6]
        out.append(f"  {1000 * n / PROFILE_RATE:.0f} ms, {at / PROFILE_RATE:.1f} s into the recording:")
        out += [f"    {100 * c / n:5.0f}%  {f}" for _, c, f in reversed(common)]
    return "\n".join(out) + "\n"


# -- figures ---------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))], 2)


def merged_series(answers: list[dict[str, Any]], field: int) -> list[tuple[float, int]]:
    """The processes' cumulative series (field 1: UpdateFirmware received, 2: updates ended) added up: at each
    sample time of any process, the sum of every process's latest value."""
    events = sorted(
        (t, p, row[field]) for p, a in enumerate(answers) for row in a["series"] for t in [row[0]]
    )
    latest = [0] * len(answers)
    out: list[tuple[float, int]] = []
    for t, p, v in events:
        latest[p] = v
        out.append((t, sum(latest)))
    return out


def best_rate(series: list[tuple[float, int]], window: float) -> float:
    """The highest (count growth / time) over any stretch of at least `window` s of the series (the whole series
    when it is shorter)."""
    if len(series) < 2 or series[-1][0] <= series[0][0]:
        return 0.0
    if series[-1][0] - series[0][0] < window:
        return (series[-1][1] - series[0][1]) / (series[-1][0] - series[0][0])
    best = 0.0
    j = 0
    for i in range(len(series)):
        while j < len(series) and series[j][0] - series[i][0] < window:
            j += 1
        if j == len(series):
            break
        best = max(best, (series[j][1] - series[i][1]) / (series[j][0] - series[i][0]))
    return best


def first_reaching(series: list[tuple[float, int]], value: int) -> float | None:
    return next((t for t, v in series if v >= value), None)


# -- the run ---------------------------------------------------------------------------------------------------


def sim_configs(
    a: argparse.Namespace, port: int, prefix: str, count: int, first_proc: int, vendor: str = "ampgate"
) -> list[dict]:
    procs = max(1, math.ceil(count / PER_PROCESS))
    base, extra = divmod(count, procs)
    configs, first = [], 0
    for p in range(procs):
        n = base + (1 if p < extra else 0)
        proc = first_proc + p
        configs.append(
            {
                "host": "127.0.0.1",
                "port": port,
                "path_prefix": "/ocpp",
                "id_prefix": prefix,
                "first_index": first,
                "count": n,
                "protocol": a.protocol,
                "source_ips": [f"127.0.{proc + 1}.{i}" for i in range(1, SOURCE_IPS_PER_PROCESS + 1)],
                "max_inflight": max(64, INFLIGHT_TOTAL // procs),
                "duration": RUN_FOREVER,
                "heartbeat_interval": RUN_FOREVER,
                "check_replies": False,
                "vendor": vendor,
                "firmware_step": a.step,
                "reboot_delay": a.reboot_delay,
            }
        )
        first += n
    return configs


def update_request(protocol: str, version: str, request_id: int) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    location = LOCATION.format(version=version)
    if protocol == "ocpp1.6":
        return {"location": location, "retrieveDate": now}
    return {"requestId": request_id, "firmware": {"location": location, "retrieveDateTime": now}}


class Run:
    """One bench run: the node, the simulators, the meter; `close` stops them all."""

    def __init__(self, a: argparse.Namespace, workdir: Path) -> None:
        from ampgate.config import default_workers

        self.a = a
        self.errors: dict[str, int] = {}
        self.workers = default_workers(a.chargers + a.away)
        self.node = Node(workdir, a.chargers + a.away, self.workers)
        self.group: SimGroup | None = None
        self.meter = CpuMeter()
        self.token = ""
        self.port = 0

    def close(self) -> None:
        if self.group is not None:
            self.group.stop()
        self.node.stop()

    def api(self) -> Api:
        return Api(self.port, self.token)

    def start(self) -> dict[str, Any]:
        info = self.node.wait_ready()
        self.token, self.port = info["admin_token"], info["api_port"]
        a = self.a
        out: dict[str, Any] = {}
        # The offline chargers of the api phase: booted once (so the node knows their protocol), then gone.
        away = SimGroup.start(
            # Another vendor: the campaign's selector (vendor "ampgate") leaves them out.
            sim_configs(
                a, info["ocpp_port"], "AWAY", a.away, math.ceil(a.chargers / PER_PROCESS), AWAY_VENDOR
            ),
            PHASE_SLACK,
        )
        try:
            booted = away.ask({"cmd": "boot", "timeout": 60.0}, 60.0 + PHASE_SLACK)
            add_failures(self.errors, "away boot", booted, "failures")
            away.ask({"cmd": "close", "timeout": 10.0}, 10.0 + PHASE_SLACK)
        finally:
            away.stop()
        self.group = SimGroup.start(sim_configs(a, info["ocpp_port"], "CP", a.chargers, 0), PHASE_SLACK)
        self.meter.watch("control plane", info["pid"], with_threads=True)
        for i, pid in enumerate(info["workers"]):
            self.meter.watch(f"worker {i}", pid)
        for i, pid in enumerate(self.group.pids):
            self.meter.watch(f"sim {i}", pid)
        timeout = max(60.0, a.chargers / 500)
        self.meter.start()
        answers = self.group.ask({"cmd": "boot", "timeout": timeout}, timeout + PHASE_SLACK)
        # From here on the simulators keep their chargers running between phases too (pings answered, reboots
        # finished), as real chargers would.
        self.group.ask({"cmd": "between", "run": True}, PHASE_SLACK)
        out["boot_tail_s"] = round(self._settle(SETTLE_BOOT_MAX), 2)
        self.meter.stop("boot")
        add_failures(self.errors, "boot", answers, "failures")
        out["booted"] = sum(x["booted"] for x in answers)
        out["boot_s"] = round(max(x["elapsed_s"] for x in answers), 2)
        if out["booted"] < a.chargers:
            raise BenchError(f"only {out['booted']} of {a.chargers} chargers booted")
        return out

    # Each phase that runs the fleet: the simulators run a `firmware` command in a thread while this thread drives
    # the API; the phase's CPU is measured from before the first request to the control plane idle again.

    def _fleet_firmware(self, timeout: float) -> tuple[threading.Thread, list[Any]]:
        assert self.group is not None
        # The counters the phase counts from, taken before anything is asked of the node: the simulators run
        # between phases, so an update may arrive before they read the `firmware` command.
        self.group.ask({"cmd": "mark"}, PHASE_SLACK)
        result: list[Any] = []
        cmd = {"cmd": "firmware", "timeout": timeout, "sample": SIM_SAMPLE}
        cmds = [dict(cmd, expect=n) for n in self.group.counts]
        group = self.group

        def run() -> None:
            try:
                result.append(group.ask(cmds, timeout + PHASE_SLACK))
            except BenchError as e:
                result.append(e)

        t = threading.Thread(target=run, daemon=True, name="fleet")
        t.start()
        return t, result

    def _settle(self, most: float = SETTLE_MAX) -> float:
        """Wait until the control plane is idle (see IDLE_CORES), `most` s at most; returns the seconds waited."""
        from connections import cpu_seconds

        pid = self.node.info["pid"]
        t0 = time.monotonic()
        quiet = 0
        last = sum(cpu_seconds(pid)[:2])
        while quiet < 2 and time.monotonic() - t0 < most:
            time.sleep(SETTLE_WINDOW)
            now = sum(cpu_seconds(pid)[:2])
            quiet = quiet + 1 if now - last < IDLE_CORES * SETTLE_WINDOW else 0
            last = now
        return time.monotonic() - t0

    def _join_fleet(self, thread: threading.Thread, result: list[Any], where: str) -> list[dict[str, Any]]:
        thread.join()
        if not result or isinstance(result[0], BaseException):
            raise BenchError(f"{where}: {result[0] if result else 'the simulators did not answer'}")
        answers: list[dict[str, Any]] = result[0]
        add_failures(self.errors, where, answers, "failures")
        return answers

    def idle(self) -> None:
        self.meter.start()
        time.sleep(self.a.idle_seconds)
        self.meter.stop("idle")

    def campaign(self) -> dict[str, Any]:
        a = self.a
        api = self.api()
        profile: Profile | None = None
        try:
            status, image, _ = api.call(
                "POST",
                "/firmware/images",
                {"version": CAMPAIGN_VERSION, "location": LOCATION.format(version=CAMPAIGN_VERSION)},
            )
            if status != 201:
                raise BenchError(f"image not created: {status} {image}")
            spec: dict[str, Any] = {
                "name": f"bench {a.chargers}",
                "image_id": image["id"],
                "selector": {"vendor": "ampgate"},
                "groups": [{"percent": p} for p in a.groups],
                "success_threshold_pct": 95,
                "error_threshold_pct": 5,
                "error_min_finished": 20,
                "max_in_flight": min(a.chargers, 100_000),
            }
            if a.canary:
                spec["canary"] = {"count": a.canary}
            if a.dispatch_per_minute:
                spec["dispatch_per_minute"] = a.dispatch_per_minute
            status, created, _ = api.call("POST", "/firmware/campaigns", spec)
            if status != 201:
                raise BenchError(f"campaign not created: {status} {created}")
            cid = created["id"]
            before = metrics(self.port)
            thread, result = self._fleet_firmware(a.timeout)
            if a.profile:
                profile = Profile(self.node.info["pid"], a.profile.with_suffix(".speedscope.json"))
            self.meter.start()
            t_start = time.monotonic()
            with Poller(self.port, self.token, f"/firmware/campaigns/{cid}", POLL_PERIOD) as poll:
                status, started, start_ms = api.call("POST", f"/firmware/campaigns/{cid}/start")
                if status != 200:
                    raise BenchError(f"campaign not started: {status} {started}")
                t_started = time.monotonic()
                state = "running"
                counts, moved = None, time.monotonic()
                while time.monotonic() - t_start < a.timeout and time.monotonic() - moved < STALL_S:
                    last = poll.last()
                    state = last["state"] if last else state
                    if state in ("finished", "paused", "cancelled"):
                        break
                    if last and last["counts"] != counts:
                        counts, moved = last["counts"], time.monotonic()
                    time.sleep(POLL_PERIOD / 2)
                t_finished = time.monotonic()
                if state != "finished":
                    last = poll.last() or {}
                    raise BenchError(
                        f"the campaign ended {state} ({last.get('paused_reason')}) after "
                        f"{t_finished - t_start:.0f} s: {last.get('counts')}"
                    )
                answers = self._join_fleet(thread, result, "campaign")
                settle_s = self._settle()
            self.meter.stop("campaign")
            if profile is not None:
                profile.stop()
                a.profile.write_text(profile_text(profile.out))
                profile = None
            after = metrics(self.port)
            status, summary, _ = api.call("GET", f"/firmware/campaigns/{cid}")
        finally:
            api.close()
            if profile is not None:
                profile.stop()
        running = [ms for t, ms, body in poll.samples if t_started <= t <= t_finished]
        # When the slowest reads ended (s after the start verb was sent), to tell a stall from a steady cost.
        slowest = sorted(((ms, t) for t, ms, _ in poll.samples if t_started <= t <= t_finished), reverse=True)
        calls = merged_series(answers, 1)
        first = first_reaching(calls, 1) or t_started
        last_call = first_reaching(calls, calls[-1][1]) or t_finished
        pending = [(t, body["counts"]["pending"]) for t, _, body in poll.samples if t >= t_started]
        return {
            "campaign_id": cid,
            "spec": spec,
            "start_verb_ms": round(start_ms, 1),
            "duration_s": round(t_finished - t_start, 2),
            "counts": {k: v for k, v in summary["counts"].items() if v},
            "groups": [sum(g["counts"].values()) for g in summary["groups"]],
            "updated": summary["counts"]["installed"],
            "sims": self._fleet_figures(answers),
            "dispatch": {
                "updates_received": calls[-1][1],
                "first_after_start_s": round(first - t_start, 2),
                "last_after_start_s": round(last_call - t_start, 2),
                "mean_per_s": round(calls[-1][1] / max(1e-9, last_call - first)),
                f"best_{DISPATCH_WINDOW:g}s_per_s": round(best_rate(calls, DISPATCH_WINDOW)),
                "all_dispatched_after_start_s": (
                    round(t - t_start, 2) if (t := next((t for t, n in pending if n == 0), None)) else None
                ),
            },
            "summary_ms": {
                "samples": len(running),
                "p50": pct(running, 0.5),
                "p99": pct(running, 0.99),
                "max": round(max(running, default=0.0), 2),
                "slowest": [[round(ms, 1), round(t - t_start, 1)] for ms, t in slowest[:5]],
                "errors": poll.errors[:3],
            },
            "settle_s": round(settle_s, 2),
            "node_counters": metrics_delta(before, after),
        }

    def _fleet_figures(self, answers: list[dict[str, Any]]) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for x in answers:
            for k, n in x["statuses"].items():
                statuses[k] = statuses.get(k, 0) + n
        return {
            "updates_received": sum(x["updates_received"] for x in answers),
            "installed": sum(x["installed"] for x in answers),
            "failed": sum(x["failed"] for x in answers),
            "reboots": sum(x["reboots"] for x in answers),
            "statuses": statuses,
            "all_ended": all(x["all_ended"] for x in answers),
            "open_at_end": sum(x["open"] for x in answers),
        }

    def api_cost(self) -> dict[str, Any]:
        """Queue API_PER_AWAY UpdateFirmware per offline charger: the API's cost of one queued command."""
        a = self.a
        reqs = [
            (
                f"/chargers/AWAY{i}/commands/UpdateFirmware?queue=true",
                update_request(a.protocol, BASELINE_VERSION, 1_000_000 + k * a.away + i),
            )
            for k in range(API_PER_AWAY)
            for i in range(a.away)
        ]
        before = metrics(self.port)
        self.meter.start()
        posted = post_all(self.port, self.token, reqs)
        settle_s = self._settle()
        self.meter.stop("api")
        after = metrics(self.port)
        if set(posted["statuses"]) != {202}:
            raise BenchError(f"api phase: answers {posted['statuses']}, e.g. {posted['bad']}")
        return {
            "posts": len(reqs),
            "posts_per_s": round(len(reqs) / posted["wall_s"]),
            "post_ms_p50": pct(posted["ms"], 0.5),
            "post_ms_p99": pct(posted["ms"], 0.99),
            "settle_s": round(settle_s, 2),
            "node_counters": metrics_delta(before, after),
        }

    def baseline(self, campaign_id: int) -> dict[str, Any]:
        """The same update of the whole fleet without a campaign: UpdateFirmware queued per charger by the API."""
        a = self.a
        reqs = [
            (
                f"/chargers/CP{i}/commands/UpdateFirmware?queue=true",
                update_request(a.protocol, BASELINE_VERSION, 2_000_000 + i),
            )
            for i in range(a.chargers)
        ]
        before = metrics(self.port)
        thread, result = self._fleet_firmware(a.timeout)
        self.meter.start()
        t0 = time.monotonic()
        with Poller(self.port, self.token, f"/firmware/campaigns/{campaign_id}", POLL_PERIOD) as poll:
            posted = post_all(self.port, self.token, reqs)
            answers = self._join_fleet(thread, result, "baseline")
            t_end = max(x["ended_at"] or time.monotonic() for x in answers)
            settle_s = self._settle()
        self.meter.stop("baseline")
        after = metrics(self.port)
        if set(posted["statuses"]) != {202}:
            raise BenchError(f"baseline: answers {posted['statuses']}, e.g. {posted['bad']}")
        # Not comparable with the campaign's figure: here the poller shares this process's GIL with the POSTERS.
        during = [ms for _, ms, _ in poll.samples]
        return {
            "posts": len(reqs),
            "posts_per_s": round(len(reqs) / posted["wall_s"]),
            "duration_s": round(t_end - t0, 2),
            "sims": self._fleet_figures(answers),
            "updated": sum(x["installed"] for x in answers),
            "summary_ms": {"samples": len(during), "p50": pct(during, 0.5), "p99": pct(during, 0.99)},
            "settle_s": round(settle_s, 2),
            "node_counters": metrics_delta(before, after),
        }

    def finish(self) -> None:
        assert self.group is not None
        self.group.ask({"cmd": "close", "timeout": 10.0}, 10.0 + PHASE_SLACK)


# -- CPU per charger ---------------------------------------------------------------------------------------------


def _cpu(phase: dict[str, Any], label: str | None) -> float:
    row = phase.get(label) if label else None
    return float(row["user_s"] + row["sys_s"]) if row else 0.0


def cpu_split(phase: dict[str, Any], per: int, idle: dict[str, Any] | None = None) -> dict[str, float]:
    """ms of CPU per unit (`per`: chargers updated, or commands posted) in a phase: the control plane, and apart
    its trio thread (the process's main thread), its Rust hub thread (the worker links) and its store writer (the
    one other Python thread the node runs when the meter starts); the gateway workers together; the simulators
    together. With `idle` (the idle phase), each process's and thread's idle background (its CPU per second
    there, times this phase's wall time) is taken out first: the figures are the CPU the phase's work cost."""

    def used(label: str | None) -> float:
        if idle is None or not label:
            return _cpu(phase, label)
        return max(0.0, _cpu(phase, label) - _cpu(idle, label) / idle["wall_s"] * phase["wall_s"])

    labels = [k for k in phase if isinstance(phase[k], dict) and "user_s" in phase[k]]
    threads = [k for k in labels if k.startswith("control plane:")]
    trio_thread = next((k for k in threads if "/" not in k), None)
    hub = [k for k in threads if k.startswith("control plane:ampgate-hub")]
    writer = [k for k in threads if k not in hub and k != trio_thread]
    workers = sum(used(k) for k in labels if k.startswith("worker "))
    per = max(1, per)
    return {
        "control_plane_ms": round(1000 * used("control plane") / per, 3),
        "trio_thread_ms": round(1000 * used(trio_thread) / per, 3),
        "store_writer_ms": round(1000 * sum(used(k) for k in writer) / per, 3),
        "hub_thread_ms": round(1000 * sum(used(k) for k in hub) / per, 3),
        "workers_ms": round(1000 * workers / per, 3),
        "simulators_ms": round(1000 * sum(used(k) for k in labels if k.startswith("sim ")) / per, 3),
        "control_plane_cpu_s": round(used("control plane"), 2),
        "workers_cpu_s": round(workers, 2),
        "wall_s": phase["wall_s"],
        "other_processes_cores": phase["machine_pct"]["other_processes_cores"],
    }


def minus(x: dict[str, float], y: dict[str, float]) -> dict[str, float]:
    keys = ("control_plane_ms", "trio_thread_ms", "store_writer_ms", "hub_thread_ms", "workers_ms")
    return {k: round(x[k] - y[k], 3) for k in keys}


def table(r: dict[str, Any]) -> str:
    c, cpu = r["campaign"], r["cpu_per_charger"]
    d, s = c["dispatch"], c["summary_ms"]
    head = (
        f"{'ms of CPU per charger updated':<44} {'control plane':>13} {'trio thread':>11} {'writer':>8} "
        f"{'hub':>6} {'workers':>8}"
    )
    lines = [
        f"firmware campaign: {r['chargers']:,} chargers ({r['protocol']}), {r['workers']} gateway workers, "
        f"{r['sim_processes']} simulator processes",
        head,
        "-" * len(head),
    ]
    for label, row in (
        ("campaign", cpu["campaign"]),
        ("baseline: queued by the API, no campaign", cpu["baseline"]),
        ("  the API's own cost per queued command", cpu["api_per_command"]),
        ("  baseline less the API: the messages alone", cpu["baseline_messages"]),
        ("what the campaign adds", cpu["campaign_adds"]),
    ):
        lines.append(
            f"{label:<44} {row['control_plane_ms']:>13.3f} {row['trio_thread_ms']:>11.3f} "
            f"{row['store_writer_ms']:>8.3f} {row['hub_thread_ms']:>6.3f} {row['workers_ms']:>8.3f}"
        )
    idle = cpu["idle_cores"]
    lines += [
        f"(the idle background taken out: control plane {idle['control_plane_ms']:.3f} cores, workers "
        f"{idle['workers_ms']:.3f} cores; other processes on the box during the campaign: "
        f"{cpu['campaign']['other_processes_cores']:.2f} cores)",
        f"campaign: {c['updated']:,} installed in {c['duration_s']:.1f} s (start verb {c['start_verb_ms']:.0f} ms);"
        f" baseline: {r['baseline']['updated']:,} in {r['baseline']['duration_s']:.1f} s",
        f"dispatch: {d['mean_per_s']:,} UpdateFirmware/s over the campaign, best {DISPATCH_WINDOW:g} s "
        f"{d[f'best_{DISPATCH_WINDOW:g}s_per_s']:,}/s; all dispatched {d['all_dispatched_after_start_s']} s "
        "after the start",
        f"summary GET while running: p50 {s['p50']} ms, p99 {s['p99']} ms, max {s['max']} ms over "
        f"{s['samples']} reads (target p99 <= {SUMMARY_TARGET_MS:g} ms: "
        f"{'met' if r['target']['met'] else 'MISSED'})",
    ]
    if r["errors"]:
        lines.append(f"errors: {r['errors']}")
    return "\n".join(lines)


def run(a: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ampgate-campaign-") as tmp:
        bench = Run(a, Path(tmp))
        try:
            boot = bench.start()
            bench.idle()
            campaign = bench.campaign()
            api = bench.api_cost()
            baseline = bench.baseline(campaign["campaign_id"])
            bench.finish()
        except BenchError as e:
            raise BenchError(f"{e}\n-- node log --\n{bench.node.log_tail()}") from None
        finally:
            bench.close()
        phases = bench.meter.phases
    idle = phases["idle"]
    cpu: dict[str, Any] = {
        "campaign": cpu_split(phases["campaign"], campaign["updated"], idle),
        "baseline": cpu_split(phases["baseline"], baseline["updated"], idle),
        "api_per_command": cpu_split(phases["api"], api["posts"], idle),
    }
    cpu["baseline_messages"] = minus(cpu["baseline"], cpu["api_per_command"])
    cpu["campaign_adds"] = minus(cpu["campaign"], cpu["baseline_messages"])
    # The same without the idle background taken out.
    cpu["raw"] = {
        "campaign": cpu_split(phases["campaign"], campaign["updated"]),
        "baseline": cpu_split(phases["baseline"], baseline["updated"]),
        "api_per_command": cpu_split(phases["api"], api["posts"]),
    }
    # The idle background itself, in cores (CPU s per s): what was taken out above.
    cpu["idle_cores"] = {
        k: round(v / 1000 / idle["wall_s"], 3)
        for k, v in cpu_split(idle, 1).items()
        if k.endswith("_ms") and k != "simulators_ms"
    }
    s = campaign["summary_ms"]
    return {
        "bench": "campaign",
        "chargers": a.chargers,
        "protocol": a.protocol,
        "workers": bench.workers,
        "sim_processes": math.ceil(a.chargers / PER_PROCESS),
        "command": "python bench/campaign.py " + " ".join(argv),
        "sim": {"firmware_step_s": a.step, "reboot_delay_s": a.reboot_delay, "from": OLD_VERSION},
        "boot": boot,
        "campaign": campaign,
        "api": api,
        "baseline": baseline,
        "cpu_per_charger": cpu,
        "phases": phases,
        "target": {
            "summary_p99_ms": SUMMARY_TARGET_MS,
            "met": s["samples"] > 0 and s["p99"] <= SUMMARY_TARGET_MS,
        },
        "errors": bench.errors,
    }


def _terminate(signum: int, frame: object) -> None:
    # A SIGTERM (or SIGHUP) unwinds like Ctrl-C, so the node and the simulators are stopped on the way out.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chargers", type=int, default=100_000)
    p.add_argument("--protocol", default="ocpp2.0.1", choices=("ocpp1.6", "ocpp2.0.1"))
    p.add_argument("--canary", type=int, default=100, help="chargers in the canary (0: none)")
    p.add_argument("--groups", default="10,40,50", help="the groups, in percent of the fleet")
    p.add_argument("--dispatch-per-minute", type=float, default=None, help="default: no rate cap")
    p.add_argument("--step", type=float, default=0.5, help="s between a simulated charger's firmware steps")
    p.add_argument("--reboot-delay", type=float, default=1.0, help="s a simulated charger is down to reboot")
    p.add_argument("--away", type=int, default=DEFAULT_AWAY, help="offline chargers for the api phase")
    p.add_argument(
        "--timeout", type=float, default=0.0, help="s each update phase may take (default by size)"
    )
    p.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS, help="the idle phase's length")
    p.add_argument("--smoke", action="store_true", help="CI size: exit 1 unless every charger updated, twice")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy the control plane in the campaign phase: a summary here, stacks in .raw",
    )
    a = p.parse_args(argv)
    a.groups = [float(x) for x in a.groups.split(",") if x.strip()]
    a.timeout = a.timeout or max(120.0, a.chargers / 50)
    if a.away < 1:
        p.error("--away must be at least 1")
    if a.canary >= a.chargers:
        p.error("--canary must be smaller than --chargers")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        result = run(a, argv)
    except BenchError as e:
        print(f"campaign bench failed: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    print(table(result))
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")
    if a.smoke:
        ok = (
            result["campaign"]["updated"] == a.chargers
            and result["baseline"]["updated"] == a.chargers
            and not result["errors"]
        )
        if not ok:
            print("smoke run failed", result["errors"], file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
