"""Running a simulation: the command line's options become a plan (target address, scenario, one job per
process), the plan runs as worker processes (`python -m ampgate.sim.proc`, see there for the line protocol),
and their reports are merged into one.

The fleet is spread over as many processes as the open-file limit per process requires (each simulated charger
holds one socket); the parent only reads JSON lines from its children, so it needs no event loop of its own.
Ctrl-C asks every child to stop early (the links still close properly); a second Ctrl-C kills them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, NamedTuple
from urllib.parse import urlsplit

from ampgate.errors import AmpgateError
from ampgate.sim.report import finish_report, merge_reports, merge_stats
from ampgate.sim.scenario import (
    FleetOptions,
    Scenario,
    ScenarioError,
    TlsOptions,
    apply_overrides,
    compile,
    load_scenario,
    source_ips,
)

__all__ = ["SimError", "SimPlan", "Target", "execute", "limit_hints", "make_plan", "parse_url", "run_sim"]

# A run ends `duration` s after it starts, then closes its links; this is how long closing (and the slowest
# process's start) may take before the children count as hung and are stopped.
CLOSE_ALLOWANCE = 60.0
# After asking the children to stop (Ctrl-C, or the allowance above ran out), how long they get to close.
STOP_GRACE = 15.0
# A child that has not said anything for this long is hung (it reports progress every half second).
SILENCE_LIMIT = 30.0
PROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "ocpp1.6": "ocpp1.6", "ocpp2.0.1": "ocpp2.0.1"}
# How a simulator process is started (tests start a stand-in engine the same way).
PROC_ARGS = ["-m", "ampgate.sim.proc"]
PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
# Characters a charger id may not have: it is the last segment of the URL path.
_BAD_ID_CHARS = set("/?#% \t\"'<>\\")


class SimError(AmpgateError):
    """The simulation could not run or could not finish (a limit, a process that failed); the message says
    what happened in plain words, and how to fix it where there is a fix."""

    default_code = "sim_failed"


@dataclass(frozen=True)
class SimPlan:
    """Everything a run needs, checked: the fleet, the scenario and the (settings, traits) of each process."""

    url: str
    options: FleetOptions
    scenario: Scenario
    scenario_name: str
    jobs: list[tuple[dict[str, Any], bytes]]

    @property
    def duration(self) -> float:
        return self.scenario.run.duration


class Target(NamedTuple):
    """Where the simulated chargers connect, from the --url."""

    host: str
    port: int
    path: str
    tls: bool


def parse_url(url: str) -> Target:
    """The target of a ws:// or wss:// URL. Raises ScenarioError (field "--url") for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ScenarioError(f"expected a ws:// or wss:// URL, got {url!r}", field="--url")
    if parts.query or parts.fragment:
        raise ScenarioError(
            "expected no query or fragment: the charger id is appended to the path", field="--url"
        )
    tls = parts.scheme == "wss"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise ScenarioError(f"bad port in {url!r}", field="--url") from None
    if not parts.hostname:
        raise ScenarioError(f"no host in {url!r}", field="--url")
    return Target(parts.hostname, port, parts.path.rstrip("/"), tls)


def tls_options(
    target: Target,
    *,
    ca: str | Path | None,
    client_cert: str | Path | None,
    client_key: str | Path | None,
    client_ca_cert: str | Path | None,
    client_ca_key: str | Path | None,
) -> TlsOptions | None:
    """The TLS part of the options (None for ws://), the files checked to exist (the engine reads them)."""
    files = {
        "--ca": ca,
        "--client-cert": client_cert,
        "--client-key": client_key,
        "--client-ca-cert": client_ca_cert,
        "--client-ca-key": client_ca_key,
    }
    given = {k: v for k, v in files.items() if v is not None}
    if not target.tls:
        if given:
            raise ScenarioError("needs a wss:// URL", field=next(iter(given)))
        return None
    for cert, key in (("--client-cert", "--client-key"), ("--client-ca-cert", "--client-ca-key")):
        if (cert in given) != (key in given):
            raise ScenarioError(f"{cert} and {key} go together", field=cert if cert not in given else key)
    if "--client-cert" in given and "--client-ca-cert" in given:
        raise ScenarioError(
            "one certificate for every charger (--client-cert) or one per charger issued by a CA "
            "(--client-ca-cert), not both",
            field="--client-ca-cert",
        )
    for flag, path in given.items():
        if not Path(path).is_file():
            raise ScenarioError(f"no such file: {path}", field=flag)

    def absolute(p: str | Path | None) -> str | None:
        return None if p is None else str(Path(p).resolve())

    return TlsOptions(
        server_name=target.host,
        ca=absolute(ca),
        client_cert=absolute(client_cert),
        client_key=absolute(client_key),
        client_ca_cert=absolute(client_ca_cert),
        client_ca_key=absolute(client_ca_key),
    )


def resolve(host: str, port: int) -> str:
    """The IP address to connect to (IPv4 first). Raises ScenarioError when the name does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ScenarioError(f"cannot resolve {host!r}: {e}", field="--url") from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    return str(infos[0][4][0])


def local_port_count() -> int | None:
    """Ephemeral ports this host gives one (source, destination) address pair, or None if unknown."""
    try:
        low, high = (int(x) for x in Path(PORT_RANGE_FILE).read_text().split())
    except (OSError, ValueError):
        return None
    return high - low + 1


def raise_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit (children inherit it); return it."""
    from ampgate import _native

    return _native.raise_nofile_limit()


def make_plan(
    url: str,
    chargers: int,
    *,
    protocol: str = "1.6",
    scenario: str | Scenario | None = None,
    scenario_file: str | Path | None = None,
    duration: float | None = None,
    connectors: int | None = None,
    no_backoff: bool = False,
    id_prefix: str = "SIM",
    password: str | None = None,
    id_tag: str = "SIMTAG",
    seed: int = 0,
    processes: int = 0,
    file_limit: int | None = None,
    ca: str | Path | None = None,
    client_cert: str | Path | None = None,
    client_key: str | Path | None = None,
    client_ca_cert: str | Path | None = None,
    client_ca_key: str | Path | None = None,
) -> SimPlan:
    """Check the options and compile the scenario into one job per process. `processes` 0 means as few as the
    open-file limit allows (`file_limit`, default: this process's limit after raising it to the hard limit).
    A wss:// URL verifies the server against `ca` (PEM; default the system's roots); the chargers present
    `client_cert`/`client_key`, or each its own certificate issued by `client_ca_cert`/`client_ca_key`.

    Raises ScenarioError naming the option or scenario field at fault, SimError for a limit the run would hit
    (too few files per process, too few local ports), with the fix in the message."""
    if chargers < 1:
        raise ScenarioError("expected >= 1", field="--chargers")
    if protocol not in PROTOCOLS:
        raise ScenarioError(f"expected 1.6 or 2.0.1, got {protocol!r}", field="--protocol")
    if not id_prefix or any(c in _BAD_ID_CHARS or not c.isascii() or not c.isprintable() for c in id_prefix):
        raise ScenarioError(
            "expected ASCII letters, digits or -_.:* (it starts every charger id)", field="--id-prefix"
        )
    if processes < 0:
        raise ScenarioError("expected >= 0 (0 = as few as the open-file limit allows)", field="--processes")
    if isinstance(scenario, Scenario):
        sc, name = scenario, "custom"
    elif scenario_file is not None:
        sc, name = load_scenario(path=scenario_file), str(scenario_file)
    else:
        sc = load_scenario(scenario)
        name = scenario or "steady"
    sc = apply_overrides(sc, duration=duration, connectors=connectors, no_backoff=no_backoff)
    target = parse_url(url)
    host, port, path = target.host, target.port, target.path
    tls = tls_options(
        target,
        ca=ca,
        client_cert=client_cert,
        client_key=client_key,
        client_ca_cert=client_ca_cert,
        client_ca_key=client_ca_key,
    )
    ip = resolve(host, port)

    limit = file_limit if file_limit is not None else raise_file_limit()
    # Files a simulator process keeps for itself beside one socket per charger (the interpreter, pipes, epoll).
    from ampgate._native import FD_RESERVE

    per_process = limit - FD_RESERVE
    if per_process < 1:
        raise SimError(
            f"the open-file limit is {limit}, too low to simulate any charger; raise it (ulimit -n, or LimitNOFILE= "
            "in a systemd unit)"
        )
    if processes == 0:
        processes = math.ceil(chargers / per_process)
    elif math.ceil(chargers / processes) > per_process:
        raise SimError(
            f"{chargers} chargers over {processes} processes need {math.ceil(chargers / processes)} open files "
            f"each, and the open-file limit is {limit} per process: use --processes "
            f"{math.ceil(chargers / per_process)} or more (or leave it out), or raise the limit (ulimit -n)"
        )
    ports = local_port_count()
    # Without source addresses of our own (a target that is not IPv4 loopback), every link to the target
    # takes one local port of the same range.
    if not source_ips(ip, 0, chargers) and ports is not None and chargers > ports:
        raise SimError(
            f"no free local ports: {chargers} connections to {ip}:{port} from one address need {chargers} "
            f"local ports and this host has {ports} (net.ipv4.ip_local_port_range); widen the range "
            "(sysctl -w net.ipv4.ip_local_port_range='1024 65535'), simulate fewer chargers, or run the "
            "simulator on several hosts"
        )
    options = FleetOptions(
        host=ip,
        port=port,
        chargers=chargers,
        path_prefix=path,
        protocol=PROTOCOLS[protocol],  # type: ignore[arg-type]
        id_prefix=id_prefix,
        password=password,
        id_tag=id_tag,
        seed=seed,
        processes=processes,
        tls=tls,
    )
    return SimPlan(url, options, sc, name, compile(sc, options))


# -- running --------------------------------------------------------------------------------------------


@dataclass
class _Child:
    index: int
    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]
    last_heard: float
    buf: bytes = b""
    eof: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    invalid: int = 0
    report: dict[str, Any] | None = None
    error: tuple[str, str] | None = None  # (kind, message)

    def send(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()

    def stderr_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.stderr.seek(0)
            text = self.stderr.read().decode(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""


class _Interrupts:
    """Counts Ctrl-C presses while installed (main thread only; elsewhere Ctrl-C is not ours to catch)."""

    def __init__(self) -> None:
        self.count = 0
        self._old: Any = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


ProgressCallback = Callable[[dict[str, Any], int], None]


def _spawn(index: int, settings: dict[str, Any], traits: bytes) -> _Child:
    err = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the child in execute()
    proc = subprocess.Popen(
        [sys.executable, *PROC_ARGS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err,
        # Its own process group: a Ctrl-C at the terminal reaches only the runner, which stops the children
        # in order (a "stop" line) instead of having them die mid-run.
        process_group=0,
    )
    child = _Child(index, proc, err, time.monotonic())
    job = {"settings": settings, "traits": base64.b64encode(traits).decode(), "parent_pid": os.getpid()}
    child.send(json.dumps(job) + "\n")
    return child


def _read(child: _Child) -> None:
    assert child.proc.stdout is not None
    data = os.read(child.proc.stdout.fileno(), 1 << 16)
    if not data:
        child.eof = True
        return
    child.last_heard = time.monotonic()
    child.buf += data
    *lines, child.buf = child.buf.split(b"\n")
    for line in lines:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            child.error = ("engine", f"unreadable line from the simulator process: {line[:200]!r}")
            continue
        if "progress" in msg:
            child.stats, child.invalid = msg["progress"], int(msg.get("invalid", 0))
        elif "report" in msg:
            child.report = msg["report"]
        elif "error" in msg:
            child.error = (msg.get("kind", "engine"), msg["error"])


def _failure(children: list[_Child]) -> AmpgateError | None:
    for c in children:
        if c.error is not None:
            kind, message = c.error
            if kind == "settings":
                return ScenarioError(f"the simulator engine refused a setting: {message}")
            if kind == "limit":
                return SimError(
                    f"simulator process {c.index} could not start: {message}. Raise the open-file limit "
                    "(ulimit -n) or use more --processes"
                )
            return SimError(f"simulator process {c.index} failed: {message}")
    for c in children:
        if c.report is None and c.eof and c.proc.poll() is not None:
            tail = c.stderr_tail()
            return SimError(
                f"simulator process {c.index} (pid {c.proc.pid}) exited with code {c.proc.returncode} "
                f"without a report" + (f":\n{tail}" if tail else "")
            )
    return None


def execute(plan: SimPlan, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Run the plan's processes to the end and return the merged, finished report (see
    ampgate.sim.report.finish_report). `on_progress(stats, invalid)` gets the fleet's live counters about
    four times a second.

    Ctrl-C (in the main thread) stops the run early and the report says `"interrupted": true`; a second Ctrl-C
    kills the processes and raises SimError. Raises SimError when a process fails, hangs or dies, and
    ScenarioError when the engine refuses a setting."""
    children: list[_Child] = []
    t0 = time.monotonic()
    deadline = t0 + plan.duration + CLOSE_ALLOWANCE
    stopping_since: float | None = None
    interrupted = overtime = False
    next_progress = t0
    try:
        with _Interrupts() as interrupts, selectors.DefaultSelector() as sel:
            for k, (settings, traits) in enumerate(plan.jobs):
                child = _spawn(k, settings, traits)
                children.append(child)
                assert child.proc.stdout is not None
                sel.register(child.proc.stdout, selectors.EVENT_READ, child)
            while sel.get_map():
                for key, _ in sel.select(0.1):
                    child = key.data
                    _read(child)
                    if child.eof:
                        sel.unregister(key.fileobj)
                        child.proc.wait()
                now = time.monotonic()
                failure = _failure(children)
                if interrupts.count >= 2:
                    raise SimError("interrupted: the simulator processes were killed")
                if stopping_since is None and (failure or interrupts.count or now > deadline):
                    interrupted = bool(interrupts.count)
                    overtime = now > deadline
                    stopping_since = now
                    for c in children:
                        c.send("stop\n")
                if stopping_since is not None and now > stopping_since + STOP_GRACE:
                    break
                silent = [c for c in children if not c.eof and now - c.last_heard > SILENCE_LIMIT]
                if silent:
                    raise SimError(
                        f"simulator process {silent[0].index} (pid {silent[0].proc.pid}) said nothing for "
                        f"{SILENCE_LIMIT:.0f} s: it is hung"
                    )
                if on_progress is not None and now >= next_progress:
                    next_progress = now + 0.25
                    live = [c.stats for c in children if c.stats]
                    if live:
                        on_progress(merge_stats(live), sum(c.invalid for c in children))
        failure = _failure(children)
        if failure is not None:
            raise failure
        missing = [c for c in children if c.report is None]
        if missing or overtime:
            raise SimError(
                f"simulator process {(missing or children)[0].index} did not finish within {plan.duration:g} s "
                f"+ {CLOSE_ALLOWANCE:.0f} s for closing"
            )
    finally:
        for c in children:
            if c.proc.poll() is None:
                c.proc.kill()
            c.proc.wait()
            for f in (c.proc.stdin, c.proc.stdout, c.stderr):
                with contextlib.suppress(OSError):
                    if f is not None:
                        f.close()
    merged = merge_reports(c.report for c in children if c.report is not None)
    opts = plan.options
    return finish_report(
        merged,
        url=plan.url,
        scenario=plan.scenario_name,
        seed=opts.seed,
        processes=len(plan.jobs),
        duration_s=plan.duration,
        interrupted=interrupted,
    )


def run_sim(url: str, chargers: int, *, on_progress: ProgressCallback | None = None, **options: Any) -> dict:
    """Simulate `chargers` chargers against the central system at `url` and return the merged report.
    `options` are those of make_plan (protocol, scenario or scenario_file, duration, seed, ...).
    Raises ScenarioError for a bad option or scenario, SimError when the run cannot run or finish."""
    return execute(make_plan(url, chargers, **options), on_progress)


def limit_hints(report: dict[str, Any]) -> list[str]:
    """Plain-words explanations (with the fix) of the limits the report's connect failures show: the open-file
    limit, the local ports, or nothing listening at the URL."""
    failures = report.get("error_details", {}).get("connect_failed", {})
    text = " ".join(failures).lower()
    hints = []
    if "out of files" in text or "too many open files" in text or "os error 24" in text:
        hints.append(
            "some connects failed for lack of file descriptors: raise the open-file limit (ulimit -n) or use "
            "more --processes"
        )
    if "no free local port" in text or "cannot assign requested address" in text or "os error 99" in text:
        hints.append(
            "some connects found no free local port: widen net.ipv4.ip_local_port_range (sysctl -w "
            "net.ipv4.ip_local_port_range='1024 65535'), wait for TIME_WAIT ports to free up between runs, or "
            "simulate fewer chargers per host"
        )
    if "refused" in text:
        hints.append(
            f"connections were refused: is the central system listening at {report.get('url', 'the URL')}?"
        )
    return hints
