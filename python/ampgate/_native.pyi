"""Typed description of the Rust extension `ampgate._native` (rust/py/)."""

from typing import Any, Final

class GatewayFailure(RuntimeError):
    """The gateway's own machinery failed (a socket, the worker link): not a charger's fault."""

def run_worker(listen_fd: int | None, link_fd: int, config: dict[str, object]) -> None:
    """Run a gateway worker on an inherited listening socket (or, with `config["reuseport_addr"]`, its own
    SO_REUSEPORT socket), blocking with the GIL released, until the control plane sends shutdown or closes
    the link. Takes ownership of both descriptors.

    Raises ValueError for a bad setting and GatewayFailure when the event loop fails.
    """

def raise_nofile_limit() -> int:
    """Raise this process's soft open-file limit to the hard limit; return the limit now in force."""

# Files a gateway worker, load-generator or simulator process keeps free under its open-file limit beside one
# socket per connection (rust/limits.rs).
FD_RESERVE: Final[int]

# Event tuples returned by Hub.drain(), by their first item. `at` is the worker's CLOCK_MONOTONIC in seconds
# (comparable with time.monotonic() on this host) when the handshake completed / the connection ended.
CONNECTED: Final = 0  # (0, conn_id, charger_id, protocol, peer, at, security_profile)
MESSAGE: Final = 1  # (1, conn_id, data: bytes)
DISCONNECTED: Final = 2  # (2, conn_id, code, reason, at)
WORKER_UP: Final = 3  # (3, worker, generation, pid)
WORKER_DOWN: Final = 4  # (4, worker, generation, reason)
STATS: Final = 5  # (5, worker, connections, paused, heap_bytes, counts)
# counts: running totals since the worker started: (upgrades, refused_rate, refused_handshakes, refused_auth,
# refused_unknown, refused_other, refused_throttled)
ACK: Final = 6  # (6, worker, seq)
PONG: Final = (
    7  # (7, conn_id, rtt_s, at): our ping answered after rtt_s seconds, at the worker's monotonic time
)

class Hub:
    """The control plane's end of every worker link, multiplexed by a background thread.

    Nothing here blocks the calling thread: sends are queued and written by the hub thread.
    """

    def __init__(self, max_pending: int = ...) -> None: ...
    def wake_fd(self) -> int:
        """An eventfd that is readable while events are waiting."""
    def drain(self) -> list[tuple[object, ...]]:
        """Take every waiting event (see the tuple shapes above) and clear the wake-up."""
    def add_worker(self, worker: int, generation: int, link_fd: int) -> None:
        """Take over `link_fd` as the link of worker slot `worker`."""
    def remove_worker(self, worker: int) -> None: ...
    def send(self, batch: list[tuple[int, bytes]]) -> None:
        """Queue text messages `(conn_id, data)`; each goes to the worker that holds the connection."""
    def close(self, batch: list[tuple[int, int, str]]) -> None:
        """Queue closes `(conn_id, code, reason)`."""
    def auth_set(
        self, entries: list[tuple[str, str, int]], clear: bool = False, worker: int | None = None
    ) -> None:
        """Add or replace credentials `(charger_id, hash, security_profile)` (hash "" = known, no password;
        the profile, 1-3, is the lowest the charger may connect with); `clear` first
        forgets every credential."""
    def auth_delete(self, chargers: list[str], worker: int | None = None) -> None: ...
    def tls_reload(self) -> None:
        """Every worker reads its TLS certificate, key and client CA files again: new connections use them,
        live ones keep theirs."""
    def set_policy(self, accept_unknown: bool, worker: int | None = None) -> None: ...
    def set_admission(
        self,
        rate: int,
        burst: int,
        handshakes: int,
        retry_max: int,
        worker: int | None = None,
        unknown_per_min: int = 0,
    ) -> None:
        """A worker's share of the admission budget: new connections per second (with a burst), handshakes
        at once and new unknown charger ids per minute (0 = no limit); refusals get HTTP 503 with a Retry-After
        of at most `retry_max` s."""
    def set_accepting(self, on: bool, worker: int | None = None) -> None: ...
    def barrier(self, worker: int | None = None) -> int:
        """Queue a barrier and return its sequence; each addressed worker answers (ACK, worker, seq)."""
    def shutdown(self, code: int = 1001, worker: int | None = None) -> None:
        """Ask workers to close every connection with `code` and exit."""
    def workers(self) -> list[int]: ...

class Sim:
    """A fleet of simulated chargers in this process (the engine of `ampgate sim`): one Rust event loop over
    `count` client connections, each charger an OCPP 1.6J or 2.0.1 state machine (boot honouring
    Pending/Rejected and its interval, StatusNotification per connector, heartbeats, transactions with meter
    values, a firmware update walk, reboots, and answers to the CSMS's commands), plus the bench load if
    `load_message` is set (a MeterValues load sends its readings in a transaction of its own on connector 1).
    bench/connections.py drives the load in phases (`set_load`, `pause_load`, `take_load_window`) with
    `check_replies` off (the bench mode: the CSMS's messages are not kept for the schema check).

    `settings`: the compiled scenario (python/ampgate/sim/scenario.py lists every key; `host`, `port` and
    `count` are required). `traits`: one byte per charger, bit flags 1 flapping link, 2 slow reader,
    4 never answers CSMS CALLs, 8 its firmware update fails. ValueError names a bad setting; OSError when the
    open-file limit is too low for `count` connections.
    """

    def __init__(self, settings: dict[str, object], traits: bytes) -> None: ...
    def run(self, seconds: float) -> bool:
        """Drive the loop for up to `seconds` (GIL released); True once the run is over (its duration
        reached and every link closed)."""
    def stop(self) -> None:
        """End the run early: close every link as at the end of the duration; keep calling `run`."""
    def stats(self) -> dict[str, Any]:
        """chargers, connected, booted, sent, received, errors, elapsed_s, done."""
    def take_checks(self) -> list[tuple[str, str, str, str]]:
        """Every message the CSMS sent since the last call, for the schema check: (protocol, "call" |
        "result", action, payload JSON). A result's action is that of our CALL it answers."""
    def set_load(self, rate: float = 0.0, inflight: int = 0) -> None:
        """Run the load from now on at `rate` CALLs/s over this process (0: saturation), with at most
        `inflight` outstanding at saturation (0: one per booted charger). ValueError without `load_message`."""
    def pause_load(self) -> None:
        """Stop sending load CALLs; the outstanding ones are still answered and counted."""
    def load_in_flight(self) -> int:
        """Load CALLs queued or outstanding now."""
    def take_load_window(self) -> dict[str, Any]:
        """What the load did since the last call: sent, answered, errors (CALLERRORs), unanswered (timed out),
        lost (with their link), skipped (rate mode: due while every charger had one out), latency_us
        ([(upper_us, count)]) and latency_max_us; starts a new window."""
    def report(self) -> dict[str, Any]:
        """This process's report: counters, errors by kind, latency histogram buckets per action, ..., and
        with a load, `load`: message, action (what it went out as), connector, sent, answered, latency_us and
        latency_max_us of the load CALLs alone (by action), and its transactions (started, stopped, refused)."""

def allocate(
    parent: list[int],
    limit_a: list[tuple[float, float, float]],
    limit_w: list[float],
    voltage: list[float],
    node: list[int],
    phases: list[int],
    min_a: list[float],
    max_a: list[float],
    priority: list[int],
    weight: list[float],
    rank: list[int],
) -> list[float]:
    """The load allocator (rust/alloc/): each session's current in A (0: paused), weighted max-min fair by
    priority class under every node's per-phase (A) and total (W) limit. The tree is depth-first (parent[k] < k,
    -1 for a root); math.inf for "no limit"; phases is a mask (1 = L1, 2 = L2, 4 = L3). Raises ValueError
    naming what is wrong."""

class Allocator:
    """The load allocator kept between ticks (rust/alloc/): the capacity forest, the sessions by the caller's
    key, their settled values and their hold clocks. Each tick is the allocation `allocate` computes, with
    fixed draws reserved first and minimum holds, settled into what chargers are told: rounded down to the
    session's step, 0 below its minimum, small increases held back (the module doc in rust/alloc/mod.rs says
    exactly how). Settling and holds only ever lower draws, so no limit is exceeded."""

    def __init__(
        self, *, hysteresis_a: float = 1.0, hysteresis_pct: float = 10.0, min_hold_s: float = 300.0
    ) -> None:
        """An allocator with no tree and no sessions. An increase over a session's last settled value smaller
        than max(hysteresis_a, hysteresis_pct % of that value) is held back; a session that paused or started
        running less than min_hold_s ago is held in that state (a running one unless a limit forces it).
        ValueError if a setting is negative or not finite."""
    def set_tree(
        self,
        parent: list[int],
        limit_a: list[tuple[float, float, float]],
        limit_w: list[float],
        voltage: list[float],
    ) -> None:
        """Replace the capacity forest (depth-first, parent[k] < k, -1 for a root, math.inf for no limit; the
        same checks as `allocate`, ValueError naming the node). Sessions keep their node index; the caller puts
        them again when indices move. Called when the topology or a demand-response override changes, not every
        tick."""
    def put(
        self,
        key: int,
        node: int,
        phases: int,
        min_a: float,
        max_a: float,
        priority: int = 0,
        weight: float = 1.0,
        rank: int = 0,
        step_a: float = 0.1,
        fixed_a: float | None = None,
    ) -> None:
        """Add or update session `key` (the caller's u64) under `node`, drawing on the site phases in the mask
        `phases` (1 = L1, 2 = L2, 4 = L3). With fixed_a not None the session is not allocated: it is counted as
        drawing fixed_a on its phases (an offline charger's failsafe; a new session at its charger's
        default-profile limit until its first allocation is acknowledged). A session that turns fixed or stops
        being fixed starts afresh (no settled value, no hold). ValueError naming the bad field; the node is
        checked against the tree at the next tick."""
    def remove(self, key: int) -> None:
        """Forget session `key`; an unknown key is no error."""
    def tick(self, now_s: float) -> list[tuple[int, float]]:
        """One allocation, the GIL released. Returns (key, amps) for every non-fixed session whose settled
        value differs from what was last returned for it (a new session always appears once; a session that
        becomes fixed and then unfixed appears again). now_s is monotonic seconds (the hold clocks).
        ValueError, changing nothing, if a session's node is not in the tree."""
    def get(self, key: int) -> float | None:
        """The last settled value of `key` (None: unknown, fixed, or not ticked since it was put or unfixed)."""
    def raw(self) -> dict[int, float]:
        """The last tick's unrounded, unsettled allocation of every non-fixed session it covered (tests and the
        load view)."""
    def __len__(self) -> int:
        """Sessions held, fixed or not."""
