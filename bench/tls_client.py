"""One load process of bench/tls.py: opens COUNT WebSocket connections to the node (plain ws or wss) with a cap
on handshakes in flight, holds them, and on command closes them and connects again offering each connection's
TLS session (a reconnect storm with resumption).

    python bench/tls_client.py HOST PORT COUNT --source 127.0.0.2 [--tls --ca F] [--inflight 256]

A connection is done when the node's `101 Switching Protocols` has arrived (the TLS handshake, then the HTTP
upgrade); nothing else is sent, so the node holds an idle charger. Non-blocking sockets and Python's ssl module
(OpenSSL) in one selectors loop. Prints one JSON line per phase on stdout; reads commands (`reconnect`,
`quit`) on stdin. Every wait is bounded: a phase ends after --phase-timeout seconds whatever is left.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import selectors
import socket
import ssl
import sys
import time

UPGRADE = (
    "GET /ocpp/{cid} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
)


class Conn:
    __slots__ = ("buf", "cid", "out", "resumed", "session", "sock", "state", "t0")

    def __init__(self, cid: str) -> None:
        self.cid = cid
        self.sock: socket.socket | ssl.SSLSocket | None = None
        self.state = "new"
        self.out = b""
        self.buf = b""
        self.session: ssl.SSLSession | None = None
        self.resumed = False
        self.t0 = 0.0


def run_phase(
    conns: list[Conn], args: argparse.Namespace, ctx: ssl.SSLContext | None, *, resume: bool
) -> dict[str, object]:
    """Connect every connection (at most `inflight` handshakes at once); returns the phase's figures."""
    sel = selectors.DefaultSelector()
    todo = list(reversed(conns))
    inflight = done = failed = 0
    start = time.monotonic()
    deadline = start + args.phase_timeout

    def fail(c: Conn) -> None:
        nonlocal inflight, failed
        inflight -= 1
        failed += 1
        c.state = "failed"
        if c.sock is not None:
            sel.unregister(c.sock)
            c.sock.close()
            c.sock = None

    def begin(c: Conn) -> None:
        nonlocal inflight
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setblocking(False)
        raw.bind((args.source, 0))
        raw.connect_ex((args.host, args.port))
        c.t0 = time.monotonic()
        key = base64.b64encode(os.urandom(16)).decode()
        c.out = UPGRADE.format(cid=c.cid, host=args.host, port=args.port, key=key).encode()
        c.buf = b""
        if ctx is not None:
            session = c.session if resume else None
            c.sock = ctx.wrap_socket(
                raw, server_hostname=args.host, do_handshake_on_connect=False, session=session
            )
            c.state = "connecting"
        else:
            c.sock = raw
            c.state = "connecting"
        sel.register(c.sock, selectors.EVENT_WRITE, c)
        inflight += 1

    while (todo or inflight) and time.monotonic() < deadline:
        while todo and inflight < args.inflight:
            begin(todo.pop())
        for key, _ in sel.select(timeout=0.5):
            c: Conn = key.data
            s = c.sock
            assert s is not None
            try:
                if c.state == "connecting":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(c)
                        continue
                    c.state = "handshake" if ctx is not None else "send"
                if c.state == "handshake":
                    assert isinstance(s, ssl.SSLSocket)
                    try:
                        s.do_handshake()
                    except ssl.SSLWantReadError:
                        sel.modify(s, selectors.EVENT_READ, c)
                        continue
                    except ssl.SSLWantWriteError:
                        sel.modify(s, selectors.EVENT_WRITE, c)
                        continue
                    c.resumed = s.session_reused
                    c.state = "send"
                if c.state == "send":
                    n = s.send(c.out)
                    c.out = c.out[n:]
                    if c.out:
                        sel.modify(s, selectors.EVENT_WRITE, c)
                        continue
                    c.state = "recv"
                    sel.modify(s, selectors.EVENT_READ, c)
                    continue
                if c.state == "recv":
                    try:
                        chunk = s.recv(4096)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        continue
                    if not chunk:
                        fail(c)
                        continue
                    c.buf += chunk
                    if b"\r\n\r\n" in c.buf:
                        if not c.buf.startswith(b"HTTP/1.1 101"):
                            fail(c)
                            continue
                        if ctx is not None:
                            assert isinstance(s, ssl.SSLSocket)
                            c.session = s.session  # TLS 1.3: its ticket came with the 101
                        sel.unregister(s)
                        c.state = "open"
                        inflight -= 1
                        done += 1
            except (OSError, ssl.SSLError):
                fail(c)
    for c in conns:
        if c.state not in ("open", "failed"):
            fail(c)
    seconds = time.monotonic() - start
    sel.close()
    return {
        "connected": done,
        "failed": failed,
        "seconds": round(seconds, 3),
        "resumed": sum(1 for c in conns if c.state == "open" and c.resumed),
    }


def close_all(conns: list[Conn]) -> None:
    for c in conns:
        if c.sock is not None:
            c.sock.close()
            c.sock = None
        c.state = "new"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("count", type=int)
    p.add_argument("--source", default="127.0.0.1")
    p.add_argument("--prefix", default="TLS")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--ca")
    p.add_argument("--inflight", type=int, default=256)
    p.add_argument("--phase-timeout", type=float, default=300.0)
    args = p.parse_args()
    ctx = None
    if args.tls:
        ctx = ssl.create_default_context(cafile=args.ca)
        # The certificate names 127.0.0.1; it is verified against the CA, the name is not checked.
        ctx.check_hostname = False
    conns = [Conn(f"{args.prefix}-{i}") for i in range(args.count)]

    def report(phase: str, figures: dict[str, object]) -> None:
        print(json.dumps({"phase": phase, **figures}), flush=True)

    report("connect", run_phase(conns, args, ctx, resume=False))
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "reconnect":
            close_all(conns)
            report("reconnect", run_phase(conns, args, ctx, resume=True))
        elif cmd == "quit":
            break
    close_all(conns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
