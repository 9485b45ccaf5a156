"""OCPI EVSE status pushes while the simulator changes statuses across a fleet: how fresh the eMSP's view is,
what the pushes cost the control plane, and what they do to the fleet's heartbeats.

    python bench/ocpi_push.py --chargers 100000 --json bench/results/ocpi-push-100000.json
    python bench/ocpi_push.py --chargers 10000 --json bench/results/ocpi-push-10000.json
    python bench/ocpi_push.py --chargers 200 --rate 100 --smoke          # CI size (tests/bench)

The set-up: a node (`ampgate serve` with --ocpi-*, its own SQLite file) whose database is seeded before it
starts with `--per-site` chargers per site (100 sites of 1,000 at 100k), every site with coordinates and an
address (so it is an OCPI Location), every charger placed there and described (`PUT /api/v1/chargers/{id}/
connectors`' tables: one EVSE with one IEC 62196 Type 2 socket, 1.6 numbering); the fleet simulator (OCPP 1.6,
bench/sim_proc.py processes, the Rust engine `ampgate sim` runs) connecting every charger; and an eMSP receiver
in its own process (bench/ocpi_emsp.py: one thread, a minimal HTTP/1.1 reader; its capacity is measured first
and reported, and its CPU during the run).

The status changes (`--changes`, `--rate` OCPI changes per second over the fleet):
- `statuses` (the default): the simulator's `status_period` scenario: every charger changes connector 1 from
  Available to Preparing (a cable in, no transaction: OCPI CHARGING) and back every chargers / rate seconds, the
  first at a random instant, so each change is one StatusNotification and one OCPI change. What is measured is
  the status path and its pushes, not transactions.
- `transactions`: the simulator's transactions (1.6: Authorize, StatusNotification Charging, StartTransaction,
  StopTransaction, StatusNotification Available: two OCPI changes each; `--tx-duration`; no MeterValues). The
  bench's id tag is in the node's id-token table. On the reference box the node does not reach 1,000 changes a
  second this way (500 transactions a second, with their durable writes and load management, are the load).

The run, one node, one fleet, two phases of `--phase` seconds with the same load:
  1. boot every charger (admission control at the node's defaults paces it), `--warmup` seconds, then heartbeat
     windows of 5 s until three in a row have a p99 under 250 ms (`settle` in the JSON): what a boot of the fleet
     leaves the node to do (a boot profile to every charger placed at a site, the boots' rows) is over;
  2. phase "without pushes": no party registered (the node's pusher has no target);
  3. the eMSP registers (TOKEN_A -> its TOKEN_B -> our TOKEN_C, as tests/roaming does) and pulls every Location
     (GET, paginated, `--page-limit` Locations a page) while the simulators keep running;
  4. phase "with pushes": every OCPI status change is PATCHed to the eMSP (coalesced per EVSE);
  5. the simulators stop being driven (no message leaves them), the pusher drains, and every Location is pulled
     again: each EVSE's status the eMSP holds (its last push, or the initial pull when nothing was pushed for it
     after that pull began) must equal the node's.
Through both phases the fleet sends heartbeats open-loop at `--heartbeat-rate` per second (the simulator's load,
one CALL outstanding per charger at most) and the simulator measures their round trips.

What is measured:
- freshness, per OCPI status change in the "with pushes" phase: from the moment the control plane handled the
  StatusNotification (the `connector.status` event's `at`, the node's wall clock, microseconds; read back from the
  node's event table after the run) until the eMSP received a PATCH of that EVSE that reflects it: its status
  equal to the change's and its `last_updated` not before the change's second, or, when a later change of the
  EVSE came first, a PATCH reflecting that later one (a superseded status need not reach the eMSP: latest
  wins). The eMSP stamps a request with `time.time()` when the bytes that complete it are read: the same host
  clock, so the figure is exact to a few microseconds plus however long the request waited in the receiver's
  socket (small: it is far from busy). Error: `last_updated` is whole seconds, so a PATCH composed before the
  change but carrying the same status and the same second would count; that needs two changes of one EVSE
  within a second while a push of it is in flight, which the scenario's transactions (`--tx-duration` apart at
  least for CHARGING -> AVAILABLE) make rare. Beside it, the same from the charger's own timestamp in the
  StatusNotification (ms): what the driver's app lags the charger, including the charger's wait behind its one
  outstanding CALL, the link and the gateway.
- the control plane's CPU (user + system, all its threads, from /proc) per OCPI status change in each phase,
  and the difference: what a push costs;
- the heartbeat round trips (p50 / p99 / max) in each phase.

Targets (issue 14): every EVSE's latest status at the eMSP within 2 s at 1,000 changes/s (every change's
freshness <= 2 s, every EVSE equal at the end); heartbeat p99 with pushes at most 2x without.
Prints JSON and a table; `--json FILE` writes the JSON.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import math
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from connections import (
    PHASE_SLACK,
    RUN_FOREVER,
    SOURCE_IPS_PER_PROCESS,
    BenchError,
    CpuMeter,
    Node,
    SimGroup,
    add_failures,
    merge_histograms,
    quantile_ms,
)

HERE = Path(__file__).resolve().parent
EMSP = HERE / "ocpi_emsp.py"
# The targets.
FRESH_WITHIN_S = 2.0
HEARTBEAT_P99_RATIO = 2.0
# Chargers per simulator process: under the 20,000-file cap with room to spare (bench/connections.py).
PER_PROCESS = 18_000
# The simulators are driven in slices of this many seconds while the bench registers and pulls, so their timers
# never fall behind (a simulator is only driven while it runs a command).
HOLD_SLICE = 1.0
# After registering and pulling, before the measured phase: the pusher reaches its steady state.
SETTLE_S = 5.0
# After the boot and the warm-up: heartbeat windows until three in a row are calm (the boot's aftermath done).
SETTLED_P99_MS = 250.0
SETTLE_CALM_WINDOWS = 3
# Writes waiting for the store's writer, at most, to count as caught up (a second of them at the bench's rates).
SETTLED_WRITES = 3000
SETTLE_MAX_S = 600.0
# How often the push counters are sampled from registration to the end of the measured phase.
PROGRESS_S = 2.0
# How long the pusher may take to drain once the simulators stop; how long it must stay drained.
DRAIN_TIMEOUT_S = 25.0
DRAIN_QUIET_S = 1.0
# Registration plus the first pull, at most (a pull of 100k EVSEs takes seconds).
REGISTER_TIMEOUT_S = 300.0
# A page of Locations may be tens of MB at 1,000 EVSEs each.
HTTP_TIMEOUT_S = 120.0
ID_TAG = "BENCHTAG"
ID_PREFIX = "EV"
SITE_PREFIX = "S"


# -- the database, seeded before the node starts -------------------------------------------------------------


def seed(db: Path, chargers: int, per_site: int) -> int:
    """Sites with addresses, chargers placed and described, written into a fresh database (the node's schema,
    created by opening it as the node would). Returns the number of sites."""
    from ampgate.clock import iso_utc
    from ampgate.store import Store

    Store(str(db)).close()
    conn = sqlite3.connect(db, isolation_level=None)
    now = iso_utc(time.time())
    sites = math.ceil(chargers / per_site)
    conn.execute("BEGIN")
    for s in range(sites):
        conn.execute(
            "INSERT INTO sites (id, name, voltage_v, time_zone, lat, lon, address, city, postal_code, country,"
            " created_at, updated_at) VALUES (?, ?, 230, 'Europe/Amsterdam', ?, ?, ?, 'Utrecht', '3511', 'NLD',"
            " ?, ?)",
            (_site(s), f"Bench site {s}", 52.0 + s / 1000, 5.1 + s / 1000, f"Benchstraat {s + 1}", now, now),
        )
    rows = [(f"{ID_PREFIX}{i}", _site(i // per_site)) for i in range(chargers)]
    conn.executemany(
        "INSERT INTO chargers (id, protocol, registered_at, accepted) VALUES (?, 'ocpp1.6', ?, 1)",
        [(cid, now) for cid, _ in rows],
    )
    conn.executemany(
        "INSERT INTO charger_placements (charger_id, site_id, node_id, phases, max_a, priority, weight,"
        " created_at, updated_at) VALUES (?, ?, NULL, 'L1L2L3', 32, 0, 1, ?, ?)",
        [(cid, site, now, now) for cid, site in rows],
    )
    conn.executemany(
        "INSERT INTO charger_evses (charger_id, evse_id, emi3_id, updated_at) VALUES (?, 1, NULL, ?)",
        [(cid, now) for cid, _ in rows],
    )
    conn.executemany(
        "INSERT INTO charger_connectors (charger_id, evse_id, connector_id, standard, format, power_type,"
        " max_voltage, max_amperage, max_electric_power, updated_at)"
        " VALUES (?, 1, 1, 'IEC_62196_T2', 'SOCKET', 'AC_3_PHASE', 230, 32, 22000, ?)",
        [(cid, now) for cid, _ in rows],
    )
    conn.execute("COMMIT")
    conn.close()
    return sites


def _site(s: int) -> str:
    return f"{SITE_PREFIX}{s:04d}"


# -- the eMSP receiver ---------------------------------------------------------------------------------------


class Receiver:
    """bench/ocpi_emsp.py serve, in its own process."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.proc = subprocess.Popen(
            [sys.executable, str(EMSP), "serve", f"--token={token}"], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"the eMSP receiver exited ({self.proc.wait()})")
        hello = json.loads(line)
        self.port: int = hello["port"]
        self.pid: int = hello["pid"]
        self.http = httpx.Client(timeout=HTTP_TIMEOUT_S)

    @property
    def versions_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/emsp/versions"

    def count(self) -> dict[str, int]:
        return dict(self.http.get(f"http://127.0.0.1:{self.port}/bench/count").json())

    def records(self) -> list[list[Any]]:
        return list(self.http.get(f"http://127.0.0.1:{self.port}/bench/records?from=0").json()["items"])

    def capacity(self, seconds: float) -> dict[str, Any]:
        """`ocpi_emsp.py blast` against it (4 connections, as the node's push workers per party) with its CPU."""
        from connections import cpu_seconds

        u0, s0, _ = cpu_seconds(self.pid)
        out = subprocess.run(
            [sys.executable, str(EMSP), "blast", "--port", str(self.port), f"--token={self.token}",
             "--connections", "4", "--seconds", str(seconds)],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
        )  # fmt: skip
        u1, s1, _ = cpu_seconds(self.pid)
        self.http.get(f"http://127.0.0.1:{self.port}/bench/reset")
        blast = json.loads(out.stdout)
        cpu = (u1 - u0) + (s1 - s0)
        per = cpu / blast["answered"] if blast["answered"] else 0.0
        return {
            "answered_per_s": blast["per_s"],
            "connections": blast["connections"],
            "receiver_cpu_s": round(cpu, 2),
            "receiver_cpu_us_per_push": round(per * 1e6, 1),
            "receiver_pushes_per_core_s": round(1 / per) if per else None,
        }

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- OCPI as the eMSP ----------------------------------------------------------------------------------------


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def register(http: httpx.Client, versions_url: str, token_a: str, ours: str, our_versions: str) -> str:
    """The eMSP's side of the credentials handshake: versions, details, POST credentials with `ours` (the token
    the node is to call the receiver with). Returns the node's token for us (TOKEN_C)."""
    versions = http.get(versions_url, headers=token_header(token_a)).json()["data"]
    details_url = next(v["url"] for v in versions if v["version"] == "2.2.1")
    details = http.get(details_url, headers=token_header(token_a)).json()["data"]
    endpoints = {e["identifier"]: e["url"] for e in details["endpoints"]}
    creds = {
        "token": ours,
        "url": our_versions,
        "roles": [
            {
                "role": "EMSP",
                "party_id": "EMP",
                "country_code": "NL",
                "business_details": {"name": "Bench eMSP"},
            }
        ],
    }
    answer = http.post(endpoints["credentials"], headers=token_header(token_a), json=creds).json()
    if answer.get("status_code") != 1000:
        raise BenchError(f"registration refused: {answer}")
    return str(answer["data"]["token"])


def pull(http: httpx.Client, locations_url: str, token: str, limit: int) -> dict[str, Any]:
    """Every Location, page by page: each EVSE's (status, last_updated), the Locations, requests and time."""
    evses: dict[str, tuple[str, str]] = {}
    url: str | None = f"{locations_url}?limit={limit}"
    started = time.time()
    requests = locations = 0
    total = None
    while url is not None:
        r = http.get(url, headers=token_header(token))
        requests += 1
        body = r.json()
        if r.status_code != 200 or body.get("status_code") != 1000:
            raise BenchError(f"GET {url}: HTTP {r.status_code} {str(body)[:300]}")
        total = int(r.headers["X-Total-Count"])
        for loc in body["data"]:
            locations += 1
            for e in loc["evses"]:
                evses[e["uid"]] = (e["status"], e["last_updated"])
        url = None
        link = r.headers.get("Link")
        if link and 'rel="next"' in link:
            url = link.split(";")[0].strip().strip("<>")
    return {
        "started": started,
        "seconds": time.time() - started,
        "requests": requests,
        "locations": locations,
        "total_count": total,
        "evses": evses,
    }


# -- the simulators ------------------------------------------------------------------------------------------


def sim_configs(a: argparse.Namespace, port: int, scenario: dict[str, float]) -> list[dict[str, Any]]:
    procs = max(1, math.ceil(a.chargers / a.per_process))
    base, extra = divmod(a.chargers, procs)
    configs = []
    first = 0
    for p in range(procs):
        count = base + (1 if p < extra else 0)
        configs.append(
            {
                "host": "127.0.0.1",
                "port": port,
                "path_prefix": "/ocpp",
                "id_prefix": ID_PREFIX,
                "first_index": first,
                "count": count,
                "fleet_size": a.chargers,
                "protocol": "ocpp1.6",
                "source_ips": [f"127.0.{p + 1}.{i}" for i in range(1, SOURCE_IPS_PER_PROCESS + 1)],
                "max_inflight": max(32, 2048 // procs),
                "seed": p + 1,
                "id_tag": ID_TAG,
                "duration": RUN_FOREVER,
                "heartbeat_interval": RUN_FOREVER,
                "load_message": "Heartbeat",
                "load_start": RUN_FOREVER,
                "check_replies": False,
                **scenario,
            }
        )
        first += count
    return configs


def while_holding(group: SimGroup, work: Callable[[], Any], timeout: float) -> Any:
    """Run `work` in a thread while the simulators are driven in HOLD_SLICE slices; its result."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = work()
        except BaseException as e:  # handed to the caller below
            out["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    deadline = time.monotonic() + timeout
    thread.start()
    while thread.is_alive():
        if time.monotonic() > deadline:
            raise BenchError(f"registration and pull not done after {timeout:.0f} s")
        group.ask({"cmd": "hold", "seconds": HOLD_SLICE}, HOLD_SLICE + PHASE_SLACK)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def heartbeat_phase(group: SimGroup, a: argparse.Namespace, errors: dict[str, int], where: str) -> dict:
    cmds = [
        {"cmd": "heartbeats", "duration": a.phase, "rate": a.heartbeat_rate * n / a.chargers, "inflight": 0}
        for n in group.counts
    ]
    answers = group.ask(cmds, a.phase + PHASE_SLACK)
    add_failures(errors, where, answers, "lost")
    for field in ("errors", "unanswered"):
        n = sum(x[field] for x in answers)
        if n:
            errors[f"{where}: heartbeat {field}"] = n
    hist = merge_histograms(answers)
    return {
        "heartbeats": sum(x["answered"] for x in answers),
        "heartbeat_sends_skipped": sum(x["skipped"] for x in answers),
        "heartbeat_p50_ms": quantile_ms(hist, 0.5),
        "heartbeat_p99_ms": quantile_ms(hist, 0.99),
        "heartbeat_max_ms": max((x["max_ms"] for x in answers), default=0.0),
        "open": sum(x["open"] for x in answers),
    }


# -- reading the node's events -------------------------------------------------------------------------------


class Change:
    __slots__ = ("reported", "second", "status", "t")

    def __init__(self, t: float, reported: float, status: str) -> None:
        self.t = t
        self.reported = reported
        self.status = status
        self.second = int(t)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_changes(db: Path, until: float) -> tuple[dict[str, list[Change]], dict[str, int]]:
    """Every EVSE's OCPI status changes from the node's `connector.status` events (the mapping the node
    publishes with, chargers online), and the number of events of each type before `until` (the end of the
    final pull: what closing the fleet caused afterwards is not the run's)."""
    from ampgate.roaming import mapping

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        changes: dict[str, list[Change]] = {}
        last: dict[str, str] = {}
        for (data,) in conn.execute("SELECT data FROM events WHERE type = 'connector.status' ORDER BY id"):
            ev = json.loads(data)
            if ev.get("evse_id") is not None or not ev.get("connector_id"):
                continue  # the bench's chargers are 1.6; connector 0 is the charge point
            uid = mapping.evse_uid(ev["charger_id"], ev["connector_id"])
            status = mapping.evse_status(ev["status"], True).value
            if last.get(uid) == status:
                continue
            last[uid] = status
            changes.setdefault(uid, []).append(Change(_epoch(ev["at"]), _epoch(ev["reported_at"]), status))
        counts = dict(
            conn.execute(
                "SELECT type, count(*) FROM events WHERE at_ms < ? GROUP BY type", (int(until * 1000),)
            ).fetchall()
        )
    finally:
        conn.close()
    return changes, counts


def in_window(changes: dict[str, list[Change]], start: float, end: float) -> int:
    return sum(1 for cs in changes.values() for c in cs if start <= c.t < end)


# -- freshness -----------------------------------------------------------------------------------------------


def freshness(
    changes: dict[str, list[Change]],
    pushes: dict[str, list[tuple[float, str, int]]],
    start: float,
    end: float,
) -> dict[str, Any]:
    """For every change in [start, end): the time until the eMSP held it or a later status of its EVSE (see
    the module docstring)."""
    node_s: list[float] = []
    charger_s: list[float] = []
    undelivered: list[str] = []
    for uid, cs in changes.items():
        ps = pushes.get(uid, [])
        at = [p[0] for p in ps]
        times = [c.t for c in cs]
        for i, c in enumerate(cs):
            if not start <= c.t < end:
                continue
            k = bisect.bisect_left(at, c.t)
            got = None
            while k < len(ps):
                r, status, lu = ps[k]
                j = bisect.bisect_right(times, r) - 1
                if any(cs[m].status == status and lu >= cs[m].second for m in range(i, j + 1)):
                    got = r
                    break
                k += 1
            if got is None:
                undelivered.append(uid)
                continue
            node_s.append(got - c.t)
            charger_s.append(got - c.reported)
    node_s.sort()
    charger_s.sort()

    def q(xs: list[float], p: float) -> float | None:
        return round(xs[min(len(xs) - 1, math.ceil(p * len(xs)) - 1)] * 1000, 1) if xs else None

    n = len(node_s)
    return {
        "changes": n + len(undelivered),
        "delivered": n,
        "undelivered": len(undelivered),
        "undelivered_examples": undelivered[:5],
        "p50_ms": q(node_s, 0.5),
        "p90_ms": q(node_s, 0.9),
        "p99_ms": q(node_s, 0.99),
        "max_ms": q(node_s, 1.0),
        "within_2s_pct": round(100 * sum(1 for x in node_s if x <= FRESH_WITHIN_S) / n, 3) if n else None,
        "from_charger_timestamp": {
            "p50_ms": q(charger_s, 0.5),
            "p99_ms": q(charger_s, 0.99),
            "max_ms": q(charger_s, 1.0),
            "within_2s_pct": round(100 * sum(1 for x in charger_s if x <= FRESH_WITHIN_S) / n, 3)
            if n
            else None,
        },
    }


def held_by_emsp(
    first: dict[str, Any], pushes: dict[str, list[tuple[float, str, int]]]
) -> dict[str, tuple[str, str]]:
    """What the eMSP holds per EVSE: its last push when that came after the first pull began (a push then
    reflects a state at least as new as the pull's), else what the pull said."""
    held = {uid: (status, "pull") for uid, (status, _) in first["evses"].items()}
    for uid, ps in pushes.items():
        if ps and ps[-1][0] >= first["started"]:
            held[uid] = (ps[-1][1], "push")
    return held


# -- the run -------------------------------------------------------------------------------------------------


def node_queues(http: httpx.Client, api_port: int) -> dict[str, float]:
    """The node's store write queue and command queue (its /metrics, no token)."""
    out: dict[str, float] = {}
    for line in http.get(f"http://127.0.0.1:{api_port}/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("ampgate_store_write_queue_depth", "ampgate_command_queue_depth"):
            out[name.removeprefix("ampgate_")] = float(value)
    return out


def settle(group: SimGroup, a: argparse.Namespace, http: httpx.Client, api_port: int) -> dict[str, Any]:
    """Heartbeat windows of `--settle-window` s until SETTLE_CALM_WINDOWS in a row have a p99 under SETTLED_P99_MS
    with the node's store writer and command queue caught up: what a boot of the fleet leaves the node to do (at
    100k chargers: a boot profile to every charger placed at a site, the rows of the boots and of their events)
    is done before anything is measured. Bounded by SETTLE_MAX_S."""
    t0 = time.monotonic()
    windows: list[dict[str, float]] = []
    calm = 0
    while time.monotonic() - t0 < SETTLE_MAX_S and calm < SETTLE_CALM_WINDOWS:
        cmds = [
            {"cmd": "heartbeats", "duration": a.settle_window, "rate": a.heartbeat_rate * n / a.chargers}
            for n in group.counts
        ]
        answers = group.ask(cmds, a.settle_window + PHASE_SLACK)
        w = {"p99_ms": quantile_ms(merge_histograms(answers), 0.99), **node_queues(http, api_port)}
        windows.append(w)
        quiet = (
            w["p99_ms"] <= SETTLED_P99_MS
            and w.get("store_write_queue_depth", 0) <= SETTLED_WRITES
            and w.get("command_queue_depth", 0) == 0
        )
        calm = calm + 1 if quiet else 0
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "windows": windows,
        "settled": calm >= SETTLE_CALM_WINDOWS,
    }


class Progress:
    """The party's push counters and the eMSP's, every PROGRESS_S in a thread, from `start()` to `stop()`."""

    def __init__(self, sample: Callable[[], dict[str, Any]]) -> None:
        self.sample = sample
        self.rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(PROGRESS_S):
            try:
                self.rows.append({"t": round(time.time(), 2), **self.sample()})
            except Exception as e:
                self.rows.append({"t": round(time.time(), 2), "error": str(e)})

    def start(self) -> Progress:
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join()
        return self.rows


class Profiler:
    """py-spy sampling the control plane through one phase (`--profile PREFIX`: PREFIX-PHASE.raw, collapsed
    stacks); nothing without a prefix."""

    def __init__(self, prefix: Path | None, phase: str, pid: int, seconds: float) -> None:
        self.proc = None
        if prefix is not None:
            spy = Path(sys.executable).parent / "py-spy"
            out = f"{prefix}-{phase}.raw"
            self.proc = subprocess.Popen(
                [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
                 "--format", "raw", "--output", out, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def wait(self) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plan(a: argparse.Namespace) -> dict[str, float]:
    """The simulator's scenario for `a.rate` OCPI status changes per second over the fleet."""
    if a.changes == "statuses":
        # One change per period and charger.
        if a.warmup < 0:
            a.warmup = 10.0
        return {"status_period": a.chargers / a.rate}
    # Two changes per transaction; no MeterValues (the meter period is longer than a transaction).
    cycle = 2 * a.chargers / a.rate
    if a.tx_duration <= 0:
        a.tx_duration = min(20.0, cycle / 4)
    if a.tx_duration >= cycle:
        raise BenchError(f"--tx-duration {a.tx_duration} s is longer than a charger's cycle ({cycle:.1f} s)")
    if a.warmup < 0:
        a.warmup = max(10.0, 2 * a.tx_duration)
    return {
        "tx_per_hour": 3600.0 / (cycle - a.tx_duration),
        "tx_duration": a.tx_duration,
        "meter_period": a.tx_duration * 10,
    }


def party_push(http: httpx.Client, api: str, token: str, ref: int) -> dict[str, Any]:
    r = http.get(f"{api}/ocpi/parties/{ref}", headers={"Authorization": f"Bearer {token}"})
    return dict(r.json().get("push") or {})


def run(a: argparse.Namespace) -> dict[str, Any]:
    from ampgate.config import default_workers

    scenario = plan(a)
    workers = default_workers(a.chargers)
    errors: dict[str, int] = {}
    cpu = CpuMeter()
    result: dict[str, Any] = {
        "chargers": a.chargers,
        "per_site": a.per_site,
        "protocol": "ocpp1.6",
        "target_changes_per_s": a.rate,
        "changes": a.changes,
        "scenario": {k: round(v, 3) for k, v in scenario.items()},
        "warmup_s": a.warmup,
        "phase_s": a.phase,
        "heartbeat_rate": a.heartbeat_rate,
        "workers": workers,
        "sim_processes": max(1, math.ceil(a.chargers / a.per_process)),
    }
    tmp = Path(tempfile.mkdtemp(prefix="ampgate-ocpi-push-"))
    node: Node | None = None
    group: SimGroup | None = None
    receiver: Receiver | None = None
    # A new connection per request: a kept-alive one the node's server timed out meanwhile would fail the
    # registration's POST, which is not repeated.
    http = httpx.Client(timeout=HTTP_TIMEOUT_S, limits=httpx.Limits(max_keepalive_connections=0))
    try:
        t0 = time.monotonic()
        result["sites"] = seed(tmp / "ampgate.db", a.chargers, a.per_site)
        result["seed_s"] = round(time.monotonic() - t0, 1)
        receiver = Receiver(secrets.token_urlsafe(24))
        result["emsp_capacity"] = receiver.capacity(a.emsp_blast)
        public = free_port()
        ocpi_args = (
            "--public-port", str(public), "--public-base-url", f"http://127.0.0.1:{public}",
            "--ocpi-country-code", "NL", "--ocpi-party-id", "AMP",
            # The bench's pulls are its own traffic, not what the rate limit is for.
            "--ocpi-rate-limit", "100000",
        )  # fmt: skip
        # Admission control at the node's defaults (a capacity bench turns it off): the boot of 100k chargers
        # is then paced instead of timing out and booting again, and what is measured starts sooner.
        node = Node(tmp, a.chargers, workers, extra=ocpi_args)
        info = node.wait_ready()
        api = f"http://127.0.0.1:{info['api_port']}/api/v1"
        admin = {"Authorization": f"Bearer {info['admin_token']}"}
        r = http.post(f"{api}/id-tokens", headers=admin, json={"id_token": ID_TAG, "status": "Accepted"})
        if r.status_code != 201:
            raise BenchError(f"POST /id-tokens: {r.status_code} {r.text}")
        r = http.post(f"{api}/ocpi/parties", headers=admin, json={"country_code": "NL", "party_id": "EMP"})
        if r.status_code != 201:
            raise BenchError(f"POST /ocpi/parties: {r.status_code} {r.text}")
        party = r.json()
        for label, pid in node.pids.items():
            cpu.watch(label, pid, with_threads=label == "control plane")
        cpu.watch("emsp receiver", receiver.pid)

        group = SimGroup.start(sim_configs(a, info["ocpp_port"], scenario), PHASE_SLACK)
        for i, pid in enumerate(group.pids):
            cpu.watch(f"sim {i}", pid)
        # Admission control paces a whole-fleet boot (about 500 a second here).
        boot_timeout = max(60.0, a.chargers / 200)
        booted = group.ask({"cmd": "boot", "timeout": boot_timeout}, boot_timeout + PHASE_SLACK)
        add_failures(errors, "boot", booted, "failures")
        result["booted"] = sum(b["booted"] for b in booted)
        result["boot_s"] = round(max(b["elapsed_s"] for b in booted), 2)
        if result["booted"] < a.chargers:
            raise BenchError(f"only {result['booted']} of {a.chargers} chargers booted")
        group.ask({"cmd": "hold", "seconds": a.warmup}, a.warmup + PHASE_SLACK)
        result["settle"] = settle(group, a, http, info["api_port"])

        # -- phase 1: no party ----------------------------------------------------------------------------
        windows: dict[str, tuple[float, float]] = {}
        phases: dict[str, dict[str, Any]] = {}
        profiler = Profiler(a.profile, "without_pushes", info["pid"], a.phase)
        start = time.time()
        cpu.start()
        phases["without_pushes"] = heartbeat_phase(group, a, errors, "without pushes")
        cpu.stop("without_pushes")
        windows["without_pushes"] = (start, time.time())
        profiler.wait()

        # -- the eMSP registers and pulls, the simulators running --------------------------------------------
        def register_and_pull() -> tuple[str, dict[str, Any]]:
            token_c = register(
                http, party["versions_url"], party["token_a"], receiver.token, receiver.versions_url
            )
            locations_url = party["versions_url"].rsplit("/", 1)[0] + "/2.2.1/locations"
            return token_c, pull(http, locations_url, token_c, a.page_limit)

        def sample() -> dict[str, Any]:
            push = party_push(progress_http, api, info["admin_token"], party["id"])
            return {
                "sent": push.get("sent"),
                "pending": push.get("pending"),
                "emsp": receiver.count()["patches"],
            }

        progress_http = httpx.Client(timeout=HTTP_TIMEOUT_S)
        progress = Progress(sample).start()
        registered_at = time.time()
        token_c, first = while_holding(group, register_and_pull, REGISTER_TIMEOUT_S)
        result["register_and_first_pull_s"] = round(time.time() - registered_at, 2)
        result["first_pull"] = {
            k: round(v, 2) if isinstance(v, float) else v for k, v in first.items() if k != "evses"
        }
        result["first_pull"]["evses"] = len(first["evses"])
        group.ask({"cmd": "hold", "seconds": SETTLE_S}, SETTLE_S + PHASE_SLACK)

        # -- phase 2: pushes ----------------------------------------------------------------------------------
        profiler = Profiler(a.profile, "with_pushes", info["pid"], a.phase)
        start = time.time()
        cpu.start()
        phases["with_pushes"] = heartbeat_phase(group, a, errors, "with pushes")
        cpu.stop("with_pushes")
        windows["with_pushes"] = (start, time.time())
        profiler.wait()
        result["push_progress"] = [
            {**row, "t": round(row["t"] - registered_at, 1)} for row in progress.stop()
        ]
        progress_http.close()

        # -- quiet: the simulators are not driven; the pusher drains; the final pull ------------------------
        stopped = time.time()
        drained_at = None
        deadline = stopped + DRAIN_TIMEOUT_S
        last_count, quiet_since = -1, time.time()
        while time.time() < deadline:
            pending = party_push(http, api, info["admin_token"], party["id"]).get("pending", -1)
            count = receiver.count()["records"]
            if count != last_count:
                last_count, quiet_since = count, time.time()
            if pending == 0 and time.time() - quiet_since >= DRAIN_QUIET_S:
                drained_at = quiet_since
                break
            time.sleep(0.1)
        result["drain_s"] = None if drained_at is None else round(max(0.0, drained_at - stopped), 2)
        locations_url = party["versions_url"].rsplit("/", 1)[0] + "/2.2.1/locations"
        final = pull(http, locations_url, token_c, a.page_limit)
        result["final_pull"] = {
            k: round(v, 2) if isinstance(v, float) else v for k, v in final.items() if k != "evses"
        }
        result["final_pull"]["evses"] = len(final["evses"])
        records = receiver.records()
        run_end = time.time()
        result["party_push"] = party_push(http, api, info["admin_token"], party["id"])
        result["emsp_received"] = receiver.count()

        group.ask({"cmd": "close", "timeout": 10.0}, 10.0 + PHASE_SLACK)
        group.stop()
        group = None
        node.stop()
        node_log = node.log_tail(10)
        node = None
    except BenchError as e:
        if node is not None:
            raise BenchError(f"{e}\n-- node log (last lines) --\n{node.log_tail()}") from None
        raise
    finally:
        if group is not None:
            group.kill()
        if node is not None:
            node.stop()
        if receiver is not None:
            receiver.stop()
        http.close()

    # -- analysis (the node is stopped: its event table is complete) ---------------------------------------------
    if a.keep is not None:
        # The raw material of the analysis, for a second look: the node's database and what the eMSP got.
        a.keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / "ampgate.db", a.keep / "ampgate.db")
        (a.keep / "run.json").write_text(
            json.dumps({"windows": windows, "run_end": run_end, "records": records})
        )
    changes, counts = read_changes(tmp / "ampgate.db", run_end)
    pushes: dict[str, list[tuple[float, str, int]]] = {}
    for uid, at, status, lu in records:
        pushes.setdefault(uid, []).append((at, status, int(_epoch(lu)) if lu else 0))
    for ps in pushes.values():
        ps.sort()
    for name, (s, e) in windows.items():
        p = phases[name]
        n = in_window(changes, s, e)
        wall = e - s
        cp = cpu.phases[name]["control plane"]
        cp_s = cp["user_s"] + cp["sys_s"]
        p["ocpi_status_changes"] = n
        p["changes_per_s"] = round(n / wall, 1)
        p["control_plane_cpu_s"] = round(cp_s, 2)
        p["control_plane_cpu_pct"] = cp["cpu_pct"]
        p["control_plane_cpu_us_per_change"] = round(cp_s / n * 1e6, 1) if n else None
        p["pushes_received"] = sum(1 for ps in pushes.values() for x in ps if s <= x[0] < e)
        p["emsp_cpu_pct"] = cpu.phases[name]["emsp receiver"]["cpu_pct"]
        p["other_processes_cores"] = cpu.phases[name]["machine_pct"]["other_processes_cores"]
    result["phases"] = phases
    without, with_ = phases["without_pushes"], phases["with_pushes"]
    if without["control_plane_cpu_us_per_change"] and with_["control_plane_cpu_us_per_change"]:
        result["push_cpu_us_per_change"] = round(
            with_["control_plane_cpu_us_per_change"] - without["control_plane_cpu_us_per_change"], 1
        )
    result["freshness"] = freshness(changes, pushes, *windows["with_pushes"])
    held = held_by_emsp(first, pushes)
    truth = final["evses"]
    wrong = {
        uid: (status, held.get(uid))
        for uid, (status, _) in truth.items()
        if held.get(uid, ("",))[0] != status
    }
    result["final_check"] = {
        "evses_at_node": len(truth),
        "evses_at_emsp": len(held),
        "equal": len(truth) - len(wrong),
        "different": len(wrong),
        "examples": dict(list(wrong.items())[:5]),
        "held_from_push": sum(1 for v in held.values() if v[1] == "push"),
    }
    result["events"] = {
        k: v
        for k, v in counts.items()
        if k in ("connector.status", "charger.disconnected", "events.lost", "transaction.started")
    }
    result["cpu"] = cpu.phases
    result["errors"] = errors
    hb_ratio = (
        with_["heartbeat_p99_ms"] / without["heartbeat_p99_ms"] if without["heartbeat_p99_ms"] else None
    )
    f = result["freshness"]
    result["targets"] = {
        "fresh_within_2s": {
            "target": f"every change held by the eMSP within {FRESH_WITHIN_S:g} s at {a.rate:,.0f} changes/s",
            "value_max_ms": f["max_ms"],
            "undelivered": f["undelivered"],
            "pass": f["max_ms"] is not None
            and f["max_ms"] <= FRESH_WITHIN_S * 1000
            and f["undelivered"] == 0,
        },
        "every_evse_equal_at_end": {
            "target": "every EVSE the eMSP holds equals the node's (final pull)",
            "different": result["final_check"]["different"],
            "pass": result["final_check"]["different"] == 0 and len(truth) == a.chargers,
        },
        "heartbeat_p99_ratio": {
            "target": f"heartbeat p99 with pushes <= {HEARTBEAT_P99_RATIO:g}x without",
            "value": None if hb_ratio is None else round(hb_ratio, 2),
            "pass": hb_ratio is not None and hb_ratio <= HEARTBEAT_P99_RATIO,
        },
        "rate_reached": {
            "target": f"{a.rate:,.0f} OCPI status changes/s (within 10%)",
            "value": with_["changes_per_s"],
            "pass": with_["changes_per_s"] >= 0.9 * a.rate,
        },
    }
    result["node_log_tail"] = node_log
    shutil.rmtree(tmp, ignore_errors=True)
    return result


# -- output --------------------------------------------------------------------------------------------------


def table(r: dict[str, Any]) -> str:
    w, p = r["phases"]["without_pushes"], r["phases"]["with_pushes"]
    f = r["freshness"]
    cap = r["emsp_capacity"]
    lines = [
        f"OCPI status pushes: {r['chargers']:,} chargers on {r['sites']} sites, target {r['target_changes_per_s']:,.0f}"
        f" changes/s, phases of {r['phase_s']:g} s, heartbeats {r['heartbeat_rate']:,.0f}/s",
        f"eMSP receiver: {cap['answered_per_s']:,} pushes/s answered over 4 connections in the capacity check, "
        f"{cap['receiver_cpu_us_per_push']} us CPU each",
        "",
        f"{'':<34}{'without pushes':>16}{'with pushes':>16}",
    ]

    def row(label: str, key: str, fmt: str = "{:,.1f}") -> None:
        def cell(v: Any) -> str:
            return "n/a" if v is None else fmt.format(v)

        lines.append(f"{label:<34}{cell(w.get(key)):>16}{cell(p.get(key)):>16}")

    row("OCPI status changes / s", "changes_per_s")
    row("pushes received by the eMSP", "pushes_received", "{:,}")
    row("control plane CPU %", "control_plane_cpu_pct")
    row("control plane CPU us / change", "control_plane_cpu_us_per_change")
    row("heartbeat p50 ms", "heartbeat_p50_ms", "{:.2f}")
    row("heartbeat p99 ms", "heartbeat_p99_ms", "{:.2f}")
    row("heartbeat max ms", "heartbeat_max_ms", "{:.1f}")
    row("eMSP receiver CPU %", "emsp_cpu_pct")
    row("other processes on the box (cores)", "other_processes_cores", "{:.2f}")
    lines += [
        "",
        f"push cost: {r.get('push_cpu_us_per_change')} us of control-plane CPU per status change",
        f"freshness (node handled the StatusNotification -> eMSP held it), {f['delivered']:,} changes: "
        f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, max {f['max_ms']} ms, within 2 s {f['within_2s_pct']}%, "
        f"undelivered {f['undelivered']}",
        f"  from the charger's timestamp: p50 {f['from_charger_timestamp']['p50_ms']} ms, "
        f"p99 {f['from_charger_timestamp']['p99_ms']} ms, max {f['from_charger_timestamp']['max_ms']} ms",
        f"drained {r['drain_s']} s after the simulators stopped; final pull {r['final_pull']['seconds']} s "
        f"({r['final_pull']['requests']} requests): {r['final_check']['equal']:,} of "
        f"{r['final_check']['evses_at_node']:,} EVSEs equal at the eMSP, {r['final_check']['different']} different",
        "",
    ]
    for name, t in r["targets"].items():
        lines.append(f"{'pass' if t['pass'] else 'MISS':<5} {name}: {t['target']}")
    if r["errors"]:
        lines.append(f"errors: {r['errors']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--chargers", type=int, default=10_000)
    p.add_argument("--per-site", type=int, default=1000, help="chargers per site (Location)")
    p.add_argument("--rate", type=float, default=1000.0, help="OCPI status changes per second over the fleet")
    p.add_argument(
        "--changes",
        choices=("statuses", "transactions"),
        default="statuses",
        help="what changes the statuses: the simulator's status changes (one StatusNotification each) or its "
        "transactions (two changes each, with Authorize, StartTransaction, StopTransaction)",
    )
    p.add_argument(
        "--tx-duration", type=float, default=0.0, help="s a transaction charges (default: min(20, cycle/4))"
    )
    p.add_argument("--warmup", type=float, default=-1.0, help="s after the boot before measuring")
    p.add_argument("--phase", type=float, default=60.0, help="s of each measured phase")
    p.add_argument("--settle-window", type=float, default=5.0, help="s of each settling window")
    p.add_argument("--heartbeat-rate", type=float, default=1000.0, help="fleet heartbeats per second")
    p.add_argument("--page-limit", type=int, default=5, help="Locations per GET page in the pulls")
    p.add_argument("--per-process", type=int, default=PER_PROCESS, help="chargers per simulator process")
    p.add_argument("--emsp-blast", type=float, default=3.0, help="s of the eMSP receiver's capacity check")
    p.add_argument(
        "--profile", type=Path, default=None, help="py-spy profiles of both phases: PREFIX-<phase>.raw"
    )
    p.add_argument("--keep", type=Path, default=None, help="keep the node's database and the pushes in DIR")
    p.add_argument(
        "--smoke", action="store_true", help="CI size: exit 1 unless the run is complete and correct"
    )
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    try:
        result = run(a)
    except BenchError as e:
        print(f"ocpi push benchmark failed: {e}", file=sys.stderr)
        return 1
    result["command"] = "python bench/ocpi_push.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = json.dumps(result, indent=2)
    print(text)
    print(table(result))
    if a.json:
        a.json.write_text(text + "\n")
    if a.smoke:
        f = result["freshness"]
        bad = (
            result["errors"]
            or f["undelivered"]
            or not f["delivered"]
            or result["final_check"]["different"]
            or result["final_check"]["evses_at_node"] != a.chargers
        )
        if bad:
            print("smoke run failed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
