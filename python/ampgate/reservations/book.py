"""`ReservationBook`: the node's in-memory index of live reservations, by charger, and everything that ends one.

The hot path (every Authorize, StartTransaction and TransactionEvent) asks the book, never the database: a
charger without reservations costs one dict lookup. The index is rebuilt from the table when the node starts
(`load`), and every change goes to both, the index first (so the next message sees it) and the table behind it.

A reservation ends when:
- its expiry passes: the rules ignore an expired hold at once (judged by the node's clock on every lookup), and
  `sweep` (called about every second by `Reservations.run`) writes the end and publishes it. One sweep over a
  heap of expiries serves every reservation: no timer task per reservation, and a node that was down past an
  expiry ends it on its first sweep (`ended_at` is then the expiry, not the sweep's time);
- a transaction uses it: 1.6 StartTransaction / 2.0.1 TransactionEvent naming its reservationId (the charger
  says it is over, whatever the node thinks of the token), or a start by a token that may use it at the place
  it covers (1.6 §5.13: "a transaction is started for the reserved idTag or parent idTag and on the reserved
  connector or any connector when the reserved connectorId is 0");
- the charger reports it over (2.0.1 ReservationStatusUpdate: Expired or Removed), or, in 1.6, which has no
  such message, reports the reserved connector (or connector 0, the whole charger) Faulted or Unavailable: 1.6
  §5.13 has the charger terminate the reservation then (`removed`). That one is learnt from the bus's
  `connector.status` events: a lost event leaves the reservation active until its expiry, which refuses
  nobody who could have charged at a faulted connector anyway;
- an operator cancels it (`ampgate.reservations.Reservations.cancel`).

What a charger is answered while a reservation stands (`at_authorize`, `at_start`), and why:
- Authorize (1.6 idTag; 2.0.1 idToken) names no connector or EVSE in either version, so a reservation cannot
  refuse it: the token's own status is the answer, with its group (1.6 parentIdTag / 2.0.1 groupIdToken) so the
  charger, which enforces its reservations itself (1.6 §5.13, 2.0.1 H03), can match a group member. One
  addition: a token the id-token table does not know, presented at a charger where it holds a live reservation,
  is Accepted until the reservation's expiry (the operator reserved for it; roaming tokens are often not in the
  table).
- A start (1.6 StartTransaction; 2.0.1 TransactionEvent with an idToken, but not Ended) at a place another
  token's reservation covers is refused. Neither version has a "Reserved" authorization status. 1.6 has only
  Accepted, Blocked, Expired, Invalid, ConcurrentTx: the answer is Invalid ("not allowed for charging").
  2.0.1 has NotAtThisTime ("valid, but no access at this time"), which says exactly that, and the node sends
  it. Either way the refusal carries the reservation's expiry as its cache expiry (1.6 idTagInfo.expiryDate,
  2.0.1 cacheExpiryDateTime), so a charger's authorization cache does not hold the refusal past the
  reservation. A token refused for its own reasons (Blocked, Expired, ...) keeps its own status.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.events import ReservationCreated, ReservationEnded
from ampgate.ocpp import v201
from ampgate.ocpp.authorization import Authorization
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.reservations.repository import EndReason, ReservationRow
from ampgate.reservations.rules import Hold, held_for, judge_start, token_matches

log = logging.getLogger(__name__)

# The status a start refused by another token's reservation gets, per version (see the module docstring).
REFUSAL_STATUS = {OCPP16: "Invalid", OCPP201: "NotAtThisTime"}
ACCEPTED = "Accepted"
# The outcome written for a reservation whose ReserveNow was on the wire when the node stopped: nobody knows
# whether the charger took it.
INTERRUPTED = "node_restarted"
# 1.6 connector statuses that terminate a reservation of that connector at the charger (1.6 §5.13).
OUT_OF_SERVICE_16 = frozenset({"Faulted", "Unavailable"})
# 2.0.1 ReservationUpdateStatusEnumType -> why it ended.
_UPDATE_REASONS: dict[str, EndReason] = {"Expired": "expired", "Removed": "removed"}


class ReservationWrites(Protocol):
    """What the book writes (`ampgate.reservations.ReservationRepository`)."""

    def end_soon(self, rid: int, reason: EndReason, at: datetime | None = None, /) -> None: ...
    async def end(
        self, rid: int, reason: EndReason, at: datetime | None = None, /
    ) -> ReservationRow | None: ...
    def fail_pending(self, outcome: str, /) -> None: ...


def hold_of(row: ReservationRow) -> Hold:
    """The rules' view of a stored reservation."""
    return Hold(
        id=row.id,
        charger_id=row.charger_id,
        protocol=row.protocol,
        evse_id=row.evse_id,
        connector_id=row.connector_id,
        id_token=row.id_token,
        group=row.group_id_token,
        expires_at=row.expires_at,
    )


class ReservationBook:
    """Live reservations in memory, the OCPP answers that depend on them, and their ends. `now` is the node's
    clock (aware UTC)."""

    def __init__(self, rows: ReservationWrites, bus: Publisher, now: Callable[[], datetime]) -> None:
        self._rows = rows
        self._bus = bus
        self._now = now
        self._holds: dict[str, tuple[Hold, ...]] = {}  # charger -> its active reservations
        self._active: dict[int, Hold] = {}
        # ReserveNow sent, no answer yet. A charger may answer Accepted and, in the same gateway batch, start a
        # transaction with it (or report it expired) before the task waiting for the answer runs: what happened
        # to it meanwhile is kept here and applied when it becomes active.
        self._pending: dict[int, Hold] = {}
        self._ended_while_pending: dict[int, EndReason] = {}
        self._expiries: list[tuple[float, int]] = []  # heap of (expiry, id); ended ids are skipped lazily

    # -- the index ----------------------------------------------------------------------------------------------

    def load(self, rows: Iterable[ReservationRow]) -> None:
        """Rebuild the index from the table's live rows (at start). Pending rows are marked failed: no CALL
        survives a restart, so their outcome is unknown."""
        pending = False
        for row in rows:
            if row.state == "active":
                self._add(hold_of(row))
            elif row.state == "pending":
                pending = True
        if pending:
            log.warning("reservations left pending by the last run are marked failed (%s)", INTERRUPTED)
            self._rows.fail_pending(INTERRUPTED)

    def holds(self, charger_id: str) -> tuple[Hold, ...]:
        """The charger's active reservations (expired ones included until the next sweep)."""
        return self._holds.get(charger_id, ())

    def active(self, rid: int) -> Hold | None:
        return self._active.get(rid)

    def __len__(self) -> int:
        return len(self._active)

    def _add(self, hold: Hold) -> None:
        self._active[hold.id] = hold
        self._holds[hold.charger_id] = (*self._holds.get(hold.charger_id, ()), hold)
        heapq.heappush(self._expiries, (hold.expires_at.timestamp(), hold.id))

    def _remove(self, hold: Hold) -> None:
        del self._active[hold.id]
        rest = tuple(h for h in self._holds.get(hold.charger_id, ()) if h.id != hold.id)
        if rest:
            self._holds[hold.charger_id] = rest
        else:
            self._holds.pop(hold.charger_id, None)

    # -- ReserveNow's outcome -------------------------------------------------------------------------------

    def sent(self, row: ReservationRow) -> None:
        """ReserveNow for `row` is going to its charger."""
        self._pending[row.id] = hold_of(row)

    def accepted(self, row: ReservationRow) -> None:
        """The charger accepted `row` (already written active): index it and publish `reservation.created`;
        if it was used or reported over while the answer was on its way, end it at once."""
        self._pending.pop(row.id, None)
        hold = hold_of(row)
        self._add(hold)
        self._bus.publish(
            ReservationCreated(
                at=self._now(),
                charger_id=row.charger_id,
                reservation_id=row.id,
                evse_id=row.evse_id,
                connector_id=row.connector_id,
                id_token=row.id_token,
                group_id_token=row.group_id_token,
                expires_at=row.expires_at,
            )
        )
        reason = self._ended_while_pending.pop(row.id, None)
        if reason is not None:
            self._end(hold, reason)

    def not_accepted(self, rid: int) -> None:
        """The charger refused `rid`, or ReserveNow failed: it never became active."""
        self._pending.pop(rid, None)
        self._ended_while_pending.pop(rid, None)

    # -- ends ---------------------------------------------------------------------------------------------------

    def _end(self, hold: Hold, reason: EndReason, at: datetime | None = None) -> None:
        """End an active reservation now: out of the index, the row written fire-and-forget, the event out."""
        self._remove(hold)
        self._rows.end_soon(hold.id, reason, at)
        self._publish_end(hold, reason)

    def _publish_end(self, hold: Hold, reason: EndReason) -> None:
        self._bus.publish(
            ReservationEnded(
                at=self._now(), charger_id=hold.charger_id, reservation_id=hold.id, reason=reason
            )
        )

    async def end(self, rid: int, reason: EndReason) -> bool:
        """End active reservation `rid` and wait until that is committed. False if it was not active (already
        ended, or never accepted): nothing changes then."""
        hold = self._active.get(rid)
        if hold is None:
            return False
        self._remove(hold)
        await self._rows.end(rid, reason)
        self._publish_end(hold, reason)
        return True

    def _ended_by_charger(self, charger_id: str, rid: int, reason: EndReason) -> Hold | None:
        """The charger says its reservation `rid` is over: end it (or remember it, if still pending). Returns
        the hold it ended. A reservation of another charger is left alone."""
        hold = self._active.get(rid)
        if hold is not None and hold.charger_id == charger_id:
            self._end(hold, reason)
            return hold
        pending = self._pending.get(rid)
        if pending is not None and pending.charger_id == charger_id:
            self._ended_while_pending.setdefault(rid, reason)
            return pending
        log.info("%s reported reservation %d %s: not an active reservation of it", charger_id, rid, reason)
        return None

    def connector_status16(self, charger_id: str, connector_id: int, status: str) -> int:
        """A 1.6 charger reported `status` for `connector_id` (0: the whole charger). Faulted or Unavailable
        ends the reservations the charger terminates for it (1.6 §5.13): those of that connector, or all of the
        charger's for connector 0. Returns how many ended."""
        if status not in OUT_OF_SERVICE_16:
            return 0
        holds = [
            h for h in self._holds.get(charger_id, ()) if connector_id == 0 or h.connector_id == connector_id
        ]
        for hold in holds:
            self._end(hold, "removed")
        return len(holds)

    def sweep(self) -> int:
        """End every reservation whose expiry has passed by the node's clock (`ended_at` = its expiry).
        Returns how many ended."""
        now = self._now().timestamp()
        ended = 0
        heap = self._expiries
        while heap and heap[0][0] <= now:
            _, rid = heapq.heappop(heap)
            hold = self._active.get(rid)
            if hold is None:
                continue  # ended some other way
            self._end(hold, "expired", hold.expires_at)
            ended += 1
        return ended

    # -- what chargers are answered (ampgate.ocpp.authorization.ReservationRules) ------------------------------

    def at_authorize(self, charger_id: str, id_token: str, auth: Authorization, known: bool) -> Authorization:
        """Authorize: `auth` as decided from the token table, except that a token the table does not know
        (`known` False) is Accepted at a charger where it holds a live reservation."""
        holds = self._holds.get(charger_id)
        if not holds or known:
            return auth
        hold = held_for(holds, self._now(), id_token)
        if hold is None:
            return auth
        return Authorization(ACCEPTED, hold.expires_at, hold.group)

    def at_start(
        self,
        charger_id: str,
        protocol: str,
        evse_id: int | None,
        connector_id: int | None,
        id_token: str | None,
        auth: Authorization | None,
        known: bool,
        reservation_id: int | None,
    ) -> Authorization | None:
        """A transaction start at (`evse_id`, `connector_id`) by `id_token` (None: the message carries none),
        which the token table answered with `auth`. Ends the reservation the start uses, and returns the
        answer: `auth`, a refusal when another token's reservation covers the place, or Accepted for an
        unknown token using its reservation. See the module docstring."""
        if reservation_id is not None:
            named = self._ended_by_charger(charger_id, reservation_id, "used")
            if (
                named is not None
                and id_token is not None
                and auth is not None
                and token_matches(named, id_token, auth.group)
            ):
                return auth if known else Authorization(ACCEPTED, named.expires_at, named.group)
        holds = self._holds.get(charger_id)
        if not holds or id_token is None or auth is None:
            return auth
        verdict = judge_start(holds, self._now(), evse_id, connector_id, id_token, auth.group)
        if verdict.uses is not None:
            self._end(verdict.uses, "used")
            return auth if known else Authorization(ACCEPTED, verdict.uses.expires_at, verdict.uses.group)
        hold = verdict.refused_by
        if hold is not None and auth.status == ACCEPTED:
            log.info(
                "%s: %s refused at evse %s connector %s: reserved (reservation %d)",
                charger_id,
                id_token,
                evse_id,
                connector_id,
                hold.id,
            )
            return Authorization(REFUSAL_STATUS.get(protocol, "Invalid"), hold.expires_at, auth.group)
        return auth

    # -- 2.0.1 ReservationStatusUpdate --------------------------------------------------------------------------

    def register(self, router: OcppRouter) -> None:
        """Handle ReservationStatusUpdate (2.0.1; 1.6 has none)."""
        router.register(OCPP201, "ReservationStatusUpdate", self._status_update201)

    def _status_update201(self, session: Session, req: v201.ReservationStatusUpdateRequest) -> dict[str, Any]:
        # Fire-and-forget like a status: if the node stops before it commits, the reservation is restored
        # active and ends by the sweep at its expiry.
        self._ended_by_charger(
            session.charger_id, req.reservation_id, _UPDATE_REASONS[req.reservation_update_status]
        )
        return {}
