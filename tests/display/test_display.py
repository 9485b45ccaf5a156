"""Display messages without a node: the pure rules (checks naming the API field, the wire shape both ways, a
report's parts read into a list, ids, refusals), then the service and the NotifyDisplayMessages handler on a
real store and router with a stand-in Commander: the view changes only on what the charger said."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
import trio

from ampgate.display import (
    Display,
    DisplayMessage,
    DisplayMessageHandlers,
    DisplayMessageRepository,
    DisplayMessages,
)
from ampgate.display.messages import check, from_report_parts, from_wire, next_id, refusal, to_wire
from ampgate.errors import ChargerTimeoutError, ConflictError, NotFoundError, ValidationError
from ampgate.events import DisplayMessageCleared, DisplayMessageSet, DisplayMessagesRefreshed
from ampgate.ocpp import payloads, v201
from tests.ocpp.fake_commands import FakeCommander, World, run

AT = datetime(2026, 12, 1, 8, tzinfo=UTC)


def message(**kw) -> DisplayMessage:
    fields = {"id": 1, "priority": "InFront", "format": "UTF8", "content": "Hello"} | kw
    return DisplayMessage(**fields)


# -- pure -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": -1}, "id"),
        ({"priority": "Soon"}, "priority"),
        ({"state": "Sleeping"}, "state"),
        ({"format": "PDF"}, "message.format"),
        ({"content": "x" * 513}, "message.content"),
        ({"language": "en-GB-oxendict"}, "message.language"),
        ({"transaction_id": "t" * 37}, "transaction_id"),
        ({"start_at": datetime(2026, 12, 1, 8)}, "start_at"),
        ({"start_at": AT, "end_at": AT}, "end_at"),
        ({"display": Display(name="")}, "display.name"),
        ({"display": Display(name="D", connector_id=1)}, "display.connector_id"),
        ({"display": Display(name="D", evse_id=-2)}, "display.evse_id"),
    ],
)
def test_check_names_the_api_field(changes: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        check(message(**changes))
    assert info.value.field == field


def test_the_wire_shape_is_the_specs_and_reads_back_the_same() -> None:
    full = message(
        id=5,
        state="Charging",
        start_at=AT.astimezone(timezone(timedelta(hours=1))),
        end_at=AT + timedelta(hours=1),
        transaction_id="tx-1",
        language="en",
        display=Display(name="Display", instance="front", evse_id=1, connector_id=2),
    )
    wire = to_wire(check(full))
    assert wire["startDateTime"] == "2026-12-01T08:00:00.000Z"
    assert wire["display"] == {"name": "Display", "instance": "front", "evse": {"id": 1, "connectorId": 2}}
    payloads.validate_request("ocpp2.0.1", "SetDisplayMessage", {"message": wire})
    back = from_wire(msgspec.convert(wire, v201.MessageInfoType))
    assert back == full
    bare = to_wire(message())
    assert bare == {"id": 1, "priority": "InFront", "message": {"format": "UTF8", "content": "Hello"}}
    assert from_wire(msgspec.convert(bare, v201.MessageInfoType)) == message()


def test_report_parts_are_read_into_one_list_by_id_the_later_part_winning() -> None:
    def part(*msgs: DisplayMessage, tbc: bool = False) -> bytes:
        body: dict = {"requestId": 3, "tbc": tbc}
        if msgs:
            body["messageInfo"] = [to_wire(m) for m in msgs]
        return msgspec.json.encode(body)

    got = from_report_parts(
        [part(message(id=9), message(id=2), tbc=True), part(tbc=True), part(message(id=2, content="new"))]
    )
    assert [(m.id, m.content) for m in got] == [(2, "new"), (9, "Hello")]
    assert from_report_parts([]) == []


def test_ids_and_refusals() -> None:
    assert next_id([]) == 1 and next_id([4, 2]) == 5
    e = refusal("CP", "NotSupportedMessageFormat")
    assert isinstance(e, ConflictError) and (e.code, e.field) == (
        "not_supported_message_format",
        "message.format",
    )
    assert refusal("CP", "UnknownTransaction").field == "transaction_id"
    assert (refusal("CP", "Rejected").code, refusal("CP", "Rejected").field) == (
        "display_message_rejected",
        None,
    )


# -- service and handler ----------------------------------------------------------------------------------------


def build(w: World, timeout: float = 5.0) -> tuple[DisplayMessages, DisplayMessageRepository]:
    view = DisplayMessageRepository(w.store)
    DisplayMessageHandlers(view, w.reports, w.h.clock).register(w.h.router)
    service = DisplayMessages(
        view, w.commander, w.reports, w.report_parts, w.h.bus, w.h.clock, report_timeout=timeout
    )
    return service, view


def ids(view: DisplayMessageRepository) -> list[int]:
    return [r.message.id for r in view.page("CP", 100)]


def test_set_stores_only_what_the_charger_accepted_and_assigns_ids(tmp_path: Path) -> None:
    commander = FakeCommander("ocpp2.0.1", {"SetDisplayMessage": {"status": "Accepted"}})

    async def scenario(w: World, built) -> None:
        service, view = built
        first = await service.set("CP", message(id=0), assign_id=True)
        assert first.message.id == 1 and first.source == "set"
        assert commander.sent[0] == ("SetDisplayMessage", {"message": to_wire(message(id=1))})
        await service.set("CP", message(id=10, content="ten"))
        # Two sets at once with no id get different ones (neither is in the view while the other is out).
        async with trio.open_nursery() as n:
            for content in ("a", "b"):
                n.start_soon(
                    functools.partial(service.set, "CP", message(id=0, content=content), assign_id=True)
                )
        assert ids(view) == [1, 10, 11, 12]
        # A message of a known id replaces it.
        await service.set("CP", message(id=10, content="TEN", priority="NormalCycle"))
        row = view.get("CP", 10)
        assert row is not None and (row.message.content, row.message.priority) == ("TEN", "NormalCycle")
        commander.replies["SetDisplayMessage"] = {"status": "NotSupportedState"}
        with pytest.raises(ConflictError) as refused:
            await service.set("CP", message(id=20, state="Faulted"))
        assert (refused.value.code, refused.value.field) == ("not_supported_state", "state")
        assert ids(view) == [1, 10, 11, 12]
        # Bad input: nothing sent.
        sent = len(commander.sent)
        with pytest.raises(ValidationError):
            await service.set("CP", message(priority="Never"))
        assert len(commander.sent) == sent
        events = [e for e in w.h.published() if isinstance(e, DisplayMessageSet)]
        got = [e.message_id for e in events]
        # The two concurrent sets publish in the order their commits came back.
        assert got[:2] == [1, 10] and sorted(got[2:4]) == [11, 12] and got[4:] == [10]

    run(tmp_path, commander, build, scenario)


def test_a_16_charger_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    commander = FakeCommander("ocpp1.6", {})

    async def scenario(w: World, built) -> None:
        service, _ = built
        for attempt in (service.set("CP", message()), service.clear("CP", 1), service.refresh("CP")):
            with pytest.raises(ConflictError) as info:
                await attempt
            assert info.value.code == "unsupported_protocol"
        assert commander.sent == []

    run(tmp_path, commander, build, scenario)


def test_clear_drops_the_message_and_unknown_is_not_found(tmp_path: Path) -> None:
    commander = FakeCommander(
        "ocpp2.0.1",
        {"SetDisplayMessage": {"status": "Accepted"}, "ClearDisplayMessage": {"status": "Accepted"}},
    )

    async def scenario(w: World, built) -> None:
        service, view = built
        await service.set("CP", message(id=1))
        await service.set("CP", message(id=2))
        await service.clear("CP", 1)
        assert ids(view) == [2]
        commander.replies["ClearDisplayMessage"] = {"status": "Unknown"}
        with pytest.raises(NotFoundError) as info:
            await service.clear("CP", 2)
        assert (info.value.code, info.value.field) == ("unknown_message", "message_id")
        assert ids(view) == []  # the charger does not show it: neither does the view
        cleared = [(e.message_id, e.status) for e in w.h.published() if isinstance(e, DisplayMessageCleared)]
        assert cleared == [(1, "Accepted"), (2, "Unknown")]

    run(tmp_path, commander, build, scenario)


def test_refresh_waits_for_every_part_and_replaces_the_view(tmp_path: Path) -> None:
    commander = FakeCommander(
        "ocpp2.0.1",
        {"SetDisplayMessage": {"status": "Accepted"}, "GetDisplayMessages": {"status": "Accepted"}},
    )

    async def scenario(w: World, built) -> None:
        service, view = built
        await service.set("CP", message(id=1))  # the charger has since lost it
        session = w.h.open("CP", "ocpp2.0.1")
        results = []

        async def refresh() -> None:
            results.append(await service.refresh("CP"))

        async with trio.open_nursery() as n:
            commander.called = trio.Event()
            n.start_soon(refresh)
            await commander.called.wait()
            request_id = commander.sent[-1][1]["requestId"]
            first = {
                "requestId": request_id,
                "tbc": True,
                "messageInfo": [to_wire(message(id=7, content="seven"))],
            }
            assert await w.notify(session, "NotifyDisplayMessages", first) == {}
            await trio.sleep(0.05)
            assert results == []  # one part is not the report
            # The part already says the charger shows 7.
            assert ids(view) == [1, 7]
            last = {"requestId": request_id, "messageInfo": [to_wire(message(id=8))]}
            await w.notify(session, "NotifyDisplayMessages", last)
        (result,) = results
        assert (result.request_id, result.status, result.messages) == (request_id, "Accepted", 2)
        assert ids(view) == [7, 8]
        row = view.get("CP", 7)
        assert row is not None and row.source == "report" and row.message.content == "seven"
        # A charger with no messages answers Unknown: the view empties.
        commander.replies["GetDisplayMessages"] = {"status": "Unknown"}
        empty = await service.refresh("CP")
        assert (empty.status, empty.messages) == ("Unknown", 0) and ids(view) == []
        refreshed = [
            (e.status, e.messages) for e in w.h.published() if isinstance(e, DisplayMessagesRefreshed)
        ]
        assert refreshed == [("Accepted", 2), ("Unknown", 0)]

    run(tmp_path, commander, build, scenario)


def test_a_refresh_that_does_not_complete_times_out_and_removes_nothing(tmp_path: Path) -> None:
    commander = FakeCommander(
        "ocpp2.0.1",
        {"SetDisplayMessage": {"status": "Accepted"}, "GetDisplayMessages": {"status": "Accepted"}},
    )

    async def scenario(w: World, built) -> None:
        service, view = built
        await service.set("CP", message(id=1))
        with pytest.raises(ChargerTimeoutError):
            await service.refresh("CP")
        assert ids(view) == [1]

    run(tmp_path, commander, lambda w: build(w, timeout=0.1), scenario)
