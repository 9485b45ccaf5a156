"""Display messages, customer information and firmware publishing against a real node, from an `ocpp` package
2.0.1 charge point (schema validation on both sides): what the API sets, clears and refreshes is what the
charger shows; a refused message stores nothing; a customer report sent in parts out of order is assembled,
listed and deleted by an admin only; a publication's status notifications (Downloading → Downloaded →
Published with its locations) are its timeline, and unpublishing it ends it."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action

from tests.integration.ocpp_clients import ocpp_charge_point

CHECKSUM = "9e107d9d372bb6826bd81d3542a419d6"
REPORT = ["Customer 4711: ", "3 sessions, ", "last on 2026-11-29."]


class Station(ChargePoint201):
    """Shows the messages it accepts (refusing AlwaysFront), lists them for GetDisplayMessages in two
    NotifyDisplayMessages parts, reports a customer in three parts out of order, and publishes firmware with
    three status notifications."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        # A message the charger had before the node ever set one (from another system, or its own).
        self.messages: dict[int, dict] = {
            99: {"id": 99, "priority": "NormalCycle", "message": {"format": "UTF8", "content": "Welcome"}}
        }
        self.customer_requests: list[dict] = []
        self.unpublished: list[str] = []

    @on(Action.set_display_message)
    async def on_set(self, message, **_):
        if message["priority"] == "AlwaysFront":
            return result201.SetDisplayMessage(status="NotSupportedPriority")
        self.messages[message["id"]] = message
        return result201.SetDisplayMessage(status="Accepted")

    @on(Action.clear_display_message)
    async def on_clear(self, id, **_):
        found = self.messages.pop(id, None)
        return result201.ClearDisplayMessage(status="Accepted" if found else "Unknown")

    @on(Action.get_display_messages)
    async def on_get(self, request_id, **_):
        return result201.GetDisplayMessages(status="Accepted" if self.messages else "Unknown")

    @after(Action.get_display_messages)
    async def list_messages(self, request_id, **_):
        infos = list(self.messages.values())
        if not infos:
            return
        parts = [infos] if len(infos) == 1 else [infos[:1], infos[1:]]
        for i, chunk in enumerate(parts):
            await self.call(
                call201.NotifyDisplayMessages(
                    request_id=request_id, message_info=chunk, tbc=i < len(parts) - 1
                ),
                suppress=False,
            )

    @on(Action.customer_information)
    async def on_customer(self, request_id, report, clear, **kw):
        self.customer_requests.append({"request_id": request_id, "report": report, "clear": clear, **kw})
        return result201.CustomerInformation(status="Accepted")

    @after(Action.customer_information)
    async def send_customer(self, request_id, report, **_):
        if not report:
            return
        for seq in (2, 0, 1):  # out of order
            await self.call(
                call201.NotifyCustomerInformation(
                    data=REPORT[seq],
                    seq_no=seq,
                    generated_at="2026-11-30T07:00:00Z",
                    request_id=request_id,
                    tbc=seq < 2,
                ),
                suppress=False,
            )

    @on(Action.publish_firmware)
    async def on_publish(self, location, checksum, request_id, **_):
        return result201.PublishFirmware(status="Accepted")

    @after(Action.publish_firmware)
    async def report_publication(self, location, checksum, request_id, **_):
        for status in ("Downloading", "Downloaded"):
            await self.call(
                call201.PublishFirmwareStatusNotification(status=status, request_id=request_id),
                suppress=False,
            )
        await self.call(
            call201.PublishFirmwareStatusNotification(
                status="Published",
                request_id=request_id,
                location=["http://lc.local/fw.bin", "ftp://lc.local/fw.bin"],
            ),
            suppress=False,
        )

    @on(Action.unpublish_firmware)
    async def on_unpublish(self, checksum, **_):
        self.unpublished.append(checksum)
        return result201.UnpublishFirmware(status="Unpublished")


def api(node, token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=node.api_url, headers={"Authorization": f"Bearer {token or node.admin_token}"}, timeout=30
    )


def token(node, role: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "ampgate.cli", "token", "create", "--role", role, "--db", str(node.db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_display_messages_set_refresh_clear(node) -> None:
    base = "/chargers/DSP1/display-messages"

    async def scenario():
        async with (
            ocpp_charge_point(Station, node.ocpp_url, "DSP1", "ocpp2.0.1", boot=True) as cp,
            api(node) as http,
        ):
            out = {}
            out["set"] = await http.post(
                base,
                json={
                    "priority": "InFront",
                    "state": "Charging",
                    "start_at": "2026-12-01T08:00:00+01:00",
                    "message": {"format": "UTF8", "language": "en", "content": "Tariff: 0.30 EUR/kWh"},
                    "display": {"name": "Display", "evse_id": 1},
                },
            )
            out["view_after_set"] = (await http.get(base)).json()
            out["refused"] = await http.post(
                base,
                json={"id": 7, "priority": "AlwaysFront", "message": {"format": "ASCII", "content": "x"}},
            )
            out["bad"] = await http.post(
                base, json={"priority": "Soon", "message": {"format": "ASCII", "content": ""}}
            )
            out["refresh"] = await http.post(f"{base}/refresh")
            out["view_after_refresh"] = (await http.get(base)).json()
            out["charger_after_set"] = dict(cp.messages)
            mine = out["set"].json()["id"]
            out["clear"] = await http.delete(f"{base}/{mine}")
            out["clear_again"] = await http.delete(f"{base}/{mine}")
            await http.delete(f"{base}/99")
            out["refresh_empty"] = await http.post(f"{base}/refresh")
            out["view_empty"] = (await http.get(base)).json()
            return out

    out = asyncio.run(scenario())
    s = out["set"]
    assert s.status_code == 201, s.text
    msg = s.json()
    assert msg["id"] == 1  # node-assigned: the view was empty
    assert s.headers["location"].endswith("/display-messages/1")
    assert msg["start_at"] == "2026-12-01T07:00:00Z" and msg["display"]["evse_id"] == 1
    assert msg["source"] == "set" and msg["message"]["content"] == "Tariff: 0.30 EUR/kWh"
    assert [m["id"] for m in out["view_after_set"]["items"]] == [1]
    # The charger got the spec's shape (the ocpp package hands it over in snake_case).
    shown = out["charger_after_set"][1]
    assert shown["start_date_time"].startswith("2026-12-01T07:00:00") and shown["display"]["evse"] == {
        "id": 1
    }

    refused = out["refused"]
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_supported_priority" and refused.json()["field"] == "priority"
    bad = out["bad"]
    assert bad.status_code == 422 and bad.json()["field"] == "priority"

    r = out["refresh"]
    assert r.status_code == 200 and r.json()["status"] == "Accepted" and r.json()["messages"] == 2
    view = {m["id"]: m for m in out["view_after_refresh"]["items"]}
    assert sorted(view) == [1, 99]  # 7 was refused: stored nowhere; 99 the charger had all along
    assert view[99]["source"] == "report" and view[99]["message"]["content"] == "Welcome"
    assert view[1]["state"] == "Charging"

    assert out["clear"].status_code == 204
    again = out["clear_again"]
    assert again.status_code == 404 and again.json()["code"] == "unknown_message"
    empty = out["refresh_empty"]
    assert empty.status_code == 200 and empty.json() == {
        "request_id": empty.json()["request_id"],
        "status": "Unknown",
        "messages": 0,
    }
    assert out["view_empty"]["items"] == []


def test_customer_information_report_is_assembled_listed_and_deleted_by_an_admin(node) -> None:
    base = "/chargers/CUS1/customer-information"
    operator = token(node, "operator")
    viewer = token(node, "viewer")

    async def scenario():
        async with (
            ocpp_charge_point(Station, node.ocpp_url, "CUS1", "ocpp2.0.1", boot=True) as cp,
            api(node) as admin,
            api(node, operator) as op,
            api(node, viewer) as view,
        ):
            out = {}
            out["asked"] = await op.post(
                base,
                json={
                    "report": True,
                    "clear": False,
                    "id_token": {"id_token": "AABBCCDD", "type": "ISO14443"},
                },
            )
            rid = out["asked"].json()["request_id"]
            out["cleared"] = await op.post(base, json={"clear": True, "customer_identifier": "cust-4711"})
            out["two_ids"] = await op.post(
                base,
                json={
                    "report": True,
                    "customer_identifier": "x",
                    "id_token": {"id_token": "A", "type": "Local"},
                },
            )
            out["listed"] = await op.get(base)
            out["one"] = await op.get(f"{base}/{rid}")
            out["viewer_reads"] = await view.get(base)
            out["operator_deletes"] = await op.delete(f"{base}/{rid}")
            out["admin_deletes"] = await admin.delete(f"{base}/{rid}")
            out["gone"] = await op.get(f"{base}/{rid}")
            out["admin_again"] = await admin.delete(f"{base}/{rid}")
            out["sent"] = list(cp.customer_requests)
            return out

    out = asyncio.run(scenario())
    asked = out["asked"]
    assert asked.status_code == 201, asked.text
    body = asked.json()
    assert body["status"] == "Accepted" and body["complete"] is True and body["parts"] == 3
    assert body["data"] == "".join(REPORT) and body["size"] == len("".join(REPORT))
    assert body["id_token"] == {"id_token": "AABBCCDD", "type": "ISO14443"}
    assert asked.headers["location"].endswith(f"/customer-information/{body['request_id']}")
    cleared = out["cleared"].json()
    assert out["cleared"].status_code == 201 and cleared["complete"] is None and cleared["data"] is None
    assert out["two_ids"].status_code == 422 and out["two_ids"].json()["field"] == "id_token"
    # What the charger was sent, in the spec's shape.
    first = out["sent"][0]
    assert first["request_id"] == body["request_id"] and first["id_token"] == {
        "id_token": "AABBCCDD",
        "type": "ISO14443",
    }
    assert out["sent"][1]["customer_identifier"] == "cust-4711" and len(out["sent"]) == 2

    listed = out["listed"].json()["items"]
    assert [i["request_id"] for i in listed] == [cleared["request_id"], body["request_id"]]
    assert "data" not in listed[0] and listed[1]["size"] == body["size"]
    assert out["one"].json()["data"] == body["data"]
    assert out["viewer_reads"].status_code == 403  # personal data: operators only
    assert out["operator_deletes"].status_code == 403
    assert out["admin_deletes"].status_code == 204
    assert out["gone"].status_code == 404 and out["gone"].json()["field"] == "request_id"
    assert out["admin_again"].status_code == 404


def test_firmware_publication_timeline_and_unpublish(node) -> None:
    base = "/chargers/LC1/firmware-publications"

    async def scenario():
        async with (
            ocpp_charge_point(Station, node.ocpp_url, "LC1", "ocpp2.0.1", boot=True) as cp,
            api(node) as http,
        ):
            out = {}
            out["published"] = await http.post(
                base,
                json={"location": "https://fw.example.com/v2.bin", "checksum": CHECKSUM, "retries": 2},
            )
            rid = out["published"].json()["request_id"]
            out["bad"] = await http.post(
                base, json={"location": "https://fw.example.com/v2.bin", "checksum": "abc"}
            )
            # The notifications follow the reply: wait until the last one is in.
            for _ in range(100):
                out["one"] = (await http.get(f"{base}/{rid}")).json()
                if out["one"]["status"] == "Published":
                    break
                await asyncio.sleep(0.05)
            out["listed"] = (await http.get(base)).json()
            out["unpublished"] = await http.post(f"{base}/{rid}/unpublish")
            out["unpublished_again"] = await http.post(f"{base}/{rid}/unpublish")
            out["unknown"] = await http.post(f"{base}/999999/unpublish")
            out["sent"] = list(cp.unpublished)
            return out

    out = asyncio.run(scenario())
    p = out["published"]
    assert p.status_code == 201, p.text
    assert p.json()["status"] == "Accepted" and p.json()["retries"] == 2
    assert p.headers["location"].endswith(f"/firmware-publications/{p.json()['request_id']}")
    assert out["bad"].status_code == 422 and out["bad"].json()["field"] == "checksum"
    one = out["one"]
    assert [e["status"] for e in one["timeline"]] == [
        "Requested",
        "Accepted",
        "Downloading",
        "Downloaded",
        "Published",
    ]
    assert one["published_locations"] == ["http://lc.local/fw.bin", "ftp://lc.local/fw.bin"]
    assert [i["request_id"] for i in out["listed"]["items"]] == [one["request_id"]]
    u = out["unpublished"]
    assert u.status_code == 200 and u.json()["status"] == "Unpublished"
    assert u.json()["timeline"][-1]["status"] == "Unpublished"
    again = out["unpublished_again"]
    assert again.status_code == 200 and again.json() == u.json()
    assert out["sent"] == [CHECKSUM]  # the second unpublish sent nothing
    assert out["unknown"].status_code == 404 and out["unknown"].json()["field"] == "request_id"


def test_16_chargers_are_refused_with_a_clear_conflict(node) -> None:
    from ocpp.v16 import ChargePoint as ChargePoint16

    async def scenario():
        async with (
            ocpp_charge_point(ChargePoint16, node.ocpp_url, "OLD16", "ocpp1.6", boot=True),
            api(node) as http,
        ):
            return (
                await http.post(
                    "/chargers/OLD16/display-messages",
                    json={"priority": "InFront", "message": {"format": "ASCII", "content": "hi"}},
                ),
                await http.post(
                    "/chargers/OLD16/customer-information", json={"report": True, "customer_identifier": "c"}
                ),
                await http.post(
                    "/chargers/OLD16/firmware-publications",
                    json={"location": "http://x.y/f", "checksum": CHECKSUM},
                ),
                await http.post("/chargers/NOPE/display-messages/refresh"),
            )

    *old, unknown = asyncio.run(scenario())
    for r in old:
        assert r.status_code == 409 and r.json()["code"] == "unsupported_protocol"
    assert unknown.status_code == 404
