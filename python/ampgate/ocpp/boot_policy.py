"""The boot policy, in one place: which chargers are accepted, what a BootNotification is answered, and what a
charger in each boot state may send and be sent.

A charger accepted once (registered by an operator, or accepted at a boot) is served on any later connection
without a new BootNotification, as 2.0.1 allows [B01], also after a node restart; until then a connection starts
NEW. A charger never accepted before gets the node's policy for unknown chargers: Accepted (and remembered),
Pending or Rejected. The rules per state are the table `RULES`:

- Accepted: everything, both ways.
- Pending [B02]: the charger sends its boot and nothing else but what the central system asked of it in this
  session with TriggerMessage (or a report it asked for with GetBaseReport / GetReport) [B02.FR.09]; the central
  system sends only configuration and report requests and TriggerMessage.
- Rejected [B03] and NEW: the charger may send BootNotification only; the central system sends nothing.
Anything a charger may not send is answered SecurityError (by the router).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Literal, Protocol

import msgspec

ACCEPTED = "Accepted"
PENDING = "Pending"
REJECTED = "Rejected"
NEW = "New"

BootState = str
UnknownBoot = Literal["accept", "pending", "reject"]

# Stands for "every action" in the table.
ANY: frozenset[str] = frozenset({"*"})


class Rule(msgspec.Struct, frozen=True):
    """What a charger in one boot state may send (`charger_sends`) and be sent (`csms_sends`)."""

    charger_sends: frozenset[str]
    csms_sends: frozenset[str]

    def charger_may_send(self, action: str) -> bool:
        return self.charger_sends is ANY or action in self.charger_sends

    def may_be_sent(self, action: str) -> bool:
        return self.csms_sends is ANY or action in self.csms_sends


_BOOT_ONLY = frozenset({"BootNotification"})

RULES: dict[BootState, Rule] = {
    ACCEPTED: Rule(charger_sends=ANY, csms_sends=ANY),
    # A Pending charger sends nothing but its boot, and what the central system asked of it in this session
    # (`solicited`) [B02.FR.09]; everything else is answered SecurityError.
    PENDING: Rule(
        charger_sends=_BOOT_ONLY,
        csms_sends=frozenset(
            {
                "GetVariables",
                "SetVariables",
                "GetBaseReport",
                "GetReport",
                "GetConfiguration",
                "ChangeConfiguration",
                "TriggerMessage",
                "ExtendedTriggerMessage",
            }
        ),
    ),
    REJECTED: Rule(charger_sends=_BOOT_ONLY, csms_sends=frozenset()),
    NEW: Rule(charger_sends=_BOOT_ONLY, csms_sends=frozenset()),
}

# The answer to a BootNotification of a charger never accepted before, by the node's setting.
_UNKNOWN_BOOT: dict[UnknownBoot, BootState] = {"accept": ACCEPTED, "pending": PENDING, "reject": REJECTED}


# What TriggerMessage's requestedMessage (1.6, 1.6 security ExtendedTriggerMessage, 2.0.1) asks a charger to
# send, where the action is not named the same.
_TRIGGERED_ACTION = {
    "SignChargePointCertificate": "SignCertificate",
    "SignChargingStationCertificate": "SignCertificate",
    "SignV2GCertificate": "SignCertificate",
    "SignCombinedCertificate": "SignCertificate",
}
# Commands whose answer comes back as a message of the charger's own.
_REPORTS = {"GetBaseReport": "NotifyReport", "GetReport": "NotifyReport"}


def solicited(action: str, payload: object) -> frozenset[str]:
    """What the charger is asked to send by command `action` with `payload` (as the spec writes it): the
    message a TriggerMessage requests, the NotifyReport a report request is answered with; else nothing."""
    if action in _REPORTS:
        return frozenset({_REPORTS[action]})
    if action in ("TriggerMessage", "ExtendedTriggerMessage") and isinstance(payload, dict):
        requested = payload.get("requestedMessage")
        if isinstance(requested, str):
            return frozenset({_TRIGGERED_ACTION.get(requested, requested)})
    return frozenset()


def rule(state: BootState) -> Rule:
    """The rule of `state` (a state not in the table may do nothing)."""
    return RULES.get(state, RULES[NEW])


def command_refusal(state: BootState | None) -> str:
    """Why a command may not be sent to a charger in `state`, and what may be."""
    allowed = rule(state or NEW).csms_sends
    what = "only " + ", ".join(sorted(allowed)) if allowed else "no command"
    return f"is not accepted (boot status {state}): {what} may be sent"


class AcceptedStore(Protocol):
    """Where accepted chargers are remembered (the charger repository). `mark_accepted` queues the write at
    once and returns what to await for its commit (None: it is on disk already)."""

    def accepted_ids(self) -> list[str]: ...
    def mark_accepted(self, cp_id: str, /) -> Awaitable[None] | None: ...


class BootDecision(msgspec.Struct, frozen=True):
    """A BootNotification's answer: the status and the interval (heartbeat interval when Accepted, else when
    the charger may boot again)."""

    status: BootState
    interval: int


class BootPolicy:
    """The accepted chargers (in memory, ~80 bytes each, loaded at start) and the decisions made from them."""

    def __init__(
        self,
        store: AcceptedStore,
        *,
        unknown_boot: UnknownBoot,
        heartbeat_interval: int,
        retry_interval: int,
    ) -> None:
        self._store = store
        self._accepted: set[str] = set(store.accepted_ids())
        # Chargers accepted at a boot whose acceptance may not be on disk yet: its commit, to await before the
        # charger is told Accepted (after a crash it would otherwise be NEW to a node that said Accepted, and a
        # charger that does not boot again would get SecurityError for everything).
        self._committing: dict[str, Awaitable[None]] = {}
        self._unknown = _UNKNOWN_BOOT[unknown_boot]
        self._heartbeat_interval = heartbeat_interval
        self._retry_interval = retry_interval

    def is_accepted(self, charger_id: str) -> bool:
        return charger_id in self._accepted

    def accept(self, charger_ids: Iterable[str]) -> None:
        """Chargers an operator registered (the store already says so): accepted from now on."""
        self._accepted.update(charger_ids)

    def initial_state(self, charger_id: str) -> BootState:
        """The boot state a new connection of `charger_id` starts in."""
        return ACCEPTED if charger_id in self._accepted else NEW

    def decide(self, charger_id: str) -> BootDecision:
        """Answer a BootNotification: Accepted for a charger accepted before, else the unknown-charger policy.
        A charger accepted now is remembered (in memory at once, and in the store: queue its boot record first
        so its row exists); await `acceptance_committed` before answering Accepted."""
        if charger_id in self._accepted:
            status = ACCEPTED
        else:
            status = self._unknown
            if status == ACCEPTED:
                self._accepted.add(charger_id)
                pending = self._store.mark_accepted(charger_id)
                if pending is not None:
                    self._committing[charger_id] = pending
        interval = self._heartbeat_interval if status == ACCEPTED else self._retry_interval
        return BootDecision(status, interval)

    def acceptance_pending(self, charger_id: str) -> bool:
        """Whether the charger's acceptance is still on its way to the disk (await `acceptance_committed`)."""
        return charger_id in self._committing

    async def acceptance_committed(self, charger_id: str) -> None:
        """Return once the charger's acceptance is committed (at once if it is not pending). If the commit
        failed, raise what it raised and forget the acceptance: the charger's next boot is decided again."""
        pending = self._committing.get(charger_id)
        if pending is None:
            return
        try:
            await pending
        except Exception:
            if self._committing.get(charger_id) is pending:
                del self._committing[charger_id]
                self._accepted.discard(charger_id)
            raise
        if self._committing.get(charger_id) is pending:
            del self._committing[charger_id]
