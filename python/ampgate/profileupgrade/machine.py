"""Raising a charger's OCPP security profile, as the specifications describe it, as a pure state machine.

2.0.1 [A05] (upgrade charging station security profile): the CSMS writes a network connection profile with the
higher profile into a free configuration slot (SetNetworkProfile), puts that slot first in
OCPPCommCtrlr.NetworkConfigurationPriority (SetVariables, keeping the slots the charger had after it: they are
its fallback), and resets the charger (Reset OnIdle: a transaction in progress ends first). The charger then
connects with the first slot of its priority list and, when it cannot, falls back to the next.

1.6 (security extension): the CSMS sets the SecurityProfile configuration key (ChangeConfiguration); the charger
reconnects with the new profile (or after a reset when it answers RebootRequired: the machine sends Reset Soft)
and goes back to its previous profile when it cannot connect with the new one.

Either way the node keeps accepting the charger on its old profile until it has connected with the new one: only
then is the charger's lowest allowed profile raised (`Upgrade.connected`), so a charger that falls back is not
locked out. A reconnect with a lower profile is counted (`fallbacks`) and the upgrade keeps waiting until its
deadline: the charger may still be working through its connection attempts, or reconnected on a network blip
before its reset (Reset OnIdle waits for a transaction to end).

No I/O here: `ProfileUpgrades` (service.py) sends what `next_call` says, feeds the answers to `answered`, the
charger's connections to `connected` and the clock to `expire`, and stores and publishes each change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

OCPP16, OCPP201 = "ocpp1.6", "ocpp2.0.1"

# States. `configuring`: commands go to the charger; `awaiting_reconnect`: it took them and is expected back on
# the new profile; then one of the final ones.
CONFIGURING = "configuring"
AWAITING_RECONNECT = "awaiting_reconnect"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
STATES = (CONFIGURING, AWAITING_RECONNECT, COMPLETED, FAILED, CANCELLED)
FINAL = frozenset({COMPLETED, FAILED, CANCELLED})

# Why an upgrade failed.
REFUSED = "refused"  # the charger answered a step with a status other than the ones that go on
COMMAND_FAILED = "command_failed"  # a step's command failed (CALLERROR, timeout, the charger went away)
TIMED_OUT = "timed_out"  # not back on the new profile by the deadline, and never seen on a lower one
FELL_BACK = "fell_back"  # not back on the new profile by the deadline, seen on a lower one meanwhile
NODE_RESTARTED = "node_restarted"  # the node stopped while commands were going out

PRIORITY_COMPONENT = "OCPPCommCtrlr"
PRIORITY_VARIABLE = "NetworkConfigurationPriority"


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """What to configure: the profile, and for 2.0.1 the network connection profile that carries it."""

    security_profile: int
    csms_url: str | None = None  # 2.0.1 ocppCsmsUrl (without the charger's id); required for 2.0.1
    configuration_slot: int = 1
    message_timeout_s: int = 30
    ocpp_interface: str = "Wired0"


class Upgrade(msgspec.Struct, kw_only=True):
    """One upgrade of one charger, as stored. `step` is the index of the command under way (or next) in the
    protocol's plan; `priority` is the charger's NetworkConfigurationPriority as read (2.0.1)."""

    id: int
    charger_id: str
    protocol: str
    from_profile: int
    target: Target
    state: str = CONFIGURING
    step: int = 0
    reason: str | None = None
    detail: str | None = None
    priority: str | None = None
    fallbacks: int = 0
    deadline: float  # epoch seconds: back on the new profile by then, or failed
    reconnect_s: float  # how long to wait for it, from when the commands were taken


def steps(protocol: str) -> Sequence[str]:
    """The actions of the plan, in order."""
    if protocol == OCPP16:
        return ("ChangeConfiguration", "Reset")
    return ("GetVariables", "SetNetworkProfile", "SetVariables", "Reset")


def next_call(u: Upgrade) -> tuple[str, dict[str, Any]] | None:
    """The command to send now, or None when none is due (not configuring)."""
    if u.state != CONFIGURING:
        return None
    action = steps(u.protocol)[u.step]
    t = u.target
    if u.protocol == OCPP16:
        if action == "ChangeConfiguration":
            return action, {"key": "SecurityProfile", "value": str(t.security_profile)}
        return action, {"type": "Soft"}
    where = {"component": {"name": PRIORITY_COMPONENT}, "variable": {"name": PRIORITY_VARIABLE}}
    if action == "GetVariables":
        return action, {"getVariableData": [where]}
    if action == "SetNetworkProfile":
        data = {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": t.csms_url,
            "messageTimeout": t.message_timeout_s,
            "securityProfile": t.security_profile,
            "ocppInterface": t.ocpp_interface,
        }
        return action, {"configurationSlot": t.configuration_slot, "connectionData": data}
    if action == "SetVariables":
        return action, {"setVariableData": [{**where, "attributeValue": new_priority(u.priority, t)}]}
    return action, {"type": "OnIdle"}


def new_priority(old: str | None, t: Target) -> str:
    """The new slot first, then the slots the charger had (its fallback), without repeating the new one."""
    slot = str(t.configuration_slot)
    rest = [s.strip() for s in (old or "").split(",") if s.strip() and s.strip() != slot]
    return ",".join([slot, *rest])


def answered(u: Upgrade, payload: Any, now: float) -> None:
    """The charger answered the current step with `payload`: go on, wait for it, or fail."""
    assert u.state == CONFIGURING
    action = steps(u.protocol)[u.step]
    status = _status(action, payload)
    if u.protocol == OCPP16:
        if action == "ChangeConfiguration":
            if status == "Accepted":  # the charger reconnects with the new profile on its own
                return _await(u, now)
            if status == "RebootRequired":
                u.step += 1
                return None
        elif status == "Accepted":
            return _await(u, now)
        return _fail(u, REFUSED, f"{action} answered {status}")
    if action == "GetVariables":
        # A charger that does not report its priority list (no such variable): the new slot alone comes first.
        u.priority = _priority(payload) if status == "Accepted" else None
        u.step += 1
        return None
    if (action, status) in {
        ("SetNetworkProfile", "Accepted"),
        ("SetVariables", "Accepted"),
        ("SetVariables", "RebootRequired"),
    }:
        u.step += 1
        return None
    if action == "Reset" and status in ("Accepted", "Scheduled"):
        return _await(u, now)
    return _fail(u, REFUSED, f"{action} answered {status}")


def command_failed(u: Upgrade, why: str) -> None:
    """The current step's command failed (not sent, CALLERROR, no answer in time)."""
    assert u.state == CONFIGURING
    _fail(u, COMMAND_FAILED, f"{steps(u.protocol)[u.step]}: {why}")


def connected(u: Upgrade, profile: int) -> bool:
    """The charger connected with security profile `profile`. True when that completes the upgrade (the caller
    then raises the charger's lowest allowed profile to the target)."""
    if u.state != AWAITING_RECONNECT:
        return False
    if profile >= u.target.security_profile:
        u.state = COMPLETED
        u.detail = f"connected with security profile {profile}"
        return True
    u.fallbacks += 1
    return False


def expire(u: Upgrade, now: float) -> bool:
    """Fail the upgrade if it is waiting past its deadline; True if it did."""
    if u.state != AWAITING_RECONNECT or now < u.deadline:
        return False
    if u.fallbacks:
        _fail(u, FELL_BACK, f"reconnected {u.fallbacks} time(s) with a lower profile, never with the new one")
    else:
        _fail(u, TIMED_OUT, "did not reconnect with the new profile in time")
    return True


def cancel(u: Upgrade) -> bool:
    """Cancel an upgrade not yet final; True if it changed. What the charger already took stays taken (its
    fallback list keeps the old profile reachable)."""
    if u.state in FINAL:
        return False
    u.state = CANCELLED
    return True


def interrupted(u: Upgrade) -> bool:
    """At start: an upgrade that was sending commands when the node stopped cannot know what the charger took;
    it fails. One waiting for the reconnect keeps waiting. True if it changed."""
    if u.state != CONFIGURING:
        return False
    _fail(u, NODE_RESTARTED, "the node stopped while the commands were being sent")
    return True


def _await(u: Upgrade, now: float) -> None:
    u.state = AWAITING_RECONNECT
    u.deadline = now + u.reconnect_s


def _fail(u: Upgrade, reason: str, detail: str) -> None:
    u.state = FAILED
    u.reason = reason
    u.detail = detail[:255]


def _status(action: str, payload: Any) -> str:
    if not isinstance(payload, dict):
        return "?"
    if action in ("GetVariables", "SetVariables"):
        key = "getVariableResult" if action == "GetVariables" else "setVariableResult"
        results = payload.get(key)
        first = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else {}
        status = first.get("attributeStatus")
    else:
        status = payload.get("status")
    return status if isinstance(status, str) else "?"


def _priority(payload: Any) -> str | None:
    value = payload["getVariableResult"][0].get("attributeValue")
    return value if isinstance(value, str) else None
