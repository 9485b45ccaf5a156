"""`Http1Pool`: kept-alive HTTP/1.1 connections per origin on trio: what Location pushes go over. The protocol is
`http1_wire` (ours, sans-I/O: why not h11 is said there, with the figures); this is the driver: connections, TLS,
timeouts, reuse.

Why not httpx, which every other OCPI call uses: a push is the one call made at the rate of the fleet's status
changes (1,000 a second is the issue's figure), and httpx on the trio loop costs ~0.7 ms of CPU per request
(its models, the transport layers, anyio; bench/ocpi_push_client.py), so 1,000 pushes a second would take most
of a core from the one thread that also answers every charger.

A connection is taken from the origin's idle list (or opened: TCP, then TLS for https with the same trust store as
httpx), used for one request and its whole answer, and put back if both sides may go on (else closed). A kept-alive
connection the server closed while it was idle shows up as a failure before any byte of the answer: the request
is sent once more on a fresh connection (once: what the pusher sends, a PATCH of a status or a PUT of a whole
Location, means the same when it arrives twice). Idle connections are closed after IDLE_MAX_S. Anything else that
goes wrong (no connection, TLS refused, a timeout, an answer `http1_wire` refuses or one over MAX_ANSWER_BYTES, a
request it refuses to write) is `Http1Error`, and that connection is closed.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

import trio

from ampgate.roaming.http1_wire import AnswerError, AnswerReader, ClosedEarly, RequestRefused, request_bytes

# A connection idle this long is closed rather than reused: servers drop idle keep-alive connections after a few
# seconds to a few minutes (Apache 5 s, nginx 75 s); reusing one they dropped costs a retry, keeping one they
# keep costs a file each.
IDLE_MAX_S = 30.0
# Idle connections kept per origin: the pusher's workers per party use at most that many at once.
MAX_IDLE_PER_ORIGIN = 8
# An answer larger than this is refused: a push is answered with a small envelope, and nothing a party sends
# should make the node buffer without bound. The head's own limit is http1_wire.MAX_HEAD_BYTES.
MAX_ANSWER_BYTES = 1 << 20
RECEIVE_SIZE = 65536
# URL prefixes (scheme and authority) whose origin and Host are remembered (see Http1Pool._where): one per party
# in practice; the bound only keeps a caller with ever new hosts from growing it (when full it is emptied).
MAX_CACHED_PREFIXES = 256

Origin = tuple[str, str, int]  # scheme, host, port


class Http1Error(Exception):
    """The request got no complete answer: no connection, TLS refused, a timeout, the connection closed or an
    answer that is not HTTP/1.1."""


class _Stale(Exception):
    """A reused connection failed before any byte of the answer came: the server had closed it."""


class _Conn:
    __slots__ = ("idle_since", "reused", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
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
        self._prefixes: dict[str, tuple[Origin, str]] = {}
        self.opened = 0

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        """Send one request; the answer's status and body. Raises Http1Error."""
        origin, target, host = self._where(url)
        try:
            raw = self._prepare(method, target, host, headers, body)
        except RequestRefused as e:
            # A method, target or header that could split the request (CR, LF, spaces) or is not latin-1.
            raise Http1Error(f"cannot send {method} {url!r}: {e}") from None
        with trio.move_on_after(self._timeout_s) as scope:
            for _ in range(2):
                conn = await self._take(origin)
                try:
                    status, answer, reusable = await self._exchange(conn, raw, method == "HEAD")
                except _Stale:
                    await trio.aclose_forcefully(conn.stream)
                    continue
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, AnswerError) as e:
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

    def _where(self, url: str) -> tuple[Origin, str, str]:
        """`url`'s origin, request target and Host value. The part before the path (scheme and authority) is
        parsed by urlsplit once and remembered: the pusher sends to one URL per EVSE (tens of thousands), all under
        a few parties' prefixes, and urlsplit per request cost ~10 us. Raises Http1Error."""
        at = url.find("://")
        slash = url.find("/", at + 3) if at > 0 else -1
        if slash < 0:
            return self._parse(url)  # no path: rare, not remembered
        prefix = url[:slash]
        found = self._prefixes.get(prefix)
        if found is None:
            if "?" in prefix or "#" in prefix:
                return self._parse(url)
            origin, _, host = self._parse(prefix)
            found = (origin, host)
            if len(self._prefixes) >= MAX_CACHED_PREFIXES:
                self._prefixes.clear()
            self._prefixes[prefix] = found
        target = url[slash:]
        if "#" in target:
            target = target.partition("#")[0]
        return found[0], target, found[1]

    @staticmethod
    def _parse(url: str) -> tuple[Origin, str, str]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise Http1Error(f"not an http(s) URL: {url}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise Http1Error(f"bad port in {url}") from None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return (scheme, parts.hostname, port), target, parts.netloc.rpartition("@")[2]

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

    def _prepare(
        self, method: str, target: str, host: str, headers: dict[str, str], body: bytes | None
    ) -> bytes:
        """The request as `_exchange` sends it. Raises RequestRefused. (A seam: bench/ocpi_push_client.py measures
        the pool on h11 by replacing this and `_exchange`.)"""
        return request_bytes(method, target, host, headers, body)

    async def _exchange(self, c: _Conn, request: bytes, head_request: bool) -> tuple[int, bytes, bool]:
        """Send `request`, read its answer: (status, body, whether the connection may be used again). Raises
        _Stale (a reused connection that the server had closed), AnswerError, OSError, trio's stream errors."""
        try:
            await c.stream.send_all(request)
        except (trio.BrokenResourceError, OSError):
            if c.reused:
                raise _Stale from None
            raise
        reader = AnswerReader(body_limit=MAX_ANSWER_BYTES, head_request=head_request)
        received = False
        while True:
            try:
                data = await c.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, OSError):
                if c.reused and not received:
                    raise _Stale from None
                raise
            received = True
            try:
                answer = reader.feed(data)
            except ClosedEarly:
                if c.reused:
                    raise _Stale from None
                raise
            if answer is not None:
                return answer
