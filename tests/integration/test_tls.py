"""OCPP security profiles 2 and 3 on a real node: wss terminated in the gateway workers, driven by clients
nobody on the team wrote (`websockets`, the `ocpp` package's charge points, Python's ssl module).

- Profile 2: the server's certificate and Basic auth; a wrong password is 401; a charger registered for
  profile 2 is refused (403) on plain ws even with the right password.
- Profile 3: a client certificate from the operator's CA whose common name is the charger id, no password; a
  certificate of another CA fails the TLS handshake; one naming another charger is 403; no certificate at all
  is profile 2, which a profile-3 charger may not use (403).
- Raising a connected charger's profile closes its connection below it.
- The four cipher suites OCPP requires are offered (with an RSA and an ECDSA certificate), TLS 1.1 is not.
- SIGHUP reloads certificate and key: new connections get the new certificate, a live one stays up.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import threading
import time
import warnings
from pathlib import Path

import httpx
import pytest
import trustme
import websockets
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from tests.integration.ocpp_clients import basic, call, ocpp_charge_point
from tests.integration.pki import Pki, tls_args
from tests.integration.test_metrics import scrape

PASSWORD = "correct-horse-battery"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def admin(node) -> httpx.Client:
    return httpx.Client(
        base_url=node.api_url, headers={"Authorization": f"Bearer {node.admin_token}"}, timeout=30
    )


def register(node, charger_id: str, password: str | None, profile: int) -> dict:
    with admin(node) as api:
        assert api.post("/chargers", json={"id": charger_id, "password": password}).status_code == 201
        r = api.patch(f"/chargers/{charger_id}", json={"security_profile": profile})
        assert r.status_code == 200, r.text
        return r.json()


async def heartbeat(ws) -> None:
    uid, msg = call("Heartbeat", {})
    await ws.send(msg)
    assert json.loads(await ws.recv())[1] == uid


async def refused_status(url: str, **connect) -> int:
    """The HTTP status an upgrade is refused with (fails the test if it is accepted)."""
    try:
        async with websockets.connect(url, subprotocols=["ocpp1.6"], open_timeout=10, **connect):
            pass
    except websockets.exceptions.InvalidStatus as e:
        return e.response.status_code
    raise AssertionError(f"{url}: the upgrade was accepted")


def header(charger_id: str, password: str) -> dict:
    return {"additional_headers": [("Authorization", basic(charger_id, password))]}


class Cp16(ChargePoint16):
    pass


class Cp201(ChargePoint201):
    pass


def test_profile_2_is_tls_with_basic_auth_and_a_profile_2_charger_is_refused_on_plain_ws(node_factory, pki):
    node = node_factory(*tls_args(pki))
    read = register(node, "TLS-P2", PASSWORD, 2)
    assert read["security_profile"] == 2 and read["connection_security_profile"] is None
    tls = pki.server_ca_context()

    async def scenario() -> None:
        async with ocpp_charge_point(
            Cp16, node.ocpp_tls_url, "TLS-P2", "ocpp1.6", ssl=tls, **header("TLS-P2", PASSWORD)
        ) as cp:
            boot = await cp.call(
                call16.BootNotification(charge_point_model="M", charge_point_vendor="V"), suppress=False
            )
            assert boot.status == "Accepted"
            with admin(node) as api:
                got = api.get("/chargers/TLS-P2").json()
            assert got["online"] and got["connection_security_profile"] == 2
        wrong = header("TLS-P2", "not-the-password-at-all")
        assert await refused_status(f"{node.ocpp_tls_url}/TLS-P2", ssl=tls, **wrong) == 401
        # The right password over plain ws: refused before the password is looked at.
        assert await refused_status(f"{node.ocpp_url}/TLS-P2", **header("TLS-P2", PASSWORD)) == 403

    asyncio.run(scenario())
    with admin(node) as api:
        # Only 1, 2 or 3; only registered chargers.
        bad = api.patch("/chargers/TLS-P2", json={"security_profile": 4})
        assert bad.status_code == 422 and bad.json()["field"] == "security_profile"
        assert api.patch("/chargers/NOBODY", json={"security_profile": 2}).status_code == 404
        assert api.patch("/chargers/TLS-P2", json={"colour": "red"}).status_code in (400, 422)
        assert api.get("/chargers/TLS-P2").json()["security_profile"] == 2


def test_profile_3_is_a_client_certificate_naming_the_charger(node_factory, pki):
    node = node_factory(*tls_args(pki, client_ca=True))
    register(node, "TLS-P3", None, 3)
    url = f"{node.ocpp_tls_url}/TLS-P3"
    client_saw: list[BaseException] = []

    async def scenario() -> None:
        async with ocpp_charge_point(
            Cp201, node.ocpp_tls_url, "TLS-P3", "ocpp2.0.1", ssl=pki.client("TLS-P3")
        ) as cp:
            station = {"model": "M", "vendor_name": "V"}
            boot = await cp.call(
                call201.BootNotification(charging_station=station, reason="PowerUp"), suppress=False
            )
            assert boot.status == "Accepted"
            with admin(node) as api:
                assert api.get("/chargers/TLS-P3").json()["connection_security_profile"] == 3
        # A certificate naming another charger.
        assert await refused_status(url, ssl=pki.client("TLS-P4")) == 403
        # No certificate: profile 2, below what the charger is registered for.
        assert await refused_status(url, ssl=pki.server_ca_context()) == 403
        # A certificate of another CA: the TLS handshake fails (TLS 1.3 reports it after the client's
        # Finished, so the client may see it as an error reading the upgrade's answer).
        with pytest.raises((ssl.SSLError, OSError, websockets.exceptions.InvalidHandshake, EOFError)) as seen:
            async with websockets.connect(
                url, subprotocols=["ocpp1.6"], ssl=pki.client("TLS-P3", pki.other_ca), open_timeout=10
            ):
                pass
        client_saw.append(seen.value)
        # An unknown charger with a certificate of the operator's CA is admitted as unknown chargers are.
        async with websockets.connect(
            f"{node.ocpp_tls_url}/TLS-NEW", subprotocols=["ocpp1.6"], ssl=pki.client("TLS-NEW")
        ) as ws:
            await heartbeat(ws)

    asyncio.run(scenario())
    # The refusals are counted by reason (the workers report every 250 ms).
    refused = ("ampgate_upgrades_refused_total", (("reason", "security_profile"),))
    failed = ("ampgate_upgrades_refused_total", (("reason", "tls_handshake"),))
    deadline = time.monotonic() + 10
    while (m := scrape(node)).get(refused, 0) < 2 or m.get(failed, 0) < 1:
        assert time.monotonic() < deadline, (
            " ".join(f"{k[1][0][1]}={v:g}" for k, v in m.items() if k[0] == refused[0])
            + f"; the other CA's client saw {client_saw!r}"
        )
        time.sleep(0.25)


def upgrade_status(s: ssl.SSLSocket, charger_id: str) -> bytes:
    """The status line of the answer to a WebSocket upgrade sent on `s` (raw HTTP, no client library)."""
    s.sendall(
        f"GET /ocpp/{charger_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode()
    )
    return s.recv(4096).split(b"\r\n", 1)[0]


def test_profile_3_chargers_resuming_their_tls_sessions_are_still_profile_3(node_factory, pki):
    """A resumed session carries the client certificate, so a charger that resumes is not refused for a lower
    profile. (A resumed TLS 1.3 handshake can be through at the server's first step, which once left the
    connection counted as plain: 403, for some of the reconnects of a few chargers at once.)"""
    node = node_factory(*tls_args(pki, client_ca=True))
    ids = [f"TLS-RES{i}" for i in range(6)]
    for cid in ids:
        register(node, cid, None, 3)
    results: dict[str, list[tuple[bytes, bool]]] = {cid: [] for cid in ids}

    def charger(cid: str) -> None:
        ctx, session = pki.client(cid), None
        for _ in range(6):
            with (
                socket.create_connection(("127.0.0.1", node.ocpp_tls_port), timeout=10) as raw,
                ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as s,
            ):
                results[cid].append((upgrade_status(s, cid), s.session_reused))
                session = s.session
                time.sleep(0.2)
            time.sleep(0.1)

    threads = [threading.Thread(target=charger, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for cid, got in results.items():
        assert [status for status, _ in got] == [b"HTTP/1.1 101 Switching Protocols"] * 6, cid
        assert [reused for _, reused in got] == [False] + [True] * 5, cid


def test_raising_the_profile_closes_a_connection_below_it(node_factory, pki):
    node = node_factory(*tls_args(pki))
    register(node, "TLS-UP", PASSWORD, 1)

    async def scenario() -> None:
        plain = header("TLS-UP", PASSWORD)
        async with websockets.connect(f"{node.ocpp_url}/TLS-UP", subprotocols=["ocpp1.6"], **plain) as ws:
            await heartbeat(ws)
            with admin(node) as api:
                assert api.patch("/chargers/TLS-UP", json={"security_profile": 2}).status_code == 200
            async with asyncio.timeout(5):
                await ws.wait_closed()
            assert ws.close_code == 1008
        # Over TLS it connects again, and lowering the profile leaves that connection alone.
        tls = pki.server_ca_context()
        async with websockets.connect(
            f"{node.ocpp_tls_url}/TLS-UP", subprotocols=["ocpp1.6"], ssl=tls, **plain
        ) as ws:
            with admin(node) as api:
                assert api.patch("/chargers/TLS-UP", json={"security_profile": 1}).status_code == 200
            await asyncio.sleep(0.5)
            await heartbeat(ws)

    asyncio.run(scenario())


# OpenSSL's names of the suites OCPP requires the central system to offer (TLS 1.2).
OCPP_SUITES = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
)


def negotiate(port: int, pki: Pki, *, cipher: str | None = None, version=ssl.TLSVersion.TLSv1_2) -> str:
    ctx = pki.server_ca_context()
    ctx.minimum_version = ctx.maximum_version = version
    if cipher is not None:
        ctx.set_ciphers(cipher)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
    ):
        got = s.cipher()
        assert got is not None
        return got[0]


def test_the_four_ocpp_cipher_suites_are_offered_and_old_tls_is_not(node_factory, pki):
    node = node_factory(
        "--ocpp-tls-port", "0", "--no-ocpp-plain",
        "--tls-cert", pki.rsa[0], "--tls-key", pki.rsa[1],
        "--tls-cert", pki.ecdsa[0], "--tls-key", pki.ecdsa[1],
    )  # fmt: skip
    port = node.ocpp_tls_port
    for suite in OCPP_SUITES:
        assert negotiate(port, pki, cipher=suite) == suite
    assert negotiate(port, pki, version=ssl.TLSVersion.TLSv1_3).startswith("TLS_")
    # A client that would take TLS 1.1 (security level 0 lets this side offer it) finds no server for it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ssl.SSLError):
            negotiate(port, pki, cipher="DEFAULT:@SECLEVEL=0", version=ssl.TLSVersion.TLSv1_1)
    # ws is off: nothing listens for plain connections.
    assert node.ocpp_port is None


def served_certificate(port: int, pki: Pki) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(raw) as s:
        der = s.getpeercert(binary_form=True)
        assert der is not None
        return der


def test_sighup_reloads_the_certificate_and_keeps_live_connections(node_factory, pki):
    node = node_factory(*tls_args(pki))
    port = node.ocpp_tls_port
    first = served_certificate(port, pki)

    async def scenario() -> None:
        async with websockets.connect(
            f"{node.ocpp_tls_url}/TLS-HUP", subprotocols=["ocpp1.6"], ssl=pki.server_ca_context()
        ) as ws:
            await heartbeat(ws)
            # A broken file first: refused, the certificate in use stays.
            Path(pki.rsa[0]).write_text("not a certificate")  # noqa: ASYNC240 - a few bytes, test set-up
            node.proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1)
            assert served_certificate(port, pki) == first
            await heartbeat(ws)
            # Then a new certificate in place of the old one.
            pki.server_cert("rsa", trustme.KeyType.RSA)
            node.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while served_certificate(port, pki) == first:
                assert time.monotonic() < deadline, "the new certificate was never served"
                await asyncio.sleep(0.2)
            await heartbeat(ws)  # the connection accepted with the old certificate is still served

    asyncio.run(scenario())
    log = node.log_path.read_text()
    assert "TLS reload refused" in log and "TLS certificate and key reloaded" in log


def test_sessions_resume_on_whichever_worker_a_reconnect_lands(node_factory, pki):
    # reuseport: the kernel hashes each connection (its source port) to one of the two workers' sockets.
    node = node_factory(*tls_args(pki, "--workers", "2", "--listen-mode", "reuseport"))
    ctx = pki.server_ca_context()

    def connect(session: ssl.SSLSession | None) -> tuple[ssl.SSLSession | None, bool]:
        with (
            socket.create_connection(("127.0.0.1", node.ocpp_tls_port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as s,
        ):
            key = "dGhlIHNhbXBsZSBub25jZQ=="
            s.sendall(
                f"GET /ocpp/TLS-RESUME HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                assert chunk, head
                head += chunk
            assert head.startswith(b"HTTP/1.1 101"), head
            return s.session, s.session_reused

    session, reused = connect(None)
    assert not reused
    resumed = []
    for _ in range(8):
        session, reused = connect(session)
        resumed.append(reused)
    # Each reconnect lands on a worker by the kernel's hash of its source port: over 8, both workers take
    # some but with probability 2^-7. Every one resumed: the workers encrypt session tickets with the same
    # keys (with a worker's own keys, those landing on the other worker would make full handshakes).
    assert all(resumed), resumed
