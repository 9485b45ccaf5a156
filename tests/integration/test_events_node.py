"""The event bus of a real node, in-process (real gateway workers, sockets and SQLite): a trio-websocket charger's
session and an operator's command through the HTTP API publish the events the seams promise, in order, with the
payloads they carry."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import trio
from trio_websocket import open_websocket_url

from ampgate.config import NodeConfig
from ampgate.events import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    CommandAnswered,
    CommandSent,
    ConnectorStatusChanged,
    Event,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from ampgate.node import Node


async def call(ws, uid: str, action: str, payload: dict) -> dict:
    await ws.send_message(json.dumps([2, uid, action, payload]))
    reply = json.loads(await ws.get_message())
    assert reply[:2] == [3, uid], reply
    return reply[2]


def test_a_session_publishes_its_events(tmp_path: Path) -> None:
    config = NodeConfig(
        ocpp_host="127.0.0.1",
        ocpp_port=0,
        api_port=0,
        public_host="127.0.0.1",
        public_port=0,
        db_path=str(tmp_path / "events.db"),
        workers=1,
    )

    async def main() -> None:
        node = Node(config)
        events = node.bus.subscribe()
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            url = f"ws://127.0.0.1:{node.gateway.ocpp_port}/ocpp/EV1"
            async with open_websocket_url(url, subprotocols=["ocpp1.6"]) as ws:
                await call(
                    ws, "b", "BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "A1"}
                )
                status = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
                await call(ws, "s", "StatusNotification", status)
                start = {
                    "connectorId": 1,
                    "idTag": "TAG",
                    "meterStart": 100,
                    "timestamp": "2026-11-30T08:00:00Z",
                }
                tx = (await call(ws, "t", "StartTransaction", start))["transactionId"]
                sample = {"value": "16.0", "measurand": "Current.Import", "phase": "L1", "unit": "A"}
                reading = {"timestamp": "2026-11-30T08:01:00Z", "sampledValue": [sample]}
                await call(
                    ws, "m", "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [reading]}
                )
                stop = {"transactionId": tx, "meterStop": 900, "timestamp": "2026-11-30T08:02:00Z"}
                await call(ws, "x", "StopTransaction", stop)

                async def answer_reset() -> None:
                    msg = json.loads(await ws.get_message())
                    assert msg[2] == "Reset"
                    await ws.send_message(json.dumps([3, msg[1], {"status": "Accepted"}]))

                nursery.start_soon(answer_reset)
                headers = {"Authorization": f"Bearer {node.first_admin_token}"}
                api = f"http://127.0.0.1:{node.api_port}/api/v1"
                async with httpx.AsyncClient(base_url=api, headers=headers, timeout=10) as client:
                    r = await client.post("/chargers/EV1/commands/Reset", json={"type": "Soft"})
                    assert r.json() == {"status": "Accepted"}
            got: list[Event] = []
            with trio.fail_after(10):
                while not any(isinstance(e, ChargerDisconnected) for e in got):
                    item = await events.receive()
                    assert isinstance(item, Event), item  # nothing lost
                    got.append(item)
            node.request_stop()

        kinds = [type(e) for e in got]
        assert kinds == [
            ChargerConnected,
            ChargerBooted,
            ConnectorStatusChanged,
            TransactionStarted,
            TransactionUpdated,
            TransactionEnded,
            CommandSent,
            CommandAnswered,
            ChargerDisconnected,
        ]
        assert all(e.charger_id == "EV1" for e in got)
        connected, booted, status, started, updated, ended, sent, answered, gone = got
        assert isinstance(connected, ChargerConnected) and connected.protocol == "ocpp1.6"
        assert connected.remote_address.startswith("127.0.0.1:") and connected.worker_at is not None
        assert isinstance(booted, ChargerBooted) and (booted.vendor, booted.boot_status) == (
            "Acme",
            "Accepted",
        )
        assert isinstance(status, ConnectorStatusChanged) and (status.old_status, status.status) == (
            None,
            "Charging",
        )
        assert isinstance(started, TransactionStarted) and (started.transaction_id, started.remote_id) == (
            tx,
            str(tx),
        )
        assert (started.connector_id, started.id_token, started.meter_start_wh) == (1, "TAG", 100.0)
        assert isinstance(updated, TransactionUpdated)
        assert [(s.measurand, s.phase, s.value) for s in updated.samples] == [("Current.Import", "L1", 16.0)]
        assert isinstance(ended, TransactionEnded) and ended.energy_wh == 800.0
        assert isinstance(sent, CommandSent) and isinstance(answered, CommandAnswered)
        assert (sent.action, answered.status, answered.unique_id) == ("Reset", "Accepted", sent.unique_id)
        assert isinstance(gone, ChargerDisconnected) and gone.conn_id == connected.conn_id
        assert gone.worker_at is not None and gone.worker_at >= connected.worker_at  # type: ignore[operator]

    trio.run(main)
