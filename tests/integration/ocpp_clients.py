"""Small OCPP-J helpers for tests, on top of independent WebSocket clients (trio-websocket, websockets) and a
raw-socket client for frames no well-behaved library would send."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import uuid
from typing import Any

BOOT_16 = {
    "chargePointVendor": "TestVendor",
    "chargePointModel": "TM-1",
    "firmwareVersion": "1.2.3",
    "chargePointSerialNumber": "SN-16",
}
BOOT_201 = {
    "reason": "PowerUp",
    "chargingStation": {
        "vendorName": "TestVendor",
        "model": "TM-2",
        "firmwareVersion": "2.0.0",
        "serialNumber": "SN-201",
    },
}


def call(action: str, payload: dict[str, Any]) -> tuple[str, str]:
    uid = str(uuid.uuid4())
    return uid, json.dumps([2, uid, action, payload])


def boot_payload(protocol: str) -> dict[str, Any]:
    return BOOT_16 if protocol == "ocpp1.6" else BOOT_201


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- raw WebSocket client ----------------------------------------------------------------------------------


class RawWs:
    """A WebSocket client by hand, for frames no well-behaved library sends. Use as a context manager."""

    def __init__(self, port: int, path: str, protocols: str = "ocpp1.6", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocols}\r\n\r\n"
        )
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        # Bytes after the head (a close frame may follow the 101 at once) stay buffered for read_frame.
        self.head, _, self.buf = self.buf.partition(b"\r\n\r\n")

    def __enter__(self) -> RawWs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self) -> tuple[int, bytes]:
        """Read one unmasked server frame: (opcode, payload)."""
        b0, b1 = self._exactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._exactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._exactly(8))
        return b0 & 0x0F, self._exactly(n)

    def read_close_code(self) -> int:
        """Skip frames until a close frame arrives; return its code."""
        while True:
            op, payload = self.read_frame()
            if op == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


def frame(opcode: int, payload: bytes, *, mask: bool = True, fin: bool = True) -> bytes:
    """Encode one frame as a client would (masked unless told otherwise)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def trio_ws_rejected_status(port: int, resource: str, protocols: list[str]) -> int:
    """Attempt a trio-websocket handshake that the server should refuse; return the HTTP status.

    trio-websocket's `open_websocket_url` leaks its socket when the server refuses the upgrade, so the stream
    is opened here and closed by us."""
    import trio
    from trio_websocket import ConnectionRejected, wrap_client_stream

    stream = await trio.open_tcp_stream("127.0.0.1", port)
    statuses: list[int] = []
    try:
        try:
            async with trio.open_nursery() as nursery:
                ws = await wrap_client_stream(nursery, stream, "127.0.0.1", resource, subprotocols=protocols)
                await ws.aclose()
        except* ConnectionRejected as group:
            statuses.extend(e.status_code for e in group.exceptions if isinstance(e, ConnectionRejected))
    finally:
        await stream.aclose()
    if not statuses:
        raise AssertionError("the handshake was accepted")
    return statuses[0]


@contextlib.asynccontextmanager
async def ocpp_charge_point(
    cp_class, url: str, charger_id: str, protocol: str, *, boot: bool = False, **connect: Any
):
    """Run a charge point written with the `ocpp` package (its ChargePoint subclass `cp_class`) on a
    `websockets` connection to `url/charger_id` (`connect`: more arguments of websockets.connect, e.g. `ssl`
    and `additional_headers`); with `boot`, send a BootNotification first."""
    import asyncio

    import websockets
    from ocpp.v16 import call as call16
    from ocpp.v201 import call as call201

    async with websockets.connect(f"{url}/{charger_id}", subprotocols=[protocol], **connect) as ws:
        cp = cp_class(charger_id, ws)
        task = asyncio.create_task(cp.start())
        try:
            if boot and protocol == "ocpp1.6":
                await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            elif boot:
                station = {"model": "M", "vendor_name": "V"}
                await cp.call(call201.BootNotification(charging_station=station, reason="PowerUp"))
            yield cp
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.exceptions.ConnectionClosed):
                await task
