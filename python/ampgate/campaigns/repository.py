"""The campaign tables behind `CampaignRepository`. Writes run on the store's writer thread; reads take the reader
connection on the trio thread.

Counting: every charger transition updates its row and the per-group per-state counter in the same write (one
SAVEPOINT), so the counters always equal what a scan would count, and the summary of a 100k-charger campaign is a
read of at most groups × states small rows. The transition is conditional on the state it leaves, so a transition
computed from a stale view changes nothing (and no counter).

Durability of dispatch: the dispatch (request id, command id, payload) is written and committed before the
command is queued, and the command id is chosen here, so after a restart a dispatched row either has its command
in the command table (it went, or goes, out once) or it has none (it never went: queue it with the same id).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.campaigns.charger import FINAL, STATES, Progress
from ampgate.campaigns.model import ACTIVE, DRAFT, CampaignSpec
from ampgate.clock import iso_utc, parse_iso
from ampgate.store.store import Store

# A charger repeating a status must not grow its row without bound: the first entries and the newest kept. A
# real update has five to eight.
MAX_TIMELINE = 40

_encode = msgspec.json.Encoder().encode
_progress = msgspec.json.Decoder(Progress).decode
_spec = msgspec.json.Decoder(CampaignSpec).decode

_CAMPAIGN = "id, name, image_id, spec, state, paused_reason, created_at, started_at, finished_at, updated_at"
_CHARGER = (
    "campaign_id, charger_id, group_idx, seq, site_id, state, reason, request_id, command_id, action, payload, progress,"
    " timeline, updated_at"
)
_FINAL_SQL = ", ".join(f"'{s}'" for s in sorted(FINAL))
_ACTIVE_SQL = ", ".join(f"'{s}'" for s in sorted(ACTIVE))
# The campaigns a runner follows: the active ones, and cancelled ones with updates still in flight (by the
# counters, so no charger row is read to know).
_FOLLOWED_SQL = (
    f"state IN ({_ACTIVE_SQL}) OR (state = 'cancelled' AND EXISTS (SELECT 1 FROM campaign_counts k"
    f" WHERE k.campaign_id = campaigns.id AND k.n > 0 AND k.state NOT IN ({_FINAL_SQL})))"
)


class CampaignRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str | None
    image_id: int
    spec: CampaignSpec
    state: str
    paused_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class GroupRow(msgspec.Struct, frozen=True, kw_only=True):
    """A group: `kind` canary, group or dynamic (chargers that matched after the start); its counts per state."""

    campaign_id: int
    index: int
    kind: str
    state: str
    overridden: bool
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int]


class TimelineEntry(msgspec.Struct, frozen=True, array_like=True):
    """One step of a charger's update: a status it reported, a reply, or what the node did, with when."""

    event: str
    at: str


class ChargerRow(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: int
    charger_id: str
    group_index: int
    seq: int
    site_id: str | None
    state: str
    reason: str | None
    request_id: int | None
    command_id: str | None
    action: str | None
    payload: Any
    progress: Progress
    timeline: list[TimelineEntry]
    updated_at: datetime


class AuditRow(msgspec.Struct, frozen=True, kw_only=True):
    verb: str
    actor: str | None
    role: str | None
    reason: str | None
    changed: bool
    state_after: str
    at: datetime


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """One charger moving from `old_state` to `progress` (its new state inside), with what to add to its timeline
    and, for a dispatch, the command id and payload."""

    campaign_id: int
    charger_id: str
    group_index: int
    old_state: str
    progress: Progress
    event: str | None = None
    command_id: str | None = None
    payload: Any = None


def _at(v: str | None) -> datetime | None:
    return parse_iso(v)


def _campaign(v: tuple[Any, ...]) -> CampaignRow:
    created, updated = parse_iso(v[6]), parse_iso(v[9])
    assert created is not None and updated is not None
    return CampaignRow(
        id=v[0],
        name=v[1],
        image_id=v[2],
        spec=_spec(v[3]),
        state=v[4],
        paused_reason=v[5],
        created_at=created,
        started_at=_at(v[7]),
        finished_at=_at(v[8]),
        updated_at=updated,
    )


def _charger(v: tuple[Any, ...]) -> ChargerRow:
    updated = parse_iso(v[13])
    assert updated is not None
    return ChargerRow(
        campaign_id=v[0],
        charger_id=v[1],
        group_index=v[2],
        seq=v[3],
        site_id=v[4],
        state=v[5],
        reason=v[6],
        request_id=v[7],
        command_id=v[8],
        action=v[9],
        payload=None if v[10] is None else json.loads(v[10]),
        progress=_progress(v[11]),
        timeline=[TimelineEntry(e[0], e[1]) for e in json.loads(v[12])],
        updated_at=updated,
    )


# -- reads ---------------------------------------------------------------------------------------------------------


def read_campaign(conn: sqlite3.Connection, campaign_id: int) -> CampaignRow | None:
    v = conn.execute(f"SELECT {_CAMPAIGN} FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    return None if v is None else _campaign(v)


def read_counts(conn: sqlite3.Connection, campaign_id: int) -> dict[int, dict[str, int]]:
    """Per group, per state: the counters (no scan of the charger rows)."""
    out: dict[int, dict[str, int]] = {}
    for idx, state, n in conn.execute(
        "SELECT group_idx, state, n FROM campaign_counts WHERE campaign_id = ?", (campaign_id,)
    ):
        out.setdefault(idx, {})[state] = n
    return out


def total(counts: dict[int, dict[str, int]]) -> dict[str, int]:
    """The campaign's counts: the groups' summed, every state present."""
    out = dict.fromkeys(STATES, 0)
    for per_group in counts.values():
        for state, n in per_group.items():
            out[state] = out.get(state, 0) + n
    return out


def read_groups(conn: sqlite3.Connection, campaign_id: int) -> list[GroupRow]:
    counts = read_counts(conn, campaign_id)
    rows = conn.execute(
        "SELECT idx, kind, state, overridden, started_at, finished_at FROM campaign_groups WHERE campaign_id = ?"
        " ORDER BY idx",
        (campaign_id,),
    ).fetchall()
    return [
        GroupRow(
            campaign_id=campaign_id,
            index=v[0],
            kind=v[1],
            state=v[2],
            overridden=bool(v[3]),
            started_at=_at(v[4]),
            finished_at=_at(v[5]),
            counts={s: counts.get(v[0], {}).get(s, 0) for s in STATES},
        )
        for v in rows
    ]


# -- writes (on the writer thread) -----------------------------------------------------------------------------------


def _bump(conn: sqlite3.Connection, campaign_id: int, group_idx: int, state: str, by: int) -> None:
    conn.execute(
        "INSERT INTO campaign_counts (campaign_id, group_idx, state, n) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (campaign_id, group_idx, state) DO UPDATE SET n = n + excluded.n",
        (campaign_id, group_idx, state, by),
    )


def create(db: sqlite_utils.Database, spec: CampaignSpec, at: str) -> CampaignRow:
    cur = db.conn.execute(
        "INSERT INTO campaigns (name, image_id, spec, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (spec.name, spec.image_id, _encode(spec).decode(), DRAFT, at, at),
    )
    row = read_campaign(db.conn, cur.fetchone()[0])
    assert row is not None
    return row


class Member(msgspec.Struct, frozen=True, array_like=True):
    """A charger as it enters a campaign: its id, its site (for maintenance windows), its first progress."""

    charger_id: str
    site_id: str | None
    progress: Progress


def _add_charger(
    conn: sqlite3.Connection, campaign_id: int, group_idx: int, seq: int, m: Member, at: str
) -> None:
    p = m.progress
    conn.execute(
        f"INSERT INTO campaign_chargers ({_CHARGER}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, ?, ?)",
        (
            campaign_id,
            m.charger_id,
            group_idx,
            seq,
            m.site_id,
            p.state,
            p.reason,
            _encode(p).decode(),
            json.dumps([[p.reason or p.state, at]] if p.state != "pending" else []),
            at,
        ),
    )
    _bump(conn, campaign_id, group_idx, p.state, 1)


def freeze(
    db: sqlite_utils.Database,
    campaign_id: int,
    groups: Sequence[tuple[str, Sequence[Member]]],
    state: str,
    at: str,
) -> None:
    """Store the groups (kind, members) frozen at start and move the campaign to `state`."""
    seq = 0
    for idx, (kind, members) in enumerate(groups):
        db.conn.execute(
            "INSERT INTO campaign_groups (campaign_id, idx, kind, state) VALUES (?, ?, ?, 'pending')",
            (campaign_id, idx, kind),
        )
        for m in members:
            _add_charger(db.conn, campaign_id, idx, seq, m, at)
            seq += 1
    db.conn.execute(
        "UPDATE campaigns SET state = ?, started_at = ?, updated_at = ? WHERE id = ?",
        (state, at, at, campaign_id),
    )


def add_dynamic(db: sqlite_utils.Database, campaign_id: int, group_idx: int, m: Member, at: str) -> bool:
    """Add a charger that matched after the start to dynamic group `group_idx` (created if new). False when it
    is in the campaign already."""
    if db.conn.execute(
        "SELECT 1 FROM campaign_chargers WHERE campaign_id = ? AND charger_id = ?",
        (campaign_id, m.charger_id),
    ).fetchone():
        return False
    db.conn.execute(
        "INSERT OR IGNORE INTO campaign_groups (campaign_id, idx, kind, state) VALUES (?, ?, 'dynamic', 'pending')",
        (campaign_id, group_idx),
    )
    seq = db.conn.execute(
        "SELECT coalesce(max(seq), -1) + 1 FROM campaign_chargers WHERE campaign_id = ?", (campaign_id,)
    ).fetchone()[0]
    _add_charger(db.conn, campaign_id, group_idx, seq, m, at)
    return True


def set_state(
    db: sqlite_utils.Database,
    campaign_id: int,
    state: str,
    paused_reason: str | None,
    at: str,
    audit: AuditRow | None,
) -> None:
    finished = at if state in ("finished", "cancelled") else None
    db.conn.execute(
        "UPDATE campaigns SET state = ?, paused_reason = ?, updated_at = ?,"
        " finished_at = CASE WHEN ? IS NULL THEN NULL ELSE ? END WHERE id = ?",
        (state, paused_reason, at, finished, finished, campaign_id),
    )
    if audit is not None:
        db.conn.execute(
            "INSERT INTO campaign_audit (campaign_id, verb, actor, role, reason, changed, state_after, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                campaign_id,
                audit.verb,
                audit.actor,
                audit.role,
                audit.reason,
                int(audit.changed),
                audit.state_after,
                iso_utc(audit.at),
            ),
        )


def set_group(
    db: sqlite_utils.Database, campaign_id: int, idx: int, state: str | None, overridden: bool | None, at: str
) -> None:
    if state is not None:
        db.conn.execute(
            "UPDATE campaign_groups SET state = ?,"
            " started_at = CASE WHEN ? = 'running' AND started_at IS NULL THEN ? ELSE started_at END,"
            " finished_at = CASE WHEN ? = 'finished' THEN ? ELSE NULL END WHERE campaign_id = ? AND idx = ?",
            (state, state, at, state, at, campaign_id, idx),
        )
    if overridden is not None:
        db.conn.execute(
            "UPDATE campaign_groups SET overridden = ? WHERE campaign_id = ? AND idx = ?",
            (int(overridden), campaign_id, idx),
        )


def transition(db: sqlite_utils.Database, t: Transition, at: str) -> bool:
    """Apply `t` if the charger is still in `t.old_state`; its counters move in the same write. False: it was
    not (nothing changed)."""
    p = t.progress
    row = db.conn.execute(
        "SELECT timeline FROM campaign_chargers WHERE campaign_id = ? AND charger_id = ? AND state = ?",
        (t.campaign_id, t.charger_id, t.old_state),
    ).fetchone()
    if row is None:
        return False
    timeline = json.loads(row[0])
    if t.event is not None:
        timeline.append([t.event, at])
        if len(timeline) > MAX_TIMELINE:
            timeline = timeline[:2] + timeline[-(MAX_TIMELINE - 2) :]
    db.conn.execute(
        "UPDATE campaign_chargers SET state = ?, reason = ?, request_id = ?, action = ?, progress = ?,"
        " timeline = ?, updated_at = ?, command_id = coalesce(?, command_id), payload = coalesce(?, payload)"
        " WHERE campaign_id = ? AND charger_id = ?",
        (
            p.state,
            p.reason,
            p.request_id,
            p.action,
            _encode(p).decode(),
            json.dumps(timeline, separators=(",", ":")),
            at,
            t.command_id,
            None if t.payload is None else json.dumps(t.payload, separators=(",", ":")),
            t.campaign_id,
            t.charger_id,
        ),
    )
    if p.state != t.old_state:
        _bump(db.conn, t.campaign_id, t.group_index, t.old_state, -1)
        _bump(db.conn, t.campaign_id, t.group_index, p.state, 1)
    return True


def transitions(db: sqlite_utils.Database, ts: list[Transition], at: str) -> list[bool]:
    return [transition(db, t, at) for t in ts]


def add_sample(db: sqlite_utils.Database, campaign_id: int, at: str, counts: dict[str, int]) -> None:
    db.conn.execute(
        "INSERT OR REPLACE INTO campaign_samples (campaign_id, at, counts) VALUES (?, ?, ?)",
        (campaign_id, at, json.dumps(counts, separators=(",", ":"))),
    )


class CampaignRepository:
    """The campaign tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _at(self, at: datetime | None = None) -> str:
        return iso_utc(at if at is not None else self._store.now())

    # -- reads ---------------------------------------------------------------------------------------------------

    def get(self, campaign_id: int) -> CampaignRow | None:
        return read_campaign(self._store.reader, campaign_id)

    def page(self, limit: int, before: int | None, state: str | None) -> list[CampaignRow]:
        """Campaigns newest first, below id `before`, optionally in one state."""
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        if before is not None:
            where.append("id < ?")
            args.append(before)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        cur = self._store.reader.execute(
            f"SELECT {_CAMPAIGN} FROM campaigns WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        return [_campaign(v) for v in cur.fetchall()]

    def in_states(self, states: Sequence[str]) -> list[CampaignRow]:
        marks = ", ".join("?" for _ in states)
        cur = self._store.reader.execute(
            f"SELECT {_CAMPAIGN} FROM campaigns WHERE state IN ({marks}) ORDER BY id", tuple(states)
        )
        return [_campaign(v) for v in cur.fetchall()]

    def counts(self, campaign_id: int) -> dict[int, dict[str, int]]:
        return read_counts(self._store.reader, campaign_id)

    def groups(self, campaign_id: int) -> list[GroupRow]:
        return read_groups(self._store.reader, campaign_id)

    def charger(self, campaign_id: int, charger_id: str) -> ChargerRow | None:
        v = self._store.reader.execute(
            f"SELECT {_CHARGER} FROM campaign_chargers WHERE campaign_id = ? AND charger_id = ?",
            (campaign_id, charger_id),
        ).fetchone()
        return None if v is None else _charger(v)

    def chargers(
        self, campaign_id: int, state: str | None, limit: int, after: int | None
    ) -> list[ChargerRow]:
        """A page of the campaign's chargers in selection order (seq), after `after`, optionally in one state."""
        where, args = ["campaign_id = ?"], [campaign_id]
        if state is not None:
            where.append("state = ?")
            args.append(state)  # type: ignore[arg-type]
        if after is not None:
            where.append("seq > ?")
            args.append(after)
        cur = self._store.reader.execute(
            f"SELECT {_CHARGER} FROM campaign_chargers WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
            (*args, limit),
        )
        return [_charger(v) for v in cur.fetchall()]

    def followed(self) -> list[CampaignRow]:
        """The campaigns a runner resumes: scheduled, running or paused, and cancelled ones whose chargers are
        not all final (an update already sent is followed until it is)."""
        cur = self._store.reader.execute(
            f"SELECT {_CAMPAIGN} FROM campaigns WHERE {_FOLLOWED_SQL} ORDER BY id"
        )
        return [_campaign(v) for v in cur.fetchall()]

    def unfinished_of(self, campaign_id: int) -> list[ChargerRow]:
        """The campaign's chargers not yet final, in selection order."""
        cur = self._store.reader.execute(
            f"SELECT {_CHARGER} FROM campaign_chargers WHERE campaign_id = ? AND state NOT IN ({_FINAL_SQL})"
            " ORDER BY seq",
            (campaign_id,),
        )
        return [_charger(v) for v in cur.fetchall()]

    def unfinished_page(self, campaign_id: int, limit: int, after: int | None) -> list[ChargerRow]:
        """`unfinished_of` `limit` rows at a time, after selection position (seq) `after`."""
        cur = self._store.reader.execute(
            f"SELECT {_CHARGER} FROM campaign_chargers WHERE campaign_id = ? AND state NOT IN ({_FINAL_SQL})"
            " AND seq > ? ORDER BY seq LIMIT ?",
            (campaign_id, -1 if after is None else after, limit),
        )
        return [_charger(v) for v in cur.fetchall()]

    def installed_since(self, since: datetime) -> list[ChargerRow]:
        """Chargers that became installed at or after `since` in a campaign active, cancelled, or finished since
        then (what a restarted runner may still watch for a rollback: `charger.watching` decides). One index
        range per campaign."""
        at = iso_utc(since)
        # INDEXED BY: without statistics SQLite would walk each campaign's every row by primary key.
        cur = self._store.reader.execute(
            f"SELECT {_CHARGER} FROM campaign_chargers INDEXED BY campaign_chargers_state"
            " WHERE campaign_id IN (SELECT id FROM campaigns"
            f" WHERE state IN ({_ACTIVE_SQL}, 'cancelled') OR finished_at >= ?)"
            " AND state = 'installed' AND updated_at >= ?",
            (at, at),
        )
        return [_charger(v) for v in cur.fetchall()]

    def uses(self, image_id: int) -> bool:
        """Whether a draft or followed campaign uses image `image_id` (the images refuse to delete it): a
        cancelled campaign's chargers still downloading it keep it."""
        return (
            self._store.reader.execute(
                f"SELECT 1 FROM campaigns WHERE image_id = ? AND (state = 'draft' OR {_FOLLOWED_SQL}) LIMIT 1",
                (image_id,),
            ).fetchone()
            is not None
        )

    def last_request_id(self) -> int:
        v = self._store.reader.execute("SELECT max(request_id) FROM campaign_chargers").fetchone()
        return int(v[0] or 0)

    def samples(
        self, campaign_id: int, since: datetime, until: datetime
    ) -> list[tuple[datetime, dict[str, int]]]:
        """Count snapshots from `since` (inclusive) to `until` (exclusive), with the last one before `since`."""
        conn = self._store.reader
        first = conn.execute(
            "SELECT at, counts FROM campaign_samples WHERE campaign_id = ? AND at < ? ORDER BY at DESC LIMIT 1",
            (campaign_id, iso_utc(since)),
        ).fetchall()
        rest = conn.execute(
            "SELECT at, counts FROM campaign_samples WHERE campaign_id = ? AND at >= ? AND at < ? ORDER BY at",
            (campaign_id, iso_utc(since), iso_utc(until)),
        ).fetchall()
        out = []
        for at, counts in [*first, *rest]:
            when = parse_iso(at)
            assert when is not None
            out.append((when, json.loads(counts)))
        return out

    def audit(self, campaign_id: int) -> list[AuditRow]:
        cur = self._store.reader.execute(
            "SELECT verb, actor, role, reason, changed, state_after, at FROM campaign_audit WHERE campaign_id = ?"
            " ORDER BY id",
            (campaign_id,),
        )
        out = []
        for v in cur.fetchall():
            at = parse_iso(v[6])
            assert at is not None
            out.append(
                AuditRow(
                    verb=v[0], actor=v[1], role=v[2], reason=v[3], changed=bool(v[4]), state_after=v[5], at=at
                )
            )
        return out

    # -- writes --------------------------------------------------------------------------------------------------

    async def create(self, spec: CampaignSpec) -> CampaignRow:
        return await self._store.write(functools.partial(create, spec=spec, at=self._at()))

    async def freeze(
        self, campaign_id: int, groups: Sequence[tuple[str, Sequence[Member]]], state: str
    ) -> None:
        await self._store.write(
            functools.partial(freeze, campaign_id=campaign_id, groups=groups, state=state, at=self._at())
        )

    async def add_dynamic(self, campaign_id: int, group_idx: int, m: Member) -> bool:
        return await self._store.write(
            functools.partial(add_dynamic, campaign_id=campaign_id, group_idx=group_idx, m=m, at=self._at())
        )

    async def set_state(
        self, campaign_id: int, state: str, paused_reason: str | None, audit: AuditRow | None = None
    ) -> None:
        await self._store.write(
            functools.partial(
                set_state,
                campaign_id=campaign_id,
                state=state,
                paused_reason=paused_reason,
                at=self._at(),
                audit=audit,
            )
        )

    async def set_group(
        self, campaign_id: int, idx: int, *, state: str | None = None, overridden: bool | None = None
    ) -> None:
        await self._store.write(
            functools.partial(
                set_group, campaign_id=campaign_id, idx=idx, state=state, overridden=overridden, at=self._at()
            )
        )

    async def transition(self, t: Transition) -> bool:
        """Apply and wait for the commit (a dispatch: durable before the command goes)."""
        return await self._store.write(functools.partial(transition, t=t, at=self._at()))

    async def transitions(self, ts: Sequence[Transition]) -> list[bool]:
        """Apply every one of `ts` in one write and wait for its one commit (a batch of dispatches: all durable
        before any of their commands is queued). Each answers as `transition` does."""
        return await self._store.write(functools.partial(transitions, ts=list(ts), at=self._at()))

    def submit_transition(self, t: Transition) -> None:
        """Apply fire-and-forget: the writer runs writes in order, so a later transition of the same charger
        commits after this one. For status progress, which the charger repeats when asked."""
        self._store.submit(functools.partial(transition, t=t, at=self._at()))

    async def flush(self) -> None:
        """Return once every write submitted before has committed (the writer runs writes in order, so a no-op
        write awaited after them is a barrier): what a verb changed fire-and-forget is then what a read sees."""
        await self._store.write(_nothing)

    def submit_sample(self, campaign_id: int, at: datetime, counts: dict[str, int]) -> None:
        self._store.submit(
            functools.partial(add_sample, campaign_id=campaign_id, at=iso_utc(at), counts=counts)
        )


def _nothing(db: sqlite_utils.Database) -> None:
    """The barrier's write (`CampaignRepository.flush`)."""
