"""The Commander in-process: whether a charger may be sent a command now (unknown, offline, boot state), the
request checked against the charger's version, the wait bounded by its timeout (MockClock), and each outcome
published (sent by the outbox, then answered or failed)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import pytest
import trio
import trio.testing

from ampgate.errors import (
    ChargerCallError,
    ChargerOfflineError,
    ChargerTimeoutError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from ampgate.events import CommandAnswered, CommandFailed, CommandSent
from ampgate.ocpp.boot import BootHandlers
from ampgate.ocpp.commander import Commander

from .fakes import Harness


@dataclass
class Link:
    online: bool
    protocol: str | None
    conn_id: int | None


def setup(*, known: set[str], links: dict[str, Link], accepted: list[str], unknown_boot: str = "accept"):
    h = Harness(accepted=accepted, unknown_boot=unknown_boot)
    BootHandlers(h.policy, h.chargers, h.bus, h.clock, h.router.time).register(h.router)
    commander = Commander(
        h.outbox,
        links,
        h.router.sessions,
        known.__contains__,
        publish=h.bus.publish,
        clock=h.clock,
        timeout=30.0,
    )
    return h, commander


def run(body) -> None:
    trio.run(body, clock=trio.testing.MockClock(autojump_threshold=0))


def test_who_may_be_sent_what() -> None:
    links = {
        "OFF": Link(False, None, None),
        "NEW": Link(True, "ocpp2.0.1", 2),
        "PEND": Link(True, "ocpp2.0.1", 3),
    }
    h, commander = setup(known={"OFF", "NEW", "PEND"}, links=links, accepted=[], unknown_boot="pending")
    h.open("NEW", "ocpp2.0.1", conn_id=2)
    pending = h.open("PEND", "ocpp2.0.1", conn_id=3)
    boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
    assert h.call(pending, "BootNotification", boot)[2]["status"] == "Pending"

    with pytest.raises(NotFoundError) as nf:
        commander.ready("GHOST", "Reset")
    assert nf.value.field == "id"
    with pytest.raises(ChargerOfflineError):
        commander.ready("OFF", "Reset")
    with pytest.raises(ConflictError) as c:
        commander.ready("NEW", "GetVariables")
    assert c.value.code == "charger_not_accepted" and "no command may be sent" in c.value.message
    assert commander.ready("PEND", "GetVariables") == "ocpp2.0.1"
    with pytest.raises(ConflictError) as c:
        commander.ready("PEND", "Reset")
    assert "only ChangeConfiguration, ExtendedTriggerMessage, GetBaseReport" in c.value.message


def test_a_trigger_sent_to_a_pending_charger_lets_it_send_what_was_asked() -> None:
    async def main() -> None:
        links = {"PEND": Link(True, "ocpp2.0.1", 3)}
        h, commander = setup(known={"PEND"}, links=links, accepted=[], unknown_boot="pending")
        s = h.open("PEND", "ocpp2.0.1", conn_id=3)
        boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
        assert h.call(s, "BootNotification", boot)[2]["status"] == "Pending"
        assert h.call(s, "Heartbeat", {})[2] == "SecurityError"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(commander.call, "PEND", "TriggerMessage", {"requestedMessage": "Heartbeat"})
            await trio.testing.wait_all_tasks_blocked()
            ((_, call),) = h.wire.sent
            # The triggered message may arrive before the trigger's reply: it is already allowed.
            assert h.call(s, "Heartbeat", {}, unique_id="h2")[0] == 3
            h.router.handle(s, msgspec.json.encode([3, call[1], {"status": "Accepted"}]))
        assert s.solicited == {"Heartbeat"}
        assert h.call(s, "StatusNotification", {"x": 1})[2] == "SecurityError"  # not asked for

    run(main)


def test_a_command_is_checked_sent_answered_and_published() -> None:
    async def main() -> None:
        h, commander = setup(known={"CP1"}, links={"CP1": Link(True, "ocpp1.6", 1)}, accepted=["CP1"])
        s = h.open("CP1", "ocpp1.6", conn_id=1)
        with pytest.raises(ValidationError) as v:
            await commander.call("CP1", "Reset", {"type": "Gentle"})
        assert v.value.field == "type"
        with pytest.raises(NotFoundError) as nf:
            await commander.call("CP1", "SetVariables", {"setVariableData": []})  # a 2.0.1 command
        assert (nf.value.code, nf.value.field) == ("unknown_command", "name")
        assert h.wire.sent == [] and h.published() == []  # nothing left the node, nothing to publish

        async with trio.open_nursery() as nursery:
            results: list[object] = []

            async def reset() -> None:
                results.append(await commander.call("CP1", "Reset", {"type": "Soft"}))

            nursery.start_soon(reset)
            await trio.testing.wait_all_tasks_blocked()
            ((_, call),) = h.wire.sent
            assert call[:3] == [2, call[1], "Reset"]
            h.router.handle(s, msgspec.json.encode([3, call[1], {"status": "Accepted"}]))
        assert results == [{"status": "Accepted"}]
        sent, answered = h.published()
        assert isinstance(sent, CommandSent) and (sent.charger_id, sent.action) == ("CP1", "Reset")
        assert isinstance(answered, CommandAnswered) and answered.status == "Accepted"
        assert answered.unique_id == sent.unique_id == call[1]

    run(main)


def test_a_callerror_and_a_timeout_fail_the_command_and_are_published() -> None:
    async def main() -> None:
        h, commander = setup(known={"CP1"}, links={"CP1": Link(True, "ocpp1.6", 1)}, accepted=["CP1"])
        s = h.open("CP1", "ocpp1.6", conn_id=1)
        async with trio.open_nursery() as nursery:

            async def expect_error() -> None:
                with pytest.raises(ChargerCallError) as e:
                    await commander.call("CP1", "ClearCache", {})
                assert e.value.ocpp_code == "NotSupported"

            nursery.start_soon(expect_error)
            await trio.testing.wait_all_tasks_blocked()
            call = h.wire.sent[-1][1]
            h.router.handle(s, msgspec.json.encode([4, call[1], "NotSupported", "no cache", {}]))
        started = trio.current_time()
        with pytest.raises(ChargerTimeoutError):
            await commander.call("CP1", "ClearCache", {})  # nobody answers
        assert trio.current_time() - started == pytest.approx(30.0)
        events = h.published()
        failed = [e for e in events if isinstance(e, CommandFailed)]
        assert [(e.code, e.ocpp_code) for e in failed] == [
            ("charger_error", "NotSupported"),
            ("charger_timeout", None),
        ]
        assert [type(e).__name__ for e in events] == [
            "CommandSent",
            "CommandFailed",
            "CommandSent",
            "CommandFailed",
        ]

    run(main)
