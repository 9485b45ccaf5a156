"""A campaign's rules as pure functions: what a valid campaign is, how its targets split into groups, when a group
is done or has gone wrong, what each verb does in each state, how fast dispatch may go. No store, no clock.

Campaign states:

    draft ──start──▶ scheduled ──(start time)──▶ running ──(every group done)──▶ finished
                                                  │  ▲                              │
                                     pause / error│  │resume          retry-failed  │
                                                  ▼  │                ◀─────────────╯
                                                 paused            cancel: any but finished ──▶ cancelled

Groups run in order: the canary (if any), then each group. A group is done when none of its chargers is pending
or in flight. Its success condition (≥ `success_threshold_pct` installed, of those not skipped or superseded)
then starts the next group (`success_action` "next_group") or pauses ("pause"); below it, the campaign pauses.
The error condition (failed + timed out ≥ `error_threshold_count`, or ≥ `error_threshold_pct` of the finished,
once `error_min_finished` have finished) pauses it at once. Resuming overrides the conditions of the group that
paused it: the operator has looked and chosen to go on.

Pausing and cancelling stop new dispatches, not the updates already sent: those are followed to their end
(statuses, boots, the status timeout and its TriggerMessage) in a paused or cancelled campaign too, and their
counts keep moving. Cancel skips the chargers not yet sent to ("cancelled"; a queued update is cancelled in the
queue); a charger whose update was sent stays in the cancelled campaign until it is final.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ampgate.campaigns.charger import ERRORS, FINAL, IN_FLIGHT, INSTALLED, PENDING, SKIPPED, SUPERSEDED
from ampgate.errors import ConflictError, ValidationError

DRAFT = "draft"
SCHEDULED = "scheduled"
RUNNING = "running"
PAUSED = "paused"
FINISHED = "finished"
CANCELLED = "cancelled"
CAMPAIGN_STATES = (DRAFT, SCHEDULED, RUNNING, PAUSED, FINISHED, CANCELLED)
# States in which a campaign holds its chargers: a charger is in at most one such campaign. (A cancelled
# campaign also holds the chargers whose update it had sent, until each is final.)
ACTIVE = frozenset({SCHEDULED, RUNNING, PAUSED})

GROUP_PENDING = "pending"
GROUP_RUNNING = "running"
GROUP_FINISHED = "finished"

VERBS = ("start", "pause", "resume", "cancel", "retry-failed")

# A charger offline this long while its group runs is skipped_offline, so the group can finish (the issue's
# default: a week).
DEFAULT_OFFLINE_TIMEOUT_S = 7 * 86_400
# How long a charger may stay silent mid-update before it is asked (TriggerMessage), and again before it times
# out. An hour covers a slow download over a cellular link without leaving a dead charger in flight for long.
DEFAULT_STATUS_TIMEOUT_S = 3600
# The longest status timeout a campaign may ask: a charger silent for a week is not coming back with news.
MAX_STATUS_TIMEOUT_S = 7 * 86_400
DEFAULT_MAX_IN_FLIGHT = 100
MAX_IN_FLIGHT = 100_000
MAX_GROUPS = 100
# The 2.0.1 retries / retryInterval fields are integers; these bound what an operator can ask.
MAX_RETRIES = 100
# The dispatch rate grows by the factor once a minute up to this: beyond it the command queue and the outbox
# are the limit anyway.
MAX_DISPATCH_PER_MINUTE = 100_000.0

Pct = Annotated[float, Meta(ge=0, le=100)]


class Selector(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which chargers a campaign targets (every field present must match; tags: all of them)."""

    vendor: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    site: str | None = None
    tags: list[str] | None = None
    charger_ids: list[str] | None = None


class Canary(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The first, small group: exactly one of `count` or `percent` (of the campaign's targets)."""

    count: Annotated[int, Meta(ge=1)] | None = None
    percent: Annotated[float, Meta(gt=0, le=100)] | None = None


class GroupSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One group: exactly one of `percent` (of the targets), `count`, or `charger_ids`."""

    percent: Annotated[float, Meta(gt=0, le=100)] | None = None
    count: Annotated[int, Meta(ge=1)] | None = None
    charger_ids: list[str] | None = None


class CampaignSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A campaign as created (the body of POST /api/v1/firmware/campaigns)."""

    image_id: int
    selector: Selector
    groups: list[GroupSpec]
    name: str | None = None
    canary: Canary | None = None
    success_threshold_pct: Pct = 100.0
    success_action: Literal["next_group", "pause"] = "next_group"
    error_threshold_pct: Pct | None = None
    error_threshold_count: Annotated[int, Meta(ge=1)] | None = None
    error_min_finished: Annotated[int, Meta(ge=0)] = 1
    max_in_flight: Annotated[int, Meta(ge=1, le=MAX_IN_FLIGHT)] = DEFAULT_MAX_IN_FLIGHT
    dispatch_per_minute: Annotated[float, Meta(gt=0, le=MAX_DISPATCH_PER_MINUTE)] | None = None
    dispatch_growth_factor: Annotated[float, Meta(ge=1, le=10)] | None = None
    status_timeout_s: Annotated[int, Meta(ge=1, le=MAX_STATUS_TIMEOUT_S)] = DEFAULT_STATUS_TIMEOUT_S
    offline_timeout_s: Annotated[int, Meta(ge=1, le=7 * 86_400)] = DEFAULT_OFFLINE_TIMEOUT_S
    retries: Annotated[int, Meta(ge=0, le=MAX_RETRIES)] | None = None
    retry_interval_s: Annotated[int, Meta(ge=0, le=86_400)] | None = None
    ignore_maintenance_windows: bool = False
    dynamic: bool = False
    start_at: datetime | None = None


def validate(spec: CampaignSpec) -> CampaignSpec:
    """`spec` if its fields agree with each other (msgspec checked each one). Raises ValidationError naming the
    field: no groups, a group or the canary without exactly one size, both error thresholds, a growth factor
    without a base rate, a naive start time."""
    if not spec.groups:
        raise ValidationError("a campaign needs at least one group", field="groups")
    if len(spec.groups) > MAX_GROUPS:
        raise ValidationError(f"at most {MAX_GROUPS} groups", field="groups")
    for i, g in enumerate(spec.groups):
        given = [
            n for n, v in (("percent", g.percent), ("count", g.count), ("charger_ids", g.charger_ids)) if v
        ]
        if len(given) != 1:
            raise ValidationError(
                f"group {i}: exactly one of percent, count or charger_ids, got {', '.join(given) or 'none'}",
                field=f"groups[{i}]",
            )
    if spec.canary is not None and (spec.canary.count is None) == (spec.canary.percent is None):
        raise ValidationError("the canary takes exactly one of count or percent", field="canary")
    if spec.error_threshold_pct is not None and spec.error_threshold_count is not None:
        raise ValidationError(
            "give one of error_threshold_pct or error_threshold_count, not both",
            field="error_threshold_count",
        )
    if spec.dispatch_growth_factor is not None and spec.dispatch_per_minute is None:
        raise ValidationError(
            "a growing rate starts from dispatch_per_minute; give it too", field="dispatch_growth_factor"
        )
    if spec.start_at is not None and spec.start_at.tzinfo is None:
        raise ValidationError("give the start time with an offset (or Z)", field="start_at")
    s = spec.selector
    if not any((s.vendor, s.model, s.firmware_version, s.site, s.tags, s.charger_ids)):
        raise ValidationError(
            "the selector needs at least one of vendor, model, firmware_version, site, tags or charger_ids"
            " (a campaign over the whole fleet names it: e.g. every vendor)",
            field="selector",
        )
    return spec


# -- groups --------------------------------------------------------------------------------------------------------


def _share(percent: float, total: int) -> int:
    return math.ceil(percent * total / 100 - 1e-9)


def split(targets: Sequence[str], canary: Canary | None, groups: Sequence[GroupSpec]) -> list[list[str]]:
    """The targets (in selection order) cut into the canary (if any) and the groups, each charger in exactly
    one. Percentages are of all the targets, rounded up; an explicit-id group takes those of its ids that are
    targets and not already in an earlier group; what no group took joins the last group, so the campaign covers
    its whole selection."""
    total = len(targets)
    remaining = list(targets)
    taken: set[str] = set()
    out: list[list[str]] = []

    def take(n: int) -> list[str]:
        nonlocal remaining
        part = [c for c in remaining if c not in taken][:n]
        taken.update(part)
        return part

    if canary is not None:
        out.append(take(canary.count if canary.count is not None else _share(canary.percent or 0, total)))
    for g in groups:
        if g.charger_ids:
            wanted = set(g.charger_ids) & set(targets)
            part = [c for c in dict.fromkeys(g.charger_ids) if c in wanted and c not in taken]
            taken.update(part)
            out.append(part)
        elif g.count is not None:
            out.append(take(g.count))
        else:
            out.append(take(_share(g.percent or 0, total)))
        remaining = [c for c in remaining if c not in taken]
    rest = [c for c in targets if c not in taken]
    if rest:
        out[-1].extend(rest)
    return out


# -- conditions ----------------------------------------------------------------------------------------------------

Verdict = Literal["running", "succeeded", "below_success", "error"]


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    success_pct: float
    error_pct: float | None
    error_count: int | None
    error_min_finished: int


def thresholds(spec: CampaignSpec) -> Thresholds:
    return Thresholds(
        success_pct=spec.success_threshold_pct,
        error_pct=spec.error_threshold_pct,
        error_count=spec.error_threshold_count,
        error_min_finished=spec.error_min_finished,
    )


def group_verdict(counts: Mapping[str, int], t: Thresholds, *, overridden: bool = False) -> Verdict:
    """Where a group stands, from its per-state counts. "error": the error condition holds (checked while it
    runs); "running": chargers pending or in flight; "succeeded" / "below_success": done, installed at or above
    the success threshold or below it. `overridden` (the operator resumed past this group): neither condition
    applies; a done group has succeeded."""
    errors = sum(counts.get(s, 0) for s in ERRORS)
    finished = sum(counts.get(s, 0) for s in FINAL)
    if not overridden and finished >= t.error_min_finished and errors > 0:
        if t.error_count is not None and errors >= t.error_count:
            return "error"
        if t.error_pct is not None and finished and errors * 100 >= t.error_pct * finished:
            return "error"
    if counts.get(PENDING, 0) or any(counts.get(s, 0) for s in IN_FLIGHT):
        return "running"
    if overridden:
        return "succeeded"
    judged = finished - counts.get(SKIPPED, 0) - counts.get(SUPERSEDED, 0)
    if judged == 0 or counts.get(INSTALLED, 0) * 100 >= t.success_pct * judged:
        return "succeeded"
    return "below_success"


# -- verbs ---------------------------------------------------------------------------------------------------------


class VerbOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a verb does: the state after, and whether anything changed (False: it was already so)."""

    state: str
    changed: bool


def apply_verb(state: str, verb: str, *, start_later: bool = False, has_errors: bool = False) -> VerbOutcome:
    """The campaign state after `verb` in `state`. `start_later`: its start time is in the future (start and
    resume then schedule it); `has_errors`: some charger is failed or timed out (retry-failed changes something).
    The same verb twice changes nothing the second time. Raises ConflictError (`campaign_state`) for a verb the
    state forbids, NotFoundError-free: the caller found the campaign."""
    go = SCHEDULED if start_later else RUNNING

    def refuse() -> ConflictError:
        return ConflictError(f"a {state} campaign cannot {verb}", code="campaign_state")

    if verb == "start":
        if state == DRAFT:
            return VerbOutcome(state=go, changed=True)
        if state in ACTIVE:
            return VerbOutcome(state=state, changed=False)
        raise refuse()
    if verb == "pause":
        if state in (RUNNING, SCHEDULED):
            return VerbOutcome(state=PAUSED, changed=True)
        if state == PAUSED:
            return VerbOutcome(state=state, changed=False)
        raise refuse()
    if verb == "resume":
        if state == PAUSED:
            return VerbOutcome(state=go, changed=True)
        if state in (RUNNING, SCHEDULED):
            return VerbOutcome(state=state, changed=False)
        raise refuse()
    if verb == "cancel":
        if state in (DRAFT, SCHEDULED, RUNNING, PAUSED):
            return VerbOutcome(state=CANCELLED, changed=True)
        if state == CANCELLED:
            return VerbOutcome(state=state, changed=False)
        raise refuse()
    if verb == "retry-failed":
        if state in (RUNNING, PAUSED, FINISHED):
            if not has_errors:
                return VerbOutcome(state=state, changed=False)
            return VerbOutcome(state=RUNNING if state == FINISHED else state, changed=True)
        raise refuse()
    raise ValidationError(f"unknown verb {verb!r}; one of {', '.join(VERBS)}", field="verb")


# -- dispatch rate -------------------------------------------------------------------------------------------------


class Rate(msgspec.Struct, kw_only=True):
    """A token bucket for the dispatch rate: `per_minute` at first, multiplied by `growth` every minute since
    `started` (monotonic seconds). The bucket holds at most ten seconds' worth (at least one), so a pause or a
    quiet spell does not let a burst through. Not stored: after a restart it starts empty, which only ever
    slows dispatch."""

    per_minute: float | None
    growth: float | None
    started: float
    tokens: float = 1.0
    last: float | None = None

    def current(self, now: float) -> float | None:
        """Dispatches per minute allowed at `now` (None: no limit)."""
        if self.per_minute is None:
            return None
        if self.growth is None or self.growth == 1:
            return self.per_minute
        minutes = max(0.0, now - self.started) / 60
        exponent = min(minutes, math.log(MAX_DISPATCH_PER_MINUTE / self.per_minute, self.growth) + 1)
        return min(MAX_DISPATCH_PER_MINUTE, self.per_minute * self.growth ** math.floor(exponent))

    def allowance(self, now: float) -> int | None:
        """How many may be dispatched now (None: no limit). Call `spend` with what was dispatched."""
        rate = self.current(now)
        if rate is None:
            return None
        if self.last is not None:
            self.tokens = min(max(1.0, rate / 6), self.tokens + (now - self.last) * rate / 60)
        self.last = now
        return int(self.tokens + 1e-9)

    def spend(self, n: int) -> None:
        self.tokens -= n
