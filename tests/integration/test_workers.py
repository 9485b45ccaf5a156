"""Several gateway workers: chargers spread over them, all listed and reachable; a worker killed with SIGKILL is
restarted while the other workers' chargers stay connected."""

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

CHARGERS = 25
PER_WORKER_CAP = 10  # small cap so 25 chargers must spread over all 3 workers


def health(node) -> dict:
    with node.api() as api:
        return api.get("/health").json()


async def heartbeat(ws) -> bool:
    uid, msg = call("Heartbeat", {})
    await ws.send(msg)
    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return reply[:2] == [3, uid]


def test_chargers_spread_over_workers_and_survive_a_worker_kill(node_factory):
    node = node_factory("--workers", "3", "--worker-max-connections", str(PER_WORKER_CAP))

    async def scenario():
        sockets: dict[str, websockets.ClientConnection] = {}
        async with contextlib.AsyncExitStack() as stack:
            for i in range(CHARGERS):
                cid = f"MW{i:03d}"
                ws = await stack.enter_async_context(
                    websockets.connect(f"{node.ocpp_url}/{cid}", subprotocols=["ocpp1.6"])
                )
                uid, msg = call("BootNotification", boot_payload("ocpp1.6"))
                await ws.send(msg)
                assert json.loads(await ws.recv())[1] == uid
                sockets[cid] = ws

            # Stats arrive every 250 ms; wait until they account for every charger.
            h = await asyncio.to_thread(health, node)
            for _ in range(100):
                if sum(w["connections"] for w in h["workers"]) == CHARGERS:
                    break
                await asyncio.sleep(0.1)
                h = await asyncio.to_thread(health, node)
            assert len(h["workers"]) == 3
            counts = [w["connections"] for w in h["workers"]]
            assert sum(counts) == CHARGERS and all(0 < c <= PER_WORKER_CAP for c in counts), counts

            listed = await asyncio.to_thread(lambda: node.get("/chargers?limit=100").json())
            assert {c["id"] for c in listed["items"] if c["online"]} == set(sockets)
            for ws in sockets.values():
                assert await heartbeat(ws)

            # Kill the busiest worker.
            victim = max(h["workers"], key=lambda w: w["connections"])
            os.kill(victim["pid"], signal.SIGKILL)
            for _ in range(150):
                h2 = await asyncio.to_thread(health, node)
                w = next(x for x in h2["workers"] if x["worker"] == victim["worker"])
                if w["alive"] and w["pid"] != victim["pid"]:
                    break
                await asyncio.sleep(0.1)
            assert w["alive"] and w["pid"] != victim["pid"], "the killed worker was not restarted"
            assert w["restarts"] == 1 and w["generation"] != victim["generation"]

            # The other workers' chargers are still connected and served; the victim's were dropped.
            lost = set()
            for cid, ws in sockets.items():
                try:
                    assert await heartbeat(ws)
                except websockets.exceptions.ConnectionClosed:
                    lost.add(cid)
            assert len(lost) == victim["connections"]
            # The dropped chargers reconnect (to whichever worker has room) and are served again.
            for cid in sorted(lost):
                async with websockets.connect(f"{node.ocpp_url}/{cid}", subprotocols=["ocpp1.6"]) as ws:
                    assert await heartbeat(ws)

    asyncio.run(scenario())


def test_health_lists_every_worker_pid_and_needs_no_token(node_factory):
    node = node_factory("--workers", "2")
    import httpx

    r = httpx.get(f"{node.api_url}/health", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert sorted(w["pid"] for w in body["workers"]) == sorted(node.worker_pids)
    assert all(w["alive"] for w in body["workers"]) and body["status"] == "ok"
    assert httpx.get(f"{node.api_url}/chargers", timeout=10).status_code == 401


def test_reuseport_mode_serves_chargers_on_every_worker(node_factory):
    node = node_factory("--workers", "2", "--listen-mode", "reuseport")

    async def scenario():
        async with contextlib.AsyncExitStack() as stack:
            for i in range(20):
                ws = await stack.enter_async_context(
                    websockets.connect(f"{node.ocpp_url}/RP{i:02d}", subprotocols=["ocpp2.0.1"])
                )
                uid, msg = call("BootNotification", boot_payload("ocpp2.0.1"))
                await ws.send(msg)
                assert json.loads(await ws.recv())[:2] == [3, uid]
                assert await heartbeat(ws)
            for _ in range(100):
                h = await asyncio.to_thread(health, node)
                if sum(w["connections"] for w in h["workers"]) == 20:
                    break
                await asyncio.sleep(0.1)
            return [w["connections"] for w in h["workers"]]

    counts = asyncio.run(scenario())
    # The kernel hashes connections over both workers' sockets.
    assert sum(counts) == 20 and all(c > 0 for c in counts), counts


@pytest.mark.slow
def test_workers_outlive_the_spawning_threads_idle_timeout(node_factory):
    # PR_SET_PDEATHSIG follows the thread that forked the worker; trio's spawner threads exit after ~10 s idle.
    # Workers must be bound to the control plane's main thread, so they are still the same processes later.
    node = node_factory("--workers", "2")
    time.sleep(13)
    h = health(node)
    assert sorted(w["pid"] for w in h["workers"]) == sorted(node.worker_pids)
    assert all(w["alive"] and w["restarts"] == 0 for w in h["workers"])
