"""The authorization of an eMSP's token at one of our chargers, as a decision table without I/O
(mod_tokens: "Real-time authorization" and WhitelistType). `ampgate.roaming.authority` asks `plan` whether to
call the eMSP, makes the call when told to, and hands the outcome to `settle`; `ocpp_status` says the result in
the charger's protocol version.

A token the eMSP pushed (`Cached`) carries its `whitelist` and `valid`:

| whitelist | valid | asks the eMSP? | eMSP unreachable |
|---|---|---|---|
| ALWAYS | yes / no | never ("realtime authorization is not possible/allowed") | — : Accepted / Invalid |
| ALLOWED | yes | no: the CPO may choose, and the whitelist answers at once | — : Accepted |
| ALLOWED | no | yes: its state may have changed since (the WhitelistType note) | Invalid |
| ALLOWED_OFFLINE | yes / no | yes ("in normal situations realtime authorization shall be used") | Accepted / Invalid |
| NEVER | yes / no | yes, always | Invalid |

When the eMSP answers, its answer decides (ALLOWED is Accepted; BLOCKED, EXPIRED, NO_CREDIT, NOT_ALLOWED are
refusals; "unknown token" is Invalid). An eMSP that could not be asked (it offers no tokens Sender endpoint)
counts as unreachable. A token nobody pushed has no whitelist: every eMSP that offers a tokens Sender interface
is asked, and one that cannot be reached allows nothing (as NEVER).

Two readings of ours, where the text leaves room:
- ALLOWED with `valid` true is answered from the whitelist, without a call: the spec lets the CPO choose, an
  eMSP that wants to be asked every time says NEVER or ALLOWED_OFFLINE, and the note on real-time authorization
  warns that the call delays the driver at the charger.
- ALLOWED_OFFLINE on an outage lets in a token the whitelist holds as valid, not one its eMSP invalidated:
  "the CPO shall allow this Token to be used" is read as the token the whitelist still vouches for.
"""

from __future__ import annotations

import enum

import msgspec

from ampgate.ocpp.envelope import OCPP16
from ampgate.roaming.types import AllowedType, AuthMethod, WhitelistType


class Outcome(enum.StrEnum):
    """What came of asking the eMSP: one of its AllowedType answers, UNKNOWN (it does not know the token: HTTP
    404 or status 2004) or UNREACHABLE (no usable answer in time)."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"
    UNKNOWN = "UNKNOWN"
    UNREACHABLE = "UNREACHABLE"


class Cached(msgspec.Struct, frozen=True):
    """What the whitelist holds of a token: its whitelist type and whether it is valid."""

    whitelist: WhitelistType
    valid: bool


class Decision(msgspec.Struct, frozen=True):
    """The verdict: `allowed`, the reason (an AllowedType value, or INVALID: the whitelist holds it invalid, or
    UNKNOWN: nobody knows it) and how it was reached (AUTH_REQUEST: the eMSP answered; WHITELIST: it did not,
    or was not asked)."""

    allowed: bool
    reason: str
    method: AuthMethod


INVALID = "INVALID"
UNKNOWN = "UNKNOWN"


def must_ask(cached: Cached | None) -> bool:
    """Whether the eMSP has to be asked before answering the charger (the table in the module docstring)."""
    if cached is None:
        return True
    if cached.whitelist == WhitelistType.ALWAYS:
        return False
    if cached.whitelist == WhitelistType.ALLOWED:
        return not cached.valid
    return True


def from_whitelist(cached: Cached) -> Decision:
    """The answer from the whitelist alone."""
    if cached.valid:
        return Decision(True, AllowedType.ALLOWED, AuthMethod.WHITELIST)
    return Decision(False, INVALID, AuthMethod.WHITELIST)


def settle(cached: Cached | None, outcome: Outcome | None) -> Decision:
    """The verdict for a token (`cached`: what the whitelist holds, None when nobody pushed it) given what came
    of asking its eMSP (`outcome`; None: it was not asked, as `must_ask` said, or could not be: counted as
    unreachable)."""
    if outcome is None and not must_ask(cached):
        assert cached is not None
        return from_whitelist(cached)
    if outcome is None:
        outcome = Outcome.UNREACHABLE
    if outcome == Outcome.UNREACHABLE:
        if cached is not None and cached.whitelist in (WhitelistType.ALLOWED_OFFLINE, WhitelistType.ALWAYS):
            return from_whitelist(cached)
        if cached is None:
            return Decision(False, UNKNOWN, AuthMethod.WHITELIST)
        return Decision(False, INVALID, AuthMethod.WHITELIST)
    if outcome == Outcome.UNKNOWN:
        return Decision(False, UNKNOWN, AuthMethod.AUTH_REQUEST)
    return Decision(outcome == Outcome.ALLOWED, outcome.value, AuthMethod.AUTH_REQUEST)


# The status a charger is told for each reason, per version. 1.6 has only Accepted, Blocked, Expired, Invalid
# and ConcurrentTx, so a refusal 2.0.1 can name (NoCredit, NotAtThisLocation) is Invalid there.
_STATUS_201: dict[str, str] = {
    AllowedType.ALLOWED: "Accepted",
    AllowedType.BLOCKED: "Blocked",
    AllowedType.EXPIRED: "Expired",
    AllowedType.NO_CREDIT: "NoCredit",
    AllowedType.NOT_ALLOWED: "NotAtThisLocation",
    INVALID: "Invalid",
    UNKNOWN: "Invalid",
}
_STATUS_16: dict[str, str] = {
    AllowedType.ALLOWED: "Accepted",
    AllowedType.BLOCKED: "Blocked",
    AllowedType.EXPIRED: "Expired",
}


def ocpp_status(decision: Decision, protocol: str) -> str:
    """The authorization status to answer the charger with, in its protocol version."""
    if protocol == OCPP16:
        return _STATUS_16.get(decision.reason, "Invalid")
    return _STATUS_201.get(decision.reason, "Invalid")
