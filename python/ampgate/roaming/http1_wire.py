"""HTTP/1.1 on the wire, client side, sans-I/O: `request_bytes` writes a request, `AnswerReader` reads its answer
from bytes fed as they come. What `http1.Http1Pool` (the Location pushes' connections) speaks; no sockets here.

Why not h11, the well-kept sans-I/O HTTP/1.1 that httpx's own transport uses and that the pool ran on first: our
rule is a well-kept library unless there is a measured reason, and a push is the one call made at the rate of the
fleet's status changes (1,000 a second is issue 14's figure) on the one trio thread that also answers every
charger. bench/ocpi_push_client.py sends one PATCH of an EVSE status at a time per connection over kept-alive
loopback connections and takes the trio thread's CPU per request. Before this module (reference box, 2 cores):
httpx 731 us, the pool on h11 197 us, the same bytes on a bare trio stream 33 us (the floor); a profile of the h11
pool put ~140 us of its 197 in h11 itself (every header name and value normalised and validated through regexes
into event objects, a state-machine step per event on both sides). At 10k chargers (bench/ocpi_push.py) that was
enough for the control plane to sit near a full core with pushes on and the fleet's heartbeat p99 to triple. With
this module, in one run of the same bench: httpx 745 us, h11 pool 173 us, this pool 70 us, floor 31 us; most of
what is left above the floor is the pool's per-request timeout (a trio cancel scope) and its bookkeeping, not
this module (about 3 us to write a request, 6 us to read an answer). The bench keeps the h11 pool as its second
line, so the difference is measured again with every run.

What it does, and refuses, so that neither side can be confused about where a message ends (RFC 9112):
- A request: the method and every header name an RFC 9110 token; the target printable ASCII without spaces; no
  header value with CR, LF or another control character; everything latin-1. Host first and Content-Length last
  are ours to write (a caller's own Host, Content-Length or Transfer-Encoding is refused). `RequestRefused`.
- An answer: the status line HTTP/1.0 or HTTP/1.1 only; 1xx answers skipped (101 refused: we never ask to
  switch); the body framed as §6.3 says: none for 204, 304 and a HEAD's answer; chunked (extensions and trailers
  read and ignored); Content-Length (repeated or listed values must agree; not digits is refused); else up to the
  end of the connection. Transfer-Encoding other than exactly chunked, or with Content-Length, or in HTTP/1.0, is
  refused rather than guessed at (a framing two readers may read differently). A head over MAX_HEAD_BYTES or a
  body over the reader's limit is refused. `AnswerError`; `ClosedEarly` (one of them) when the connection ended
  before any byte of the answer, which on a kept-alive connection means the server had closed it while idle.
- Reusable: HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`, framed by length or
  chunks, and no byte after the answer (nothing asked for it: read later, it would be taken for the next answer).

Speed is in what is not done per byte or per header: the head is found with one search, split once, checked for
control characters with one search; only the three headers that frame the answer are looked at by name; a header
name is checked with one `bytes.translate`; request header names already checked are remembered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# A head (status line and headers, or a chunked body's trailers) larger than this is refused: h11's own default,
# far above what an OCPI party sends (a few hundred bytes) and small enough that a broken peer cannot make us
# buffer much.
MAX_HEAD_BYTES = 64 * 1024
# A chunk size longer than this many hex digits is refused before it is converted (16 digits is 2**64).
MAX_CHUNK_SIZE_DIGITS = 16
# Header names remembered as checked (see _checked_name): the pusher sends the same ten or so; a bound so that a
# caller sending ever new names cannot grow it without end.
MAX_CHECKED_NAMES = 256

# RFC 9110 §5.6.2: tchar.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TCHAR_STR = frozenset(_TCHAR.decode())
_HEX = b"0123456789abcdefABCDEF"
# Controls other than HTAB (CR and LF included): never inside a field value, reason phrase or chunk line.
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CTL_STR = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
# In a whole head, where CR LF separate the lines: the other controls (a lone CR or LF is caught by counting).
_CTL_HEAD = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Names the caller may not set: the framing and the Host are written by request_bytes itself.
_OURS = frozenset({"host", "content-length", "transfer-encoding"})

_checked_names: set[str] = set()

Answer = tuple[int, bytes, bool]  # status, body, whether the connection may carry another request


class RequestRefused(ValueError):
    """A request that cannot be written safely (it could be read as more than one request, or is not latin-1):
    a programmer's or configuration error, never sent."""


class AnswerError(Exception):
    """What came is not a complete HTTP/1.x answer we accept (see the module docstring). The connection is in an
    unknown state: close it."""


class ClosedEarly(AnswerError):
    """The connection ended before any byte of the answer."""


def request_bytes(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The request's bytes: `method target HTTP/1.1`, `Host: host`, `headers` in their order, `Content-Length`
    (0 without a body), then `body`. Raises RequestRefused (see the module docstring)."""
    if not method or not _TCHAR_STR.issuperset(method):
        raise RequestRefused(f"the method {method!r} is not a token")
    if not target or not target.isascii() or not target.isprintable() or " " in target:
        raise RequestRefused(f"the target {target!r} is not printable ASCII without spaces")
    if not host or not host.isascii() or not host.isprintable() or " " in host:
        raise RequestRefused(f"the host {host!r} is not printable ASCII without spaces")
    for name in headers:
        if name not in _checked_names:
            _check_name(name)
    values = "".join(headers.values())
    if _CTL_STR.search(values):
        raise RequestRefused("a header value holds CR, LF or another control character")
    length = len(body) if body else 0
    head = "".join(
        (
            f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n",
            *[f"{k}: {v}\r\n" for k, v in headers.items()],
            f"Content-Length: {length}\r\n\r\n",
        )
    )
    try:
        raw = head.encode("latin-1")
    except UnicodeEncodeError as e:
        raise RequestRefused(f"the request is not latin-1: {e}") from None
    return raw + body if body else raw


def _check_name(name: str) -> None:
    if not name or not _TCHAR_STR.issuperset(name):
        raise RequestRefused(f"the header name {name!r} is not a token")
    if name.lower() in _OURS:
        raise RequestRefused(f"{name} is written by the request itself")
    if len(_checked_names) < MAX_CHECKED_NAMES:
        _checked_names.add(name)


# The reader's states.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _TO_CLOSE, _DONE = range(8)


class AnswerReader:
    """Reads one answer: `feed` it the bytes as they are received (b"" when the connection has ended) until it
    returns (status, body, reusable). `head_request`: the request was a HEAD (its answer has no body whatever
    its headers say). `body_limit`: a longer body is refused."""

    __slots__ = (
        "_body_limit",
        "_buf",
        "_head_request",
        "_keep",
        "_parts",
        "_remaining",
        "_scan",
        "_seen",
        "_size",
        "_state",
        "_status",
    )

    def __init__(self, *, body_limit: int, head_request: bool = False) -> None:
        self._body_limit = body_limit
        self._head_request = head_request
        self._buf = bytearray()
        self._state = _HEAD
        # Where the search for the end of a head resumes: bytes already searched are not searched again when
        # they come one at a time.
        self._scan = 0
        self._seen = False
        self._status = 0
        self._keep = False
        self._remaining = 0
        self._size = 0
        self._parts: list[bytes] = []

    def feed(self, data: bytes | bytearray) -> Answer | None:
        """The answer once it is complete, else None (feed more). Raises AnswerError, ClosedEarly."""
        if self._state == _DONE:
            raise RuntimeError("the answer was already read")
        if not data:
            return self._ended()
        self._seen = True
        self._buf += data
        return self._advance()

    def _ended(self) -> Answer:
        if self._state == _TO_CLOSE:
            self._keep = False
            return self._done()
        if not self._seen:
            raise ClosedEarly("the connection closed before the answer")
        raise AnswerError("the connection closed in the middle of the answer")

    def _advance(self) -> Answer | None:
        buf = self._buf
        while True:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n", self._scan)
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        raise AnswerError(f"a head over {MAX_HEAD_BYTES} bytes")
                    self._scan = max(0, len(buf) - 3)
                    return None
                if end + 4 > MAX_HEAD_BYTES:
                    raise AnswerError(f"a head over {MAX_HEAD_BYTES} bytes")
                head = bytes(buf[:end])
                del buf[: end + 4]
                self._scan = 0
                self._read_head(head)
                if self._state == _DONE:
                    return self._done()
            elif state in (_LENGTH, _CHUNK_DATA):
                n = self._remaining
                have = len(buf)
                if have < n:
                    if have:
                        self._parts.append(bytes(buf))
                        buf.clear()
                        self._remaining = n - have
                    return None
                self._parts.append(bytes(buf[:n]))
                del buf[:n]
                if state == _LENGTH:
                    return self._done()
                self._state = _CHUNK_END
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        raise AnswerError(f"a chunk line over {MAX_HEAD_BYTES} bytes")
                    return None
                line = bytes(buf[:end])
                del buf[: end + 2]
                self._chunk_size(line)
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    return None
                if buf[:2] != b"\r\n":
                    raise AnswerError("a chunk not followed by CRLF")
                del buf[:2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                if len(buf) < 2:
                    return None
                if buf[:2] == b"\r\n":
                    del buf[:2]
                    return self._done()
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        raise AnswerError(f"trailers over {MAX_HEAD_BYTES} bytes")
                    return None
                trailers = bytes(buf[:end])
                del buf[: end + 4]
                _fields(trailers.split(b"\r\n"), trailers, 0)  # checked, then ignored
                return self._done()
            else:  # _TO_CLOSE
                if buf:
                    self._grow(len(buf))
                    self._parts.append(bytes(buf))
                    buf.clear()
                return None

    def _read_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        first = lines[0]
        version = first[:9]
        if version == b"HTTP/1.1 ":
            keep = True
        elif version == b"HTTP/1.0 ":
            keep = False
        else:
            raise AnswerError(f"not an HTTP/1.0 or 1.1 status line: {first[:40]!r}")
        code = first[9:12]
        if len(code) != 3 or not code.isdigit() or (len(first) > 12 and first[12:13] != b" "):
            raise AnswerError(f"not a status line: {first[:40]!r}")
        status = int(code)
        if status < 100:
            raise AnswerError(f"status {status}")
        wanted = _fields(lines, head, 1)
        connection = wanted.get(b"connection")
        if connection is not None:
            tokens = {t.strip(b" \t").lower() for t in b",".join(connection).split(b",")}
            if b"close" in tokens:
                keep = False
            elif b"keep-alive" in tokens and version == b"HTTP/1.0 ":
                keep = True
        if status < 200:
            if status == 101:
                raise AnswerError("101 Switching Protocols, which was not asked for")
            return  # 1xx: the answer comes after it (the state stays _HEAD)
        self._status = status
        self._keep = keep
        if self._head_request or status == 204 or status == 304:
            self._state = _DONE
            return
        coding = wanted.get(b"transfer-encoding")
        lengths = wanted.get(b"content-length")
        if coding is not None:
            if lengths is not None:
                raise AnswerError("both Transfer-Encoding and Content-Length")
            if version == b"HTTP/1.0 ":
                raise AnswerError("Transfer-Encoding in HTTP/1.0")
            codings = [c.strip(b" \t").lower() for c in b",".join(coding).split(b",")]
            if codings != [b"chunked"]:
                raise AnswerError(f"Transfer-Encoding {b', '.join(codings)!r}: only chunked is read")
            self._state = _CHUNK_SIZE
        elif lengths is not None:
            values = {v.strip(b" \t") for v in b",".join(lengths).split(b",")}
            if len(values) != 1:
                raise AnswerError(f"Content-Length given differently: {sorted(values)!r}")
            (value,) = values
            if not value or not value.isdigit():
                raise AnswerError(f"Content-Length {value[:20]!r}")
            if len(value) > 18 or int(value) > self._body_limit:
                raise AnswerError(f"an answer over {self._body_limit} bytes")
            self._remaining = int(value)
            self._state = _LENGTH if self._remaining else _DONE
        else:
            self._keep = False
            self._state = _TO_CLOSE

    def _chunk_size(self, line: bytes) -> None:
        size = line.split(b";", 1)[0].rstrip(b" \t")
        if not size or len(size) > MAX_CHUNK_SIZE_DIGITS or size.translate(None, _HEX) or _CTL.search(line):
            raise AnswerError(f"not a chunk size line: {line[:40]!r}")
        n = int(size, 16)
        if n == 0:
            self._state = _TRAILERS
            return
        self._grow(n)
        self._remaining = n
        self._state = _CHUNK_DATA

    def _grow(self, n: int) -> None:
        self._size += n
        if self._size > self._body_limit:
            raise AnswerError(f"an answer over {self._body_limit} bytes")

    def _done(self) -> Answer:
        self._state = _DONE
        body = b"".join(self._parts)
        self._parts = []
        return self._status, body, self._keep and not self._buf


# The headers that frame an answer: the only ones whose values are kept.
_FRAMING = frozenset({b"connection", b"content-length", b"transfer-encoding"})


def _fields(lines: list[bytes], block: bytes, start: int) -> dict[bytes, list[bytes]]:
    """Check `lines[start:]` (of `block`, split at CRLF) as header fields; the framing ones' values by name.
    Raises AnswerError."""
    # A lone CR or LF, or another control, anywhere: one search and two counts for the whole block.
    breaks = len(lines) - 1
    if block.count(b"\r") != breaks or block.count(b"\n") != breaks or _CTL_HEAD.search(block):
        raise AnswerError("a control character in a head")
    wanted: dict[bytes, list[bytes]] = {}
    last: list[bytes] | None = None
    for i in range(start, len(lines)):
        line = lines[i]
        if line[:1] in (b" ", b"\t"):
            # obs-fold (RFC 9112 §5.2): a user agent joins it to the previous value with a space.
            if i == start:
                raise AnswerError("a head's first field is a continuation line")
            if last is not None:
                last[-1] += b" " + line.strip(b" \t")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, _TCHAR):
            raise AnswerError(f"not a header field: {line[:40]!r}")
        name = name.lower()
        if name in _FRAMING:
            last = wanted.setdefault(name, [])
            last.append(value.strip(b" \t"))
        else:
            last = None
    return wanted
