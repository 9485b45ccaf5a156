"""The log service, the status handlers and the upload receiver in-process, on a real store file and a stand-in
Commander: what is sent, what each reply, failure and notification does to the request's row and token, the
1.6 fallback to GetDiagnostics, and files received with their SHA-256 (one use per token)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio

from ampgate.errors import (
    ChargerCallError,
    ChargerTimeoutError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
)
from ampgate.events import LogStatusReported, LogUploaded
from ampgate.logs import LogRepository, LogService, LogSpec, LogStatusHandlers, UploadReceiver
from ampgate.store import Store
from tests.ocpp.fakes import Harness

PUBLIC = "https://cs.example.test"


class FakeCommander:
    """Answers each action with what `replies` holds for it (an exception is raised), and records what was
    sent."""

    def __init__(self, protocol: str, replies: dict[str, Any]) -> None:
        self.protocol = protocol
        self.replies = replies
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def ready(self, charger_id: str, action: str) -> str:
        return self.protocol

    async def call(self, charger_id: str, action: str, payload: Any) -> Any:
        self.sent.append((action, payload))
        reply = self.replies[action]
        if isinstance(reply, Exception):
            raise reply
        return reply


class World:
    def __init__(self, store: Store, tmp: Path, commander: FakeCommander, max_bytes: int) -> None:
        self.h = Harness(accepted=["CP"])
        self.repo = LogRepository(store)
        self.commander = commander
        self.service = LogService(self.repo, commander, self.h.bus, self.h.clock, lambda p: PUBLIC + p)
        self.receiver = UploadReceiver(self.repo, self.h.bus, self.h.clock, str(tmp / "uploads"), max_bytes)
        LogStatusHandlers(self.repo, self.h.bus, self.h.clock).register(self.h.router)

    def token(self, index: int = -1) -> str:
        """The token in the location of the `index`th request sent."""
        _, payload = self.commander.sent[index]
        location = payload.get("location") or payload["log"]["remoteLocation"]
        return urlsplit(location).path.rsplit("/", 1)[-1]

    async def notify(self, session: Any, action: str, payload: dict[str, Any]) -> None:
        """A charger's notification through the router; its reply comes once the row is committed."""
        assert self.h.call(session, action, payload) is None  # answered later, from the router's nursery
        with trio.fail_after(5):
            while not self.h.link.sent:  # noqa: ASYNC110 (the fake link has no event to wait on)
                await trio.sleep(0.01)
        _conn, reply = self.h.link.sent.pop()
        assert reply[0] == 3 and reply[2] == {}


def run(
    tmp_path: Path,
    commander: FakeCommander,
    scenario: Callable[[World], Awaitable[None]],
    max_bytes: int = 1000,
) -> None:
    async def main() -> None:
        store = Store(str(tmp_path / "logs.db"))
        world = World(store, tmp_path, commander, max_bytes)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            await nursery.start(world.h.router.run)
            with trio.fail_after(20):
                await scenario(world)
            nursery.cancel_scope.cancel()

    trio.run(main)


def statuses(row: Any) -> list[str]:
    return [e.status for e in row.timeline]


def test_a_201_getlog_is_sent_with_a_node_url_and_notifications_follow_its_request_id(tmp_path) -> None:
    commander = FakeCommander("ocpp2.0.1", {"GetLog": {"status": "Accepted", "filename": "cp.log"}})

    async def scenario(w: World) -> None:
        row = await w.service.request("CP", LogSpec(log_type="SecurityLog", retries=1))
        action, payload = commander.sent[0]
        assert action == "GetLog" and payload["requestId"] == row.id == row.request_id
        assert payload["logType"] == "SecurityLog" and payload["retries"] == 1
        assert payload["log"]["remoteLocation"].startswith(f"{PUBLIC}/public/v1/uploads/")
        token = w.token()
        assert len(token) >= 43 and token not in row.location
        assert row.location == f"{PUBLIC}/public/v1/uploads/{{token}}"
        assert (row.status, row.upload_state, row.charger_filename) == ("Accepted", "open", "cp.log")
        s = w.h.open("CP", "ocpp2.0.1")
        for status in ("Uploading", "Uploaded"):
            await w.notify(s, "LogStatusNotification", {"status": status, "requestId": row.id})
        await w.notify(s, "LogStatusNotification", {"status": "Uploading", "requestId": 999})
        await w.notify(s, "LogStatusNotification", {"status": "Idle"})
        stored = w.repo.get(row.id)
        assert stored is not None and statuses(stored) == ["Requested", "Accepted", "Uploading", "Uploaded"]
        events = [e for e in w.h.published() if isinstance(e, LogStatusReported)]
        assert [(e.log_id, e.status) for e in events] == [
            (row.id, "Requested"),
            (row.id, "Accepted"),
            (row.id, "Uploading"),
            (row.id, "Uploaded"),
            (None, "Uploading"),
            (None, "Idle"),
        ]

    run(tmp_path, commander, scenario)


def test_a_16_charger_without_getlog_gets_getdiagnostics_and_its_notifications_find_the_open_one(
    tmp_path,
) -> None:
    commander = FakeCommander(
        "ocpp1.6",
        {
            "GetLog": ChargerCallError("no", ocpp_code="NotImplemented"),
            "GetDiagnostics": {"fileName": "diag.zip"},
        },
    )

    async def scenario(w: World) -> None:
        first = await w.service.request("CP", LogSpec())
        assert [a for a, _ in commander.sent] == ["GetLog", "GetDiagnostics"]
        assert first.command == "GetDiagnostics" and first.status == "Accepted"
        assert commander.sent[0][1]["log"]["remoteLocation"] == commander.sent[1][1]["location"]
        # The charger is remembered: the next one goes straight out as GetDiagnostics.
        second = await w.service.request("CP", LogSpec(location="ftp://u:secret@ftp.example.test/in/"))
        assert [a for a, _ in commander.sent][2:] == ["GetDiagnostics"]
        assert commander.sent[2][1]["location"] == "ftp://u:secret@ftp.example.test/in/"
        assert second.location == "ftp://u:***@ftp.example.test/in/" and second.upload_state is None
        # A SecurityLog has no GetDiagnostics: the refusal stands.
        with pytest.raises(ChargerCallError):
            await w.service.request("CP", LogSpec(log_type="SecurityLog"))
        s = w.h.open("CP", "ocpp1.6")
        await w.notify(s, "DiagnosticsStatusNotification", {"status": "Uploading"})
        await w.notify(s, "DiagnosticsStatusNotification", {"status": "Uploaded"})
        # The second request was the latest open one; now the first is.
        await w.notify(s, "DiagnosticsStatusNotification", {"status": "UploadFailed"})
        await w.notify(s, "DiagnosticsStatusNotification", {"status": "Idle"})
        a, b = w.repo.get(first.id), w.repo.get(second.id)
        assert a is not None and b is not None
        assert statuses(b) == ["Requested", "Accepted", "Uploading", "Uploaded"]
        assert statuses(a) == ["Requested", "Accepted", "UploadFailed"]

    run(tmp_path, commander, scenario)


def test_refusals_and_failures_void_the_token_and_a_timeout_keeps_it(tmp_path) -> None:
    commander = FakeCommander("ocpp2.0.1", {"GetLog": {"status": "Rejected"}})

    async def scenario(w: World) -> None:
        rejected = await w.service.request("CP", LogSpec())
        assert (rejected.status, rejected.upload_state) == ("Rejected", "void")
        with pytest.raises(NotFoundError) as nf:
            w.receiver.begin(w.token())
        assert nf.value.code == "upload_not_found"
        commander.replies["GetLog"] = ChargerCallError("boom", ocpp_code="InternalError")
        with pytest.raises(ChargerCallError):
            await w.service.request("CP", LogSpec())
        failed = w.repo.page("CP", 1)[0]
        assert (failed.status, failed.upload_state, failed.error_code) == ("Failed", "void", "charger_error")
        commander.replies["GetLog"] = ChargerTimeoutError("slow")
        with pytest.raises(ChargerTimeoutError):
            await w.service.request("CP", LogSpec())
        timed_out = w.repo.page("CP", 1)[0]
        assert (timed_out.status, timed_out.upload_state) == ("TimedOut", "open")
        sink = w.receiver.begin(w.token())  # the charger may have it: its upload is still taken
        await sink.close()
        # Bad input is refused before anything is stored or sent.
        sent = len(commander.sent)
        for spec, field in (
            (LogSpec(location="gopher://x.test/"), "location"),
            (LogSpec(log_type="KernelLog"), "log_type"),
            (LogSpec(retries=-1), "retries"),
        ):
            with pytest.raises(ValidationError) as info:
                await w.service.request("CP", spec)
            assert info.value.field == field
        assert len(commander.sent) == sent and len(w.repo.page("CP", 100)) == 3

    run(tmp_path, commander, scenario)


def test_accepted_canceled_ends_the_chargers_earlier_open_getlog(tmp_path) -> None:
    commander = FakeCommander("ocpp2.0.1", {"GetLog": {"status": "Accepted"}})

    async def scenario(w: World) -> None:
        first = await w.service.request("CP", LogSpec())
        commander.replies["GetLog"] = {"status": "AcceptedCanceled"}
        second = await w.service.request("CP", LogSpec())
        assert second.status == "AcceptedCanceled" and second.upload_state == "open"
        old = w.repo.get(first.id)
        assert old is not None and statuses(old)[-1] == "Canceled" and old.upload_state == "void"

    run(tmp_path, commander, scenario)


def test_the_generic_command_fills_in_the_location_only_when_absent(tmp_path) -> None:
    commander = FakeCommander("ocpp2.0.1", {"GetLog": {"status": "Accepted"}})

    async def scenario(w: World) -> None:
        reply = await w.service.command("CP", "GetLog", {"logType": "DiagnosticsLog", "requestId": 77})
        assert reply == {"status": "Accepted"}
        assert commander.sent[-1][1]["log"]["remoteLocation"].startswith(f"{PUBLIC}/public/v1/uploads/")
        row = w.repo.page("CP", 1)[0]
        assert (row.request_id, row.upload_state, row.status) == (77, "open", "Accepted")
        own = {"logType": "DiagnosticsLog", "requestId": 78, "log": {"remoteLocation": "https://o.test/x"}}
        await w.service.command("CP", "GetLog", own)
        assert commander.sent[-1][1] == own
        assert w.repo.page("CP", 1)[0].upload_state is None
        with pytest.raises(ValidationError) as info:
            await w.service.command("CP", "GetLog", {"requestId": 79})
        assert info.value.field == "logType"
        with pytest.raises(NotFoundError) as nf:
            await w.service.command("CP", "GetDiagnostics", {})
        assert nf.value.code == "unknown_command"

    run(tmp_path, commander, scenario)


def test_an_upload_is_stored_whole_with_its_sha256_once_per_token(tmp_path) -> None:
    commander = FakeCommander("ocpp2.0.1", {"GetLog": {"status": "Accepted", "filename": "../../etc/x.log"}})
    body = os.urandom(900)

    async def scenario(w: World) -> None:
        row = await w.service.request("CP", LogSpec())
        token = w.token()
        sink = w.receiver.begin(token)
        with pytest.raises(ConflictError) as busy:
            w.receiver.begin(token)
        assert busy.value.code == "upload_in_progress"
        await sink.write(body[:500])
        await sink.write(body[500:])
        stored = await sink.commit(None)
        await sink.close()
        assert stored.file_sha256 == hashlib.sha256(body).hexdigest() and stored.file_size == 900
        assert stored.file_name == "x.log" and stored.upload_state == "received"
        assert stored.file_path is not None and await trio.Path(stored.file_path).read_bytes() == body
        with pytest.raises(ConflictError) as used:
            w.receiver.begin(token)
        assert used.value.code == "upload_used"
        uploaded = [e for e in w.h.published() if isinstance(e, LogUploaded)]
        assert [(e.log_id, e.size) for e in uploaded] == [(row.id, 900)]
        # Too large: refused, the partial file gone, and the token still takes the retry.
        await w.service.request("CP", LogSpec())
        token = w.token()
        sink = w.receiver.begin(token)
        await sink.write(b"x" * 600)
        with pytest.raises(PayloadTooLargeError):
            await sink.write(b"x" * 600)
        await sink.close()
        assert sorted(os.listdir(w.receiver.directory)) == [os.path.basename(stored.file_path)]
        retry = w.receiver.begin(token)
        await retry.write(b"small")
        assert (await retry.commit("a b.txt")).file_name == "a_b.txt"
        await retry.close()
        with pytest.raises(NotFoundError):
            w.receiver.begin("not-a-token")
        # An expired URL takes nothing.
        await w.service.request("CP", LogSpec())
        w.h.clock.at += 2 * 24 * 3600
        with pytest.raises(NotFoundError) as expired:
            w.receiver.begin(w.token())
        assert expired.value.code == "upload_expired"

    run(tmp_path, commander, scenario)
