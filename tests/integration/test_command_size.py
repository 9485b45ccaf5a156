"""An operator command larger than `--max-message` as an OCPP message is refused through the HTTP API (413,
code message_too_large, field payload, the limit named), sent or queued, and nothing of it reaches the charger:
its connection, its next command and the other chargers are unharmed."""

from __future__ import annotations

import asyncio
import json

import websockets

from tests.integration.ocpp_clients import boot_payload, call

LIMIT = 4096


async def charger(url: str, cid: str, got: list, stop: asyncio.Event) -> None:
    """A 1.6 charger that boots, then answers every CALL of the node Accepted and records its action."""
    async with websockets.connect(f"{url}/{cid}", subprotocols=["ocpp1.6"]) as ws:
        uid, msg = call("BootNotification", boot_payload("ocpp1.6"))
        await ws.send(msg)
        assert json.loads(await ws.recv())[:2] == [3, uid]
        got.append("booted")
        while not stop.is_set():
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
            except TimeoutError:
                continue
            if frame[0] == 2:
                got.append(frame[2])
                await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
        # Still alive at the end: a heartbeat of ours is answered.
        uid, msg = call("Heartbeat", {})
        await ws.send(msg)
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))[:2] == [3, uid]
        got.append("heartbeat ok")


def test_a_command_over_max_message_is_refused_cleanly(node_factory):
    node = node_factory("--max-message", str(LIMIT))
    big = {"vendorId": "acme", "data": "x" * (2 * LIMIT)}
    fits = {"vendorId": "acme", "data": "x" * (LIMIT // 2)}

    async def scenario():
        got_a: list = []
        got_b: list = []
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(charger(node.ocpp_url, "SIZE-A", got_a, stop)),
            asyncio.create_task(charger(node.ocpp_url, "SIZE-B", got_b, stop)),
        ]
        for _ in range(100):
            if got_a and got_b:
                break
            await asyncio.sleep(0.05)

        def api_calls():
            with node.api() as api:
                now = api.post("/chargers/SIZE-A/commands/DataTransfer", json=big)
                queued = api.post("/chargers/SIZE-A/commands/DataTransfer?queue=true", json=big)
                listed = api.get("/chargers/SIZE-A/commands").json()
                ok = api.post("/chargers/SIZE-A/commands/DataTransfer", json=fits)
                other = api.post("/chargers/SIZE-B/commands/Reset", json={"type": "Soft"})
                return now, queued, listed, ok, other

        now, queued, listed, ok, other = await asyncio.to_thread(api_calls)
        stop.set()
        await asyncio.gather(*tasks)
        return now, queued, listed, ok, other, got_a, got_b

    now, queued, listed, ok, other, got_a, got_b = asyncio.run(scenario())
    for r in (now, queued):
        assert r.status_code == 413, r.text
        body = r.json()
        assert body["code"] == "message_too_large" and body["field"] == "payload"
        assert str(LIMIT) in body["message"] and "--max-message" in body["message"]
    # Nothing recorded or queued for the refused ones.
    assert listed["items"] == []
    # The charger's connection and queue are unharmed: the next command goes first (the big one never went),
    # the other charger too.
    assert ok.status_code == 200 and ok.json() == {"status": "Accepted"}
    assert other.status_code == 200
    assert got_a == ["booted", "DataTransfer", "heartbeat ok"]
    assert got_b == ["booted", "Reset", "heartbeat ok"]
