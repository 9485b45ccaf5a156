"""`roaming.http1_wire` alone, no sockets: a request's exact bytes and what it refuses to write; answers read alike
whole and a byte at a time (and, for chunked bodies, cut anywhere: hypothesis); every malformed answer refused;
reuse only when both sides may go on. The pool over real sockets is tests/roaming/test_http1_answers.py."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ampgate.roaming.http1_wire import (
    MAX_HEAD_BYTES,
    AnswerError,
    AnswerReader,
    ClosedEarly,
    RequestRefused,
    request_bytes,
)

LIMIT = 1 << 20
ENVELOPE = b'{"status_code":1000,"timestamp":"2026-11-30T08:00:00Z"}'


def read(
    raw: bytes, *, cuts: list[int] | None = None, close: bool = False, **kw: object
) -> tuple[int, bytes, bool]:
    """Feed `raw` to a reader at once (or cut at `cuts`), then the end of the connection if `close`; the answer.
    Fails the test if the answer comes before the last piece (it must not wait for bytes it does not need, nor
    finish before those it does)."""
    reader = AnswerReader(body_limit=LIMIT, **kw)  # type: ignore[arg-type]
    points = sorted(set(cuts or []) | {0, len(raw)})
    pieces = [raw[a:b] for a, b in itertools.pairwise(points) if b > a]
    if close:
        pieces.append(b"")
    for i, piece in enumerate(pieces):
        answer = reader.feed(piece)
        if answer is not None:
            assert i == len(pieces) - 1, f"answered after piece {i} of {len(pieces)}"
            return answer
    raise AssertionError("no answer")


def bytewise(raw: bytes) -> list[int]:
    return list(range(1, len(raw)))


# -- requests ---------------------------------------------------------------------------------------------------------


def test_a_request_is_written_exactly() -> None:
    raw = request_bytes(
        "PATCH",
        "/emsp/2.2.1/locations/NL/AMP/S1/E1-1?x=1",
        "emsp.example:8443",
        {"Authorization": "Token dG9r", "Content-Type": "application/json", "X-Empty": ""},
        b'{"status":"CHARGING"}',
    )
    assert raw == (
        b"PATCH /emsp/2.2.1/locations/NL/AMP/S1/E1-1?x=1 HTTP/1.1\r\n"
        b"Host: emsp.example:8443\r\n"
        b"Authorization: Token dG9r\r\n"
        b"Content-Type: application/json\r\n"
        b"X-Empty: \r\n"
        b"Content-Length: 21\r\n"
        b"\r\n"
        b'{"status":"CHARGING"}'
    )
    assert (
        request_bytes("GET", "/", "h", {}, None) == b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
    )
    # obs-text in a value (latin-1) is allowed: it is one byte on the wire and cannot split anything.
    assert b"X-Name: caf\xe9\r\n" in request_bytes("GET", "/", "h", {"X-Name": "caf\u00e9"}, None)


@pytest.mark.parametrize(
    ("method", "target", "host", "headers"),
    [
        ("PAT CH", "/", "h", {}),
        ("", "/", "h", {}),
        ("GET\r\n", "/", "h", {}),
        ("GET", "/a b", "h", {}),
        ("GET", "/a\r\nX: 1", "h", {}),
        ("GET", "/a\x00", "h", {}),
        ("GET", "/\u00e9", "h", {}),
        ("GET", "", "h", {}),
        ("GET", "/", "h\r\nX: 1", {}),
        ("GET", "/", "", {}),
        ("GET", "/", "h", {"X-Id": "1\r\nInjected: yes"}),
        ("GET", "/", "h", {"X-Id": "1\nInjected: yes"}),
        ("GET", "/", "h", {"X-Id": "1\rX"}),
        ("GET", "/", "h", {"X-Id": "1\x7f"}),
        ("GET", "/", "h", {"X-Id": "\x00"}),
        ("GET", "/", "h", {"Bad Name": "1"}),
        ("GET", "/", "h", {"Bad:Name": "1"}),
        ("GET", "/", "h", {"": "1"}),
        ("GET", "/", "h", {"X-Id": "\u20ac"}),  # not latin-1
        ("GET", "/", "h", {"Content-Length": "5"}),  # the framing is ours
        ("GET", "/", "h", {"transfer-encoding": "chunked"}),
        ("GET", "/", "h", {"Host": "other"}),
    ],
)
def test_a_request_that_could_split_or_is_not_latin1_is_refused(
    method: str, target: str, host: str, headers: dict[str, str]
) -> None:
    with pytest.raises(RequestRefused):
        request_bytes(method, target, host, headers, b"{}")


def test_a_tab_inside_a_value_is_allowed() -> None:
    assert b"X: a\tb\r\n" in request_bytes("GET", "/", "h", {"X": "a\tb"}, None)


# -- answers ----------------------------------------------------------------------------------------------------------

CHUNKED = (
    b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1a;ext=1;q="a b"\r\n'
    + ENVELOPE[:26]
    + b"\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n" % (len(ENVELOPE) - 26, ENVELOPE[26:])
)

ANSWERS = [
    # (bytes, then the connection ends?, kw, status, body, reusable)
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ENVELOPE), ENVELOPE),
        False,
        {},
        200,
        ENVELOPE,
        True,
    ),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nCONTENT-LENGTH: 2\r\n\r\n{}", False, {}, 200, b"{}", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n{}", False, {}, 200, b"{}", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length:2\r\nServer:x\r\n\r\n{}", False, {}, 200, b"{}", True),
    (b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", False, {}, 200, b"", True),  # no reason phrase
    (b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", False, {}, 200, b"", True),
    (CHUNKED, False, {}, 200, ENVELOPE, True),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        False,
        {},
        200,
        b"{}",
        True,
    ),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False, {}, 200, b"", True),
    (b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n" + ENVELOPE, True, {}, 404, ENVELOPE, False),
    (b"HTTP/1.1 200 OK\r\n\r\n" + ENVELOPE, True, {}, 200, ENVELOPE, False),  # to the end of the connection
    (b"HTTP/1.1 200 OK\r\n\r\n", True, {}, 200, b"", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", False, {}, 200, b"{}", False),
    (
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n{}",
        False,
        {},
        200,
        b"{}",
        True,
    ),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n{}", True, {}, 200, b"{}", False),  # no length
    (
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\n{}",
        False,
        {},
        200,
        b"{}",
        False,
    ),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", False, {}, 204, b"", True),
    (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        False,
        {},
        200,
        b"{}",
        True,
    ),
    (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", False, {}, 204, b"", True),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", False, {}, 304, b"", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", False, {"head_request": True}, 200, b"", True),
    (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", False, {}, 503, b"", True),
    # obs-fold: joined to the previous value (here the Connection header's, so it counts).
    (
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive,\r\n close\r\nContent-Length: 0\r\n\r\n",
        False,
        {},
        200,
        b"",
        False,
    ),
    (b"HTTP/1.1 200 OK\r\nServer: a\r\n\tb\r\nContent-Length: 0\r\n\r\n", False, {}, 200, b"", True),
    (b"HTTP/1.1 200 Caf\xe9\r\nX: \xff\r\nContent-Length: 0\r\n\r\n", False, {}, 200, b"", True),  # obs-text
]


@pytest.mark.parametrize("by_byte", [False, True], ids=["at-once", "byte-by-byte"])
@pytest.mark.parametrize(("raw", "close", "kw", "status", "body", "reusable"), ANSWERS)
def test_an_answer_reads_alike_at_once_and_a_byte_at_a_time(
    by_byte: bool, raw: bytes, close: bool, kw: dict[str, object], status: int, body: bytes, reusable: bool
) -> None:
    cuts = bytewise(raw) if by_byte else None
    assert read(raw, cuts=cuts, close=close, **kw) == (status, body, reusable)


def test_bytes_after_the_answer_make_the_connection_not_reusable() -> None:
    assert read(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra") == (200, b"{}", False)
    assert read(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n") == (204, b"", False)
    assert read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX") == (200, b"", False)


@given(st.data())
def test_a_chunked_body_reads_alike_cut_anywhere(data: st.DataObject) -> None:
    body = data.draw(st.binary(max_size=300))
    sizes = data.draw(st.lists(st.integers(1, 40), max_size=20))
    chunks, at = [], 0
    for n in sizes:
        if at >= len(body):
            break
        chunks.append(body[at : at + n])
        at += n
    if at < len(body):
        chunks.append(body[at:])
    ext = data.draw(st.sampled_from([b"", b";a=1", b";name", b' ;q="x y"']))
    trailers = data.draw(st.sampled_from([b"", b"X-Sum: 1\r\n", b"A: 1\r\nB: 2\r\n"]))
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x%s\r\n%s\r\n" % (len(c), ext, c) for c in chunks)
        + b"0\r\n"
        + trailers
        + b"\r\n"
    )
    cuts = data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=30))
    assert read(raw, cuts=cuts) == (200, body, True)


@pytest.mark.parametrize(
    ("raw", "close"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", True),  # closed mid-body
        (b"HTTP/1.1 200 OK\r\nContent", True),  # closed mid-head
        (b"HTTP/1.1 100 Continue\r\n\r\n", True),  # closed after a 1xx
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", True),  # no last chunk
        (b"SMTP ready\r\n\r\n", False),
        (b"HTTP/2 200\r\n\r\n", False),
        (b"HTTP/1.2 200 OK\r\n\r\n", False),
        (b"http/1.1 200 OK\r\n\r\n", False),
        (b"HTTP/1.1 20 OK\r\n\r\n", False),
        (b"HTTP/1.1 2000 OK\r\n\r\n", False),
        (b"HTTP/1.1 abc OK\r\n\r\n", False),
        (b"HTTP/1.1 099 Low\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\n: no name\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nName : 1\r\n\r\n", False),  # no space before the colon (RFC 9112 §5.1)
        (b"HTTP/1.1 200 OK\r\n folded first\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n", False),  # a lone CR
        (b"HTTP/1.1 200 OK\r\nX: a\nb\r\nContent-Length: 0\r\n\r\n", False),  # a lone LF
        (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 O\x7fK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n{}", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\n{}", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1), False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a\x00\r\n{}\r\n0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s\r\n" % (b"f" * 17), False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (LIMIT + 1), False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", False),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            False,
        ),
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", False),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * MAX_HEAD_BYTES, False),  # a head without end
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * MAX_HEAD_BYTES + b"\r\n\r\n", False),  # a head over the limit
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"e" * MAX_HEAD_BYTES, False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + b"y" * MAX_HEAD_BYTES, False),
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (LIMIT + 1), False),  # to the end of the connection, too long
    ],
)
@pytest.mark.parametrize("by_byte", [False, True], ids=["at-once", "byte-by-byte"])
def test_what_is_not_an_answer_is_refused(raw: bytes, close: bool, by_byte: bool) -> None:
    if by_byte and len(raw) > 4096:
        # Fed a byte at a time, a long answer is slow; fed in small pieces it shows the same.
        cuts = list(range(1000, len(raw), 1000))
    else:
        cuts = bytewise(raw) if by_byte else None
    with pytest.raises(AnswerError) as caught:
        read(raw, cuts=cuts, close=close)
    assert type(caught.value) is AnswerError  # not ClosedEarly: bytes came


def test_an_answer_over_the_limit_is_refused_as_the_body_grows() -> None:
    reader = AnswerReader(body_limit=10)
    assert reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n") is None
    with pytest.raises(AnswerError, match="over 10 bytes"):
        reader.feed(b"6\r\n")
    with pytest.raises(AnswerError, match="over 10 bytes"):
        AnswerReader(body_limit=10).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")


def test_a_connection_that_ends_before_any_byte_is_closed_early() -> None:
    with pytest.raises(ClosedEarly):
        AnswerReader(body_limit=LIMIT).feed(b"")
    reader = AnswerReader(body_limit=LIMIT)
    assert reader.feed(b"H") is None
    with pytest.raises(AnswerError) as caught:
        reader.feed(b"")
    assert type(caught.value) is AnswerError


def test_a_reader_reads_one_answer() -> None:
    reader = AnswerReader(body_limit=LIMIT)
    assert reader.feed(b"HTTP/1.1 204 No Content\r\n\r\n") == (204, b"", True)
    with pytest.raises(RuntimeError):
        reader.feed(b"HTTP/1.1 204 No Content\r\n\r\n")
