"""Commands by role on a real node: every central-system action and the payloads that raise it to admin, sent by
a viewer, an operator and an admin. A refused command is refused before anything else (the charger need not be
connected), and nothing is sent, queued or recorded; a connected charger never sees it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import ConfigurationStatus

from tests.conftest import start_node
from tests.integration.ocpp_clients import ocpp_charge_point
from tests.integration.test_api_node import cli_token

ROLES = ("viewer", "operator", "admin")
# Registered, never connected: allowed commands answer 409 (offline); refused ones must leave no trace.
OFFLINE = "ROLES-OFFLINE"

_HEARTBEAT = {
    "attributeValue": "60",
    "component": {"name": "OCPPCommCtrlr"},
    "variable": {"name": "HeartbeatInterval"},
}
# (action, payload, the minimum role): written out here rather than read from ampgate.commands.roles, so the
# test pins the table instead of repeating it.
CASES: list[tuple[str, dict, str]] = [
    ("Reset", {"type": "Soft"}, "operator"),
    ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}, "operator"),
    ("UnlockConnector", {"connectorId": 1}, "operator"),
    ("ClearCache", {}, "operator"),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, "operator"),
    ("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}, "admin"),
    ("TriggerMessage", {"requestedMessage": "SignV2GCertificate"}, "admin"),
    ("ExtendedTriggerMessage", {"requestedMessage": "StatusNotification"}, "operator"),
    ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}, "admin"),
    (
        "ReserveNow",
        {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "T", "reservationId": 1},
        "operator",
    ),
    ("CancelReservation", {"reservationId": 1}, "operator"),
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {}}, "operator"),
    ("ClearChargingProfile", {}, "operator"),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 60}, "operator"),
    ("GetChargingProfiles", {"requestId": 1, "chargingProfile": {}}, "operator"),
    ("GetLocalListVersion", {}, "operator"),
    ("SendLocalList", {"listVersion": 1, "updateType": "Full"}, "operator"),
    ("RemoteStartTransaction", {"idTag": "T"}, "operator"),
    ("RemoteStopTransaction", {"transactionId": 1}, "operator"),
    (
        "RequestStartTransaction",
        {"idToken": {"idToken": "T", "type": "Central"}, "remoteStartId": 1},
        "operator",
    ),
    ("RequestStopTransaction", {"transactionId": "1"}, "operator"),
    ("GetTransactionStatus", {}, "operator"),
    ("GetConfiguration", {}, "operator"),
    ("GetVariables", {"getVariableData": []}, "operator"),
    ("GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"}, "operator"),
    ("GetReport", {"requestId": 1}, "operator"),
    ("GetMonitoringReport", {"requestId": 1}, "operator"),
    ("SetMonitoringBase", {"monitoringBase": "All"}, "operator"),
    ("SetMonitoringLevel", {"severity": 5}, "operator"),
    ("SetVariableMonitoring", {"setMonitoringData": []}, "operator"),
    ("ClearVariableMonitoring", {"id": [1]}, "operator"),
    ("SetDisplayMessage", {"message": {}}, "operator"),
    ("GetDisplayMessages", {"requestId": 1}, "operator"),
    ("ClearDisplayMessage", {"id": 1}, "operator"),
    ("CostUpdated", {"totalCost": 1, "transactionId": "1"}, "operator"),
    ("CustomerInformation", {"requestId": 1, "report": True, "clear": False}, "operator"),
    ("GetLog", {"logType": "DiagnosticsLog", "requestId": 1, "log": {}}, "operator"),
    ("GetLog", {"logType": "DiagnosticsLog", "requestId": 1, "log": {"remoteLocation": "ftp://x/"}}, "admin"),
    ("GetDiagnostics", {}, "operator"),
    ("GetDiagnostics", {"location": "ftp://evil.example/"}, "admin"),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "300"}, "operator"),
    ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "60"}, "operator"),
    ("ChangeConfiguration", {"key": "AuthorizationKey", "value": "0011223344556677"}, "admin"),
    ("ChangeConfiguration", {"key": "securityprofile", "value": "0"}, "admin"),
    ("ChangeConfiguration", {"key": "CpoName", "value": "x"}, "admin"),
    ("ChangeConfiguration", {"key": "CentralSystemURL", "value": "ws://evil/"}, "admin"),
    ("ChangeConfiguration", {"key": "WifiPassword", "value": "x"}, "admin"),
    ("SetVariables", {"setVariableData": [_HEARTBEAT]}, "operator"),
    (
        "SetVariables",
        {
            "setVariableData": [
                _HEARTBEAT,
                {
                    "attributeValue": "x",
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                },
            ]
        },
        "admin",
    ),
    (
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "0",
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "SecurityProfile"},
                }
            ]
        },
        "admin",
    ),
    (
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "1,0",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "NetworkConfigurationPriority"},
                }
            ]
        },
        "admin",
    ),
    (
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "x",
                    "component": {"name": "ISO15118Ctrlr"},
                    "variable": {"name": "SeccId"},
                }
            ]
        },
        "admin",
    ),
    ("SetNetworkProfile", {"configurationSlot": 1, "connectionData": {}}, "admin"),
    ("UpdateFirmware", {"location": "http://evil/fw.bin", "retrieveDate": "2030-01-01T00:00:00Z"}, "admin"),
    ("SignedUpdateFirmware", {"requestId": 1, "firmware": {}}, "admin"),
    ("PublishFirmware", {"location": "http://x/", "checksum": "0" * 32, "requestId": 1}, "admin"),
    ("UnpublishFirmware", {"checksum": "0" * 32}, "admin"),
    ("InstallCertificate", {"certificateType": "CentralSystemRootCertificate", "certificate": "x"}, "admin"),
    ("DeleteCertificate", {"certificateHashData": {}}, "admin"),
    ("CertificateSigned", {"certificateChain": "x"}, "admin"),
    ("GetInstalledCertificateIds", {}, "admin"),
    ("DataTransfer", {"vendorId": "x"}, "admin"),
    ("Teleport", {}, "admin"),  # unknown to the table: fails closed
]


@pytest.fixture(scope="module")
def roles_node(tmp_path_factory):
    tmp: Path = tmp_path_factory.mktemp("roles")
    node = start_node(tmp)
    node.tokens = {role: cli_token(node, role) for role in ROLES}  # type: ignore[attr-defined]
    with node.api() as api:
        assert api.post("/chargers", json={"id": OFFLINE}).status_code in (200, 201)
    yield node
    node.stop()


def _at_least(role: str, minimum: str) -> bool:
    return ROLES.index(role) >= ROLES.index(minimum)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("action", "payload", "minimum"), CASES, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(CASES)]
)
def test_each_command_needs_its_role(roles_node, action, payload, minimum, role):
    with roles_node.api(roles_node.tokens[role]) as api:
        for params in ({}, {"queue": "true"}):
            r = api.post(f"/chargers/{OFFLINE}/commands/{action}", json=payload, params=params)
            if _at_least(role, minimum):
                # Past the role check: the charger is offline, or the body or action is refused on its merits.
                assert r.status_code != 403, r.text
            else:
                body = r.json()
                assert r.status_code == 403, r.text
                assert body["code"] == "forbidden"
                # A viewer is stopped by the route's guard, before the body is read: it is told the action's role
                # without the payload's (operator where a payload raises it to admin).
                need = body["details"]["required_role"]
                assert body["details"]["action"] == action
                assert need == minimum or (role == "viewer" and need == "operator")
                assert action in body["message"] and need in body["message"]
                assert body["field"]
                assert "X-Command-Id" not in r.headers


def test_refused_commands_leave_no_record_and_queue_nothing(roles_node):
    charger = "ROLES-REFUSED"
    with roles_node.api() as admin:
        assert admin.post("/chargers", json={"id": charger}).status_code == 201
    with roles_node.api(roles_node.tokens["operator"]) as api:
        for action, payload, minimum in CASES:
            if minimum == "admin":
                for params in ({}, {"queue": "true"}):
                    r = api.post(f"/chargers/{charger}/commands/{action}", json=payload, params=params)
                    assert r.status_code == 403
        r = api.post(f"/chargers/{charger}/logs", json={"location": "ftp://evil.example/"})
        assert r.status_code == 403 and r.json()["field"] == "location"
        assert api.get(f"/chargers/{charger}/commands").json()["items"] == []
        assert api.get(f"/chargers/{charger}/logs").json()["items"] == []


class Recorder16(ChargePoint16):
    seen: list[dict]

    @on(Action16.change_configuration)
    async def on_change_configuration(self, key, value, **_):
        self.seen.append({"key": key, "value": value})
        return result16.ChangeConfiguration(status=ConfigurationStatus.accepted)


def test_a_connected_charger_never_sees_a_refused_command(roles_node):
    operator = roles_node.tokens["operator"]

    async def scenario():
        async with ocpp_charge_point(
            Recorder16, roles_node.ocpp_url, "ROLES-LIVE", "ocpp1.6", boot=True
        ) as cp:
            cp.seen = []
            headers = {"Authorization": f"Bearer {operator}"}
            async with httpx.AsyncClient(base_url=roles_node.api_url, headers=headers, timeout=30) as api:
                url = "/chargers/ROLES-LIVE/commands/ChangeConfiguration"
                refused = await api.post(
                    url, json={"key": "AuthorizationKey", "value": "00112233445566778899"}
                )
                allowed = await api.post(url, json={"key": "HeartbeatInterval", "value": "300"})
            return refused, allowed, list(cp.seen)

    refused, allowed, seen = asyncio.run(scenario())
    assert refused.status_code == 403 and refused.json()["field"] == "key"
    assert allowed.status_code == 200 and allowed.json() == {"status": "Accepted"}
    assert seen == [{"key": "HeartbeatInterval", "value": "300"}]
