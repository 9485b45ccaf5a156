"""The push connections (`roaming.http1.Http1Pool`) against the standard library's HTTP server, an independent
implementation, over real loopback sockets: kept alive and reused, HTTP/1.0 and close-delimited answers,
chunked answers, a kept-alive connection the server dropped (sent again once, on a new connection), a silent
server (the timeout), an oversized answer, TLS; and `OcpiClient.push` reading answers exactly as `call` does."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import trio
import trustme

from ampgate.roaming.client import OcpiClient, PartyRefused, PartyUnreachable
from ampgate.roaming.http1 import MAX_ANSWER_BYTES, Http1Error, Http1Pool

OK = json.dumps({"status_code": 1000, "timestamp": "2026-11-30T08:00:00Z"}).encode()


@dataclass
class Server:
    """What the server does per request (`mode`) and what it saw."""

    mode: str = "keep-alive"
    status: int = 200
    body: bytes = OK
    connections: int = 0
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0
    tls: ssl.SSLContext | None = None
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return (
            f"{'https' if self.tls else 'http'}://localhost:{self.port}/emsp/2.2.1/locations/NL/AMP/S1/E1-1"
        )

    def start(self) -> Server:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0" if srv.mode == "http1.0" else "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                srv.connections += 1
                super().setup()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                srv.requests.append((self.command, self.path, dict(self.headers.items()), body))
                if srv.mode == "silent":
                    time.sleep(1.0)
                    return
                self.send_response(srv.status)
                self.send_header("Content-Type", "application/json")
                if srv.mode == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = len(srv.body) // 2
                    for part in (srv.body[:half], srv.body[half:]):
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if srv.mode == "unframed":
                    # No length: the body ends when the server closes (HTTP/1.1 allows it for a response).
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(srv.body)
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(srv.body)))
                self.end_headers()
                self.wfile.write(srv.body)
                if srv.mode == "drops-idle":
                    # Keep-alive announced, then the connection is dropped: what a server's idle timeout does.
                    self.close_connection = True

            do_PATCH = do_PUT = do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


def run(fn: Any) -> Any:
    return trio.run(fn)


def test_a_connection_is_kept_alive_and_reused(server: Server) -> None:
    server.start()

    async def main() -> None:
        pool = Http1Pool(timeout_s=5)
        for i in range(5):
            status, body = await pool.request("PATCH", server.url, {"X-N": str(i)}, b'{"status":"CHARGING"}')
            assert (status, body) == (200, OK)
        assert pool.opened == 1 and pool.idle() == 1
        await pool.aclose()
        assert pool.idle() == 0

    run(main)
    assert server.connections == 1
    method, path, headers, body = server.requests[-1]
    assert (method, path, body) == ("PATCH", "/emsp/2.2.1/locations/NL/AMP/S1/E1-1", b'{"status":"CHARGING"}')
    assert headers["X-N"] == "4" and headers["Host"] == f"localhost:{server.port}"
    assert headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize("mode", ["http1.0", "unframed", "drops-idle"])
def test_a_server_that_closes_gets_a_new_connection_each_time(server: Server, mode: str) -> None:
    """HTTP/1.0 and a close-delimited body end the connection with the answer; a server that drops a kept-alive
    connection while it is idle makes the next request fail before any answer: it is sent again, once, on a new
    connection. Each request reaches the server once."""
    server.mode = mode
    server.start()

    async def main() -> None:
        pool = Http1Pool(timeout_s=5)
        for _ in range(3):
            assert await pool.request("PUT", server.url, {}, b"{}") == (200, OK)
        await pool.aclose()

    run(main)
    assert len(server.requests) == 3 and server.connections == 3


def test_a_chunked_answer_is_read_whole_and_the_connection_reused(server: Server) -> None:
    server.mode = "chunked"
    server.start()

    async def main() -> None:
        pool = Http1Pool(timeout_s=5)
        assert await pool.request("PATCH", server.url, {}, b"{}") == (200, OK)
        assert await pool.request("PATCH", server.url, {}, b"{}") == (200, OK)
        assert pool.opened == 1
        await pool.aclose()

    run(main)


def test_a_silent_server_is_an_error_within_the_timeout(server: Server) -> None:
    server.mode = "silent"
    server.start()

    async def main() -> None:
        pool = Http1Pool(timeout_s=0.3)
        t0 = trio.current_time()
        with pytest.raises(Http1Error, match=r"no answer within 0\.3 s"):
            await pool.request("PATCH", server.url, {}, b"{}")
        assert trio.current_time() - t0 < 0.9
        assert pool.idle() == 0  # the connection in an unknown state is not kept

    run(main)


def test_an_oversized_answer_and_a_closed_port_are_errors(server: Server) -> None:
    server.body = b"x" * (MAX_ANSWER_BYTES + 1)
    server.start()

    async def main() -> None:
        pool = Http1Pool(timeout_s=5)
        with pytest.raises(Http1Error, match="over"):
            await pool.request("PATCH", server.url, {}, b"{}")
        with pytest.raises(Http1Error, match="cannot connect"):
            await pool.request("PATCH", "http://127.0.0.1:1/x", {}, b"{}")
        with pytest.raises(Http1Error, match="not an http"):
            await pool.request("PATCH", "ftp://127.0.0.1/x", {}, b"{}")

    run(main)


def test_https_with_the_trust_it_is_given(server: Server) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server.tls)
    server.start()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async def main() -> None:
        pool = Http1Pool(timeout_s=5, ssl_context=trusting)
        assert await pool.request("PATCH", server.url, {}, b"{}") == (200, OK)
        assert await pool.request("PATCH", server.url, {}, b"{}") == (200, OK)
        assert pool.opened == 1
        await pool.aclose()
        stranger = Http1Pool(timeout_s=5, ssl_context=ssl.create_default_context())
        with pytest.raises(Http1Error, match="TLS"):
            await stranger.request("PATCH", server.url, {}, b"{}")

    run(main)


@pytest.mark.parametrize(
    ("status", "body", "raised", "code"),
    [
        (200, OK, None, 1000),
        (404, json.dumps({"status_code": 2003, "timestamp": "x"}).encode(), PartyRefused, 2003),
        (200, json.dumps({"status_code": 2001, "timestamp": "x"}).encode(), PartyRefused, 2001),
        (503, b"down", PartyUnreachable, None),
        (200, b"<html>", PartyUnreachable, None),
    ],
)
def test_push_reads_answers_as_call_does(
    server: Server, status: int, body: bytes, raised: type[Exception] | None, code: int | None
) -> None:
    server.status, server.body = status, body
    server.start()
    answers: list[Any] = []

    async def main() -> None:
        client = OcpiClient(httpx.AsyncClient(timeout=5), "NL", "AMP")
        for send in (client.call, client.push):
            try:
                answers.append(
                    await send("PATCH", server.url, "tok", body={"status": "CHARGING"}, to=("NL", "EMP"))
                )
            except (PartyRefused, PartyUnreachable) as e:
                answers.append(e)
        await client.aclose()

    run(main)
    by_call, by_push = answers
    if raised is None:
        assert by_call.status_code == by_push.status_code == code
    else:
        assert type(by_call) is type(by_push) is raised
        assert getattr(by_push, "status_code", None) == code
        assert getattr(by_push, "http_status", None) == getattr(by_call, "http_status", None)
    # The same headers both ways: the token in Base64, fresh request ids, the routing headers.
    (_, _, h1, b1), (_, _, h2, b2) = server.requests
    assert b1 == b2 == b'{"status":"CHARGING"}'
    for name in ("Authorization", "Content-Type", "OCPI-from-country-code", "OCPI-to-party-id"):
        assert h1[name] == h2[name], name
    assert h1["X-Request-ID"] != h2["X-Request-ID"]
