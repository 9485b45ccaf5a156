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
CONNECTED: Final = 0  # (0, conn_id, charger_id, protocol, peer, at)
MESSAGE: Final = 1  # (1, conn_id, data: bytes)
DISCONNECTED: Final = 2  # (2, conn_id, code, reason, at)
WORKER_UP: Final = 3  # (3, worker, generation, pid)
WORKER_DOWN: Final = 4  # (4, worker, generation, reason)
STATS: Final = 5  # (5, worker, connections, paused, heap_bytes)
ACK: Final = 6  # (6, worker, seq)

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
        self, entries: list[tuple[str, str]], clear: bool = False, worker: int | None = None
    ) -> None:
        """Add or replace credentials `(charger_id, hash)` (hash "" = known, no password); `clear` first
        forgets every credential."""
    def auth_delete(self, chargers: list[str], worker: int | None = None) -> None: ...
    def set_policy(self, accept_unknown: bool, worker: int | None = None) -> None: ...
    def set_accepting(self, on: bool, worker: int | None = None) -> None: ...
    def barrier(self, worker: int | None = None) -> int:
        """Queue a barrier and return its sequence; each addressed worker answers (ACK, worker, seq)."""
    def shutdown(self, code: int = 1001, worker: int | None = None) -> None:
        """Ask workers to close every connection with `code` and exit."""
    def workers(self) -> list[int]: ...

class LoadGen:
    """Client WebSocket connections for bench/connections.py (the simulator's engine, `Sim`, grew out of it):
    one Rust event loop over `count` OCPP-J connections, on the client side of the gateway's own codec (masked
    frames). Each phase method blocks with the GIL released and returns its report as a dict of plain numbers.

    `config` keys: `port` and `count` (required); `host` (an IP address, default "127.0.0.1"); `path_prefix`
    ("/ocpp"); `id_prefix` ("LG") and `first_index` (0): charger i is `{id_prefix}{first_index + i}`;
    `protocol` ("ocpp1.6" | "ocpp2.0.1"); `password` (Basic auth with the charger id as user; None = none);
    `source_ips` (IPv4 source addresses used round-robin, e.g. 127.0.0.2.., each with its own ephemeral port
    range); `max_inflight` (512: connections in connect/upgrade/boot at once); `max_message` (1 MiB);
    `vendor`, `model` (the BootNotification's).

    Raises ValueError for an unknown or bad setting, and OSError when this process's hard open-file limit is
    too low for `count` connections (the message says the limit, what is needed, and to use more processes).
    """

    def __init__(self, config: dict[str, object]) -> None: ...
    @property
    def open(self) -> int:
        """Booted connections still open."""
    def connect_and_boot(self, timeout: float = 60.0) -> dict[str, object]:
        """Connect every connection not started yet, upgrade, send BootNotification and wait for Accepted,
        until all are done or `timeout` s passed (unfinished ones are dropped as "timeout").

        Returns attempted, connected, upgraded, booted, failures ({kind: count}), elapsed_s (first connect to
        last boot), open, boot_p50_ms, boot_p90_ms, boot_p99_ms, boot_max_ms, boot_mean_ms and
        boot_histogram ([(upper_us, count)]).
        """
    def hold(self, seconds: float) -> dict[str, object]:
        """Keep every connection open, answering pings (and any server CALL with NotImplemented).

        Returns seconds, open_at_start, open_at_end, lost ({kind: count}), pings_answered.
        """
    def heartbeats(self, duration: float, rate: float = 0.0, inflight: int = 0) -> dict[str, object]:
        """Heartbeat CALLs for `duration` s over every open connection, at most one outstanding each, taking
        turns. `rate` 0: saturation, `inflight` CALLs outstanding in total (0 = one per connection); `rate` > 0:
        open loop at `rate` per second in total. Then waits up to 5 s for outstanding replies.

        Returns duration_s, target_rate, inflight, sent, answered (within duration), answered_late, errors
        (CALLERRORs), unanswered, skipped (open-loop sends that found every connection busy), rate
        (answered / duration_s), lost, open, p50_ms, p90_ms, p99_ms, max_ms, mean_ms and histogram
        ([(upper_us, count)]).
        """
    def close(self, timeout: float = 5.0) -> dict[str, object]:
        """Close frame 1000 on every open connection, wait up to `timeout` s for the server to finish each,
        then drop every socket. Returns closing, clean, elapsed_s."""

class Sim:
    """A fleet of simulated chargers in this process (the engine of `ampgate sim`): one Rust event loop over
    `count` client connections, each charger an OCPP 1.6J or 2.0.1 state machine (boot honouring
    Pending/Rejected and its interval, StatusNotification per connector, heartbeats, transactions with meter
    values, a firmware update walk, reboots, and answers to the CSMS's commands), plus the bench load if
    `load_message` is set (a MeterValues load sends its readings in a transaction of its own on connector 1).

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
    def report(self) -> dict[str, Any]:
        """This process's report: counters, errors by kind, latency histogram buckets per action, ..., and
        with a load, `load`: message, action (what it went out as), connector, sent, answered, latency_us and
        latency_max_us of the load CALLs alone (by action), and its transactions (started, stopped, refused)."""
