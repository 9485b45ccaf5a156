"""`CostDisplay`: the node's cost-on-the-charger part, built once by the node and run in its nursery.

It holds the pieces and hands out what others use: `replies` (the OCPP handlers' `CostReplies`), `view` /
`set` (the API's `PUT/GET /api/v1/chargers/{id}/cost-display`), `counts` (for /metrics).
"""

from __future__ import annotations

import trio

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.costdisplay.mode import Mode
from ampgate.costdisplay.ports import Calls, SessionCosts, TariffLookup, TransactionReads, VariableReads
from ampgate.costdisplay.replies import FINAL_COST_WAIT, ReplyHooks
from ampgate.costdisplay.repository import CostDisplayRepository
from ampgate.costdisplay.resolver import ChargerReads, CostDisplayView, Modes
from ampgate.costdisplay.sender import MAX_IN_FLIGHT, Sender
from ampgate.costdisplay.stats import Counts
from ampgate.costdisplay.updates import MAX_PER_TICK, RunningCosts
from ampgate.pricing import Cost, Tariff

# The running cost is told to chargers this often by default (`--cost-update-interval`): the meter values
# chargers send by default come every minute or so, and a display that moves each minute reads as live.
DEFAULT_INTERVAL = 60.0


class PriceSources:
    """The tariff lookup and the session costs the cost display reads, bound late (`CostDisplay.bind`): the
    node builds the billing service after the OCPP handlers that hand the cost display their replies."""

    def __init__(self, tariffs: TariffLookup, costs: SessionCosts) -> None:
        self.tariffs = tariffs
        self.costs = costs

    def tariff_for(self, charger_id: str, id_token: str | None, /) -> Tariff | None:
        return self.tariffs.tariff_for(charger_id, id_token)

    def running_cost(self, transaction_id: int, /) -> Cost | None:
        return self.costs.running_cost(transaction_id)

    async def final_cost(self, transaction_id: int, /) -> Cost | None:
        return await self.costs.final_cost(transaction_id)


class CostDisplay:
    """Cost on the charger. `interval` 0 sends no running costs (tariff texts and final costs still go).
    `tariffs` and `costs` may be replaced once with `bind` before the node runs."""

    def __init__(
        self,
        *,
        overrides: CostDisplayRepository,
        chargers: ChargerReads,
        variables: VariableReads,
        tariffs: TariffLookup,
        costs: SessionCosts,
        transactions: TransactionReads,
        calls: Calls,
        bus: EventBus,
        clock: Clock,
        interval: float = DEFAULT_INTERVAL,
        final_wait: float = FINAL_COST_WAIT,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_per_tick: int = MAX_PER_TICK,
    ) -> None:
        self.counts = Counts()
        self.prices = PriceSources(tariffs, costs)
        self.modes = Modes(overrides, chargers, variables, bus, clock)
        self.sender = Sender(calls, self.counts, max_in_flight=max_in_flight)
        self.replies = ReplyHooks(
            self.modes,
            self.prices,
            self.prices,
            transactions,
            self.sender,
            self.counts,
            clock,
            final_wait=final_wait,
        )
        self.updates = RunningCosts(
            self.modes,
            self.prices,
            self.prices,
            transactions,
            self.sender,
            self.replies,
            self.counts,
            bus,
            clock,
            interval=interval,
            max_per_tick=max_per_tick,
        )

    def bind(self, tariffs: TariffLookup, costs: SessionCosts) -> None:
        """Price with `tariffs` and `costs` from now on (the node's billing service, built after this)."""
        self.prices.tariffs = tariffs
        self.prices.costs = costs

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the overrides, then send until cancelled. Start it before chargers connect."""
        self.modes.load()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.sender.run)
            if self.updates.interval > 0:
                await nursery.start(self.updates.run)
            task_status.started()

    def view(self, charger_id: str) -> CostDisplayView:
        """The charger's cost display (see `CostDisplayView`). Raises NotFoundError (field id)."""
        return self.modes.view(charger_id)

    async def set(self, charger_id: str, mode: Mode | None) -> CostDisplayView:
        """Override the charger's cost display (None: clear). Raises NotFoundError (field id), ValidationError
        (field mode) for a mode its protocol does not have."""
        return await self.modes.set(charger_id, mode)
