"""The TLS benchmark (security profiles 2 and 3): what an idle wss charger costs the node beside a plain ws one,
and how many TLS handshakes a second the node makes at 10k chargers, full and resumed.

    python bench/tls.py --connections 10000 [--procs 2] [--workers 2] [--json OUT]

Steps (every wait bounded, every child killed on exit):
  1. a fresh node (`ampgate serve`, its own database, wss on an ECDSA P-256 certificate from a throwaway CA) with
     --workers gateway workers; its PSS (control plane + workers) once idle;
  2. --procs load processes (bench/tls_client.py: Python's ssl, i.e. OpenSSL, non-blocking) open
     --connections WebSocket connections over plain ws, each done at the node's `101 Switching Protocols`
     (nothing else is sent: an idle charger), hold them, and the node's PSS is taken again: the growth per
     connection is `kb_per_conn` (socket buffers are kernel memory, not in PSS, and not counted);
  3. the same on a second fresh node over wss: `kb_per_conn` for TLS, and full handshakes per second (all
     connections over the slowest load process's time from its first connect to its last 101), with the
     node's CPU per handshake;
  4. every load process closes its connections and connects again offering each connection's TLS session:
     resumed handshakes per second (how many were resumed is counted; the workers share their session-ticket
     keys, so a reconnect resumes on whichever worker it lands);
  5. the physical limit: OpenSSL (Python's ssl on memory BIOs) doing both ends of the same handshake in one
     process, full and resumed, per core: the most a core could do if the node did nothing else.
Prints a table and JSON (--json writes it). The target (issue 16): <= 12 KB per idle TLS connection.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import trustme

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from nodeproc import NodeProc, start_node  # noqa: E402

CLIENT = HERE / "tls_client.py"
TARGET_KB_PER_TLS_CONN = 12.0
IDLE_SETTLE = 2.0
HOLD = 3.0
PHASE_TIMEOUT = 300.0


def server_files(ca: trustme.CA, work: Path) -> tuple[trustme.LeafCert, Path, Path, Path]:
    """The node's wss certificate for every TLS bench: ECDSA P-256 for 127.0.0.1 issued by `ca`, its chain, key
    and the CA written to `work`. Returns (leaf, cert, key, ca_pem)."""
    leaf = ca.issue_cert("127.0.0.1", key_type=trustme.KeyType.ECDSA)
    cert, key, ca_pem = work / "cert.pem", work / "key.pem", work / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_pem))
    return leaf, cert, key, ca_pem


def emit(results: dict[str, Any], path: Path | None) -> int:
    """Print the bench's JSON, write it to `path` if given; the exit status."""
    print(json.dumps(results, indent=2))
    if path is not None:
        path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def node_processes(node: NodeProc) -> list[psutil.Process]:
    root = psutil.Process(node.pid)
    return [root, *root.children(recursive=True)]


def pss_kb(procs: list[psutil.Process]) -> int:
    return sum(pss_one(p) for p in procs)


def pss_one(p: psutil.Process) -> int:
    with open(f"/proc/{p.pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss for {p.pid}")


def cpu_s(procs: list[psutil.Process]) -> float:
    t = 0.0
    for p in procs:
        c = p.cpu_times()
        t += c.user + c.system
    return t


def read_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The next JSON line of a load process; RuntimeError if it ends or stays silent past `timeout`."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    buf = ""
    while time.monotonic() < deadline:
        chunk = proc.stdout.readline()
        if chunk:
            buf += chunk
            if buf.endswith("\n"):
                return dict(json.loads(buf))
        elif proc.poll() is not None:
            raise RuntimeError(f"load process exited with {proc.returncode}")
        else:
            time.sleep(0.05)
    raise RuntimeError("load process silent")


def run_load(
    node: NodeProc, port: int, total: int, procs: int, *, tls: bool, ca: str, prefix: str, inflight: int = 256
) -> dict[str, Any]:
    """Connect `total` chargers from `procs` processes; hold; for TLS reconnect with resumption."""
    node_procs = node_processes(node)
    time.sleep(IDLE_SETTLE)
    idle = pss_kb(node_procs)
    idle_control = pss_one(node_procs[0])
    cpu0 = cpu_s(node_procs)
    loads = []
    per = total // procs
    for i in range(procs):
        cmd = [sys.executable, str(CLIENT), "127.0.0.1", str(port), str(per), "--source", f"127.0.0.{2 + i}"]
        cmd += ["--prefix", f"{prefix}{i}", "--phase-timeout", str(PHASE_TIMEOUT)]
        cmd += ["--inflight", str(inflight)]
        if tls:
            cmd += ["--tls", "--ca", ca]
        loads.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    try:
        connect = [read_line(p, PHASE_TIMEOUT + 30) for p in loads]
        cpu1 = cpu_s(node_procs)
        time.sleep(HOLD)
        held = pss_kb(node_procs)
        held_control = pss_one(node_procs[0])
        connected = sum(int(c["connected"]) for c in connect)
        out: dict[str, Any] = {
            "connections": connected,
            "failed": sum(int(c["failed"]) for c in connect),
            "node_pss_idle_kb": idle,
            "node_pss_held_kb": held,
            "kb_per_conn": round((held - idle) / max(1, connected), 2),
            # Of which the control plane (the rest: the gateway workers).
            "control_plane_kb_per_conn": round((held_control - idle_control) / max(1, connected), 2),
            "handshakes_per_s": round(connected / max(float(c["seconds"]) for c in connect)),
            "node_cpu_us_per_handshake": round((cpu1 - cpu0) / max(1, connected) * 1e6, 1),
        }
        if tls:
            for p in loads:
                assert p.stdin is not None
                p.stdin.write("reconnect\n")
                p.stdin.flush()
            cpu2 = cpu_s(node_procs)
            again = [read_line(p, PHASE_TIMEOUT + 30) for p in loads]
            cpu3 = cpu_s(node_procs)
            reconnected = sum(int(c["connected"]) for c in again)
            out["resumed"] = {
                "connections": reconnected,
                "failed": sum(int(c["failed"]) for c in again),
                "resumed": sum(int(c["resumed"]) for c in again),
                "handshakes_per_s": round(reconnected / max(float(c["seconds"]) for c in again)),
                # Includes closing the previous connections (their Disconnected events).
                "node_cpu_us_per_handshake": round((cpu3 - cpu2) / max(1, reconnected) * 1e6, 1),
            }
        return out
    finally:
        for p in loads:
            if p.poll() is None and p.stdin is not None:
                try:
                    p.stdin.write("quit\n")
                    p.stdin.flush()
                except OSError:
                    pass
        for p in loads:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def memory_contexts(cert: trustme.LeafCert, ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for handshakes on memory BIOs: `cert` served, `ca` trusted."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.check_hostname = False
    return server, client


def memory_handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Both ends of one handshake in this process on memory BIOs (offering `session`), then one byte from the
    server so a TLS 1.3 ticket reaches the client. Returns (server side, client side)."""
    cin, cout, sin, sout = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(cin, cout, server_hostname="127.0.0.1", session=session)
    s = server.wrap_bio(sin, sout, server_side=True)
    c_done = s_done = False
    for _ in range(20):
        if not c_done:
            try:
                c.do_handshake()
                c_done = True
            except ssl.SSLWantReadError:
                pass
        sin.write(cout.read())
        if not s_done:
            try:
                s.do_handshake()
                s_done = True
            except ssl.SSLWantReadError:
                pass
        cin.write(sout.read())
        if c_done and s_done:
            break
    s.write(b"x")
    cin.write(sout.read())
    c.read(1)
    return s, c


def openssl_limit(cert: trustme.LeafCert, ca: trustme.CA, seconds: float = 2.0) -> dict[str, float]:
    """Handshakes a second with both ends in this process on memory BIOs (TLS 1.3, ECDSA P-256): full, then
    resumed. The physical limit of one core doing the node's and the charger's side."""
    server, client = memory_contexts(cert, ca)

    def one(session: ssl.SSLSession | None) -> ssl.SSLSession | None:
        return memory_handshake(server, client, session)[1].session

    out = {}
    for name, resume in (("full_per_s", False), ("resumed_per_s", True)):
        session = one(None) if resume else None
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            s = one(session)
            if resume:
                session = s
            n += 1
        out[name] = round(n / (time.perf_counter() - start))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=256, help="handshakes in flight per load process")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    ca = trustme.CA()
    results: dict[str, Any] = {"connections": args.connections, "procs": args.procs, "workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="ampgate-tls-bench-") as tmp:
        work = Path(tmp)
        leaf, cert, key, ca_pem = server_files(ca, work)
        for mode in ("plain", "tls"):
            node = start_node(
                work / mode,
                work / mode / "ampgate.db",
                "--workers", str(args.workers),
                "--ocpp-tls-port", "0", "--tls-cert", str(cert), "--tls-key", str(key),
                "--max-chargers", str(args.connections),
            )  # fmt: skip
            try:
                port = node.ocpp_tls_port if mode == "tls" else node.ocpp_port
                assert port is not None
                results[mode] = run_load(
                    node, port, args.connections, args.procs, tls=mode == "tls", ca=str(ca_pem), prefix=mode,
                    inflight=args.inflight,
                )  # fmt: skip
            finally:
                node.stop()
        results["openssl_both_ends_one_core"] = openssl_limit(leaf, ca)
    plain, tls = results["plain"], results["tls"]
    results["tls_extra_kb_per_conn"] = round(tls["kb_per_conn"] - plain["kb_per_conn"], 2)
    results["target_kb_per_tls_conn"] = TARGET_KB_PER_TLS_CONN
    results["target_met"] = tls["kb_per_conn"] <= TARGET_KB_PER_TLS_CONN
    limit = results["openssl_both_ends_one_core"]
    print(f"{'':34}{'plain ws':>12}{'wss':>12}")
    print(f"{'connections held':34}{plain['connections']:>12,}{tls['connections']:>12,}")
    print(f"{'node PSS per idle connection (KB)':34}{plain['kb_per_conn']:>12}{tls['kb_per_conn']:>12}")
    print(f"{'handshakes/s (full)':34}{plain['handshakes_per_s']:>12,}{tls['handshakes_per_s']:>12,}")
    print(
        f"{'node CPU per handshake (us)':34}{plain['node_cpu_us_per_handshake']:>12}{tls['node_cpu_us_per_handshake']:>12}"
    )
    r = tls["resumed"]
    print(f"{'wss reconnect, resumed':34}{'':>12}{r['resumed']:>12,}")
    print(f"{'handshakes/s (resumed)':34}{'':>12}{r['handshakes_per_s']:>12,}")
    print(f"{'node CPU per resumed (us)':34}{'':>12}{r['node_cpu_us_per_handshake']:>12}")
    print(
        f"OpenSSL both ends, one core: {limit['full_per_s']:,} full/s, {limit['resumed_per_s']:,} resumed/s"
    )
    return emit(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
