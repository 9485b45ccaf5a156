"""--max-message is checked against the gateway's own limits at start, and a message that makes its reply too
large to send closes only that charger's connection: the pump and every other charger keep going."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
import websockets

from ampgate.config import MAX_MESSAGE_LIMIT

BOOT_16 = {"chargePointVendor": "V", "chargePointModel": "M"}


@pytest.mark.parametrize("value", [str(MAX_MESSAGE_LIMIT + 1), str(100 << 20), "512"])
def test_a_max_message_beyond_the_limits_is_refused_naming_the_option(tmp_path, value: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "ampgate.cli",
        "serve",
        "--db",
        str(tmp_path / "x.db"),
        "--max-message",
        value,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "--max-message" in done.stderr
    assert str(MAX_MESSAGE_LIMIT) in done.stderr or "1024" in done.stderr
    assert not (tmp_path / "x.db").exists()


async def _boot(ws) -> None:
    await ws.send(json.dumps([2, "boot", "BootNotification", BOOT_16]))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))[2]["status"] == "Accepted"


async def _heartbeat(ws, uid: str) -> None:
    await ws.send(json.dumps([2, uid, "Heartbeat", {}]))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert reply[0] == 3 and reply[1] == uid, reply


def test_a_message_whose_reply_is_too_large_closes_only_its_connection(node_factory) -> None:
    node = node_factory("--max-message", str(MAX_MESSAGE_LIMIT))
    # As large as allowed, with a unique id filling it, and a payload the schema refuses: the CALLERROR echoes
    # the id and adds its code and description, a few dozen bytes past what the hub can send.
    frame = '[2,"{}","Heartbeat",{{"x":1}}]'
    uid = "u" * (MAX_MESSAGE_LIMIT - len(frame.format("")))
    big = frame.format(uid)
    assert len(big) == MAX_MESSAGE_LIMIT

    async def scenario() -> tuple[int | None, str | None]:
        url = node.ocpp_url
        async with (
            websockets.connect(f"{url}/BIG", subprotocols=["ocpp1.6"], max_size=None) as a,
            websockets.connect(f"{url}/SMALL", subprotocols=["ocpp1.6"]) as b,
        ):
            await _boot(a)
            await _boot(b)
            await a.send(big)
            await _heartbeat(b, "during")
            try:
                extra = await asyncio.wait_for(a.recv(), 30)
                raise AssertionError(f"a reply of {len(extra)} bytes went out")
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                reason = closed.rcvd.reason if closed.rcvd else None
            for i in range(3):
                await _heartbeat(b, f"after-{i}")
        # A new connection is served too: the node is up.
        async with websockets.connect(f"{url}/LATER", subprotocols=["ocpp1.6"]) as c:
            await _boot(c)
            await _heartbeat(c, "later")
        return code, reason

    code, reason = asyncio.run(scenario())
    assert (code, reason) == (1011, "reply too large to send")
    assert node.proc.poll() is None
    assert "Traceback" not in node.log()
