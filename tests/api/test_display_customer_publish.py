"""/api/v1/chargers/{id}/display-messages, …/customer-information and …/firmware-publications in-process: the
role of every route (and 403 for the role below it), bad input named by its field before anything is sent or
stored, the stand-in's offline charger as a 409, pages and 404s over seeded rows, and each route's role in its
OpenAPI description. Commands reaching real chargers are tested end to end in tests/integration."""

from __future__ import annotations

from datetime import UTC, datetime

from ampgate.customer import Customer, IdToken
from ampgate.display import DisplayMessage
from ampgate.firmware_publish import PublishSpec
from ampgate.reports import Part

from .conftest import Api, Scenario

AT = datetime(2026, 11, 30, 8, tzinfo=UTC)
MD5 = "9e107d9d372bb6826bd81d3542a419d6"
DISPLAY = "/api/v1/chargers/CP/display-messages"
CUSTOMER = "/api/v1/chargers/CP/customer-information"
PUBLISH = "/api/v1/chargers/CP/firmware-publications"
MESSAGE = {"priority": "InFront", "message": {"format": "UTF8", "content": "Hello"}}
ASK = {"report": True, "id_token": {"id_token": "AABBCCDD", "type": "ISO14443"}}
FIRMWARE = {"location": "https://fw.example.com/v2.bin", "checksum": MD5}

# (method, path, body, the role needed)
ROUTES = [
    ("GET", DISPLAY, None, "viewer"),
    ("GET", f"{DISPLAY}/1", None, "viewer"),
    ("POST", DISPLAY, MESSAGE, "operator"),
    ("DELETE", f"{DISPLAY}/1", None, "operator"),
    ("POST", f"{DISPLAY}/refresh", None, "operator"),
    ("POST", CUSTOMER, ASK, "operator"),
    ("GET", CUSTOMER, None, "operator"),
    ("GET", f"{CUSTOMER}/1", None, "operator"),
    ("DELETE", f"{CUSTOMER}/1", None, "admin"),
    ("POST", PUBLISH, FIRMWARE, "operator"),
    ("GET", PUBLISH, None, "viewer"),
    ("GET", f"{PUBLISH}/1", None, "viewer"),
    ("POST", f"{PUBLISH}/1/unpublish", None, "operator"),
]
BELOW = {"operator": "viewer", "admin": "operator"}


async def register(a: Api, charger_id: str = "CP") -> None:
    await a.node.chargers.register(charger_id, None)


def test_every_route_refuses_the_role_below_its_own(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await register(a)
        for method, path, body, role in ROUTES:
            if role in BELOW:
                r = await a.client.request(method, path, json=body, headers=a.auth(BELOW[role]))
                assert r.status_code == 403, (method, path, r.status_code)
            r = await a.client.request(method, path, json=body, headers=a.auth(role))
            assert r.status_code not in (401, 403), (method, path, r.status_code)
            r = await a.client.request(method, path, json=body)
            assert r.status_code == 401
        schema = (await a.client.get("/api/v1/schema/openapi.json")).json()
        for method, path, _, role in ROUTES:
            template = path.replace("/CP/", "/{charger_id}/").replace("/1", "/{x}")
            ops = [
                op
                for p, item in schema["paths"].items()
                if p.replace("{message_id}", "{x}").replace("{request_id}", "{x}") == template
                for m, op in item.items()
                if m == method.lower()
            ]
            assert len(ops) == 1, (method, template)
            text = ops[0].get("description", "") + ops[0].get("summary", "")
            assert role in text, (method, template, text)

    api(scenario)


def test_display_messages_bad_input_offline_and_the_view(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await register(a)
        op = a.auth("operator")
        for body, field in (
            ({**MESSAGE, "priority": "Soon"}, "priority"),
            ({**MESSAGE, "id": -1}, "id"),
            ({**MESSAGE, "message": {"format": "PDF", "content": "x"}}, "message.format"),
            ({**MESSAGE, "message": {"format": "UTF8", "content": "x" * 513}}, "message.content"),
            ({**MESSAGE, "start_at": "2026-12-01T10:00:00Z", "end_at": "2026-12-01T09:00:00Z"}, "end_at"),
            ({**MESSAGE, "display": {"name": "D", "connector_id": 1}}, "display.connector_id"),
            ({**MESSAGE, "colour": "red"}, "colour"),
        ):
            r = await a.client.post(DISPLAY, json=body, headers=op)
            assert r.status_code == 422 and r.json()["field"] == field, (body, r.json())
        r = await a.client.post(DISPLAY, json=MESSAGE, headers=op)
        assert r.status_code == 409 and r.json()["code"] == "charger_offline"
        assert (await a.client.post(f"{DISPLAY}/refresh", headers=op)).status_code == 409
        assert (await a.client.delete(f"{DISPLAY}/3", headers=op)).status_code == 409
        # Seeded view: paged by id.
        for i in (3, 1, 2):
            await a.node.display_view.put(
                "CP", DisplayMessage(id=i, priority="NormalCycle", format="ASCII", content=f"m{i}"), AT
            )
        page = (await a.client.get(DISPLAY, params={"limit": 2}, headers=a.auth("viewer"))).json()
        assert [m["id"] for m in page["items"]] == [1, 2] and page["next_cursor"] == "2"
        rest = (await a.client.get(DISPLAY, params={"cursor": "2"}, headers=a.auth("viewer"))).json()
        assert [m["id"] for m in rest["items"]] == [3] and rest["next_cursor"] is None
        one = (await a.client.get(f"{DISPLAY}/3", headers=a.auth("viewer"))).json()
        assert (
            one["message"] == {"format": "ASCII", "language": None, "content": "m3"}
            and one["source"] == "set"
        )
        missing = await a.client.get(f"{DISPLAY}/9", headers=a.auth("viewer"))
        assert missing.status_code == 404 and missing.json()["field"] == "message_id"
        unknown = await a.client.get("/api/v1/chargers/NOPE/display-messages", headers=a.auth("viewer"))
        assert unknown.status_code == 404 and unknown.json()["field"] == "id"

    api(scenario)


def test_customer_information_bad_input_and_kept_requests(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await register(a)
        op = a.auth("operator")
        for body, field in (
            ({"report": False, "clear": False, "customer_identifier": "c"}, "report"),
            ({"report": True}, "customer_identifier"),
            ({**ASK, "customer_identifier": "c"}, "id_token"),
            ({"report": True, "id_token": {"id_token": "A", "type": "Badge"}}, "id_token.type"),
            ({"report": True, "customer_identifier": "c" * 65}, "customer_identifier"),
        ):
            r = await a.client.post(CUSTOMER, json=body, headers=op)
            assert r.status_code == 422 and r.json()["field"] == field, (body, r.json())
        r = await a.client.post(CUSTOMER, json=ASK, headers=op)
        assert r.status_code == 409 and r.json()["code"] == "charger_offline"
        assert (await a.client.get(CUSTOMER, headers=op)).json() == {"items": [], "next_cursor": None}
        # Seeded: a request with a two-part report.
        customer = Customer(id_token=IdToken(id_token="AABBCCDD", type="ISO14443"))
        await a.node.customer_requests.create("CP", 41, True, False, customer, AT)
        await a.node.customer_requests.create("CP", 42, False, True, customer, AT)
        for seq, data in ((1, "world"), (0, "hello ")):
            payload = (
                f'{{"data":"{data}","seqNo":{seq},"generatedAt":"2026-11-30T08:00:00Z","requestId":41,'
                f'"tbc":{"true" if seq == 0 else "false"}}}'
            )
            await a.node.reports.add(
                Part(
                    charger_id="CP",
                    kind="NotifyCustomerInformation",
                    request_id=41,
                    seq_no=seq,
                    tbc=seq == 0,
                    generated_at=AT,
                    received_at=AT,
                    payload=payload.encode(),
                )
            )
        page = (await a.client.get(CUSTOMER, params={"limit": 1}, headers=op)).json()
        assert [i["request_id"] for i in page["items"]] == [42] and page["next_cursor"] == "42"
        rest = (await a.client.get(CUSTOMER, params={"cursor": "42"}, headers=op)).json()
        (item,) = rest["items"]
        assert (item["request_id"], item["parts"], item["complete"], item["size"]) == (41, 2, True, 11)
        assert "data" not in item and item["id_token"] == {"id_token": "AABBCCDD", "type": "ISO14443"}
        one = (await a.client.get(f"{CUSTOMER}/41", headers=op)).json()
        assert one["data"] == "hello world" and one["status"] == "Requested"
        assert (await a.client.delete(f"{CUSTOMER}/41", headers=a.auth("admin"))).status_code == 204
        assert a.node.report_parts.get("CP", "NotifyCustomerInformation", 41) is None
        gone = await a.client.get(f"{CUSTOMER}/41", headers=op)
        assert gone.status_code == 404 and gone.json()["field"] == "request_id"
        again = await a.client.delete(f"{CUSTOMER}/41", headers=a.auth("admin"))
        assert again.status_code == 404

    api(scenario)


def test_firmware_publications_bad_input_and_pages(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await register(a)
        op = a.auth("operator")
        for body, field in (
            ({**FIRMWARE, "checksum": "abc"}, "checksum"),
            ({**FIRMWARE, "location": "fw.bin"}, "location"),
            ({**FIRMWARE, "retries": -1}, "retries"),
            ({"checksum": MD5}, "location"),
        ):
            r = await a.client.post(PUBLISH, json=body, headers=op)
            assert r.status_code == 422 and r.json()["field"] == field, (body, r.json())
        r = await a.client.post(PUBLISH, json=FIRMWARE, headers=op)
        assert r.status_code == 409 and r.json()["code"] == "charger_offline"
        assert (await a.client.get(PUBLISH, headers=a.auth("viewer"))).json() == {
            "items": [],
            "next_cursor": None,
        }
        first = await a.node.publications.create(
            "CP", PublishSpec(location=FIRMWARE["location"], checksum=MD5), AT
        )
        second = await a.node.publications.create(
            "CP", PublishSpec(location=FIRMWARE["location"], checksum=MD5, retries=3), AT
        )
        page = (await a.client.get(PUBLISH, params={"limit": 1}, headers=a.auth("viewer"))).json()
        assert [i["request_id"] for i in page["items"]] == [second.id] and page["next_cursor"] == str(
            second.id
        )
        one = (await a.client.get(f"{PUBLISH}/{first.id}", headers=a.auth("viewer"))).json()
        assert one["id"] == one["request_id"] == first.id
        assert [e["status"] for e in one["timeline"]] == ["Requested"] and one["published_locations"] is None
        # The stand-in's charger is offline: unpublishing it is a 409, and a publication of another charger a 404.
        r = await a.client.post(f"{PUBLISH}/{first.id}/unpublish", headers=op)
        assert r.status_code == 409
        r = await a.client.post(
            f"/api/v1/chargers/OTHER/firmware-publications/{first.id}/unpublish", headers=op
        )
        assert r.status_code == 404 and r.json()["field"] == "request_id"

    api(scenario)
