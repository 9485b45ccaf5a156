"""`CampaignRunner`: runs the firmware campaigns on the node's trio loop and answers the API's verbs.

It keeps in memory every charger not yet final in a scheduled, running or paused campaign (its progress, its
group, the command of its current dispatch) and the counts per group, mirrors of the tables; every change goes to
the tables in the same order (status progress fire-and-forget, since a charger repeats it when asked; a dispatch
awaited before its command is queued). It follows the bus: `firmware.status` (matched by request id, or to the
one unsigned 1.6 update), `charger.booted` (the version that confirms an install; dynamic campaigns' new
chargers), `command.*` of its own commands (the reply, a CALLERROR, expiry) and of an operator's UpdateFirmware
(ours is superseded). Once a second (`TICK`) it moves each running campaign on: timeouts, the group's success
and error conditions, then dispatch within the concurrency cap, the rate, the maintenance windows, to chargers
online and not charging.

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
from typing import Any

import msgspec
import trio

from ampgate.bus import EventBus, EventsLost
from ampgate.campaigns import charger as ch
from ampgate.campaigns import model as m
from ampgate.campaigns.memory import Entry, GroupState, LiveCampaign, Memory
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
    Transition,
    total,
)
from ampgate.clock import Clock, iso_utc
from ampgate.commands.repository import new_command_id
from ampgate.errors import AmpgateError, ConflictError, NotFoundError, ValidationError
from ampgate.events import (
    CampaignChanged,
    CampaignChargerChanged,
    CampaignGroupChanged,
    ChargerBooted,
    ChargerConnected,
    CommandAnswered,
    CommandCancelled,
    CommandExpired,
    CommandFailed,
    Event,
    FirmwareStatusReported,
    TransactionEnded,
)

log = logging.getLogger(__name__)

# How often running campaigns move on (timeouts, conditions, dispatch). Events wake it sooner; a second keeps a
# fixed rate smooth and costs nothing when nothing is due.
TICK = 1.0
# How often a running campaign's counts are kept for progress over time (and on every state change).
SAMPLE_INTERVAL = 60.0
# The selection is read this many chargers at a time when a campaign starts.
SELECT_PAGE = 1000
# A TriggerMessage waits in the queue no longer than this: it is only worth sending soon.
TRIGGER_TTL_S = 600.0
# The pause reason the error condition gives (resume overrides that group's conditions).
ERROR_CONDITION = "error condition"
UPDATE_ACTIONS = frozenset({ch.UPDATE_FIRMWARE, ch.SIGNED_UPDATE_FIRMWARE})
_FOLLOW = [
    str(t.__struct_config__.tag)
    for t in (
        FirmwareStatusReported,
        ChargerBooted,
        ChargerConnected,
        CommandAnswered,
        CommandFailed,
        CommandExpired,
        CommandCancelled,
        TransactionEnded,
    )
]


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
        self._windows = windows
        self._links = links
        self._activity = activity
        self._signed = signed
        self._commands = commands
        self._bus = bus
        self._clock = clock
        self._mem = Memory()
        self._last_request_id = 0
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
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
        self._publish_state(row.id, m.DRAFT, "create", None)
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
            elif verb == "cancel":
                await self._cancel(campaign_id)
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
            self._sample(campaign_id)
            self._publish_state(campaign_id, out.state, verb, paused_reason)
            self._wake.set()
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
        self._load(fresh, image, self._repo.unfinished_of(row.id))

    async def _resume(self, campaign_id: int) -> None:
        """A campaign paused by a condition goes on past it: the group it stopped at is overridden. One the node
        paused at start because its image was gone is loaded again (ConflictError `image_missing` if it still is)."""
        live = self._mem.campaigns.get(campaign_id)
        if live is None:
            row = self._required(campaign_id)
            image = self._images.get(row.image_id)
            if image is None:
                raise ConflictError(f"firmware image {row.image_id!r} no longer exists", code="image_missing")
            self._load(row, image, self._repo.unfinished_of(campaign_id))
            live = self._mem.campaigns[campaign_id]
        g = live.current_group()
        # Only the error condition leaves its group unfinished; a group that ended below its success threshold
        # (or with success_action pause) is finished, and the next one keeps its own conditions.
        if g is not None and (live.row.paused_reason or "").startswith(ERROR_CONDITION):
            live.groups[g].overridden = True
            await self._repo.set_group(campaign_id, g, overridden=True)
        live.rate = self._rate(live.spec)

    async def _cancel(self, campaign_id: int) -> None:
        """Stop following the campaign's chargers; their updates still queued are cancelled (those already sent
        go on at the charger: the node cannot call them back)."""
        for entry in self._mem.drop(campaign_id):
            if entry.command_id is not None:
                cmd = self._commands.get(entry.command_id)
                if cmd is not None and cmd.state == "queued":
                    try:
                        await self._commands.cancel(entry.command_id)
                    except AmpgateError:
                        pass  # delivery took it meanwhile

    async def _retry_failed(self, row: CampaignRow) -> None:
        """Failed and timed-out chargers go back to pending in their groups, which run again."""
        live = self._mem.campaigns.get(row.id)
        if live is None:
            image = self._images.get(row.image_id)
            if image is None:
                raise ConflictError(f"firmware image {row.image_id!r} no longer exists", code="image_missing")
            self._load(row, image, [])
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
                    self._move(r.charger_id, entry, ch.retry(r.progress), "retry-failed")
                    reopened.add(r.group_index)
                if len(rows) < SELECT_PAGE:
                    break
                after = rows[-1].seq
        for g in reopened:
            if live.groups[g].state == m.GROUP_FINISHED:
                live.groups[g].state = m.GROUP_RUNNING
                await self._repo.set_group(row.id, g, state=m.GROUP_RUNNING)

    # -- running -----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Resume every active campaign as the tables left it, then follow the bus and move campaigns on until
        cancelled."""
        self._last_request_id = self._repo.last_request_id()
        by_campaign: dict[int, list[ChargerRow]] = {}
        for r in self._repo.unfinished():
            by_campaign.setdefault(r.campaign_id, []).append(r)
        for row in self._repo.in_states(sorted(m.ACTIVE)):
            image = self._images.get(row.image_id)
            if image is None:
                log.error("campaign %s: firmware image %s is gone; pausing it", row.id, row.image_id)
                await self._repo.set_state(row.id, m.PAUSED, "firmware image missing")
                continue
            self._load(row, image, by_campaign.get(row.id, []))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            with self._bus.subscribe(_FOLLOW) as sub:
                await self._reconcile()
                nursery.start_soon(self._follow, sub)
                task_status.started()
                while True:
                    for campaign_id in list(self._mem.campaigns):
                        async with self._lock:
                            await self._step(campaign_id)
                    with trio.move_on_after(TICK):
                        await self._wake.wait()
                    self._wake = trio.Event()

    def _load(self, row: CampaignRow, image: FirmwareImage, rows: list[ChargerRow]) -> None:
        self._mem.load(row, image, self._repo.groups(row.id), rows, self._rate(row.spec))

    def _rate(self, spec: m.CampaignSpec) -> m.Rate:
        return m.Rate(
            per_minute=spec.dispatch_per_minute,
            growth=spec.dispatch_growth_factor,
            started=self._clock.monotonic(),
        )

    async def _reconcile(self) -> None:
        """Dispatched updates whose outcome the node did not see (it was down, or the bus dropped it) are read
        back from their command records; one never queued is queued now with the id recorded for it."""
        for charger_id, entry in list(self._mem.chargers.items()):
            if entry.progress.state != ch.DISPATCHED or entry.command_id is None:
                continue
            cmd = self._commands.get(entry.command_id)
            if cmd is None:
                live = self._mem.campaigns.get(entry.campaign_id)
                if live is None or entry.progress.action is None:
                    continue
                await self._enqueue(
                    charger_id, entry, live, entry.progress.action, entry.payload, entry.command_id
                )
            else:
                await self._outcome(charger_id, entry, cmd.state, cmd.reply, cmd.error_code, cmd.ocpp_code)

    async def _outcome(
        self,
        charger_id: str,
        entry: Entry,
        state: str,
        reply: Any,
        error_code: str | None,
        ocpp_code: str | None,
    ) -> None:
        p = entry.progress
        if p.request_id is None:
            return
        if state == "answered":
            status = reply.get("status") if isinstance(reply, dict) else None
            new, _ = ch.on_reply(p, request_id=p.request_id, status=status, at=self._clock.now())
            self._move(charger_id, entry, new, f"reply {status or 'empty'}")
        elif state == "failed":
            live = self._mem.campaigns.get(entry.campaign_id)
            if live is None:
                return
            new, actions = ch.on_call_error(
                p,
                request_id=p.request_id,
                ocpp_code=ocpp_code,
                code=error_code or "error",
                signed_only=live.image.signed_only,
                new_request_id=self._last_request_id + 1,
            )
            self._move(charger_id, entry, new, f"call failed {ocpp_code or error_code}")
            for a in actions:
                if isinstance(a, ch.Send):
                    await self._dispatch(charger_id, entry, live, a.action, fallback=True)
        elif state == "expired":
            new, _ = ch.on_expired(p, request_id=p.request_id)
            self._move(charger_id, entry, new, "command expired")
        elif state == "cancelled":
            self._move(charger_id, entry, ch.on_manual_update(p)[0], "command cancelled")

    async def _follow(self, sub: Any) -> None:
        while True:
            event = await sub.receive()
            while event is not None:
                try:
                    await self._on_event(event)
                except AmpgateError as e:
                    log.warning("campaigns: %s while handling %s", e, type(event).__name__)
                event = sub.receive_nowait()

    async def _on_event(self, event: Event | EventsLost) -> None:
        if isinstance(event, EventsLost):
            await (
                self._reconcile()
            )  # the statuses the charger repeats when asked; command outcomes from records
            return
        charger_id = event.charger_id
        if charger_id is None:
            return
        entry = self._mem.chargers.get(charger_id)
        now = self._clock.now()
        if isinstance(event, FirmwareStatusReported):
            live = self._mem.campaigns.get(entry.campaign_id) if entry is not None else None
            if entry is None or live is None:
                return
            if ch.belongs(entry.progress, request_id=event.request_id, signed=event.signed):
                timeout = timedelta(seconds=live.spec.status_timeout_s)
                new, _ = ch.on_status(entry.progress, status=event.status, at=now, install_timeout=timeout)
                self._move(charger_id, entry, new, event.status)
        elif isinstance(event, ChargerBooted):
            if event.boot_status != "Accepted":
                return
            if entry is not None:
                live = self._mem.campaigns.get(entry.campaign_id)
                if live is not None:
                    ok = self._images.matches(live.image, event.firmware_version)
                    new, _ = ch.on_boot(entry.progress, version_matches=ok, at=now)
                    self._move(charger_id, entry, new, f"boot {event.firmware_version}")
            else:
                await self._maybe_dynamic(charger_id, event.firmware_version)
            self._wake.set()
        elif isinstance(event, CommandAnswered | CommandFailed | CommandExpired | CommandCancelled):
            owner = self._mem.by_command.get(event.command_id or "")
            if owner is not None and entry is not None and entry.command_id == event.command_id:
                if isinstance(event, CommandAnswered):
                    await self._outcome(charger_id, entry, "answered", {"status": event.status}, None, None)
                elif isinstance(event, CommandFailed):
                    await self._outcome(charger_id, entry, "failed", None, event.code, event.ocpp_code)
                elif isinstance(event, CommandExpired):
                    await self._outcome(charger_id, entry, "expired", None, None, None)
                else:
                    await self._outcome(charger_id, entry, "cancelled", None, None, None)
            elif (
                isinstance(event, CommandAnswered)
                and event.action in UPDATE_ACTIONS
                and entry is not None
                and event.command_id not in self._mem.by_command
            ):
                self._move(charger_id, entry, ch.on_manual_update(entry.progress)[0], "manual update")
            self._wake.set()
        else:
            self._wake.set()  # connected, or a transaction ended: maybe dispatchable now

    async def _maybe_dynamic(self, charger_id: str, version: str | None) -> None:
        """A charger that booted and is in no active campaign joins each running dynamic campaign it matches (in
        a dynamic group: the open one, or a new one after the last group)."""
        for live in list(self._mem.campaigns.values()):
            if not live.spec.dynamic or live.row.state not in (m.RUNNING, m.PAUSED):
                continue
            if self._images.matches(live.image, version) or charger_id in self._mem.chargers:
                continue
            sel = live.spec.selector
            if sel.charger_ids is not None and charger_id not in sel.charger_ids:
                continue
            found = self._selection.select_chargers(
                msgspec.structs.replace(sel, charger_ids=[charger_id]), 1, None
            )
            if not found or found[0].id != charger_id:
                continue
            last = len(live.groups) - 1
            if live.groups[last].kind == "dynamic" and live.groups[last].state != m.GROUP_FINISHED:
                g = last
            else:
                g = last + 1
            member = Member(charger_id, found[0].site_id, ch.Progress())
            if not await self._repo.add_dynamic(live.row.id, g, member):
                continue
            if g == len(live.groups):
                live.groups.append(GroupState("dynamic", m.GROUP_PENDING, False, None))
                live.counts[g] = {}
                live.pending[g] = {}
            live.counts[g][ch.PENDING] = live.counts[g].get(ch.PENDING, 0) + 1
            live.pending[g][charger_id] = None
            self._mem.chargers[charger_id] = Entry(
                campaign_id=live.row.id, group=g, site_id=found[0].site_id, progress=ch.Progress()
            )
            return

    # -- moving a campaign on ------------------------------------------------------------------------------------

    async def _step(self, campaign_id: int) -> None:
        live = self._mem.campaigns.get(campaign_id)
        if live is None:
            return
        now = self._clock.now()
        if live.row.state == m.SCHEDULED and (live.spec.start_at is None or live.spec.start_at <= now):
            await self._set_state(live, m.RUNNING, None)
        if live.row.state != m.RUNNING:
            return
        timeout = timedelta(seconds=live.spec.status_timeout_s)
        for charger_id in list(live.in_flight):
            entry = self._mem.chargers[charger_id]
            new, actions = ch.on_tick(entry.progress, now=now, status_timeout=timeout)
            if new != entry.progress:
                self._move(charger_id, entry, new, "trigger" if actions else new.reason)
            for a in actions:
                if isinstance(a, ch.Trigger):
                    await self._trigger(charger_id, entry, a.message)
        thresholds = m.thresholds(live.spec)
        while True:
            g = live.current_group()
            if g is None:
                if not live.spec.dynamic:
                    await self._set_state(live, m.FINISHED, None)
                break
            group = live.groups[g]
            if group.state == m.GROUP_PENDING:
                group.state, group.started_at = m.GROUP_RUNNING, now
                await self._repo.set_group(campaign_id, g, state=m.GROUP_RUNNING)
                self._publish_group(live, g)
            verdict = m.group_verdict(live.counts.get(g, {}), thresholds, overridden=group.overridden)
            if verdict == "error":
                errors = sum(live.counts[g].get(s, 0) for s in ch.ERRORS)
                finished = sum(live.counts[g].get(s, 0) for s in ch.FINAL)
                await self._set_state(
                    live,
                    m.PAUSED,
                    f"{ERROR_CONDITION}: group {g}: {errors} failed or timed out of {finished} finished",
                )
                return
            if verdict == "running":
                await self._dispatch_some(live, g)
                break
            group.state = m.GROUP_FINISHED
            await self._repo.set_group(campaign_id, g, state=m.GROUP_FINISHED)
            self._publish_group(live, g)
            more = live.current_group() is not None
            if verdict == "below_success":
                await self._set_state(live, m.PAUSED, f"group {g} finished below its success threshold")
                return
            if live.spec.success_action == "pause" and more:
                await self._set_state(live, m.PAUSED, f"group {g} finished (success_action: pause)")
                return
        if self._clock.monotonic() >= live.next_sample:
            live.next_sample = self._clock.monotonic() + SAMPLE_INTERVAL
            self._sample(campaign_id)

    async def _dispatch_some(self, live: LiveCampaign, g: int) -> None:
        spec = live.spec
        budget = spec.max_in_flight - len(live.in_flight)
        allowance = live.rate.allowance(self._clock.monotonic())
        if allowance is not None:
            budget = min(budget, allowance)
        if budget <= 0:
            return
        now = self._clock.now()
        wall = self._clock.wall()
        started = live.groups[g].started_at
        for charger_id in list(live.pending.get(g, {})):
            if budget <= 0 or live.row.state != m.RUNNING:
                return
            entry = self._mem.chargers.get(charger_id)
            if entry is None or entry.progress.state != ch.PENDING:
                continue
            link = self._links.get(charger_id)
            if link is None or not link.online or link.protocol is None:
                seen = link.last_seen_at if link is not None and link.last_seen_at is not None else 0.0
                since = max(seen, started.timestamp() if started is not None else wall)
                if wall - since >= spec.offline_timeout_s:
                    self._move(charger_id, entry, ch.skip(entry.progress, ch.SKIP_OFFLINE), "offline")
                continue
            if self._activity.in_transaction(charger_id):
                continue  # install when idle: not dispatched while it charges
            if (
                not spec.ignore_maintenance_windows
                and entry.site_id is not None
                and (
                    self._windows.has_windows(entry.site_id)
                    and self._windows.window_at(entry.site_id, now) is None
                )
            ):
                continue
            action = ch.choose_action(
                link.protocol,
                image_signed=bool(live.image.signature and live.image.signing_certificate),
                signed_only=live.image.signed_only,
                supports_signed=self._signed.supports_signed_updates(charger_id),
                signed_refused=entry.progress.signed_refused,
            )
            if action is None:
                self._move(
                    charger_id, entry, ch.fail(entry.progress, ch.FAIL_SIGNED_ONLY), "no signed update"
                )
                continue
            entry.progress = msgspec.structs.replace(entry.progress, protocol=link.protocol)
            await self._dispatch(charger_id, entry, live, action)
            budget -= 1
            live.rate.spend(1)

    async def _dispatch(
        self, charger_id: str, entry: Entry, live: LiveCampaign, action: str, *, fallback: bool = False
    ) -> None:
        """Record the dispatch (durable), then queue the command with the id recorded."""
        protocol = entry.progress.protocol or ch.OCPP201
        self._last_request_id += 1
        request_id = self._last_request_id
        now = self._clock.now()
        windowed = (
            not live.spec.ignore_maintenance_windows
            and entry.site_id is not None
            and self._windows.window_at(entry.site_id, now) is not None
        )
        payload = ch.update_request(
            protocol,
            action,
            request_id=request_id,
            location=live.image.location,
            retrieve_at=iso_utc(now),
            install_at=iso_utc(now) if windowed and protocol == ch.OCPP201 else None,
            signing_certificate=live.image.signing_certificate,
            signature=live.image.signature,
        )
        if action == ch.SIGNED_UPDATE_FIRMWARE or protocol == ch.OCPP201:
            payload = self._with_retries(payload, live.spec)
        old = entry.progress.state
        new = ch.dispatch(entry.progress, protocol=protocol, action=action, request_id=request_id, at=now)
        command_id = new_command_id()
        await self._repo.transition(
            Transition(
                campaign_id=entry.campaign_id,
                charger_id=charger_id,
                group_index=entry.group,
                old_state=old,
                progress=new,
                event=f"{'fallback ' if fallback else ''}{action} requestId {request_id}",
                command_id=command_id,
                payload=payload,
            )
        )
        if entry.command_id is not None:
            self._mem.by_command.pop(entry.command_id, None)
        entry.command_id, entry.payload = command_id, payload
        self._mem.by_command[command_id] = charger_id
        self._apply(charger_id, entry, old, new)
        await self._enqueue(charger_id, entry, live, action, payload, command_id)

    @staticmethod
    def _with_retries(payload: dict[str, object], spec: m.CampaignSpec) -> dict[str, object]:
        if spec.retries is not None:
            payload["retries"] = spec.retries
        if spec.retry_interval_s is not None:
            payload["retryInterval"] = spec.retry_interval_s
        return payload

    async def _enqueue(
        self, charger_id: str, entry: Entry, live: LiveCampaign, action: str, payload: Any, command_id: str
    ) -> None:
        try:
            await self._commands.enqueue(
                charger_id, action, payload, ttl_s=float(live.spec.offline_timeout_s), command_id=command_id
            )
        except AmpgateError as e:
            self._move(
                charger_id, entry, ch.fail(entry.progress, f"enqueue:{e.code}"), f"not queued: {e.message}"
            )

    async def _trigger(self, charger_id: str, entry: Entry, message: str) -> None:
        p = entry.progress
        action, payload = ch.trigger_request(
            p.protocol or ch.OCPP201, message, signed=p.action == ch.SIGNED_UPDATE_FIRMWARE
        )
        try:
            await self._commands.enqueue(charger_id, action, payload, ttl_s=TRIGGER_TTL_S)
        except AmpgateError as e:
            log.info("campaigns: could not ask %s for %s: %s", charger_id, message, e)

    # -- applying transitions ------------------------------------------------------------------------------------

    def _move(self, charger_id: str, entry: Entry, new: ch.Progress, event: str | None) -> None:
        """Apply a transition in memory and write it (fire-and-forget, in order)."""
        if new == entry.progress:
            return
        old = entry.progress.state
        self._repo.submit_transition(
            Transition(
                campaign_id=entry.campaign_id,
                charger_id=charger_id,
                group_index=entry.group,
                old_state=old,
                progress=new,
                event=event,
            )
        )
        self._apply(charger_id, entry, old, new)

    def _apply(self, charger_id: str, entry: Entry, old: str, new: ch.Progress) -> None:
        if not self._mem.apply(charger_id, entry, old, new):
            return
        self._bus.publish(
            CampaignChargerChanged(
                at=self._clock.now(),
                charger_id=charger_id,
                campaign_id=entry.campaign_id,
                group_index=entry.group,
                state=new.state,
                reason=new.reason,
                request_id=new.request_id,
            )
        )
        self._wake.set()

    async def _set_state(self, live: LiveCampaign, state: str, reason: str | None) -> None:
        await self._repo.set_state(live.row.id, state, reason)
        row = self._repo.get(live.row.id)
        assert row is not None
        live.row = row
        if state in (m.FINISHED, m.CANCELLED):
            self._mem.drop(row.id)
        self._sample(row.id)
        self._publish_state(row.id, state, None, reason)

    def _sample(self, campaign_id: int) -> None:
        self._repo.submit_sample(campaign_id, self._clock.now(), total(self._counts_now(campaign_id)))

    def _counts_now(self, campaign_id: int) -> dict[int, dict[str, int]]:
        live = self._mem.campaigns.get(campaign_id)
        return live.counts if live is not None else self._repo.counts(campaign_id)

    def _publish_state(self, campaign_id: int, state: str, verb: str | None, reason: str | None) -> None:
        self._bus.publish(
            CampaignChanged(
                at=self._clock.now(), campaign_id=campaign_id, state=state, verb=verb, reason=reason
            )
        )

    def _publish_group(self, live: LiveCampaign, g: int) -> None:
        self._bus.publish(
            CampaignGroupChanged(
                at=self._clock.now(),
                campaign_id=live.row.id,
                group_index=g,
                state=live.groups[g].state,
                counts=dict(live.counts.get(g, {})),
            )
        )
