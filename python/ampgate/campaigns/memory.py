"""The runner's memory of the campaigns it follows, a mirror of their tables: every charger not yet final in a
scheduled, running or paused campaign, or in a cancelled one that had sent it its update (its progress, group,
the command of its current dispatch), and per
campaign its groups, counts per group and state, pending chargers per group in selection order and those in
flight. Kept so the runner answers a firmware status or picks the next chargers to dispatch without a read per
event; the tables stay the truth a restart loads this from.

Apart from those, `watched`: 2.0.1 chargers installed by their Installed and still watched for a rollback (a boot
with another version before `confirm_until`). They are final, so they hold no campaign slot (another campaign
may take them, which ends the watch) and outlive their campaign's finishing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ampgate.campaigns import charger as ch
from ampgate.campaigns import model as m
from ampgate.campaigns.ports import FirmwareImage
from ampgate.campaigns.repository import CampaignRow, ChargerRow, GroupRow


@dataclass
class Entry:
    """A charger not yet final in an active campaign."""

    campaign_id: int
    group: int
    site_id: str | None
    progress: ch.Progress
    command_id: str | None = None
    payload: Any = None


@dataclass
class GroupState:
    kind: str
    state: str
    overridden: bool
    started_at: datetime | None


@dataclass
class LiveCampaign:
    """An active campaign."""

    row: CampaignRow
    image: FirmwareImage
    groups: list[GroupState]
    counts: dict[int, dict[str, int]]
    rate: m.Rate
    pending: dict[int, dict[str, None]] = field(default_factory=dict)  # per group, in selection order
    in_flight: set[str] = field(default_factory=set)
    next_sample: float = 0.0

    @property
    def spec(self) -> m.CampaignSpec:
        return self.row.spec

    def current_group(self) -> int | None:
        """The first group not finished (None: all are)."""
        for i, g in enumerate(self.groups):
            if g.state != m.GROUP_FINISHED:
                return i
        return None


class Memory:
    def __init__(self) -> None:
        self.campaigns: dict[int, LiveCampaign] = {}
        self.chargers: dict[str, Entry] = {}
        self.by_command: dict[str, str] = {}  # command id -> charger id
        self.watched: dict[str, Entry] = {}  # charger id -> its installed entry, until its confirm_until

    def load(
        self,
        row: CampaignRow,
        image: FirmwareImage,
        groups: list[GroupRow],
        rows: list[ChargerRow],
        rate: m.Rate,
    ) -> LiveCampaign:
        """Take in a campaign and its chargers not yet final, as the tables hold them."""
        live = LiveCampaign(
            row=row,
            image=image,
            groups=[GroupState(g.kind, g.state, g.overridden, g.started_at) for g in groups],
            counts={g.index: dict(g.counts) for g in groups},
            rate=rate,
            pending={g.index: {} for g in groups},
        )
        self.campaigns[row.id] = live
        self.take(live, rows)
        return live

    def take(self, live: LiveCampaign, rows: list[ChargerRow]) -> None:
        """Take in more of a loaded campaign's chargers not yet final, as the tables hold them (the runner loads
        a large campaign a page at a time, yielding between pages)."""
        for r in rows:
            self.chargers[r.charger_id] = Entry(
                campaign_id=live.row.id,
                group=r.group_index,
                site_id=r.site_id,
                progress=r.progress,
                command_id=r.command_id,
                payload=r.payload,
            )
            if r.command_id is not None:
                self.by_command[r.command_id] = r.charger_id
            if r.state == ch.PENDING:
                live.pending.setdefault(r.group_index, {})[r.charger_id] = None
            elif r.state in ch.IN_FLIGHT:
                live.in_flight.add(r.charger_id)

    def apply(self, charger_id: str, entry: Entry, old: str, new: ch.Progress) -> bool:
        """`entry` moved from state `old` to `new`: counts, pending and in-flight follow (in a campaign still in
        memory); a final charger is forgotten, or watched (a 2.0.1 Installed). True when its state changed."""
        entry.progress = new
        if new.state == ch.INSTALLED and new.confirm_until is not None:
            self.watched[charger_id] = entry
        elif self.watched.get(charger_id) is entry:
            del self.watched[charger_id]
        if old == new.state:
            return False
        live = self.campaigns.get(entry.campaign_id)
        if live is not None:
            counts = live.counts.setdefault(entry.group, {})
            counts[old] = counts.get(old, 0) - 1
            counts[new.state] = counts.get(new.state, 0) + 1
            if old == ch.PENDING:
                live.pending.get(entry.group, {}).pop(charger_id, None)
            if new.state == ch.PENDING:
                live.pending.setdefault(entry.group, {})[charger_id] = None
            if new.state in ch.IN_FLIGHT:
                live.in_flight.add(charger_id)
            else:
                live.in_flight.discard(charger_id)
        if new.state in ch.FINAL:
            if self.chargers.get(charger_id) is entry:  # not another campaign's entry of a watched charger
                del self.chargers[charger_id]
            if entry.command_id is not None:
                self.by_command.pop(entry.command_id, None)
        return True

    def watch(self, row: ChargerRow) -> None:
        """Watch an installed charger as the tables hold it (after a restart)."""
        self.watched[row.charger_id] = Entry(
            campaign_id=row.campaign_id, group=row.group_index, site_id=row.site_id, progress=row.progress
        )

    def unwatch_expired(self, now: datetime) -> None:
        """Forget the watches whose time is over (a boot checks the time itself; this only frees memory)."""
        for charger_id in [c for c, e in self.watched.items() if not ch.watching(e.progress, now)]:
            del self.watched[charger_id]

    def drop(self, campaign_id: int) -> list[Entry]:
        """Forget a campaign (cancelled, finished) and its chargers; returns their entries. Its watched chargers
        stay watched."""
        self.campaigns.pop(campaign_id, None)
        gone = [c for c, e in self.chargers.items() if e.campaign_id == campaign_id]
        entries = [self.chargers.pop(c) for c in gone]
        for e in entries:
            if e.command_id is not None:
                self.by_command.pop(e.command_id, None)
        return entries
