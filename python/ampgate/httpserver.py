"""Serving an ASGI app with Hypercorn on the node's trio loop: the operator API and the public surface alike."""

from __future__ import annotations

import logging
import socket

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from litestar import Litestar

# Connections the kernel queues for an HTTP listener before Hypercorn accepts them.
LISTEN_BACKLOG = 1024
# How long a shutdown waits for requests in flight.
GRACEFUL_TIMEOUT_S = 2.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one. Raises OSError if it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve(
    app: Litestar,
    sock: socket.socket,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on the listening `sock` (taken over: Hypercorn closes it) until cancelled; with `certfile`
    and `keyfile`, over TLS. Reports started once listening."""
    hc = HypercornConfig()
    hc.bind = [f"fd://{sock.fileno()}"]
    hc.accesslog = None
    # A Logger (not a path) makes Hypercorn log through our logging set-up instead of adding its own handler.
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.graceful_timeout = GRACEFUL_TIMEOUT_S
    if certfile is not None:
        hc.certfile = certfile
        hc.keyfile = keyfile
    sock.detach()
    await hypercorn_serve(app, hc, task_status=task_status)  # type: ignore[arg-type]
