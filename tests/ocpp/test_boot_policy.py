"""The boot policy's one table and its decisions: what each boot state may send and be sent, the answer to a
boot by the unknown-charger setting, and who is remembered as accepted."""

from __future__ import annotations

import pytest

from ampgate.ocpp import v16, v201
from ampgate.ocpp.boot_policy import (
    ACCEPTED,
    NEW,
    PENDING,
    REJECTED,
    RULES,
    BootPolicy,
    command_refusal,
    rule,
    solicited,
)

from .fakes import ChargerTable

CHARGER_ACTIONS = sorted(set(v16.CHARGER_INITIATED) | set(v201.CHARGER_INITIATED))
CSMS_ACTIONS = sorted(set(v16.CSMS_INITIATED) | set(v201.CSMS_INITIATED))
# What a Pending charger may send unasked [B02.FR.09]: its boot (the rest only when solicited, below).
PENDING_SENDS = {"BootNotification"}
PENDING_IS_SENT = {
    "GetVariables",
    "SetVariables",
    "GetBaseReport",
    "GetReport",
    "GetConfiguration",
    "ChangeConfiguration",
    "TriggerMessage",
    "ExtendedTriggerMessage",
}


@pytest.mark.parametrize("action", CHARGER_ACTIONS)
def test_what_a_charger_may_send_in_each_state(action: str) -> None:
    assert rule(ACCEPTED).charger_may_send(action)
    assert rule(PENDING).charger_may_send(action) == (action in PENDING_SENDS)
    assert rule(REJECTED).charger_may_send(action) == (action == "BootNotification")
    assert rule(NEW).charger_may_send(action) == (action == "BootNotification")


@pytest.mark.parametrize("action", CSMS_ACTIONS)
def test_what_a_charger_may_be_sent_in_each_state(action: str) -> None:
    assert rule(ACCEPTED).may_be_sent(action)
    assert rule(PENDING).may_be_sent(action) == (action in PENDING_IS_SENT)
    assert not rule(REJECTED).may_be_sent(action)
    assert not rule(NEW).may_be_sent(action)


def test_the_table_covers_every_state_and_an_unknown_one_may_do_nothing() -> None:
    assert set(RULES) == {ACCEPTED, PENDING, REJECTED, NEW}
    assert not rule("Bogus").charger_may_send("Heartbeat") and not rule("Bogus").may_be_sent("Reset")
    assert command_refusal(PENDING) == (
        "is not accepted (boot status Pending): only ChangeConfiguration, ExtendedTriggerMessage, "
        "GetBaseReport, GetConfiguration, GetReport, GetVariables, SetVariables, TriggerMessage may be sent"
    )
    assert command_refusal(None) == "is not accepted (boot status None): no command may be sent"


@pytest.mark.parametrize(
    ("unknown_boot", "status", "interval", "remembered"),
    [("accept", ACCEPTED, 300, True), ("pending", PENDING, 60, False), ("reject", REJECTED, 60, False)],
)
def test_an_unknown_chargers_boot_follows_the_setting(
    unknown_boot: str, status: str, interval: int, remembered: bool
) -> None:
    table = ChargerTable(accepted=["KNOWN"])
    policy = BootPolicy(table, unknown_boot=unknown_boot, heartbeat_interval=300, retry_interval=60)  # type: ignore[arg-type]
    assert policy.initial_state("NEW1") == NEW and policy.initial_state("KNOWN") == ACCEPTED
    decision = policy.decide("NEW1")
    assert (decision.status, decision.interval) == (status, interval)
    assert policy.is_accepted("NEW1") == remembered
    assert ("NEW1" in table.accepted) == remembered  # persisted through the store as well
    # A charger accepted before is Accepted whatever the setting, and not written again.
    assert policy.decide("KNOWN").status == ACCEPTED
    assert table.accepted.count("KNOWN") == 1


def test_registering_accepts_a_pending_charger_from_its_next_boot() -> None:
    policy = BootPolicy(ChargerTable(), unknown_boot="pending", heartbeat_interval=300, retry_interval=60)
    assert policy.decide("CP1").status == PENDING
    policy.accept(["CP1"])
    assert policy.decide("CP1").status == ACCEPTED
    assert policy.initial_state("CP1") == ACCEPTED


@pytest.mark.parametrize(
    ("action", "payload", "asked"),
    [
        (
            "TriggerMessage",
            {"requestedMessage": "StatusNotification", "connectorId": 1},
            {"StatusNotification"},
        ),
        ("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"Heartbeat"}),
        ("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}, {"SignCertificate"}),
        ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}, {"SignCertificate"}),
        ("ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification"}, {"LogStatusNotification"}),
        ("GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"}, {"NotifyReport"}),
        ("GetReport", {"requestId": 2}, {"NotifyReport"}),
        ("GetVariables", {"getVariableData": []}, set()),
        ("TriggerMessage", {"requestedMessage": 7}, set()),
    ],
)
def test_what_a_command_asks_the_charger_to_send(action: str, payload: object, asked: set[str]) -> None:
    assert solicited(action, payload) == asked
