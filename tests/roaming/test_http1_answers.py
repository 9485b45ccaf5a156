"""The push connections (`roaming.http1.Http1Pool`) against answers written byte for byte by a raw TCP server:
every framing (length, chunked with extensions and trailers, to the end of the connection; 1xx; 204) read whole
whether its bytes come at once or one at a time, with the connection kept only when both sides may go on; every
malformed answer an `Http1Error` with the connection closed; a request that could split refused before it is
sent. The round trips against an independent HTTP server are tests/roaming/test_http1.py."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import pytest
import trio

from ampgate.roaming.http1 import Http1Error, Http1Pool

ENVELOPE = b'{"status_code":1000,"timestamp":"2026-11-30T08:00:00Z"}'


class RawServer:
    """Answers each request (read up to its blank line and its Content-Length body) with `answer`, at once or a
    byte at a time, then closes the connection when `close`."""

    def __init__(self) -> None:
        self.answer = b""
        self.close = False
        self.bytewise = False
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        buf = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buf) < length:
                    buf += await stream.receive_some(65536)
                self.requests.append(head + b"\r\n\r\n" + buf[:length])
                buf = buf[length:]
                if self.bytewise:
                    for i in range(len(self.answer)):
                        await stream.send_all(self.answer[i : i + 1])
                else:
                    await stream.send_all(self.answer)
                if self.close:
                    return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/emsp/2.2.1/locations/NL/AMP/S1/E1-1"


def with_server(fn: Callable[[RawServer], Awaitable[None]], **setup: object) -> RawServer:
    """Run `fn(server)` on trio with a RawServer (set up from `setup`) listening on loopback."""
    srv = RawServer()
    for k, v in setup.items():
        setattr(srv, k, v)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, srv.handle, 0, host="127.0.0.1")
            )
            srv.port = listeners[0].socket.getsockname()[1]
            await fn(srv)
            nursery.cancel_scope.cancel()

    trio.run(main)
    return srv


ANSWERS = [
    # (bytes as sent, then closed?, status, body, kept for the next request)
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ENVELOPE), ENVELOPE),
        False,
        200,
        ENVELOPE,
        True,
    ),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a;ext=1\r\n" + ENVELOPE[:26] + b"\r\n"
        b"%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(ENVELOPE) - 26, ENVELOPE[26:]),
        False,
        200,
        ENVELOPE,
        True,
    ),
    (b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n" + ENVELOPE, True, 404, ENVELOPE, False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", False, 200, b"{}", False),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", False, 200, b"{}", False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", False, 204, b"", True),
    (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", False, 503, b"", True),
]


@pytest.mark.parametrize("bytewise", [False, True], ids=["at-once", "byte-by-byte"])
@pytest.mark.parametrize(("raw", "closed", "status", "body", "kept"), ANSWERS)
def test_an_answer_reads_alike_at_once_and_a_byte_at_a_time(
    bytewise: bool, raw: bytes, closed: bool, status: int, body: bytes, kept: bool
) -> None:
    async def check(server: RawServer) -> None:
        pool = Http1Pool(timeout_s=5)
        assert await pool.request("PATCH", server.url, {"Authorization": "Token dG9r"}, b"{}") == (
            status,
            body,
        )
        assert pool.idle() == (1 if kept else 0)
        assert server.requests[0].startswith(b"PATCH /emsp/2.2.1/locations/NL/AMP/S1/E1-1 HTTP/1.1\r\n")
        assert b"\r\nAuthorization: Token dG9r\r\n" in server.requests[0]
        assert server.requests[0].endswith(b"\r\n\r\n{}")
        if kept:
            # The next request goes over the same connection.
            assert await pool.request("PATCH", server.url, {}, b"{}") == (status, body)
            assert server.connections == 1
        await pool.aclose()

    with_server(check, answer=raw, close=closed, bytewise=bytewise)


@pytest.mark.parametrize(
    ("raw", "closed"),
    [
        (b"", True),  # closed before any answer, on a new connection
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", True),  # closed mid-body
        (b"HTTP/1.1 200 OK\r\nContent", True),
        (b"SMTP ready\r\n\r\n", False),
        (b"HTTP/2 200\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX", False),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", False),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 << 20) + b"x" * (2 << 20),
            False,
        ),  # over the limit
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * (70 * 1024), False),  # a head without end
    ],
)
def test_what_is_not_an_answer_is_an_error_and_the_connection_closed(raw: bytes, closed: bool) -> None:
    async def check(server: RawServer) -> None:
        pool = Http1Pool(timeout_s=2)
        with pytest.raises(Http1Error):
            await pool.request("PATCH", server.url, {}, b"{}")
        assert pool.idle() == 0
        await pool.aclose()

    with_server(check, answer=raw, close=closed)


@pytest.mark.parametrize(
    ("url_tail", "headers"),
    [
        ("/a b", {}),  # a space would end the target
        ("/a\r\nX: 1", {}),
        ("/", {"X-Id": "1\r\nInjected: yes"}),
        ("/", {"X-Id": "1\nInjected: yes"}),
        ("/", {"Bad Name": "1"}),
        ("/", {"X-Id": "\u20ac"}),  # not latin-1
    ],
)
def test_a_request_that_could_split_is_refused_before_it_is_sent(
    url_tail: str, headers: dict[str, str]
) -> None:
    async def check(server: RawServer) -> None:
        pool = Http1Pool(timeout_s=2)
        with pytest.raises(Http1Error):
            await pool.request("PATCH", f"http://127.0.0.1:{server.port}{url_tail}", headers, b"{}")
        assert server.connections == 0
        await pool.aclose()

    with_server(check)


def test_bytes_after_the_answer_keep_the_connection_from_the_next_request() -> None:
    """Nothing asked for them: read with the answer, they make the connection one not to use again (bytes that
    come after the answer was read fail the next request on it, which is closed then)."""

    async def check(server: RawServer) -> None:
        pool = Http1Pool(timeout_s=5)
        assert await pool.request("PATCH", server.url, {}, b"{}") == (200, b"{}")
        assert pool.idle() == 0
        await pool.aclose()

    with_server(check, answer=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra")
