"""What a command record is and the rules it moves by, without I/O (unit-tested on their own).

A command is recorded when it is asked for, whether it goes out at once (the API's synchronous path) or waits
for its charger (queued). Its states:

    queued ──▶ sent ──▶ answered | failed
      │  ╰──▶ expired     (its time to live passed first: never sent late)
      ╰────▶ cancelled    (an operator, or superseded by a newer command of the same kind)

Delivery is at most once. A command goes back from `sent` to `queued` only when it provably never reached the
charger (the link dropped, or the charger's boot state changed, before the CALL went on the wire); once on the
wire, a lost answer fails it (`charger_timeout`), because the charger may have acted on it and a second Reset or
RemoteStart is harm, not help. A node that stops with a command on the wire fails it at the next start
(`node_restarted`) for the same reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from ampgate.errors import (
    AmpgateError,
    ChargerOfflineError,
    ChargerTimeoutError,
    ConflictError,
    ValidationError,
)


class QueuedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One command of a batch to queue (`CommandQueue.enqueue_many`): the arguments `enqueue` takes."""

    charger_id: str
    action: str
    payload: Any
    ttl_s: float | None = None
    supersede_key: str | None = None
    command_id: str | None = None


State = Literal["queued", "sent", "answered", "failed", "expired", "cancelled"]
STATES: tuple[str, ...] = ("queued", "sent", "answered", "failed", "expired", "cancelled")
FINAL: frozenset[str] = frozenset({"answered", "failed", "expired", "cancelled"})

# A queued command's time to live: a day unless asked, at most a week (a command older than that is about a
# situation that has changed; the operator should ask again).
DEFAULT_TTL_S = 86_400
MAX_TTL_S = 7 * 86_400
# Commands waiting per charger: beyond this the charger's queue is full (429).
MAX_QUEUED = 100
# Finished commands are kept this long for `GET /api/v1/commands/{id}` and the charger's list.
RETENTION = timedelta(days=30)

# The error code of a command that was on the wire when the node stopped.
NODE_RESTARTED = "node_restarted"


def ttl(ttl_s: float | None) -> timedelta:
    """The time to live of a queued command asked with `ttl_s` (None: the default). Raises ValidationError
    naming `ttl_s` when it is not in (0, MAX_TTL_S]."""
    if ttl_s is None:
        return timedelta(seconds=DEFAULT_TTL_S)
    if not (0 < ttl_s <= MAX_TTL_S):
        raise ValidationError(f"expected > 0 and <= {MAX_TTL_S} (7 days), got {ttl_s:g}", field="ttl_s")
    return timedelta(seconds=ttl_s)


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def requeue_after(error: AmpgateError, reached_charger: bool) -> bool:
    """Whether a delivery that failed with `error` leaves the command queued (to try again when its charger is
    back) rather than failed. Only what provably never reached the charger goes back: the charger went offline,
    the wait ran out with the command still in the outbox (the charger dropped, or was busy with another), or its
    boot state forbids commands now (it rebooted and is Pending)."""
    if reached_charger:
        return False
    if isinstance(error, ChargerOfflineError | ChargerTimeoutError):
        return True
    return isinstance(error, ConflictError) and error.code == "charger_not_accepted"


CancelOutcome = Literal["cancel", "unchanged", "refuse"]


def cancel_outcome(state: str) -> CancelOutcome:
    """What cancelling a command in `state` does: a queued one is cancelled; cancelling a cancelled one again
    changes nothing (the verb is idempotent); any other has gone (or is going) to the charger: refused."""
    if state == "queued":
        return "cancel"
    if state == "cancelled":
        return "unchanged"
    return "refuse"
