"""The Outbox the Session and Tariff pushers send through, alone on trio's MockClock with a fake send: a key goes
when it is due (the earlier of two marks), once per mark however often it is marked, never twice at once (marked
while in flight, it goes again after); a party that keeps failing is left alone for the back-off and then gets
the latest; a party without the endpoint is not sent to. And what a Session PATCH carries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import trio
import trio.testing

from ampgate.clock import Clock
from ampgate.roaming import cdr_types as o
from ampgate.roaming.client import PartyUnreachable
from ampgate.roaming.outbox import FAILING_AFTER, FAILING_BACKOFF_S, Outbox
from ampgate.roaming.parties import Party
from ampgate.roaming.sessions import _patch, _put_body
from ampgate.roaming.types import AuthMethod, Endpoint, InterfaceRole, TokenType

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def party(ref: int, endpoint: bool = True) -> Party:
    return Party(
        id=ref,
        country_code="NL",
        party_id=f"EM{ref}",
        role="EMSP",
        name=None,
        state="registered",
        registered_by="them",
        their_token="tok",
        versions_url=None,
        version="2.2.1",
        endpoints=[
            Endpoint(identifier="sessions", role=InterfaceRole.RECEIVER, url=f"https://e{ref}.example/s")
        ]
        if endpoint
        else [],
        roles=[],
        registered_at=T0,
        created_at=T0,
        updated_at=T0,
    )


def run(body: object) -> None:
    trio.run(body, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


class Sends:
    def __init__(self, latency: float = 1.0) -> None:
        self.latency = latency
        self.sent: list[tuple[float, int, str]] = []  # (time it began, party, key)
        self.open: set[tuple[int, str]] = set()
        self.overlap = False
        self.fail = 0

    async def __call__(self, p: Party, url: str, key: str) -> None:
        if (p.id, key) in self.open:
            self.overlap = True
        self.open.add((p.id, key))
        self.sent.append((trio.current_time(), p.id, key))
        try:
            await trio.sleep(self.latency)
            if self.fail:
                self.fail -= 1
                raise PartyUnreachable("down")
        finally:
            self.open.discard((p.id, key))


def outbox(sends: Sends) -> Outbox[str]:
    return Outbox("test", lambda p: p.endpoint("sessions", "RECEIVER"), sends, Clock())


def test_a_key_goes_when_due_the_earlier_mark_wins_and_never_twice_at_once() -> None:
    sends = Sends()

    async def main() -> None:
        box = outbox(sends)
        box.set_parties([party(1), party(2, endpoint=False)])
        async with trio.open_nursery() as nursery:
            await nursery.start(box.run)
            assert box.mark(1, "A", 10.0) and not box.mark(2, "A") and not box.mark(3, "A")
            box.mark(1, "A", 20.0)  # later: the earlier due stays
            box.mark(1, "B", 5.0)
            box.mark(1, "B", 2.0)  # earlier: wins
            await trio.sleep(15)
            assert [(t, k) for t, _, k in sends.sent] == [(2.0, "B"), (10.0, "A")]
            # Marked again and again while in flight: once more, after the flight.
            box.mark(1, "C")
            await trio.sleep(0.5)
            for _ in range(5):
                box.mark(1, "C")
            await trio.sleep(5)
            assert [(t, k) for t, _, k in sends.sent[2:]] == [(15.0, "C"), (16.0, "C")]
            assert box.stats(1) is not None and box.stats(1).sent == 4  # type: ignore[union-attr]
            assert box.stats(2) is None and box.pending() == 0
            nursery.cancel_scope.cancel()

    run(main)
    assert not sends.overlap


def test_a_failing_party_is_left_alone_then_gets_the_latest() -> None:
    sends = Sends(latency=0.1)
    sends.fail = FAILING_AFTER

    async def main() -> None:
        box = outbox(sends)
        box.set_parties([party(1)])
        async with trio.open_nursery() as nursery:
            await nursery.start(box.run)
            for i in range(FAILING_AFTER):
                box.mark(1, f"K{i}")
                await trio.sleep(1)
            stats = box.stats(1)
            assert stats is not None and stats.failing and stats.failed == FAILING_AFTER
            box.mark(1, "LATE")
            await trio.sleep(FAILING_BACKOFF_S / 2)
            assert sends.sent[-1][2] == f"K{FAILING_AFTER - 1}", "nothing while left alone"
            await trio.sleep(FAILING_BACKOFF_S)
            assert sends.sent[-1][2] == "LATE" and not box.stats(1).failing  # type: ignore[union-attr]
            # A party gone from the registered ones is sent nothing more.
            box.set_parties([])
            assert not box.mark(1, "X")
            nursery.cancel_scope.cancel()

    run(main)


def session(**kw: object) -> o.Session:
    fields: dict = {
        "country_code": "NL",
        "party_id": "AMP",
        "id": "42",
        "start_date_time": T0,
        "kwh": Decimal("1.0000"),
        "cdr_token": o.CdrToken(
            country_code="NL", party_id="EMP", uid="U", type=TokenType.RFID, contract_id="C"
        ),
        "auth_method": AuthMethod.WHITELIST,
        "location_id": "S1",
        "evse_uid": "CP1-1",
        "connector_id": "1",
        "currency": "EUR",
        "status": o.SessionStatus.ACTIVE,
        "last_updated": T0,
    }
    fields.update(kw)
    return o.Session(**fields)


def test_a_session_patch_carries_what_changed_and_the_periods_only_when_final() -> None:
    period = o.ChargingPeriod(
        start_date_time=T0, dimensions=[o.CdrDimension(type=o.CdrDimensionType.ENERGY, volume=Decimal(2))]
    )
    sent = _put_body(session(charging_periods=[period]))
    assert sent.charging_periods is None  # a PUT while active: no periods yet
    assert _patch(sent, session(last_updated=T0.replace(minute=1))) is None  # nothing the eMSP needs
    price = o.Price(excl_vat=Decimal("1.00"), incl_vat=Decimal("1.20"))
    grown = session(
        kwh=Decimal("2.0000"), total_cost=price, charging_periods=[period], last_updated=T0.replace(minute=1)
    )
    patch = _patch(sent, grown)
    assert patch is not None
    assert msgspec.json.decode(msgspec.json.Encoder(decimal_format="number").encode(patch)) == {
        "last_updated": "2026-03-02T08:01:00Z",
        "kwh": 2.0,
        "total_cost": {"excl_vat": 1.0, "incl_vat": 1.2},
    }
    done = session(
        kwh=Decimal("2.0000"),
        total_cost=price,
        status=o.SessionStatus.COMPLETED,
        end_date_time=T0.replace(minute=9),
        charging_periods=[period],
        last_updated=T0.replace(minute=9),
    )
    final = _patch(_put_body(grown), done)
    assert final is not None and final.kwh is None and final.total_cost is None
    assert final.status == o.SessionStatus.COMPLETED and final.end_date_time == T0.replace(minute=9)
    assert final.charging_periods == [period]
    assert _put_body(done) == done  # a final PUT is whole
