"""`OpenAdrVen`: the node's OpenADR 3.0.1 VEN, one task on the node's trio loop.

What it does, in the order of its loop:
1. Registers: finds or creates the VEN (venName) and one resource per site (resourceName = the site id; the
   site's EAN as a `POWER_SERVICE_LOCATION` target), and every poll registers the sites added since.
2. Polls the programs and events, and subscribes once per program to event and program notifications, whose
   callbacks (`notify`, served on the public listener) carry the bearer token we gave the VTN.
3. Reconciles (`_reconcile`, the one path both polls and callbacks take): every event is mapped
   (`mapping.map_event`); its capacity limits are applied through `CapacityLimits` (source "openadr"), those of
   events gone or changed at the VTN cancelled or replaced; prices are stored; an event that cannot be mapped is
   logged, published (`openadr.event_rejected`) and counted once per version, and applied not at all.
4. Safe mode: when no poll has succeeded for `safe_mode_timeout_s`, the program's safe-mode event's limits (else
   `fallback_kw` per site) are applied until a poll succeeds again.
5. Reports: after each capacity interval ends, one report per event interval with each site's `DEMAND` (kW
   measured then) and `USAGE` (kWh over the interval).

Why it polls even with callbacks: a callback can be lost (the node down, the VTN's retry policy unknown), and a
poll at the program's interval bounds how stale the VEN can be. The poll period is the shortest interval
duration among the programs (a new interval is seen before it starts), bounded by `poll_interval_s` above and
`MIN_POLL_S` below.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import trio

from ampgate.clock import Clock, iso_utc
from ampgate.errors import AmpgateError
from ampgate.events import Event as BusEvent
from ampgate.events import OpenAdrEventRejected, OpenAdrSafeMode
from ampgate.load.model import SiteRow
from ampgate.openadr.client import VtnClient, VtnRefused, VtnUnreachable
from ampgate.openadr.mapping import (
    FOREVER,
    Limit,
    Mapped,
    Rejection,
    decode_event,
    map_event,
)
from ampgate.openadr.ports import CapacityLimits, SiteDirectory, SiteReadings
from ampgate.openadr.repository import PriceRepository
from ampgate.openadr.wire import (
    Event,
    Interval,
    IntervalPeriod,
    Notification,
    ObjectOperation,
    Program,
    Report,
    ReportPayloadDescriptor,
    ReportResource,
    Resource,
    Subscription,
    ValuesMap,
    Ven,
    parse_duration,
)

log = logging.getLogger(__name__)

# The `source` of every limit this VEN applies through CapacityLimits.
SOURCE = "openadr"
SAFE_MODE_REF = "safe-mode/"
# The poll period never goes below this, whatever a program's interval: a VTN with 1-minute intervals is
# polled every 15 s at most, which sees each interval change well before it takes effect.
MIN_POLL_S = 15.0
# Safe-mode limits are applied for this long and extended while the VTN stays away: a node that stops (and so
# stops extending) does not leave a limit that outlives it by days.
SAFE_MODE_HOLD = timedelta(hours=1)
# Sites are read from the directory this many at a time.
SITE_PAGE = 500
# Rejections remembered (so each event version is reported once); past it the oldest are forgotten, and an
# event still bad is reported again, which is harmless.
MAX_REMEMBERED_REJECTIONS = 10_000
_CREATE_OPS = {"POST", "CREATE", "PUT", "UPDATE"}


@dataclass(frozen=True)
class VenSettings:
    ven_name: str
    # The poll period when no program gives an interval, and the longest one.
    poll_interval_s: float = 60.0
    # The VTN unreachable for longer than this: safe mode.
    safe_mode_timeout_s: float = 300.0
    # kW per site in safe mode when the program has no safe-mode event for it; None: no limit.
    fallback_kw: float | None = None
    # Seeds the randomizeStart delays (default: the VEN name), so that a restart picks the same delays.
    seed: str | None = None


class OpenAdrVen:
    """The VEN. `callback_url` gives the absolute URL of the notification route on the public listener (None: no
    subscriptions, polling only); it is called once the listener is bound."""

    def __init__(
        self,
        vtn: VtnClient,
        limits: CapacityLimits,
        readings: SiteReadings,
        sites: SiteDirectory,
        prices: PriceRepository,
        publish: Callable[[BusEvent], None],
        clock: Clock,
        settings: VenSettings,
        *,
        callback_url: Callable[[], str] | None = None,
    ) -> None:
        self._vtn = vtn
        self._limits = limits
        self._readings = readings
        self._sites = sites
        self._prices = prices
        self._publish = publish
        self._clock = clock
        self.settings = settings
        self._callback_url = callback_url
        # What the VTN must present on callbacks: random per node start, handed to the VTN in each subscription.
        self.callback_token = secrets.token_urlsafe(32)
        self._seed = settings.seed if settings.seed is not None else settings.ven_name
        self._lock = trio.Lock()
        self._wake = trio.Event()
        self.ven_id: str | None = None
        self._resources: set[str] = set()
        self._subscribed: set[str] = set()
        self._programs: dict[str, Program] = {}
        self._events: dict[str, Event] = {}
        self._first_seen: dict[str, datetime] = {}
        self._mapped: dict[str, Mapped] = {}
        self._applied: dict[str, Limit] = {}
        self._price_sig: dict[str, tuple[Any, ...]] = {}
        self._rejected: dict[tuple[str | None, str], None] = {}
        self._safe_kw: dict[str, dict[str, float]] = {}
        self._reported: set[tuple[str, int]] = set()
        self.rejects = 0
        self.reports_sent = 0
        self.started_at = clock.now()
        self.last_poll_at: datetime | None = None
        self.last_ok_at: datetime | None = None
        self.last_error: str | None = None
        self.reachable = False
        self.safe_mode_since: datetime | None = None
        self._safe_applied: dict[str, tuple[float, datetime]] = {}

    # -- the loop ----------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll, reconcile, watch the outage timer and report, until cancelled. Never raises for anything the
        VTN does. Closes the HTTP client when it ends."""
        task_status.started()
        try:
            while True:
                await self.poll_once()
                await self.tick()
                self._wake = trio.Event()
                with trio.move_on_after(self._sleep_s()):
                    await self._wake.wait()
        finally:
            with trio.CancelScope(shield=True):
                await self._vtn.aclose()

    def _sleep_s(self) -> float:
        now = self._clock.now()
        wait = self.poll_period_s()
        for limit in self._reportable():
            wait = min(wait, max(0.0, (limit.end - now).total_seconds()))
        if self.safe_mode_since is None:
            since = self.last_ok_at or self.started_at
            wait = min(wait, max(0.0, (since - now).total_seconds() + self.settings.safe_mode_timeout_s))
        return max(wait, 0.5)

    def poll_period_s(self) -> float:
        """The shortest interval duration among the programs, between MIN_POLL_S and poll_interval_s."""
        period = self.settings.poll_interval_s
        for program in self._programs.values():
            ip = program.interval_period
            if ip is None or ip.duration is None:
                continue
            try:
                seconds = parse_duration(ip.duration).total_seconds()
            except ValueError:
                continue
            if seconds > 0:
                period = min(period, seconds)
        return max(MIN_POLL_S, period) if period < self.settings.poll_interval_s else period

    async def poll_once(self) -> bool:
        """Register what is new, read programs and events, subscribe, reconcile. True when the VTN answered
        every call; False (the outage timer runs on) when it could not be reached or refused."""
        self.last_poll_at = self._clock.now()
        try:
            await self._register()
            programs = await self._vtn.list_raw("/programs")
            raw_events = await self._vtn.list_raw("/events")
            if self._callback_url is not None:
                await self._subscribe(programs)
        except VtnUnreachable as e:
            return self._failed(f"VTN unreachable: {e}")
        except VtnRefused as e:
            return self._failed(f"VTN refused: {e}")
        except msgspec.DecodeError as e:
            # A listing that is not an array of objects, or a VEN / resource / subscription we cannot read: the
            # VTN is no use to us now, as if it were unreachable. (A malformed event alone is rejected below.)
            return self._failed(f"VTN sent what does not decode: {e}")
        self.reachable = True
        self.last_ok_at = self._clock.now()
        self.last_error = None
        async with self._lock:
            self._programs = {}
            for raw in programs:
                try:
                    program = msgspec.json.decode(raw, type=Program)
                except msgspec.DecodeError as e:
                    log.warning("OpenADR: a program that does not decode is ignored: %s", e)
                    continue
                if program.id:
                    self._programs[program.id] = program
            events: dict[str, Event] = {}
            for raw in raw_events:
                decoded = decode_event(raw)
                if isinstance(decoded, Rejection):
                    self._reject(decoded, hashlib.sha256(bytes(raw)).hexdigest())
                    continue
                assert decoded.id is not None
                events[decoded.id] = decoded
            self._events = events
            await self._reconcile()
        if self.safe_mode_since is not None:
            await self._leave_safe_mode()
        return True

    def _failed(self, why: str) -> bool:
        if self.last_error != why:
            log.warning("OpenADR: %s", why)
        self.last_error = why
        self.reachable = False
        return False

    async def tick(self) -> None:
        """The time-driven part: enter (or keep up) safe mode past the outage timeout, send the reports due."""
        now = self._clock.now()
        since = self.last_ok_at or self.started_at
        if not self.reachable and (now - since).total_seconds() > self.settings.safe_mode_timeout_s:
            await self._hold_safe_mode(now)
        await self._send_reports(now)

    # -- registration ------------------------------------------------------------------------------------------

    async def _register(self) -> None:
        name = self.settings.ven_name
        if self.ven_id is None:
            found = [
                v
                for v in (
                    msgspec.json.decode(raw, type=Ven)
                    for raw in await self._vtn.list_raw("/vens", {"venName": name})
                )
                if v.ven_name == name and v.id
            ]
            if found:
                ven = found[0]
            else:
                ven = await self._vtn.create(
                    "/vens", Ven(ven_name=name, targets=[ValuesMap(type="VEN_NAME", values=[name])]), Ven
                )
                log.info("OpenADR: registered VEN %r as %s", name, ven.id)
            assert ven.id is not None
            self.ven_id = ven.id
            try:
                listed = await self._vtn.list_raw(f"/vens/{ven.id}/resources")
            except VtnRefused as e:
                if e.status != 404:
                    raise
                # OpenADR 3.1 moved a VEN's resources to /resources?venID=…; reading them there lets a 3.1 VTN
                # on which the resources were registered for us (by its business logic) be used.
                listed = await self._vtn.list_raw("/resources", {"venID": ven.id})
            self._resources = {msgspec.json.decode(raw, type=Resource).resource_name for raw in listed}
        for site in self._all_sites():
            if site.id in self._resources:
                continue
            targets: list[ValuesMap | str] = [ValuesMap(type="RESOURCE_NAME", values=[site.id])]
            if site.ean:
                targets.append(ValuesMap(type="POWER_SERVICE_LOCATION", values=[site.ean]))
            resource = Resource(resource_name=site.id, ven_id=self.ven_id, targets=targets)
            await self._vtn.create(f"/vens/{self.ven_id}/resources", resource, Resource)
            self._resources.add(site.id)
            log.info("OpenADR: registered site %s as a resource (EAN %s)", site.id, site.ean or "none")

    def _all_sites(self) -> list[SiteRow]:
        out: list[SiteRow] = []
        after: str | None = None
        while True:
            page = self._sites.page_sites(SITE_PAGE, after)
            out.extend(page)
            if len(page) < SITE_PAGE:
                return out
            after = page[-1].id

    async def _subscribe(self, programs: list[msgspec.Raw]) -> None:
        assert self._callback_url is not None
        url = self._callback_url()
        name = self.settings.ven_name
        if not self._subscribed:
            # Ours from a previous start carry a token we no longer know: replace them.
            for raw in await self._vtn.list_raw("/subscriptions", {"clientName": name}):
                old = msgspec.json.decode(raw, type=Subscription)
                if old.client_name == name and old.id:
                    await self._vtn.delete(f"/subscriptions/{old.id}")
        for raw in programs:
            program_id = msgspec.json.decode(raw, type=dict[str, Any]).get("id")
            if not isinstance(program_id, str) or program_id in self._subscribed:
                continue
            operation = ObjectOperation(
                objects=["EVENT", "PROGRAM"],
                operations=["CREATE", "UPDATE", "DELETE"],
                callback_url=url,
                bearer_token=self.callback_token,
            )
            await self._vtn.create(
                "/subscriptions",
                Subscription(client_name=name, program_id=program_id, object_operations=[operation]),
                Subscription,
            )
            self._subscribed.add(program_id)

    # -- callbacks -----------------------------------------------------------------------------------------

    async def notify(self, body: bytes) -> Rejection | None:
        """A notification the VTN posted to our callback URL (its bearer token already checked). An event
        created, changed or deleted is reconciled at once; a program change makes the loop poll now. Returns the
        rejection when the notification or its event cannot be used (also published and counted)."""
        try:
            note = msgspec.json.decode(body, type=Notification)
        except msgspec.DecodeError as e:
            rejection = Rejection(
                reason="malformed", field="$", message=f"the notification does not decode: {e}"
            )
            self._reject(rejection, hashlib.sha256(body).hexdigest())
            return rejection
        kind, op = note.object_type.upper(), note.operation.upper()
        if kind == "PROGRAM":
            self._wake.set()
            return None
        if kind != "EVENT":
            return None
        async with self._lock:
            if op == "DELETE":
                try:
                    event_id = msgspec.json.decode(note.object, type=dict[str, Any]).get("id")
                except msgspec.DecodeError:
                    event_id = None
                if isinstance(event_id, str):
                    self._events.pop(event_id, None)
            elif op in _CREATE_OPS:
                decoded = decode_event(note.object)
                if isinstance(decoded, Rejection):
                    self._reject(decoded, hashlib.sha256(bytes(note.object)).hexdigest())
                    return decoded
                assert decoded.id is not None
                self._events[decoded.id] = decoded
                event_id = decoded.id
            else:
                return None
            rejections = await self._reconcile()
        self._wake.set()  # reports may now be due sooner
        return rejections.get(event_id) if isinstance(event_id, str) else None

    # -- the one reconcile path ----------------------------------------------------------------------------

    async def _reconcile(self) -> dict[str, Rejection]:
        """Make the applied limits and stored prices what the known events say. Returns the rejections by
        event id (a callback answers with its event's)."""
        now = self._clock.now()
        sites = self._all_sites()
        desired: dict[str, Limit] = {}
        mapped: dict[str, Mapped] = {}
        safe_kw: dict[str, dict[str, float]] = {}
        rejections: dict[str, Rejection] = {}
        for event_id, event in self._events.items():
            first_seen = self._first_seen.setdefault(event_id, now)
            result = map_event(
                event,
                self._programs.get(event.program_id),
                sites,
                ven_name=self.settings.ven_name,
                first_seen=first_seen,
                delay_of=self._delay,
            )
            if isinstance(result, Rejection):
                version = iso_utc(event.modification_date_time) if event.modification_date_time else ""
                self._reject(result, f"{event_id}@{version}@{msgspec.json.encode(event).hex()[:64]}")
                rejections[event_id] = result
                continue
            mapped[event_id] = result
            if result.safe_mode_kw:
                safe_kw[event.program_id] = dict(result.safe_mode_kw)
                continue
            for limit in result.limits:
                desired[limit.ref] = limit
        self._mapped = mapped
        self._safe_kw = safe_kw
        for event_id in list(self._first_seen):
            if event_id not in self._events:
                del self._first_seen[event_id]

        live = {r for r in self._limits.external_refs(SOURCE) if not r.startswith(SAFE_MODE_REF)}
        for ref, limit in desired.items():
            if limit.end <= now:
                continue
            if self._applied.get(ref) == limit and ref in live:
                continue
            try:
                # A running interval starts now for the limit: what matters is what holds from here on.
                await self._limits.apply_external(
                    source=SOURCE,
                    ref=ref,
                    node=limit.site_id,
                    limit_kw=limit.limit_kw,
                    start=max(limit.start, now),
                    end=limit.end,
                )
            except AmpgateError as e:
                # The demand service refused it (the site was deleted meanwhile, a window it does not take):
                # the event is reported as not applied, the other limits go on.
                rejection = Rejection(
                    reason="not_applied",
                    field=e.field or "$",
                    message=f"limit {ref} on {limit.site_id}: {e.message}",
                    event_id=limit.event_id,
                    program_id=limit.program_id,
                )
                self._reject(rejection, f"{ref}@{limit.limit_kw}@{limit.start}@{limit.end}")
                rejections.setdefault(limit.event_id, rejection)
                continue
            self._applied[ref] = limit
        for ref in (live | set(self._applied)) - set(desired):
            if ref in live:
                await self._cancel(ref)
            self._applied.pop(ref, None)

        stored = self._prices.event_ids() if not self._price_sig else set(self._price_sig)
        for event_id, m in mapped.items():
            sig = tuple(m.prices)
            if not m.prices or self._price_sig.get(event_id) == sig:
                continue
            await self._prices.replace_event(event_id, m.prices)
            self._price_sig[event_id] = sig
        for event_id in stored - {e for e, m in mapped.items() if m.prices}:
            await self._prices.delete_event(event_id)
            self._price_sig.pop(event_id, None)
        return rejections

    def _delay(self, ref: str, most: timedelta) -> timedelta:
        """The randomizeStart delay of `ref`: uniform in [0, most], the same for the same seed and ref (a poll
        does not move a limit's start again, nor does a restart)."""
        rng = random.Random(f"{self._seed}/{ref}")
        return timedelta(seconds=rng.uniform(0.0, most.total_seconds()))

    def _reject(self, rejection: Rejection, version: str) -> None:
        key = (rejection.event_id, version)
        if key in self._rejected:
            return
        if len(self._rejected) >= MAX_REMEMBERED_REJECTIONS:
            self._rejected.pop(next(iter(self._rejected)))
        self._rejected[key] = None
        self.rejects += 1
        log.warning(
            "OpenADR: event %s of program %s not applied (%s at %s): %s",
            rejection.event_id,
            rejection.program_id,
            rejection.reason,
            rejection.field,
            rejection.message,
        )
        self._publish(
            OpenAdrEventRejected(
                at=self._clock.now(),
                reason=rejection.reason,
                field=rejection.field,
                message=rejection.message,
                event_id=rejection.event_id,
                program_id=rejection.program_id,
            )
        )

    # -- safe mode -----------------------------------------------------------------------------------------

    def safe_mode_limits(self) -> dict[str, float]:
        """kW per site in safe mode: the programs' safe-mode events (the lowest when several name a site), then
        `fallback_kw` for every other site."""
        out: dict[str, float] = {}
        for per_site in self._safe_kw.values():
            for site_id, kw in per_site.items():
                out[site_id] = min(kw, out.get(site_id, kw))
        if self.settings.fallback_kw is not None:
            for site in self._all_sites():
                out.setdefault(site.id, self.settings.fallback_kw)
        return out

    async def _hold_safe_mode(self, now: datetime) -> None:
        entering = self.safe_mode_since is None
        if entering:
            self.safe_mode_since = now
            log.warning(
                "OpenADR: VTN unreachable for more than %.0f s: safe mode", self.settings.safe_mode_timeout_s
            )
        assert self.safe_mode_since is not None
        for site_id, kw in self.safe_mode_limits().items():
            held = self._safe_applied.get(site_id)
            if held is not None and held[0] == kw and held[1] - now > SAFE_MODE_HOLD / 2:
                continue
            end = now + SAFE_MODE_HOLD
            try:
                # From now: a limit's window is at most the demand service's longest (an outage of days renews
                # it hour by hour), and what held before now needs no limit any more.
                await self._limits.apply_external(
                    source=SOURCE, ref=SAFE_MODE_REF + site_id, node=site_id, limit_kw=kw, start=now, end=end
                )
            except AmpgateError as e:
                # A site deleted meanwhile, a limit the service does not take: the other sites still get theirs.
                log.warning("OpenADR safe mode: no limit on %s: %s", site_id, e.message)
                continue
            self._safe_applied[site_id] = (kw, end)
        if entering:
            self._publish(OpenAdrSafeMode(at=now, active=True, sites=tuple(sorted(self._safe_applied))))

    async def _cancel(self, ref: str) -> None:
        """Cancel a limit we set; one that ended meanwhile (or a site deleted) is not the VEN's problem."""
        try:
            await self._limits.cancel_external(source=SOURCE, ref=ref)
        except AmpgateError as e:
            log.info("OpenADR: limit %s not cancelled: %s", ref, e.message)

    async def _leave_safe_mode(self) -> None:
        for ref in self._limits.external_refs(SOURCE):
            if ref.startswith(SAFE_MODE_REF):
                await self._cancel(ref)
        sites = tuple(sorted(self._safe_applied))
        self._safe_applied.clear()
        self.safe_mode_since = None
        log.info("OpenADR: the VTN answers again: safe mode lifted")
        self._publish(OpenAdrSafeMode(at=self._clock.now(), active=False, sites=sites))

    # -- reports -------------------------------------------------------------------------------------------

    def _reportable(self) -> list[Limit]:
        """Capacity intervals of mapped events not yet reported, with an end, that had not ended when the VEN
        first saw their event (of an interval over before that, the VEN applied nothing and knows nothing)."""
        never = self._clock.now()
        return [
            limit
            for m in self._mapped.values()
            for limit in m.limits
            if (limit.event_id, limit.interval_id) not in self._reported
            and limit.end - limit.nominal_start < FOREVER
            and limit.end > self._first_seen.get(limit.event_id, never)
        ]

    async def _send_reports(self, now: datetime) -> None:
        due: dict[tuple[str, int], list[Limit]] = {}
        for limit in self._reportable():
            if limit.end <= now:
                due.setdefault((limit.event_id, limit.interval_id), []).append(limit)
        for (event_id, interval_id), limits in sorted(due.items()):
            report = self._report(event_id, interval_id, limits)
            try:
                if report is not None:
                    # The answer (the report as stored) is not read: a 2xx is all the VEN needs, and VTNs
                    # differ in what they echo (a 3.1 VTN's stored report has another shape).
                    await self._vtn.request("POST", "/reports", body=report)
                    self.reports_sent += 1
            except VtnUnreachable as e:
                self._failed(f"VTN unreachable: {e}")
                return  # sent on a later tick
            except VtnRefused as e:
                log.warning("OpenADR: the VTN did not take the report of %s/%s: %s", event_id, interval_id, e)
            self._reported.add((event_id, interval_id))

    def _report(self, event_id: str, interval_id: int, limits: list[Limit]) -> Report | None:
        resources: list[ReportResource] = []
        for limit in sorted(limits, key=lambda lim: lim.site_id):
            payloads: list[ValuesMap] = []
            kw = self._readings.measured_kw(limit.site_id)
            if kw is not None:
                payloads.append(ValuesMap(type="DEMAND", values=[kw]))
            kwh = self._readings.energy_kwh(limit.site_id, limit.nominal_start, limit.end)
            if kwh is not None:
                payloads.append(ValuesMap(type="USAGE", values=[kwh]))
            if not payloads:
                continue
            seconds = int((limit.end - limit.nominal_start).total_seconds())
            resources.append(
                ReportResource(
                    resource_name=limit.site_id,
                    interval_period=IntervalPeriod(start=limit.nominal_start, duration=f"PT{seconds}S"),
                    intervals=[Interval(id=interval_id, payloads=payloads)],
                )
            )
        if not resources:
            log.info("OpenADR: nothing measured at the sites of %s/%s: no report", event_id, interval_id)
            return None
        return Report(
            program_id=limits[0].program_id,
            event_id=event_id,
            client_name=self.settings.ven_name,
            report_name=f"{event_id}/{interval_id}",
            payload_descriptors=[
                ReportPayloadDescriptor(payload_type="DEMAND", reading_type="DIRECT_READ", units="KW"),
                ReportPayloadDescriptor(payload_type="USAGE", reading_type="DIRECT_READ", units="KWH"),
            ],
            resources=resources,
        )

    async def aclose(self) -> None:
        """Close the HTTP client (`run` does so when it ends)."""
        await self._vtn.aclose()

    # -- status --------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What GET /api/v1/openadr shows."""
        return {
            "configured": True,
            "vtn_url": self._vtn.base,
            "ven_name": self.settings.ven_name,
            "ven_id": self.ven_id,
            "vtn_reachable": self.reachable,
            "last_poll_at": self.last_poll_at,
            "last_contact_at": self.last_ok_at,
            "last_error": self.last_error,
            "poll_interval_s": self.poll_period_s(),
            "safe_mode_active": self.safe_mode_since is not None,
            "safe_mode_since": self.safe_mode_since,
            "programs": len(self._programs),
            "resources": len(self._resources),
            "subscriptions": len(self._subscribed),
            "events_mapped": len(self._mapped),
            "limits_applied": len(self._applied),
            "rejects": self.rejects,
            "reports_sent": self.reports_sent,
            "tokens_fetched": self._vtn.tokens.fetched,
        }
