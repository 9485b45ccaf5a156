"""/api/v1/chargers: the merged charger view, keyset pages, registration, and errors that name their field."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from ampgate.store import BootReport, verify_password

from .conftest import Api, FakePresence, Scenario

CHARGERS = "/api/v1/chargers"
BOOT = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
SINCE = datetime(2026, 3, 4, 5, 6, 0, tzinfo=UTC)
SEEN = datetime(2026, 3, 4, 6, 0, 0, tzinfo=UTC)
PASSWORD = "0123456789abcdef-key"


async def settle(a: Api) -> None:
    """Wait until fire-and-forget boot records are committed."""
    await a.node.store.write(lambda db: None)


def boot(a: Api, cp_id: str, protocol: str = "ocpp1.6") -> None:
    a.node.chargers.record_boot(
        BootReport(
            charger_id=cp_id,
            vendor="Acme",
            model="X1",
            serial="S-1",
            firmware="1.2",
            protocol=protocol,
            at=BOOT,
        )
    )


def test_one_charger_merges_store_and_presence(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        boot(a, "CP-ON", protocol="ocpp1.6")
        boot(a, "CP-OFF", protocol="ocpp1.6")
        boot(a, "CP-NEVER")
        await settle(a)
        a.node.presence["CP-ON"] = FakePresence(True, "ocpp2.0.1", SINCE, SEEN)
        a.node.presence["CP-OFF"] = FakePresence(False, "ocpp2.0.1", None, SEEN)

        on = (await a.client.get(f"{CHARGERS}/CP-ON", headers=a.auth("viewer"))).json()
        assert on == {
            "id": "CP-ON",
            "online": True,
            "protocol": "ocpp2.0.1",  # live
            "vendor": "Acme",
            "model": "X1",
            "serial": "S-1",
            "firmware": "1.2",
            "firmware_status": None,
            "firmware_request_id": None,
            "firmware_status_at": None,
            "connected_since": "2026-03-04T05:06:00Z",
            "last_seen": "2026-03-04T06:00:00Z",
            "registered_at": "2026-03-04T05:06:07.890000Z",
            "last_boot_at": "2026-03-04T05:06:07.890000Z",
            "security_profile": 1,  # the floor it may connect with
            "connection_security_profile": 1,  # what the live connection gave
            "tags": [],
        }
        off = (await a.client.get(f"{CHARGERS}/CP-OFF", headers=a.auth("viewer"))).json()
        assert off["online"] is False and off["protocol"] == "ocpp1.6"  # stored, not the stale live one
        assert off["connection_security_profile"] is None
        assert off["connected_since"] is None and off["last_seen"] == "2026-03-04T06:00:00Z"
        never = (await a.client.get(f"{CHARGERS}/CP-NEVER", headers=a.auth("viewer"))).json()
        assert never["online"] is False and never["last_seen"] is None and never["protocol"] == "ocpp1.6"

    api(scenario)


def test_firmware_status_is_shown_and_filters_the_list(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        for i in range(5):
            a.node.chargers.record_boot(
                BootReport(
                    charger_id=f"CP{i}",
                    vendor="V",
                    model="M",
                    serial=None,
                    firmware=f"{i % 2}.0",
                    protocol=None,
                    at=BOOT,
                )
            )
        a.node.chargers.record_firmware_status("CP1", status="Installing", request_id=3, at=SEEN)
        a.node.chargers.record_firmware_status("CP2", status="Installing", request_id=None, at=SEEN)
        a.node.chargers.record_firmware_status("CP3", status="Downloaded", request_id=3, at=SEEN)
        await settle(a)
        one = (await a.client.get(f"{CHARGERS}/CP1", headers=a.auth("viewer"))).json()
        assert (one["firmware"], one["firmware_status"], one["firmware_request_id"]) == (
            "1.0",
            "Installing",
            3,
        )
        assert one["firmware_status_at"] == "2026-03-04T06:00:00Z"

        async def ids(**params: str | int) -> list[str]:
            seen: list[str] = []
            query: dict[str, str | int] = {"limit": 1, **params}
            while True:
                r = await a.client.get(CHARGERS, params=query, headers=a.auth("viewer"))
                assert r.status_code == 200, r.text
                seen += [c["id"] for c in r.json()["items"]]
                if r.json()["next_cursor"] is None:
                    return seen
                query = {"limit": 1, **params, "cursor": r.json()["next_cursor"]}

        assert await ids(firmware="1.0") == ["CP1", "CP3"]
        assert await ids(firmware_status="Installing") == ["CP1", "CP2"]
        assert await ids(firmware="1.0", firmware_status="Installing") == ["CP1"]
        assert await ids(firmware="7.7") == []
        r = await a.client.get(CHARGERS, params={"firmware_status": "Done"}, headers=a.auth("viewer"))
        assert r.status_code == 422 and r.json()["field"] == "firmware_status"

    api(scenario)


def test_unknown_charger_is_404_naming_id(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(f"{CHARGERS}/CP-X", headers=a.auth("viewer"))
        assert r.status_code == 404
        assert r.json() == {"code": "not_found", "message": "charger 'CP-X' is not registered", "field": "id"}

    api(scenario)


def test_ids_with_url_special_characters_round_trip(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(CHARGERS, json={"id": "CP 1 #ä?", "password": None}, headers=a.auth("admin"))
        assert r.status_code == 201, r.text
        r = await a.client.get(f"{CHARGERS}/CP%201%20%23%C3%A4%3F", headers=a.auth("viewer"))
        assert r.status_code == 200, r.text
        assert r.json()["id"] == "CP 1 #ä?"

    api(scenario)


def test_pagination_in_three_pages(api: Scenario) -> None:
    ids = [f"CP{i:02}" for i in range(25)]

    async def scenario(a: Api) -> None:
        for cp_id in reversed(ids):
            boot(a, cp_id)
        await settle(a)
        seen: list[str] = []
        cursors: list[str | None] = []
        params: dict[str, str | int] = {"limit": 10}
        for _ in range(3):
            r = await a.client.get(CHARGERS, params=params, headers=a.auth("viewer"))
            assert r.status_code == 200, r.text
            page = r.json()
            seen += [c["id"] for c in page["items"]]
            cursors.append(page["next_cursor"])
            if page["next_cursor"] is not None:
                params = {"limit": 10, "cursor": page["next_cursor"]}
        assert seen == ids
        assert cursors[0] is not None and cursors[1] is not None and cursors[2] is None
        assert [len(x) for x in (ids[:10], ids[10:20], ids[20:])] == [10, 10, 5]

    api(scenario)


def test_exact_multiple_ends_without_an_empty_page(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        for i in range(4):
            boot(a, f"CP{i}")
        await settle(a)
        first = (await a.client.get(CHARGERS, params={"limit": 2}, headers=a.auth("viewer"))).json()
        second = (
            await a.client.get(
                CHARGERS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=a.auth("viewer")
            )
        ).json()
        assert [c["id"] for c in second["items"]] == ["CP2", "CP3"]
        assert second["next_cursor"] is None

    api(scenario)


def test_default_page_and_empty_store(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(CHARGERS, headers=a.auth("viewer"))
        assert r.json() == {"items": [], "next_cursor": None}

    api(scenario)


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "1.5"])
def test_bad_limit_is_422_naming_limit(api: Scenario, limit: str) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(CHARGERS, params={"limit": limit}, headers=a.auth("viewer"))
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["code"] == "invalid_field" and body["field"] == "limit" and body["message"]

    api(scenario)


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "a",  # not a possible base64 length
        base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),  # not UTF-8
        base64.urlsafe_b64encode(b"a/b").decode().rstrip("="),  # not a charger id
        "",
    ],
)
def test_bad_cursor_is_422_naming_cursor(api: Scenario, cursor: str) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(CHARGERS, params={"cursor": cursor}, headers=a.auth("viewer"))
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "cursor"

    api(scenario)


def test_register_creates_then_replaces(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(CHARGERS, json={"id": "CP-9", "password": PASSWORD}, headers=a.auth("admin"))
        assert r.status_code == 201
        body = r.json()
        assert body["id"] == "CP-9" and body["online"] is False and body["last_boot_at"] is None
        assert "password" not in body and "password_hash" not in body
        stored = a.node.chargers.credential("CP-9")
        assert stored is not None and verify_password(PASSWORD, stored)

        r = await a.client.post(
            CHARGERS, json={"id": "CP-9", "password": "another-password-42"}, headers=a.auth("admin")
        )
        assert r.status_code == 200
        stored = a.node.chargers.credential("CP-9")
        assert stored is not None and verify_password("another-password-42", stored)

        r = await a.client.post(CHARGERS, json={"id": "CP-10"}, headers=a.auth("admin"))
        assert r.status_code == 201
        assert a.node.chargers.credential("CP-10") is None
        assert a.node.registered == [("CP-9", PASSWORD), ("CP-9", "another-password-42"), ("CP-10", None)]

    api(scenario)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "", "password": None}, "id"),
        ({"id": "a/b", "password": None}, "id"),
        ({"id": "x" * 49}, "id"),
        ({"id": "CP", "password": "short"}, "password"),
        ({"id": "CP", "password": "x" * 41}, "password"),
        ({"id": 7, "password": None}, "id"),  # wrong JSON type
        ({"id": "CP", "password": 1234567890123456}, "password"),
        ({"password": PASSWORD}, "id"),  # missing
        ({"id": "CP", "pasword": PASSWORD}, "pasword"),  # unknown key (a typo must not silently drop it)
        ([], None),  # not an object at all
    ],
)
def test_registration_errors_name_the_field(api: Scenario, body: object, field: str | None) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(CHARGERS, json=body, headers=a.auth("admin"))
        assert r.status_code == 422, r.text
        err = r.json()
        assert err["code"] == "invalid_field"
        assert err.get("field") == field
        assert err["message"] and "Validation failed" not in err["message"]
        assert a.node.chargers.count() == 0

    api(scenario)


def test_malformed_json_is_400(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(
            CHARGERS, content=b"{not json", headers={**a.auth("admin"), "content-type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json()["code"] == "invalid_json"

    api(scenario)


def test_unexpected_errors_are_500_without_details(api: Scenario, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(a: Api) -> None:
        class BrokenPresence(dict[str, FakePresence]):
            def get(self, *args: object) -> None:  # type: ignore[override]
                raise RuntimeError("secret internals")

        a.node.presence = BrokenPresence()
        boot(a, "CP1")
        await settle(a)
        r = await a.client.get(f"{CHARGERS}/CP1", headers=a.auth("viewer"))
        assert r.status_code == 500
        assert r.json() == {"code": "internal_error", "message": "internal server error"}
        assert "secret internals" in caplog.text

    api(scenario)
