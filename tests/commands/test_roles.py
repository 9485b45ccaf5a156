"""The command role table (ampgate.commands.roles): it names every action the central system sends in either
version (so none falls to the fail-closed default by accident), and its payload rules."""

from __future__ import annotations

import pytest

from ampgate.commands.roles import COMMAND_ROLES, check_command_role, required_role
from ampgate.errors import ForbiddenError
from ampgate.ocpp import v16, v201


def test_the_table_names_exactly_the_actions_the_central_system_sends() -> None:
    assert set(COMMAND_ROLES) == set(v16.CSMS_INITIATED) | set(v201.CSMS_INITIATED)
    assert {r.minimum for r in COMMAND_ROLES.values()} == {"operator", "admin"}


@pytest.mark.parametrize(
    ("action", "payload", "minimum", "field"),
    [
        ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, "operator", "name"),
        ("ChangeConfiguration", {"key": "AUTHORIZATIONKEY", "value": "x"}, "admin", "key"),
        ("ChangeConfiguration", {"key": "OcppServerUrl", "value": "x"}, "admin", "key"),
        ("ChangeConfiguration", "not a dict", "operator", "name"),
        ("SetVariables", {"setVariableData": "nope"}, "operator", "name"),
        (
            "SetVariables",
            {"setVariableData": [{"component": {"name": "securityctrlr"}, "variable": {"name": "x"}}]},
            "admin",
            "setVariableData[0]",
        ),
        (
            "SetVariables",
            {"setVariableData": [{"component": {"name": "Vendor"}, "variable": {"name": "ApnPassword"}}]},
            "admin",
            "setVariableData[0]",
        ),
        ("TriggerMessage", {"requestedMessage": "SignCombinedCertificate"}, "admin", "requestedMessage"),
        ("TriggerMessage", {"requestedMessage": "MeterValues"}, "operator", "name"),
        ("GetLog", {"log": {"remoteLocation": None}}, "operator", "name"),
        ("GetDiagnostics", {"location": "ftp://x/"}, "admin", "location"),
        ("DataTransfer", {}, "admin", "name"),
        ("NoSuchAction", {}, "admin", "name"),
    ],
)
def test_payload_rules(action: str, payload: object, minimum: str, field: str) -> None:
    need = required_role(action, payload)
    assert (need.minimum, need.field) == (minimum, field)


def test_check_raises_forbidden_with_the_action_and_role() -> None:
    check_command_role("admin", "SetNetworkProfile", {})
    check_command_role("operator", "Reset", {"type": "Soft"})
    with pytest.raises(ForbiddenError) as e:
        check_command_role("operator", "SetNetworkProfile", {})
    assert "SetNetworkProfile" in e.value.message and "admin" in e.value.message
    assert e.value.details == {"action": "SetNetworkProfile", "required_role": "admin"}  # type: ignore[attr-defined]
    with pytest.raises(ForbiddenError):
        check_command_role(None, "Reset", {})
