"""Gateway worker supervision and the event pump.

The control plane owns the listening socket and hands it to every worker (they accept from it with
EPOLLEXCLUSIVE, so one incoming connection wakes one worker). Each worker gets one end of a socketpair as its
link; the other end goes to the Rust hub, which multiplexes all links into one event stream for the pump.

The pump handles the workers' own events (up, down, stats, barrier acks) here and hands on the rest through two
narrow interfaces: connection events to a `LinkListener` (connectivity) and messages to a `MessageSink` (the
OCPP router), whose replies go back to the workers in batches.

Chargers already connected never wait behind a storm: in each drained batch, the messages of connections the
router already knows (and that have nothing of their own waiting) are handled first and answered at once; the
connection events and everything ordered behind them go to a backlog handled in order, at most BACKLOG_SLICE
seconds per turn of the pump. A charger's own events keep their order: once one of its events waits in the
backlog, the ones after it wait there too. Past BACKLOG_MAX events waiting, the pump takes nothing new from the
hub until the backlog is worked down: the hub's bound then makes the workers stop reading, as before.

Supervision: a worker that exits, or that cannot be started or armed (socketpair or fork/exec failing, an SQLite
error while reading the handshake table), is started again after a back-off (`RestartBackoff`: RESTART_DELAY
doubling to RESTART_DELAY_MAX, reset once a generation served RESTART_STABLE seconds); the other slots keep
serving meanwhile and health shows the slot `down` with its last error. A worker that is alive but does not
answer the link heartbeat (a barrier its Rust loop acknowledges, every `worker_heartbeat_s`) for
HEARTBEAT_MISSES intervals is killed and replaced the same way.

Back-pressure: while the store's write queue (or the replies awaiting commits) is full (`room`,
ampgate.gateway.backpressure), the pump takes no batch until there is room: a slow or locked disk pushes back on
the chargers' TCP windows instead of growing the control plane's memory.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
import trio
import trio.lowlevel

from ampgate import _native
from ampgate.config import NodeConfig
from ampgate.events import Event, GatewayWorkerDown
from ampgate.gateway import admission
from ampgate.gateway.backpressure import Room
from ampgate.gateway.conn_ids import generation_of, worker_of
from ampgate.gateway.outgoing import Outgoing
from ampgate.gateway.pump_stats import PumpStats
from ampgate.gateway.tls import check_tls_files

log = logging.getLogger(__name__)

# The kernel caps the accept backlog at net.core.somaxconn anyway; ask for plenty so a boot storm queues in
# the kernel rather than being refused.
LISTEN_BACKLOG = 65535
# Restart back-off: wait RESTART_DELAY before starting a worker slot again, doubled for every failure in a row
# (a worker that dies at once, or cannot be started) up to RESTART_DELAY_MAX; a generation that served
# RESTART_STABLE seconds resets it. A slot that cannot start never spins, and one crash costs half a second.
RESTART_DELAY = 0.5
RESTART_DELAY_MAX = 30.0
RESTART_STABLE = 60.0
# A worker that leaves this many heartbeat intervals in a row unanswered is hung: killed and replaced.
HEARTBEAT_MISSES = 3
# How long a barrier (e.g. a credential change reaching every worker) may take before we give up on it.
BARRIER_TIMEOUT = 10.0
# How long all workers together may take to start and acknowledge their table at node start.
STARTUP_TIMEOUT = 60.0
# After asking workers to shut down, how long to wait for them to finish their close handshakes.
SHUTDOWN_TIMEOUT = 5.0
# Seconds of backlog (connection events, and what waits behind them) handled per turn of the pump before the
# messages of connected chargers get their turn again.
BACKLOG_SLICE = 0.01
# Past this many events in the backlog the pump stops taking new ones from the hub until it is below again: what
# keeps arriving then waits in the hub, whose own bound makes the workers stop reading (TCP pushes back on the
# chargers) instead of the backlog growing without end. A whole 100k fleet reconnecting is 200k events.
BACKLOG_MAX = 250_000


class WorkerInfo(msgspec.Struct):
    worker: int
    generation: int
    pid: int | None = None
    alive: bool = False
    connections: int = 0
    paused: bool = False
    heap_bytes: int = 0
    restarts: int = 0
    # "starting" (spawned, loading its table), "up" (accepting), "down" (exited, hung or failed to start; waiting
    # for its restart). `last_error`: why it last went down, kept until it is up again.
    state: str = "starting"
    last_error: str | None = None


class RestartBackoff:
    """How long a worker slot waits before its next start: `first` after a failure, doubled for each failure in
    a row up to `cap`; a generation that served `stable` seconds before it ended starts the count again."""

    def __init__(
        self, first: float = RESTART_DELAY, cap: float = RESTART_DELAY_MAX, stable: float = RESTART_STABLE
    ) -> None:
        self.first, self.cap, self.stable = first, cap, stable
        self.failures = 0

    def next_delay(self, served_s: float) -> float:
        """The wait before the next start, after a generation that served `served_s` seconds (0: it never came
        up, e.g. it could not be spawned or armed)."""
        if served_s >= self.stable:
            self.failures = 0
        delay = min(self.cap, self.first * 2 ** min(self.failures, 32))
        self.failures += 1
        return delay


class LinkListener(Protocol):
    """Hears of charger connections: opened (`worker_at`: the worker's CLOCK_MONOTONIC seconds), closed, and
    every connection of a worker process lost at once."""

    def connected(
        self,
        conn_id: int,
        charger_id: str,
        protocol: str,
        peer: str,
        worker_at: float | None,
        security_profile: int = 1,
        /,
    ) -> None: ...
    def disconnected(self, conn_id: int, code: int, reason: str, worker_at: float | None, /) -> None: ...
    def worker_lost(self, worker: int, generation: int, /) -> None: ...
    def pong(self, conn_id: int, rtt: float, worker_at: float | None, /) -> None: ...


class MessageSink(Protocol):
    """Handles charger messages, appending replies to `out`; `begin_batch` before each drained batch; `knows`
    whether a connection has a session (its Connected was handled and its Disconnected not yet)."""

    def begin_batch(self) -> None: ...
    def knows(self, conn_id: int, /) -> bool: ...
    def on_message(self, conn_id: int, data: bytes, out: list[tuple[int, bytes]], /) -> None: ...


# The environment variable a worker reads its TLS session-ticket keys from (rust/py/worker.rs).
TICKET_KEYS_ENV = "AMPGATE_TLS_TICKET_KEYS"

Credentials = Callable[[int, str | None], list[tuple[str, str | None, int]]]
"""A page of the handshake table: up to `limit` known charger ids after `after` (None: from the first), in id
order, each with its password hash (None: no password) and lowest allowed security profile."""

# Chargers per page of the handshake table pushed to a worker: a few milliseconds of the trio thread each.
CREDENTIAL_PAGE = 5000


class Gateway:
    """Starts K worker processes, restarts any that die, and pumps their events to the listener and the sink."""

    def __init__(
        self,
        config: NodeConfig,
        hub: _native.Hub,
        links: LinkListener,
        messages: MessageSink,
        credentials: Credentials,
        *,
        publish: Callable[[Event], None] | None = None,
        now: Callable[[], datetime] | None = None,
        room: Room | None = None,
    ) -> None:
        self._cfg = config
        self._publish = publish
        self._now = now or (lambda: datetime.now(UTC))
        self._room = room
        # Times the pump waited for the store (or the late replies) before taking a batch.
        self.held = 0
        self.hub = hub
        # Replies go through this: a message too large for the hub closes its connection instead of raising.
        self.outgoing = Outgoing(hub)
        self._links = links
        self._messages = messages
        self._credentials = credentials
        self.workers: dict[int, WorkerInfo] = {}
        self._generation = 0
        self._listener: socket.socket | None = None
        self._tls_listener: socket.socket | None = None
        self.tls_port: int | None = None
        # Session-ticket keys every worker encrypts its TLS session tickets with, new at every start: a
        # charger's reconnect resumes its session on whichever worker it lands. Given in the workers'
        # environment (readable by the node's user only), not on their command line (readable by anyone).
        self._worker_env = {**os.environ, TICKET_KEYS_ENV: secrets.token_hex(80)}
        self._acks: dict[int, tuple[set[int], trio.Event]] = {}
        self._stopping = False
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self.ocpp_port = 0
        self.pump_stats = PumpStats()
        # Events waiting behind connection events, in arrival order, and how many each connection has there.
        self._backlog: collections.deque[tuple[Any, ...]] = collections.deque()
        self._held: dict[int, int] = {}
        self.handshakes = admission.HandshakeCounts()
        self.admission = admission.share(
            config.admit_rate,
            config.admit_burst,
            config.admit_handshakes,
            config.admit_retry_max,
            config.worker_count(),
            config.unknown_ids_per_minute,
        )

    # -- lifecycle -----------------------------------------------------------------------------------------

    def _listen(self, port: int) -> socket.socket:
        """The shared listening socket; in reuseport mode a socket that is bound but never listens, which
        holds the port (and learns it, for port 0) while each worker binds and listens on its own."""
        family = socket.AF_INET6 if ":" in self._cfg.ocpp_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._cfg.listen_mode == "reuseport":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self._cfg.ocpp_host, port))
        if self._cfg.listen_mode == "shared":
            sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        return sock

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, start the workers, push the handshake table, start accepting; report started once every
        worker listens; then supervise until cancelled. Raises OSError when the OCPP port cannot be bound and
        trio.TooSlowError when the workers are not all ready within STARTUP_TIMEOUT."""
        cfg = self._cfg
        if cfg.ocpp_tls_port is not None:
            check_tls_files(cfg)  # a clear error at start rather than workers that cannot start
        if cfg.ocpp_plain:
            self._listener = self._listen(cfg.ocpp_port)
            self.ocpp_port = self._listener.getsockname()[1]
        if cfg.ocpp_tls_port is not None:
            self._tls_listener = self._listen(cfg.ocpp_tls_port)
            self.tls_port = self._tls_listener.getsockname()[1]
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump)
                ready = [trio.Event() for _ in range(self._cfg.worker_count())]
                for slot, event in enumerate(ready):
                    nursery.start_soon(self._supervise, slot, event)
                with trio.fail_after(STARTUP_TIMEOUT):
                    for event in ready:
                        await event.wait()
                task_status.started()
        finally:
            for sock in (self._listener, self._tls_listener):
                if sock is not None:
                    sock.close()

    def reload_tls(self) -> None:
        """Read the TLS certificate, key and client CA files again (SIGHUP): checked here first, so a bad file
        raises ValueError naming it and changes nothing; then every worker loads them for its new connections
        (live ones keep the certificate they were accepted with)."""
        if self._cfg.ocpp_tls_port is None:
            raise ValueError("TLS is not configured (--ocpp-tls-port)")
        check_tls_files(self._cfg)
        self.hub.tls_reload()
        log.info("TLS certificate and key reloaded on every gateway worker")

    async def _supervise(self, slot: int, ready: trio.Event) -> None:
        """Keep a worker running in `slot`: start it, arm it, and when it exits for any reason (even while
        being armed), account for its connections and start the next generation after the back-off. A start that
        fails (socketpair, fork/exec, the hub) or an arming that fails (e.g. an SQLite error reading the table)
        is logged, shown in health and retried the same way: it never ends the node."""
        restarts = 0
        backoff = RestartBackoff(RESTART_DELAY, RESTART_DELAY_MAX, RESTART_STABLE)
        while not self._stopping:
            served = 0.0
            try:
                proc, info = await self._spawn(slot)
            except (
                Exception
            ) as e:  # an OSError mostly (EMFILE, ENOMEM, EAGAIN): nothing of it is left running
                log.error("gateway worker %d could not be started: %s", slot, e)
                info = self._failed_start(slot, f"start failed: {e}")
                reason = "start_failed"
            else:
                info.restarts = restarts
                up_at: list[float] = []
                why: list[tuple[str, str]] = []  # (reason, error) when we killed it
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._arm, slot, proc, info, ready, up_at, why)
                    code = await wait_exit(proc)
                    nursery.cancel_scope.cancel()
                if up_at:
                    served = trio.current_time() - up_at[0]
                reason, info.last_error = why[-1] if why else ("exited", f"exited with {code}")
                self._on_worker_exit(slot, info, code)
            restarts += 1
            info.restarts = restarts
            if self._stopping:
                break
            delay = backoff.next_delay(served)
            self._announce_down(info, reason, delay)
            await trio.sleep(delay)

    def _failed_start(self, slot: int, error: str) -> WorkerInfo:
        """Record in health that `slot` has no worker now, and why."""
        old = self.workers.get(slot)
        info = WorkerInfo(
            worker=slot,
            generation=old.generation if old is not None else 0,
            pid=None,
            alive=False,
            restarts=old.restarts if old is not None else 0,
            state="down",
            last_error=error,
        )
        self.workers[slot] = info
        return info

    def _announce_down(self, info: WorkerInfo, reason: str, restart_in: float) -> None:
        if self._publish is None:
            return
        try:
            self._publish(
                GatewayWorkerDown(
                    at=self._now(),
                    worker=info.worker,
                    generation=info.generation,
                    pid=info.pid,
                    reason=reason,
                    error=info.last_error or "",
                    restart_in_s=round(restart_in, 3),
                )
            )
        except Exception:
            log.exception("failed publishing the down event of gateway worker %d", info.worker)

    async def _arm(
        self,
        slot: int,
        proc: subprocess.Popen[bytes],
        info: WorkerInfo,
        ready: trio.Event,
        up_at: list[float],
        why: list[tuple[str, str]],
    ) -> None:
        """Load the handshake table into a new worker, then let it accept. A known charger with a password
        must never be let in as "unknown" by a worker that has not heard of it yet, so accepting comes last;
        ready only once the worker acknowledged (in reuseport mode it binds its socket just then). A worker that
        cannot be armed (too slow, or reading the table failed) is killed: the supervisor starts another after
        its back-off. Once up, the heartbeat watches it."""
        try:
            await self.push_table(worker=slot)
            self.hub.set_accepting(True, worker=slot)
            await self.barrier(slot)
        except trio.TooSlowError:
            log.error("gateway worker %d (pid %d) did not come up in time; killing it", slot, proc.pid)
            why.append(("arming_failed", "did not come up in time"))
            proc.kill()
            return
        except Exception as e:
            log.error("gateway worker %d (pid %d) could not be armed: %s; killing it", slot, proc.pid, e)
            why.append(("arming_failed", f"arming failed: {e}"))
            proc.kill()
            return
        info.state = "up"
        info.last_error = None
        up_at.append(trio.current_time())
        ready.set()
        await self._heartbeat(slot, proc, why)

    async def _heartbeat(self, slot: int, proc: subprocess.Popen[bytes], why: list[tuple[str, str]]) -> None:
        """Every `worker_heartbeat_s`, a barrier down the worker's link (its Rust loop answers it once everything
        before it is applied); no answer for HEARTBEAT_MISSES intervals and the worker is hung: killed (its
        supervisor replaces it). While the pump is not taking events from the hub (its backlog is full) the
        answer may be waiting there, so the worker is not judged then."""
        interval = self._cfg.worker_heartbeat_s
        if interval <= 0:
            return
        limit = interval * HEARTBEAT_MISSES
        while True:
            await trio.sleep(interval)
            asked = trio.current_time()
            seq = self.hub.barrier(slot)
            done = trio.Event()
            self._acks[seq] = ({slot}, done)
            try:
                deadline = asked + limit
                while True:
                    with trio.move_on_at(deadline):
                        await done.wait()
                    if self._stopping:  # shutting down: `stop` ends the workers
                        return
                    if done.is_set():
                        break
                    if len(self._backlog) >= BACKLOG_MAX:
                        deadline = trio.current_time() + interval
                        continue
                    silent = trio.current_time() - asked
                    log.error(
                        "gateway worker %d (pid %d) did not answer the link heartbeat for %.1f s; killing it",
                        slot,
                        proc.pid,
                        silent,
                    )
                    why.append(("hung", f"hung: no heartbeat answer for {silent:.1f} s"))
                    proc.kill()
                    return
            finally:
                self._acks.pop(seq, None)

    async def _spawn(self, slot: int) -> tuple[subprocess.Popen[bytes], WorkerInfo]:
        self._generation = (self._generation + 1) & 0xFFFF
        gen = self._generation
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cfg = self._cfg
        wcfg = {
            "worker": slot,
            "generation": gen,
            "path_prefix": cfg.ocpp_path.rstrip("/"),
            "protocols": list(cfg.protocols),
            "max_message": cfg.max_message,
            "ping_interval": cfg.ping_interval,
            "ping_timeout": cfg.ping_timeout,
            "handshake_timeout": cfg.handshake_timeout,
            "max_write_queue": cfg.max_write_queue,
            "max_connections": cfg.worker_max_connections,
            "buffer_budget": cfg.worker_buffer_budget_mb << 20,
            "max_pending_calls": cfg.max_pending_calls,
            "msg_rate": float(cfg.charger_msg_rate),
            "msg_burst": cfg.charger_msg_burst,
            "accept_unknown": cfg.unknown_chargers == "accept",
            "auth_fail_limit": admission.auth_fail_share(cfg.auth_fail_limit, cfg.worker_count()),
            "auth_fail_window": cfg.auth_fail_window_s,
            "auth_backoff": cfg.auth_backoff_s,
            "upgrade_without_protocol": cfg.no_subprotocol == "close",
            "parent_pid": os.getpid(),
        }
        pass_fds: tuple[int, ...] = (theirs.fileno(),)
        lfd = -1
        host = f"[{cfg.ocpp_host}]" if ":" in cfg.ocpp_host else cfg.ocpp_host
        if cfg.listen_mode == "reuseport":
            if self._listener is not None:
                wcfg["reuseport_addr"] = f"{host}:{self.ocpp_port}"
            if self._tls_listener is not None:
                wcfg["tls_reuseport_addr"] = f"{host}:{self.tls_port}"
        else:
            if self._listener is not None:
                lfd = self._listener.fileno()
                pass_fds += (lfd,)
            if self._tls_listener is not None:
                wcfg["tls_listen_fd"] = self._tls_listener.fileno()
                pass_fds += (self._tls_listener.fileno(),)
        if self._tls_listener is not None:
            wcfg["tls_certs"] = [list(pair) for pair in cfg.tls_certs]
            wcfg["tls_client_ca"] = cfg.tls_client_ca
        args = [
            sys.executable,
            "-m",
            "ampgate.gateway.worker_main",
            str(lfd),
            str(theirs.fileno()),
            json.dumps(wcfg),
        ]
        try:
            # Spawned from the trio thread itself, not with trio.lowlevel.open_process: PR_SET_PDEATHSIG fires
            # when the *thread* that forked the worker exits, and trio's spawner thread exits when idle (the
            # workers were SIGKILLed ten seconds after start). The fork+exec costs a few milliseconds, once per
            # worker start.
            proc = subprocess.Popen(args, pass_fds=pass_fds, env=self._worker_env)  # noqa: ASYNC220 - see above
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            self.hub.add_worker(slot, gen, ours.detach())
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        old = self.workers.get(slot)
        info = WorkerInfo(
            worker=slot,
            generation=gen,
            pid=proc.pid,
            alive=True,
            last_error=old.last_error if old is not None else None,
        )
        self.workers[slot] = info
        self._procs[slot] = proc
        log.info("gateway worker %d (generation %d) started as pid %d", slot, gen, proc.pid)
        return proc, info

    def _on_worker_exit(self, slot: int, info: WorkerInfo, code: int) -> None:
        info.alive = False
        info.connections = 0
        info.state = "down"
        self._procs.pop(slot, None)
        self._release_barriers(slot)
        if not self._stopping:
            log.warning("gateway worker %d (pid %s) exited with %s; restarting", slot, info.pid, code)
        try:
            self.hub.remove_worker(slot)
            # Every charger that worker held is gone; they reconnect to the other workers meanwhile.
            self._links.worker_lost(slot, info.generation)
        except Exception:
            # A failure accounting for the lost connections must not end the supervision of the slot.
            log.exception("failed accounting for gateway worker %d's exit", slot)

    async def stop(self) -> None:
        """Close every charger connection with 1001 and wait for the workers to exit."""
        self._stopping = True
        self.hub.shutdown(1001)
        with trio.move_on_after(SHUTDOWN_TIMEOUT):
            for proc in list(self._procs.values()):
                await wait_exit(proc)
        for proc in list(self._procs.values()):
            proc.kill()

    # -- the handshake table -------------------------------------------------------------------------------

    async def push_table(self, worker: int | None = None) -> None:
        """Send the admission budget's share, the whole credential table and the unknown-charger policy, and
        wait until applied."""
        a = self.admission
        self.hub.set_admission(
            a.rate, a.burst, a.handshakes, a.retry_max, worker=worker, unknown_per_min=a.unknown_per_min
        )
        # In pages, yielding between them: the pump and the API run meanwhile. The worker does not accept until
        # the barrier below, so it never sees half a table; a charger registered meanwhile is pushed by its
        # registration too, after its row is committed, so it is in a later page or in that push.
        after: str | None = None
        clear = True
        while True:
            page = self._credentials(CREDENTIAL_PAGE, after)
            if page or clear:
                entries = [(cid, h or "", profile) for cid, h, profile in page]
                self.hub.auth_set(entries, clear=clear, worker=worker)
            clear = False
            if len(page) < CREDENTIAL_PAGE:
                break
            after = page[-1][0]
            await trio.lowlevel.checkpoint()
        self.hub.set_policy(self._cfg.unknown_chargers == "accept", worker=worker)
        await self.barrier(worker)

    async def push_credentials(self, entries: list[tuple[str, str, int]]) -> None:
        """Add or replace credentials on every worker; returns once every live worker applied them."""
        self.hub.auth_set(entries)
        await self.barrier(None)

    async def barrier(self, worker: int | None) -> None:
        """Wait until `worker` (or every live worker) has applied everything queued to it so far. A worker
        that dies meanwhile is not waited for (its successor loads the table before accepting).

        Raises trio.TooSlowError after BARRIER_TIMEOUT."""
        waiting = {worker} if worker is not None else {w for w, i in self.workers.items() if i.alive}
        seq = self.hub.barrier(worker)
        done = trio.Event()
        self._acks[seq] = (waiting, done)
        if not waiting:
            done.set()
        try:
            with trio.fail_after(BARRIER_TIMEOUT):
                await done.wait()
        finally:
            self._acks.pop(seq, None)

    def _on_ack(self, worker: int, seq: int) -> None:
        entry = self._acks.get(seq)
        if entry is not None:
            entry[0].discard(worker)
            if not entry[0]:
                entry[1].set()

    def _release_barriers(self, worker: int) -> None:
        for waiting, done in self._acks.values():
            waiting.discard(worker)
            if not waiting:
                done.set()

    # -- the pump ------------------------------------------------------------------------------------------

    async def _pump(self) -> None:
        fd = self.hub.wake_fd()
        while True:
            if self._backlog:
                # More backlog: let the rest of the node run, then take what arrived meanwhile first.
                await trio.lowlevel.checkpoint()
            else:
                await trio.lowlevel.wait_readable(fd)
            room = self._room
            if room is not None and room.full():
                # Take nothing until the store has room: what arrives meanwhile waits in the hub and then in the
                # workers, which stop reading. The API and timers keep running on the loop.
                self.held += 1
                await room.wait_room()
            self.dispatch(self.hub.drain() if len(self._backlog) < BACKLOG_MAX else [], BACKLOG_SLICE)

    @property
    def backlog(self) -> int:
        """Events waiting in the backlog."""
        return len(self._backlog)

    def dispatch(self, events: list[tuple[Any, ...]], slice_s: float = BACKLOG_SLICE) -> None:
        """Handle one drained batch: the messages of known connections with nothing waiting first, answered at
        once; then the backlog, in order, for at most `slice_s` seconds (None: all of it)."""
        started = time.perf_counter()
        messages = self._messages
        messages.begin_batch()
        knows, held, backlog = messages.knows, self._held, self._backlog
        out: list[tuple[int, bytes]] = []
        for ev in events:
            kind = ev[0]
            if kind == _native.MESSAGE and ev[1] not in held and knows(ev[1]):
                self._handle(ev, out)
            elif kind in (_native.MESSAGE, _native.CONNECTED, _native.DISCONNECTED):
                backlog.append(ev)
                held[ev[1]] = held.get(ev[1], 0) + 1
            else:
                self._handle(ev, out)  # pongs and the workers' own events: no order to keep
        if out:
            self.outgoing.send(out)
            out = []
        handled = len(events) - len(backlog)
        deadline = None if slice_s is None else started + slice_s
        while backlog:
            ev = backlog.popleft()
            left = held[ev[1]] - 1
            if left:
                held[ev[1]] = left
            else:
                del held[ev[1]]
            self._handle(ev, out)
            handled += 1
            if deadline is not None and not handled & 63 and time.perf_counter() > deadline:
                break
        if out:
            self.outgoing.send(out)
        self.pump_stats.add(len(events), time.perf_counter() - started)

    def _handle(self, ev: tuple[Any, ...], out: list[tuple[int, bytes]]) -> None:
        kind = ev[0]
        try:
            if kind == _native.MESSAGE:
                self._messages.on_message(ev[1], ev[2], out)
            elif kind == _native.CONNECTED:
                # A connection announced by a worker generation that has since died (its events were still
                # queued when the death was handled) no longer exists.
                if self.is_current(ev[1]):
                    self._links.connected(ev[1], ev[2], ev[3], ev[4], ev[5], ev[6])
            elif kind == _native.DISCONNECTED:
                self._links.disconnected(ev[1], ev[2], ev[3], ev[4])
            elif kind == _native.PONG:
                self._links.pong(ev[1], ev[2], ev[3])
            else:
                self._on_worker_event(ev)
        except Exception:
            # A bug handling one event must not stop the pump for every other charger.
            log.exception("failed handling gateway event %r", ev[:2])

    def _on_worker_event(self, ev: tuple[Any, ...]) -> None:
        """Worker-level events: up, down, stats, barrier acks."""
        kind = ev[0]
        if kind == _native.STATS:
            info = self.workers.get(ev[1])
            if info is not None:
                info.connections, info.paused, info.heap_bytes = ev[2], ev[3], ev[4]
                self.handshakes.update(ev[1], info.generation, ev[5], time.time())
        elif kind == _native.ACK:
            self._on_ack(ev[1], ev[2])
        elif kind == _native.WORKER_UP:
            log.debug("worker %d generation %d up (pid %d)", ev[1], ev[2], ev[3])
        elif kind == _native.WORKER_DOWN:
            slot, gen = ev[1], ev[2]
            info = self.workers.get(slot)
            proc = self._procs.get(slot)
            if self._stopping:
                # Shutting down: the worker closed its link on its way out; `stop` waits for it to exit (and
                # kills it only past SHUTDOWN_TIMEOUT).
                log.debug("worker %d link closed at shutdown (%s)", slot, ev[3])
            elif info is not None and info.generation == gen and proc is not None and proc.returncode is None:
                # A worker whose link is gone can serve nobody: end it so the supervisor restarts it.
                log.warning("worker %d link lost (%s); killing it", slot, ev[3])
                proc.kill()

    def is_current(self, conn_id: int) -> bool:
        """Whether `conn_id` belongs to the live generation of its worker slot."""
        info = self.workers.get(worker_of(conn_id))
        return info is not None and info.alive and info.generation == generation_of(conn_id)

    def health(self) -> list[dict[str, Any]]:
        """Each worker slot's pid, generation, liveness, state (starting / up / down), last error, connection
        count and restarts."""
        return [msgspec.structs.asdict(i) for _, i in sorted(self.workers.items())]


async def wait_exit(proc: subprocess.Popen[bytes]) -> int:
    """Wait for a child started with subprocess.Popen without blocking the trio loop (a pidfd becomes
    readable when the process exits); returns its exit status."""
    if proc.returncode is not None:
        return proc.returncode
    fd = os.pidfd_open(proc.pid)
    try:
        await trio.lowlevel.wait_readable(fd)
    finally:
        os.close(fd)
    return proc.wait()
