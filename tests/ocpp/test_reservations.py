"""Reservations in the OCPP handlers, in-process (the Harness's router over stand-ins): Authorize and
transaction starts honour the charger's active reservations, a start ends the reservation it uses or names,
and 2.0.1 ReservationStatusUpdate ends one. Each end is written and published once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
import trio
import trio.testing

from ampgate.clock import iso_utc
from ampgate.events import ReservationCreated, ReservationEnded
from ampgate.ocpp.authorization import Authorization, Authorizer
from ampgate.ocpp.transactions import TransactionHandlers
from ampgate.reservations import ReservationBook, ReservationRow
from ampgate.store import IdTokenRow

from .fakes import NOW, Harness
from .test_transactions import Records

UNTIL = NOW + timedelta(minutes=30)
T0 = "2026-11-30T07:59:00Z"
OK = Authorization("Accepted")


class Tokens:
    """ALICE and BOB are Accepted, CAROL is in group FLEET, MALLORY is Blocked; anything else is unknown."""

    def __init__(self) -> None:
        self.rows = {
            "ALICE": ("Accepted", None),
            "BOB": ("Accepted", None),
            "CAROL": ("Accepted", "FLEET"),
            "MALLORY": ("Blocked", None),
        }

    def get(self, id_token: str) -> IdTokenRow | None:
        found = self.rows.get(id_token.upper())
        if found is None:
            return None
        return IdTokenRow(
            id_token=id_token,
            type=None,
            status=found[0],
            expiry=None,
            group=found[1],
            created_at=NOW,
            updated_at=NOW,
        )


class Rows:
    """The reservation repository's writes, recorded."""

    def __init__(self) -> None:
        self.ended: list[tuple[int, str, datetime | None]] = []
        self.failed_pending: list[str] = []

    def end_soon(self, rid: int, reason: str, at: datetime | None = None) -> None:
        self.ended.append((rid, reason, at))

    async def end(self, rid: int, reason: str, at: datetime | None = None) -> ReservationRow | None:
        self.ended.append((rid, reason, at))
        return None

    def fail_pending(self, outcome: str) -> None:
        self.failed_pending.append(outcome)


def row(
    rid: int,
    *,
    charger: str = "CP1",
    protocol: str = "ocpp1.6",
    evse: int | None = None,
    connector: int | None = None,
    token: str = "ALICE",
    group: str | None = None,
    state: str = "active",
    until: datetime = UNTIL,
) -> ReservationRow:
    return ReservationRow(
        id=rid,
        charger_id=charger,
        protocol=protocol,
        evse_id=evse,
        connector_id=connector,
        connector_type=None,
        id_token=token,
        id_token_type=None if protocol == "ocpp1.6" else "ISO14443",
        group_id_token=group,
        expires_at=until,
        state=state,
        outcome="Accepted" if state == "active" else None,
        end_reason=None,
        created_at=NOW,
        updated_at=NOW,
        ended_at=None,
    )


class Setup:
    def __init__(self, *rows_: ReservationRow) -> None:
        self.h = Harness(accepted=["CP1", "CP2"])
        self.rows = Rows()
        self.book = ReservationBook(self.rows, self.h.bus, self.h.clock.now)
        self.book.load(rows_)
        authorizer = Authorizer(Tokens(), self.h.clock.now, self.book)
        authorizer.register(self.h.router)
        self.book.register(self.h.router)
        self.records = Records()
        TransactionHandlers(self.records, authorizer, self.h.bus, self.h.clock).register(self.h.router)

    async def call(self, session: Any, action: str, payload: dict[str, Any], uid: str = "u") -> Any:
        """One CALL; its reply, also when the handler answers later (after a write)."""
        out: list[tuple[int, bytes]] = []
        before = len(self.h.link.sent)
        self.h.router.on_message(session.conn_id, msgspec.json.encode([2, uid, action, payload]), out)
        if out:
            return msgspec.json.decode(out[0][1])
        await trio.testing.wait_all_tasks_blocked()
        assert len(self.h.link.sent) == before + 1
        return self.h.link.sent[-1][1]

    def ends(self) -> list[tuple[int, str]]:
        return [(e.reservation_id, e.reason) for e in self.h.published() if isinstance(e, ReservationEnded)]


def run(body) -> None:
    trio.run(body, clock=trio.testing.MockClock(autojump_threshold=0))


def start16(connector: int, id_tag: str, reservation_id: int | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"connectorId": connector, "idTag": id_tag, "meterStart": 0, "timestamp": T0}
    if reservation_id is not None:
        p["reservationId"] = reservation_id
    return p


def started201(tx: str, evse: int, token: str | None, reservation_id: int | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "eventType": "Started",
        "timestamp": T0,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": tx},
        "evse": {"id": evse, "connectorId": 1},
    }
    if token is not None:
        p["idToken"] = {"idToken": token, "type": "ISO14443"}
    if reservation_id is not None:
        p["reservationId"] = reservation_id
    return p


def test_16_another_token_is_refused_on_the_reserved_connector_with_invalid_until_the_expiry() -> None:
    async def main() -> None:
        s = Setup(row(7, connector=1))
        async with trio.open_nursery() as nursery:
            await nursery.start(s.h.router.run)
            cp = s.h.open("CP1")
            # Authorize names no connector: BOB gets his own status.
            reply = await s.call(cp, "Authorize", {"idTag": "BOB"})
            assert reply[2] == {"idTagInfo": {"status": "Accepted"}}
            reply = await s.call(cp, "StartTransaction", start16(1, "BOB"))
            assert reply[2]["idTagInfo"] == {"status": "Invalid", "expiryDate": iso_utc(UNTIL)}
            # Elsewhere on the charger BOB may start; the reservation still stands.
            reply = await s.call(cp, "StartTransaction", start16(2, "BOB"))
            assert reply[2]["idTagInfo"] == {"status": "Accepted"}
            assert s.book.active(7) is not None and s.rows.ended == [] and s.ends() == []
            nursery.cancel_scope.cancel()

    run(main)


def test_16_the_reserving_token_starts_and_the_reservation_ends_as_used() -> None:
    async def main() -> None:
        s = Setup(row(7, connector=1))
        async with trio.open_nursery() as nursery:
            await nursery.start(s.h.router.run)
            cp = s.h.open("CP1")
            reply = await s.call(cp, "StartTransaction", start16(1, "alice", reservation_id=7))
            assert reply[2]["idTagInfo"] == {"status": "Accepted"}
            assert s.book.active(7) is None and s.book.holds("CP1") == ()
            assert [(r, why) for r, why, _ in s.rows.ended] == [(7, "used")]
            assert s.ends() == [(7, "used")]
            # The same StartTransaction resent: nothing ends twice.
            await s.call(cp, "StartTransaction", start16(1, "alice", reservation_id=7))
            assert len(s.rows.ended) == 1 and s.ends() == []
            nursery.cancel_scope.cancel()

    run(main)


def test_16_a_group_member_may_use_it_even_without_naming_it() -> None:
    async def main() -> None:
        s = Setup(row(7, connector=1, group="FLEET"))
        async with trio.open_nursery() as nursery:
            await nursery.start(s.h.router.run)
            cp = s.h.open("CP1")
            reply = await s.call(cp, "StartTransaction", start16(1, "CAROL"))
            assert reply[2]["idTagInfo"] == {"status": "Accepted", "parentIdTag": "FLEET"}
            assert s.ends() == [(7, "used")]
            nursery.cancel_scope.cancel()

    run(main)


def test_a_token_refused_for_its_own_reasons_keeps_its_status() -> None:
    async def main() -> None:
        s = Setup(row(7, connector=1))
        async with trio.open_nursery() as nursery:
            await nursery.start(s.h.router.run)
            cp = s.h.open("CP1")
            reply = await s.call(cp, "StartTransaction", start16(1, "MALLORY"))
            assert reply[2]["idTagInfo"] == {"status": "Blocked"}
            nursery.cancel_scope.cancel()

    run(main)


def test_an_unknown_token_is_accepted_where_it_holds_a_reservation_and_only_there() -> None:
    async def main() -> None:
        s = Setup(row(7, connector=1, token="GUEST"))
        async with trio.open_nursery() as nursery:
            await nursery.start(s.h.router.run)
            cp1, cp2 = s.h.open("CP1", conn_id=1), s.h.open("CP2", conn_id=2)
            expected = {"status": "Accepted", "expiryDate": iso_utc(UNTIL)}
            assert (await s.call(cp1, "Authorize", {"idTag": "GUEST"}))[2] == {"idTagInfo": expected}
            assert (await s.call(cp2, "Authorize", {"idTag": "GUEST"}))[2] == {
                "idTagInfo": {"status": "Invalid"}
            }
            reply = await s.call(cp1, "StartTransaction", start16(1, "GUEST", reservation_id=7))
            assert reply[2]["idTagInfo"] == expected
            # Once used, the reservation no longer lets the unknown token in.
            assert (await s.call(cp1, "Authorize", {"idTag": "GUEST"}))[2] == {
                "idTagInfo": {"status": "Invalid"}
            }
            nursery.cancel_scope.cancel()

    run(main)


def test_a_charger_naming_a_reservation_ends_it_even_for_a_token_the_node_would_not_match() -> None:
    async def main() -> None:
        s = Setup(row(7, connector=1))
        async with trio.open_nursery() as nursery:
            await nursery.start(s.h.router.run)
            cp = s.h.open("CP1")
            reply = await s.call(cp, "StartTransaction", start16(1, "BOB", reservation_id=7))
            assert reply[2]["idTagInfo"] == {"status": "Accepted"}  # the charger says it is over
            assert s.ends() == [(7, "used")]
            # Another charger naming it changes nothing.
            s2 = Setup(row(8, connector=1))
            s2.book.at_start("CP2", "ocpp1.6", None, 1, "BOB", None, False, 8)
            assert s2.book.active(8) is not None
            nursery.cancel_scope.cancel()

    run(main)


def test_201_start_at_a_reserved_evse_is_not_at_this_time_for_others_and_uses_it_for_the_token() -> None:
    async def main() -> None:
        s = Setup(row(9, protocol="ocpp2.0.1", evse=1))
        async with trio.open_nursery() as nursery:
            await nursery.start(s.h.router.run)
            cp = s.h.open("CP1", "ocpp2.0.1")
            reply = await s.call(cp, "Authorize", {"idToken": {"idToken": "BOB", "type": "ISO14443"}})
            assert reply[2] == {"idTokenInfo": {"status": "Accepted"}}
            reply = await s.call(cp, "TransactionEvent", started201("T-BOB", 1, "BOB"))
            assert reply[2] == {
                "idTokenInfo": {"status": "NotAtThisTime", "cacheExpiryDateTime": iso_utc(UNTIL)}
            }
            assert s.book.active(9) is not None
            reply = await s.call(cp, "TransactionEvent", started201("T-ALICE", 1, "ALICE"))
            assert reply[2] == {"idTokenInfo": {"status": "Accepted"}}
            assert s.ends() == [(9, "used")]
            nursery.cancel_scope.cancel()

    run(main)


def test_201_a_started_event_naming_the_reservation_without_a_token_ends_it() -> None:
    async def main() -> None:
        s = Setup(row(9, protocol="ocpp2.0.1", evse=1))
        async with trio.open_nursery() as nursery:
            await nursery.start(s.h.router.run)
            cp = s.h.open("CP1", "ocpp2.0.1")
            reply = await s.call(cp, "TransactionEvent", started201("T-1", 1, None, reservation_id=9))
            assert reply[2] == {}
            assert s.ends() == [(9, "used")]
            nursery.cancel_scope.cancel()

    run(main)


def test_201_reservation_status_update_ends_it_with_its_reason_once() -> None:
    async def main() -> None:
        s = Setup(row(9, protocol="ocpp2.0.1", evse=1), row(10, protocol="ocpp2.0.1", evse=2))
        async with trio.open_nursery() as nursery:
            await nursery.start(s.h.router.run)
            cp = s.h.open("CP1", "ocpp2.0.1")
            update = {"reservationId": 9, "reservationUpdateStatus": "Expired"}
            assert (await s.call(cp, "ReservationStatusUpdate", update))[2] == {}
            assert (await s.call(cp, "ReservationStatusUpdate", update))[2] == {}  # again: nothing more
            removed = {"reservationId": 10, "reservationUpdateStatus": "Removed"}
            assert (await s.call(cp, "ReservationStatusUpdate", removed))[2] == {}
            unknown = {"reservationId": 99, "reservationUpdateStatus": "Removed"}
            assert (await s.call(cp, "ReservationStatusUpdate", unknown))[2] == {}
            assert s.ends() == [(9, "expired"), (10, "removed")]
            assert [(r, why) for r, why, _ in s.rows.ended] == [(9, "expired"), (10, "removed")]
            # Now BOB may start at EVSE 1.
            reply = await s.call(cp, "TransactionEvent", started201("T-BOB", 1, "BOB"))
            assert reply[2] == {"idTokenInfo": {"status": "Accepted"}}
            nursery.cancel_scope.cancel()

    run(main)


def test_16_has_no_reservation_status_update() -> None:
    s = Setup()
    cp = s.h.open("CP1")
    reply = s.h.call(
        cp, "ReservationStatusUpdate", {"reservationId": 1, "reservationUpdateStatus": "Expired"}
    )
    assert reply[0] == 4 and reply[2] == "NotImplemented"


def test_the_sweep_ends_expired_reservations_at_their_expiry_and_the_rules_ignore_them_at_once() -> None:
    s = Setup(row(7, connector=1, until=NOW + timedelta(seconds=10)), row(8, connector=2))
    s.h.clock.at = (NOW + timedelta(seconds=10)).timestamp()
    # Before any sweep, the expired one already refuses nobody.
    assert s.book.at_start("CP1", "ocpp1.6", None, 1, "BOB", OK, True, None) == OK
    assert s.book.sweep() == 1
    assert s.rows.ended == [(7, "expired", NOW + timedelta(seconds=10))]
    assert s.ends() == [(7, "expired")]
    assert s.book.sweep() == 0 and [h.id for h in s.book.holds("CP1")] == [8]


def test_a_reservation_used_before_its_accepted_answer_was_processed_ends_when_it_becomes_active() -> None:
    s = Setup()
    pending = row(11, connector=1, state="pending")
    s.book.sent(pending)
    # The charger answered Accepted and started with it in the same batch, before the waiting task ran.
    s.book.at_start("CP1", "ocpp1.6", None, 1, "ALICE", OK, True, 11)
    assert s.ends() == []
    s.book.accepted(row(11, connector=1))
    kinds = [(type(e).__name__, getattr(e, "reason", None)) for e in s.h.published()]
    assert kinds == [("ReservationCreated", None), ("ReservationEnded", "used")]
    assert s.book.active(11) is None and s.rows.ended[0][:2] == (11, "used")


def test_load_indexes_active_rows_and_fails_pending_ones() -> None:
    s = Setup(row(1, connector=1), row(2, connector=2, state="pending"), row(3, charger="CP2", connector=1))
    assert [h.id for h in s.book.holds("CP1")] == [1] and [h.id for h in s.book.holds("CP2")] == [3]
    assert s.rows.failed_pending == ["node_restarted"] and len(s.book) == 2
    assert not any(isinstance(e, ReservationCreated) for e in s.h.published())


def test_16_a_faulted_or_unavailable_connector_ends_its_reservations() -> None:
    s = Setup(row(1, connector=1), row(2, connector=2), row(3, charger="CP2", connector=1))
    assert s.book.connector_status16("CP1", 1, "Charging") == 0
    assert s.book.connector_status16("CP1", 1, "Faulted") == 1
    assert s.ends() == [(1, "removed")]
    # Connector 0 is the whole charger.
    assert s.book.connector_status16("CP1", 0, "Unavailable") == 1
    assert s.ends() == [(2, "removed")] and s.book.holds("CP1") == ()
    assert [h.id for h in s.book.holds("CP2")] == [3]
