"""`Dispatcher`: which pending chargers of a running group get their update now, the message each gets, and how it
is sent.

Who goes now: within the campaign's concurrency cap (updates in flight) and its dispatch rate; only a charger
online with a known protocol (one offline past the offline timeout since its group started is skipped_offline,
so the group can finish); not while it charges (install when idle); inside a window of its site unless the
campaign ignores maintenance windows (a site without windows holds nothing back). The message is the pure
machine's choice (`charger.choose_action`); its retrieve time (and the 2.0.1 install time inside a window) is
the instant at which that charger's window was found open, so it lies inside the window even when the writes
before it took long enough for the window to close meanwhile.

How it is sent: the chargers picked in one step (at most DISPATCH_BATCH) are sent as one batch: their dispatches
(request id, command id, payload) are written and committed first, in one write, then their commands are queued
with those ids, in one more (see `campaigns.runner` for why every dispatch goes through the durable command
queue, and what a restart between the two writes does).
Request ids are one sequence over every campaign, the next being the largest stored + 1.

The work per charger of a batch (picking, the payload, memory and the bus, the command's checks) is paced
(`tracker.Pacer`): a checkpoint every CHUNK chargers, so a batch of 500 is ten short steps, not one that holds
the loop (and the API) for 50-125 ms. The commits stay two per batch. A charger picked or prepared before a
checkpoint may have moved after it (a boot with the image's version, an operator's own update): the batch is
written only for those still in the state they were picked in, so a stale pick changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import msgspec

from ampgate.campaigns import charger as ch
from ampgate.campaigns import model as m
from ampgate.campaigns.memory import Entry, LiveCampaign
from ampgate.campaigns.ports import ChargerActivity, Commands, Links, MaintenanceWindows, SignedSupport
from ampgate.campaigns.repository import Transition
from ampgate.campaigns.tracker import Pacer, Tracker
from ampgate.clock import iso_utc
from ampgate.commands.model import QueuedRequest
from ampgate.commands.repository import new_command_id
from ampgate.errors import AmpgateError

log = logging.getLogger(__name__)

# The most updates one dispatch step records: their transitions in one commit and their commands in another,
# where each update cost two commits of its own (~160 a second whatever the concurrency cap, measured at 100k).
# 500 keeps a commit of the batch in the tens of milliseconds, which is also the longest a verb waits for the
# runner's lock behind a dispatch step.
DISPATCH_BATCH = 500
# A TriggerMessage waits in the queue no longer than this: it is only worth sending soon.
TRIGGER_TTL_S = 600.0


class Dispatcher:
    """Sends the campaigns' updates and triggers through the command queue."""

    def __init__(
        self,
        tracker: Tracker,
        windows: MaintenanceWindows,
        links: Links,
        activity: ChargerActivity,
        signed: SignedSupport,
        commands: Commands,
    ) -> None:
        self._t = tracker
        self._windows = windows
        self._links = links
        self._activity = activity
        self._signed = signed
        self._commands = commands
        self.last_request_id = 0
        # Command ids recorded as dispatched whose queueing is under way (its checks yield to the loop, its write
        # is awaited): `following.reconcile` must not take them for never queued and queue them a second time.
        self.queueing: set[str] = set()

    def load(self) -> None:
        """Continue the request ids where the tables left them."""
        self.last_request_id = self._t.repo.last_request_id()

    async def dispatch_some(self, live: LiveCampaign, g: int) -> None:
        """Dispatch to as many of group `g`'s pending chargers as the cap, the rate and each charger allow, at
        most DISPATCH_BATCH of them: one batch, written in two commits (the runner calls again for the next,
        releasing its lock in between so that a verb waits for one batch, not for the whole group)."""
        spec = live.spec
        budget = min(spec.max_in_flight - len(live.in_flight), DISPATCH_BATCH)
        clock = self._t.clock
        allowance = live.rate.allowance(clock.monotonic())
        if allowance is not None:
            budget = min(budget, allowance)
        if budget <= 0 or live.row.state != m.RUNNING:
            return
        wall = clock.wall()
        started = live.groups[g].started_at
        mem = self._t.mem
        batch: list[tuple[str, Entry, str, datetime]] = []
        pacer = Pacer()
        for charger_id in list(live.pending.get(g, {})):
            if len(batch) >= budget:
                break
            await pacer.step()  # at its top: every charger looked at counts, picked or not
            entry = mem.chargers.get(charger_id)
            if entry is None or entry.progress.state != ch.PENDING:
                continue
            link = self._links.get(charger_id)
            if link is None or not link.online or link.protocol is None:
                seen = link.last_seen_at if link is not None and link.last_seen_at is not None else 0.0
                since = max(seen, started.timestamp() if started is not None else wall)
                if wall - since >= spec.offline_timeout_s:
                    self._t.move(charger_id, entry, ch.skip(entry.progress, ch.SKIP_OFFLINE), "offline")
                continue
            if self._activity.in_transaction(charger_id):
                continue  # install when idle: not dispatched while it charges
            # Read per charger (the picking yields between chunks, and takes long at any rate): the instant its
            # window was found open is the one its payload's times are.
            now = clock.now()
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
                self._t.move(
                    charger_id, entry, ch.fail(entry.progress, ch.FAIL_SIGNED_ONLY), "no signed update"
                )
                continue
            entry.progress = msgspec.structs.replace(entry.progress, protocol=link.protocol)
            batch.append((charger_id, entry, action, now))
        if batch:
            live.rate.spend(len(batch))
            await self.dispatch_batch(live, batch)

    async def dispatch(
        self,
        charger_id: str,
        entry: Entry,
        live: LiveCampaign,
        action: str,
        *,
        fallback: bool = False,
        at: datetime | None = None,
    ) -> None:
        """Record the dispatch (durable), then queue the command with the id recorded. `at`: the instant the
        charger was found dispatchable (its window open), which the payload's times are; now when None."""
        now = at if at is not None else self._t.clock.now()
        await self.dispatch_batch(live, [(charger_id, entry, action, now)], fallback=fallback)

    async def dispatch_batch(
        self, live: LiveCampaign, batch: list[tuple[str, Entry, str, datetime]], *, fallback: bool = False
    ) -> None:
        """Record every dispatch of `batch` (charger, entry, action, the instant it was found dispatchable) in
        one durable write, then queue their commands, with the ids recorded, in one more. A restart between the
        two finds dispatched chargers whose command is not in the table: never queued, queued then with the
        same id (`following.reconcile`). A charger whose state changed since it was picked (it is re-read after
        the paced preparation, just before the write) is left out: what moved it is what happened."""
        pacer = Pacer()
        picked: list[tuple[str, Entry, str, Any, str, str, ch.Progress]] = []
        for charger_id, entry, action, now in batch:
            await pacer.step()
            protocol = entry.progress.protocol or ch.OCPP201
            self.last_request_id += 1
            request_id = self.last_request_id
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
                payload = _with_retries(payload, live.spec)
            old = entry.progress.state
            new = ch.dispatch(entry.progress, protocol=protocol, action=action, request_id=request_id, at=now)
            picked.append((charger_id, entry, action, payload, new_command_id(), old, new))
        # Nothing awaited from here until the write is queued: what is written is what memory holds now.
        prepared = [p for p in picked if p[1].progress.state == p[5]]
        if not prepared:
            return
        await self._t.repo.transitions(
            [
                Transition(
                    campaign_id=entry.campaign_id,
                    charger_id=charger_id,
                    group_index=entry.group,
                    old_state=old,
                    progress=new,
                    event=f"{'fallback ' if fallback else ''}{action} requestId {new.request_id}",
                    command_id=command_id,
                    payload=payload,
                )
                for charger_id, entry, action, payload, command_id, old, new in prepared
            ]
        )
        # Memory follows the commit in one go (a few µs a charger), so no other task sees a charger the tables
        # have dispatched still pending; the announcements, which cost more (every subscriber's queue), are paced.
        mem = self._t.mem
        self.queueing.update(p[4] for p in prepared)  # dispatched in memory from here, queued at the end
        changed: list[tuple[str, Entry, ch.Progress]] = []
        for charger_id, entry, _action, payload, command_id, old, new in prepared:
            mem.watched.pop(
                charger_id, None
            )  # an earlier campaign's watch: a later boot is about this update
            if entry.command_id is not None:
                mem.by_command.pop(entry.command_id, None)
            entry.command_id, entry.payload = command_id, payload
            mem.by_command[command_id] = charger_id
            if self._t.apply(charger_id, entry, old, new, announce=False):
                changed.append((charger_id, entry, new))
        try:
            pacer = Pacer()
            for charger_id, entry, new in changed:
                await pacer.step()
                self._t.announce(charger_id, entry, new)
            await self.enqueue_many(live, [(c, e, a, p, cid) for c, e, a, p, cid, _old, _new in prepared])
        finally:
            self.queueing.difference_update(p[4] for p in prepared)

    async def enqueue(
        self, charger_id: str, entry: Entry, live: LiveCampaign, action: str, payload: Any, command_id: str
    ) -> None:
        """Queue a recorded dispatch under its recorded command id; a refusal fails the charger."""
        await self.enqueue_many(live, [(charger_id, entry, action, payload, command_id)])

    async def enqueue_many(
        self, live: LiveCampaign, recorded: list[tuple[str, Entry, str, Any, str]]
    ) -> None:
        """Queue recorded dispatches (charger, entry, action, payload, command id) under their recorded command
        ids, in one write; a refusal fails that charger."""
        ttl = float(live.spec.offline_timeout_s)
        ids = [cid for _c, _e, _a, _p, cid in recorded]
        self.queueing.update(ids)
        try:
            outcomes = await self._commands.enqueue_many(
                [
                    QueuedRequest(charger_id=c, action=a, payload=p, ttl_s=ttl, command_id=cid)
                    for c, _e, a, p, cid in recorded
                ]
            )
        finally:
            self.queueing.difference_update(ids)
        for (charger_id, entry, _a, _p, _cid), outcome in zip(recorded, outcomes, strict=True):
            if isinstance(outcome, AmpgateError):
                self._t.move(
                    charger_id,
                    entry,
                    ch.fail(entry.progress, f"enqueue:{outcome.code}"),
                    f"not queued: {outcome.message}",
                )

    async def trigger(self, charger_id: str, entry: Entry, message: str) -> None:
        """Ask a silent charger for `message` (TriggerMessage, or ExtendedTriggerMessage for a 1.6 signed update);
        not asking is logged, the timeout then decides."""
        p = entry.progress
        action, payload = ch.trigger_request(
            p.protocol or ch.OCPP201, message, signed=p.action == ch.SIGNED_UPDATE_FIRMWARE
        )
        try:
            await self._commands.enqueue(charger_id, action, payload, ttl_s=TRIGGER_TTL_S)
        except AmpgateError as e:
            log.info("campaigns: could not ask %s for %s: %s", charger_id, message, e)


def _with_retries(payload: dict[str, object], spec: m.CampaignSpec) -> dict[str, object]:
    if spec.retries is not None:
        payload["retries"] = spec.retries
    if spec.retry_interval_s is not None:
        payload["retryInterval"] = spec.retry_interval_s
    return payload
