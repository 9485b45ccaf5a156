"""`CampaignRunner`: runs the firmware campaigns on the node's trio loop and answers the API's verbs.

It keeps in memory (`memory`) every charger not yet final in a scheduled, running or paused campaign, or in a
cancelled one whose update was already sent (its progress, its group, the command of its current dispatch), and
the counts per group, mirrors of the tables; every change goes to the tables in the same order (`tracker`:
status progress fire-and-forget, since a charger repeats it when asked; a dispatch awaited before its command is
queued). Three parts share that memory: this module holds the verbs and the loop that, once a second (`TICK`) or
when woken, moves each campaign on: timeouts of the updates in flight (and the TriggerMessage before one) in
every state, then, for a running campaign, the group's success and error conditions and dispatch; `dispatch`
decides who gets an update now (the concurrency cap, the rate, the maintenance windows, chargers online and not
charging) and sends it; `following` feeds the bus's firmware statuses, boots and command outcomes to each
charger's machine. Pause and cancel stop dispatch only: what was sent is followed until final.

Why the command queue for every dispatch, online or not: it gives each update a durable record whose id the
campaign writes before queueing, delivers at most once (a CALL on the wire when the node stops is failed, never
sent again), waits for a charger that dropped just then (its time to live is the campaign's offline timeout), and
reports the reply on the bus with that id. A restart then resumes exactly: a dispatched charger whose command is
in the table went (or goes) out once; one whose command is not was never queued and is queued with the same id;
an outcome reported while the node was down is read back from the command's record.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import msgspec
import trio

from ampgate.bus import EventBus
from ampgate.campaigns import charger as ch
from ampgate.campaigns import model as m
from ampgate.campaigns.dispatch import Dispatcher
from ampgate.campaigns.following import FOLLOW, Follower
from ampgate.campaigns.memory import Entry, LiveCampaign
from ampgate.campaigns.ports import (
    ChargerActivity,
    ChargerSelection,
    Commands,
    FirmwareImage,
    ImageCatalog,
    Links,
    MaintenanceWindows,
    SignedSupport,
)
from ampgate.campaigns.repository import (
    AuditRow,
    CampaignRepository,
    CampaignRow,
    ChargerRow,
    GroupRow,
    Member,
    total,
)
from ampgate.campaigns.tracker import Pacer, Tracker
from ampgate.clock import Clock
from ampgate.errors import AmpgateError, ConflictError, NotFoundError, ValidationError

log = logging.getLogger(__name__)

# How often running campaigns move on (timeouts, conditions, dispatch). Events wake it sooner; a second keeps a
# fixed rate smooth and costs nothing when nothing is due.
TICK = 1.0
# How often a running campaign's counts are kept for progress over time (and on every state change), and
# expired rollback watches are forgotten.
SAMPLE_INTERVAL = 60.0
# The selection is read this many chargers at a time when a campaign starts.
SELECT_PAGE = 1000
# The pause reason the error condition gives (resume overrides that group's conditions).
ERROR_CONDITION = "error condition"


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who asked for a verb: the API token's label and role."""

    label: str | None
    role: str | None


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    campaign: CampaignRow
    counts: dict[str, int]
    groups: list[GroupRow]


class CampaignRunner:
    """Runs campaigns (start `run` in the node's nursery) and carries out the API's verbs."""

    def __init__(
        self,
        repo: CampaignRepository,
        images: ImageCatalog,
        selection: ChargerSelection,
        windows: MaintenanceWindows,
        links: Links,
        activity: ChargerActivity,
        signed: SignedSupport,
        commands: Commands,
        bus: EventBus,
        clock: Clock,
    ) -> None:
        self._repo = repo
        self._images = images
        self._selection = selection
        self._commands = commands
        self._clock = clock
        self._t = Tracker(repo, bus, clock)
        self._mem = self._t.mem
        self._dispatcher = Dispatcher(self._t, windows, links, activity, signed, commands)
        self._follower = Follower(self._t, self._dispatcher, images, selection, commands)
        # Verbs and the scheduler's steps take turns: each reads a campaign's state, awaits writes, then acts on
        # what it read (two starts racing would freeze the selection twice).
        self._lock = trio.Lock()

    # -- reads for the API -------------------------------------------------------------------------------------

    def get(self, campaign_id: int) -> CampaignRow | None:
        return self._repo.get(campaign_id)

    def summary(self, campaign_id: int) -> Summary:
        """The campaign with its counts and groups, from the counters. Raises NotFoundError (campaign_id)."""
        row = self._required(campaign_id)
        groups = self._repo.groups(campaign_id)
        return Summary(campaign=row, counts=total({g.index: g.counts for g in groups}), groups=groups)

    def page(self, limit: int, before: int | None, state: str | None) -> list[CampaignRow]:
        return self._repo.page(limit, before, state)

    def chargers(
        self, campaign_id: int, state: str | None, limit: int, after: int | None
    ) -> list[ChargerRow]:
        self._required(campaign_id)
        return self._repo.chargers(campaign_id, state, limit, after)

    def samples(
        self, campaign_id: int, since: datetime, until: datetime
    ) -> list[tuple[datetime, dict[str, int]]]:
        self._required(campaign_id)
        return self._repo.samples(campaign_id, since, until)

    def audit(self, campaign_id: int) -> list[AuditRow]:
        self._required(campaign_id)
        return self._repo.audit(campaign_id)

    def _required(self, campaign_id: int) -> CampaignRow:
        row = self._repo.get(campaign_id)
        if row is None:
            raise NotFoundError(f"no campaign {campaign_id}", field="campaign_id")
        return row

    # -- verbs -------------------------------------------------------------------------------------------------

    async def create(self, spec: m.CampaignSpec) -> CampaignRow:
        """A draft campaign. Raises ValidationError naming the field (an unknown image: image_id)."""
        m.validate(spec)
        if self._images.get(spec.image_id) is None:
            raise ValidationError(f"no firmware image {spec.image_id!r}", field="image_id")
        row = await self._repo.create(spec)
        self._t.publish_state(row.id, m.DRAFT, "create", None)
        return row

    async def verb(self, campaign_id: int, verb: str, actor: Actor, reason: str | None = None) -> CampaignRow:
        """Carry out `verb` (start, pause, resume, cancel, retry-failed); the same verb twice changes nothing and
        answers the current state. Every call is audited (who, when, why, whether it changed anything). Raises
        NotFoundError (campaign_id), ConflictError `campaign_state` (the state forbids it), `image_missing`."""
        async with self._lock:
            return await self._verb(campaign_id, verb, actor, reason)

    async def _verb(self, campaign_id: int, verb: str, actor: Actor, reason: str | None) -> CampaignRow:
        row = self._required(campaign_id)
        counts = total(self._repo.counts(campaign_id))
        later = row.spec.start_at is not None and row.spec.start_at > self._clock.now()
        out = m.apply_verb(
            row.state, verb, start_later=later, has_errors=any(counts.get(s, 0) for s in ch.ERRORS)
        )
        paused_reason = row.paused_reason
        if out.changed:
            if verb == "start":
                await self._start(row, out.state)
            elif verb == "pause":
                paused_reason = f"operator: {reason}" if reason else "paused by an operator"
            elif verb == "resume":
                await self._resume(campaign_id)
                paused_reason = None
            elif verb == "retry-failed":
                await self._retry_failed(row)
                if out.state == m.RUNNING:
                    paused_reason = None
        audit = AuditRow(
            verb=verb,
            actor=actor.label,
            role=actor.role,
            reason=reason,
            changed=out.changed,
            state_after=out.state,
            at=self._clock.now(),
        )
        await self._repo.set_state(campaign_id, out.state, paused_reason, audit)
        if out.changed:
            live = self._mem.campaigns.get(campaign_id)
            after = self._required(campaign_id)
            if live is not None:
                live.row = after
            if verb == "cancel":
                # After the state is written: a node stopped half-way finishes this when it loads the campaign.
                await self._settle_cancel(campaign_id)
            self._t.sample(campaign_id)
            self._t.publish_state(campaign_id, out.state, verb, paused_reason)
            self._t.wake()
            # The chargers a verb moved (a cancel's skips, retry-failed's pending) are written fire-and-forget:
            # the answer waits for them, so a read after it sees them (with fsynced groups ahead in the writer's
            # queue, a GET right after a cancel saw its pending chargers still pending).
            await self._repo.flush()
        return self._required(campaign_id)

    async def _start(self, row: CampaignRow, state: str) -> None:
        """Freeze the selection into groups: chargers already on the image's version and chargers in another
        active campaign are skipped; the rest split into the canary and the groups."""
        image = self._images.get(row.image_id)
        if image is None:
            raise ConflictError(f"firmware image {row.image_id!r} no longer exists", code="image_missing")
        eligible: list[str] = []
        skipped: list[Member] = []
        sites: dict[str, str | None] = {}
        after: str | None = None
        while True:
            page = self._selection.select_chargers(row.spec.selector, SELECT_PAGE, after)
            for c in page:
                sites[c.id] = c.site_id
                if self._images.matches(image, c.firmware_version):
                    skipped.append(Member(c.id, c.site_id, ch.skip(ch.Progress(), ch.SKIP_ALREADY_INSTALLED)))
                elif (other := self._mem.chargers.get(c.id)) is not None and other.campaign_id != row.id:
                    reason = f"{ch.SKIP_IN_CAMPAIGN}:{other.campaign_id}"
                    skipped.append(Member(c.id, c.site_id, ch.skip(ch.Progress(), reason)))
                else:
                    eligible.append(c.id)
            if len(page) < SELECT_PAGE:
                break
            after = page[-1].id
            # A selection of 100k read without a checkpoint froze the loop (the pump, the API) for seconds.
            await trio.lowlevel.checkpoint()
        parts = m.split(eligible, row.spec.canary, row.spec.groups)
        kinds = (["canary"] if row.spec.canary is not None else []) + ["group"] * len(row.spec.groups)
        groups: list[tuple[str, list[Member]]] = [
            (kind, [Member(cid, sites.get(cid), ch.Progress()) for cid in part])
            for kind, part in zip(kinds, parts, strict=True)
        ]
        groups[-1][1].extend(skipped)
        await self._repo.freeze(row.id, groups, state)
        fresh = self._repo.get(row.id)
        assert fresh is not None
        await self._load(fresh, image, await self._unfinished(row.id))

    async def _resume(self, campaign_id: int) -> None:
        """A campaign paused by a condition goes on past it: the group it stopped at is overridden. One the node
        paused at start because its image was gone is loaded again (ConflictError `image_missing` if it still is)."""
        live = self._mem.campaigns.get(campaign_id)
        if live is None:
            row = self._required(campaign_id)
            image = self._images.get(row.image_id)
            if image is None:
                raise ConflictError(f"firmware image {row.image_id!r} no longer exists", code="image_missing")
            await self._load(row, image, await self._unfinished(campaign_id))
            live = self._mem.campaigns[campaign_id]
        g = live.current_group()
        # Only the error condition leaves its group unfinished; a group that ended below its success threshold
        # (or with success_action pause) is finished, and the next one keeps its own conditions.
        if g is not None and (live.row.paused_reason or "").startswith(ERROR_CONDITION):
            live.groups[g].overridden = True
            await self._repo.set_group(campaign_id, g, overridden=True)
        live.rate = self._rate(live.spec)

    async def _settle_cancel(self, campaign_id: int) -> None:
        """A cancelled campaign sends nothing more: its pending chargers, and those whose update is still queued
        (cancelled in the queue) or was recorded but never queued, are skipped "cancelled". An update already
        sent cannot be called back: that charger is followed until final (timeouts, triggers, statuses, boots),
        and stays in this campaign for the others until then."""
        live = self._mem.campaigns.get(campaign_id)
        if live is not None:
            ids = [c for group in live.pending.values() for c in group] + sorted(live.in_flight)
            entries = [(c, self._mem.chargers[c]) for c in ids]
        else:  # not in memory (a draft, or paused for a missing image): from the tables
            entries = [
                (
                    r.charger_id,
                    Entry(
                        campaign_id=campaign_id,
                        group=r.group_index,
                        site_id=r.site_id,
                        progress=r.progress,
                        command_id=r.command_id,
                        payload=r.payload,
                    ),
                )
                for r in self._repo.unfinished_of(campaign_id)
            ]
        pacer = Pacer()
        for charger_id, entry in entries:
            await pacer.step()  # 100k pending skipped in one step held the loop for seconds
            p = entry.progress
            if p.state == ch.DISPATCHED and entry.command_id is not None:
                cmd = self._commands.get(entry.command_id)
                if cmd is not None and cmd.state == "queued":
                    try:
                        await self._commands.cancel(entry.command_id)
                    except AmpgateError:
                        continue  # delivery took it meanwhile: it went, so it is followed
                elif cmd is not None and cmd.state != "cancelled":
                    continue  # sent (or its outcome is known): followed
            elif p.state != ch.PENDING:
                continue  # in flight at the charger: followed
            self._t.move(charger_id, entry, ch.skip(p, ch.SKIP_CANCELLED), "campaign cancelled")
        if live is not None and not live.in_flight:
            self._mem.drop(campaign_id)

    async def _retry_failed(self, row: CampaignRow) -> None:
        """Failed and timed-out chargers go back to pending in their groups, which run again."""
        live = self._mem.campaigns.get(row.id)
        if live is None:
            image = self._images.get(row.image_id)
            if image is None:
                raise ConflictError(f"firmware image {row.image_id!r} no longer exists", code="image_missing")
            await self._load(row, image, [])
            live = self._mem.campaigns[row.id]
        reopened: set[int] = set()
        for state in sorted(ch.ERRORS):
            after: int | None = None
            while True:
                rows = self._repo.chargers(row.id, state, SELECT_PAGE, after)
                for r in rows:
                    entry = Entry(
                        campaign_id=row.id, group=r.group_index, site_id=r.site_id, progress=r.progress
                    )
                    self._mem.chargers[r.charger_id] = entry
                    self._t.move(r.charger_id, entry, ch.retry(r.progress), "retry-failed")
                    reopened.add(r.group_index)
                if len(rows) < SELECT_PAGE:
                    break
                after = rows[-1].seq
                await trio.lowlevel.checkpoint()  # as `_unfinished`: the loop runs between pages
        for g in reopened:
            if live.groups[g].state == m.GROUP_FINISHED:
                live.groups[g].state = m.GROUP_RUNNING
                await self._repo.set_group(row.id, g, state=m.GROUP_RUNNING)

    # -- running -----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Resume every active campaign as the tables left it, then follow the bus and move campaigns on until
        cancelled."""
        self._dispatcher.load()
        for row in self._repo.followed():
            image = self._images.get(row.image_id)
            if image is None and row.state == m.CANCELLED:
                log.error(
                    "campaign %s: firmware image %s is gone; its updates in flight are not followed",
                    row.id,
                    row.image_id,
                )
                await self._settle_cancel(row.id)
                continue
            if image is None:
                log.error("campaign %s: firmware image %s is gone; pausing it", row.id, row.image_id)
                await self._repo.set_state(row.id, m.PAUSED, "firmware image missing")
                continue
            await self._load(row, image, await self._unfinished(row.id))
            if row.state == m.CANCELLED:
                await self._settle_cancel(row.id)  # a cancel the node stopped in the middle of
        now = self._clock.now()
        for r in self._repo.installed_since(now - timedelta(seconds=m.MAX_STATUS_TIMEOUT_S)):
            if ch.watching(r.progress, now):
                self._mem.watch(r)
        async with trio.open_nursery() as nursery:
            with self._t.bus.subscribe(FOLLOW) as sub:
                await self._follower.reconcile()
                nursery.start_soon(self._follower.follow, sub)
                task_status.started()
                next_sweep = 0.0
                while True:
                    # The lock is taken per step, and a step dispatches one batch (dispatch.DISPATCH_BATCH): a verb
                    # waits for that batch, not for the whole group, and the next step reads the state the verb
                    # left (a paused campaign dispatches nothing more). A dispatch wakes the loop, so the next
                    # batch follows at once.
                    for campaign_id in list(self._mem.campaigns):
                        async with self._lock:
                            await self._step(campaign_id)
                    if self._clock.monotonic() >= next_sweep:
                        next_sweep = self._clock.monotonic() + SAMPLE_INTERVAL
                        self._mem.unwatch_expired(self._clock.now())
                    with trio.move_on_after(TICK):
                        await self._t.woken()

    async def _unfinished(self, campaign_id: int) -> list[ChargerRow]:
        """`repo.unfinished_of`, read a page at a time with a checkpoint between pages (the store's reader is on
        the trio thread: 100k rows in one read froze the loop)."""
        rows: list[ChargerRow] = []
        after: int | None = None
        while True:
            page = self._repo.unfinished_page(campaign_id, SELECT_PAGE, after)
            rows.extend(page)
            if len(page) < SELECT_PAGE:
                return rows
            after = page[-1].seq
            await trio.lowlevel.checkpoint()

    async def _load(self, row: CampaignRow, image: FirmwareImage, rows: list[ChargerRow]) -> None:
        """Take the campaign into memory, its chargers SELECT_PAGE at a time with a checkpoint between (100k in one
        go held the loop for a few hundred ms). Meanwhile it is partly loaded: the verbs and the scheduler wait
        for the runner's lock, and the follower finds no entry for a charger not taken in yet, as for one in no
        campaign (a charger of a campaign that starts has nothing of it in flight; a dynamic join is refused by
        the table, where the charger already is)."""
        live = self._mem.load(row, image, self._repo.groups(row.id), [], self._rate(row.spec))
        for i in range(0, len(rows), SELECT_PAGE):
            if i:
                await trio.lowlevel.checkpoint()
            self._mem.take(live, rows[i : i + SELECT_PAGE])

    def _rate(self, spec: m.CampaignSpec) -> m.Rate:
        return m.Rate(
            per_minute=spec.dispatch_per_minute,
            growth=spec.dispatch_growth_factor,
            started=self._clock.monotonic(),
        )

    # -- moving a campaign on ------------------------------------------------------------------------------------

    async def _step(self, campaign_id: int) -> None:
        """Move one campaign on. Updates in flight are followed in every state (running, paused, cancelled):
        pausing and cancelling stop new dispatches, not the tracking of those already sent. Only a running
        campaign checks its groups' conditions and dispatches; a cancelled one is forgotten once nothing of it
        is in flight."""
        live = self._mem.campaigns.get(campaign_id)
        if live is None:
            return
        now = self._clock.now()
        if live.row.state == m.SCHEDULED and (live.spec.start_at is None or live.spec.start_at <= now):
            await self._t.set_state(live, m.RUNNING, None)
        timeout = timedelta(seconds=live.spec.status_timeout_s)
        pacer = Pacer()
        for charger_id in list(live.in_flight):
            # Paced: a campaign with 10k updates in flight looks at each of them every step.
            await pacer.step()
            entry = self._mem.chargers.get(charger_id)
            if entry is None or charger_id not in live.in_flight:
                continue  # final while the loop yielded
            new, actions = ch.on_tick(entry.progress, now=now, status_timeout=timeout)
            if new != entry.progress:
                self._t.move(charger_id, entry, new, "trigger" if actions else new.reason)
            for a in actions:
                if isinstance(a, ch.Trigger):
                    await self._dispatcher.trigger(charger_id, entry, a.message)
        if live.row.state == m.CANCELLED and not live.in_flight:
            self._t.sample(campaign_id)  # its final counts, from memory
            self._mem.drop(campaign_id)
            return
        if live.row.state == m.RUNNING:
            await self._move_groups(live, now)
        if self._clock.monotonic() >= live.next_sample and live.row.state in (
            m.RUNNING,
            m.PAUSED,
            m.CANCELLED,
        ):
            live.next_sample = self._clock.monotonic() + SAMPLE_INTERVAL
            self._t.sample(campaign_id)

    async def _move_groups(self, live: LiveCampaign, now: datetime) -> None:
        """A running campaign's groups in order: start the current one, pause on its error condition, dispatch
        while it runs, and when it is done start the next one or pause (below the success threshold, or
        `success_action` pause); finished when none is left (a dynamic campaign stays running)."""
        campaign_id = live.row.id
        thresholds = m.thresholds(live.spec)
        while True:
            g = live.current_group()
            if g is None:
                if not live.spec.dynamic:
                    await self._t.set_state(live, m.FINISHED, None)
                break
            group = live.groups[g]
            if group.state == m.GROUP_PENDING:
                group.state, group.started_at = m.GROUP_RUNNING, now
                await self._repo.set_group(campaign_id, g, state=m.GROUP_RUNNING)
                self._t.publish_group(live, g)
            verdict = m.group_verdict(live.counts.get(g, {}), thresholds, overridden=group.overridden)
            if verdict == "error":
                errors = sum(live.counts[g].get(s, 0) for s in ch.ERRORS)
                finished = sum(live.counts[g].get(s, 0) for s in ch.FINAL)
                await self._t.set_state(
                    live,
                    m.PAUSED,
                    f"{ERROR_CONDITION}: group {g}: {errors} failed or timed out of {finished} finished",
                )
                return
            if verdict == "running":
                await self._dispatcher.dispatch_some(live, g)
                break
            group.state = m.GROUP_FINISHED
            await self._repo.set_group(campaign_id, g, state=m.GROUP_FINISHED)
            self._t.publish_group(live, g)
            more = live.current_group() is not None
            if verdict == "below_success":
                await self._t.set_state(live, m.PAUSED, f"group {g} finished below its success threshold")
                return
            if live.spec.success_action == "pause" and more:
                await self._t.set_state(live, m.PAUSED, f"group {g} finished (success_action: pause)")
                return
