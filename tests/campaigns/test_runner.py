"""The campaign runner over a real Store, bus and command queue, with in-test images, selection, windows and
presence, and a scripted fleet behind the commander that answers and reports firmware statuses and boots as
chargers do. Time is trio's MockClock (the wall clock follows it)."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from ampgate.bus import EventBus
from ampgate.campaigns import charger, dispatch, tracker
from ampgate.campaigns import model as m
from ampgate.campaigns import runner as runner_module
from ampgate.campaigns.following import Follower
from ampgate.campaigns.repository import CampaignRepository
from ampgate.campaigns.runner import Actor, CampaignRunner
from ampgate.clock import Clock
from ampgate.commands import CommandQueue, CommandRepository
from ampgate.errors import ChargerCallError, ChargerOfflineError, ConflictError
from ampgate.events import (
    CampaignChargerChanged,
    ChargerBooted,
    ChargerConnected,
    CommandAnswered,
    CommandFailed,
    CommandQueued,
    FirmwareStatusReported,
)
from ampgate.ocpp import payloads
from ampgate.store import Store

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
OPERATOR = Actor(label="ops-laptop", role="operator")
# Real seconds of idleness before the MockClock jumps: longer than a commit of the store's writer thread takes,
# so virtual time does not pass while the runner waits for one.
AUTOJUMP = 0.005


class TrioClock(Clock):
    """The wall clock follows trio's (MockClock) time: T0 when `base` (trio's time at the start) was taken."""

    base = 0.0
    elapsed = 0.0  # carried over from an earlier trio.run (a restarted node's clock goes on)

    def wall(self) -> float:
        return T0.timestamp() + trio.current_time() - self.base


@dataclass(frozen=True)
class Image:
    id: int = 1
    version: str = "2.0"
    location: str = "https://cdn.example/fw-2.0.bin"
    signing_certificate: str | None = None
    signature: str | None = None
    signed_only: bool = False


class Images:
    def __init__(self, *images: Image) -> None:
        self.images = {i.id: i for i in images}

    def get(self, image_id: int) -> Image | None:
        return self.images.get(image_id)

    def matches(self, image: Any, booted_version: str | None) -> bool:
        return booted_version == image.version


@dataclass
class Charger:
    """A simulated charger: `behaviour` ok, fail (DownloadFailed), mismatch (Installed, boots the old version),
    noreboot (2.0.1: Installing → Installed, no boot), silent (accepts, then says nothing). A 2.0.1 charger that
    is ok reboots the way 2.0.1 orders it: InstallRebooting, BootNotification, then Installed."""

    id: str
    protocol: str = "ocpp2.0.1"
    version: str = "1.0"
    behaviour: str = "ok"
    signed: bool | None = None  # 1.6 security extension (None: not said)
    site_id: str | None = None
    vendor: str = "V"
    model: str = "M"
    online: bool = True
    deliverable: bool = True  # False: online as presence says, but every send finds it gone (stays queued)
    last_seen_at: float | None = None
    charging: bool = False
    updates: list[tuple[str, Any]] = field(default_factory=list)
    walked: bool = False  # it reported its update to the end
    triggers: list[str] = field(default_factory=list)
    trigger_actions: list[str] = field(default_factory=list)

    @property
    def firmware_version(self) -> str:
        return self.version


class Fleet:
    """The ports the runner reads (selection, presence, activity, signed support, windows) and the commander the
    queue sends through, answering as the chargers would and publishing what the node's handlers publish."""

    def __init__(self, bus: EventBus, clock: Clock) -> None:
        self.bus = bus
        self.clock = clock
        self.chargers: dict[str, Charger] = {}
        self.windows: dict[str, list[tuple[datetime, datetime]]] = {}
        self.nursery: trio.Nursery | None = None
        self.ids = 0

    def add(self, *chargers: Charger) -> None:
        for c in chargers:
            self.chargers[c.id] = c

    # selection
    def select_chargers(self, selector: m.Selector, limit: int, after: str | None) -> list[Charger]:
        out = [
            c
            for c in sorted(self.chargers.values(), key=lambda c: c.id)
            if (after is None or c.id > after)
            and (selector.vendor is None or c.vendor == selector.vendor)
            and (selector.charger_ids is None or c.id in selector.charger_ids)
        ]
        return out[:limit]

    # presence / activity / signed
    def get(self, charger_id: str) -> Charger | None:
        return self.chargers.get(charger_id)

    def in_transaction(self, charger_id: str) -> bool:
        return self.chargers[charger_id].charging

    def supports_signed_updates(self, charger_id: str) -> bool | None:
        return self.chargers[charger_id].signed

    # windows
    def window_at(self, site_id: str, when: datetime) -> tuple[datetime, datetime] | None:
        return next(((a, b) for a, b in self.windows.get(site_id, []) if a <= when < b), None)

    def has_windows(self, site_id: str) -> bool:
        return bool(self.windows.get(site_id))

    # commander (what the command queue sends through)
    def check(self, charger_id: str, action: str, payload: Any) -> str:
        c = self.chargers[charger_id]
        if not c.online or not c.deliverable:
            raise ChargerOfflineError(f"{charger_id} is not connected")
        payloads.validate_request(c.protocol, action, payload)
        return c.protocol

    async def call(
        self, charger_id: str, action: str, payload: Any, *, command_id=None, on_enqueued=None
    ) -> Any:
        c = self.chargers[charger_id]
        self.check(charger_id, action, payload)
        self.ids += 1
        await trio.lowlevel.checkpoint()
        if action in ("TriggerMessage", "ExtendedTriggerMessage"):
            c.triggers.append(payload["requestedMessage"])
            c.trigger_actions.append(action)
            if c.updates and not c.walked and c.behaviour != "silent":
                # It was updating when its reports stopped reaching the node (the node was down): asked, it
                # goes on reporting.
                assert self.nursery is not None
                last_action, last = c.updates[-1]
                self.nursery.start_soon(self._walk, c, last_action, last.get("requestId"))
            return self._answer(charger_id, action, {"status": "Accepted"}, command_id)
        c.updates.append((action, payload))
        if action == "SignedUpdateFirmware" and c.signed is not True:
            self.bus.publish(
                CommandFailed(
                    at=self.clock.now(),
                    charger_id=charger_id,
                    unique_id=f"u{self.ids}",
                    action=action,
                    code="charger_error",
                    message="NotSupported",
                    ocpp_code="NotSupported",
                    command_id=command_id,
                )
            )
            raise ChargerCallError("NotSupported", ocpp_code="NotSupported")
        reply: dict[str, Any] = (
            {} if action == "UpdateFirmware" and c.protocol == "ocpp1.6" else {"status": "Accepted"}
        )
        assert self.nursery is not None
        self.nursery.start_soon(self._walk, c, action, payload.get("requestId"))
        return self._answer(charger_id, action, reply, command_id)

    def _answer(self, charger_id: str, action: str, reply: Any, command_id: str | None) -> Any:
        self.bus.publish(
            CommandAnswered(
                at=self.clock.now(),
                charger_id=charger_id,
                unique_id=f"u{self.ids}",
                action=action,
                status=reply.get("status"),
                command_id=command_id,
            )
        )
        return reply

    async def _walk(self, c: Charger, action: str, request_id: int | None) -> None:
        signed = action == "SignedUpdateFirmware"
        rid = request_id if (signed or c.protocol == "ocpp2.0.1") else None
        if c.behaviour == "silent":
            return
        v201 = c.protocol == "ocpp2.0.1"
        if c.behaviour == "fail":
            steps = ["Downloading", "DownloadFailed"]
        elif v201 and c.behaviour == "ok":
            steps = ["Downloading", "Downloaded", "Installing", "InstallRebooting"]
        else:
            steps = ["Downloading", "Downloaded", "Installing", "Installed"]
        for s in steps:
            await trio.sleep(10)
            self._status(c, s, rid, signed)
        if c.behaviour in ("fail", "noreboot"):
            c.walked = True
            return
        await trio.sleep(30)
        if c.behaviour == "ok":
            c.version = "2.0"
        c.walked = True
        self.bus.publish(
            ChargerBooted(
                at=self.clock.now(),
                charger_id=c.id,
                protocol=c.protocol,
                vendor=c.vendor,
                model=c.model,
                serial=None,
                firmware_version=c.version,
                boot_status="Accepted",
            )
        )
        if v201 and c.behaviour == "ok":
            await trio.sleep(5)
            self._status(c, "Installed", rid, signed)  # 2.0.1 reports Installed after its reboot

    def _status(self, c: Charger, status: str, rid: int | None, signed: bool) -> None:
        self.bus.publish(
            FirmwareStatusReported(
                at=self.clock.now(), charger_id=c.id, status=status, request_id=rid, signed=signed
            )
        )


class SlowQueue(CommandQueue):
    """The command queue, taking `delay` virtual seconds to queue each update (as a slow disk would)."""

    delay = 0.0

    async def enqueue(self, *args: Any, **kwargs: Any) -> Any:
        if self.delay and kwargs.get("command_id") is not None:  # a campaign's update, not a trigger
            await trio.sleep(self.delay)
        return await super().enqueue(*args, **kwargs)

    async def enqueue_many(self, requests: Any) -> Any:
        if self.delay and any(r.command_id is not None for r in requests):
            await trio.sleep(self.delay * len(requests))
        return await super().enqueue_many(requests)


class World:
    queue: SlowQueue
    repo: CampaignRepository

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = TrioClock()
        self.bus = EventBus()
        self.fleet = Fleet(self.bus, self.clock)
        self.images = Images(
            Image(),
            Image(id=2, signature="U0lH", signing_certificate="PEM"),
            Image(id=3, signature="U0lH", signing_certificate="PEM", signed_only=True),
        )

    def build(self, store: Store) -> tuple[CampaignRunner, CommandQueue]:
        queue = SlowQueue(
            CommandRepository(store),
            self.fleet,
            self.fleet,
            self.fleet,
            payloads.validate_request,
            self.bus,
            self.clock,
        )
        self.repo = CampaignRepository(store)
        runner = CampaignRunner(
            self.repo,
            self.images,
            self.fleet,
            self.fleet,
            self.fleet,
            self.fleet,
            self.fleet,
            queue,
            self.bus,
            self.clock,
        )
        return runner, queue


def run(
    path: Path,
    body: Callable[[World, CampaignRunner], Awaitable[None]],
    world: World | None = None,
) -> World:
    """Run `body` with the store, the command queue and the runner started, under MockClock. The clock jumps
    once the loop has been idle for AUTOJUMP real seconds, not at once: while the store's writer thread commits
    (real time), the virtual clock must not run ahead of the runner."""
    w = world or World(path)

    async def main() -> None:
        w.clock.base = trio.current_time() - w.clock.elapsed
        store = Store(str(path), now=w.clock.now)
        async with trio.open_nursery() as nursery:
            w.fleet.nursery = nursery
            await nursery.start(store.run)
            runner, queue = w.build(store)
            w.queue = queue
            await nursery.start(queue.run)
            await nursery.start(runner.run)
            await body(w, runner)
            w.clock.elapsed = trio.current_time() - w.clock.base
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=AUTOJUMP))
    return w


def spec(**over: Any) -> m.CampaignSpec:
    body: dict[str, Any] = {"image_id": 1, "selector": {"vendor": "V"}, "groups": [{"percent": 100}]}
    body.update(over)
    return msgspec.convert(body, m.CampaignSpec)


async def advance(seconds: float) -> None:
    """Let `seconds` of virtual time pass a second at a time: the autojumping clock must not leap over the
    store's writer thread (real time) in one go."""
    for _ in range(int(seconds)):
        await trio.sleep(1)


async def until(
    runner: CampaignRunner, campaign_id: int, states: tuple[str, ...], limit: float = 4 * 3600
) -> None:
    with trio.fail_after(limit):
        while runner.summary(campaign_id).campaign.state not in states:  # noqa: ASYNC110 (polls the tables)
            await trio.sleep(1)
    await trio.sleep(1)  # let the fire-and-forget writes commit


def test_a_small_campaign_over_both_versions_with_fallback_and_mismatch(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(
        Charger("A201", protocol="ocpp2.0.1"),
        Charger("B16", protocol="ocpp1.6"),
        Charger("C16signed", protocol="ocpp1.6", signed=True),
        Charger(
            "D16fallback", protocol="ocpp1.6"
        ),  # unknown: tried signed first, NotSupported, then unsigned
        Charger("E201mismatch", behaviour="mismatch"),
        Charger("F201done", version="2.0"),
        Charger("G201fail", behaviour="fail"),
    )

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(image_id=2, success_threshold_pct=50))
        assert row.state == "draft"
        await runner.verb(row.id, "start", OPERATOR)
        await until(runner, row.id, ("finished", "paused"))
        await advance(60)  # E201mismatch's rollback boot may come after the campaign finished
        s = runner.summary(row.id)
        assert s.campaign.state == "finished"
        assert {k: v for k, v in s.counts.items() if v} == {"installed": 4, "failed": 2, "skipped": 1}
        by_id = {r.charger_id: r for r in runner.chargers(row.id, None, 100, None)}
        assert by_id["E201mismatch"].reason == "version_mismatch"
        assert by_id["G201fail"].reason == "DownloadFailed"
        assert by_id["F201done"].reason == "already_installed"
        f = w.fleet.chargers
        assert [a for a, _ in f["D16fallback"].updates] == ["SignedUpdateFirmware", "UpdateFirmware"]
        assert [a for a, _ in f["C16signed"].updates] == ["SignedUpdateFirmware"]
        assert f["C16signed"].updates[0][1]["firmware"]["signature"] == "U0lH"
        assert [a for a, _ in f["A201"].updates] == ["UpdateFirmware"]
        assert "requestId" in f["A201"].updates[0][1]
        assert f["B16"].updates == [
            ("SignedUpdateFirmware", f["B16"].updates[0][1]),
            ("UpdateFirmware", f["B16"].updates[1][1]),
        ]
        assert set(f["B16"].updates[1][1]) == {"location", "retrieveDate"}
        assert [e.event for e in by_id["A201"].timeline][-1].startswith("boot 2.0")

    run(tmp_path / "c.db", body, w)


def test_a_signed_only_image_never_falls_back(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(Charger("A", protocol="ocpp1.6"), Charger("B", protocol="ocpp1.6", signed=False))

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(image_id=3, success_threshold_pct=0))
        await runner.verb(row.id, "start", OPERATOR)
        await until(runner, row.id, ("finished",))
        rows = {r.charger_id: r for r in runner.chargers(row.id, None, 10, None)}
        assert rows["A"].reason == "signed_only_unsupported" and rows["B"].reason == "signed_only_unsupported"
        assert [a for a, _ in w.fleet.chargers["A"].updates] == ["SignedUpdateFirmware"]
        assert w.fleet.chargers["B"].updates == []

    run(tmp_path / "c.db", body, w)


def test_canary_failures_pause_before_group_1_and_resume_goes_on(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:02}", behaviour="fail" if i < 2 else "ok") for i in range(20)])

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(
            spec(
                canary={"count": 4},
                groups=[{"percent": 50}, {"percent": 50}],
                error_threshold_pct=25,
                error_min_finished=2,
                max_in_flight=2,
            )
        )
        await runner.verb(row.id, "start", OPERATOR)
        await until(runner, row.id, ("paused",))
        s = runner.summary(row.id)
        assert s.campaign.paused_reason is not None and s.campaign.paused_reason.startswith("error condition")
        assert [g.kind for g in s.groups] == ["canary", "group", "group"]
        assert sum(s.groups[1].counts.values()) == s.groups[1].counts["pending"] == 10
        dispatched = sum(1 for c in w.fleet.chargers.values() if c.updates)
        await advance(600)
        assert (
            sum(1 for c in w.fleet.chargers.values() if c.updates) == dispatched
        )  # nothing more while paused
        assert all(not w.fleet.chargers[f"CP{i:02}"].updates for i in range(4, 20))
        again = await runner.verb(row.id, "pause", OPERATOR, "looking")
        assert again.state == "paused" and again.paused_reason == s.campaign.paused_reason  # idempotent
        await runner.verb(row.id, "resume", OPERATOR, "known bad batch")
        await until(runner, row.id, ("finished",))
        s = runner.summary(row.id)
        assert (s.counts["installed"], s.counts["failed"]) == (18, 2)
        audit = runner.audit(row.id)
        assert [(a.verb, a.changed, a.actor) for a in audit] == [
            ("start", True, "ops-laptop"),
            ("pause", False, "ops-laptop"),
            ("resume", True, "ops-laptop"),
        ]
        with pytest.raises(ConflictError):
            await runner.verb(row.id, "pause", OPERATOR)

    run(tmp_path / "c.db", body, w)


def test_a_silent_charger_is_asked_then_times_out_and_retry_failed_sends_again(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(Charger("S", behaviour="silent"), Charger("S16", protocol="ocpp1.6", behaviour="silent"))

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(status_timeout_s=600, success_threshold_pct=0))
        await runner.verb(row.id, "start", OPERATOR)
        await until(runner, row.id, ("finished",))
        assert runner.summary(row.id).counts["timed_out"] == 2
        assert w.fleet.chargers["S"].triggers == ["FirmwareStatusNotification"]
        assert w.fleet.chargers["S16"].triggers == ["FirmwareStatusNotification"]
        assert w.fleet.chargers["S16"].trigger_actions == ["TriggerMessage"]
        w.fleet.chargers["S"].behaviour = "ok"
        w.fleet.chargers["S16"].behaviour = "ok"
        await runner.verb(row.id, "retry-failed", OPERATOR)
        await until(runner, row.id, ("finished",))
        assert runner.summary(row.id).counts["installed"] == 2
        assert len(w.fleet.chargers["S"].updates) == 2
        first, second = (p["requestId"] for _, p in w.fleet.chargers["S"].updates)
        assert second > first

    run(tmp_path / "c.db", body, w)


def test_a_silent_signed_1_6_update_is_asked_with_extended_trigger_message(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(Charger("SEC", protocol="ocpp1.6", signed=True, behaviour="silent"))

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(image_id=2, status_timeout_s=600, success_threshold_pct=0))
        await runner.verb(row.id, "start", OPERATOR)
        await until(runner, row.id, ("finished",))
        c = w.fleet.chargers["SEC"]
        assert [a for a, _ in c.updates] == ["SignedUpdateFirmware"]
        assert (c.trigger_actions, c.triggers) == (
            ["ExtendedTriggerMessage"],
            ["FirmwareStatusNotification"],
        )
        assert runner.summary(row.id).counts["timed_out"] == 1

    run(tmp_path / "c.db", body, w)


def test_dispatch_waits_for_the_maintenance_window_and_an_idle_charger(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(
        Charger("W", site_id="s1"), Charger("X", site_id="s2", charging=True), Charger("Y", site_id="s1")
    )
    opens = T0 + timedelta(minutes=5)
    closes = opens + timedelta(minutes=10)
    w.fleet.windows["s1"] = [(opens, closes)]

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec())
        await runner.verb(row.id, "start", OPERATOR)
        await advance(4 * 60)
        assert not w.fleet.chargers["W"].updates and not w.fleet.chargers["X"].updates
        await advance(8 * 60)
        for cid in ("W", "Y"):
            ((_action, payload),) = w.fleet.chargers[cid].updates
            retrieve = datetime.fromisoformat(payload["firmware"]["retrieveDateTime"])
            install = datetime.fromisoformat(payload["firmware"]["installDateTime"])
            assert opens <= retrieve < closes and opens <= install < closes
        assert not w.fleet.chargers["X"].updates  # charging: not interrupted
        w.fleet.chargers["X"].charging = False  # its site has no windows: it goes once idle
        await until(runner, row.id, ("finished",))
        assert runner.summary(row.id).counts["installed"] == 3

    run(tmp_path / "c.db", body, w)


def test_a_window_that_closes_during_a_dispatch_pass_stops_it_and_every_sent_time_is_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "DISPATCH_BATCH", 4)  # 10 batches of 8 s: the window fits about 7
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:02}", site_id="s1", behaviour="silent") for i in range(40)])
    opens = T0 + timedelta(minutes=5)
    closes = opens + timedelta(seconds=60)
    w.fleet.windows["s1"] = [(opens, closes)]

    async def body(w: World, runner: CampaignRunner) -> None:
        w.queue.delay = 2.0  # each update takes 2 s to queue: the 60-s window fits about 30 of the 40
        row = await runner.create(spec(status_timeout_s=7200))
        await runner.verb(row.id, "start", OPERATOR)
        await advance(8 * 60)
        sent = [c.updates[0][1]["firmware"] for c in w.fleet.chargers.values() if c.updates]
        assert 20 <= len(sent) < 40
        for firmware in sent:
            assert opens <= datetime.fromisoformat(firmware["retrieveDateTime"]) < closes
            assert opens <= datetime.fromisoformat(firmware["installDateTime"]) < closes
        assert runner.summary(row.id).counts["pending"] == 40 - len(sent)  # the rest wait for the next window

    run(tmp_path / "c.db", body, w)


def test_a_restart_mid_campaign_resumes_without_dispatching_twice(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:02}") for i in range(12)])
    ids: list[int] = []

    async def first(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(
            spec(max_in_flight=3, groups=[{"count": 6}, {"count": 6}], status_timeout_s=300)
        )
        ids.append(row.id)
        await runner.verb(row.id, "start", OPERATOR)
        with trio.fail_after(3600):  # stop the node with three updates in flight
            while sum(1 for c in w.fleet.chargers.values() if c.updates) < 3:  # noqa: ASYNC110
                await trio.sleep(1)

    run(tmp_path / "c.db", first, w)
    started = sum(1 for c in w.fleet.chargers.values() if c.updates)
    assert 0 < started < 12

    async def second(w: World, runner: CampaignRunner) -> None:
        await until(runner, ids[0], ("finished",))
        assert runner.summary(ids[0]).counts["installed"] == 12

    run(tmp_path / "c.db", second, w)
    assert all(len(c.updates) == 1 for c in w.fleet.chargers.values())


def test_the_concurrency_cap_and_the_rate_bound_dispatch(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:02}") for i in range(30)])
    in_flight_seen: list[int] = []

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(max_in_flight=4, dispatch_per_minute=12))
        await runner.verb(row.id, "start", OPERATOR)
        while runner.summary(row.id).campaign.state != "finished":
            await trio.sleep(1)
            c = runner.summary(row.id).counts
            in_flight_seen.append(
                sum(c[s] for s in ("dispatched", "downloading", "downloaded", "installing"))
            )

    run(tmp_path / "c.db", body, w)
    assert max(in_flight_seen) == 4
    # When each was sent (its retrieveDateTime is the dispatch time): at most 12 a minute plus the bucket's 2.
    sent = sorted(
        datetime.fromisoformat(c.updates[0][1]["firmware"]["retrieveDateTime"])
        for c in w.fleet.chargers.values()
    )
    assert len(sent) == 30
    for i, at in enumerate(sent):
        assert sum(1 for t in sent[i:] if t < at + timedelta(minutes=1)) <= 14
    assert sent[-1] - sent[0] >= timedelta(minutes=2)


def test_offline_past_the_timeout_is_skipped_and_a_manual_update_supersedes(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(
        Charger("AWAY", online=False, last_seen_at=None), Charger("M", behaviour="silent"), Charger("OK")
    )

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(offline_timeout_s=600, success_threshold_pct=0))
        await runner.verb(row.id, "start", OPERATOR)
        with trio.fail_after(60):
            while not w.fleet.chargers["M"].updates:  # noqa: ASYNC110
                await trio.sleep(1)
        # An operator's own UpdateFirmware to M while ours is in flight (the API's command path publishes this).
        w.bus.publish(
            CommandAnswered(
                at=w.clock.now(),
                charger_id="M",
                unique_id="op-1",
                action="UpdateFirmware",
                status="Accepted",
                command_id="operator-command",
            )
        )
        await until(runner, row.id, ("finished",))
        rows = {r.charger_id: r for r in runner.chargers(row.id, None, 10, None)}
        assert (rows["AWAY"].state, rows["AWAY"].reason) == ("skipped", "skipped_offline")
        assert (rows["M"].state, rows["M"].reason) == ("superseded", "manual_update")
        assert rows["OK"].state == "installed"
        assert w.fleet.chargers["AWAY"].updates == []

    run(tmp_path / "c.db", body, w)


def test_a_dynamic_campaign_takes_a_charger_that_boots_later_with_the_old_version(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(Charger("FIRST"))

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(dynamic=True))
        await runner.verb(row.id, "start", OPERATOR)
        with trio.fail_after(3600):
            while runner.summary(row.id).counts["installed"] < 1:  # noqa: ASYNC110
                await trio.sleep(1)
        assert runner.summary(row.id).campaign.state == "running"  # dynamic: it stays open
        late = Charger("LATE")
        w.fleet.add(late)
        w.bus.publish(
            ChargerBooted(
                at=w.clock.now(),
                charger_id="LATE",
                protocol=late.protocol,
                vendor="V",
                model="M",
                serial=None,
                firmware_version="1.0",
                boot_status="Accepted",
            )
        )
        with trio.fail_after(3600):
            while runner.summary(row.id).counts["installed"] < 2:  # noqa: ASYNC110
                await trio.sleep(1)
        s = runner.summary(row.id)
        assert [g.kind for g in s.groups] == ["group", "dynamic"]
        assert s.groups[1].counts["installed"] == 1
        assert len(late.updates) == 1

    run(tmp_path / "c.db", body, w)


def test_resume_after_a_group_below_its_threshold_keeps_the_next_groups_conditions(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:02}", behaviour="fail" if i in (0, 4, 5) else "ok") for i in range(8)])

    async def body(w: World, runner: CampaignRunner) -> None:
        # Group 0 (CP00-03): 1 of 4 fails, below 100%: paused once it is done. Group 1 (CP04-07): 2 of 4 fail,
        # which its own error condition (2 errors) catches after the resume.
        row = await runner.create(
            spec(groups=[{"count": 4}, {"count": 4}], error_threshold_count=2, max_in_flight=1)
        )
        await runner.verb(row.id, "start", OPERATOR)
        await until(runner, row.id, ("paused",))
        s = runner.summary(row.id)
        assert s.campaign.paused_reason == "group 0 finished below its success threshold"
        await runner.verb(row.id, "resume", OPERATOR)
        await until(runner, row.id, ("paused", "finished"))
        s = runner.summary(row.id)
        assert s.campaign.paused_reason is not None and s.campaign.paused_reason.startswith(
            "error condition: group 1"
        )
        assert not s.groups[1].overridden

    run(tmp_path / "c.db", body, w)


def test_two_starts_at_once_freeze_the_selection_once(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:02}") for i in range(5)])

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec())
        async with trio.open_nursery() as n:
            for _ in range(2):
                n.start_soon(runner.verb, row.id, "start", OPERATOR)
        s = runner.summary(row.id)
        assert sum(s.counts.values()) == 5 and len(s.groups) == 1
        assert [a.changed for a in runner.audit(row.id)] == [True, False]

    run(tmp_path / "c.db", body, w)


def test_a_2_0_1_charger_installed_without_a_reboot_is_installed_and_never_asked_for_a_boot(
    tmp_path: Path,
) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(
        Charger("NR", behaviour="noreboot"), Charger("NR16", protocol="ocpp1.6", behaviour="noreboot")
    )

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(status_timeout_s=300, success_threshold_pct=0))
        await runner.verb(row.id, "start", OPERATOR)
        with trio.fail_after(3600):
            while runner.summary(row.id).counts["installed"] < 1:  # noqa: ASYNC110
                await trio.sleep(1)
        await until(runner, row.id, ("finished",))
        rows = {r.charger_id: r for r in runner.chargers(row.id, None, 10, None)}
        assert (rows["NR"].state, rows["NR"].progress.last_status) == ("installed", "Installed")
        assert w.fleet.chargers["NR"].triggers == []  # no TriggerMessage(BootNotification): 2.0.1 rejects it
        # A 1.6 charger that never boots after Installed is asked for the boot (1.6 allows it), then times out.
        assert w.fleet.chargers["NR16"].triggers == ["BootNotification"]
        assert (rows["NR16"].state, rows["NR16"].reason) == ("timed_out", "silent after TriggerMessage")

    run(tmp_path / "c.db", body, w)


def test_a_2_0_1_rollback_soon_after_installed_is_a_version_mismatch_also_after_a_restart(
    tmp_path: Path,
) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(Charger("RB1", behaviour="noreboot"), Charger("RB2", behaviour="noreboot"))
    ids: list[int] = []

    def boot(charger_id: str, version: str) -> None:
        w.bus.publish(
            ChargerBooted(
                at=w.clock.now(),
                charger_id=charger_id,
                protocol="ocpp2.0.1",
                vendor="V",
                model="M",
                serial=None,
                firmware_version=version,
                boot_status="Accepted",
            )
        )

    async def first(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(status_timeout_s=300, success_threshold_pct=0))
        ids.append(row.id)
        await runner.verb(row.id, "start", OPERATOR)
        await until(runner, row.id, ("finished",))
        assert runner.summary(row.id).counts["installed"] == 2

    run(tmp_path / "c.db", first, w)

    async def second(w: World, runner: CampaignRunner) -> None:
        boot("RB1", "1.0")  # rolled back within the watch, after the node restarted: a version mismatch
        await advance(2)
        s = runner.summary(ids[0])
        assert (s.campaign.state, s.counts["installed"], s.counts["failed"]) == ("finished", 1, 1)
        rows = {r.charger_id: r for r in runner.chargers(ids[0], None, 10, None)}
        assert (rows["RB1"].state, rows["RB1"].reason) == ("failed", "version_mismatch")
        assert rows["RB1"].timeline[-1].event == "boot 1.0"
        await advance(300)  # RB2's watch is over: a boot now is not about this update
        boot("RB2", "1.0")
        await advance(2)
        assert runner.summary(ids[0]).counts["installed"] == 1
        assert runner.chargers(ids[0], "installed", 10, None)[0].charger_id == "RB2"

    run(tmp_path / "c.db", second, w)


def in_flight(runner: CampaignRunner, campaign_id: int) -> int:
    c = runner.summary(campaign_id).counts
    return sum(c[s] for s in ("dispatched", "downloading", "downloaded", "installing"))


def test_a_paused_campaign_keeps_following_its_updates_in_flight_and_sends_nothing_new(
    tmp_path: Path,
) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(Charger("A_OK"), Charger("A_SILENT", behaviour="silent"), Charger("B"), Charger("C"))

    async def body(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(max_in_flight=2, status_timeout_s=300))
        await runner.verb(row.id, "start", OPERATOR)
        with trio.fail_after(60):
            while in_flight(runner, row.id) < 2:  # noqa: ASYNC110
                await trio.sleep(1)
        await runner.verb(row.id, "pause", OPERATOR, "watching the first two")
        await advance(700)
        s = runner.summary(row.id)
        assert s.campaign.state == "paused"
        # The update already sent goes on: its statuses and boot are recorded, and silence is asked about and
        # then times out, as while running.
        assert (s.counts["installed"], s.counts["timed_out"], s.counts["pending"]) == (1, 1, 2)
        assert w.fleet.chargers["A_SILENT"].triggers == ["FirmwareStatusNotification"]
        assert not w.fleet.chargers["B"].updates and not w.fleet.chargers["C"].updates  # nothing new sent
        await runner.verb(row.id, "resume", OPERATOR)  # the error condition is off: the group goes on
        await until(runner, row.id, ("finished", "paused"))
        assert runner.summary(row.id).counts["installed"] == 3

    run(tmp_path / "c.db", body, w)


def queued_command(runner: CampaignRunner, w: World, campaign_id: int) -> bool:
    rows = [r for r in runner.chargers(campaign_id, None, 10, None) if r.charger_id == "B_QUEUED"]
    return bool(rows) and rows[0].command_id is not None and w.queue.get(rows[0].command_id) is not None


def test_cancel_skips_what_was_not_sent_and_follows_what_was_also_after_a_restart(tmp_path: Path) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(
        Charger("A_OK"),
        Charger("A_SILENT", behaviour="silent"),
        Charger("B_QUEUED", deliverable=False),  # dispatched, its command waits in the queue
        Charger("C_PEND"),
        Charger("D_PEND"),
    )
    ids: list[int] = []

    async def first(w: World, runner: CampaignRunner) -> None:
        row = await runner.create(spec(max_in_flight=3, status_timeout_s=300))
        ids.append(row.id)
        await runner.verb(row.id, "start", OPERATOR)
        with trio.fail_after(60):
            # The dispatches commit before their commands' records (a second write): wait for both.
            while in_flight(runner, row.id) < 3 or not queued_command(runner, w, row.id):  # noqa: ASYNC110
                await trio.sleep(1)
        (queued,) = [r for r in runner.chargers(row.id, None, 10, None) if r.charger_id == "B_QUEUED"]
        assert queued.command_id is not None
        cmd = w.queue.get(queued.command_id)
        assert cmd is not None and cmd.state == "queued"
        after = await runner.verb(row.id, "cancel", OPERATOR, "bad batch")
        assert after.state == "cancelled"
        await trio.sleep(0.1)
        rows = {r.charger_id: r for r in runner.chargers(row.id, None, 10, None)}
        for cid in ("B_QUEUED", "C_PEND", "D_PEND"):
            assert (rows[cid].state, rows[cid].reason) == ("skipped", "cancelled"), cid
        cmd = w.queue.get(queued.command_id)
        assert cmd is not None and cmd.state == "cancelled"
        assert not w.fleet.chargers["B_QUEUED"].updates
        assert rows["A_OK"].state in ("dispatched", "downloading") and rows["A_SILENT"].state == "dispatched"
        # Its chargers in flight are still in it for other campaigns; the ones it let go are free.
        assert w.repo.uses(1)  # its image, which chargers still download, cannot be deleted
        other = await runner.create(spec(image_id=2, selector={"charger_ids": ["A_SILENT", "C_PEND"]}))
        ids.append(other.id)
        await runner.verb(other.id, "start", OPERATOR)
        theirs = {r.charger_id: r for r in runner.chargers(other.id, None, 10, None)}
        assert (theirs["A_SILENT"].state, theirs["A_SILENT"].reason) == ("skipped", f"in_campaign:{row.id}")
        assert theirs["C_PEND"].state != "skipped"
        # The counts of the cancelled campaign keep moving with what its sent updates report.
        with trio.fail_after(3600):
            while runner.summary(row.id).counts["installed"] < 1:  # noqa: ASYNC110
                await trio.sleep(1)
        s = runner.summary(row.id)
        assert s.campaign.state == "cancelled"
        assert {k: v for k, v in s.counts.items() if v} == {"installed": 1, "dispatched": 1, "skipped": 3}
        assert w.fleet.chargers["A_SILENT"].triggers == []  # the node stops before its status timeout

    run(tmp_path / "c.db", first, w)

    async def second(w: World, runner: CampaignRunner) -> None:
        # Reloaded after the restart: the silent one is asked, then times out, in the cancelled campaign.
        with trio.fail_after(3600):
            while runner.summary(ids[0]).counts["timed_out"] < 1:  # noqa: ASYNC110
                await trio.sleep(1)
        s = runner.summary(ids[0])
        assert s.campaign.state == "cancelled"
        assert {k: v for k, v in s.counts.items() if v} == {"installed": 1, "timed_out": 1, "skipped": 3}
        assert w.fleet.chargers["A_SILENT"].triggers == ["FirmwareStatusNotification"]
        assert [a.verb for a in runner.audit(ids[0])] == ["start", "cancel"]
        await until(runner, ids[1], ("finished",))
        assert not w.repo.uses(1)  # nothing of the cancelled campaign in flight any more

    run(tmp_path / "c.db", second, w)


def test_a_dispatch_step_records_its_updates_in_one_write_of_transitions_and_one_of_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:02}", behaviour="silent") for i in range(30)])
    transitions: list[int] = []
    singles: list[str] = []
    batch = CampaignRepository.transitions
    single = CampaignRepository.transition

    async def counted(self: CampaignRepository, ts: Any) -> Any:
        transitions.append(len(ts))
        return await batch(self, ts)

    async def counted_single(self: CampaignRepository, t: Any) -> Any:
        singles.append(t.charger_id)
        return await single(self, t)

    monkeypatch.setattr(CampaignRepository, "transitions", counted)
    monkeypatch.setattr(CampaignRepository, "transition", counted_single)
    queued: list[int] = []

    async def body(w: World, runner: CampaignRunner) -> None:
        many = w.queue.enqueue_many

        async def enqueue_many(requests: Any) -> Any:
            queued.append(len(requests))
            return await many(requests)

        w.queue.enqueue_many = enqueue_many  # type: ignore[method-assign]
        row = await runner.create(spec(max_in_flight=30, status_timeout_s=7200))
        await runner.verb(row.id, "start", OPERATOR)
        await advance(5)
        assert sum(1 for c in w.fleet.chargers.values() if c.updates) == 30
        assert (transitions, queued, singles) == ([30], [30], [])  # two commits for the 30, not 60

    run(tmp_path / "c.db", body, w)


def test_pause_is_answered_after_one_dispatch_batch_not_after_the_whole_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "DISPATCH_BATCH", 4)
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:02}", behaviour="silent") for i in range(40)])

    async def body(w: World, runner: CampaignRunner) -> None:
        w.queue.delay = 2.0  # a batch of 4 takes 8 s to queue; the 40 take 80 s
        row = await runner.create(spec(max_in_flight=40, status_timeout_s=7200))
        await runner.verb(row.id, "start", OPERATOR)
        await advance(10)
        asked = trio.current_time()
        await runner.verb(row.id, "pause", OPERATOR)
        assert trio.current_time() - asked <= 8 + 1  # behind one batch at most
        await advance(120)
        assert runner.summary(row.id).campaign.state == "paused"
        sent = sum(1 for c in w.fleet.chargers.values() if c.updates)
        assert 4 <= sent <= 16  # what was picked before the pause went; nothing after
        assert runner.summary(row.id).counts["pending"] == 40 - sent

    run(tmp_path / "c.db", body, w)


def test_start_on_a_large_selection_lets_other_tasks_run_between_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "SELECT_PAGE", 50)
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:04}", site_id="s1") for i in range(400)])
    w.fleet.windows["s1"] = [(T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))]  # nothing goes yet
    turns = [0]
    seen: list[tuple[str, int]] = []
    select = w.fleet.select_chargers

    def selecting(selector: m.Selector, limit: int, after: str | None) -> list[Charger]:
        seen.append(("select", turns[0]))
        return select(selector, limit, after)

    w.fleet.select_chargers = selecting  # type: ignore[method-assign]

    async def other_task() -> None:
        while True:
            turns[0] += 1
            await trio.lowlevel.checkpoint()

    async def body(w: World, runner: CampaignRunner) -> None:
        page = w.repo.unfinished_page

        def unfinished(campaign_id: int, limit: int, after: int | None) -> Any:
            seen.append(("unfinished", turns[0]))
            return page(campaign_id, limit, after)

        w.repo.unfinished_page = unfinished  # type: ignore[method-assign]
        row = await runner.create(spec())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other_task)
            await runner.verb(row.id, "start", OPERATOR)
            nursery.cancel_scope.cancel()
        for kind in ("select", "unfinished"):
            at = [n for k, n in seen if k == kind]
            assert len(at) >= 8
            # The other task ran while the pages were read (once per scheduler batch, whose order trio shuffles:
            # so not strictly between every two pages); read in one go, it would not have run at all.
            assert at[-1] - at[0] >= (len(at) - 1) // 2, (kind, at)

    run(tmp_path / "c.db", body, w)


class StepCounter(trio.abc.Instrument):
    """Numbers trio's task steps: work recorded with the same number ran in one step, with no other task and no
    I/O poll in between (what a summary GET waits behind)."""

    def __init__(self) -> None:
        self.step = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.step += 1


def test_a_large_dispatch_batch_and_a_burst_of_events_yield_to_the_loop_between_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 10k chargers a dispatch batch of 500 was picked, prepared, announced and queued in single task steps of
    50-125 ms, and the follower handled a wake-up's every event in one step, holding the loop (the pump, the API)
    that long. Every pass over the batch, the follower's events and the scheduler's look at the updates in flight
    go CHUNK at a time; the commits stay one of each kind per batch."""
    n = 300
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:03}", behaviour="silent") for i in range(n)])
    counter = StepCounter()
    done: dict[str, list[int]] = {}

    def record(kind: str) -> None:
        done.setdefault(kind, []).append(counter.step)

    in_transaction = w.fleet.in_transaction

    def picking(charger_id: str) -> bool:
        record("pick")
        return in_transaction(charger_id)

    w.fleet.in_transaction = picking  # type: ignore[method-assign]
    update_request, on_tick = charger.update_request, charger.on_tick

    def preparing(*args: Any, **kwargs: Any) -> Any:
        record("prepare")
        return update_request(*args, **kwargs)

    def ticking(*args: Any, **kwargs: Any) -> Any:
        record("tick")
        return on_tick(*args, **kwargs)

    monkeypatch.setattr(charger, "update_request", preparing)
    monkeypatch.setattr(charger, "on_tick", ticking)
    on_event = Follower.on_event

    async def following(self: Follower, event: Any) -> None:
        record("follow")
        await on_event(self, event)

    monkeypatch.setattr(Follower, "on_event", following)
    publish = w.bus.publish

    def publishing(event: Any) -> None:
        if isinstance(event, CampaignChargerChanged) and event.state == "dispatched":
            record("announce")
        elif isinstance(event, CommandQueued):
            record("queue")
        publish(event)

    w.bus.publish = publishing  # type: ignore[method-assign]

    async def body(w: World, runner: CampaignRunner) -> None:
        trio.lowlevel.add_instrument(counter)
        row = await runner.create(spec(max_in_flight=n, status_timeout_s=7200))
        await runner.verb(row.id, "start", OPERATOR)
        # One batch (DISPATCH_BATCH is 500). Virtual time passes while the writer thread commits (real time), so
        # how much of it the batch takes depends on the box: waited for, not timed.
        with trio.fail_after(600):
            while sum(1 for c in w.fleet.chargers.values() if c.updates) < n:  # noqa: ASYNC110 (polls the fleet)
                await trio.sleep(1)
        await advance(2)
        done.pop("follow", None)
        # A burst as the pump publishes one: every charger's connect in one go.
        for c in w.fleet.chargers.values():
            publish(
                ChargerConnected(
                    at=w.clock.now(), charger_id=c.id, conn_id=1, protocol=c.protocol, remote_address="x"
                )
            )
        await advance(3)
        trio.lowlevel.remove_instrument(counter)

    run(tmp_path / "c.db", body, w)
    for kind in ("pick", "prepare", "announce", "queue", "follow"):
        assert len(done.get(kind, [])) >= n, kind
    for kind in ("pick", "prepare", "announce", "queue", "follow", "tick"):
        per_step = collections.Counter(done[kind])
        assert max(per_step.values()) <= tracker.CHUNK, (kind, max(per_step.values()))


def test_reconcile_while_a_batch_is_being_queued_does_not_queue_it_again(tmp_path: Path) -> None:
    """Between a batch's recorded dispatch and its commands' write (paced checks, the write awaited) its chargers
    are dispatched in memory with no command in the table, as a never-queued dispatch is after a restart. A
    reconcile then (the bus lost events) must leave them to the batch, not queue them a second time."""
    w = World(tmp_path / "c.db")
    w.fleet.add(*[Charger(f"CP{i:02}", behaviour="silent") for i in range(10)])

    async def body(w: World, runner: CampaignRunner) -> None:
        w.queue.delay = 1.0  # the batch of 10 takes 10 s to queue
        row = await runner.create(spec(max_in_flight=10, status_timeout_s=7200))
        await runner.verb(row.id, "start", OPERATOR)
        with trio.fail_after(60):  # the dispatch recorded (the writer thread takes real time: waited for)
            while runner.summary(row.id).counts["dispatched"] < 10:  # noqa: ASYNC110 (polls the tables)
                await trio.sleep(0.5)
        assert not any(c.updates for c in w.fleet.chargers.values())  # still being queued
        await runner._follower.reconcile()
        await advance(20)
        assert [len(c.updates) for c in w.fleet.chargers.values()] == [1] * 10
        assert runner.summary(row.id).counts["dispatched"] == 10  # none failed as not queued

    run(tmp_path / "c.db", body, w)
