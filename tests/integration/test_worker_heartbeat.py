"""A gateway worker that is alive but hung (SIGSTOP: the process exists, its loop answers nothing) is noticed by
the link heartbeat and replaced: killed, restarted with a new pid, announced (`gateway.worker_down`, reason hung)
and logged. Its chargers reconnect to the new worker; the other worker's chargers kept being served throughout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time

import pytest
import websockets

from tests.integration.ocpp_clients import boot_payload, call

HEARTBEAT_S = 0.5  # hung after 3 silent intervals: replaced within ~2 s
REPLACED_WITHIN = 15.0  # the deadline the test polls against (generous for a loaded 2-core box)
PER_WORKER = 3


def health(node) -> dict:
    with node.api() as api:
        return api.get("/health").json()


async def heartbeat(ws) -> bool:
    uid, msg = call("Heartbeat", {})
    await ws.send(msg)
    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return reply[:2] == [3, uid]


def test_a_hung_worker_is_replaced_while_the_other_keeps_serving(node_factory):
    node = node_factory(
        "--workers",
        "2",
        "--worker-max-connections",
        str(PER_WORKER),
        "--worker-heartbeat-s",
        str(HEARTBEAT_S),
    )

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            sockets = {}
            for i in range(2 * PER_WORKER):
                cid = f"HB{i:02d}"
                ws = await stack.enter_async_context(
                    websockets.connect(f"{node.ocpp_url}/{cid}", subprotocols=["ocpp1.6"])
                )
                uid, msg = call("BootNotification", boot_payload("ocpp1.6"))
                await ws.send(msg)
                assert json.loads(await ws.recv())[1] == uid
                sockets[cid] = ws
            # Stats every 250 ms: wait until both workers account for their full share.
            deadline = time.monotonic() + 10
            while True:
                h = await asyncio.to_thread(health, node)
                if [w["connections"] for w in h["workers"]] == [PER_WORKER, PER_WORKER]:
                    break
                assert time.monotonic() < deadline, h
                await asyncio.sleep(0.1)
            assert all(w["state"] == "up" for w in h["workers"]) and h["status"] == "ok"

            victim = h["workers"][0]
            # Which worker holds each charger: the worker index is the top byte of its connection id.
            connected = await asyncio.to_thread(
                lambda: node.get("/events?type=charger.connected&limit=100").json()["items"]
            )
            worker_of = {e["charger_id"]: e["conn_id"] >> 56 for e in connected}
            hung = {cid for cid in sockets if worker_of[cid] == victim["worker"]}
            others = [cid for cid in sockets if cid not in hung]
            assert len(hung) == PER_WORKER and len(others) == PER_WORKER

            os.kill(victim["pid"], signal.SIGSTOP)
            stopped_at = time.monotonic()
            # Until it is replaced, the other worker's chargers are asked for a heartbeat round after round: every
            # one is answered.
            rounds = 0
            replaced = None
            while replaced is None:
                assert time.monotonic() - stopped_at < REPLACED_WITHIN, "the hung worker was not replaced"
                for cid in others:
                    assert await heartbeat(sockets[cid])
                rounds += 1
                h = await asyncio.to_thread(health, node)
                w = h["workers"][0]
                if w["pid"] != victim["pid"] and w["state"] == "up":
                    replaced = w
            took = time.monotonic() - stopped_at
            assert replaced["alive"] and replaced["generation"] != victim["generation"]
            assert replaced["restarts"] == 1 and replaced["last_error"] is None
            assert rounds >= 1
            # The hung worker's connections closed with its process; they reconnect (to the new worker, the other
            # one is full) and are served.
            for cid in sorted(hung):
                with pytest.raises(websockets.exceptions.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(sockets[cid].recv(), 10)
                async with websockets.connect(f"{node.ocpp_url}/{cid}", subprotocols=["ocpp1.6"]) as ws:
                    assert await heartbeat(ws)
            return took, victim["pid"]

    took, old_pid = asyncio.run(scenario())
    assert took < REPLACED_WITHIN
    # The old process is gone (killed and reaped, not left stopped).
    assert not os.path.exists(f"/proc/{old_pid}")
    events = node.get("/events?type=gateway.worker_down").json()["items"]
    assert len(events) == 1, events
    e = events[0]
    assert e["worker"] == 0 and e["reason"] == "hung" and e["error"].startswith("hung: no heartbeat answer")
    assert "did not answer the link heartbeat" in node.log()
