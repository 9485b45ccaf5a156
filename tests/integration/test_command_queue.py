"""Commands to chargers that are away, against a real node, with chargers written with the `ocpp` package's
ChargePoint classes (asyncio, on `websockets`): a queued command is delivered in order when its charger comes
back, also after a node restart; an expired one is never sent; a cancelled one neither; every command has a
record (`X-Command-Id`), the synchronous ones too; bad input is refused naming the field, with nothing queued."""

from __future__ import annotations

import asyncio
import time

import httpx
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.ocpp_clients import ocpp_charge_point

DELIVERY_WAIT = 15.0


class Recording16(ChargePoint16):
    """Answers Reset and ChangeAvailability Accepted and records them, in order (read after the session)."""

    got: list[tuple[str, str]] = []  # noqa: RUF012

    @on(Action16.reset)
    async def on_reset(self, type, **_):
        self.got.append((self.id, f"Reset {type}"))
        return result16.Reset(status="Accepted")

    @on(Action16.change_availability)
    async def on_change_availability(self, connector_id, type, **_):
        self.got.append((self.id, f"ChangeAvailability {type}"))
        return result16.ChangeAvailability(status="Accepted")

    @on(Action16.get_configuration)
    async def on_get_configuration(self, **_):
        await asyncio.sleep(5)  # longer than the node's --call-timeout
        return result16.GetConfiguration(configuration_key=[])


class Recording201(ChargePoint201):
    got: list[tuple[str, str]] = []  # noqa: RUF012

    @on(Action201.reset)
    async def on_reset(self, type, **_):
        self.got.append((self.id, f"Reset {type}"))
        return result201.Reset(status="Accepted")


def api(node) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=node.api_url, headers={"Authorization": f"Bearer {node.admin_token}"}, timeout=30
    )


async def queue(node, charger_id: str, name: str, body, **params) -> httpx.Response:
    async with api(node) as c:
        return await c.post(
            f"/chargers/{charger_id}/commands/{name}", json=body, params={"queue": "true", **params}
        )


async def command(node, command_id: str) -> dict:
    async with api(node) as c:
        r = await c.get(f"/commands/{command_id}")
        assert r.status_code == 200, r.text
        return r.json()


async def settled(node, command_id: str, states=("answered", "failed", "expired", "cancelled")) -> dict:
    deadline = time.monotonic() + DELIVERY_WAIT
    while True:
        c = await command(node, command_id)
        if c["state"] in states or time.monotonic() > deadline:
            return c
        await asyncio.sleep(0.1)


async def seen(cp_class, charger_id: str, count: int) -> list[str]:
    deadline = time.monotonic() + DELIVERY_WAIT
    while time.monotonic() < deadline:
        got = [what for who, what in cp_class.got if who == charger_id]
        if len(got) >= count:
            return got
        await asyncio.sleep(0.05)
    return [what for who, what in cp_class.got if who == charger_id]


def test_commands_queued_for_an_offline_charger_survive_a_restart_and_arrive_in_order(node_factory):
    first = node_factory()
    token = first.admin_token

    async def before_restart():
        async with ocpp_charge_point(Recording16, first.ocpp_url, "QUEUE16", "ocpp1.6", boot=True):
            pass  # known and accepted, then gone
        reset = await queue(first, "QUEUE16", "Reset", {"type": "Soft"})
        avail = await queue(first, "QUEUE16", "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
        async with api(first) as c:
            listed = await c.get("/chargers/QUEUE16/commands", params={"state": "queued"})
        return reset, avail, listed

    reset, avail, listed = asyncio.run(before_restart())
    assert reset.status_code == 202, reset.text
    body = reset.json()
    assert body["state"] == "queued" and body["queued"] is True and body["action"] == "Reset"
    assert reset.headers["X-Command-Id"] == body["id"]
    assert reset.headers["Location"] == f"/api/v1/commands/{body['id']}"
    assert body["expires_at"] is not None and body["sent_at"] is None
    assert avail.status_code == 202, avail.text
    # Newest first: the queue is delivered oldest first.
    assert [c["id"] for c in listed.json()["items"]] == [avail.json()["id"], body["id"]]
    assert Recording16.got == []

    first.stop()
    second = node_factory(db=first.db)
    second.admin_token = token

    async def after_restart():
        still = await command(second, body["id"])
        async with ocpp_charge_point(Recording16, second.ocpp_url, "QUEUE16", "ocpp1.6", boot=True):
            got = await seen(Recording16, "QUEUE16", 2)
            done = [await settled(second, body["id"]), await settled(second, avail.json()["id"])]
        return still, got, done

    still, got, done = asyncio.run(after_restart())
    assert still["state"] == "queued"
    assert got == ["Reset Soft", "ChangeAvailability Inoperative"]
    for c in done:
        assert c["state"] == "answered", c
        assert c["reply"] == {"status": "Accepted"} and c["sent_at"] and c["finished_at"] and c["unique_id"]


def test_a_201_charger_that_only_reconnects_gets_its_queue(node):
    async def scenario():
        async with ocpp_charge_point(Recording201, node.ocpp_url, "QUEUE201", "ocpp2.0.1", boot=True):
            pass
        queued = await queue(node, "QUEUE201", "Reset", {"type": "Immediate"})
        # A 2.0.1 charger whose link dropped resumes its accepted session: no new BootNotification.
        async with ocpp_charge_point(Recording201, node.ocpp_url, "QUEUE201", "ocpp2.0.1", boot=False):
            got = await seen(Recording201, "QUEUE201", 1)
            done = await settled(node, queued.json()["id"])
        return queued, got, done

    queued, got, done = asyncio.run(scenario())
    assert queued.status_code == 202, queued.text
    assert got == ["Reset Immediate"]
    assert done["state"] == "answered" and done["reply"] == {"status": "Accepted"}


def test_an_expired_or_cancelled_command_is_never_sent(node):
    async def scenario():
        async with ocpp_charge_point(Recording16, node.ocpp_url, "QUEUEX", "ocpp1.6", boot=True):
            pass
        short = await queue(node, "QUEUEX", "Reset", {"type": "Hard"}, ttl_s="0.5")
        kept = await queue(node, "QUEUEX", "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
        cancelled = await queue(node, "QUEUEX", "Reset", {"type": "Soft"})
        async with api(node) as c:
            cancel = await c.post(f"/commands/{cancelled.json()['id']}/cancel")
            again = await c.post(f"/commands/{cancelled.json()['id']}/cancel")
        await asyncio.sleep(1.0)  # the short one's time to live passes while the charger is away
        async with ocpp_charge_point(Recording16, node.ocpp_url, "QUEUEX", "ocpp1.6", boot=True):
            got = await seen(Recording16, "QUEUEX", 1)
            states = [
                await settled(node, short.json()["id"]),
                await settled(node, kept.json()["id"]),
                await command(node, cancelled.json()["id"]),
            ]
            await asyncio.sleep(0.5)  # nothing else arrives
            got = [what for who, what in Recording16.got if who == "QUEUEX"]
        async with api(node) as c:
            late_cancel = await c.post(f"/commands/{kept.json()['id']}/cancel")
        return cancel, again, got, states, late_cancel

    cancel, again, got, states, late_cancel = asyncio.run(scenario())
    assert cancel.status_code == 200 and cancel.json()["state"] == "cancelled"
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    assert got == ["ChangeAvailability Inoperative"]
    short, kept, cancelled = states
    assert short["state"] == "expired" and short["sent_at"] is None
    assert kept["state"] == "answered"
    assert cancelled["state"] == "cancelled" and cancelled["sent_at"] is None
    assert late_cancel.status_code == 409 and late_cancel.json()["code"] == "command_not_cancellable"


def test_a_command_sent_now_has_a_record_too(node_factory):
    node = node_factory("--call-timeout", "1.5")

    async def scenario():
        async with (
            ocpp_charge_point(Recording16, node.ocpp_url, "SYNC16", "ocpp1.6", boot=True),
            api(node) as c,
        ):
            ok = await c.post("/chargers/SYNC16/commands/Reset", json={"type": "Soft"})
            slow = await c.post("/chargers/SYNC16/commands/GetConfiguration", json={})
        return (
            ok,
            slow,
            await command(node, ok.headers["X-Command-Id"]),
            await command(node, slow.headers["X-Command-Id"]),
        )

    ok, slow, ok_record, slow_record = asyncio.run(scenario())
    assert ok.status_code == 200 and ok.json() == {"status": "Accepted"}
    assert ok_record["state"] == "answered" and ok_record["queued"] is False
    assert ok_record["reply"] == {"status": "Accepted"} and ok_record["payload"] == {"type": "Soft"}
    assert slow.status_code == 504
    assert slow_record["state"] == "failed" and slow_record["error_code"] == "charger_timeout"


def test_bad_queue_requests_name_the_field_and_queue_nothing(node):
    async def scenario():
        async with ocpp_charge_point(Recording16, node.ocpp_url, "QBAD", "ocpp1.6", boot=True):
            pass
        async with api(node) as c:
            await c.post("/chargers", json={"id": "NEVERSEEN"})
            out = {
                "negative": await queue(node, "QBAD", "Reset", {"type": "Soft"}, ttl_s="-1"),
                "too_long": await queue(node, "QBAD", "Reset", {"type": "Soft"}, ttl_s=str(8 * 86400)),
                "not_a_number": await queue(node, "QBAD", "Reset", {"type": "Soft"}, ttl_s="soon"),
                "ttl_without_queue": await c.post(
                    "/chargers/QBAD/commands/Reset", json={"type": "Soft"}, params={"ttl_s": "60"}
                ),
                "bad_payload": await queue(node, "QBAD", "Reset", {"type": "Sideways"}),
                "unknown_action": await queue(node, "QBAD", "Teleport", {}),
                "unknown_charger": await queue(node, "NOBODY", "Reset", {"type": "Soft"}),
                "never_connected": await queue(node, "NEVERSEEN", "Reset", {"type": "Soft"}),
                "log_command": await queue(node, "QBAD", "GetDiagnostics", {"location": "ftp://x/"}),
                "unknown_command_id": await c.get("/commands/0123456789abcdef"),
                "cancel_unknown": await c.post("/commands/0123456789abcdef/cancel"),
                "bad_state_filter": await c.get("/chargers/QBAD/commands", params={"state": "lost"}),
            }
            listed = await c.get("/chargers/QBAD/commands")
        return out, listed

    out, listed = asyncio.run(scenario())
    expect = {
        "negative": (422, "ttl_s"),
        "too_long": (422, "ttl_s"),
        "not_a_number": (422, "ttl_s"),
        "ttl_without_queue": (422, "ttl_s"),
        "bad_payload": (422, "type"),
        "unknown_action": (404, "name"),
        "unknown_charger": (404, "id"),
        "log_command": (422, "queue"),
        "unknown_command_id": (404, "command_id"),
        "cancel_unknown": (404, "command_id"),
        "bad_state_filter": (422, "state"),
    }
    for name, (status, field) in expect.items():
        r = out[name]
        assert (r.status_code, r.json().get("field")) == (status, field), (name, r.text)
    never = out["never_connected"]
    assert never.status_code == 409 and never.json()["code"] == "protocol_unknown"
    assert listed.status_code == 200 and listed.json()["items"] == []


def test_a_full_queue_is_429_and_keeps_what_it_has(node):
    async def scenario():
        async with ocpp_charge_point(Recording16, node.ocpp_url, "QFULL", "ocpp1.6", boot=True):
            pass
        async with api(node) as c:
            codes = []
            for _ in range(101):
                r = await c.post(
                    "/chargers/QFULL/commands/Reset", json={"type": "Soft"}, params={"queue": "true"}
                )
                codes.append((r.status_code, r.json().get("code")))
            listed = await c.get("/chargers/QFULL/commands", params={"state": "queued", "limit": "1000"})
        return codes, listed

    codes, listed = asyncio.run(scenario())
    assert [s for s, _ in codes[:100]] == [202] * 100
    assert codes[100] == (429, "queue_full")
    assert len(listed.json()["items"]) == 100


def test_a_queued_command_retried_with_its_idempotency_key_is_queued_once(node):
    async def scenario():
        async with ocpp_charge_point(Recording16, node.ocpp_url, "QIDEM", "ocpp1.6", boot=True):
            pass
        headers = {"Authorization": f"Bearer {node.admin_token}", "Idempotency-Key": "queue-QIDEM-1"}
        async with httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30) as c:
            url, params = "/chargers/QIDEM/commands/Reset", {"queue": "true"}
            first = await c.post(url, json={"type": "Soft"}, params=params)
            again = await c.post(url, json={"type": "Soft"}, params=params)
        async with api(node) as c:
            listed = await c.get("/chargers/QIDEM/commands")
        return first, again, listed

    first, again, listed = asyncio.run(scenario())
    assert first.status_code == again.status_code == 202
    assert first.headers["X-Command-Id"] == again.headers["X-Command-Id"] == first.json()["id"]
    assert [c["id"] for c in listed.json()["items"]] == [first.json()["id"]]
