"""The CDR delivery queue alone, over a real store and a real OCPI client (its HTTP answered in-process), on trio's
MockClock with a wall clock that follows it: failed attempts wait 30 s, 60 s, 120 s …; a delivery is given up
after its week and an admin's retry brings it back; a credit waits until its original was delivered; a restart
(a new queue over the same tables) delivers what was pending, once; a CDR that cannot be built yet (the site is
not published) waits without counting attempts; a party with no cdrs receiver gets the CDR for its GET only;
our own tokens' CDRs are not OCPI's; a CDR whose event was lost is found by the scan; a full queue fails new
deliveries at once."""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
import trio.testing

from ampgate.billing.model import Cdr
from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.errors import ConflictError, NotFoundError
from ampgate.events import CdrCreated, OcpiCdrDelivered
from ampgate.roaming.billing_rows import CdrRows, SessionRows
from ampgate.roaming.cdr_delivery import GIVE_UP, CdrDelivery, backoff
from ampgate.roaming.client import OcpiClient
from ampgate.roaming.parties import Party
from ampgate.roaming.token_rows import AuthorizationRow
from ampgate.roaming.types import AuthMethod, Endpoint, Evse, InterfaceRole, Location
from ampgate.store.store import Store

from .test_billing_objects import T0, TOKEN, billing_cdr, evse, location, tx

AUTOJUMP = 0.005
URL = "https://emsp.example.com/ocpi/2.2.1/cdrs"


class TrioWall(Clock):
    """Wall time T0 plus trio's (mock) time: sleeping in the test moves both."""

    def wall(self) -> float:
        return T0.timestamp() + trio.current_time()


def party(ref: int = 1, endpoints: bool = True) -> Party:
    now = T0
    return Party(
        id=ref,
        country_code="NL",
        party_id="EMP",
        role="EMSP",
        name=None,
        state="registered",
        registered_by="them",
        their_token="their-token",
        versions_url="https://emsp.example.com/ocpi/versions",
        version="2.2.1",
        endpoints=[Endpoint(identifier="cdrs", role=InterfaceRole.RECEIVER, url=URL)] if endpoints else [],
        roles=[],
        registered_at=now,
        created_at=now,
        updated_at=now,
    )


def authorization(tx_id: int) -> AuthorizationRow:
    return AuthorizationRow(
        id=tx_id,
        charger_id="CP1",
        party_ref=1,
        token=TOKEN,
        auth_method=AuthMethod.AUTH_REQUEST,
        authorization_reference="AUTH-1",
        location_id="S1",
        evse_uid=None,
        command=None,
        response_url=None,
        reservation_id=None,
        reservation_ref=None,
        transaction_id=tx_id,
        created_at=T0,
        expires_at=T0,
    )


@dataclass
class World:
    """What the queue reads (CDRs, authorizations, parties, the Location) and the eMSP it POSTs to."""

    cdrs: dict[int, Cdr] = field(default_factory=dict)
    roaming: set[int] = field(default_factory=set)  # transactions an eMSP's token started
    parties: dict[int, Party] = field(default_factory=lambda: {1: party()})
    published: bool = True
    # The eMSP: answers each POST with the next status of `answers` (200 once they run out), or refuses these ids.
    answers: list[int] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    posts: list[tuple[float, dict[str, Any], int]] = field(default_factory=list)

    # -- the sources -------------------------------------------------------------------------------------------

    def get(self, cdr_id: int) -> Cdr | None:
        return self.cdrs.get(cdr_id)

    def page(self, limit: int, *, before: int | None = None) -> list[Cdr]:
        ids = sorted((i for i in self.cdrs if before is None or i < before), reverse=True)
        return [self.cdrs[i] for i in ids[:limit]]

    def for_transaction(self, tx_id: int) -> AuthorizationRow | None:
        return authorization(tx_id) if tx_id in self.roaming else None

    def published_evses(self, charger_id: str) -> list[tuple[str, Evse]] | None:
        return [("S1", evse())]

    def location(self, location_id: str) -> Location | None:
        return location() if self.published else None

    def party(self, ref: int) -> Party | None:
        return self.parties.get(ref)

    def party_page(self, limit: int, after: int | None = None) -> list[Party]:
        return [self.parties[k] for k in sorted(self.parties) if after is None or k > after][:limit]

    # -- the eMSP --------------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = msgspec.json.decode(request.content)
        status = self.answers.pop(0) if self.answers else 200
        if body["id"] in self.refuse:
            status = 503
        self.posts.append((trio.current_time(), body, status))
        if status != 200:
            return httpx.Response(status, json={"error": "no"})
        envelope = {"status_code": 1000, "timestamp": "2026-03-02T08:00:00Z"}
        return httpx.Response(200, json=envelope, headers={"Location": f"{URL}/{body['id']}"})

    def delivered(self) -> list[str]:
        return [b["id"] for _, b, s in self.posts if s == 200]


class Parties:
    def __init__(self, world: World) -> None:
        self.world = world

    def get(self, ref: int) -> Party | None:
        return self.world.party(ref)

    def page(self, limit: int, after: int | None = None) -> list[Party]:
        return self.world.party_page(limit, after)


class Tx:
    def get(self, tx_id: int) -> Any:
        return tx(id=tx_id, stopped_at=T0)


class NoTariffs:
    def get(self, tariff_id: str) -> Any:
        return None


Body = Callable[["Queue"], Awaitable[None]]


@dataclass
class Queue:
    world: World
    store: Store
    bus: EventBus
    delivery: CdrDelivery
    events: Any
    nursery: trio.Nursery

    async def created(self, cdr: Cdr, *, publish: bool = True) -> None:
        self.world.cdrs[cdr.id] = cdr
        if publish:
            self.bus.publish(
                CdrCreated(
                    at=T0,
                    charger_id=cdr.charger_id,
                    cdr_id=cdr.id,
                    transaction_id=cdr.transaction_id,
                    credit_of=cdr.credit_of,
                    site_id=cdr.site_id,
                    currency=cdr.currency,
                    total_cost=cdr.total_cost,
                    ended_at=cdr.ended_at,
                )
            )
        await trio.sleep(0.5)

    def announced(self) -> list[tuple[int, str, int]]:
        out = []
        while (ev := self.events.receive_nowait()) is not None:
            if isinstance(ev, OcpiCdrDelivered):
                out.append((ev.cdr_id, ev.state, ev.attempts))
        return out

    async def settled(self, cdr_id: int, expected: tuple[str, int]) -> None:
        """Wait until the delivery of `cdr_id` is in `expected` (state, attempts). Bounded in real time: under
        load a store write may outlast the mock clock's autojump threshold, so virtual time can pass a check's
        moment before the write it checks has landed."""
        deadline = time.monotonic() + 10
        while (found := self.state(cdr_id)) != expected:
            assert time.monotonic() < deadline, f"CDR {cdr_id}: {found}, not {expected}"
            await trio.sleep(0.25)

    def state(self, cdr_id: int) -> tuple[str, int] | None:
        found = [d for d in self.delivery.page(100) if d.cdr_id == cdr_id]
        return (found[0].state, found[0].attempts) if found else None


def build(world: World, store: Store, bus: EventBus, **kw: Any) -> CdrDelivery:
    client = OcpiClient(httpx.AsyncClient(transport=httpx.MockTransport(world.handle)), "NL", "AMP")
    return CdrDelivery(
        CdrRows(store),
        SessionRows(store),
        world,
        world,
        NoTariffs(),
        Tx(),
        Parties(world),
        world,
        lambda charger, token: "EUR",
        client,
        bus,
        TrioWall(),
        country_code="NL",
        party_id="AMP",
        **kw,
    )


def run(db: Path, body: Body, world: World | None = None, **kw: Any) -> World:
    world = world or World()

    async def main() -> None:
        store = Store(str(db), now=TrioWall().now)
        bus = EventBus()
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            delivery = build(world, store, bus, **kw)
            with bus.subscribe() as events:
                async with trio.open_nursery() as inner:
                    await inner.start(delivery.run)
                    await body(Queue(world, store, bus, delivery, events, inner))
                    inner.cancel_scope.cancel()
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=AUTOJUMP))
    return world


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ampgate.db"


def cdr(cdr_id: int, tx_id: int = 42, **kw: Any) -> Cdr:
    return billing_cdr(id=cdr_id, transaction_id=tx_id, **kw)


def test_the_back_off_doubles_to_an_hour() -> None:
    assert [backoff(n, 30) for n in (1, 2, 3, 4, 8, 20)] == [30, 60, 120, 240, 3600, 3600]


def test_failed_attempts_wait_longer_each_time_then_the_cdr_is_delivered_once(db: Path) -> None:
    async def body(q: Queue) -> None:
        q.world.roaming.add(42)
        q.world.answers[:] = [500, 500, 500]
        await q.created(cdr(7))
        await q.settled(7, ("pending", 1))
        (d,) = q.delivery.page(10)
        assert d.last_error is not None and "HTTP 500" in d.last_error and d.location is None
        assert q.delivery.page(10, party_id="emp") == [d] and q.delivery.page(10, party_id="XYZ") == []
        assert q.delivery.page(10, state="failed") == [] and q.delivery.get(d.id) == d
        await trio.sleep(30 + 60 + 120 + 5)
        await q.settled(7, ("sent", 4))
        (d,) = q.delivery.page(10, state="sent")
        assert d.location == f"{URL}/7" and d.sent_at is not None and d.last_error is None
        assert q.announced() == [(7, "sent", 4)]
        # Delivered: a retry would bill twice.
        with pytest.raises(ConflictError) as e:
            await q.delivery.retry(d.id)
        assert e.value.code == "already_delivered"
        with pytest.raises(NotFoundError):
            await q.delivery.retry(999)

    world = run(db, body)
    times = [t for t, _, _ in world.posts]
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    assert gaps == [30, 60, 120]
    assert world.delivered() == ["7"] and len({msgspec.json.encode(b) for _, b, _ in world.posts}) == 1


def test_a_delivery_is_given_up_after_its_time_and_an_admin_brings_it_back(db: Path) -> None:
    give_up = timedelta(hours=6)  # GIVE_UP is a week: the same rule, fewer virtual hours to sleep through

    async def body(q: Queue) -> None:
        q.world.roaming.add(42)
        q.world.refuse.add("7")
        await q.created(cdr(7))
        await trio.sleep(give_up.total_seconds() + 3600)
        # Tried at 0, 30, 90, 210 s … 3810 s, then hourly: the thirteenth attempt is past the six hours.
        await q.settled(7, ("failed", 13))
        assert q.announced() == [(7, "failed", 13)]
        posts = len(q.world.posts)
        await trio.sleep(7200)
        assert len(q.world.posts) == posts, "a failed delivery waits for a person"
        q.world.refuse.clear()
        (d,) = q.delivery.page(10, state="failed")
        again = await q.delivery.retry(d.id)
        assert again.state == "pending" and again.give_up_at > d.give_up_at
        assert again.give_up_at - (again.next_attempt_at or T0) == give_up
        await trio.sleep(1)
        await q.settled(7, ("sent", 14))

    run(db, body, give_up=give_up)
    assert timedelta(days=7) == GIVE_UP


def test_a_credit_waits_for_its_original(db: Path) -> None:
    async def body(q: Queue) -> None:
        q.world.roaming.add(42)
        q.world.refuse.add("7")
        await q.created(cdr(7))
        await q.created(cdr(8, credit_of=7))
        await trio.sleep(200)
        await q.settled(7, ("pending", 3))  # tried at 0, 30 and 90 s
        await q.settled(8, ("pending", 0))  # not attempted while the original waits
        (waiting,) = [d for d in q.delivery.page(10) if d.cdr_id == 8]
        assert (
            waiting.last_error is not None and "CDR 7" in waiting.last_error and waiting.after_id is not None
        )
        q.world.refuse.clear()
        await trio.sleep(300)
        await q.settled(7, ("sent", 4))
        await q.settled(8, ("sent", 1))

    world = run(db, body)
    assert world.delivered() == ["7", "8"]
    credit = world.posts[-1][1]
    assert credit["credit"] is True and credit["credit_reference_id"] == "7"
    assert credit["total_cost"]["incl_vat"] == -world.posts[0][1]["total_cost"]["incl_vat"]


def test_a_restart_delivers_what_was_pending_once(db: Path) -> None:
    world = World(roaming={42}, refuse={"7"})

    async def first(q: Queue) -> None:
        await q.created(cdr(7))
        await trio.sleep(100)
        await q.settled(7, ("pending", 3))

    run(db, first, world)
    world.refuse.clear()

    async def second(q: Queue) -> None:
        await trio.sleep(backoff(4, 30) + 1)  # its next attempt as scheduled before the restart
        await q.settled(7, ("sent", 4))
        await trio.sleep(3600)

    run(db, second, world)
    assert world.delivered() == ["7"]


def test_what_cannot_be_delivered_yet_waits_uncounted(db: Path) -> None:
    async def body(q: Queue) -> None:
        q.world.roaming.add(42)
        q.world.published = False
        await q.created(cdr(7))
        (d,) = q.delivery.page(10)
        assert (d.state, d.attempts) == ("pending", 0) and "published as a Location" in (d.last_error or "")
        assert q.delivery.cdr_page(1, None, None, 0, 10) == (0, [])  # nothing to GET yet
        q.world.published = True
        await trio.sleep(31)
        await q.settled(7, ("sent", 1))
        total, page = q.delivery.cdr_page(1, None, None, 0, 10)
        assert total == 1 and msgspec.json.decode(page[0])["id"] == "7"

    assert run(db, body).delivered() == ["7"]


def test_who_gets_a_cdr(db: Path) -> None:
    world = World(parties={1: party(endpoints=False)})

    async def body(q: Queue) -> None:
        q.world.roaming.add(42)
        await q.created(cdr(7))  # an eMSP's, which takes no pushes: kept for its GET only
        await q.created(cdr(9, tx_id=43))  # our own token's: not OCPI's at all
        assert q.delivery.page(10) == []
        assert q.delivery.cdr_page(1, None, None, 0, 10)[0] == 1
        assert q.delivery.cdr_page(2, None, None, 0, 10)[0] == 0  # another party sees none of it

    assert run(db, body, world).posts == []


def test_a_cdr_whose_event_was_lost_is_found_by_the_scan(db: Path) -> None:
    async def body(q: Queue) -> None:
        q.world.roaming.add(42)
        await q.created(cdr(7), publish=False)
        assert q.delivery.page(10) == []
        await q.delivery.reconcile()
        await trio.sleep(1)
        await q.settled(7, ("sent", 1))

    run(db, body)


def test_a_full_queue_fails_new_deliveries_at_once(db: Path) -> None:
    async def body(q: Queue) -> None:
        q.world.roaming.update({42, 43})
        q.world.refuse.update({"7", "8"})
        await q.created(cdr(7))
        await q.created(cdr(8, tx_id=43))
        await q.settled(7, ("pending", 1))
        # 8's refusal is its own store write, which can land after 7's under load.
        await q.settled(8, ("failed", 0))
        (full,) = q.delivery.page(10, state="failed")
        assert full.cdr_id == 8 and "queue full" in (full.last_error or "") and full.attempts == 0
        assert q.announced() == [(8, "failed", 0)]

    run(db, body, max_pending=1)
