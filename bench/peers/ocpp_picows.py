"""Peer 2: the same `ocpp` ChargePoint classes on a `picows` server (a Cython WebSocket library for asyncio).

    python bench/peers/ocpp_picows.py --host 127.0.0.1 --port P [--ready-file F]

picows is callback-based: it hands each frame to a `WSListener.on_ws_frame` callback and sends synchronously,
while ChargePoint wants a connection object with `await recv()` / `await send()`. `PicowsConnection` is that
adapter, about what a user would write: text frames go into an asyncio.Queue that `recv()` reads (fragments are
joined first), `send()` writes a text frame and waits while the transport has paused writing, a CLOSE frame is
answered and the link dropped, and `recv()` raises `ConnectionClosed` once the link is gone, which ends
`cp.start()`.

Subprotocol negotiation is honest: picows calls the listener factory with the parsed upgrade request before
answering it, so the factory reads Sec-WebSocket-Protocol, picks the first one the client offers that we speak
(ocpp1.6 or ocpp2.0.1), and answers 101 with that header; a client offering neither gets 400, as a request
without an upgrade would. The ChargePoint class then follows the negotiated version, as in peer 1.

picows uses the `aiofastnet` transport when it is installed (it is a dependency of picows, so that is its default)
on the default asyncio loop; nothing else is tuned. picows sends no keepalive pings unless asked (its default),
and gives each connection a 16 KiB read buffer (its default `read_buffer_init_size`), most of its memory per
connection. At the open-file limit aiofastnet 1.2.0 spins: on EMFILE its accept handler calls
`listening_sock.remove_reader` (a socket has no such method; the loop's does), so the listener is never paused
and every loop turn logs the error again; the peer still holds what it accepted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import picows
from central import (
    SUBPROTOCOLS,
    charge_point,
    parse_args,
    raise_file_limit,
    serve_until_cancelled,
    setup_logging,
    write_ready,
)
from picows import (
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

log = logging.getLogger("peer.picows")

# Handler tasks must be referenced somewhere or asyncio may collect them mid-run.
_tasks: set[asyncio.Task] = set()


class ConnectionClosed(Exception):
    """The link is gone: raised by `recv()` and `send()` so that `cp.start()` and a pending call end."""


_CLOSED = object()


class PicowsConnection(WSListener):
    """A picows listener that gives an `ocpp` ChargePoint the `recv()` / `send()` coroutines it expects."""

    def __init__(self, path: str, subprotocol: str) -> None:
        super().__init__()
        self.path = path
        self.subprotocol = subprotocol
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._transport: WSTransport | None = None
        self._fragments: list[bytes] = []
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False

    # -- picows callbacks (run inside the event loop's data_received) ----------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self._transport = transport
        cp = charge_point(self.path, self.subprotocol, self)
        task = asyncio.get_running_loop().create_task(self._run(cp))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT and frame.fin:
            self._queue.put_nowait(frame.get_payload_as_utf8_text())
        elif kind in (WSMsgType.TEXT, WSMsgType.CONTINUATION):
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                self._queue.put_nowait(b"".join(self._fragments).decode())
                self._fragments.clear()
        elif kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        # BINARY is not OCPP-J and PONG needs nothing; PING is answered by picows itself.

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._closed = True
        self._writable.set()
        self._queue.put_nowait(_CLOSED)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- what ChargePoint calls ---------------------------------------------------------------------

    async def recv(self) -> str:
        msg = await self._queue.get()
        if msg is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # a second reader sees it too
            raise ConnectionClosed
        return msg

    async def send(self, message: str) -> None:
        await self._writable.wait()
        if self._closed or self._transport is None:
            raise ConnectionClosed
        self._transport.send(WSMsgType.TEXT, message.encode())

    async def _run(self, cp: Any) -> None:
        try:
            await cp.start()
        except ConnectionClosed:
            pass  # the charger went away: not an error


def listener_factory(request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
    """Route by path and negotiate the subprotocol before picows answers the upgrade."""
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    chosen = next((p for p in offered if p in SUBPROTOCOLS), None)
    if chosen is None:
        log.warning("no shared subprotocol (%s): refusing", offered)
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_error_response(400, b"no supported OCPP subprotocol"), None
        )
    response = WSUpgradeResponse.create_101_response(extra_headers={"Sec-WebSocket-Protocol": chosen})
    return WSUpgradeResponseWithListener(response, PicowsConnection(request.path.decode(), chosen))


async def main() -> None:
    a = parse_args(__doc__.split("\n\n")[0])
    nofile = raise_file_limit()
    setup_logging()
    server = await picows.ws_create_server(listener_factory, a.host, a.port, backlog=a.backlog)
    port = server.sockets[0].getsockname()[1]
    write_ready(a.ready_file, a.host, port, f"picows {picows.__version__}", nofile)
    async with server:
        await serve_until_cancelled()


if __name__ == "__main__":
    asyncio.run(main())
