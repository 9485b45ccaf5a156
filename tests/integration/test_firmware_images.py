"""Firmware images, tags and selections against a real node: an admin uploads an image over the operator API, and
a client downloads it from the public listener at the URL the node gives (built from --public-base-url) in three
Range requests whose bytes hash to the SHA-256 the node recorded; HEAD answers GET's headers without the body; a
wrong token or name is 404, a range past the end 416, and a deleted image is gone. Chargers written with the
`ocpp` package boot in both protocol versions, get placed and tagged over the API, and a selection over the
node's own database picks exactly the chargers each selector names."""

from __future__ import annotations

import asyncio
import hashlib
import os

import httpx
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from ampgate.fleet import ChargerSelector, FleetRepository
from ampgate.store import Store
from tests.integration.ocpp_clients import ocpp_charge_point

BASE = "http://fw.example.test"
SIZE = 1_500_000


def api(node, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token or node.admin_token}"}
    return httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30)


def test_an_uploaded_image_is_downloaded_in_ranges_and_its_sha256_matches(node_factory):
    node = node_factory("--public-base-url", BASE, "--max-firmware-bytes", str(4 * SIZE))
    data = os.urandom(SIZE)

    async def scenario():
        async with api(node) as http, httpx.AsyncClient(timeout=30) as charger:
            r = await http.post(
                "/firmware/images",
                data={"version": "2.1.0", "vendor": "TestVendor"},
                files={"file": ("ac22_fw.bin", data, "application/octet-stream")},
            )
            assert r.status_code == 201, r.text
            image = r.json()
            assert image["sha256"] == hashlib.sha256(data).hexdigest() and image["size"] == SIZE
            assert image["location"].startswith(f"{BASE}/firmware/files/")
            assert image["location"].endswith("/2.1.0.bin")
            url = image["location"].replace(BASE, f"http://127.0.0.1:{node.public_port}", 1)
            token = image["location"].split("/")[-2]
            stored = node.db.parent / "firmware" / token
            assert stored.is_file()

            parts = []
            for header, first, last in (
                ("bytes=0-499999", 0, 499_999),
                ("bytes=500000-999999", 500_000, 999_999),
                ("bytes=1000000-", 1_000_000, SIZE - 1),
            ):
                got = await charger.get(url, headers={"Range": header})
                assert got.status_code == 206, got.text
                assert got.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
                assert int(got.headers["content-length"]) == last - first + 1 == len(got.content)
                parts.append(got.content)
            assert hashlib.sha256(b"".join(parts)).hexdigest() == image["sha256"]

            whole = await charger.get(url)
            assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["etag"] == f'"{image["sha256"]}"'
            assert hashlib.sha256(whole.content).hexdigest() == image["sha256"]
            # HEAD over the real listener (Hypercorn): GET's headers, no body, Range ignored.
            probe = await charger.head(url, headers={"Range": "bytes=0-9"})
            assert probe.status_code == 200 and probe.content == b""
            for name in ("content-length", "accept-ranges", "etag", "content-type"):
                assert probe.headers[name] == whole.headers[name], name
            assert (await charger.head(url.replace("2.1.0.bin", "2.1.1.bin"))).status_code == 404
            tail = await charger.get(url, headers={"Range": "bytes=-100"})
            assert tail.status_code == 206 and tail.content == data[-100:]
            stale = await charger.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
            assert stale.status_code == 200 and len(stale.content) == SIZE

            past = await charger.get(url, headers={"Range": f"bytes={SIZE}-"})
            assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{SIZE}"
            wrong_token = url.replace(token, "A" * len(token))
            assert (await charger.get(wrong_token)).status_code == 404
            assert (await charger.get(url.replace("2.1.0.bin", "2.1.1.bin"))).status_code == 404

            assert (await http.delete(f"/firmware/images/{image['id']}")).status_code == 204
            assert (await charger.get(url)).status_code == 404
            assert not stored.exists()

    asyncio.run(scenario())


CHARGERS = {
    # id: (protocol, vendor, model, firmware, site, tags)
    "SEL16A": ("ocpp1.6", "Alfen", "Eve", "4.1", "S1", ["pilot", "region:nl"]),
    "SEL16B": ("ocpp1.6", "Alfen", "Eve", "4.2", "S2", ["region:nl"]),
    "SEL201A": ("ocpp2.0.1", "ABB", "Terra AC", "1.0", "S1", ["pilot"]),
    "SEL201B": ("ocpp2.0.1", "ABB", "Terra DC", "1.0", None, []),
}


async def boot(node, charger_id: str) -> None:
    protocol, vendor, model, firmware, _, _ = CHARGERS[charger_id]
    cls = ChargePoint16 if protocol == "ocpp1.6" else ChargePoint201
    async with ocpp_charge_point(cls, node.ocpp_url, charger_id, protocol) as cp:
        if protocol == "ocpp1.6":
            req = call16.BootNotification(
                charge_point_vendor=vendor, charge_point_model=model, firmware_version=firmware
            )
        else:
            station = {"vendor_name": vendor, "model": model, "firmware_version": firmware}
            req = call201.BootNotification(charging_station=station, reason="PowerUp")
        reply = await cp.call(req, suppress=False)
        assert reply.status == "Accepted"


def test_chargers_booted_placed_and_tagged_are_selected_by_each_criterion(node_factory):
    node = node_factory()

    async def scenario():
        for charger_id in CHARGERS:
            await boot(node, charger_id)
        async with api(node) as http:
            for site in ("S1", "S2"):
                r = await http.post("/sites", json={"id": site, "phase_limits_a": [32, 32, 32]})
                assert r.status_code == 201, r.text
            for charger_id, (_, _, _, _, site, tags) in CHARGERS.items():
                if site is not None:
                    r = await http.put(
                        f"/chargers/{charger_id}/placement",
                        json={"node_id": site, "phases": "L1", "max_a": 16},
                    )
                    assert r.status_code == 200, r.text
                r = await http.put(f"/chargers/{charger_id}/tags", json={"tags": tags})
                assert r.status_code == 200 and r.json()["tags"] == sorted(tags)
            r = await http.get("/chargers/SEL16A")
            assert r.json()["tags"] == ["pilot", "region:nl"] and r.json()["firmware"] == "4.1"

    asyncio.run(scenario())
    assert node.stop() == 0
    store = Store(str(node.db))
    try:
        fleet = FleetRepository(store)

        def ids(sel: ChargerSelector) -> list[str]:
            return [r.id for r in fleet.select(sel, 100, None)]

        assert ids(ChargerSelector(tags=("pilot",))) == ["SEL16A", "SEL201A"]
        assert ids(ChargerSelector(tags=("pilot", "region:nl"))) == ["SEL16A"]
        assert ids(ChargerSelector(vendor="Alfen", firmware_version="4.2")) == ["SEL16B"]
        assert ids(ChargerSelector(model="Terra AC", site_id="S1")) == ["SEL201A"]
        assert ids(ChargerSelector(site_id="S1")) == ["SEL16A", "SEL201A"]
        assert ids(ChargerSelector(firmware_version="1.0", charger_ids=("SEL201B", "SEL16A"))) == ["SEL201B"]
        assert [r.id for r in fleet.select(ChargerSelector(vendor="ABB"), 1, "SEL201A")] == ["SEL201B"]
        (row,) = fleet.select(ChargerSelector(charger_ids=("SEL16B",)), 10, None)
        assert (row.protocol, row.vendor, row.model, row.firmware_version, row.site_id) == (
            "ocpp1.6",
            "Alfen",
            "Eve",
            "4.2",
            "S2",
        )
    finally:
        store.close()
