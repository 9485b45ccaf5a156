"""`RunningCosts`: the running cost of every priced open transaction, told to its charger every `interval`
seconds: `CostUpdated` {totalCost, transactionId} to chargers in mode `ocpp201`, the California `RunningCost`
DataTransfer to chargers in mode `california`.

Bounded work at fleet scale. Each open transaction has its own moment in the interval (its start, or a random
one for transactions found at start-up or by reconciling), so 100k sessions at 60 s make ~1,700 updates a
second, evenly, never a burst of 100k. Every `TICK_S` the transactions that are due are taken, at most
`max_per_tick` of them (the rest wait for the next tick, counted `late`). An update is skipped (and not
counted as sent) when the charger cannot be sent it now (offline, not accepted: it is not priced then), when
no tariff applies, when the mode is another, and when the total has not changed since the charger last
accepted one (the charger still shows it).

Which transactions are open comes from the bus (started, ended; connector statuses for the 1.6 `state`), and
is reconciled from the transactions table at start, after lost events and every `RECONCILE_S`.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Callable
from decimal import Decimal

import trio

from ampgate.bus import EventBus, EventsLost, Subscription
from ampgate.clock import Clock
from ampgate.costdisplay import messages
from ampgate.costdisplay.ports import SessionCosts, TariffLookup, TransactionReads
from ampgate.costdisplay.replies import ReplyHooks
from ampgate.costdisplay.resolver import Modes
from ampgate.costdisplay.sender import COST_UPDATED, DATA_TRANSFER, Sender
from ampgate.costdisplay.stats import Counts
from ampgate.events import ConnectorStatusChanged, Event, TransactionEnded, TransactionStarted
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.store.transactions import TransactionRow

log = logging.getLogger(__name__)

# How often due transactions are looked at: an interval's updates go out spread over its seconds.
TICK_S = 1.0
# At most this many updates are priced and sent per tick: twice an even share of 100k sessions at 60 s, so a
# bunch of starts at one moment is smoothed over a few ticks instead of priced at once.
MAX_PER_TICK = 4000
# Open transactions are read from the table again this often (and after lost events): a start or end the bus
# dropped is then caught within minutes. A read of 100k rows costs well under a second every 5 minutes.
RECONCILE_S = 300.0
# 1.6 connector statuses that say the EV is charging / not (the RunningCost `state`: Charging or Idle).
_CHARGING = frozenset({"Charging"})
_IDLE = frozenset({"SuspendedEV", "SuspendedEVSE", "Finishing"})
_TYPES = frozenset({"transaction.started", "transaction.ended", "connector.status"})


class Tracked:
    """An open transaction as the updater follows it."""

    __slots__ = (
        "charger_id",
        "charging",
        "connector_id",
        "id",
        "id_token",
        "last_sent",
        "meter_start_wh",
        "protocol",
        "remote_id",
    )

    def __init__(self, row: TransactionRow) -> None:
        self.id = row.id
        self.charger_id = row.charger_id
        self.protocol = row.protocol
        self.remote_id = row.charger_transaction_id
        self.connector_id = row.connector_id
        self.id_token = row.id_token
        self.meter_start_wh = row.meter_start_wh or 0.0
        self.charging = True  # until a status says otherwise
        self.last_sent: Decimal | None = None


class RunningCosts:
    def __init__(
        self,
        modes: Modes,
        tariffs: TariffLookup,
        costs: SessionCosts,
        transactions: TransactionReads,
        sender: Sender,
        replies: ReplyHooks,
        counts: Counts,
        bus: EventBus,
        clock: Clock,
        *,
        interval: float,
        max_per_tick: int = MAX_PER_TICK,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._modes = modes
        self._tariffs = tariffs
        self._costs = costs
        self._transactions = transactions
        self._sender = sender
        self._replies = replies
        self._counts = counts
        self._bus = bus
        self._clock = clock
        self.interval = interval
        self.max_per_tick = max_per_tick
        self._rand = rand
        self.tracked: dict[int, Tracked] = {}
        self._by_charger: dict[str, set[int]] = {}
        # (monotonic when due, transaction id): a min-heap, lazily cleaned.
        self._due: list[tuple[float, int]] = []
        self._reconcile_at = 0.0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the bus and update every `TICK_S` until cancelled."""
        with self._bus.subscribe(_TYPES, capacity=16384) as sub:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow, sub)
                self.reconcile()
                task_status.started()
                while True:
                    await trio.sleep(TICK_S)
                    try:
                        self.tick()
                    except Exception:  # one bad tick must not stop the updates
                        log.exception("cost update tick failed")

    def tick(self) -> None:
        """Send the updates that are due (at most `max_per_tick`)."""
        now = self._clock.monotonic()
        if now >= self._reconcile_at:
            self.reconcile()
        taken = 0
        while self._due and self._due[0][0] <= now:
            if taken >= self.max_per_tick:
                self._counts.add("updates", "late")
                break
            due, tx_id = heapq.heappop(self._due)
            t = self.tracked.get(tx_id)
            if t is None:
                continue  # ended meanwhile
            taken += 1
            following = due + self.interval
            heapq.heappush(self._due, (following if following > now else now + self.interval, tx_id))
            self._update(t)

    # -- one update ---------------------------------------------------------------------------------------------

    def _update(self, t: Tracked) -> None:
        if t.protocol == OCPP201:
            wanted, message, action = "ocpp201", COST_UPDATED, COST_UPDATED
        elif t.protocol == OCPP16:
            wanted, message, action = "california", messages.RUNNING_COST, DATA_TRANSFER
        else:
            return
        mode, _ = self._modes.current(t.charger_id, t.protocol)
        if mode != wanted or not self._sender.ready(t.charger_id, action):
            return
        try:
            cost = self._costs.running_cost(t.id)
            if cost is None:
                self._counts.add(message, "no_tariff")
                return
            total = messages.amount(cost)
            if total == t.last_sent:
                self._counts.add(message, "unchanged")
                return
            if t.protocol == OCPP201:
                payload = {"totalCost": messages.wire_number(total), "transactionId": t.remote_id}
            else:
                payload = messages.running_cost(
                    t.id,
                    self._clock.wall(),
                    t.meter_start_wh + float(cost.energy_wh),
                    cost,
                    t.charging,
                    self._tariffs.tariff_for(t.charger_id, t.id_token),
                )
        except Exception:
            log.exception("%s for transaction %d left out: pricing failed", message, t.id)
            self._counts.add(message, "pricing_error")
            return

        def accepted() -> None:
            t.last_sent = total

        self._sender.spawn(message, t.charger_id, action, payload, on_accepted=accepted)

    # -- which transactions are open ----------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Read the open transactions from the table: follow the new ones (each due at a random moment of the
        next interval, so a restart spreads them), forget the ended ones."""
        self._reconcile_at = self._clock.monotonic() + RECONCILE_S
        rows = self._transactions.open_transactions()
        open_ids = {r.id for r in rows}
        for tx_id in [t for t in self.tracked if t not in open_ids]:
            self._forget(tx_id)
        now = self._clock.monotonic()
        for row in rows:
            if row.id not in self.tracked:
                self._follow_row(row, now + self._rand() * self.interval)
        self._replies.forget_except(open_ids)

    def _follow_row(self, row: TransactionRow, due: float) -> None:
        self.tracked[row.id] = Tracked(row)
        self._by_charger.setdefault(row.charger_id, set()).add(row.id)
        heapq.heappush(self._due, (due, row.id))

    def _forget(self, tx_id: int) -> None:
        t = self.tracked.pop(tx_id, None)
        if t is None:
            return
        ids = self._by_charger.get(t.charger_id)
        if ids is not None:
            ids.discard(tx_id)
            if not ids:
                del self._by_charger[t.charger_id]

    async def _follow(self, sub: Subscription) -> None:
        while True:
            event: Event | EventsLost | None = await sub.receive()
            while event is not None:
                self.on_event(event)
                event = sub.receive_nowait()

    def on_event(self, event: Event | EventsLost) -> None:
        if isinstance(event, EventsLost):
            self._reconcile_at = 0.0  # starts or ends may have been missed: read the table next tick
        elif isinstance(event, TransactionStarted):
            if event.transaction_id not in self.tracked:
                row = self._transactions.get(event.transaction_id)
                if row is not None and row.stopped_at is None:
                    # First update an interval after the start: transactions starting at random moments keep
                    # the updates spread.
                    self._follow_row(row, self._clock.monotonic() + self.interval)
        elif isinstance(event, TransactionEnded):
            self._forget(event.transaction_id)
        elif isinstance(event, ConnectorStatusChanged) and event.charger_id is not None:
            for tx_id in self._by_charger.get(event.charger_id, ()):
                t = self.tracked[tx_id]
                if t.protocol == OCPP16 and t.connector_id == event.connector_id:
                    if event.status in _CHARGING:
                        t.charging = True
                    elif event.status in _IDLE:
                        t.charging = False
