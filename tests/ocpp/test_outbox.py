"""Central-system CALLs: one outstanding per charger, queued in order, timeouts, reconnects."""

from __future__ import annotations

import msgspec
import pytest
import trio
import trio.testing

from ampgate.errors import ChargerCallError, ChargerTimeoutError
from ampgate.ocpp.outbox import CallManager, call_error


class Wire:
    """What the manager put on each charger's connection; `online` decides whether a send succeeds."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []
        self.online: set[str] = {"CP1"}

    def send(self, charger_id: str, frame: bytes) -> bool:
        if charger_id not in self.online:
            return False
        self.sent.append((charger_id, msgspec.json.decode(frame)))
        return True


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def run(clock, fn):
    trio.run(fn, clock=clock)


async def call(calls: CallManager, action: str, seconds: float):
    """What the node does: a command bounded by a deadline."""
    with trio.move_on_after(seconds):
        return await calls.call("CP1", action, {})
    raise ChargerTimeoutError(f"no answer to {action}")


def test_one_outstanding_call_and_the_rest_in_order(clock):
    wire = Wire()
    calls = CallManager(wire.send)
    results: dict[str, object] = {}

    async def main():
        async with trio.open_nursery() as n:

            async def one(action):
                results[action] = await call(calls, action, 30)

            for action in ("Reset", "ClearCache", "UnlockConnector"):
                n.start_soon(one, action)
                await trio.testing.wait_all_tasks_blocked()
            assert [m[1][2] for m in wire.sent] == ["Reset"], "only one CALL on the wire"
            for expected in ("Reset", "ClearCache", "UnlockConnector"):
                cid, msg = wire.sent[-1]
                assert msg[2] == expected
                assert calls.answered(cid, msg[1], {"status": expected}, None)
                await trio.testing.wait_all_tasks_blocked()

    run(clock, main)
    assert results == {a: {"status": a} for a in ("Reset", "ClearCache", "UnlockConnector")}
    assert calls.pending("CP1") == 0


def test_unique_ids_differ_and_unknown_replies_are_refused():
    wire = Wire()
    calls = CallManager(wire.send)

    async def main():
        async with trio.open_nursery() as n:
            n.start_soon(call, calls, "Reset", 30)
            await trio.testing.wait_all_tasks_blocked()
            uid = wire.sent[0][1][1]
            assert not calls.answered("CP1", "not-" + uid, {}, None)
            assert not calls.answered("CP2", uid, {}, None)
            assert calls.answered("CP1", uid, {}, None)
            n.start_soon(call, calls, "Reset", 30)
            await trio.testing.wait_all_tasks_blocked()
            assert wire.sent[1][1][1] != uid
            calls.answered("CP1", wire.sent[1][1][1], {}, None)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_call_error_and_timeout_release_the_next_call(clock):
    wire = Wire()
    calls = CallManager(wire.send)
    outcome: dict[str, object] = {}

    async def main():
        async with trio.open_nursery() as n:

            async def one(action, seconds):
                try:
                    outcome[action] = await call(calls, action, seconds)
                except (ChargerCallError, ChargerTimeoutError) as e:
                    outcome[action] = e

            n.start_soon(one, "Reset", 5)
            await trio.testing.wait_all_tasks_blocked()
            n.start_soon(one, "ClearCache", 60)
            await trio.testing.wait_all_tasks_blocked()
            # Reset is never answered: after 5 s it fails and ClearCache goes on the wire.
            await trio.sleep(6)
            assert isinstance(outcome["Reset"], ChargerTimeoutError)
            assert wire.sent[-1][1][2] == "ClearCache"
            calls.answered("CP1", wire.sent[-1][1][1], None, call_error("NotSupported", "no", {"x": 1}))

    run(clock, main)
    err = outcome["ClearCache"]
    assert isinstance(err, ChargerCallError) and err.ocpp_code == "NotSupported" and err.details == {"x": 1}


def test_queued_calls_wait_for_a_reconnect_and_the_one_on_the_wire_fails(clock):
    wire = Wire()
    calls = CallManager(wire.send)
    outcome: dict[str, object] = {}

    async def main():
        async with trio.open_nursery() as n:

            async def one(action):
                try:
                    outcome[action] = await call(calls, action, 60)
                except ChargerTimeoutError as e:
                    outcome[action] = e

            n.start_soon(one, "Reset")
            await trio.testing.wait_all_tasks_blocked()
            n.start_soon(one, "ClearCache")
            await trio.testing.wait_all_tasks_blocked()
            wire.online.clear()
            calls.connection_lost("CP1")
            await trio.testing.wait_all_tasks_blocked()
            assert isinstance(outcome["Reset"], ChargerTimeoutError)
            assert "disconnected" in outcome["Reset"].message
            await trio.sleep(10)
            assert len(wire.sent) == 1, "nothing is sent while the charger is away"
            wire.online.add("CP1")
            calls.connected("CP1")
            assert wire.sent[-1][1][2] == "ClearCache"
            calls.answered("CP1", wire.sent[-1][1][1], {"status": "Accepted"}, None)

    run(clock, main)
    assert outcome["ClearCache"] == {"status": "Accepted"}


def test_a_send_that_raises_fails_that_call_and_the_next_one_goes(clock):
    """The gateway refusing a frame (the hub raises) fails that CALL with a clear error; it does not stay at the
    head of the charger's queue, and the calls behind it go in order."""
    from ampgate.errors import ChargerSendError, PayloadTooLargeError

    wire = Wire()

    def send(charger_id: str, frame: bytes) -> bool:
        action = msgspec.json.decode(frame)[2]
        if action == "Broken":
            raise RuntimeError("link refused the frame")
        if action == "Huge":
            raise PayloadTooLargeError("too large", field="payload", code="message_too_large")
        return wire.send(charger_id, frame)

    calls = CallManager(send)

    async def main():
        wire.online.clear()  # queue all three while the charger is away, in order
        broken = calls.enqueue("CP1", "Broken", {})
        huge = calls.enqueue("CP1", "Huge", {})
        reset = calls.enqueue("CP1", "Reset", {})
        wire.online.add("CP1")
        calls.connected("CP1")
        with pytest.raises(ChargerSendError, match="link refused the frame") as e:
            await calls.wait("CP1", broken)
        assert e.value.code == "send_failed" and not broken.sent
        with pytest.raises(PayloadTooLargeError) as e2:
            await calls.wait("CP1", huge)
        assert e2.value.field == "payload" and not huge.sent
        assert [m[1][2] for m in wire.sent] == ["Reset"] and reset.sent
        assert calls.answered("CP1", reset.unique_id, {"status": "Accepted"}, None)
        assert await calls.wait("CP1", reset) == {"status": "Accepted"}
        # Sent directly while connected: fails at once, and leaves nothing behind.
        with pytest.raises(ChargerSendError):
            await calls.call("CP1", "Broken", {})
        assert calls.pending("CP1") == 0
        assert await _answered_call(calls, wire) == {"status": "Accepted"}

    run(clock, main)


async def _answered_call(calls: CallManager, wire: Wire):
    c = calls.enqueue("CP1", "ClearCache", {})
    assert wire.sent[-1][1][2] == "ClearCache"
    calls.answered("CP1", c.unique_id, {"status": "Accepted"}, None)
    return await calls.wait("CP1", c)
