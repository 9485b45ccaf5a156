"""/api/v1/chargers/{id}/cost-display: the mode from the device model, an admin's override (admin; operator
403), cleared with null; 422 naming `mode` for an unknown mode and for a mode of the other protocol; 404."""

from __future__ import annotations

from datetime import UTC, datetime

from ampgate.costdisplay.mode import Mode
from ampgate.devicemodel.repository import Variable
from ampgate.events import CostDisplayChanged

from .conftest import Api, Scenario

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def path(charger_id: str) -> str:
    return f"/api/v1/chargers/{charger_id}/cost-display"


async def connected(a: Api, charger_id: str, protocol: str | None) -> None:
    await a.node.chargers.register(charger_id, None)
    if protocol is not None:
        a.node.chargers.record_connection(charger_id, protocol=protocol, at=AT)
    await a.node.store.write(lambda db: None)


def test_the_device_model_decides_until_an_admin_overrides(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await connected(a, "CS1", "ocpp2.0.1")
        r = await a.client.get(path("CS1"), headers=a.auth("viewer"))
        assert r.status_code == 200, r.text
        assert r.json() == {
            "charger_id": "CS1",
            "mode": "none",
            "source": "device_model",
            "override": None,
            "updated_at": None,
            "device_model_mode": "none",
            "protocol": "ocpp2.0.1",
        }
        await a.node.device_variables.record_now(
            "CS1",
            [
                Variable(
                    component="TariffCostCtrlr", variable="Enabled", variable_instance="Tariff", value="true"
                )
            ],
            AT,
            full=False,
        )
        r = await a.client.get(path("CS1"), headers=a.auth("viewer"))
        assert (r.json()["mode"], r.json()["device_model_mode"]) == ("ocpp201", "ocpp201")

        r = await a.client.put(path("CS1"), json={"mode": "none"}, headers=a.auth("admin"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["mode"], body["source"], body["override"], body["device_model_mode"]) == (
            "none",
            "override",
            "none",
            "ocpp201",
        )
        assert body["updated_at"] is not None
        changed = [e for e in iter(a.node.events.receive_nowait, None) if isinstance(e, CostDisplayChanged)]
        assert [(e.charger_id, e.mode, e.override) for e in changed] == [("CS1", "none", "none")]
        assert (await a.client.get(path("CS1"), headers=a.auth("viewer"))).json() == body

        # null (or an empty body) clears the override: the device model decides again.
        for clear in ({"mode": None}, {}):
            r = await a.client.put(path("CS1"), json=clear, headers=a.auth("admin"))
            assert r.status_code == 200, r.text
            assert (r.json()["mode"], r.json()["source"], r.json()["override"]) == (
                "ocpp201",
                "device_model",
                None,
            )

    api(scenario)


def test_each_mode_fits_its_protocol(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await connected(a, "CP16", "ocpp1.6")
        await connected(a, "CS201", "ocpp2.0.1")
        await connected(a, "NEW", None)
        cases: list[tuple[str, Mode, int]] = [
            ("CP16", "california", 200),
            ("CP16", "none", 200),
            ("CP16", "ocpp201", 422),
            ("CS201", "ocpp201", 200),
            ("CS201", "california", 422),
            ("NEW", "ocpp201", 200),  # never connected: taken, applied once the protocol fits
        ]
        for charger_id, mode, status in cases:
            r = await a.client.put(path(charger_id), json={"mode": mode}, headers=a.auth("admin"))
            assert r.status_code == status, (charger_id, mode, r.text)
            if status == 422:
                assert (r.json()["code"], r.json()["field"]) == ("unsupported_mode", "mode")
        r = await a.client.get(path("CP16"), headers=a.auth("viewer"))
        assert r.json()["override"] == "none"  # the refused ocpp201 changed nothing

    api(scenario)


def test_bad_input_names_the_field(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await connected(a, "CS1", "ocpp2.0.1")
        for body in ({"mode": "color"}, {"mode": 3}, {"mode": "OCPP201"}):
            r = await a.client.put(path("CS1"), json=body, headers=a.auth("admin"))
            assert r.status_code == 422, r.text
            assert (r.json()["code"], r.json()["field"]) == ("invalid_field", "mode")
        r = await a.client.put(path("CS1"), json={"mode": "none", "colour": "red"}, headers=a.auth("admin"))
        assert r.status_code == 422 and r.json()["field"] == "colour"
        for method in ("GET", "PUT"):
            r = await a.client.request(method, path("NOPE"), json={"mode": "none"}, headers=a.auth("admin"))
            assert r.status_code == 404 and r.json()["field"] == "id"

    api(scenario)


def test_an_operator_cannot_set_it_and_a_viewer_can_read_it(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await connected(a, "CS1", "ocpp2.0.1")
        for role in ("viewer", "operator"):
            r = await a.client.put(path("CS1"), json={"mode": "none"}, headers=a.auth(role))
            assert r.status_code == 403, (role, r.text)
            assert r.json()["code"] == "forbidden"
        assert (await a.client.get(path("CS1"), headers=a.auth("viewer"))).json()["override"] is None
        assert (await a.client.get(path("CS1"))).status_code == 401

    api(scenario)
