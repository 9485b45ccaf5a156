"""Firmware publishing without a node: the checks and the payload (pure), the timeline's cap, and the service
with the PublishFirmwareStatusNotification handler on a real store and router: notifications find their
publication by requestId, Published keeps its locations, failures are kept, unpublishing is idempotent and ends
every publication of that checksum, a controller still downloading refuses and nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ampgate.errors import ChargerTimeoutError, ConflictError, NotFoundError, ValidationError
from ampgate.events import FirmwarePublicationStatus
from ampgate.firmware_publish import (
    FirmwarePublications,
    PublicationRepository,
    PublishSpec,
    PublishStatusHandlers,
)
from ampgate.firmware_publish.state import MAX_TIMELINE, append, build_payload, check, with_answer
from ampgate.ocpp import payloads
from tests.ocpp.fake_commands import FakeCommander, World, run

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
AT = datetime(2026, 12, 1, tzinfo=UTC)


def spec(**kw) -> PublishSpec:
    return PublishSpec(**({"location": "https://fw.example.com/v2.bin", "checksum": MD5} | kw))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"location": ""}, "location"),
        ({"location": "fw.bin"}, "location"),
        ({"location": "gopher://x.test/fw"}, "location"),
        ({"location": "https://x.test/" + "a" * 500}, "location"),
        ({"checksum": MD5[:31]}, "checksum"),
        ({"checksum": MD5 + "0"}, "checksum"),
        ({"checksum": "z" * 32}, "checksum"),
        ({"retries": -1}, "retries"),
        ({"retry_interval_s": 2**31}, "retry_interval_s"),
    ],
)
def test_check_names_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        check(spec(**changes))
    assert info.value.field == field


def test_payload_and_timeline() -> None:
    payload = build_payload(7, spec(retries=2, retry_interval_s=30))
    assert payload == {
        "location": "https://fw.example.com/v2.bin",
        "checksum": MD5,
        "requestId": 7,
        "retries": 2,
        "retryInterval": 30,
    }
    payloads.validate_request("ocpp2.0.1", "PublishFirmware", payload)
    timeline: list = []
    for i in range(MAX_TIMELINE + 5):
        timeline = append(timeline, f"S{i}", AT + timedelta(seconds=i))
    assert (
        len(timeline) == MAX_TIMELINE
        and timeline[0].status == "S0"
        and timeline[-1].status == f"S{MAX_TIMELINE + 4}"
    )


def test_an_answer_recorded_after_a_notification_takes_its_place_after_requested() -> None:
    """The controller answers PublishFirmware before it notifies, but the node may record its first
    notification first: the answer goes right after Requested and does not become the status."""
    alone, newest = with_answer(append([], "Requested", AT), "Accepted", AT)
    assert [e.status for e in alone] == ["Requested", "Accepted"] and newest
    overtaken = append(append([], "Requested", AT), "Downloading", AT + timedelta(seconds=1))
    placed, newest = with_answer(overtaken, "Accepted", AT + timedelta(seconds=2))
    assert [e.status for e in placed] == ["Requested", "Accepted", "Downloading"] and not newest


def build(w: World) -> tuple[FirmwarePublications, PublicationRepository]:
    records = PublicationRepository(w.store)
    PublishStatusHandlers(records, w.h.bus, w.h.clock).register(w.h.router)
    return FirmwarePublications(records, w.commander, w.h.bus, w.h.clock), records


def statuses(row) -> list[str]:
    return [e.status for e in row.timeline]


def test_notifications_build_the_timeline_and_unpublish_ends_it(tmp_path: Path) -> None:
    commander = FakeCommander(
        "ocpp2.0.1",
        {"PublishFirmware": {"status": "Accepted"}, "UnpublishFirmware": {"status": "Unpublished"}},
    )

    async def scenario(w: World, built) -> None:
        service, records = built
        row = await service.publish("CP", spec(retries=1))
        assert commander.sent[0] == ("PublishFirmware", build_payload(row.id, spec(retries=1)))
        assert statuses(row) == ["Requested", "Accepted"]
        session = w.h.open("CP", "ocpp2.0.1")
        for status in ("Downloading", "Downloaded", "ChecksumVerified"):
            await w.notify(
                session, "PublishFirmwareStatusNotification", {"status": status, "requestId": row.id}
            )
        locations = ["http://lc.local/fw.bin", "ftp://lc.local/fw.bin"]
        await w.notify(
            session,
            "PublishFirmwareStatusNotification",
            {"status": "Published", "requestId": row.id, "location": locations},
        )
        await w.notify(session, "PublishFirmwareStatusNotification", {"status": "Idle"})
        await w.notify(
            session, "PublishFirmwareStatusNotification", {"status": "Downloading", "requestId": 999}
        )
        stored = service.get("CP", row.id)
        assert stored is not None
        assert statuses(stored) == [
            "Requested",
            "Accepted",
            "Downloading",
            "Downloaded",
            "ChecksumVerified",
            "Published",
        ]
        assert stored.published_locations == locations
        assert service.get("OTHER", row.id) is None  # a publication belongs to its charger
        # Another publication of the same image: unpublishing is by checksum, so both end.
        twin = await service.publish("CP", spec(location="https://mirror.example.com/v2.bin"))
        done = await service.unpublish("CP", row.id)
        assert done.status == "Unpublished" and commander.sent[-1] == ("UnpublishFirmware", {"checksum": MD5})
        twin_now = service.get("CP", twin.id)
        assert twin_now is not None and twin_now.status == "Unpublished"
        sent = len(commander.sent)
        assert await service.unpublish("CP", twin.id) == twin_now  # idempotent: nothing sent
        assert len(commander.sent) == sent
        events = [
            (e.publication_id, e.status, e.locations)
            for e in w.h.published()
            if isinstance(e, FirmwarePublicationStatus)
        ]
        assert events[:8] == [
            (row.id, "Requested", None),
            (row.id, "Accepted", None),
            (row.id, "Downloading", None),
            (row.id, "Downloaded", None),
            (row.id, "ChecksumVerified", None),
            (row.id, "Published", tuple(locations)),
            (None, "Idle", None),
            (None, "Downloading", None),
        ]
        assert events[-2:] == [(row.id, "Unpublished", None), (twin.id, "Unpublished", None)]
        assert [r.id for r in records.page("CP", 10)] == [twin.id, row.id]

    run(tmp_path, commander, build, scenario)


def test_refusals_failures_and_bad_input(tmp_path: Path) -> None:
    commander = FakeCommander(
        "ocpp2.0.1",
        {"PublishFirmware": {"status": "Rejected"}, "UnpublishFirmware": {"status": "DownloadOngoing"}},
    )

    async def scenario(w: World, built) -> None:
        service, records = built
        rejected = await service.publish("CP", spec())
        assert statuses(rejected) == ["Requested", "Rejected"]
        with pytest.raises(ConflictError) as ongoing:
            await service.unpublish("CP", rejected.id)
        assert ongoing.value.code == "download_ongoing"
        assert service.get("CP", rejected.id) == rejected  # nothing changed
        commander.replies["UnpublishFirmware"] = {"status": "NoFirmware"}
        assert (await service.unpublish("CP", rejected.id)).status == "NoFirmware"
        with pytest.raises(NotFoundError) as nf:
            await service.unpublish("CP", 12345)
        assert nf.value.field == "request_id"
        commander.replies["PublishFirmware"] = ChargerTimeoutError("slow")
        with pytest.raises(ChargerTimeoutError):
            await service.publish("CP", spec())
        timed_out = records.page("CP", 1)[0]
        assert (timed_out.status, timed_out.error_code) == ("TimedOut", "charger_timeout")
        sent = len(commander.sent)
        with pytest.raises(ValidationError):
            await service.publish("CP", spec(checksum="nope"))
        commander.protocol = "ocpp1.6"
        with pytest.raises(ConflictError) as old:
            await service.publish("CP", spec())
        assert old.value.code == "unsupported_protocol"
        assert len(commander.sent) == sent and len(records.page("CP", 10)) == 2

    run(tmp_path, commander, build, scenario)
