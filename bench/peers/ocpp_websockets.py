"""Peer 1: the `ocpp` package's ChargePoint on a `websockets` server, the library's documented pattern.

    python bench/peers/ocpp_websockets.py --host 127.0.0.1 --port P [--ready-file F]

`websockets.serve(on_connect, host, port, subprotocols=["ocpp1.6", "ocpp2.0.1"])`, and per connection a
ChargePoint subclass (central.py) chosen by the negotiated subprotocol, then `await cp.start()`. One process, one
asyncio event loop (the default one: a typical deployment), websockets' defaults (keepalive pings every 20 s,
permessage-deflate when the client asks for it, which the simulator does not, 10 s opening-handshake timeout).
Its soft open-file limit is raised to the hard one, so it stops near that many connections; at the limit
asyncio logs every failed accept, and the `ocpp` package, which opens its JSON schemas lazily, answers a
message whose schema it has not loaded yet with a NotImplemented CallError (it cannot open the file).
"""

from __future__ import annotations

import asyncio
import logging

import websockets
from central import (
    SUBPROTOCOLS,
    charge_point,
    parse_args,
    raise_file_limit,
    serve_until_cancelled,
    setup_logging,
    write_ready,
)
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

log = logging.getLogger("peer.websockets")


async def on_connect(websocket: ServerConnection) -> None:
    """For every charger that connects, a ChargePoint instance that listens for its messages."""
    if not websocket.subprotocol:
        # websockets proceeds without a subprotocol when none is shared; the library's examples close then.
        log.warning(
            "no shared subprotocol (%s): closing", websocket.request.headers.get("Sec-WebSocket-Protocol")
        )
        await websocket.close()
        return
    cp = charge_point(websocket.request.path, websocket.subprotocol, websocket)
    try:
        await cp.start()
    except ConnectionClosed:
        pass  # the charger went away: not an error


async def main() -> None:
    a = parse_args(__doc__.split("\n\n")[0])
    nofile = raise_file_limit()
    setup_logging()
    async with websockets.serve(
        on_connect, a.host, a.port, subprotocols=SUBPROTOCOLS, backlog=a.backlog
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        write_ready(a.ready_file, a.host, port, f"websockets {websockets.__version__}", nofile)
        await serve_until_cancelled()


if __name__ == "__main__":
    asyncio.run(main())
