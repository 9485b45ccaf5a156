"""kill -9 under load: SIGKILL the node at random points while `ampgate sim` chargers run transactions through it,
restart it on the same database each time, and check afterwards that every transaction message a charger saw
acknowledged is in the database exactly once, that no transaction id was handed out twice, and that every
charger told Accepted is still accepted.

    flock /tmp/bench.lock python bench/kill9.py --kills 100 [--chargers 40] [--protocol both] [--json OUT]
    python bench/kill9.py --kills 10 --chargers 20 --json out.json      # what tests/bench/test_kill9_smoke.py runs

What a charger saw is taken from the wire: the simulator connects to a recording WebSocket proxy in this process
(trio-websocket), which forwards every frame both ways and notes each CALLRESULT the node sends to one of the
charger's BootNotification / StartTransaction / MeterValues / StopTransaction / TransactionEvent CALLs (with the
CALL it answers) before forwarding it. The simulator itself reports counts only. While the node is down the
proxy answers upgrades with HTTP 503 and Retry-After: 1 (the simulator honours it), and a node that dies takes
its proxied links with it; the simulated chargers reconnect and resend what was not answered (1.6 §3.7,
2.0.1 [E04]), and they do not boot again: a charger the node forgot would get SecurityError for everything,
which the proxy counts too.

Load: 1.6 and/or 2.0.1 chargers (`--protocol`), each running transactions back to back on connector 2
(Authorize, start, a meter value every 0.5 s, stop after 3 s) and the simulator's MeterValues bench load at
`--rate` messages/s in a transaction of its own on connector 1. The node's up time before each kill is uniform
in [--min-up, --max-up] s (seeded). After the last restart the load goes on for --settle s, so what was in flight
at the last kill is resent and answered; then the simulator, the node (SIGTERM) and the proxy stop and the
database is read.

Prints JSON and a table; exit status 0 when nothing was lost, doubled or reused and every accepted charger is
still accepted, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import trio_websocket

from ampgate.clock import iso_utc, parse_iso
from nodeproc import NodeProc, finish_sim, free_port, start_node, start_sim

ID_TAG = "KILL9TAG"
# The actions whose answers are recorded: the boot (acceptance) and the transaction messages.
RECORDED = frozenset(
    {"BootNotification", "StartTransaction", "MeterValues", "StopTransaction", "TransactionEvent"}
)
# A proxied upgrade waits at most this long for the node's.
UPSTREAM_CONNECT_TIMEOUT = 5.0


def scenario(rate: float) -> str:
    return f"""
[run]
duration = 36000
connectors = 2
check = false
[transactions]
per_hour = 1800
duration = 3
meter_period = 0.5
[load]
message = "MeterValues"
rate = {rate}
start = 1
"""


# -- the recording proxy ---------------------------------------------------------------------------------------


@dataclass
class Ack:
    charger: str
    action: str
    request: dict[str, Any]
    result: dict[str, Any]
    life: int  # which start of the node answered it


@dataclass
class Wire:
    """What the proxy saw, shared with the main thread under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acks: list[Ack] = field(default_factory=list)
    call_errors: dict[str, int] = field(default_factory=dict)  # code -> count (node -> charger)
    refused: int = 0  # upgrades answered 503 while the node was down
    life: int = 0


class Proxy:
    """A WebSocket proxy from the simulator to the node on `upstream_port` that records acknowledgements."""

    def __init__(self, upstream_port: int, wire: Wire) -> None:
        self.upstream_port = upstream_port
        self.wire = wire
        self.port = 0
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), name="kill9-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")

    def stop(self) -> None:
        if self._token is not None and self._cancel is not None:
            try:
                self._token.run_sync_soon(self._cancel.cancel)
            except trio.RunFinishedError:
                pass  # it ended already (see its thread's output)
        if self._thread is not None:
            self._thread.join(10)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._cancel = scope
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    trio_websocket.serve_websocket, self._handle, "127.0.0.1", 0, None
                )
                self.port = server.port
                self._ready.set()

    async def _handle(self, request: trio_websocket.WebSocketRequest) -> None:
        path = request.path
        charger = path.rsplit("/", 1)[-1]
        auth = [(k, v) for k, v in request.headers if k.lower() == b"authorization"]
        accepted = False
        try:
            async with trio_websocket.open_websocket(
                "127.0.0.1",
                self.upstream_port,
                path,
                use_ssl=False,
                subprotocols=request.proposed_subprotocols,
                extra_headers=auth,
                connect_timeout=UPSTREAM_CONNECT_TIMEOUT,
                disconnect_timeout=1,
            ) as upstream:
                downstream = await request.accept(subprotocol=upstream.subprotocol)
                accepted = True
                pending: dict[str, tuple[str, dict[str, Any]]] = {}
                async with trio.open_nursery() as pumps:
                    pumps.start_soon(self._up, downstream, upstream, pending, pumps.cancel_scope)
                    pumps.start_soon(self._down, upstream, downstream, charger, pending, pumps.cancel_scope)
                # The node's side ended (it was killed, or the charger left): end the charger's side too.
                with trio.move_on_after(1):
                    await downstream.aclose(1011)
        except Exception:
            # The node is down (refused, reset, no handshake): tell the charger to come back in a second.
            if not accepted:
                with self.wire.lock:
                    self.wire.refused += 1
                with trio.move_on_after(1):
                    await request.reject(503, extra_headers=[(b"Retry-After", b"1")])

    async def _up(
        self,
        downstream: trio_websocket.WebSocketConnection,
        upstream: trio_websocket.WebSocketConnection,
        pending: dict[str, tuple[str, dict[str, Any]]],
        scope: trio.CancelScope,
    ) -> None:
        try:
            while True:
                text = await downstream.get_message()
                msg = json.loads(text)
                if isinstance(msg, list) and len(msg) == 4 and msg[0] == 2 and msg[2] in RECORDED:
                    pending[msg[1]] = (msg[2], msg[3])
                await upstream.send_message(text)
        except (trio_websocket.ConnectionClosed, trio.BrokenResourceError, ValueError):
            pass
        scope.cancel()

    async def _down(
        self,
        upstream: trio_websocket.WebSocketConnection,
        downstream: trio_websocket.WebSocketConnection,
        charger: str,
        pending: dict[str, tuple[str, dict[str, Any]]],
        scope: trio.CancelScope,
    ) -> None:
        try:
            while True:
                text = await upstream.get_message()
                msg = json.loads(text)
                if isinstance(msg, list) and len(msg) >= 3 and msg[0] in (3, 4):
                    call = pending.pop(msg[1], None)
                    with self.wire.lock:
                        if msg[0] == 3 and call is not None:
                            self.wire.acks.append(Ack(charger, call[0], call[1], msg[2], self.wire.life))
                        elif msg[0] == 4:
                            code = str(msg[2])
                            self.wire.call_errors[code] = self.wire.call_errors.get(code, 0) + 1
                # Recorded before it is forwarded: the charger may have seen it from here on.
                await downstream.send_message(text)
        except (trio_websocket.ConnectionClosed, trio.BrokenResourceError, ValueError):
            pass
        scope.cancel()


# -- the check ---------------------------------------------------------------------------------------------------


def _at(value: str) -> str:
    parsed = parse_iso(value)
    assert parsed is not None
    return iso_utc(parsed)


def verify(db: Path, acks: list[Ack]) -> dict[str, Any]:
    """Every acknowledged message against the database (after the node's clean stop)."""
    conn = sqlite3.connect(db)
    q = conn.execute
    acked: dict[str, int] = {}
    lost: dict[str, int] = {}
    lost_examples: list[dict[str, Any]] = []
    doubled = 0
    ids: dict[int, tuple[Any, ...]] = {}
    reused: set[int] = set()
    accepted: set[str] = set()

    def miss(a: Ack) -> None:
        lost[a.action] = lost.get(a.action, 0) + 1
        if len(lost_examples) < 10:
            lost_examples.append(
                {"charger": a.charger, "action": a.action, "request": a.request, "life": a.life}
            )

    try:
        for a in acks:
            acked[a.action] = acked.get(a.action, 0) + 1
            req, res = a.request, a.result
            if a.action == "BootNotification":
                if res.get("status") == "Accepted":
                    accepted.add(a.charger)
            elif a.action == "StartTransaction":
                key = (
                    a.charger,
                    req["connectorId"],
                    _at(req["timestamp"]),
                    req["idTag"],
                    float(req["meterStart"]),
                )
                rows = q(
                    "SELECT id FROM transactions WHERE charger_id = ? AND connector_id = ? AND started_at = ?"
                    " AND protocol = 'ocpp1.6' AND id_token = ? AND meter_start_wh = ?",
                    key,
                ).fetchall()
                if not rows:
                    miss(a)
                elif len(rows) > 1 or rows[0][0] != res["transactionId"]:
                    doubled += 1
                if ids.setdefault(res["transactionId"], key) != key:
                    reused.add(res["transactionId"])
            elif a.action == "MeterValues":
                tx = req.get("transactionId")
                if tx is None or "meterValue" not in req:
                    continue  # 1.6 readings outside a transaction and 2.0.1 MeterValues are not kept
                for mv in req["meterValue"]:
                    found = q(
                        "SELECT count(*) FROM meter_samples s JOIN transactions t ON t.id = s.transaction_id"
                        " WHERE s.transaction_id = ? AND s.at = ? AND t.charger_id = ?",
                        (tx, _at(mv["timestamp"]), a.charger),
                    ).fetchone()[0]
                    if not found:
                        miss(a)
                        break
            elif a.action == "StopTransaction":
                row = q(
                    "SELECT stopped_at FROM transactions WHERE id = ? AND charger_id = ?",
                    (req["transactionId"], a.charger),
                ).fetchone()
                if row is None or row[0] is None:
                    miss(a)
            elif a.action == "TransactionEvent":
                rows = q(
                    "SELECT count(*) FROM transactions t JOIN transaction_events e ON e.transaction_id = t.id"
                    " WHERE t.charger_id = ? AND t.remote_id = ? AND e.seq_no = ?",
                    (a.charger, req["transactionInfo"]["transactionId"], req["seqNo"]),
                ).fetchone()[0]
                if rows == 0:
                    miss(a)
        not_accepted = sorted(
            cid
            for cid in accepted
            if (q("SELECT accepted FROM chargers WHERE id = ?", (cid,)).fetchone() or (0,))[0] != 1
        )
        transactions = q("SELECT count(*), max(id) FROM transactions").fetchone()
    finally:
        conn.close()
    return {
        "acked": acked,
        "acked_total": sum(acked.values()),
        "lost": lost,
        "lost_total": sum(lost.values()),
        "lost_examples": lost_examples,
        "doubled": doubled,
        "reused_ids": sorted(reused)[:20],
        "reused_total": len(reused),
        "accepted_chargers": len(accepted),
        "accepted_forgotten": not_accepted,
        "transactions_in_db": transactions[0],
        "highest_id": transactions[1],
    }


# -- the run -----------------------------------------------------------------------------------------------------


def register_tag(node: NodeProc) -> None:
    """The id tag the chargers present, Accepted (POST /api/v1/id-tokens with the first admin token)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{node.api_port}/api/v1/id-tokens",
        data=json.dumps({"id_token": ID_TAG, "status": "Accepted"}).encode(),
        headers={"Authorization": f"Bearer {node.admin_token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=15) as resp:
        if resp.status != 201:
            raise RuntimeError(f"registering {ID_TAG}: HTTP {resp.status}")


def run(a: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(a.seed)
    workdir = a.workdir or Path(tempfile.mkdtemp(prefix="ampgate-kill9-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "ampgate.db"
    port = free_port()
    node_args = ("--store-sync", a.store_sync)
    node = start_node(workdir, db, *node_args, ocpp_port=port)
    register_tag(node)
    wire = Wire()
    proxy = Proxy(port, wire)
    proxy.start()
    protocols = ["1.6", "2.0.1"] if a.protocol == "both" else [a.protocol]
    per = max(1, a.chargers // len(protocols))
    sims = []
    t0 = time.monotonic()
    restarts: list[float] = []
    try:
        for proto in protocols:
            prefix = "K16-" if proto == "1.6" else "K201-"
            sims.append(
                start_sim(
                    workdir,
                    f"ws://127.0.0.1:{proxy.port}/ocpp",
                    per,
                    scenario(a.rate / len(protocols)),
                    *("--protocol", proto, "--id-prefix", prefix, "--id-tag", ID_TAG, "--seed", str(a.seed)),
                    name=f"sim-{proto}",
                )
            )
        for k in range(a.kills):
            time.sleep(rng.uniform(a.min_up, a.max_up))
            node.kill()
            with wire.lock:
                wire.life += 1
            t = time.monotonic()
            node = start_node(workdir, db, *node_args, ocpp_port=port)
            restarts.append(round(time.monotonic() - t, 2))
            print(f"kill {k + 1}/{a.kills}: restarted in {restarts[-1]:.2f} s", file=sys.stderr, flush=True)
        time.sleep(a.settle)
        reports = []
        for proc, _ in sims:
            proc.send_signal(signal.SIGINT)
        for proc, report in sims:
            reports.append(finish_sim(proc, report, 60))
    finally:
        for proc, _ in sims:
            if proc.poll() is None:
                proc.kill()
        rc = node.stop()
        proxy.stop()
    with wire.lock:
        acks = list(wire.acks)
        call_errors = dict(wire.call_errors)
        refused = wire.refused
    result = verify(db, acks)
    sim_errors: dict[str, int] = {}
    for r in reports:
        for kind, n in r["errors"].items():
            sim_errors[kind] = sim_errors.get(kind, 0) + n
    result.update(
        {
            "bench": "kill9",
            "kills": a.kills,
            "chargers": per * len(protocols),
            "protocols": protocols,
            "store_sync": a.store_sync,
            "seed": a.seed,
            "wall_s": round(time.monotonic() - t0, 1),
            "restart_s_max": max(restarts, default=None),
            "node_exit_at_end": rc,
            "call_errors_seen": call_errors,
            "upgrades_refused_while_down": refused,
            "sim_errors": sim_errors,
            "sim_transactions": [r["transactions"] for r in reports],
            "command": " ".join(["python", *sys.argv]),
        }
    )
    result["ok"] = (
        result["lost_total"] == 0
        and result["doubled"] == 0
        and result["reused_total"] == 0
        and not result["accepted_forgotten"]
        and call_errors.get("SecurityError", 0) == 0
    )
    return result


def table(r: dict[str, Any]) -> str:
    rows = [
        ("kills survived", f"{r['kills']} ({'ok' if r['ok'] else 'FAILED'})"),
        ("chargers", f"{r['chargers']} ({', '.join(r['protocols'])}); fsync: {r['store_sync']}"),
        ("acknowledged messages", f"{r['acked_total']}  {r['acked']}"),
        ("lost", f"{r['lost_total']}  {r['lost']}"),
        ("doubled / ids reused", f"{r['doubled']} / {r['reused_total']}"),
        ("accepted chargers", f"{r['accepted_chargers']}, forgotten {len(r['accepted_forgotten'])}"),
        ("CALLERRORs seen", json.dumps(r["call_errors_seen"])),
        ("transactions in db", f"{r['transactions_in_db']} (highest id {r['highest_id']})"),
        ("wall", f"{r['wall_s']} s, restart max {r['restart_s_max']} s"),
    ]
    return "\n".join(f"{k:<24} {v}" for k, v in rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=100)
    p.add_argument("--chargers", type=int, default=40)
    p.add_argument("--protocol", choices=("1.6", "2.0.1", "both"), default="both")
    p.add_argument("--rate", type=float, default=100.0, help="bench-load MeterValues/s over the fleet")
    p.add_argument("--min-up", type=float, default=1.0)
    p.add_argument("--max-up", type=float, default=4.0)
    p.add_argument("--settle", type=float, default=6.0)
    p.add_argument("--store-sync", choices=("durable", "full", "normal"), default="durable")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    r = run(a)
    print(json.dumps(r, indent=2))
    print(table(r))
    if a.json:
        a.json.write_text(json.dumps(r, indent=2) + "\n")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
