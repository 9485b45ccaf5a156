"""The comparison benchmark at CI size, and its peers on their own.

The peers are checked with the `ocpp` package's own client ChargePoint (so what they answer is what a charger
built on the same library would accept), both OCPP versions. The smoke run asserts correctness only: every system
boots every simulated charger in every run, starts every charger's load transaction and answers the load, and
nothing fails; no timing is asserted. The Node.js peer (ocpp-rpc) is optional: where Node.js or its packages
(`make bench-peers`) are missing its own tests skip and the smoke run leaves it out, saying why.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from ocpp.v16 import ChargePoint as Client16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as Client201
from ocpp.v201 import call as call201

ROOT = Path(__file__).resolve().parents[2]
PEERS = ("ocpp_websockets", "ocpp_picows", "ocpp_rpc")
SMOKE_CHARGERS = 300
SYSTEMS = ("ampgate", "websockets", "picows", "ocpp-rpc", "limit")
NODE_PEER = ROOT / "bench" / "peers" / "ocpp_rpc"
NODE = shutil.which("node")
# Where the Node.js peer can run, the smoke run must include it.
NODE_PEER_READY = NODE is not None and (NODE_PEER / "node_modules" / "ocpp-rpc").is_dir()
RUNS = (
    "boot_storm",
    "heartbeat_saturation",
    "heartbeat_half",
    "meter_values_saturation",
    "meter_values_half",
)
FIGURES = (
    "connections_held",
    "handshakes_per_s",
    "heartbeats_per_s",
    "meter_values_per_s",
    "heartbeat_p99_ms_at_half",
    "meter_values_p99_ms_at_half",
    "kb_per_conn",
)
T0 = "2024-01-01T00:00:00Z"
T1 = "2024-01-01T00:01:00Z"


def peer_command(peer: str) -> list[str]:
    if peer == "ocpp_rpc":
        if not NODE_PEER_READY:
            pytest.skip("the Node.js peer needs Node.js and its packages (`make bench-peers`)")
        return [str(NODE), str(NODE_PEER / "server.js")]
    return [sys.executable, str(ROOT / "bench" / "peers" / f"{peer}.py")]


@pytest.fixture(params=PEERS)
def peer_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    ready = tmp_path / "ready.json"
    cmd = [*peer_command(request.param), "--host", "127.0.0.1", "--port", "0", "--ready-file", str(ready)]
    proc = subprocess.Popen(cmd)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None, f"{request.param} exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"{request.param} not listening after 20 s"
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["pid"] == proc.pid
        yield f"ws://127.0.0.1:{info['port']}/ocpp"
    finally:
        proc.terminate()
        proc.wait(10)


async def _session16(url: str) -> None:
    async with websockets.connect(f"{url}/CP16", subprotocols=["ocpp1.6"]) as ws:
        assert ws.subprotocol == "ocpp1.6"
        cp = Client16("CP16", ws)
        reader = asyncio.create_task(cp.start())
        try:
            boot = await cp.call(call16.BootNotification(charge_point_vendor="v", charge_point_model="m"))
            assert (boot.status, boot.interval) == ("Accepted", 300)
            assert (await cp.call(call16.Heartbeat())).current_time
            await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
            auth = await cp.call(call16.Authorize(id_tag="TAG"))
            assert auth.id_tag_info["status"] == "Accepted"
            start = call16.StartTransaction(connector_id=1, id_tag="TAG", meter_start=0, timestamp=T0)
            first = await cp.call(start)
            second = await cp.call(start)
            assert first.id_tag_info["status"] == "Accepted"
            assert second.transaction_id == first.transaction_id + 1
            sample = [{"timestamp": T1, "sampledValue": [{"value": "10"}]}]
            await cp.call(call16.MeterValues(connector_id=1, transaction_id=1, meter_value=sample))
            stop = call16.StopTransaction(meter_stop=10, timestamp=T1, transaction_id=1, id_tag="TAG")
            assert (await cp.call(stop)).id_tag_info["status"] == "Accepted"
            await cp.call(call16.FirmwareStatusNotification(status="Installed"))
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def _session201(url: str) -> None:
    async with websockets.connect(f"{url}/CP201", subprotocols=["ocpp2.0.1"]) as ws:
        assert ws.subprotocol == "ocpp2.0.1"
        cp = Client201("CP201", ws)
        reader = asyncio.create_task(cp.start())
        try:
            station = {"model": "m", "vendor_name": "v"}
            boot = await cp.call(call201.BootNotification(charging_station=station, reason="PowerUp"))
            assert (boot.status, boot.interval) == ("Accepted", 300)
            assert (await cp.call(call201.Heartbeat())).current_time
            await cp.call(
                call201.StatusNotification(
                    timestamp=T0, connector_status="Available", evse_id=1, connector_id=1
                )
            )
            token = {"id_token": "TAG", "type": "ISO14443"}
            assert (await cp.call(call201.Authorize(id_token=token))).id_token_info["status"] == "Accepted"
            started = call201.TransactionEvent(
                event_type="Started",
                timestamp=T0,
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": "T1"},
                id_token=token,
            )
            assert (await cp.call(started)).id_token_info["status"] == "Accepted"
            sample = [{"timestamp": T1, "sampled_value": [{"value": 10}]}]
            await cp.call(call201.MeterValues(evse_id=1, meter_value=sample))
            ended = call201.TransactionEvent(
                event_type="Ended",
                timestamp=T1,
                trigger_reason="StopAuthorized",
                seq_no=1,
                transaction_info={"transaction_id": "T1"},
            )
            await cp.call(ended)
            await cp.call(call201.FirmwareStatusNotification(status="Installed"))
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


@pytest.mark.timeout(60)
def test_peer_answers_the_ocpp_client_in_both_versions(peer_url: str) -> None:
    asyncio.run(_session16(peer_url))
    asyncio.run(_session201(peer_url))


@pytest.mark.timeout(60)
def test_peer_refuses_a_client_without_an_ocpp_subprotocol(peer_url: str) -> None:
    async def connect() -> None:
        async with websockets.connect(f"{peer_url}/CPX", subprotocols=["ocpp9"]) as ws:
            await ws.recv()

    # websockets accepts without a subprotocol and the handler closes; picows and ocpp-rpc answer 400.
    with pytest.raises((websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidStatus)):
        asyncio.run(connect())


@pytest.mark.slow
# The limit server's build (the `limit_binary` fixture, a cold cargo build on a fresh clone) is not timed.
@pytest.mark.timeout(300, func_only=True)
@pytest.mark.usefixtures("limit_binary")
def test_smoke_run_every_system_boots_and_answers_everything(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    cmd = [
        sys.executable, str(ROOT / "bench" / "compare.py"),
        "--smoke", "--chargers", str(SMOKE_CHARGERS), "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=290, cwd=ROOT)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["mode"] == "smoke"
    assert r["compare_size"] == SMOKE_CHARGERS
    assert r["smoke_ok"] is True, r["smoke_failures"]
    ran = set(SYSTEMS) - ({"ocpp-rpc"} if not NODE_PEER_READY else set())
    assert set(r["systems"]) == ran
    assert set(r["skipped"]) == set(SYSTEMS) - ran
    for name in r["skipped"]:
        assert f"skipped: {name}" in proc.stdout
    for name in ran:
        runs = r["systems"][name]["runs"]
        assert set(runs) == set(RUNS), name
        assert runs["boot_storm"]["connections_held"] == SMOKE_CHARGERS, name
        for run in RUNS[1:]:
            assert runs[run]["booted"] == SMOKE_CHARGERS, (name, run)
            assert runs[run]["round_trips"] > 0, (name, run)
        for key in FIGURES:
            assert r["figures"][name][key] is not None, (name, key)
        for run in ("meter_values_saturation", "meter_values_half"):
            # Meter values in a transaction of the load's own, one per charger, its start not counted.
            assert runs[run]["sent_as"] == "MeterValues", (name, run)
            assert runs[run]["load_transactions"]["started"] == SMOKE_CHARGERS, (name, run)
    for peer in ran - {"ampgate"}:
        assert r["headline"][peer]["heartbeats_per_s"]["ampgate_over_other"] > 0
    assert set(r["per_message"]) == ran
    assert "meter values in a transaction per s" in proc.stdout
    assert "what each system does with a message" in proc.stdout
