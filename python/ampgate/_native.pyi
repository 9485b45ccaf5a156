"""Typed description of the Rust extension `ampgate._native` (rust/py/)."""

from typing import Final

class GatewayFailure(RuntimeError):
    """The gateway's own machinery failed (a socket, the worker link): not a charger's fault."""

def run_worker(listen_fd: int | None, link_fd: int | None, config: dict[str, object]) -> None:
    """Run a gateway worker on an inherited listening socket (or, with `config["reuseport_addr"]`, its own
    SO_REUSEPORT socket), blocking with the GIL released, until the control plane sends shutdown or closes
    the link. Takes ownership of both descriptors.

    Raises ValueError for a bad setting and GatewayFailure when the event loop fails.
    """

def raise_nofile_limit() -> int:
    """Raise this process's soft open-file limit to the hard limit; return the limit now in force."""

# Event tuples returned by Hub.drain(), by their first item:
CONNECTED: Final = 0  # (0, conn_id, charger_id, protocol, peer)
MESSAGE: Final = 1  # (1, conn_id, data: bytes)
DISCONNECTED: Final = 2  # (2, conn_id, code, reason)
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
