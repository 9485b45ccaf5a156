"""The security-profile upgrade as a pure state machine: the commands each protocol's plan sends, how answers,
failures, reconnects and the clock move it, and what a restart does to it."""

from __future__ import annotations

import pytest

from ampgate.profileupgrade import machine as m
from ampgate.profileupgrade.machine import Target, Upgrade


def upgrade(protocol: str, profile: int = 2, *, reconnect_s: float = 60.0) -> Upgrade:
    url = "wss://cs.example.com:9443/ocpp" if protocol == m.OCPP201 else None
    return Upgrade(
        id=1,
        charger_id="CP1",
        protocol=protocol,
        from_profile=1,
        target=Target(security_profile=profile, csms_url=url, configuration_slot=2),
        deadline=0.0,
        reconnect_s=reconnect_s,
    )


def var_result(key: str, status: str, value: str | None = None) -> dict:
    result = {"attributeStatus": status, "component": {"name": m.PRIORITY_COMPONENT}}
    if value is not None:
        result["attributeValue"] = value
    return {key: [result]}


def test_201_plan_writes_the_profile_puts_its_slot_first_and_resets_on_idle() -> None:
    u = upgrade(m.OCPP201, 3)
    call = m.next_call(u)
    assert call is not None and call[0] == "GetVariables"
    m.answered(u, var_result("getVariableResult", "Accepted", "1,0"), now=100.0)
    action, payload = m.next_call(u) or ("", {})
    assert action == "SetNetworkProfile"
    assert payload["configurationSlot"] == 2
    data = payload["connectionData"]
    assert data["securityProfile"] == 3 and data["ocppCsmsUrl"] == "wss://cs.example.com:9443/ocpp"
    assert data["ocppVersion"] == "OCPP20" and data["ocppTransport"] == "JSON"
    m.answered(u, {"status": "Accepted"}, now=101.0)
    action, payload = m.next_call(u) or ("", {})
    # The new slot first, the charger's own after it: its fallback if the new profile cannot connect.
    assert action == "SetVariables" and payload["setVariableData"][0]["attributeValue"] == "2,1,0"
    m.answered(u, var_result("setVariableResult", "RebootRequired"), now=102.0)
    assert m.next_call(u) == ("Reset", {"type": "OnIdle"})
    m.answered(u, {"status": "Scheduled"}, now=103.0)
    assert u.state == m.AWAITING_RECONNECT and u.deadline == 163.0 and m.next_call(u) is None


def test_201_without_a_readable_priority_puts_the_new_slot_alone() -> None:
    u = upgrade(m.OCPP201)
    m.answered(u, var_result("getVariableResult", "UnknownVariable"), now=0.0)
    m.answered(u, {"status": "Accepted"}, now=0.0)
    assert m.next_call(u) is not None
    assert (m.next_call(u) or ("", {}))[1]["setVariableData"][0]["attributeValue"] == "2"
    assert m.new_priority("2, 1,2", u.target) == "2,1"


@pytest.mark.parametrize(
    ("answers", "detail"),
    [
        ([{"status": "Rejected"}], "SetNetworkProfile answered Rejected"),
        ([{"status": "Accepted"}, {"setVariableResult": [{"attributeStatus": "Rejected"}]}], "SetVariables"),
        (
            [
                {"status": "Accepted"},
                {"setVariableResult": [{"attributeStatus": "Accepted"}]},
                {"status": "Rejected"},
            ],
            "Reset",
        ),
        ([{"bogus": True}], "answered ?"),
    ],
)
def test_201_a_refused_step_fails_the_upgrade(answers: list, detail: str) -> None:
    u = upgrade(m.OCPP201)
    m.answered(u, var_result("getVariableResult", "Accepted", "1"), now=0.0)
    for a in answers:
        m.answered(u, a, now=0.0)
    assert u.state == m.FAILED and u.reason == m.REFUSED and detail in (u.detail or "")
    assert m.next_call(u) is None


def test_16_plan_sets_the_key_and_resets_only_when_the_charger_asks() -> None:
    u = upgrade(m.OCPP16)
    assert m.next_call(u) == ("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"})
    m.answered(u, {"status": "Accepted"}, now=10.0)
    assert u.state == m.AWAITING_RECONNECT  # reconnects with the new profile by itself
    u = upgrade(m.OCPP16)
    m.answered(u, {"status": "RebootRequired"}, now=10.0)
    assert m.next_call(u) == ("Reset", {"type": "Soft"})
    m.answered(u, {"status": "Accepted"}, now=11.0)
    assert u.state == m.AWAITING_RECONNECT
    u = upgrade(m.OCPP16)
    m.answered(u, {"status": "NotSupported"}, now=10.0)
    assert u.state == m.FAILED and u.reason == m.REFUSED


def test_only_a_connection_with_the_new_profile_completes_it() -> None:
    u = upgrade(m.OCPP16, 3)
    assert not m.connected(u, 3)  # still configuring: a connection proves nothing yet
    m.answered(u, {"status": "Accepted"}, now=0.0)
    assert not m.connected(u, 1) and not m.connected(u, 2)
    assert u.fallbacks == 2 and u.state == m.AWAITING_RECONNECT
    assert m.connected(u, 3) and u.state == m.COMPLETED
    assert not m.connected(u, 3)  # once


def test_the_deadline_fails_it_as_timed_out_or_fell_back() -> None:
    u = upgrade(m.OCPP16, reconnect_s=30)
    m.answered(u, {"status": "Accepted"}, now=100.0)
    assert not m.expire(u, 129.9)
    assert m.expire(u, 130.0) and u.reason == m.TIMED_OUT
    u = upgrade(m.OCPP16, reconnect_s=30)
    m.answered(u, {"status": "Accepted"}, now=100.0)
    m.connected(u, 1)
    assert m.expire(u, 200.0) and u.reason == m.FELL_BACK and "1 time" in (u.detail or "")
    assert not m.expire(u, 300.0)  # final


def test_command_failure_cancel_and_restart() -> None:
    u = upgrade(m.OCPP201)
    m.command_failed(u, "charger_offline: gone")
    assert u.state == m.FAILED and u.reason == m.COMMAND_FAILED and "GetVariables" in (u.detail or "")
    assert not m.cancel(u)  # final stays final
    u = upgrade(m.OCPP16)
    assert m.cancel(u) and u.state == m.CANCELLED and not m.cancel(u)
    # A restart: commands under way fail (what the charger took is unknown); a wait goes on.
    sending = upgrade(m.OCPP16)
    assert m.interrupted(sending) and sending.reason == m.NODE_RESTARTED
    waiting = upgrade(m.OCPP16)
    m.answered(waiting, {"status": "Accepted"}, now=0.0)
    assert not m.interrupted(waiting) and waiting.state == m.AWAITING_RECONNECT
