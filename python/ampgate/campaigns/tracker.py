"""`Tracker`: how a change of the campaigns is kept, in one place for the runner's three parts (`runner`,
`dispatch`, `following`). A charger's transition goes to the runner's memory (counts, pending, in flight), to the
tables (in order: status progress fire-and-forget, a dispatch awaited by the dispatcher) and onto the bus; a
campaign's state goes to its table first, then to memory and the bus. Every change wakes the runner's loop, which
then moves the campaigns on at once instead of at its next tick.

`Pacer`: how the three parts keep a task step short. They run on the trio thread that also serves the gateway's
pump and the API, and trio polls for I/O only between scheduling rounds, so a step that handles a whole dispatch
batch (500 chargers) or a whole burst of events holds every request for as long (a summary GET waited 300-900 ms
at 10k chargers, in steps of 50-160 ms each). Work per charger or per event goes through a pacer, which
checkpoints every CHUNK items; what is read before a checkpoint is read again after it where it may have changed.
"""

from __future__ import annotations

import trio

from ampgate.bus import EventBus
from ampgate.campaigns import charger as ch
from ampgate.campaigns import model as m
from ampgate.campaigns.memory import Entry, LiveCampaign, Memory
from ampgate.campaigns.repository import CampaignRepository, Transition, total
from ampgate.clock import Clock
from ampgate.events import CampaignChanged, CampaignChargerChanged, CampaignGroupChanged

# Chargers (or events) handled in one task step before the loop gets its turn. Measured at 10k chargers on 2
# cores, a charger costs 0.1-0.25 ms in each of the dispatch's passes (picking, the payload, memory and the bus,
# the command's checks): 50 keep a step near 5-12 ms, well under the API's 50 ms p99 target, while the commits
# stay one per batch (DISPATCH_BATCH) and a checkpoint costs ~10 µs, 0.1-0.2% of a chunk.
CHUNK = 50


class Pacer:
    """Counts items of work in one task; `await step()` after each yields to the loop every `chunk` items."""

    __slots__ = ("chunk", "count")

    def __init__(self, chunk: int | None = None) -> None:
        self.chunk = CHUNK if chunk is None else chunk
        self.count = 0

    async def step(self) -> None:
        """One more item done: a checkpoint (other tasks and the I/O poll run) if it ends a chunk."""
        self.count += 1
        if self.count % self.chunk == 0:
            await trio.lowlevel.checkpoint()


class Tracker:
    """The runner's memory, the campaign tables and the bus, changed together."""

    def __init__(self, repo: CampaignRepository, bus: EventBus, clock: Clock) -> None:
        self.repo = repo
        self.bus = bus
        self.clock = clock
        self.mem = Memory()
        self._wake = trio.Event()

    # -- the loop's wake-up ----------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed: the runner's loop steps the campaigns now rather than at its next tick."""
        self._wake.set()

    async def woken(self) -> None:
        """Until `wake` is called (the caller bounds the wait with `move_on_after`); ready for the next one
        however the wait ended."""
        try:
            await self._wake.wait()
        finally:
            self._wake = trio.Event()

    # -- chargers --------------------------------------------------------------------------------------------------

    def move(self, charger_id: str, entry: Entry, new: ch.Progress, event: str | None) -> None:
        """Apply a transition in memory and write it (fire-and-forget, in order)."""
        if new == entry.progress:
            return
        old = entry.progress.state
        self.repo.submit_transition(
            Transition(
                campaign_id=entry.campaign_id,
                charger_id=charger_id,
                group_index=entry.group,
                old_state=old,
                progress=new,
                event=event,
            )
        )
        self.apply(charger_id, entry, old, new)

    def apply(
        self, charger_id: str, entry: Entry, old: str, new: ch.Progress, *, announce: bool = True
    ) -> bool:
        """A transition already written (or submitted): memory follows, and a change of state is announced (by
        the caller with `announce`, when False: a batch announces its chargers paced). True when the state
        changed."""
        if not self.mem.apply(charger_id, entry, old, new):
            return False
        if announce:
            self.announce(charger_id, entry, new)
        return True

    def announce(self, charger_id: str, entry: Entry, new: ch.Progress) -> None:
        """Tell the bus (and the runner's loop) that the charger's state changed to `new`'s."""
        self.bus.publish(
            CampaignChargerChanged(
                at=self.clock.now(),
                charger_id=charger_id,
                campaign_id=entry.campaign_id,
                group_index=entry.group,
                state=new.state,
                reason=new.reason,
                request_id=new.request_id,
            )
        )
        self.wake()

    # -- campaigns -------------------------------------------------------------------------------------------------

    async def set_state(self, live: LiveCampaign, state: str, reason: str | None) -> None:
        """The scheduler moved a campaign (no verb): written, then remembered, sampled and announced; a finished
        or cancelled campaign is forgotten."""
        await self.repo.set_state(live.row.id, state, reason)
        row = self.repo.get(live.row.id)
        assert row is not None
        live.row = row
        if state in (m.FINISHED, m.CANCELLED):
            self.mem.drop(row.id)
        self.sample(row.id)
        self.publish_state(row.id, state, None, reason)

    def sample(self, campaign_id: int) -> None:
        """Keep the campaign's counts now, for progress over time."""
        self.repo.submit_sample(campaign_id, self.clock.now(), total(self._counts_now(campaign_id)))

    def _counts_now(self, campaign_id: int) -> dict[int, dict[str, int]]:
        live = self.mem.campaigns.get(campaign_id)
        return live.counts if live is not None else self.repo.counts(campaign_id)

    def publish_state(self, campaign_id: int, state: str, verb: str | None, reason: str | None) -> None:
        self.bus.publish(
            CampaignChanged(
                at=self.clock.now(), campaign_id=campaign_id, state=state, verb=verb, reason=reason
            )
        )

    def publish_group(self, live: LiveCampaign, g: int) -> None:
        self.bus.publish(
            CampaignGroupChanged(
                at=self.clock.now(),
                campaign_id=live.row.id,
                group_index=g,
                state=live.groups[g].state,
                counts=dict(live.counts.get(g, {})),
            )
        )
