"""End to end through a real `ampgate serve` node: real sockets, real workers, the real SQLite store, driven
by independent WebSocket clients (trio-websocket and websockets) and by hand-made frames."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time

import pytest
import trio
import websockets
from trio_websocket import open_websocket_url

from ampgate.store import ChargerRepository, ConnectorStatusRepository, Store
from tests.integration.ocpp_clients import (
    RawWs,
    basic,
    boot_payload,
    call,
    frame,
    trio_ws_rejected_status,
)

PROTOCOLS = ["ocpp1.6", "ocpp2.0.1"]


async def trio_boot(url: str, charger: str, protocol: str, **kw) -> dict:
    """Connect with trio-websocket, boot, heartbeat; return the boot reply payload."""
    async with open_websocket_url(f"{url}/{charger}", subprotocols=[protocol], **kw) as ws:
        assert ws.subprotocol == protocol
        uid, msg = call("BootNotification", boot_payload(protocol))
        await ws.send_message(msg)
        reply = json.loads(await ws.get_message())
        assert reply[:2] == [3, uid]
        uid, msg = call("Heartbeat", {})
        await ws.send_message(msg)
        hb = json.loads(await ws.get_message())
        assert hb[0] == 3 and hb[1] == uid and hb[2]["currentTime"].endswith("Z")
        return reply[2]


async def websockets_boot(url: str, charger: str, protocol: str, **kw) -> dict:
    async with websockets.connect(f"{url}/{charger}", subprotocols=[protocol], **kw) as ws:
        assert ws.subprotocol == protocol
        uid, msg = call("BootNotification", boot_payload(protocol))
        await ws.send(msg)
        reply = json.loads(await ws.recv())
        assert reply[:2] == [3, uid]
        uid, msg = call("Heartbeat", {})
        await ws.send(msg)
        hb = json.loads(await ws.recv())
        assert hb[:2] == [3, uid] and "currentTime" in hb[2]
        return reply[2]


def wait_for(pred, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_trio_websocket_charger_boots_and_is_listed(node, protocol):
    reply = trio.run(trio_boot, node.ocpp_url, f"TRIO-{protocol}", protocol)
    assert reply["status"] == "Accepted" and reply["interval"] == 300 and reply["currentTime"].endswith("Z")
    with node.api() as api:
        body = wait_for(
            lambda: (
                (r := api.get(f"/chargers/TRIO-{protocol}")).status_code == 200
                and r.json()["vendor"]
                and r.json()
            ),
            what="boot recorded",
        )
    assert body["id"] == f"TRIO-{protocol}"
    assert body["vendor"] == "TestVendor"
    assert body["model"] == ("TM-1" if protocol == "ocpp1.6" else "TM-2")
    assert body["firmware"] == ("1.2.3" if protocol == "ocpp1.6" else "2.0.0")
    assert body["protocol"] == protocol


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_websockets_charger_boots_and_is_online_while_connected(node, protocol):
    charger = f"WS-{protocol}"

    async def scenario():
        async with websockets.connect(f"{node.ocpp_url}/{charger}", subprotocols=[protocol]) as ws:
            _uid, msg = call("BootNotification", boot_payload(protocol))
            await ws.send(msg)
            assert json.loads(await ws.recv())[2]["status"] == "Accepted"
            listed = await asyncio.to_thread(lambda: node.get("/chargers").json())
            mine = [c for c in listed["items"] if c["id"] == charger]
            assert mine and mine[0]["online"] is True and mine[0]["protocol"] == protocol
            assert mine[0]["connected_since"] is not None

    asyncio.run(scenario())
    with node.api() as api:
        c = wait_for(
            lambda: (r := api.get(f"/chargers/{charger}").json()) and not r["online"] and r,
            what="offline after close",
        )
    assert c["connected_since"] is None and c["last_seen"] is not None


def test_server_prefers_its_own_protocol_order(node):
    async def scenario():
        async with websockets.connect(f"{node.ocpp_url}/PREF", subprotocols=["ocpp1.6", "ocpp2.0.1"]) as ws:
            return ws.subprotocol

    assert asyncio.run(scenario()) == "ocpp2.0.1"


def test_unknown_action_gets_not_implemented(node):
    async def scenario():
        async with websockets.connect(f"{node.ocpp_url}/NI", subprotocols=["ocpp1.6"]) as ws:
            await ws.send(call("BootNotification", boot_payload("ocpp1.6"))[1])
            await ws.recv()
            uid, msg = call("FooBar", {})
            await ws.send(msg)
            r1 = json.loads(await ws.recv())
            await ws.send("this is not json")
            r2 = json.loads(await ws.recv())
            return uid, r1, r2

    uid, r1, r2 = asyncio.run(scenario())
    assert r1[0] == 4 and r1[1] == uid and r1[2] == "NotImplemented"
    assert r2[0] == 4 and r2[1] == "-1" and r2[2] == "ProtocolError"


def test_bad_path_is_404_without_upgrade(node):
    assert trio.run(trio_ws_rejected_status, node.ocpp_port, "/elsewhere/CP1", ["ocpp1.6"]) == 404
    with RawWs(node.ocpp_port, "/ocpp/a%3Ab") as ws:  # ':' is not allowed in a charge point id
        assert ws.head.startswith(b"HTTP/1.1 404")


def test_bad_handshake_gets_4xx_with_reason(node):
    s = socket.create_connection(("127.0.0.1", node.ocpp_port), timeout=5)
    s.sendall(
        b"GET /ocpp/CP1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    head = s.recv(4096)
    s.close()
    assert head.startswith(b"HTTP/1.1 426")
    assert b"Sec-WebSocket-Version: 13" in head


def test_registered_charger_needs_its_password(node):
    with node.api() as api:
        r = api.post("/chargers", json={"id": "SECURE1", "password": "correct-horse-battery"})
        assert r.status_code == 201, r.text

    async def attempt(password: str | None):
        headers = [] if password is None else [("Authorization", basic("SECURE1", password))]
        async with websockets.connect(
            f"{node.ocpp_url}/SECURE1", subprotocols=["ocpp1.6"], additional_headers=headers
        ) as ws:
            uid, msg = call("Heartbeat", {})
            await ws.send(msg)
            return json.loads(await ws.recv())[1] == uid

    assert asyncio.run(attempt("correct-horse-battery"))
    for bad in ("wrong-password-here", None):
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            asyncio.run(attempt(bad))
        assert e.value.response.status_code == 401
    # Credentials whose user is another charger are refused even with the right password.
    with pytest.raises(websockets.exceptions.InvalidStatus) as e:
        asyncio.run(
            websockets_boot(
                node.ocpp_url,
                "SECURE1",
                "ocpp1.6",
                additional_headers=[("Authorization", basic("OTHER", "correct-horse-battery"))],
            )
        )
    assert e.value.response.status_code == 401


def test_unknown_chargers_rejected_when_not_admitted(node_factory):
    n = node_factory("--unknown-chargers", "reject")

    assert trio.run(trio_ws_rejected_status, n.ocpp_port, "/ocpp/STRANGER", ["ocpp1.6"]) == 404
    with n.api() as api:
        assert api.post("/chargers", json={"id": "FRIEND"}).status_code == 201
    # Registration reached the workers before the call returned: the charger gets in at once.
    assert trio.run(trio_boot, n.ocpp_url, "FRIEND", "ocpp2.0.1")["status"] == "Accepted"


def test_no_agreeable_subprotocol_is_refused_before_the_upgrade(node):
    """The default, as the OCA's certification tool expects: HTTP 400, no WebSocket."""
    with RawWs(node.ocpp_port, "/ocpp/CP97", protocols="ocpp9.9") as ws:
        assert ws.head.startswith(b"HTTP/1.1 400")

    async def with_websockets():
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            async with websockets.connect(f"{node.ocpp_url}/CP96", subprotocols=["ocpp9.9"]):
                pass
        return e.value.response.status_code

    assert asyncio.run(with_websockets()) == 400
    # A charger offering a version we serve among others gets in with that one.
    with RawWs(node.ocpp_port, "/ocpp/CP95", protocols="ocpp9.9, ocpp1.6") as ws:
        assert ws.head.startswith(b"HTTP/1.1 101") and b"ocpp1.6" in ws.head.lower()


def test_no_agreeable_subprotocol_upgrades_without_header_then_closes_1002_when_set(node_factory):
    """`--no-subprotocol close`: the OCPP-J 1.6 text (upgrade without the header, then close)."""
    node = node_factory("--no-subprotocol", "close")
    with RawWs(node.ocpp_port, "/ocpp/CP99", protocols="ocpp9.9") as ws:
        assert ws.head.startswith(b"HTTP/1.1 101")
        assert b"sec-websocket-protocol" not in ws.head.lower()
        assert ws.read_close_code() == 1002

    async def with_websockets():
        async with websockets.connect(f"{node.ocpp_url}/CP98", subprotocols=["ocpp9.9"]) as ws:
            assert ws.subprotocol is None
            with pytest.raises(websockets.exceptions.ConnectionClosedError) as e:
                await ws.recv()
            return e.value.rcvd.code

    assert asyncio.run(with_websockets()) == 1002


def _healthy_neighbour_check(node):
    """A charger connected before the bad one keeps working after it."""
    return trio.run(trio_boot, node.ocpp_url, "NEIGHBOUR", "ocpp1.6")["status"] == "Accepted"


def test_unmasked_frame_closes_1002_and_others_keep_working(node):
    async def scenario():
        async with open_websocket_url(f"{node.ocpp_url}/STEADY", subprotocols=["ocpp1.6"]) as steady:
            await steady.send_message(call("BootNotification", boot_payload("ocpp1.6"))[1])
            await steady.get_message()
            with RawWs(node.ocpp_port, "/ocpp/BADMASK") as bad:
                assert bad.head.startswith(b"HTTP/1.1 101")
                bad.send(frame(0x1, b'[2,"1","Heartbeat",{}]', mask=False))
                code = await trio.to_thread.run_sync(bad.read_close_code)
            uid, msg = call("Heartbeat", {})
            await steady.send_message(msg)
            assert json.loads(await steady.get_message())[:2] == [3, uid]
            return code

    assert trio.run(scenario) == 1002
    assert _healthy_neighbour_check(node)


def test_invalid_utf8_closes_1007(node):
    with RawWs(node.ocpp_port, "/ocpp/BADUTF8") as ws:
        ws.send(frame(0x1, b'[2,"1","Heartbeat",{"x":"\xff\xfe"}]'))
        assert ws.read_close_code() == 1007
    assert _healthy_neighbour_check(node)


def test_two_mib_message_closes_1009(node):
    async def scenario():
        async with websockets.connect(f"{node.ocpp_url}/BIG", subprotocols=["ocpp1.6"], max_size=None) as ws:
            await ws.send(json.dumps([2, "1", "DataTransfer", {"vendorId": "x", "data": "y" * (2 << 20)}]))
            with pytest.raises(websockets.exceptions.ConnectionClosedError) as e:
                await ws.recv()
            return e.value.rcvd.code

    assert asyncio.run(scenario()) == 1009
    assert _healthy_neighbour_check(node)


def test_ping_is_answered_with_pong(node):
    with RawWs(node.ocpp_port, "/ocpp/PINGER") as ws:
        ws.send(frame(0x9, b"are-you-there"))
        assert ws.read_frame() == (0xA, b"are-you-there")
        ws.send(frame(0x8, b"\x03\xe8"))  # close 1000
        assert ws.read_close_code() == 1000


def test_second_connection_of_a_charger_replaces_the_first(node):
    async def scenario():
        # Entered in order: `second` connects while `first` is still open.
        async with (
            websockets.connect(f"{node.ocpp_url}/DUP", subprotocols=["ocpp1.6"]) as first,
            websockets.connect(f"{node.ocpp_url}/DUP", subprotocols=["ocpp1.6"]) as second,
        ):
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await first.recv()
            uid, msg = call("BootNotification", boot_payload("ocpp1.6"))
            await second.send(msg)
            assert json.loads(await second.recv())[:2] == [3, uid]
            # The old socket's close must not take the new session offline.
            r = await asyncio.to_thread(lambda: node.get("/chargers/DUP").json())
            assert r["online"] is True

    asyncio.run(scenario())


def test_sigterm_closes_chargers_with_1001(node):
    async def scenario():
        async with websockets.connect(f"{node.ocpp_url}/BYE", subprotocols=["ocpp2.0.1"]) as ws:
            _uid, msg = call("BootNotification", boot_payload("ocpp2.0.1"))
            await ws.send(msg)
            await ws.recv()
            node.proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
                await ws.recv()
            return e.value.rcvd.code

    assert asyncio.run(scenario()) == 1001
    assert node.proc.wait(15) == 0
    # The store was flushed: the boot recorded just before the signal is on disk.
    store = Store(str(node.db))
    try:
        row = ChargerRepository(store).get("BYE")
    finally:
        store.close()
    assert row is not None and row.vendor == "TestVendor" and row.protocol == "ocpp2.0.1"
    # Workers exit with their control plane.
    for pid in node.worker_pids:
        wait_for(lambda pid=pid: not _alive(pid), what=f"worker {pid} gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_die_with_a_killed_control_plane(node):
    node.proc.kill()
    node.proc.wait(10)
    for pid in node.worker_pids:
        wait_for(
            lambda pid=pid: not _alive(pid), what=f"worker {pid} gone after SIGKILL of the control plane"
        )


def test_deeply_nested_json_is_a_protocol_error_not_a_crash(node):
    async def scenario():
        async with websockets.connect(f"{node.ocpp_url}/NEST", subprotocols=["ocpp1.6"]) as ws:
            await ws.send(call("BootNotification", boot_payload("ocpp1.6"))[1])
            await ws.recv()
            await ws.send("[" * 20000 + "]" * 20000)
            r1 = json.loads(await ws.recv())
            uid, msg = call("Heartbeat", {})
            await ws.send(msg)
            r2 = json.loads(await ws.recv())
            return r1, uid, r2

    r1, uid, r2 = asyncio.run(scenario())
    assert r1[:3] == [4, "-1", "ProtocolError"]
    assert r2[:2] == [3, uid]
    assert node.proc.poll() is None


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_second_sigterm_during_the_shutdown_neither_kills_the_flush_nor_warns(node_factory, workers):
    """The first SIGTERM starts a clean shutdown; a second one right after (an impatient supervisor) is noted and
    changes nothing: the process still exits 0, with what was written just before on disk, and a clean shutdown
    logs no warning (each worker's link closing is expected, not "lost")."""
    node = node_factory("--workers", workers)

    async def scenario():
        async with websockets.connect(f"{node.ocpp_url}/TWICE", subprotocols=["ocpp1.6"]) as ws:
            uid, msg = call("BootNotification", boot_payload("ocpp1.6"))
            await ws.send(msg)
            assert json.loads(await ws.recv())[:2] == [3, uid]
            # Answered before it is committed (a status is not a transaction message): only the flush keeps it.
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}
            uid, msg = call("StatusNotification", status)
            await ws.send(msg)
            assert json.loads(await ws.recv())[:2] == [3, uid]
            node.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.05)
            node.proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
                await ws.recv()
            node.proc.send_signal(signal.SIGTERM)  # and once more while the workers are closing
            return e.value.rcvd.code if e.value.rcvd else None

    assert asyncio.run(scenario()) == 1001
    assert node.proc.wait(15) == 0, node.log()
    store = Store(str(node.db))
    try:
        statuses = ConnectorStatusRepository(store).statuses("TWICE")
    finally:
        store.close()
    assert [(s.connector_id, s.status) for s in statuses] == [(1, "Preparing")]
    log = node.log()
    # Usually "already shutting down" is printed; not asserted: a one-worker node may have finished within the
    # 50 ms, and then the signal only meets the exit (ignored, as the exit code shows).
    # From the first signal on (a start-up warning, e.g. no --public-base-url, is not the shutdown's).
    shutdown = log[log.index("ampgate: shutting down") :]
    noisy = [ln for ln in shutdown.splitlines() if " WARNING " in ln or " ERROR " in ln or "Traceback" in ln]
    assert noisy == [], noisy
