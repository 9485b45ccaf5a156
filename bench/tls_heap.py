"""Where an idle wss charger's memory goes in a gateway worker: every heap allocation the worker still holds
with N TLS chargers connected, by what made it, per connection (the profile behind bench/tls.py's figure).

    python bench/tls_heap.py --connections 4000 [--inflight 4] [--json OUT]

Needs heaptrack (Debian: `apt install heaptrack`; not part of `make`). Steps (every wait bounded):
  1. a fresh node with one gateway worker and wss (an ECDSA P-256 certificate from a throwaway CA, as
     bench/tls.py), idle; heaptrack attaches to the worker;
  2. one load process (bench/tls_client.py) opens --connections wss connections, at most --inflight handshakes
     at once (few, so the handshakes' transient buffers do not mix into the figure), each done at the 101;
     they are held and the worker's PSS is taken;
  3. the worker is killed (SIGKILL) while they are held, so what heaptrack reports as never freed is exactly
     what was live at that moment; the node is stopped;
  4. every still-live allocation made after the attach is grouped by the function that asked for it (the first
     frame above the allocator: SSL_new, EVP_CipherInit_ex, ...) and by which of our calls it came from (the
     SSL object, the handshake, the stream's BIO, our own Rust state), in bytes per connection.
Prints a table and JSON (--json writes it). The target it explains (issue 16): <= 12 KB per idle TLS connection.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import trustme

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from nodeproc import start_node  # noqa: E402
from tls import CLIENT, emit, node_processes, pss_one, read_line, server_files  # noqa: E402

ATTACH_WAIT = 5.0
HOLD = 3.0
TIMEOUT = 300.0
# Frames that only allocate on someone else's behalf: the owner is the first frame above them.
WRAPPERS = re.compile(
    r"^(0x[0-9a-f]+|\?\?|CRYPTO_(malloc|zalloc|realloc|clear_realloc|memdup|strdup|strndup|THREAD_lock_new)"
    r"|OPENSSL_sk_|OPENSSL_LH_|BUF_MEM_|malloc|calloc|realloc|__rust_|_RN|alloc::|<alloc::|core::|hashbrown::)"
)
# Which of our calls an allocation came from: the first of these that any frame of its stack matches, in this
# order (C names too: the `openssl` crate's thin wrappers are often inlined into our frames, and heaptrack lists
# inlined frames after the frame they were inlined into, so the stack's order cannot decide).
ORIGINS = (
    (("SSL_new", "openssl::ssl::Ssl::new"), "SSL_new: the SSL object"),
    (("BIO_new", "BIO_meth_new", "openssl::ssl::bio::"), "the stream's BIO (openssl crate)"),
    (("CRYPTO_set_ex_data", "openssl::ssl::SslRef::set_ex_data"), "ex data (openssl crate)"),
    (("SSL_do_handshake", "SSL_accept", "openssl::ssl::", "ampgate_native::gateway::stream::"),
     "the handshake: what it leaves behind"),
    (("ampgate_native::",), "the worker's own state (Rust)"),
)  # fmt: skip


def frame_name(frame: str) -> str:
    name = frame.strip().split(" (")[0]
    return re.sub(r"::h[0-9a-f]{16}$", "", name)


def classify(frames: list[str]) -> tuple[str, str]:
    """(origin, owner) of one allocation stack, frames leaf first."""
    names = [frame_name(f) for f in frames if f.strip()]
    owner = next((n for n in names if not WRAPPERS.match(n)), names[0] if names else "?")
    if owner.startswith(("openssl::", "ampgate_native::")):
        owner = "(OpenSSL internals)" if any(n.startswith("0x") for n in names[:4]) else owner
    origin = next(
        (label for prefixes, label in ORIGINS if any(n.startswith(prefixes) for n in names)),
        "other (Python, libraries)",
    )
    return origin, owner


def live_by_stack(data: Path) -> list[tuple[int, list[str]]]:
    """heaptrack's never-freed bytes per stack (its flame-graph output: exact byte counts), frames leaf first."""
    stacks = data.with_suffix(".stacks")
    subprocess.run(
        ["heaptrack_print", "-f", str(data), "--print-peaks", "0", "--print-allocators", "0",
         "--print-temporary", "0", "--flamegraph-cost-type", "leaked", "-F", str(stacks)],
        check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    out = []
    for line in stacks.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit() and int(n) > 0:
            out.append((int(n), stack.split(";")[::-1]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=4000)
    ap.add_argument("--inflight", type=int, default=4)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not (shutil.which("heaptrack") and shutil.which("heaptrack_print")):
        print("needs heaptrack and heaptrack_print on PATH (Debian: apt install heaptrack)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ampgate-tls-heap-") as tmp:
        work = Path(tmp)
        _, cert, key, ca_pem = server_files(trustme.CA(), work)
        node = start_node(
            work / "node", work / "node" / "ampgate.db",
            "--workers", "1", "--ocpp-tls-port", "0", "--tls-cert", str(cert), "--tls-key", str(key),
            "--max-chargers", str(args.connections),
        )  # fmt: skip
        tracer = load = None
        try:
            worker = node_processes(node)[-1]
            assert "worker_main" in " ".join(worker.cmdline()), worker.cmdline()
            data = work / "worker.heaptrack"
            tracer = subprocess.Popen(
                ["heaptrack", "-o", str(data), "-p", str(worker.pid)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            time.sleep(ATTACH_WAIT)
            idle_pss = pss_one(worker)
            cmd = [sys.executable, str(CLIENT), "127.0.0.1", str(node.ocpp_tls_port), str(args.connections)]
            cmd += ["--source", "127.0.0.2", "--tls", "--ca", str(ca_pem), "--inflight", str(args.inflight)]
            load = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            connect = read_line(load, TIMEOUT)
            time.sleep(HOLD)
            held_pss = pss_one(worker)
            os.kill(worker.pid, signal.SIGKILL)
            tracer.wait(timeout=TIMEOUT)
        finally:
            for p in (load, tracer):
                if p is not None and p.poll() is None:
                    p.kill()
            node.stop()
        files = sorted(work.glob("worker.heaptrack*"))
        if not files:
            print("heaptrack wrote no data", file=sys.stderr)
            return 1
        stacks = live_by_stack(files[0])
    n = int(connect["connected"])
    groups: dict[tuple[str, str], int] = defaultdict(int)
    for size, frames in stacks:
        groups[classify(frames)] += size
    total = sum(groups.values())
    rows = sorted(groups.items(), key=lambda kv: -kv[1])
    per_origin: dict[str, int] = defaultdict(int)
    for (origin, _), size in rows:
        per_origin[origin] += size
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "connections": n,
        "failed": int(connect["failed"]),
        "inflight": args.inflight,
        "worker_pss_kb_per_conn": round((held_pss - idle_pss) / max(1, n), 2),
        "heap_live_kb_per_conn": round(total / 1024 / max(1, n), 2),
        "by_origin_bytes_per_conn": {o: round(s / max(1, n)) for o, s in sorted(per_origin.items(), key=lambda kv: -kv[1])},
        "by_owner_bytes_per_conn": [
            {"origin": o, "owner": w, "bytes_per_conn": round(s / max(1, n))} for (o, w), s in rows if s / max(1, n) >= 16
        ],
    }  # fmt: skip
    print(f"{n:,} idle wss connections held by one worker ({result['failed']} failed)")
    print(f"{'worker PSS per connection':44}{result['worker_pss_kb_per_conn']:>10} KB")
    print(f"{'live heap per connection (heaptrack)':44}{result['heap_live_kb_per_conn']:>10} KB")
    for origin, b in result["by_origin_bytes_per_conn"].items():
        print(f"  {origin:42}{b:>10,} B")
    print("by the function that allocated (>= 16 B per connection):")
    for row in result["by_owner_bytes_per_conn"]:
        print(f"  {row['origin'][:36]:38}{row['owner'][:40]:42}{row['bytes_per_conn']:>8,} B")
    return emit(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
