"""`Http1Pool`: kept-alive HTTP/1.1 connections per origin on trio: what Location pushes go over. The protocol
is h11's (sans-I/O, the HTTP/1.1 that httpx's own transport uses); this is the driver: connections, TLS,
timeouts, reuse.

Why not httpx, which every other OCPI call uses: a push is the one call made at the rate of the fleet's status
changes (1,000 a second is the issue's figure), and httpx on the trio loop costs ~0.8 ms of CPU per request
(its models, the transport layers, anyio; measured on the reference box: bench/ocpi_push.py, docs/benchmarks.md),
so 1,000 pushes a second would take most of a core from the one thread that also answers every charger. h11 on a
trio stream costs ~0.17 ms: what is left is mostly the socket's own cost. (A hand-written reader was tried and
saved a few hundredths of a millisecond more; not worth an HTTP parser of our own.)

A connection is taken from the origin's idle list (or opened: TCP, then TLS for https with the same trust store as
httpx), used for one request and its whole answer, and put back if both sides may go on (else closed). A kept-alive
connection the server closed while it was idle shows up as a failure before any byte of the answer: the request
is sent once more on a fresh connection (once: what the pusher sends, a PATCH of a status or a PUT of a whole
Location, means the same when it arrives twice). Idle connections are closed after IDLE_MAX_S. Anything else that
goes wrong (no connection, TLS refused, a timeout, an answer h11 refuses or one over MAX_ANSWER_BYTES) is
`Http1Error`, and that connection is closed.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

import h11
import trio

# A connection idle this long is closed rather than reused: servers drop idle keep-alive connections after a few
# seconds to a few minutes (Apache 5 s, nginx 75 s); reusing one they dropped costs a retry, keeping one they
# keep costs a file each.
IDLE_MAX_S = 30.0
# Idle connections kept per origin: the pusher's workers per party use at most that many at once.
MAX_IDLE_PER_ORIGIN = 8
# An answer larger than this is refused: a push is answered with a small envelope, and nothing a party sends
# should make the node buffer without bound. The head's own limit is h11's (MAX_HEAD).
MAX_ANSWER_BYTES = 1 << 20
MAX_HEAD = 64 * 1024
RECEIVE_SIZE = 65536

Origin = tuple[str, str, int]  # scheme, host, port


class Http1Error(Exception):
    """The request got no complete answer: no connection, TLS refused, a timeout, the connection closed or an
    answer that is not HTTP/1.1."""


class _Stale(Exception):
    """A reused connection failed before any byte of the answer came: the server had closed it."""


class _Conn:
    __slots__ = ("h11", "idle_since", "reused", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.reused = False
        self.idle_since = 0.0


class Http1Pool:
    """Requests over kept-alive connections (see the module docstring). `timeout_s` bounds a whole request,
    connecting included; `ssl_context` is used for https origins (default: httpx's, so the trust store is the
    one the rest of the OCPI client uses)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
        now: Callable[[], float] = trio.current_time,
    ) -> None:
        self._timeout_s = timeout_s
        self._ssl = ssl_context
        self._now = now
        self._idle: dict[Origin, list[_Conn]] = {}
        self.opened = 0

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        """Send one request; the answer's status and body. Raises Http1Error."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise Http1Error(f"not an http(s) URL: {url}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise Http1Error(f"bad port in {url}") from None
        origin = (scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            request = h11.Request(
                method=method,
                target=target,
                headers=[
                    ("Host", parts.netloc.rpartition("@")[2]),
                    *headers.items(),
                    ("Content-Length", str(len(body) if body else 0)),
                ],
            )
        except (h11.LocalProtocolError, UnicodeEncodeError) as e:
            # A method, target or header that could split the request (CR, LF, spaces) or is not latin-1.
            raise Http1Error(f"cannot send {method} {url!r}: {e}") from None
        with trio.move_on_after(self._timeout_s) as scope:
            for _ in range(2):
                conn = await self._take(origin)
                try:
                    status, answer, reusable = await self._exchange(conn, request, body)
                except _Stale:
                    await trio.aclose_forcefully(conn.stream)
                    continue
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError) as e:
                    await trio.aclose_forcefully(conn.stream)
                    raise Http1Error(f"{type(e).__name__}: {e}") from None
                except BaseException:
                    await trio.aclose_forcefully(conn.stream)
                    raise
                if not (reusable and self._give_back(origin, conn)):
                    await trio.aclose_forcefully(conn.stream)
                return status, answer
            raise Http1Error("the connection was closed before the answer, twice")
        assert scope.cancelled_caught
        raise Http1Error(f"no answer within {self._timeout_s:g} s")

    async def aclose(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for c in conns:
                await trio.aclose_forcefully(c.stream)

    def idle(self) -> int:
        return sum(len(v) for v in self._idle.values())

    async def _take(self, origin: Origin) -> _Conn:
        conns = self._idle.get(origin)
        now = self._now()
        while conns:
            c = conns.pop()
            if now - c.idle_since < IDLE_MAX_S:
                return c
            await trio.aclose_forcefully(c.stream)
        return await self._open(origin)

    def _give_back(self, origin: Origin, c: _Conn) -> bool:
        """Keep `c` for the next request to `origin`; False when the origin has as many idle as it may."""
        conns = self._idle.setdefault(origin, [])
        if len(conns) >= MAX_IDLE_PER_ORIGIN:
            return False
        c.reused = True
        c.idle_since = self._now()
        conns.append(c)
        return True

    async def _open(self, origin: Origin) -> _Conn:
        scheme, host, port = origin
        try:
            stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
        except OSError as e:
            raise Http1Error(f"cannot connect to {host}:{port}: {e}") from None
        if scheme == "https":
            if self._ssl is None:
                # httpx's own default (certifi), made once: the same trust as every other OCPI call.
                import httpx

                self._ssl = httpx.create_ssl_context()
            tls = trio.SSLStream(stream, self._ssl, server_hostname=host, https_compatible=True)
            try:
                await tls.do_handshake()
            except (trio.BrokenResourceError, ssl.SSLError) as e:
                await trio.aclose_forcefully(stream)
                raise Http1Error(f"TLS with {host}:{port}: {e}") from None
            stream = tls
        self.opened += 1
        return _Conn(stream)

    async def _exchange(self, c: _Conn, request: h11.Request, body: bytes | None) -> tuple[int, bytes, bool]:
        """Send `request` and `body`, read its answer: (status, body, whether the connection may be used again)."""
        conn = c.h11
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
                # Bytes after the answer were not asked for: read later, they would fail the next request.
                reusable = (
                    conn.our_state is h11.DONE and conn.their_state is h11.DONE and not conn.trailing_data[0]
                )
                if reusable:
                    conn.start_next_cycle()
                return status, b"".join(parts), reusable
            elif isinstance(event, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("the connection closed before the answer")
            # InformationalResponse (1xx): the answer comes after it.
