"""`LoadTicker`: every tick, the demand of every live charging session in, the allocator run, and charging
profiles out.

Each tick (`Settings.period_s`, default 1 s):

1. Sessions come from live transactions of placed chargers: transaction events add and end them at once, and
   every `reconcile_s` (and after the bus reports lost events) the open transactions in the store are the truth.
   Meter values (per-phase Current.Import, Power.Active.Import) give each session its measured draw and the
   phases its EV uses; NotifyChargingLimit caps an EVSE; ISO 15118 charging needs raise a session's priority as
   its departure nears (`model`).
2. Demand response (`DemandResponse.limits_kw`) lowers node limits; the forest (`forest.build`) is rebuilt when
   those or the topology change, not every tick.
3. The allocator (`_native.Allocator`, rust/alloc/) gets the sessions that changed, runs once with the GIL
   released, and returns the sessions whose settled current changed (rounded down, hysteresis, minimum hold).
   A session of a charger that is offline is *fixed* at its failsafe draw (its rating, or the larger of its last
   allocation and the default profile's limit, by `offline_assume`): the allocator reserves that for it so no
   other session can push a limit over while it is away.
4. Profiles go out through the Commander to online chargers: a decrease at once, an increase or a refresh no
   sooner than `min_interval_s` after the connector's last profile (`model.due`). A charger that was offline gets
   a fresh profile when it is back (the latest allocation wins; nothing stale is queued while it is away: a
   profile is worth nothing after its validity, so the ticker keeps one latest-wins slot per connector instead
   of a durable command row per profile). Answers are tracked: a rejection, or a charger that keeps drawing more
   than it was given, is flagged (an event and the load view).
5. What every site drew, was allocated and may draw is sampled into the load history, and each running
   demand-response event's achievement is recorded.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import trio

from ampgate import _native
from ampgate.bus import EventBus, EventsLost
from ampgate.clock import Clock, iso_utc
from ampgate.errors import AmpgateError, NotFoundError
from ampgate.events import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    ChargingLimitCleared,
    ChargingLimitSet,
    EvChargingNeedsReported,
    Event,
    LoadOverdraw,
    LoadProfileRejected,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
    event_type,
)
from ampgate.load.topology import Topology
from ampgate.loadctl import forest as forest_mod
from ampgate.loadctl import model
from ampgate.loadctl.repository import LoadHistoryRepository, Row
from ampgate.store.transactions import Sample, TransactionRow

log = logging.getLogger(__name__)

OCPP16 = model.OCPP16
_PHASE_INDEX = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}
_TYPES = frozenset(
    {
        "transaction.started",
        "transaction.updated",
        "transaction.ended",
        "charger.connected",
        "charger.disconnected",
        "charger.booted",
        "charging_limit.set",
        "charging_limit.cleared",
        "ev_charging_needs.reported",
        "site.created",
        "site.updated",
        "site.deleted",
        "capacity_node.created",
        "capacity_node.updated",
        "capacity_node.deleted",
        "charger.placed",
        "charger.unplaced",
    }
)
_TOPOLOGY = frozenset(
    t for t in _TYPES if t.startswith(("site.", "capacity_node.", "charger.placed", "charger.unp"))
)
# A meter sample this soon after a profile was acknowledged may predate the charger applying it.
SETTLE_S = 3.0
HISTORY_DAYS = 400
PRUNE_S = 3600.0


@dataclass(frozen=True, slots=True)
class Settings:
    period_s: float = 1.0
    min_a: float = model.MIN_A
    default_a: float = model.MIN_A
    validity_s: int = 60
    min_interval_s: float = 10.0
    offline_assume: str = "max"  # "max": the charger's rating; "last": max(last allocation, default_a)
    reconcile_s: float = 30.0
    hysteresis_a: float = 1.0
    hysteresis_pct: float = 10.0
    min_hold_s: float = 300.0
    overdraw_tolerance_a: float = 1.0
    overdraw_samples: int = 3
    history_sample_s: float = 10.0
    max_sends: int = 1000


class TopologySource(Protocol):
    """The site topology (`ampgate.load.Sites`)."""

    def site_ids(self) -> list[str]: ...
    def topology(self, site_id: str, /) -> Topology: ...


class TransactionSource(Protocol):
    """Transactions (`ampgate.store.TransactionRepository`)."""

    def get(self, tx_id: int, /) -> TransactionRow | None: ...
    def open_transactions(self) -> list[TransactionRow]: ...


class Link(Protocol):
    @property
    def online(self) -> bool: ...
    @property
    def protocol(self) -> str | None: ...


class PresenceLookup(Protocol):
    def get(self, charger_id: str, /) -> Link | None: ...


class Calls(Protocol):
    """Sends OCPP calls (`ampgate.ocpp.commander.Commander`)."""

    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


class DemandLimits(Protocol):
    """Demand-response events (`ampgate.demand.DemandResponse`)."""

    async def limits_kw(
        self, draw_kw: Callable[[str], float | None], sites: Callable[[], list[str]]
    ) -> dict[str, float]: ...
    def record(self, measured_kw: Callable[[str], float | None]) -> None: ...
    async def prune(self) -> None: ...


class ExternalLimit(Protocol):
    @property
    def evse_id(self) -> int | None: ...
    @property
    def schedules(self) -> list[Any] | None: ...


class ExternalLimits(Protocol):
    """Limits set on chargers by others (NotifyChargingLimit; `ampgate.smartcharging` repository)."""

    def limits(self, charger_id: str) -> Iterable[ExternalLimit]: ...


@dataclass(slots=True)
class Live:
    """One charging session the ticker manages (a transaction on a connector / EVSE)."""

    key: int
    charger_id: str
    evse: int
    tx_id: int
    tx_ref: str
    protocol: str
    per_phase_a: tuple[float, float, float] = (0.0, 0.0, 0.0)  # charger phases 1..3
    power_w: float | None = None
    measured_at: float | None = None
    phases_used: int | None = None
    external_a: float | None = None
    departure: datetime | None = None
    allocated: float | None = None  # the allocator's latest settled value
    sent: float | None = None  # what the last profile gave (A)
    sent_at: float | None = None
    valid_until: float | None = None
    acked: float | None = None
    acked_at: float | None = None
    in_flight: bool = False
    over: int = 0
    flags: set[str] = field(default_factory=set)


class LoadTicker:
    """The load control plane. Start `run` in the node's nursery."""

    def __init__(
        self,
        *,
        sites: TopologySource,
        transactions: TransactionSource,
        presence: PresenceLookup,
        calls: Calls,
        demand: DemandLimits,
        external: ExternalLimits,
        rate_unit: Callable[[str], str],
        history: LoadHistoryRepository,
        bus: EventBus,
        clock: Clock,
        settings: Settings = Settings(),
    ) -> None:
        self._sites = sites
        self._transactions = transactions
        self._presence = presence
        self._calls = calls
        self._demand = demand
        self._external = external
        self._rate_unit = rate_unit
        self._history = history
        self._bus = bus
        self._clock = clock
        self.settings = settings
        self._alloc = _native.Allocator(
            hysteresis_a=settings.hysteresis_a,
            hysteresis_pct=settings.hysteresis_pct,
            min_hold_s=settings.min_hold_s,
        )
        self._forest = forest_mod.Forest()
        self._rank: dict[str, int] = {}
        self._dr: dict[str, float] = {}
        self._sessions: dict[int, Live] = {}  # by key
        self._by_tx: dict[int, int] = {}
        self._by_charger: dict[str, set[int]] = {}
        self._next_key = 1
        self._dirty: set[int] = set()
        self._booted: dict[str, str] = {}  # chargers accepted at boot since the last tick: their protocol
        self._topology_dirty = True
        self._reconcile_at = 0.0
        self._refresh: list[tuple[float, int]] = []  # (monotonic when due, key): a min-heap, lazily cleaned
        self._nursery: trio.Nursery | None = None
        self._sends = trio.CapacityLimiter(settings.max_sends)
        self._flagged: dict[str, set[str]] = {}
        # Per site, decreases sent and not yet answered: increases there wait for them (decrease before increase),
        # so a site is never over while one EV has been given more and another not yet told to take less.
        self._lowering: dict[str, int] = {}
        self._sample_at = 0.0
        self._minute: datetime | None = None  # the minute the history accumulators are for
        self._acc: dict[
            str, list[float]
        ] = {}  # site → [samples, limit sum, allocated sum, measured sum, sessions]
        self._prune_at = 0.0
        self._by_site_cache: dict[str, list[Live]] | None = None
        self.ticks = 0
        self.last_tick_s = 0.0
        self.last_alloc_s = 0.0

    # -- running ------------------------------------------------------------------------------------------------

    async def run(
        self, *, ticking: bool = True, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow the bus and tick every `period_s`; `ticking=False` only follows (a caller that ticks itself:
        bench/load_ticker.py)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._follow, self._bus.subscribe(_TYPES, capacity=16384))
            task_status.started()
            if not ticking:
                await trio.sleep_forever()
            next_at = self._clock.monotonic()
            while True:
                started = self._clock.monotonic()
                try:
                    await self.tick()
                except Exception:  # one bad tick must not stop load management
                    log.exception("load tick failed")
                self.last_tick_s = self._clock.monotonic() - started
                next_at = max(next_at + self.settings.period_s, self._clock.monotonic())
                await trio.sleep_until(next_at)

    async def tick(self) -> None:
        """One tick (see the module docstring)."""
        now_m = self._clock.monotonic()
        self._by_site_cache = None
        if now_m >= self._reconcile_at:
            self._reconcile()
            self._reconcile_at = now_m + self.settings.reconcile_s
        if self._topology_dirty:
            self._rebuild()
        # Demand response after the forest is current, so a baseline is measured over the sessions there are.
        dr = await self._demand.limits_kw(self.node_draw_kw, self.site_ids)
        if dr != self._dr:
            self._dr = dr
            self._rebuild()
        now = self._clock.now()
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            s = self._sessions.get(key)
            if s is None:
                continue
            try:
                self._put(s, now)
            except ValueError:
                # One session's bad demand must not stop load management for the others: it is left out of
                # this tick (and its last profile expires on its own) until its demand changes.
                log.exception("load: session %s of %s left out of the allocation", s.key, s.charger_id)
                self._alloc.remove(s.key)
        if self._booted:
            booted, self._booted = self._booted, {}
            assert self._nursery is not None
            for charger_id, protocol in booted.items():
                if charger_id in self._forest.chargers:
                    self._nursery.start_soon(self._send_boot_profiles, charger_id, protocol)
        started = time.process_time()
        changes = self._alloc.tick(now_m)
        self.last_alloc_s = time.process_time() - started
        changed = []
        for key, amps in changes:
            s = self._sessions.get(key)
            if s is not None:
                s.allocated = amps
                changed.append(s)
        # Decreases first: each is counted against its site before any increase there is looked at, so an
        # increase never goes out beside the decrease that makes room for it.
        changed.sort(key=lambda s: (s.allocated or 0.0) >= self._in_force(s))
        for s in changed:
            self._consider(s, now_m)
        while self._refresh and self._refresh[0][0] <= now_m:
            _, key = heapq.heappop(self._refresh)
            s = self._sessions.get(key)
            if s is not None:
                self._consider(s, now_m)
        self._demand.record(self.node_draw_kw)
        if now_m >= self._sample_at:
            self._sample_at = now_m + self.settings.history_sample_s
            self._sample_history(now)
        if now_m >= self._prune_at:
            self._prune_at = now_m + PRUNE_S
            await self._history.prune(now - timedelta(days=HISTORY_DAYS))
            await self._demand.prune()
        self.ticks += 1

    # -- sessions -----------------------------------------------------------------------------------------------

    def _add(self, tx: TransactionRow) -> Live | None:
        if tx.id in self._by_tx:
            return self._sessions[self._by_tx[tx.id]]
        evse = tx.connector_id if tx.protocol == OCPP16 else tx.evse_id
        if evse is None:
            return None
        s = Live(
            key=self._next_key,
            charger_id=tx.charger_id,
            evse=evse,
            tx_id=tx.id,
            tx_ref=tx.charger_transaction_id,
            protocol=tx.protocol,
        )
        self._next_key += 1
        s.external_a = self._external_a(tx.charger_id, evse)
        self._sessions[s.key] = s
        self._by_site_cache = None
        self._by_tx[tx.id] = s.key
        self._by_charger.setdefault(tx.charger_id, set()).add(s.key)
        self._dirty.add(s.key)
        return s

    def _end(self, tx_id: int) -> None:
        key = self._by_tx.pop(tx_id, None)
        if key is None:
            return
        s = self._sessions.pop(key)
        self._by_site_cache = None
        keys = self._by_charger.get(s.charger_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_charger[s.charger_id]
        self._alloc.remove(key)
        self._dirty.discard(key)

    def _reconcile(self) -> None:
        """The open transactions in the store are the truth: add what is missing, end what is gone."""
        open_txs = self._transactions.open_transactions()
        live = {tx.id for tx in open_txs}
        for tx_id in [t for t in self._by_tx if t not in live]:
            self._end(tx_id)
        for tx in open_txs:
            self._add(tx)

    def _rebuild(self) -> None:
        tops = []
        for site_id in self.site_ids():
            try:
                tops.append(self._sites.topology(site_id))
            except NotFoundError:
                continue
        self._forest = forest_mod.build(tops, self._dr)
        self._by_site_cache = None
        self._rank = {c: i for i, c in enumerate(sorted(self._forest.chargers))}
        f = self._forest
        self._alloc.set_tree(f.parent, f.limit_a, f.limit_w, f.voltage)
        self._topology_dirty = False
        self._dirty.update(self._sessions)

    def _put(self, s: Live, now: datetime) -> None:
        placed = self._forest.chargers.get(s.charger_id)
        if placed is None:
            # Unplaced while charging: no longer managed; its last profile expires on its own.
            self._alloc.remove(s.key)
            s.allocated = None
            return
        node, wiring, rating, base_priority, weight = placed
        st = self.settings
        acked_in_force = (
            s.acked
            if s.acked is not None
            and s.acked_at is not None
            and s.measured_at is not None
            and s.measured_at >= s.acked_at + SETTLE_S
            else None
        )
        measured = max(s.per_phase_a[: len(wiring)]) if s.measured_at is not None else None
        max_a = model.max_current(rating, None, acked_in_force, measured)
        # An EV that takes less than the minimum keeps the minimum (a full one still plugged in draws 0 A): its
        # share is small and stable. An external limit below the minimum leaves nothing usable: paused.
        min_a = st.min_a
        max_a = max(max_a, min_a)
        if s.external_a is not None:
            max_a = min(max_a, s.external_a)
            if max_a < min_a:
                min_a = max_a = 0.0
        link = self._presence.get(s.charger_id)
        fixed = None
        in_force = max(s.sent or 0.0, s.acked or 0.0, s.allocated or 0.0, st.default_a)
        if link is None or not link.online:
            fixed = rating if st.offline_assume == "max" else in_force
        elif "rejects_profiles" in s.flags:
            # It did not take its last profile: it draws what it had, as far as we know.
            fixed = in_force
        elif "overdraws" in s.flags:
            fixed = min(rating, max(in_force, max(s.per_phase_a)))
        self._alloc.put(
            s.key,
            node,
            model.phase_mask(wiring, s.phases_used),
            min_a,
            max_a,
            model.priority(base_priority, s.departure, True, now),
            weight,
            self._rank.get(s.charger_id, 0) * 8 + min(s.evse, 7),
            0.1,
            fixed,
        )

    def _samples(self, s: Live, samples: list[Sample]) -> None:
        per_phase = list(s.per_phase_a)
        got_phase = False
        power = None
        for sm in samples:
            if sm.measurand == "Current.Import" and sm.unit == "A" and sm.phase in _PHASE_INDEX:
                per_phase[_PHASE_INDEX[sm.phase]] = sm.value
                got_phase = True
            elif sm.measurand == "Power.Active.Import" and sm.unit == "W" and sm.phase == "":
                power = sm.value
        if not got_phase and power is None:
            return
        now_m = self._clock.monotonic()
        if got_phase:
            s.per_phase_a = (per_phase[0], per_phase[1], per_phase[2])
            placed = self._forest.chargers.get(s.charger_id)
            used = model.phases_used(s.per_phase_a, len(placed[1]) if placed else 3)
            if used is not None and used != s.phases_used:
                s.phases_used = used
        s.power_w = power
        s.measured_at = now_m
        self._check_overdraw(s, now_m)
        self._dirty.add(s.key)

    def _check_overdraw(self, s: Live, now_m: float) -> None:
        st = self.settings
        if s.acked is None or s.acked_at is None or now_m < s.acked_at + SETTLE_S:
            return
        if max(s.per_phase_a) > s.acked + st.overdraw_tolerance_a:
            s.over += 1
            if s.over >= st.overdraw_samples and "overdraws" not in s.flags:
                s.flags.add("overdraws")
                self._bus.publish(
                    LoadOverdraw(
                        at=self._clock.now(),
                        charger_id=s.charger_id,
                        connector_id=s.evse,
                        allocated_a=s.acked,
                        measured_a=max(s.per_phase_a),
                    )
                )
        else:
            s.over = 0
            if "overdraws" in s.flags:
                s.flags.discard("overdraws")
                self._dirty.add(s.key)

    def _flag(self, charger_id: str, flag: str) -> None:
        self._flagged.setdefault(charger_id, set()).add(flag)

    def _external_a(self, charger_id: str, evse: int) -> float | None:
        """The lowest external limit (NotifyChargingLimit) on the EVSE or the whole charger, per phase in A: a
        limit in W is taken over three phases at the site's voltage (230 V before the charger is placed), the
        reading that gives an EV on fewer phases the least, never more than the source meant."""
        placed = self._forest.chargers.get(charger_id)
        voltage = self._forest.voltage[placed[0]] if placed else 230.0
        best = None
        for row in self._external.limits(charger_id):
            if row.evse_id not in (None, 0, evse) or not row.schedules:
                continue
            for schedule in row.schedules:
                if not isinstance(schedule, dict):
                    continue
                unit = schedule.get("chargingRateUnit")
                periods = schedule.get("chargingSchedulePeriod") or []
                limit = periods[0].get("limit") if periods and isinstance(periods[0], dict) else None
                if not isinstance(limit, int | float) or unit not in ("A", "W"):
                    continue
                amps = float(limit) if unit == "A" else float(limit) / (voltage * 3)
                best = amps if best is None else min(best, amps)
        return best

    # -- profiles -----------------------------------------------------------------------------------------------

    def _consider(self, s: Live, now_m: float) -> None:
        """Send `s` its allocation if it is due (`model.due`), else look again when it could be."""
        if s.allocated is None or s.in_flight:
            return
        link = self._presence.get(s.charger_id)
        if link is None or not link.online:
            return
        st = self.settings
        site = self._site_of(s)
        previous = self._in_force(s)
        if s.allocated > previous and site is not None and self._lowering.get(site):
            heapq.heappush(self._refresh, (now_m + self.settings.period_s / 2, s.key))
            return
        if model.due(
            want=s.allocated,
            sent=s.sent,
            sent_at=s.sent_at,
            valid_until=s.valid_until,
            now=now_m,
            min_interval_s=st.min_interval_s,
        ):
            assert self._nursery is not None
            s.in_flight = True
            lowering = site if site is not None and s.allocated < previous else None
            if lowering is not None:
                # Counted now, before the task runs: increases looked at later in this tick must wait for it.
                self._lowering[lowering] = self._lowering.get(lowering, 0) + 1
            self._nursery.start_soon(self._send, s, s.allocated, lowering)
        elif s.sent_at is not None and s.valid_until is not None:
            again = s.sent_at + st.min_interval_s
            if s.allocated == s.sent:
                again = max(again, s.valid_until - (s.valid_until - s.sent_at) / 2)
            heapq.heappush(self._refresh, (again, s.key))

    def _in_force(self, s: Live) -> float:
        """What the connector may be drawing now: its last profile, else the last it accepted (a charger back
        online keeps it until it expires), else its default."""
        if s.sent is not None:
            return s.sent
        return self.settings.default_a if s.acked is None else max(s.acked, self.settings.default_a)

    def _site_of(self, s: Live) -> str | None:
        placed = self._forest.chargers.get(s.charger_id)
        return None if placed is None else self._forest.site_of[placed[0]]

    async def _send(self, s: Live, amps: float, lowering: str | None) -> None:
        """Send `s` its TxProfile of `amps` and track the answer. `lowering`: the site whose count of
        unanswered decreases this send is in (released when it is answered, whatever the answer)."""
        st = self.settings
        try:
            async with self._sends:
                now_m = self._clock.monotonic()
                now = self._clock.now()
                placed = self._forest.chargers.get(s.charger_id)
                voltage = self._forest.voltage[placed[0]] if placed else 230.0
                phases = model.phase_mask(placed[1], s.phases_used).bit_count() if placed else 3
                unit = self._rate_unit(s.charger_id)
                payload = model.tx_profile(
                    s.protocol,
                    s.evse,
                    s.tx_ref,
                    model.in_unit(amps, unit, voltage, phases),
                    unit,
                    now,
                    st.validity_s,
                )
                s.sent, s.sent_at, s.valid_until = amps, now_m, now_m + st.validity_s
                try:
                    reply = await self._calls.call(s.charger_id, "SetChargingProfile", payload)
                except AmpgateError as e:
                    # Not sent or not answered: the charger may still draw what it had; tried again next tick (an
                    # offline one is counted at its failsafe draw meanwhile).
                    log.info("SetChargingProfile to %s failed: %s", s.charger_id, e.message)
                    s.sent = s.sent_at = s.valid_until = None
                    heapq.heappush(self._refresh, (now_m + st.period_s, s.key))
                    return
                status = reply.get("status") if isinstance(reply, dict) else None
                if status == "Accepted":
                    s.acked, s.acked_at = amps, self._clock.monotonic()
                    if "rejects_profiles" in s.flags:
                        s.flags.discard("rejects_profiles")
                        self._dirty.add(s.key)  # allocated again from the next tick
                else:
                    # Counted at what it had (`_put`) until it accepts one; announced once, not every retry.
                    s.sent = s.acked
                    if "rejects_profiles" not in s.flags:
                        s.flags.add("rejects_profiles")
                        self._dirty.add(s.key)
                        self._bus.publish(
                            LoadProfileRejected(
                                at=self._clock.now(),
                                charger_id=s.charger_id,
                                connector_id=s.evse,
                                limit_a=amps,
                                status=str(status),
                            )
                        )
                heapq.heappush(self._refresh, (now_m + st.min_interval_s, s.key))
        finally:
            s.in_flight = False
            if lowering is not None:
                left = self._lowering[lowering] - 1
                if left:
                    self._lowering[lowering] = left
                else:
                    del self._lowering[lowering]
            if s.allocated is not None and s.allocated != amps and s.key in self._sessions:
                # Its allocation moved while this one was on the wire (a decrease must not wait for the
                # connector's next refresh).
                self._consider(s, self._clock.monotonic())

    async def _send_boot_profiles(self, charger_id: str, protocol: str) -> None:
        placed = self._forest.chargers.get(charger_id)
        if placed is None:
            return
        unit = self._rate_unit(charger_id)
        voltage = self._forest.voltage[placed[0]]
        for payload in model.boot_profiles(
            protocol, placed[2], self.settings.default_a, self._clock.now(), unit=unit, voltage=voltage
        ):
            try:
                async with self._sends:
                    reply = await self._calls.call(charger_id, "SetChargingProfile", payload)
            except AmpgateError as e:
                log.info("boot profile to %s failed: %s", charger_id, e.message)
                return
            if not (isinstance(reply, dict) and reply.get("status") == "Accepted"):
                self._flag(charger_id, "rejects_boot_profiles")
                return
        self._flagged.pop(charger_id, None)

    # -- events -------------------------------------------------------------------------------------------------

    async def _follow(self, sub: Any) -> None:
        with sub:
            while True:
                event: Event | EventsLost | None = await sub.receive()
                while event is not None:
                    self._on(event)
                    event = sub.receive_nowait()

    def _on(self, event: Event | EventsLost) -> None:
        if isinstance(event, EventsLost):
            # Transactions, placements or links may have changed unseen: read them all again next tick.
            self._reconcile_at = 0.0
            self._topology_dirty = True
            return
        if isinstance(event, TransactionUpdated):
            key = self._by_tx.get(event.transaction_id)
            if key is not None:
                self._samples(self._sessions[key], event.samples)
        elif isinstance(event, TransactionStarted):
            tx = self._transactions.get(event.transaction_id)
            if tx is not None and tx.stopped_at is None:
                self._add(tx)
        elif isinstance(event, TransactionEnded):
            self._end(event.transaction_id)
        elif isinstance(event, ChargerConnected | ChargerDisconnected):
            for key in self._by_charger.get(event.charger_id or "", ()):
                s = self._sessions[key]
                self._dirty.add(key)
                if isinstance(event, ChargerConnected):
                    # Back online: the connector gets a fresh profile on the next tick (latest wins). What it
                    # was last told stays its in-force value meanwhile.
                    s.acked = max(s.acked or 0.0, s.sent or 0.0) or None
                    s.sent = s.sent_at = s.valid_until = None
        elif isinstance(event, ChargerBooted):
            # Sent on the next tick, once the forest knows every placement made until now (a charger placed
            # just before it booted is in it then).
            if event.boot_status == "Accepted" and event.charger_id is not None:
                self._booted[event.charger_id] = event.protocol
        elif isinstance(event, ChargingLimitSet | ChargingLimitCleared):
            for key in self._by_charger.get(event.charger_id or "", ()):
                s = self._sessions[key]
                s.external_a = self._external_a(s.charger_id, s.evse)
                self._dirty.add(key)
        elif isinstance(event, EvChargingNeedsReported):
            key = self._by_tx.get(event.transaction_id) if event.transaction_id is not None else None
            if key is not None:
                self._sessions[key].departure = event.departure_time
                self._dirty.add(key)
        elif event_type(event) in _TOPOLOGY:
            self._topology_dirty = True
            if event_type(event) == "charger.placed" and event.charger_id is not None:
                # Placed (or moved, or its rating changed) while connected: its fallback profiles now, not at
                # its next boot.
                link = self._presence.get(event.charger_id)
                if link is not None and link.online and link.protocol:
                    self._booted[event.charger_id] = link.protocol

    # -- reads: the load view, readings, history ------------------------------------------------------------------

    def site_ids(self) -> list[str]:
        return self._sites.site_ids()

    def now(self) -> datetime:
        return self._clock.now()

    def _site_sessions(self, site_id: str) -> list[Live]:
        """The site's sessions: one pass over every session builds the index for all sites, kept until the next
        tick (a network-wide event asks for every site's draw each tick)."""
        if self._by_site_cache is None:
            f = self._forest
            by_site: dict[str, list[Live]] = {}
            for s in self._sessions.values():
                placed = f.chargers.get(s.charger_id)
                if placed is not None:
                    by_site.setdefault(f.site_of[placed[0]], []).append(s)
            self._by_site_cache = by_site
        return self._by_site_cache.get(site_id, [])

    def _session_site_a(self, s: Live, wiring: tuple[int, ...]) -> tuple[list[float], list[float]]:
        """The session's allocated and measured current per site phase."""
        alloc = [0.0, 0.0, 0.0]
        meas = [0.0, 0.0, 0.0]
        mask = model.phase_mask(wiring, s.phases_used)
        for p in range(3):
            if mask >> p & 1:
                alloc[p] = s.allocated or 0.0
        for i, site_phase in enumerate(wiring):
            meas[site_phase] += s.per_phase_a[i]
        return alloc, meas

    def _session_w(self, s: Live, wiring: tuple[int, ...], voltage: float) -> float:
        if s.power_w is not None:
            return s.power_w
        return sum(s.per_phase_a[: len(wiring)]) * voltage

    def node_draw_kw(self, node_id: str) -> float | None:
        """The measured draw under a site or capacity node now (kW); None for a node not in the forest."""
        f = self._forest
        k = f.index.get(node_id)
        if k is None:
            return None
        total = 0.0
        for s in self._site_sessions(f.site_of[k]):
            placed = f.chargers[s.charger_id]
            if k in f.ancestors(placed[0]):
                total += self._session_w(s, placed[1], f.voltage[placed[0]])
        return total / 1000.0

    def measured_kw(self, site_id: str) -> float | None:
        """The site's measured draw now (kW): SiteReadings for OpenADR reports."""
        return self.node_draw_kw(site_id)

    def limit_kw(self, site_id: str) -> float | None:
        """The most the site may draw now (kW): its total limit (after demand response), else its per-phase
        limits × voltage; None when it has neither."""
        f = self._forest
        k = f.index.get(site_id)
        if k is None:
            return None
        by_phase = sum(f.limit_a[k]) * f.voltage[k]
        best = min(f.limit_w[k], by_phase)
        return None if math.isinf(best) else best / 1000.0

    def headroom_kw(self, site_id: str) -> float | None:
        """What the site could still draw now (kW): its limit minus its measured draw (SiteHeadroom)."""
        limit = self.limit_kw(site_id)
        drawn = self.measured_kw(site_id)
        return None if limit is None or drawn is None else max(0.0, limit - drawn)

    def energy_kwh(self, site_id: str, start: datetime, end: datetime) -> float | None:
        """Energy the site drew in [start, end) (SiteReadings for OpenADR USAGE): each minute's mean measured
        draw over the part of the minute inside the window — the stored minutes, and the minute under way from
        its samples so far. None when no minute of the window has a sample."""
        minutes = [
            (at, m) for at, _, _, m, _ in self._history.minutes(site_id, start - timedelta(minutes=1), end)
        ]
        acc = self._acc.get(site_id)
        if self._minute is not None and acc is not None and acc[0]:
            minutes = [x for x in minutes if x[0] != self._minute] + [(self._minute, acc[4] / acc[0])]
        total, seen = 0.0, False
        for at, kw in minutes:
            if kw is None:
                continue
            overlap = (min(end, at + timedelta(minutes=1)) - max(start, at)).total_seconds()
            if overlap > 0:
                total += kw * overlap / 3600.0
                seen = True
        return total if seen else None

    def site_load(self, site_id: str) -> dict[str, Any] | None:
        """The live allocation of a site: each capacity node's limit, allocated and measured current per phase,
        and each session's allocation; None when the site is not in the forest (no such site)."""
        f = self._forest
        rng = f.site_range.get(site_id)
        if rng is None:
            return None
        first, end = rng
        alloc_by = {k: [0.0, 0.0, 0.0] for k in range(first, end)}
        meas_by = {k: [0.0, 0.0, 0.0] for k in range(first, end)}
        allocations = []
        for s in sorted(self._site_sessions(site_id), key=lambda s: (s.charger_id, s.evse)):
            node, wiring, _, _, _ = f.chargers[s.charger_id]
            a, m = self._session_site_a(s, wiring)
            for k in f.ancestors(node):
                for p in range(3):
                    alloc_by[k][p] += a[p]
                    meas_by[k][p] += m[p]
            link = self._presence.get(s.charger_id)
            allocations.append(
                {
                    "charger_id": s.charger_id,
                    "connector_id": s.evse,
                    "transaction_id": s.tx_id,
                    "limit_a": s.allocated,
                    "measured_a": max(s.per_phase_a) if s.measured_at is not None else None,
                    "paused": s.allocated == 0.0,
                    "phases": [
                        f"L{p + 1}" for p in range(3) if model.phase_mask(wiring, s.phases_used) >> p & 1
                    ],
                    "acknowledged_a": s.acked,
                    "online": bool(link is not None and link.online),
                    "flags": sorted(s.flags),
                }
            )
        nodes = []
        for k in range(first, end):
            if f.charger_of[k]:
                continue
            w = f.limit_w[k]
            nodes.append(
                {
                    "id": f.node_ids[k],
                    "parent_id": None if f.parent[k] < 0 else f.node_ids[f.parent[k]],
                    "limit_a": [None if math.isinf(x) else x for x in f.limit_a[k]],
                    "limit_kw": None if math.isinf(w) else w / 1000.0,
                    "demand_response_kw": self._dr.get(f.node_ids[k]),
                    "allocated_a": [round(x, 3) for x in alloc_by[k]],
                    "measured_a": [round(x, 3) for x in meas_by[k]],
                }
            )
        return {
            "site_id": site_id,
            "at": iso_utc(self._clock.now()),
            "nodes": nodes,
            "allocations": allocations,
        }

    def flags(self, charger_id: str) -> set[str]:
        """The charger's flags now: its sessions' (rejects_profiles, overdraws) and a rejected boot profile."""
        out = set(self._flagged.get(charger_id, ()))
        for key in self._by_charger.get(charger_id, ()):
            out |= self._sessions[key].flags
        return out

    def _sample_history(self, now: datetime) -> None:
        minute = now.replace(second=0, microsecond=0)
        if self._minute is not None and minute != self._minute:
            self._flush_history()
        self._minute = minute
        f = self._forest
        per_site: dict[str, list[float]] = {}
        for s in self._sessions.values():
            placed = f.chargers.get(s.charger_id)
            if placed is None:
                continue
            site = f.site_of[placed[0]]
            v = f.voltage[placed[0]]
            acc = per_site.setdefault(site, [0.0, 0.0, 0.0])
            acc[0] += (s.allocated or 0.0) * v * model.phase_mask(placed[1], s.phases_used).bit_count()
            acc[1] += self._session_w(s, placed[1], v)
            acc[2] += 1
        for site in f.site_range:
            allocated, measured, n = per_site.get(site, [0.0, 0.0, 0.0])
            limit = self.limit_kw(site)
            a = self._acc.setdefault(site, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
            a[0] += 1
            a[1] += 0.0 if limit is None else limit
            a[2] += 0.0 if limit is None else 1
            a[3] += allocated / 1000.0
            a[4] += measured / 1000.0
            a[5] = max(a[5], n)

    def _flush_history(self) -> None:
        if self._minute is None:
            return
        rows: list[Row] = []
        for site, (n, limit_sum, limit_n, allocated, measured, sessions) in self._acc.items():
            if n == 0:
                continue
            rows.append(
                (
                    site,
                    iso_utc(self._minute),
                    limit_sum / limit_n if limit_n else None,
                    allocated / n,
                    measured / n,
                    int(sessions),
                )
            )
        self._acc.clear()
        self._history.add(rows)

    def history(self, site_id: str, since: datetime, until: datetime, step_s: int) -> list[dict[str, Any]]:
        """The site's load between `since` and `until` in `step_s` buckets (means of the minutes in each)."""
        buckets: dict[int, list[Any]] = {}
        base = since.timestamp()
        for at, limit, allocated, measured, sessions in self._history.minutes(site_id, since, until):
            b = int((at.timestamp() - base) // step_s)
            acc = buckets.setdefault(b, [0, 0.0, 0, 0.0, 0.0, 0, 0])
            acc[0] += 1
            if limit is not None:
                acc[1] += limit
                acc[2] += 1
            acc[3] += allocated
            if measured is not None:
                acc[4] += measured
                acc[5] += 1
            acc[6] = max(acc[6], sessions)
        out = []
        for b in sorted(buckets):
            n, ls, ln, al, ms, mn, se = buckets[b]
            out.append(
                {
                    "at": since + timedelta(seconds=b * step_s),
                    "limit_kw": ls / ln if ln else None,
                    "allocated_kw": al / n,
                    "measured_kw": ms / mn if mn else None,
                    "sessions": se,
                }
            )
        return out
