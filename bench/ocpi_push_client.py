"""What one OCPI push costs the node's trio thread, by HTTP client: httpx (what every other OCPI call uses), the
push pool (`ampgate.roaming.http1.Http1Pool`) on h11 (the well-kept sans-I/O HTTP/1.1 it first ran on, kept here
as the measured alternative), the same pool on our own wire code (`ampgate.roaming.http1_wire`, what it runs on)
and, as the floor, the same bytes written and read on a trio stream with no HTTP code at all (a canned request,
the answer read to its known length).

    python bench/ocpi_push_client.py --requests 20000 --json bench/results/ocpi-push-client.json

Each client sends `--requests` PATCHes of one EVSE status (the body and headers the pusher sends) to the bench's
eMSP receiver (bench/ocpi_emsp.py, its own process), `--concurrency` at a time over kept-alive connections (the
pusher's workers per party), in one trio process. Measured: the process's CPU (user + system, from
`resource.getrusage`: the trio thread does all the work; httpx's and h11's only other thread is none) per request,
and requests per second. The receiver's CPU is not counted. Prints JSON and a table; `--json FILE` writes the JSON.
Which client is measured runs in the same run, one after the other, against the same receiver.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import h11
import httpx
import trio

from ampgate.roaming.http1 import MAX_ANSWER_BYTES, RECEIVE_SIZE, Http1Error, Http1Pool, _Conn, _Stale
from ampgate.roaming.http1_wire import MAX_HEAD_BYTES

HERE = Path(__file__).resolve().parent
EMSP = HERE / "ocpi_emsp.py"
TOKEN = "bench-emsp-token"
BODY = b'{"status":"CHARGING","last_updated":"2026-12-01T04:00:00Z"}'


class H11Pool(Http1Pool):
    """The push pool with h11 in place of `http1_wire`: what the pool was before the wire code replaced it, the
    same connections, reuse and retries, only the request's writing and the answer's reading are h11's."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._h11: dict[_Conn, h11.Connection] = {}

    def _prepare(  # type: ignore[override]
        self, method: str, target: str, host: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[h11.Request, bytes | None]:
        return (
            h11.Request(
                method=method,
                target=target,
                headers=[("Host", host), *headers.items(), ("Content-Length", str(len(body) if body else 0))],
            ),
            body,
        )

    async def _exchange(  # type: ignore[override]
        self, c: _Conn, prepared: tuple[h11.Request, bytes | None], head_request: bool
    ) -> tuple[int, bytes, bool]:
        request, body = prepared
        conn = self._h11.get(c)
        if conn is None:
            conn = self._h11[c] = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        out = conn.send(request) or b""
        if body:
            out += conn.send(h11.Data(data=body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        try:
            await c.stream.send_all(out)
        except (trio.BrokenResourceError, OSError):
            if c.reused:
                raise _Stale from None
            raise
        received = 0
        status = 0
        parts: list[bytes] = []
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await c.stream.receive_some(RECEIVE_SIZE)
                except (trio.BrokenResourceError, OSError):
                    if c.reused and not received:
                        raise _Stale from None
                    raise
                if not data and c.reused and not received:
                    raise _Stale
                received += len(data)
                conn.receive_data(bytes(data))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_ANSWER_BYTES:
                    raise Http1Error(f"an answer over {MAX_ANSWER_BYTES} bytes")
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                reusable = (
                    conn.our_state is h11.DONE and conn.their_state is h11.DONE and not conn.trailing_data[0]
                )
                if reusable:
                    conn.start_next_cycle()
                else:
                    del self._h11[c]
                return status, b"".join(parts), reusable
            elif isinstance(event, h11.ConnectionClosed):
                raise OSError("the connection closed before the answer")


def headers() -> dict[str, str]:
    import base64

    return {
        "Authorization": "Token " + base64.b64encode(TOKEN.encode()).decode(),
        "X-Request-ID": "bench-request",
        "X-Correlation-ID": "bench-correlation",
        "OCPI-from-country-code": "NL",
        "OCPI-from-party-id": "AMP",
        "OCPI-to-country-code": "NL",
        "OCPI-to-party-id": "EMP",
        "Content-Type": "application/json",
    }


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def drive(send: Callable[[int], Awaitable[int]], requests: int, concurrency: int) -> dict[str, Any]:
    """`requests` calls of `send(i)` (each returns the HTTP status), `concurrency` at a time."""
    next_i = 0
    failed = 0

    async def worker() -> None:
        nonlocal next_i, failed
        while next_i < requests:
            i = next_i
            next_i += 1
            if await send(i) != 200:
                failed += 1

    c0, t0 = cpu_s(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    cpu, wall = cpu_s() - c0, time.perf_counter() - t0
    return {
        "requests": requests,
        "failed": failed,
        "cpu_us_per_request": round(cpu / requests * 1e6, 1),
        "requests_per_s": round(requests / wall),
        "wall_s": round(wall, 2),
    }


async def run(port: int, requests: int, concurrency: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/emsp/2.2.1/locations/NL/AMP/S1/E1-1"
    hdrs = headers()
    out: dict[str, Any] = {}

    # httpx on trio (anyio), as OcpiClient.call uses it.
    async with httpx.AsyncClient(
        timeout=10, limits=httpx.Limits(max_keepalive_connections=concurrency)
    ) as http:

        async def via_httpx(i: int) -> int:
            return (await http.request("PATCH", url, content=BODY, headers=hdrs)).status_code

        await drive(via_httpx, min(500, requests), concurrency)  # warm: connections, imports
        out["httpx"] = await drive(via_httpx, requests, concurrency)

    for name, pool in (("h11_pool", H11Pool(timeout_s=10)), ("wire_pool", Http1Pool(timeout_s=10))):

        async def via_pool(i: int, pool: Http1Pool = pool) -> int:
            return (await pool.request("PATCH", url, hdrs, BODY))[0]

        await drive(via_pool, min(500, requests), concurrency)
        out[name] = await drive(via_pool, requests, concurrency)
        await pool.aclose()

    # The floor: the request's bytes prepared once, written, and the answer read up to its Content-Length.
    head = f"PATCH /emsp/2.2.1/locations/NL/AMP/S1/E1-1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in hdrs.items()
    )
    raw = (head + f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    streams = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(concurrency)]
    free = list(streams)

    async def via_raw(i: int) -> int:
        s = free.pop()
        try:
            await s.send_all(raw)
            buf = b""
            while True:
                buf += await s.receive_some(65536)
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    length = int(buf.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    if len(buf) >= end + 4 + length:
                        return int(buf[9:12])
        finally:
            free.append(s)

    await drive(via_raw, min(500, requests), concurrency)
    out["raw_stream_floor"] = await drive(via_raw, requests, concurrency)
    for s in streams:
        await s.aclose()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    proc = subprocess.Popen(
        [sys.executable, str(EMSP), "serve", f"--token={TOKEN}"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        hello = json.loads(proc.stdout.readline())
        clients = trio.run(run, hello["port"], a.requests, a.concurrency)
    finally:
        proc.kill()
        proc.wait()
    result = {
        "bench": "ocpi_push_client",
        "requests": a.requests,
        "concurrency": a.concurrency,
        "clients": clients,
    }
    print(json.dumps(result, indent=2))
    print()
    print(f"{'client':<18} {'CPU us/request':>15} {'requests/s':>11} {'failed':>7}")
    for name, r in clients.items():
        print(f"{name:<18} {r['cpu_us_per_request']:>15} {r['requests_per_s']:>11} {r['failed']:>7}")
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(r["failed"] == 0 for r in clients.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
