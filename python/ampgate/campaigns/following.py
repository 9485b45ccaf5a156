"""`Follower`: what the bus tells the campaigns about their chargers, fed to each charger's pure machine.

`firmware.status` (matched by request id, or to the one unsigned 1.6 update), `charger.booted` (the version that
confirms an install or refutes it, also for a 2.0.1 charger watched after its Installed; a charger in no
campaign may join a dynamic one), `command.*` of the campaigns' own commands (the reply, a CALLERROR, expiry,
cancellation) and an operator's UpdateFirmware answered while ours is in flight (ours is superseded). This goes
on in paused and cancelled campaigns too, except that a cancelled one sends no unsigned fallback. A lost event
is caught up from the command records (`reconcile`); a lost status is one the charger repeats when asked, which
the status timeout does.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import msgspec

from ampgate.bus import EventsLost
from ampgate.campaigns import charger as ch
from ampgate.campaigns import model as m
from ampgate.campaigns.dispatch import Dispatcher
from ampgate.campaigns.memory import Entry, GroupState
from ampgate.campaigns.ports import ChargerSelection, Commands, ImageCatalog
from ampgate.campaigns.repository import Member
from ampgate.campaigns.tracker import Pacer, Tracker
from ampgate.errors import AmpgateError
from ampgate.events import (
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

UPDATE_ACTIONS = frozenset({ch.UPDATE_FIRMWARE, ch.SIGNED_UPDATE_FIRMWARE})
# The events the campaigns follow (connected and transaction ended only wake the loop: a charger may be
# dispatchable now).
FOLLOW = [
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


class Follower:
    """Follows the bus for the campaigns' chargers."""

    def __init__(
        self,
        tracker: Tracker,
        dispatcher: Dispatcher,
        images: ImageCatalog,
        selection: ChargerSelection,
        commands: Commands,
    ) -> None:
        self._t = tracker
        self._dispatcher = dispatcher
        self._images = images
        self._selection = selection
        self._commands = commands

    async def follow(self, sub: Any) -> None:
        """Handle the subscription's events until cancelled, a batch per wake-up, paced (a wake-up after a
        dispatch batch finds hundreds of replies and statuses waiting: one step for all of them held the loop for
        up to 160 ms at 10k chargers)."""
        pacer = Pacer()
        while True:
            event = await sub.receive()
            while event is not None:
                try:
                    await self.on_event(event)
                except AmpgateError as e:
                    log.warning("campaigns: %s while handling %s", e, type(event).__name__)
                await pacer.step()
                event = sub.receive_nowait()

    async def reconcile(self) -> None:
        """Dispatched updates whose outcome the node did not see (it was down, or the bus dropped it) are read
        back from their command records; one never queued is queued now with the id recorded for it."""
        mem = self._t.mem
        pacer = Pacer()
        for charger_id, entry in list(mem.chargers.items()):
            await pacer.step()  # every charger in memory is looked at (100k after a restart)
            if mem.chargers.get(charger_id) is not entry:
                continue  # final (or replaced) while the loop yielded
            if entry.progress.state != ch.DISPATCHED or entry.command_id is None:
                continue
            if entry.command_id in self._dispatcher.queueing:
                continue  # its dispatch is queueing it now
            cmd = self._commands.get(entry.command_id)
            if cmd is None:
                live = mem.campaigns.get(entry.campaign_id)
                if live is None or entry.progress.action is None:
                    continue
                if live.row.state == m.CANCELLED:  # never sent, and now never will be
                    self._t.move(
                        charger_id, entry, ch.skip(entry.progress, ch.SKIP_CANCELLED), "campaign cancelled"
                    )
                    continue
                await self._dispatcher.enqueue(
                    charger_id, entry, live, entry.progress.action, entry.payload, entry.command_id
                )
            else:
                await self.outcome(charger_id, entry, cmd.state, cmd.reply, cmd.error_code, cmd.ocpp_code)

    async def outcome(
        self,
        charger_id: str,
        entry: Entry,
        state: str,
        reply: Any,
        error_code: str | None,
        ocpp_code: str | None,
    ) -> None:
        """The campaign's own update command ended `state` (answered, failed, expired, cancelled)."""
        p = entry.progress
        if p.request_id is None:
            return
        now = self._t.clock.now()
        if state == "answered":
            status = reply.get("status") if isinstance(reply, dict) else None
            new, _ = ch.on_reply(p, request_id=p.request_id, status=status, at=now)
            self._t.move(charger_id, entry, new, f"reply {status or 'empty'}")
        elif state == "failed":
            live = self._t.mem.campaigns.get(entry.campaign_id)
            if live is None:
                return
            new, actions = ch.on_call_error(
                p,
                request_id=p.request_id,
                ocpp_code=ocpp_code,
                code=error_code or "error",
                signed_only=live.image.signed_only,
                new_request_id=self._dispatcher.last_request_id + 1,
            )
            self._t.move(charger_id, entry, new, f"call failed {ocpp_code or error_code}")
            for a in actions:
                if not isinstance(a, ch.Send):
                    continue
                if live.row.state == m.CANCELLED:  # the signed call was refused: nothing reached the charger
                    self._t.move(
                        charger_id, entry, ch.skip(entry.progress, ch.SKIP_CANCELLED), "campaign cancelled"
                    )
                else:  # running or paused: the same dispatch in the other message
                    await self._dispatcher.dispatch(charger_id, entry, live, a.action, fallback=True)
        elif state == "expired":
            new, _ = ch.on_expired(p, request_id=p.request_id)
            self._t.move(charger_id, entry, new, "command expired")
        elif state == "cancelled":
            live = self._t.mem.campaigns.get(entry.campaign_id)
            if live is not None and live.row.state == m.CANCELLED:  # the campaign's own cancel
                self._t.move(charger_id, entry, ch.skip(p, ch.SKIP_CANCELLED), "campaign cancelled")
            else:  # someone cancelled it in the queue: not ours any more
                self._t.move(charger_id, entry, ch.on_manual_update(p)[0], "command cancelled")

    async def on_event(self, event: Event | EventsLost) -> None:
        if isinstance(event, EventsLost):
            # The statuses the charger repeats when asked; command outcomes from records.
            await self.reconcile()
            return
        charger_id = event.charger_id
        if charger_id is None:
            return
        mem = self._t.mem
        entry = mem.chargers.get(charger_id)
        now = self._t.clock.now()
        if isinstance(event, FirmwareStatusReported):
            live = mem.campaigns.get(entry.campaign_id) if entry is not None else None
            if entry is None or live is None:
                return
            if ch.belongs(entry.progress, request_id=event.request_id, signed=event.signed):
                timeout = timedelta(seconds=live.spec.status_timeout_s)
                new, _ = ch.on_status(entry.progress, status=event.status, at=now, install_timeout=timeout)
                self._t.move(charger_id, entry, new, event.status)
        elif isinstance(event, ChargerBooted):
            if event.boot_status != "Accepted":
                return
            self._watched_boot(charger_id, event.firmware_version)
            if entry is not None:
                live = mem.campaigns.get(entry.campaign_id)
                if live is not None:
                    ok = self._images.matches(live.image, event.firmware_version)
                    new, _ = ch.on_boot(entry.progress, version_matches=ok, at=now)
                    self._t.move(charger_id, entry, new, f"boot {event.firmware_version}")
            else:
                await self._maybe_dynamic(charger_id, event.firmware_version)
            self._t.wake()
        elif isinstance(event, CommandAnswered | CommandFailed | CommandExpired | CommandCancelled):
            owner = mem.by_command.get(event.command_id or "")
            if owner is not None and entry is not None and entry.command_id == event.command_id:
                if isinstance(event, CommandAnswered):
                    await self.outcome(charger_id, entry, "answered", {"status": event.status}, None, None)
                elif isinstance(event, CommandFailed):
                    await self.outcome(charger_id, entry, "failed", None, event.code, event.ocpp_code)
                elif isinstance(event, CommandExpired):
                    await self.outcome(charger_id, entry, "expired", None, None, None)
                else:
                    await self.outcome(charger_id, entry, "cancelled", None, None, None)
            elif (
                isinstance(event, CommandAnswered)
                and event.action in UPDATE_ACTIONS
                and entry is not None
                and event.command_id not in mem.by_command
            ):
                self._t.move(charger_id, entry, ch.on_manual_update(entry.progress)[0], "manual update")
            if (
                isinstance(event, CommandAnswered)
                and event.action in UPDATE_ACTIONS
                and event.command_id not in mem.by_command
            ):
                mem.watched.pop(charger_id, None)  # another update: a later boot is not about ours
            self._t.wake()
        else:
            self._t.wake()  # connected, or a transaction ended: maybe dispatchable now

    def _watched_boot(self, charger_id: str, version: str | None) -> None:
        """A boot of a 2.0.1 charger watched after its Installed: another version in time is a version
        mismatch (installed → failed), the image's version ends the watch (both written to its timeline)."""
        watched = self._t.mem.watched.get(charger_id)
        if watched is None:
            return
        now = self._t.clock.now()
        if not ch.watching(watched.progress, now):
            del self._t.mem.watched[charger_id]
            return
        live = self._t.mem.campaigns.get(watched.campaign_id)
        if live is not None:
            image = live.image
        else:  # the campaign finished meanwhile: its image from the catalog
            row = self._t.repo.get(watched.campaign_id)
            found = self._images.get(row.image_id) if row is not None else None
            if found is None:
                del self._t.mem.watched[charger_id]  # nothing left to compare the version with
                return
            image = found
        ok = self._images.matches(image, version)
        new, _ = ch.on_boot(watched.progress, version_matches=ok, at=now)
        self._t.move(charger_id, watched, new, f"boot {version}")

    async def _maybe_dynamic(self, charger_id: str, version: str | None) -> None:
        """A charger that booted and is in no active campaign joins each running dynamic campaign it matches (in
        a dynamic group: the open one, or a new one after the last group)."""
        mem = self._t.mem
        for live in list(mem.campaigns.values()):
            if not live.spec.dynamic or live.row.state not in (m.RUNNING, m.PAUSED):
                continue
            if self._images.matches(live.image, version) or charger_id in mem.chargers:
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
            if not await self._t.repo.add_dynamic(live.row.id, g, member):
                continue
            if g == len(live.groups):
                live.groups.append(GroupState("dynamic", m.GROUP_PENDING, False, None))
                live.counts[g] = {}
                live.pending[g] = {}
            live.counts[g][ch.PENDING] = live.counts[g].get(ch.PENDING, 0) + 1
            live.pending[g][charger_id] = None
            mem.chargers[charger_id] = Entry(
                campaign_id=live.row.id, group=g, site_id=found[0].site_id, progress=ch.Progress()
            )
            return
