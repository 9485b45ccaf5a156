"""A fast eMSP for bench/ocpi_push.py: an OCPI 2.2.1 Locations receiver that records every push it gets.

    python bench/ocpi_emsp.py serve --token TOKEN
    python bench/ocpi_emsp.py blast --port PORT --token TOKEN [--connections 4] [--seconds 3]

`serve` prints one JSON line when it listens (`{"ready": true, "port": ..., "pid": ...}`) and runs until
killed. It is one thread with a `selectors` loop and a minimal HTTP/1.1 reader (request line, headers,
Content-Length body, keep-alive): what the pushes cost it is a few tens of microseconds each, so that it is never
what limits the node it measures (`blast` measures its capacity; the bench reports it beside the figures). It
answers, under /emsp, with the token it was given (TOKEN_B, the one it hands the CPO at registration):

- `GET /emsp/versions` and `GET /emsp/2.2.1`: version 2.2.1 with credentials SENDER and locations RECEIVER
  (what the CPO reads while it handles the eMSP's credentials POST);
- `PATCH /emsp/2.2.1/locations/{cc}/{pid}/{location}/{uid}`: recorded as (uid, receive time, status,
  last_updated); `PUT` of a Location: each of its EVSEs recorded the same way (a PUT of one EVSE: that EVSE);
- `GET /bench/records?from=N` (no token; loopback): the records from index N on and the counters, as JSON;
  `GET /bench/count`: the counters only; `GET /bench/reset`: forget everything (after the capacity check).

The receive time is `time.time()` taken when `recv` returned the bytes that completed the request, before
parsing: the host's wall clock, the one the node's event times and the simulator's timestamps are read from.

`blast` is the capacity check: `--connections` keep-alive connections, each sending a PATCH as soon as the
previous one is answered (as the node's push workers do), for `--seconds`; it prints one JSON line with the
requests answered and its own CPU. The bench reads the receiver's CPU from /proc meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import sys
import time
from base64 import b64encode
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = "/emsp"
COUNTRY = "NL"
PARTY = "EMP"
# Bytes read per recv: many pipelined requests at once if the sender ever sends them.
READ_SIZE = 65536
HEAD_END = b"\r\n\r\n"


def _envelope(data: Any = None, status_code: int = 1000, message: str | None = None) -> bytes:
    out: dict[str, Any] = {
        "status_code": status_code,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if data is not None:
        out["data"] = data
    if message is not None:
        out["status_message"] = message
    return json.dumps(out, separators=(",", ":")).encode()


def _response(status: int, body: bytes, close: bool = False) -> bytes:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}.get(status, "OK")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        + ("connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode() + body


class Receiver:
    """The server's state: what was pushed, and the counters."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.auth = b"token " + b64encode(token.encode())
        self.auth_plain = b"token " + token.encode()
        self.base = f"http://127.0.0.1:{port}{ROOT}"
        # (uid, receive time, status, last_updated)
        self.records: list[tuple[str, float, str, str]] = []
        self.requests = 0
        self.patches = 0
        self.puts = 0
        self.refused = 0
        self._ok_second = 0
        self._ok = b""

    def ok(self) -> bytes:
        """The 200 answer to a push (its timestamp renewed once a second)."""
        second = int(time.time())
        if second != self._ok_second:
            self._ok_second = second
            self._ok = _response(200, _envelope())
        return self._ok

    def handle(self, head: bytes, body: bytes, at: float) -> tuple[bytes, bool]:
        """One request: (the response, whether to close after it)."""
        self.requests += 1
        line_end = head.find(b"\r\n")
        method, _, rest = head[:line_end].partition(b" ")
        target = rest.rpartition(b" ")[0].decode("latin-1")
        lower = head[line_end:].lower()
        close = b"\r\nconnection: close" in lower
        if target.startswith("/bench/"):
            return self._bench(target), close
        i = lower.find(b"\r\nauthorization: ")
        auth = b""
        if i >= 0:
            j = lower.find(b"\r\n", i + 2)
            # The token itself is case-sensitive: taken from the head as sent, the scheme compared lowered.
            raw = head[line_end + i + 17 : line_end + (j if j >= 0 else len(lower))].strip()
            auth = b"token " + raw[6:] if raw[:6].lower() == b"token " else b""
        if auth not in (self.auth, self.auth_plain):
            self.refused += 1
            return _response(401, _envelope(status_code=2000, message="unknown token")), close
        path = target.partition("?")[0]
        if method == b"PATCH" and path.startswith(f"{ROOT}/2.2.1/locations/"):
            self.patches += 1
            uid = path.rpartition("/")[2]
            if "%" in uid:
                uid = unquote(uid)
            obj = json.loads(body)
            self.records.append((uid, at, obj.get("status", ""), obj.get("last_updated", "")))
            return self.ok(), close
        if method == b"PUT" and path.startswith(f"{ROOT}/2.2.1/locations/"):
            self.puts += 1
            obj = json.loads(body)
            evses = obj.get("evses") if "evses" in obj else [obj]
            for e in evses or []:
                if "uid" in e:
                    self.records.append((e["uid"], at, e.get("status", ""), e.get("last_updated", "")))
            return self.ok(), close
        if method == b"GET" and path == f"{ROOT}/versions":
            return _response(200, _envelope([{"version": "2.2.1", "url": f"{self.base}/2.2.1"}])), close
        if method == b"GET" and path == f"{ROOT}/2.2.1":
            endpoints = [
                {"identifier": "credentials", "role": "SENDER", "url": f"{self.base}/2.2.1/credentials"},
                {"identifier": "locations", "role": "RECEIVER", "url": f"{self.base}/2.2.1/locations"},
            ]
            return _response(200, _envelope({"version": "2.2.1", "endpoints": endpoints})), close
        return _response(404, _envelope(status_code=2000, message="no such endpoint")), close

    def _bench(self, target: str) -> bytes:
        parts = urlsplit(target)
        counters = {
            "requests": self.requests,
            "patches": self.patches,
            "puts": self.puts,
            "refused": self.refused,
            "records": len(self.records),
        }
        if parts.path == "/bench/reset":
            self.records.clear()
            self.requests = self.patches = self.puts = self.refused = 0
            return _response(200, b"{}")
        if parts.path == "/bench/records":
            start = int(parse_qs(parts.query).get("from", ["0"])[0])
            counters["from"] = start
            body = json.dumps({**counters, "items": self.records[start:]}, separators=(",", ":")).encode()
            return _response(200, body)
        return _response(200, json.dumps(counters).encode())


class _Conn:
    __slots__ = ("buf", "close_after", "out", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.out = bytearray()
        self.close_after = False


def serve(token: str, port: int) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    rx = Receiver(port, token)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    sys.stdout.write(json.dumps({"ready": True, "port": port, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()

    def drop(c: _Conn) -> None:
        sel.unregister(c.sock)
        c.sock.close()

    def flush(c: _Conn) -> None:
        try:
            sent = c.sock.send(c.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            drop(c)
            return
        del c.out[:sent]
        if c.out:
            sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        elif c.close_after:
            drop(c)
        else:
            sel.modify(c.sock, selectors.EVENT_READ, c)

    while True:
        for key, mask in sel.select():
            if key.data is None:
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(sock, selectors.EVENT_READ, _Conn(sock))
                continue
            c: _Conn = key.data
            if mask & selectors.EVENT_WRITE:
                flush(c)
                if c.sock.fileno() < 0:
                    continue
            if not mask & selectors.EVENT_READ:
                continue
            try:
                data = c.sock.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                drop(c)
                continue
            at = time.time()
            if not data:
                drop(c)
                continue
            c.buf += data
            while True:
                end = c.buf.find(HEAD_END)
                if end < 0:
                    break
                head = bytes(c.buf[:end])
                i = head.lower().find(b"\r\ncontent-length:")
                length = 0
                if i >= 0:
                    j = head.find(b"\r\n", i + 2)
                    length = int(head[i + 17 : j if j >= 0 else len(head)])
                total = end + 4 + length
                if len(c.buf) < total:
                    break
                body = bytes(c.buf[end + 4 : total])
                del c.buf[:total]
                reply, close = rx.handle(head, body, at)
                c.out += reply
                if close:
                    c.close_after = True
                    break
            if c.out:
                flush(c)


def blast(port: int, token: str, connections: int, seconds: float) -> dict[str, Any]:
    """PATCHes over `connections` keep-alive connections, one outstanding each, for `seconds`."""
    auth = "Token " + b64encode(token.encode()).decode()
    body = b'{"status":"CHARGING","last_updated":"2025-01-01T00:00:00Z"}'

    def request(n: int) -> bytes:
        return (
            f"PATCH {ROOT}/2.2.1/locations/NL/AMP/BLAST/BLAST{n}-1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            f"authorization: {auth}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode() + body

    sel = selectors.DefaultSelector()
    bufs: dict[socket.socket, bytearray] = {}
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        bufs[s] = bytearray()
        sel.register(s, selectors.EVENT_READ)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    deadline = t0 + seconds
    sent = answered = 0
    for s in bufs:
        s.sendall(request(sent))
        sent += 1
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj  # type: ignore[assignment]
            assert isinstance(s, socket.socket)
            data = s.recv(READ_SIZE)
            if not data:
                raise SystemExit("the receiver closed a connection")
            buf = bufs[s]
            buf += data
            while (end := buf.find(HEAD_END)) >= 0:
                head = bytes(buf[:end]).lower()
                i = head.find(b"\r\ncontent-length:")
                j = head.find(b"\r\n", i + 2)
                total = end + 4 + int(head[i + 17 : j if j >= 0 else len(head)])
                if len(buf) < total:
                    break
                del buf[:total]
                answered += 1
                if time.monotonic() < deadline:
                    s.sendall(request(sent))
                    sent += 1
    wall = time.monotonic() - t0
    for s in bufs:
        s.close()
    return {
        "connections": connections,
        "seconds": round(wall, 3),
        "answered": answered,
        "per_s": round(answered / wall),
        "client_cpu_s": round(time.process_time() - cpu0, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--token", required=True)
    s.add_argument("--port", type=int, default=0)
    b = sub.add_parser("blast")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--token", required=True)
    b.add_argument("--connections", type=int, default=4)
    b.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args(argv)
    if a.cmd == "serve":
        serve(a.token, a.port)
        return 0
    print(json.dumps(blast(a.port, a.token, a.connections, a.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
