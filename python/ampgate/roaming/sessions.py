"""`SessionTracker`: every roaming session as an OCPI Session, kept for the eMSP's GET and pushed to its
sessions RECEIVER endpoint (mod_sessions, Sender side).

**Which sessions, to whom.** A session is a transaction started with an eMSP's token: the moment the token
authority binds an authorization to a transaction (`TokenAuthority.on_bound`) it becomes a Session, and it
goes to that eMSP only (OCPI sends a session to the eMSP of its token). A transaction of one of our own tokens
(our id-token table) has no eMSP and is no OCPI Session: nobody is sent it, no GET lists it.

**When.** PUT of the whole Session at its start (no charging periods yet); a PATCH of kwh and total_cost when
they changed, at most once every `update_s` (60 s) per session; a PATCH at once on a status change; the final
PATCH when it is COMPLETED (its CDR was made, the EVSE free again) with `end_date_time`, the final kwh and cost
and, then only, every charging period (a PATCH adds periods to the receiver's list, and ours are recomputed as
the meter moves, so the receiver's list stays empty until the periods are final; GET has them all along). A
PATCH the receiver refuses as unknown becomes a PUT of the whole Session. Failed pushes are logged, not
retried (mod_sessions: the receiver re-syncs by GET; `Outbox` leaves a failing party alone for a while).

**Status** (mod_sessions SessionStatus): ACTIVE from the transaction's start (authorized, EV connected) until
the session ends, the parking after the transaction's stop included (OCPI: "charging might have finished before
the session ends"); COMPLETED with its CDR. PENDING, RESERVATION and INVALID are not sent: a Session is made
when a transaction has started with an authorized token, never before (a RESERVE_NOW's reservation becomes a
Session when its transaction starts), and every session that started is billed.

**Numbers** come from billing (`running_cost`: the one engine) every `update_s` while the session runs, and
from its CDR at the end, so the last kwh and total_cost an eMSP sees are the CDR's.

Coalesced per session (the latest wins) through `Outbox`: what waits is one entry per live session. State is in
`ocpi_sessions` (what GET answers, where the session was at its start); after a restart each unfinished session
is PUT again whole, then PATCHed as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote

import msgspec
import trio

from ampgate.billing.model import Cdr
from ampgate.bus import EventBus, EventsLost
from ampgate.clock import Clock
from ampgate.events import CdrCreated, Event, TransactionEnded
from ampgate.pricing import Cost
from ampgate.roaming import cdr_types as o
from ampgate.roaming.billing_objects import (
    BillingCdr,
    Place,
    PlaceSource,
    charging_periods,
    place_of,
    session_object,
)
from ampgate.roaming.billing_rows import SessionRecord, SessionRows
from ampgate.roaming.client import OcpiClient, PartyRefused
from ampgate.roaming.outbox import Outbox, OutboxStats
from ampgate.roaming.parties import Party
from ampgate.roaming.token_rows import AuthorizationRow
from ampgate.roaming.types import ModuleId
from ampgate.store.transactions import TransactionRow

log = logging.getLogger(__name__)

# A session's kwh and cost are pushed at most this often (mod_sessions leaves it to the CPO; issue 14: once a
# minute), and read from billing as often.
UPDATE_S = 60.0
# How often the live sessions are looked at for a refresh that came due (more often when `update_s` is shorter).
SWEEP_S = 5.0
# Everything read again from the tables this often regardless of events (a session whose CDR event was missed).
RECONCILE_S = 300.0
# At start and after lost events every open transaction is checked for an eMSP's authorization: yield to other
# tasks every this many.
_YIELD_EVERY = 500
_TYPES = ["cdr.created", "transaction.ended"]


class Authorizations(Protocol):
    """`ampgate.roaming.token_rows.AuthorizationRepository`."""

    def for_transaction(self, tx_id: int, /) -> AuthorizationRow | None: ...


class Transactions(Protocol):
    """`ampgate.store.TransactionRepository`."""

    def get(self, tx_id: int, /) -> TransactionRow | None: ...
    def open_transactions(self) -> list[TransactionRow]: ...


class Costs(Protocol):
    """`ampgate.billing.BillingSessions`."""

    def running_cost(self, transaction_id: int, /, *, periods: bool = False) -> Cost | None: ...


class CdrSource(Protocol):
    """`ampgate.billing.CdrRepository`."""

    def get(self, cdr_id: int, /) -> Cdr | None: ...
    def of_transaction(self, tx_id: int, /) -> Cdr | None: ...


class PartyLookup(Protocol):
    def get(self, party_id: int, /) -> Party | None: ...


class _Live:
    """A session being followed until it is COMPLETED: what it is now, and what its eMSP last took."""

    __slots__ = ("auth", "next_patch", "next_refresh", "party_ref", "place", "sent", "session", "tx_id")

    def __init__(self, record: SessionRecord, auth: AuthorizationRow) -> None:
        self.tx_id = record.transaction_id
        self.party_ref = record.party_ref
        self.auth = auth
        self.place = record.place
        self.session = record.session
        self.sent: o.Session | None = None
        self.next_refresh = 0.0
        self.next_patch = 0.0


def _same(a: o.Session, b: o.Session) -> bool:
    return (a.status, a.kwh, a.total_cost, a.end_date_time) == (
        b.status,
        b.kwh,
        b.total_cost,
        b.end_date_time,
    )


def _patch(sent: o.Session, now: o.Session) -> o.SessionPatch | None:
    """What changed from `sent` to `now` (None: nothing the eMSP needs); the final periods with COMPLETED."""
    if _same(sent, now):
        return None
    completed = now.status == o.SessionStatus.COMPLETED
    return o.SessionPatch(
        last_updated=now.last_updated,
        status=now.status if now.status != sent.status else None,
        kwh=now.kwh if now.kwh != sent.kwh else None,
        total_cost=now.total_cost if now.total_cost != sent.total_cost else None,
        end_date_time=now.end_date_time if now.end_date_time != sent.end_date_time else None,
        charging_periods=now.charging_periods if completed and not sent.charging_periods else None,
    )


def _put_body(session: o.Session) -> o.Session:
    """What a PUT carries: the whole Session, its periods only once they are final."""
    if session.status == o.SessionStatus.COMPLETED:
        return session
    return msgspec.structs.replace(session, charging_periods=None)


class SessionTracker:
    """See the module docstring. `bound` is the token authority's hook; `set_parties` says who is registered;
    start `run` in the node's nursery."""

    def __init__(
        self,
        rows: SessionRows,
        authorizations: Authorizations,
        transactions: Transactions,
        costs: Costs,
        cdrs: CdrSource,
        book: PlaceSource,
        currency: Callable[[str, str | None], str],
        client: OcpiClient,
        bus: EventBus,
        clock: Clock,
        *,
        country_code: str,
        party_id: str,
        update_s: float = UPDATE_S,
    ) -> None:
        self.rows = rows
        self._auths = authorizations
        self._tx = transactions
        self._costs = costs
        self._cdrs = cdrs
        self._book = book
        self._currency = currency
        self._client = client
        self._bus = bus
        self._clock = clock
        self.country_code = country_code
        self.party_id = party_id
        self.update_s = update_s
        self._live: dict[int, _Live] = {}
        self._new: dict[int, AuthorizationRow] = {}
        self._nursery: trio.Nursery | None = None
        self.outbox: Outbox[int] = Outbox(
            "session", lambda p: p.endpoint(ModuleId.SESSIONS, "RECEIVER"), self._send, clock
        )

    # -- the seams ---------------------------------------------------------------------------------------------

    def bound(self, row: AuthorizationRow) -> None:
        """An eMSP's authorization was bound to a transaction: that transaction is a Session from now on."""
        tx_id = row.transaction_id
        if tx_id is None or tx_id in self._live:
            return
        if self._nursery is None:
            self._new[tx_id] = row  # adopted when `run` starts
        else:
            self._nursery.start_soon(self._adopt, tx_id, row)

    def set_parties(self, parties: list[Party]) -> None:
        self.outbox.set_parties(parties)

    def stats(self, party_ref: int) -> OutboxStats | None:
        return self.outbox.stats(party_ref)

    def live(self) -> int:
        return len(self._live)

    # -- running -----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._bus.subscribe(_TYPES) as sub:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.outbox.run)
                self._nursery = nursery
                await self.reconcile(everything=True)
                while self._new:
                    tx_id, row = self._new.popitem()
                    await self._adopt(tx_id, row)
                task_status.started()
                sweep_s = min(SWEEP_S, self.update_s)
                next_sweep = trio.current_time() + sweep_s
                next_reconcile = trio.current_time() + RECONCILE_S
                while True:
                    item: Event | EventsLost | None = None
                    with trio.move_on_at(min(next_sweep, next_reconcile)):
                        item = await sub.receive()
                    if isinstance(item, EventsLost):
                        await self.reconcile(everything=True)
                    elif item is not None:
                        await self._apply(item)
                    now = trio.current_time()
                    if now >= next_reconcile:
                        await self.reconcile(everything=False)
                        next_reconcile = now + RECONCILE_S
                    if now >= next_sweep:
                        await self.sweep()
                        next_sweep = now + sweep_s

    async def _apply(self, ev: Event) -> None:
        if isinstance(ev, CdrCreated) and ev.credit_of is None:
            live = self._live.get(ev.transaction_id)
            if live is None:
                live = await self._adopt(ev.transaction_id)
            cdr = self._cdrs.get(ev.cdr_id)
            if live is not None and cdr is not None:
                await self._complete(live, cdr)
        elif isinstance(ev, TransactionEnded):
            live = self._live.get(ev.transaction_id)
            if live is not None:
                await self._refresh(live)

    async def reconcile(self, *, everything: bool) -> None:
        """Read the tables again: unfinished sessions, the end of those whose CDR exists; with `everything`,
        every open transaction too (one started with an eMSP's token whose binding was not heard of)."""
        for record in self.rows.unfinished():
            if record.transaction_id not in self._live:
                await self._adopt(record.transaction_id)
        for live in list(self._live.values()):
            tx = self._tx.get(live.tx_id)
            if tx is not None and tx.stopped_at is not None:
                cdr = self._cdrs.of_transaction(live.tx_id)
                if cdr is not None:
                    await self._complete(live, cdr)
        if not everything:
            return
        for i, tx in enumerate(self._tx.open_transactions()):
            if tx.id not in self._live:
                await self._adopt(tx.id)
            if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                await trio.lowlevel.checkpoint()

    async def sweep(self) -> None:
        """Refresh the live sessions whose time came (every `update_s`)."""
        now = trio.current_time()
        for live in list(self._live.values()):
            if now >= live.next_refresh:
                await self._refresh(live)

    # -- building ----------------------------------------------------------------------------------------------

    async def _adopt(self, tx_id: int, auth: AuthorizationRow | None = None) -> _Live | None:
        """Follow transaction `tx_id` as a Session when an eMSP's token started it; its row written and its PUT
        marked when it is new."""
        live = self._live.get(tx_id)
        if live is not None:
            return live
        auth = auth or self._auths.for_transaction(tx_id)
        if auth is None:
            return None
        record = self.rows.get(tx_id)
        if record is not None and record.session.status == o.SessionStatus.COMPLETED:
            return None
        tx = self._tx.get(tx_id)
        if tx is None:
            return None
        if record is None:
            place = place_of(tx, self._book)
            if place is None:
                log.warning(
                    "OCPI: transaction %d at %s (a token of %s*%s) is no Session: the charger is at no site",
                    tx_id,
                    tx.charger_id,
                    auth.token.country_code,
                    auth.token.party_id,
                )
                return None
            session = self._build(tx, auth, place, self._costs.running_cost(tx_id, periods=True))
            record = SessionRecord(
                transaction_id=tx_id, party_ref=auth.party_ref, session=session, place=place
            )
            fresh = True
        else:
            fresh = False
        # Live before the write's await, so a second adoption of the same transaction finds it.
        live = self._live[tx_id] = _Live(record, auth)
        live.next_refresh = trio.current_time() + self.update_s
        if fresh:
            await self.rows.put(record)
        self._schedule(live, urgent=True)
        return live

    def _build(
        self,
        tx: TransactionRow,
        auth: AuthorizationRow,
        place: Place,
        cost: Cost | None,
        *,
        cdr: BillingCdr | None = None,
    ) -> o.Session:
        if cdr is not None:
            cost = cdr.cost
        energy = cost.energy_wh if cost is not None else (cdr.energy_wh if cdr is not None else tx.energy_wh)
        periods = None
        if cost is not None and cost.charging_periods:
            periods = charging_periods(cost)
        return session_object(
            country_code=self.country_code,
            party_id=self.party_id,
            tx=tx,
            token=auth.token,
            auth_method=auth.auth_method,
            authorization_reference=auth.authorization_reference,
            place=place,
            currency=cost.currency if cost is not None else self._currency(tx.charger_id, tx.id_token),
            status=o.SessionStatus.ACTIVE if cdr is None else o.SessionStatus.COMPLETED,
            energy_wh=energy,
            total_cost=None if cost is None else cost.total_cost,
            periods=periods,
            end_date_time=None if cdr is None else cdr.ended_at,
            last_updated=self._clock.now(),
        )

    async def _keep(self, live: _Live, session: o.Session) -> bool:
        """Record `session` as the live one when it differs from the last; True when it did."""
        if _same(live.session, session):
            return False
        live.session = session
        await self.rows.put(
            SessionRecord(
                transaction_id=live.tx_id, party_ref=live.party_ref, session=session, place=live.place
            )
        )
        return True

    async def _refresh(self, live: _Live) -> None:
        live.next_refresh = trio.current_time() + self.update_s
        tx = self._tx.get(live.tx_id)
        if tx is None:
            return
        if tx.stopped_at is not None:
            cdr = self._cdrs.of_transaction(live.tx_id)
            if cdr is not None:
                await self._complete(live, cdr)
                return
        session = self._build(tx, live.auth, live.place, self._costs.running_cost(live.tx_id, periods=True))
        if await self._keep(live, session):
            self._schedule(live, urgent=False)

    async def _complete(self, live: _Live, cdr: BillingCdr) -> None:
        tx = self._tx.get(live.tx_id)
        if tx is None:
            return
        session = self._build(tx, live.auth, live.place, None, cdr=cdr)
        await self._keep(live, session)
        if not self._schedule(live, urgent=True):
            # Nobody to tell: the Session is final in the table, which GET answers.
            self._live.pop(live.tx_id, None)

    # -- pushing -----------------------------------------------------------------------------------------------

    def _schedule(self, live: _Live, *, urgent: bool) -> bool:
        """Mark the session for its eMSP: at once (`urgent`: its start, a status change), else when its next
        PATCH may go. False when the eMSP takes no Session pushes."""
        due = None if urgent else max(trio.current_time(), live.next_patch)
        return self.outbox.mark(live.party_ref, live.tx_id, due)

    async def _send(self, party: Party, url: str, tx_id: int) -> None:
        live = self._live.get(tx_id)
        if live is None:
            return
        now = live.session
        final = now.status == o.SessionStatus.COMPLETED
        token = party.their_token
        assert token is not None
        to = (party.country_code, party.party_id)
        target = f"{url}/{self.country_code}/{self.party_id}/{quote(now.id, safe='')}"
        try:
            if live.sent is None:
                await self._client.call("PUT", target, token, body=_put_body(now), to=to)
            else:
                patch = _patch(live.sent, now)
                if patch is None:
                    return
                try:
                    await self._client.call("PATCH", target, token, body=patch, to=to)
                except PartyRefused as e:
                    if not (
                        e.http_status == 404 or (e.status_code is not None and 2000 <= e.status_code < 3000)
                    ):
                        raise
                    await self._client.call("PUT", target, token, body=_put_body(now), to=to)
            # What the eMSP holds now: no periods until the final ones.
            live.sent = _put_body(now)
            live.next_patch = trio.current_time() + self.update_s
        finally:
            if final:
                # Sent or not, the last push: OCPI does not retry pushes, the eMSP re-syncs by GET.
                self._live.pop(tx_id, None)
