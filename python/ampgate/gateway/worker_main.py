"""Entry point of a gateway worker process: `python -m ampgate.gateway.worker_main LISTEN_FD LINK_FD JSON`
(a LISTEN_FD of -1 means none: reuseport mode binds its own listener).

The process only hosts the Rust event loop (`_native.run_worker`), which runs with the GIL released until the
control plane tells it to stop or dies (PR_SET_PDEATHSIG takes it down with the control plane).
"""

from __future__ import annotations

import json
import signal
import sys

from ampgate import _native


def main(argv: list[str]) -> int:
    listen_fd, link_fd, config = int(argv[0]), int(argv[1]), json.loads(argv[2])
    # Ctrl-C, and a service manager's stop, signal the whole process group. The control plane orchestrates
    # shutdown (close frames 1001, then the workers exit), so workers leave SIGINT and SIGTERM to it; a worker
    # that must go at once takes SIGKILL, and dies with its control plane either way (PR_SET_PDEATHSIG).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A terminal hang-up reaches the whole group too; the control plane turns SIGHUP into a TLS reload.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _native.run_worker(None if listen_fd < 0 else listen_fd, link_fd, config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
