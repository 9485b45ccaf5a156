"""`CdrDelivery`: every roaming CDR as an OCPI CDR, POSTed to its eMSP's cdrs RECEIVER endpoint from a durable
queue, and kept for the eMSP's GET (mod_cdrs, Sender side).

**Which CDRs, to whom.** A CDR of a transaction an eMSP's token started (`ocpi_authorizations`) goes to that
eMSP only; a credit CDR follows its original. Others (our own tokens) are no OCPI CDRs. The OCPI CDR is built
once (`billing_objects.cdr_object`: the Location as seen at the session's start, the tariff snapshot, the
engine's periods and totals, the signed meter values), kept in `ocpi_cdrs`, and never changes: every attempt
sends the same bytes with the same id.

**The queue.** CDRs are money: a delivery (`ocpi_cdr_deliveries`, one per CDR and party) is a row, written
before anything is sent, so it survives a restart. It is due at once, then after each failure after
`retry_s` doubled per attempt up to MAX_BACKOFF_S (30 s, 1, 2, 4 min, … 1 h), until GIVE_UP (7 days after it
was made, or after an admin's retry): then `failed`, shown in the operator API and an `ocpi.cdr.delivery` event,
and retried only by an admin (`POST /api/v1/ocpi/cdr-deliveries/{id}/retry`). An eMSP's 2xx with an OCPI 1xxx
status is delivered (`sent`, with the Location it answered); an HTTP 5xx, no answer, or a refusal (4xx, 2xxx,
3xxx) is a failed attempt. Attempts that could not reach the eMSP's endpoint (it is not registered, offers no
cdrs RECEIVER, the CDR cannot be built yet, a credit whose original is not delivered yet) are not counted, and
wait the same way. A deleted party's deliveries fail at once.

**Bounds.** In memory: the due rows are read in batches of BATCH, and at most `workers` POSTs per party are in
flight. On disk: one row per CDR (never dropped: it is money); a party with MAX_PENDING deliveries pending gets
the next ones `failed` at once ("queue full"), visible and retryable, rather than an unbounded backlog.

**What is guaranteed.** At least once, and in practice once: a delivery is marked sent in the same moment its
answer is taken, so an eMSP sees a CDR id twice only when an attempt's answer was lost (a timeout after it
stored the CDR, or the node stopped between its answer and our write); every copy is the same CDR with the same
id, which OCPI makes unique per CPO, so the eMSP can tell. No order among a party's CDRs (they are independent),
except that a credit is never sent before its original was delivered.

Every CDR billing makes is looked at: from `cdr.created`, and, since events are hints, by a scan of the CDRs
made since the last one looked at (`ocpi_state.cdrs_seen`) at start, after lost events and every RECONCILE_S.
The first start with this module looks at CDRs made from then on, not at older ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import msgspec
import trio

from ampgate.billing.model import Cdr
from ampgate.bus import EventBus, EventsLost
from ampgate.clock import Clock
from ampgate.errors import ConflictError, NotFoundError
from ampgate.events import CdrCreated, OcpiCdrDelivered
from ampgate.pricing import Tariff as EngineTariff
from ampgate.roaming import cdr_types as o
from ampgate.roaming.billing_objects import PlaceSource, cdr_object, credit_object, place_of
from ampgate.roaming.billing_rows import FAILED, PENDING, SENT, CdrRecord, CdrRows, Delivery, SessionRows
from ampgate.roaming.client import OcpiClient, PartyRefused, PartyUnreachable
from ampgate.roaming.parties import REGISTERED, Party
from ampgate.roaming.token_rows import AuthorizationRow
from ampgate.roaming.types import ModuleId
from ampgate.store.transactions import TransactionRow

log = logging.getLogger(__name__)

# The first wait after a failed attempt (--ocpi-cdr-retry-s), doubled per attempt up to MAX_BACKOFF_S: a party
# down for minutes gets its CDRs within a minute of coming back, one down for a day costs a call an hour.
RETRY_S = 30.0
MAX_BACKOFF_S = 3600.0
# A delivery not made within this is given up (failed, for an admin to retry): a week covers an eMSP's long
# outage; past that a person should look.
GIVE_UP = timedelta(days=7)
# Pending deliveries per party beyond which new ones fail at once (queue full): a month of CDRs of a large eMSP.
MAX_PENDING = 100_000
# POSTs in flight per party (as the pushers'), and due rows read per pass.
WORKERS_PER_PARTY = 4
BATCH = 200
# The longest the loop sleeps without looking at the table: new rows, retries and finished attempts wake it, and
# it sleeps until the next delivery is due; this is only a safety net (a row written behind its back).
IDLE_S = 300.0
# How often billing's CDRs are scanned for ones whose event was missed.
RECONCILE_S = 60.0
_SCAN = 500
_SEEN = "cdrs_seen"


class Authorizations(Protocol):
    def for_transaction(self, tx_id: int, /) -> AuthorizationRow | None: ...


class CdrSource(Protocol):
    """`ampgate.billing.CdrRepository`."""

    def get(self, cdr_id: int, /) -> Cdr | None: ...
    def page(self, limit: int, *, before: int | None = None) -> list[Cdr]: ...


class TariffRowLike(Protocol):
    @property
    def tariff(self) -> EngineTariff: ...
    @property
    def updated_at(self) -> datetime: ...


class TariffSource(Protocol):
    """`ampgate.billing.Tariffs`."""

    def get(self, tariff_id: str, /) -> TariffRowLike | None: ...


class Transactions(Protocol):
    def get(self, tx_id: int, /) -> TransactionRow | None: ...


class PartyLookup(Protocol):
    def get(self, party_id: int, /) -> Party | None: ...
    def page(self, limit: int, after: int | None = None, /) -> list[Party]: ...


def backoff(attempts: int, first_s: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return float(min(first_s * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


class CdrDelivery:
    """See the module docstring. Start `run` in the node's nursery."""

    def __init__(
        self,
        rows: CdrRows,
        sessions: SessionRows,
        authorizations: Authorizations,
        cdrs: CdrSource,
        tariffs: TariffSource,
        transactions: Transactions,
        parties: PartyLookup,
        book: PlaceSource,
        currency: Callable[[str, str | None], str],
        client: OcpiClient,
        bus: EventBus,
        clock: Clock,
        *,
        country_code: str,
        party_id: str,
        retry_s: float = RETRY_S,
        give_up: timedelta = GIVE_UP,
        workers: int = WORKERS_PER_PARTY,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.rows = rows
        self._sessions = sessions
        self._auths = authorizations
        self._cdrs = cdrs
        self._tariffs = tariffs
        self._tx = transactions
        self._parties = parties
        self._book = book
        self._currency = currency
        self._client = client
        self._bus = bus
        self._clock = clock
        self.country_code = country_code
        self.party_id = party_id
        self.retry_s = retry_s
        self.give_up = give_up
        self.workers = workers
        self.max_pending = max_pending
        self._wake = trio.Event()
        self._in_flight: set[int] = set()
        self._per_party: dict[int, int] = {}
        # The last billing CDR looked at (ocpi_state.cdrs_seen), once read.
        self._seen: int | None = None

    # -- the operator API ------------------------------------------------------------------------------------

    def get(self, ref: int) -> Delivery | None:
        return self.rows.delivery(ref)

    def page(
        self, limit: int, after: int | None = None, *, state: str | None = None, party_id: str | None = None
    ) -> list[Delivery]:
        """Deliveries in id order after `after`, in `state`, to parties whose OCPI party id is `party_id`
        (compared without case)."""
        refs = None
        if party_id is not None:
            refs = [p.id for p in self._parties.page(10_000) if p.party_id.casefold() == party_id.casefold()]
        return self.rows.deliveries(limit, after=after, state=state, party_refs=refs)

    async def retry(self, ref: int) -> Delivery:
        """Try delivery `ref` again now (a failed one is pending again, given up GIVE_UP from now). Raises
        NotFoundError (field id), ConflictError already_delivered for a sent one."""
        found = self.rows.delivery(ref)
        if found is None:
            raise NotFoundError(f"CDR delivery {ref} does not exist", field="id")
        if found.state == SENT:
            raise ConflictError(
                f"CDR delivery {ref} was delivered: sending it again would bill twice",
                field="id",
                code="already_delivered",
            )
        now = self._clock.now()
        again = await self.rows.retry(ref, at=now, give_up_at=now + self.give_up)
        assert again is not None
        self._wake.set()
        return again

    # -- OCPI GET ----------------------------------------------------------------------------------------------

    def cdr_page(
        self, party_ref: int, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int
    ) -> tuple[int, list[msgspec.Raw]]:
        return self.rows.page(party_ref, date_from, date_to, offset, limit)

    # -- what is delivered -----------------------------------------------------------------------------------

    def _build(self, cdr: Cdr, auth: AuthorizationRow) -> tuple[o.Cdr | None, str | None]:
        """The OCPI CDR of `cdr` (a credit: its original's, credited), or why it cannot be built yet."""
        if cdr.credit_of is not None:
            original = self._cdrs.get(cdr.credit_of)
            if original is None:
                return None, f"the credited CDR {cdr.credit_of} does not exist"
            kept = self.rows.get(original.id)
            if kept is not None and kept.body is not None:
                first = msgspec.json.decode(kept.body, type=o.Cdr)
            else:
                built, error = self._build(original, auth)
                if built is None:
                    return None, error
                first = built
            return credit_object(first, credit_id=cdr.id, created_at=cdr.created_at), None
        record = self._sessions.get(cdr.transaction_id)
        location = None if record is None else record.place.cdr_location
        if location is None:
            tx = self._tx.get(cdr.transaction_id)
            place = None if tx is None else place_of(tx, self._book)
            location = None if place is None else place.cdr_location
        if location is None:
            return None, (
                f"charger {cdr.charger_id} is not at a site published as a Location (address, city, country,"
                " coordinates): the CDR cannot name where it happened"
            )
        updated = None
        if cdr.tariff is not None:
            row = self._tariffs.get(cdr.tariff.id)
            if row is not None and row.tariff == cdr.tariff:
                updated = row.updated_at
        return (
            cdr_object(
                cdr,
                country_code=self.country_code,
                party_id=self.party_id,
                token=auth.token,
                auth_method=auth.auth_method,
                authorization_reference=auth.authorization_reference,
                location=location,
                currency=self._currency(cdr.charger_id, cdr.id_token),
                tariff_updated_at=updated,
            ),
            None,
        )

    def _receiver(self, party: Party | None) -> str | None:
        if party is None or party.state != REGISTERED or not party.their_token:
            return None
        return party.endpoint(ModuleId.CDRS, "RECEIVER")

    async def enqueue(self, cdr: Cdr) -> Delivery | None:
        """Keep `cdr` as an OCPI CDR and queue its delivery when an eMSP's token started its session and the
        eMSP takes CDR pushes (idempotent: a CDR seen before changes nothing). The delivery, or None."""
        if self.rows.get(cdr.id) is not None:
            return None
        auth = self._auths.for_transaction(cdr.transaction_id)
        if auth is None:
            return None
        built, error = self._build(cdr, auth)
        body = None if built is None else msgspec.json.Encoder(decimal_format="number").encode(built)
        deliver = self._receiver(self._parties.get(auth.party_ref)) is not None
        full = deliver and self.rows.pending(auth.party_ref) >= self.max_pending
        now = self._clock.now()
        delivery = await self.rows.add(
            CdrRecord(
                cdr_id=cdr.id,
                party_ref=auth.party_ref,
                transaction_id=cdr.transaction_id,
                credit_of=cdr.credit_of,
                body=body,
                error=error,
            ),
            last_updated=cdr.created_at,
            deliver=deliver,
            give_up_at=now + self.give_up,
        )
        if error is not None:
            log.warning("OCPI: CDR %d for party %d cannot be built yet: %s", cdr.id, auth.party_ref, error)
        if delivery is not None and full and delivery.state == PENDING:
            delivery = await self.rows.attempted(
                delivery.id,
                state=FAILED,
                at=now,
                next_attempt_at=None,
                error=f"queue full: {self.max_pending} CDRs wait for this party already",
                counted=False,
            )
            self._announce(delivery)
        self._wake.set()
        return delivery

    # -- running -----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._bus.subscribe(["cdr.created"]) as sub:
            await self.reconcile()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._deliver)
                task_status.started()
                next_reconcile = trio.current_time() + RECONCILE_S
                while True:
                    item = None
                    with trio.move_on_at(next_reconcile):
                        item = await sub.receive()
                    if isinstance(item, EventsLost):
                        await self.reconcile()
                    elif isinstance(item, CdrCreated):
                        cdr = self._cdrs.get(item.cdr_id)
                        if cdr is not None:
                            await self.enqueue(cdr)
                    if trio.current_time() >= next_reconcile:
                        await self.reconcile()
                        next_reconcile = trio.current_time() + RECONCILE_S

    def _latest(self) -> int:
        newest = self._cdrs.page(1)
        return newest[0].id if newest else 0

    async def reconcile(self) -> None:
        """Enqueue the CDRs billing made since the last one looked at (their events may have been lost)."""
        if self._seen is None:
            self._seen = await self.rows.mark(_SEEN, self._latest())
        seen = self._seen
        found: list[Cdr] = []
        before: int | None = None
        while True:
            page = self._cdrs.page(_SCAN, before=before)
            fresh = [c for c in page if c.id > seen]
            found.extend(fresh)
            if len(fresh) < len(page) or len(page) < _SCAN:
                break
            before = page[-1].id
        for cdr in sorted(found, key=lambda c: c.id):
            await self.enqueue(cdr)
        if found:
            self._seen = max(c.id for c in found)
            await self.rows.set_mark(_SEEN, self._seen)

    async def _deliver(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                self._wake = trio.Event()
                started = False
                for d in self.rows.due(self._clock.now(), BATCH):
                    if d.id in self._in_flight or self._per_party.get(d.party_ref, 0) >= self.workers:
                        continue
                    self._in_flight.add(d.id)
                    self._per_party[d.party_ref] = self._per_party.get(d.party_ref, 0) + 1
                    nursery.start_soon(self._attempt, d)
                    started = True
                wait = IDLE_S
                due = self.rows.next_due()
                if due is not None:
                    wait = min(IDLE_S, max((due - self._clock.now()).total_seconds(), 0.0))
                if wait <= 0 and not started:
                    # Everything due is in flight or waits for a worker: the next one to finish wakes us.
                    wait = IDLE_S
                with trio.move_on_after(wait):
                    await self._wake.wait()

    async def _attempt(self, d: Delivery) -> None:
        try:
            await self._try(d)
        except Exception:
            # A bug must not stop the queue: the delivery stays as it was and is tried again later.
            log.exception("OCPI: delivering CDR %d to party %d failed unexpectedly", d.cdr_id, d.party_ref)
            await trio.sleep(self.retry_s)
        finally:
            self._in_flight.discard(d.id)
            self._per_party[d.party_ref] -= 1
            if not self._per_party[d.party_ref]:
                del self._per_party[d.party_ref]
            self._wake.set()

    async def _try(self, d: Delivery) -> None:
        now = self._clock.now()
        party = self._parties.get(d.party_ref)
        if party is None:
            gone = await self.rows.attempted(
                d.id, state=FAILED, at=now, next_attempt_at=None, error="the party was deleted", counted=False
            )
            self._announce(gone)
            return
        url = self._receiver(party)
        if url is None:
            await self._wait(
                d,
                now,
                f"{party.country_code}*{party.party_id} takes no CDR pushes now"
                " (not registered, or no cdrs RECEIVER endpoint)",
            )
            return
        record = self.rows.get(d.cdr_id)
        if record is None:
            return
        body = record.body
        if body is None:
            cdr = self._cdrs.get(d.cdr_id)
            auth = self._auths.for_transaction(record.transaction_id)
            built, error = (
                (None, "the CDR or its authorization is gone")
                if cdr is None or auth is None
                else (self._build(cdr, auth))
            )
            if built is None:
                await self._wait(d, now, error or "the CDR cannot be built")
                return
            body = msgspec.json.Encoder(decimal_format="number").encode(built)
            await self.rows.set_body(d.cdr_id, body)
        if d.after_id is not None:
            first = self.rows.delivery(d.after_id)
            if first is not None and first.state != SENT:
                await self._wait(d, now, f"a credit: waits until CDR {first.cdr_id} is delivered")
                return
        token = party.their_token
        assert token is not None
        try:
            _, headers = await self._client.exchange(
                "POST", url, token, body=msgspec.Raw(body), to=(party.country_code, party.party_id)
            )
        except (PartyUnreachable, PartyRefused) as e:
            attempts = d.attempts + 1
            later = self._clock.now()
            gave_up = later >= d.give_up_at
            failed = await self.rows.attempted(
                d.id,
                state=FAILED if gave_up else PENDING,
                at=later,
                next_attempt_at=None
                if gave_up
                else later + timedelta(seconds=backoff(attempts, self.retry_s)),
                error=str(e)[:500],
            )
            log.warning(
                "OCPI: CDR %d to %s*%s, attempt %d: %s%s",
                d.cdr_id,
                party.country_code,
                party.party_id,
                attempts,
                e,
                " (given up)" if gave_up else "",
            )
            if gave_up:
                self._announce(failed)
            return
        sent = await self.rows.attempted(
            d.id,
            state=SENT,
            at=self._clock.now(),
            next_attempt_at=None,
            error=None,
            location=headers.get("location"),
        )
        self._announce(sent)

    async def _wait(self, d: Delivery, now: datetime, why: str) -> None:
        """Not attempted (`why`): wait like a failure, but do not count it."""
        gave_up = now >= d.give_up_at
        later = await self.rows.attempted(
            d.id,
            state=FAILED if gave_up else PENDING,
            at=now,
            next_attempt_at=None
            if gave_up
            else now + timedelta(seconds=backoff(d.attempts + 1, self.retry_s)),
            error=why,
            counted=False,
        )
        if gave_up:
            self._announce(later)

    def _announce(self, d: Delivery) -> None:
        self._bus.publish(
            OcpiCdrDelivered(
                at=self._clock.now(),
                cdr_id=d.cdr_id,
                delivery_id=d.id,
                party_ref=d.party_ref,
                state=d.state,
                attempts=d.attempts,
                location=d.location,
                error=d.last_error,
            )
        )
