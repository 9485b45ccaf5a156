"""`BillingSessions`: what every session costs, running and final, and its CDR when the EVSE is free again.

The node's `SessionCosts`: `running_cost(tx)` prices the session until now from what it keeps in memory,
`final_cost(tx)` prices it until the transaction's stop from the store (called by the OCPP handler while it
builds the stop's reply, after the stop and its meter values were recorded), and when the session ends the CDR
is `price(..., until=ended_at)` from the store. One engine and one assembly of the usage (`billing.usage`) for
all three, so the running cost shown, the total told to the charger and the CDR agree.

A session's tariff is decided when the node first sees the transaction (normally its start): id-token group,
charger, site, default (`billing.tariffs.resolve`), and recorded with the site and its time zone in
`billing_sessions` as a snapshot, so a tariff changed or reassigned later never reprices a running session.

A session ends when the EVSE is free again after the transaction's stop: its connector reports Available (or
Reserved), or the charger goes offline (disconnected and not back within OFFLINE_GRACE_S; the session ends when
it disconnected), or `max_parking_s` after the stop passed without either (the parking is billed up to then). Until then the cost grows by the parking after the transaction (PARKING_TIME), which the
CDR shows separately (`parking_after_cost`). A 2.0.1 transaction usually lasts until the cable is unplugged;
a 1.6 charger often stops it first. The CDR's authorization reference is the one that let the transaction in,
asked of `Authorizations` (OCPI's token authority: an eMSP's reference) as the CDR is built; a session our own
id-token table authorized has none (OCPP gives no such reference).

State: each open session's meter samples, charging timeline and tariff, in memory, from the bus
(`transaction.*`, `connector.status`, `charger.disconnected`). Events are hints: at start, after a loss and every
RECONCILE_INTERVAL_S it reads the store again (open transactions, sessions not ended, transactions it has not
seen; after a loss each session's samples are read again before it is next priced). A node restarted between a
transaction's stop and the EVSE free loads the session from `billing_sessions` and ends it as above: the CDR
insert and the session's end are one write, so there is exactly one CDR.
"""

from __future__ import annotations

import logging
from bisect import insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import trio

from ampgate.billing.model import Cdr, SessionRow
from ampgate.billing.repository import CdrRepository, SessionRepository
from ampgate.billing.signals import PriceSignals
from ampgate.billing.tariffs import Tariffs
from ampgate.billing.usage import (
    FREE_STATUSES,
    PRICED_MEASURANDS,
    Meter,
    charging_from_status,
    session_usage,
)
from ampgate.bus import EventBus, EventsLost
from ampgate.clock import Clock
from ampgate.connectivity.links import REPLACED_REASON, SHUTDOWN_REASON
from ampgate.events import (
    CdrCreated,
    ChargerConnected,
    ChargerDisconnected,
    ConnectorStatusChanged,
    Event,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from ampgate.pricing import (
    ChargingChange,
    CompiledTariff,
    Cost,
    PriceComponent,
    SessionUsage,
    Tariff,
    TariffElement,
    compile_tariff,
    price,
)
from ampgate.store.connector_status import ConnectorStatusRow
from ampgate.store.transactions import OCPP16, Sample, SampleKey, SignedValue, TransactionRow

__all__ = ["DEFAULT_MAX_PARKING_S", "BillingSessions"]

log = logging.getLogger(__name__)

# The longest a session waits after its transaction stopped for the EVSE to be free again (--cdr-max-parking-s):
# an hour of parking is billed at most when nobody tells us the cable was unplugged.
DEFAULT_MAX_PARKING_S = 3600.0
# How often the deadlines are looked at: the CDR of a session nobody ended comes at most this late, and the
# running cost is never priced past the deadline meanwhile.
SWEEP_INTERVAL_S = 5.0
# Everything read again from the store this often regardless of events (as the other parts that follow the bus).
RECONCILE_INTERVAL_S = 300.0
# A charger that reconnects within this long did not go offline (a network blip, its own restart, the node
# restarting: the gateway closes every connection on the way down), so its parked sessions go on; one that does
# not has its parked sessions ended when it disconnected.
OFFLINE_GRACE_S = 60.0
# Disconnects that are not the charger going away: the node itself stopping, or the charger's newer connection
# replacing an older one.
_NOT_OFFLINE = frozenset({SHUTDOWN_REASON, REPLACED_REASON})
# Transactions read per query when catching up with ones missed.
_BATCH = 500
# Meter samples read per query when a session is loaded from the store: its priced measurands only, a page at a
# time, so loading a long session holds one page of rows besides the session's own meter (one entry per instant).
SAMPLE_PAGE = 1000
_TYPES = [
    "transaction.started",
    "transaction.updated",
    "transaction.ended",
    "connector.status",
    "charger.connected",
    "charger.disconnected",
]
# Prices nothing: gives an unpriced session's volumes (charging, parking, energy) for its CDR.
_UNPRICED = compile_tariff(
    Tariff(
        id="unpriced",
        currency="EUR",
        elements=(TariffElement(price_components=(PriceComponent(type="ENERGY", price=Decimal(0)),)),),
    )
)


class TransactionSource(Protocol):
    """`ampgate.store.TransactionRepository`."""

    def get(self, tx_id: int, /) -> TransactionRow | None: ...
    def samples_of(
        self, tx_id: int, measurands: Sequence[str], limit: int, /, *, after: SampleKey | None = None
    ) -> list[Sample]: ...
    def charging(self, tx_id: int, /) -> list[tuple[datetime, bool]]: ...
    def record_charging(self, tx_id: int, at: datetime, charging: bool, /) -> None: ...
    def signed(self, tx_id: int, /) -> list[SignedValue]: ...
    def open_transactions(self) -> list[TransactionRow]: ...
    def after(self, tx_id: int, limit: int, /) -> list[TransactionRow]: ...
    def last_id(self) -> int: ...


class StatusSource(Protocol):
    """`ampgate.store.ConnectorStatusRepository`."""

    def statuses(self, charger_id: str, /) -> list[ConnectorStatusRow]: ...


class HasReference(Protocol):
    @property
    def authorization_reference(self) -> str | None: ...


class Authorizations(Protocol):
    """What let a transaction in when someone other than our id-token table decided it
    (`ampgate.roaming.authority.TokenAuthority`: an eMSP's token, by a command, a real-time answer or the
    whitelist): its authorization, or None (ours decided, or it was nobody's)."""

    async def authorization_for(self, tx: TransactionRow, /) -> HasReference | None: ...


class HasZone(Protocol):
    @property
    def time_zone(self) -> str: ...


class SiteSource(Protocol):
    """The sites (`ampgate.load.TopologyRepository`): a site's time zone."""

    def site(self, site_id: str, /) -> HasZone | None: ...


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r: pricing in UTC", name)
        return UTC


class _Session:
    """An open session as priced: what was recorded at its start and what the store says of its transaction."""

    __slots__ = (
        "charging",
        "compiled",
        "ending",
        "meter",
        "row",
        "stale",
        "stop_energy_wh",
        "stopped_at",
        "tx",
        "tz",
    )

    def __init__(self, row: SessionRow, compiled: CompiledTariff | None, tx: TransactionRow) -> None:
        self.row = row
        self.compiled = compiled
        self.tz = _zone(row.time_zone)
        self.tx = tx
        self.meter = Meter(tx.meter_start_wh)
        self.charging: list[ChargingChange] = []
        self.stopped_at: datetime | None = None
        self.stop_energy_wh: float | None = None
        self.stale = False
        self.ending = False

    @property
    def tx_id(self) -> int:
        return self.tx.id

    def load(
        self, tx: TransactionRow, pages: Iterable[list[Sample]], charging: Iterable[tuple[datetime, bool]]
    ) -> None:
        """Everything from the store again; the samples in pages of whole instants."""
        self.tx = tx
        self.meter = Meter(tx.meter_start_wh)
        for page in pages:
            self.meter.add(page)
        self.charging = [ChargingChange(max(at, tx.started_at), c) for at, c in charging]
        self.charging.sort(key=lambda c: c.at)
        self.stopped_at = tx.stopped_at
        start = tx.meter_start_wh if tx.meter_start_wh is not None else self.meter.start_wh
        self.stop_energy_wh = (
            None
            if tx.stopped_at is None or tx.meter_stop_wh is None or start is None
            else tx.meter_stop_wh - start
        )
        self.stale = False

    def usage(self, ended_at: datetime | None = None) -> SessionUsage:
        return session_usage(
            self.tx.started_at,
            self.meter.samples(),
            self.charging,
            stopped_at=self.stopped_at,
            stop_energy_wh=self.stop_energy_wh,
            ended_at=ended_at,
        )

    def charging_now(self) -> bool:
        return self.charging[-1].charging if self.charging else True

    def at_connector(self, evse_id: int | None, connector_id: int) -> bool:
        """Whether a status of (evse_id, connector_id) is about this session's connector."""
        if self.tx.protocol == OCPP16:
            return evse_id is None and connector_id == self.tx.connector_id
        return evse_id == self.tx.evse_id and (
            self.tx.connector_id is None or connector_id == self.tx.connector_id
        )


class BillingSessions:
    """Session costs and CDRs (see the module docstring). Start `run` in the node's nursery before the gateway.
    `authorizations` (settable later: OCPI is built after billing, and prices with it) gives a CDR its
    authorization reference; without it every CDR's is None."""

    def __init__(
        self,
        rows: SessionRepository,
        cdrs: CdrRepository,
        tariffs: Tariffs,
        signals: PriceSignals,
        transactions: TransactionSource,
        statuses: StatusSource,
        site_of: Callable[[str], str | None],
        sites: SiteSource,
        bus: EventBus,
        clock: Clock,
        *,
        max_parking_s: float = DEFAULT_MAX_PARKING_S,
        authorizations: Authorizations | None = None,
    ) -> None:
        self.authorizations = authorizations
        self._rows = rows
        self._cdrs = cdrs
        self._tariffs = tariffs
        self._signals = signals
        self._tx = transactions
        self._statuses = statuses
        self._site_of = site_of
        self._sites = sites
        self._bus = bus
        self._clock = clock
        self._max_parking = timedelta(seconds=max_parking_s)
        self._sessions: dict[int, _Session] = {}
        self._by_charger: dict[str, set[int]] = {}
        self._parked: set[int] = set()
        # Chargers disconnected (and not back yet), since when.
        self._gone: dict[str, datetime] = {}
        # Transactions from this id on are billed (a stopped one without a session is opened); set at the first
        # reconcile, from the store (None until then: every transaction is).
        self._billed_from: int | None = None
        # Transactions up to this id have been looked at by a reconcile; ones after it are scanned for at the next.
        self._high_water = 0

    # -- SessionCosts ------------------------------------------------------------------------------------------

    def running_cost(self, transaction_id: int, /, *, periods: bool = False) -> Cost | None:
        """The session's cost until now (its CDR's once it ended): None when no tariff applies, or for a
        transaction the node does not know or that ended before billing existed. Totals only unless `periods`
        (the charging periods too: OCPI's Session)."""
        s = self._session(transaction_id)
        if s is None:
            cdr = self._cdrs.of_transaction(transaction_id)
            return None if cdr is None else cdr.cost
        if s.compiled is None:
            return None
        if s.stale:
            self._reload(s)
        until = self._clock.now()
        if s.stopped_at is not None:
            # Never past the end the sweep will give it (it runs every few seconds).
            until = min(until, s.stopped_at + self._max_parking)
        return self._price(s, s.usage(), until, fresh=False, periods=periods)

    async def final_cost(self, transaction_id: int, /) -> Cost | None:
        """The session's cost until its transaction's stop, read from the store (the stop and the meter values
        that came with it are recorded before this is called): what the charger is told at the end, equal to
        the CDR's `transaction_cost`. Before the stop is recorded, until now. None when no tariff applies."""
        s = self._session(transaction_id)
        if s is None:
            row = self._rows.get(transaction_id)
            tx = self._tx.get(transaction_id)
            if row is None or tx is None or row.tariff is None:
                return None
            s = _Session(row, compile_tariff(row.tariff), tx)
        if s.compiled is None:
            return None
        self._reload(s)
        until = s.stopped_at or self._clock.now()
        return self._price(s, s.usage(), until, fresh=True, periods=True)

    def tariff_of(self, transaction_id: int) -> Tariff | None:
        """The tariff the session is priced by (fixed at its start), or None."""
        s = self._sessions.get(transaction_id)
        if s is not None:
            return s.row.tariff
        row = self._rows.get(transaction_id)
        return None if row is None else row.tariff

    # -- sessions ----------------------------------------------------------------------------------------------

    def _price(
        self, s: _Session, usage: SessionUsage, until: datetime, *, fresh: bool, periods: bool
    ) -> Cost:
        assert s.compiled is not None
        signals = self._signals.signals(
            s.row.site_id, s.compiled.currency, s.tx.started_at, until, fresh=fresh
        )
        return price(s.compiled, usage, until=until, tz=s.tz, signals=signals, periods=periods)

    def _session(self, tx_id: int) -> _Session | None:
        """The open session of transaction `tx_id`, opened now if billing has not seen it yet (its Started event
        still queued); None if it ended (or never will be billed: a transaction from before billing)."""
        s = self._sessions.get(tx_id)
        if s is not None:
            return s
        tx = self._tx.get(tx_id)
        return None if tx is None else self._open(tx)

    def _open(self, tx: TransactionRow) -> _Session | None:
        s = self._sessions.get(tx.id)
        if s is not None:
            return s
        row = self._rows.get(tx.id)
        if row is not None and row.ended_at is not None:
            return None
        if row is None:
            if tx.stopped_at is not None and self._billed_from is not None and tx.id < self._billed_from:
                return None  # ended before billing ran
            row = self._start_row(tx)
            self._rows.open(row)
        compiled = None if row.tariff is None else self._compiled(row.tariff)
        s = _Session(row, compiled, tx)
        self._load(s, tx)
        if not s.charging and s.stopped_at is None:
            self._status_at_start(s)
        self._sessions[tx.id] = s
        self._by_charger.setdefault(tx.charger_id, set()).add(tx.id)
        if s.stopped_at is not None:
            self._parked.add(tx.id)
        return s

    def _compiled(self, tariff: Tariff) -> CompiledTariff:
        current = self._tariffs.get(tariff.id)
        if current is not None and current.tariff == tariff:
            found = self._tariffs.compiled(tariff.id)
            if found is not None:
                return found
        return compile_tariff(tariff)

    def _start_row(self, tx: TransactionRow) -> SessionRow:
        """What a new session is priced by: the tariff resolved now, for its start."""
        site_id = self._site_of(tx.charger_id)
        site = None if site_id is None else self._sites.site(site_id)
        zone = "UTC" if site is None else site.time_zone
        group = self._tariffs.group_of(tx.id_token)
        found = self._tariffs.resolve(tx.charger_id, group=group, site_id=site_id, at=tx.started_at)
        return SessionRow(
            transaction_id=tx.id,
            charger_id=tx.charger_id,
            site_id=site_id,
            time_zone=zone,
            group_id=group,
            tariff=None if found is None else found.tariff,
            created_at=self._clock.now(),
        )

    def _load(self, s: _Session, tx: TransactionRow) -> None:
        s.load(tx, self._sample_pages(tx.id), self._tx.charging(tx.id))

    def _sample_pages(self, tx_id: int) -> Iterator[list[Sample]]:
        """The transaction's priced samples (register, power, current) in pages of SAMPLE_PAGE rows at most,
        each ending at a whole instant (the meter assembles an instant from all its samples at once): the rows
        of the last instant of a full page are read again with the next one."""
        after: SampleKey | None = None
        while True:
            page = self._tx.samples_of(tx_id, PRICED_MEASURANDS, SAMPLE_PAGE, after=after)
            if len(page) < SAMPLE_PAGE:
                if page:
                    yield page
                return
            cut = len(page)
            while cut and page[cut - 1].at == page[-1].at:
                cut -= 1
            if cut == 0:
                cut = len(page)  # one instant fills a page (never in practice): it goes whole
            yield page[:cut]
            last = page[cut - 1]
            after = (last.at, last.measurand, last.phase)

    def _reload(self, s: _Session) -> None:
        tx = self._tx.get(s.tx_id)
        if tx is not None:
            self._load(s, tx)
            if s.stopped_at is not None and s.tx_id in self._sessions:
                self._parked.add(s.tx_id)

    def _status_at_start(self, s: _Session) -> None:
        """A 1.6 connector may have reported Charging before billing saw the transaction: take its status."""
        for row in self._statuses.statuses(s.tx.charger_id):
            if s.at_connector(row.evse_id, row.connector_id):
                self._charging(s, row.status, row.updated_at)

    def _charging(self, s: _Session, status: str, at: datetime) -> None:
        charging = charging_from_status(s.tx.protocol, status)
        if charging is None or charging == s.charging_now():
            return
        at = max(at, s.tx.started_at)
        insort(s.charging, ChargingChange(at, charging), key=lambda c: c.at)
        self._tx.record_charging(s.tx_id, at, charging)

    def _forget(self, s: _Session) -> None:
        self._sessions.pop(s.tx_id, None)
        self._parked.discard(s.tx_id)
        ids = self._by_charger.get(s.tx.charger_id)
        if ids is not None:
            ids.discard(s.tx_id)
            if not ids:
                del self._by_charger[s.tx.charger_id]

    def _of_charger(self, charger_id: str) -> list[_Session]:
        return [self._sessions[i] for i in sorted(self._by_charger.get(charger_id, ()))]

    # -- the end and the CDR -----------------------------------------------------------------------------------

    def _free_since(self, s: _Session) -> datetime | None:
        """When the session's connector became free after its start, from the stored statuses (None: it is not
        free, as far as they say)."""
        rows = [
            r for r in self._statuses.statuses(s.tx.charger_id) if s.at_connector(r.evse_id, r.connector_id)
        ]
        if not rows or any(r.status not in FREE_STATUSES for r in rows):
            return None
        at = max(r.updated_at for r in rows)
        return at if at >= s.tx.started_at else None

    async def _end(self, s: _Session, ended_at: datetime, reason: str) -> Cdr | None:
        """Create the session's CDR (once) and forget the session. A failed write leaves it to the next sweep."""
        if s.ending:
            return None
        s.ending = True
        try:
            self._reload(s)
            if s.stopped_at is None:
                return None
            # Asked before the CDR is built: it is never changed, so a reference that cannot be read now (the
            # store failing) is retried with the whole CDR at the next sweep, never written as missing.
            reference = await self._authorization_reference(s.tx)
            cdr = self._cdr(s, max(ended_at, s.stopped_at), reason, reference)
            saved, created = await self._cdrs.create(cdr)
        except Exception:
            log.exception("transaction %d: the CDR could not be written; retrying at the next sweep", s.tx_id)
            return None
        finally:
            # Not ended (failed, or cancelled: the node stops; the write may have committed, which the next
            # attempt finds): another attempt may end it.
            s.ending = False
        self._forget(s)
        if created:
            self._bus.publish(
                CdrCreated(
                    at=self._clock.now(),
                    charger_id=saved.charger_id,
                    cdr_id=saved.id,
                    transaction_id=saved.transaction_id,
                    credit_of=None,
                    site_id=saved.site_id,
                    currency=saved.currency,
                    total_cost=saved.total_cost,
                    ended_at=saved.ended_at,
                )
            )
        return saved

    async def _authorization_reference(self, tx: TransactionRow) -> str | None:
        if self.authorizations is None:
            return None
        found = await self.authorizations.authorization_for(tx)
        return None if found is None else found.authorization_reference

    def _cdr(self, s: _Session, ended_at: datetime, reason: str, authorization_reference: str | None) -> Cdr:
        assert s.stopped_at is not None
        usage = s.usage(ended_at)
        cost: Cost | None = None
        if s.compiled is not None:
            cost = volumes = self._price(s, usage, ended_at, fresh=True, periods=True)
        else:
            volumes = price(_UNPRICED, usage, until=ended_at, tz=s.tz, periods=False)
        row, tx = s.row, s.tx
        return Cdr(
            id=0,
            transaction_id=tx.id,
            credit_of=None,
            charger_id=tx.charger_id,
            site_id=row.site_id,
            evse_id=tx.evse_id,
            connector_id=tx.connector_id,
            id_token=tx.id_token,
            group_id=row.group_id,
            authorization_reference=authorization_reference,
            started_at=tx.started_at,
            stopped_at=s.stopped_at,
            ended_at=ended_at,
            end_reason=reason,
            energy_wh=float(volumes.energy_wh),
            charging_time_s=float(volumes.charging_time_s),
            parking_time_s=float(volumes.parking_time_s),
            parking_after_s=float(volumes.parking_after_s),
            currency=None if cost is None else cost.currency,
            tariff=row.tariff,
            cost=cost,
            signed_meter_values=tuple(self._tx.signed(tx.id)),
            created_at=self._clock.now(),
        )

    async def _settle(self, *, look: bool) -> None:
        """End the parked sessions that are due: past their longest wait, or (`look`) with a free connector
        in the stored statuses."""
        now = self._clock.now()
        grace = timedelta(seconds=OFFLINE_GRACE_S)
        for charger_id, since in list(self._gone.items()):
            if now < since + grace:
                continue
            del self._gone[charger_id]
            for gone in self._of_charger(charger_id):
                if gone.stopped_at is not None:
                    await self._end(gone, since, "charger_offline")
        for tx_id in sorted(self._parked):
            s = self._sessions.get(tx_id)
            if s is None or s.stopped_at is None:
                self._parked.discard(tx_id)
                continue
            deadline = s.stopped_at + self._max_parking
            free = self._free_since(s) if look else None
            if free is not None and free <= deadline:
                await self._end(s, free, "evse_free")
            elif now >= deadline:
                await self._end(s, deadline, "max_parking")

    # -- events ------------------------------------------------------------------------------------------------

    async def _apply(self, ev: Event) -> None:
        if isinstance(ev, TransactionStarted):
            self._session(ev.transaction_id)
        elif isinstance(ev, TransactionUpdated):
            s = self._session(ev.transaction_id)
            if s is not None:
                s.meter.add(ev.samples)
                if s.tx.protocol != OCPP16:
                    s.charging = [
                        ChargingChange(max(a, s.tx.started_at), c) for a, c in self._tx.charging(s.tx_id)
                    ]
        elif isinstance(ev, TransactionEnded):
            s = self._session(ev.transaction_id)
            if s is not None:
                self._reload(s)
                self._parked.add(s.tx_id)
                free = self._free_since(s)
                if free is not None:
                    await self._end(s, free, "evse_free")
        elif isinstance(ev, ConnectorStatusChanged) and ev.charger_id is not None:
            for s in self._of_charger(ev.charger_id):
                if not s.at_connector(ev.evse_id, ev.connector_id):
                    continue
                if s.stopped_at is None:
                    self._charging(s, ev.status, ev.reported_at)
                elif ev.status in FREE_STATUSES:
                    await self._end(s, ev.reported_at, "evse_free")
        elif (
            isinstance(ev, ChargerDisconnected)
            and ev.charger_id is not None
            and ev.reason not in _NOT_OFFLINE
        ):
            self._gone.setdefault(ev.charger_id, ev.at)
        elif isinstance(ev, ChargerConnected) and ev.charger_id is not None:
            self._gone.pop(ev.charger_id, None)

    async def reconcile(self, *, lost: bool = False) -> None:
        """Read the store again: sessions not ended, open transactions, transactions not seen yet; with `lost`
        (events were lost) every session's samples are read again before it is next priced. Then end the
        sessions whose connector is free or whose wait is over."""
        if self._billed_from is None:
            # The first start with billing: transactions that ended before it are not billed.
            self._billed_from = await self._rows.billed_from(self._tx.last_id() + 1)
            self._high_water = max(self._billed_from - 1, self._rows.last_transaction_id() or 0)
        for row in self._rows.unended():
            if row.transaction_id not in self._sessions:
                tx = self._tx.get(row.transaction_id)
                if tx is not None:
                    self._open(tx)
        while True:
            rows = self._tx.after(self._high_water, _BATCH)
            for tx in rows:
                self._open(tx)
                self._high_water = max(self._high_water, tx.id)
            if len(rows) < _BATCH:
                break
        open_now = self._tx.open_transactions()
        for tx in open_now:
            self._open(tx)
        open_ids = {tx.id for tx in open_now}
        for s in list(self._sessions.values()):
            if lost:
                s.stale = True
            if s.stopped_at is None and s.tx_id not in open_ids:
                self._reload(s)  # its stop was missed
        await self._settle(look=True)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the open sessions, then follow the bus, sweeping deadlines every SWEEP_INTERVAL_S."""
        with self._bus.subscribe(_TYPES) as sub:
            await self.reconcile()
            task_status.started()
            next_reconcile = trio.current_time() + RECONCILE_INTERVAL_S
            next_sweep = trio.current_time() + SWEEP_INTERVAL_S
            while True:
                item: Event | EventsLost | None = None
                with trio.move_on_at(min(next_sweep, next_reconcile)):
                    item = await sub.receive()
                # Handled outside the wait's deadline: a CDR's write must not be cancelled by the next sweep.
                if isinstance(item, EventsLost):
                    log.info("billing lost %d events; reading the sessions again", item.count)
                    await self.reconcile(lost=True)
                elif item is not None:
                    await self._apply(item)
                now = trio.current_time()
                if now >= next_reconcile:
                    await self.reconcile()
                    next_reconcile = now + RECONCILE_INTERVAL_S
                if now >= next_sweep:
                    await self._settle(look=False)
                    next_sweep = now + SWEEP_INTERVAL_S
