"""Simulated chargers obey the charging profiles a central system sends them, in both versions: `ampgate sim`
runs one charger with a three-phase 16 A EV against a small central system written here on trio-websocket (not
our node). It accepts the boot, installs a TxDefaultProfile of 10 A on connector / EVSE 0, lets the EV start,
then sends a TxProfile of 7 A for the transaction that is valid for a few seconds. The per-phase currents in the
meter readings it receives are 10 A, then 7 A, then 10 A again once the TxProfile's validTo has passed. Every
message the simulator sends is checked against the `ocpp` package's JSON schemas."""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from ampgate.ocpp.generate import schema_file

SCENARIO = """
[run]
duration = 120
heartbeat_interval = 300

[transactions]
per_hour = 36000
duration = 600
meter_period = 0.5
power_w = 22000

[[evs.mix]]
phases = "3"
max_current_a = 16
capacity_kwh = 60
soc_start = 20
"""
DEFAULT_A = 10.0
TX_A = 7.0
# How long the TxProfile is valid: several meter periods, so that readings show it before it expires.
TX_VALID = timedelta(seconds=3)
# Readings stamped after the TxProfile's validTo that the test waits for.
READINGS_AFTER = 3
# A guard against a hung run, not a figure under test.
RUN_LIMIT_S = 90


@cache
def validator(protocol: str, action: str, kind: str) -> Any:
    """The `ocpp` package's JSON schema of `action`'s request ("call") or response ("result")."""
    version = "v16" if protocol == "ocpp1.6" else "v201"
    schema = json.loads(schema_file(version, action, response=kind == "result").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def now_iso(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Csms:
    """The central system: answers the charger's CALLs, drives the profiles, and keeps the readings."""

    def __init__(self, protocol: str) -> None:
        self.v16 = protocol == "ocpp1.6"
        self.protocol = protocol
        self.ws: Any = None
        self.ids = itertools.count(1)
        self.waiting: dict[str, trio.MemorySendChannel[Any]] = {}
        self.invalid: list[str] = []
        self.default_accepted = trio.Event()
        self.tx_id: Any = None
        self.drawing = trio.Event()
        self.readings: list[tuple[datetime, tuple[float, ...]]] = []
        self.valid_to: datetime | None = None
        self.done = trio.Event()

    def check(self, action: str, kind: str, payload: Any) -> None:
        for e in validator(self.protocol, action, kind).iter_errors(payload):
            self.invalid.append(f"{action} {kind}: {e.json_path}: {e.message}")

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        uid = f"csms-{next(self.ids)}"
        send, receive = trio.open_memory_channel[Any](1)
        self.waiting[uid] = send
        await self.ws.send_message(json.dumps([2, uid, action, payload]))
        reply = await receive.receive()
        self.check(action, "result", reply)
        return reply

    async def serve(self, request: WebSocketRequest) -> None:
        self.ws = await request.accept(subprotocol=self.protocol)
        async with trio.open_nursery() as nursery:
            try:
                while True:
                    message = json.loads(await self.ws.get_message())
                    if message[0] == 3:
                        await self.waiting.pop(message[1]).send(message[2])
                    elif message[0] == 2:
                        nursery.start_soon(self.answer, nursery, message)
            except ConnectionClosed:
                # The run is over (the test stops the simulator once it has seen enough).
                nursery.cancel_scope.cancel()

    async def answer(self, nursery: trio.Nursery, message: list[Any]) -> None:
        with contextlib.suppress(ConnectionClosed):  # the run ended while this was being answered
            await self._answer(nursery, message)

    async def _answer(self, nursery: trio.Nursery, message: list[Any]) -> None:
        _, uid, action, payload = message
        self.check(action, "call", payload)
        if action == "Authorize":
            # The EV starts once the default is in place, so that every reading of it is under a profile.
            await self.default_accepted.wait()
        reply = self.reply(action, payload)
        await self.ws.send_message(json.dumps([3, uid, reply]))
        if action == "BootNotification":
            nursery.start_soon(self.drive_until_closed)
        self.keep_reading(action, payload)

    def reply(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = {"idTagInfo" if self.v16 else "idTokenInfo": {"status": "Accepted"}}
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": now_iso(), "interval": 300}
        if action == "Heartbeat":
            return {"currentTime": now_iso()}
        if action == "Authorize":
            return token
        if action == "StartTransaction":
            self.tx_id = 1
            return {"transactionId": 1, **token}
        if action == "TransactionEvent" and payload["eventType"] == "Started":
            self.tx_id = payload["transactionInfo"]["transactionId"]
            return token
        return {}

    def keep_reading(self, action: str, payload: dict[str, Any]) -> None:
        periodic = action == "MeterValues" or (
            action == "TransactionEvent" and payload.get("triggerReason") == "MeterValuePeriodic"
        )
        if not periodic:
            return
        for value in payload["meterValue"]:
            currents = {
                s["phase"]: float(s["value"])
                for s in value["sampledValue"]
                if s.get("measurand") == "Current.Import"
            }
            at = datetime.fromisoformat(value["timestamp"])
            self.readings.append((at, (currents["L1"], currents["L2"], currents["L3"])))
            self.drawing.set()
            if self.valid_to and sum(1 for t, _ in self.readings if t > self.valid_to) >= READINGS_AFTER:
                self.done.set()

    def profile(self, profile_id: int, purpose: str, limit: float, **extra: Any) -> dict[str, Any]:
        period = {"startPeriod": 0, "limit": limit}
        if self.v16:
            schedule: Any = {"chargingRateUnit": "A", "chargingSchedulePeriod": [period]}
            body = {"chargingProfileId": profile_id, "chargingSchedule": schedule}
        else:
            schedule = [{"id": profile_id, "chargingRateUnit": "A", "chargingSchedulePeriod": [period]}]
            body = {"id": profile_id, "chargingSchedule": schedule}
        body |= {
            "stackLevel": 0,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Absolute",
            **extra,
        }
        return body

    async def set_profile(self, connector: int, profile: dict[str, Any]) -> str:
        if self.v16:
            payload = {"connectorId": connector, "csChargingProfiles": profile}
        else:
            payload = {"evseId": connector, "chargingProfile": profile}
        self.check("SetChargingProfile", "call", payload)  # the test's own CALL is valid too
        return (await self.call("SetChargingProfile", payload))["status"]

    async def drive_until_closed(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.drive()

    async def drive(self) -> None:
        default = self.profile(1, "TxDefaultProfile", DEFAULT_A)
        assert await self.set_profile(0, default) == "Accepted"
        self.default_accepted.set()
        await self.drawing.wait()
        valid_to = now_iso(TX_VALID)
        tx = self.profile(2, "TxProfile", TX_A, transactionId=self.tx_id, validTo=valid_to)
        assert await self.set_profile(1, tx) == "Accepted"
        self.valid_to = datetime.fromisoformat(valid_to)


def collapse(currents: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    return [c for c, _ in itertools.groupby(currents)]


@pytest.mark.slow
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_simulated_charger_follows_its_profiles_and_falls_back_when_the_tx_profile_expires(
    tmp_path, version
):
    protocol = f"ocpp{version}"
    csms = Csms(protocol)
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    report = tmp_path / "report.json"
    log = tmp_path / "sim.log"

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, csms.serve, "127.0.0.1", 0, None)
            url = f"ws://127.0.0.1:{server.port}/ocpp"
            args = [
                "sim", "--url", url, "--chargers", "1", "--protocol", version, "--scenario-file", str(scenario),
                "--id-prefix", "PROF-", "--seed", "1", "--report", str(report), "--quiet",
            ]  # fmt: skip
            with log.open("w") as out:
                sim = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "ampgate.cli", *args], stdout=out, stderr=subprocess.STDOUT
                )
                with trio.fail_after(RUN_LIMIT_S):
                    async with trio.open_nursery() as watch:

                        async def exited() -> None:
                            await sim.wait()
                            watch.cancel_scope.cancel()

                        watch.start_soon(exited)
                        await csms.done.wait()
                        sim.send_signal(signal.SIGINT)  # stop early: the run closes its link and reports
                    await sim.wait()
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert csms.done.is_set(), log.read_text()
    assert sim_ok(report, log)
    assert csms.invalid == []
    currents = [c for _, c in csms.readings]
    assert collapse(currents) == [(DEFAULT_A,) * 3, (TX_A,) * 3, (DEFAULT_A,) * 3], currents
    assert csms.valid_to is not None
    assert all(c == (DEFAULT_A,) * 3 for t, c in csms.readings if t > csms.valid_to)
    profiles = json.loads(report.read_text())["charging_profiles"]
    assert profiles == {"received": 2, "accepted": 2, "rejected": 0, "invalid": 0, "cleared": 0}


def sim_ok(report: Path, log: Path) -> bool:
    """The simulator finished, reported, and found nothing wrong with what the central system sent."""
    assert report.exists(), log.read_text()
    r = json.loads(report.read_text())
    assert r["errors"] == {}, r["error_details"]
    return True
