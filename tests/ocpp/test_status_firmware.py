"""Connector status and firmware status handlers in-process: what is recorded, and what is published (a status
change with the old and new status; a late older report changes nothing; firmware statuses as sent)."""

from __future__ import annotations

from datetime import datetime

from ampgate.events import ConnectorStatusChanged, FirmwareStatusReported
from ampgate.ocpp.firmware import FirmwareHandlers
from ampgate.ocpp.status import StatusHandlers
from ampgate.store import StatusReport

from .fakes import Harness


class StatusTable:
    def __init__(self) -> None:
        self.records: list[StatusReport] = []

    def record(self, report: StatusReport) -> None:
        self.records.append(report)


def test_status_changes_are_published_with_old_and_new_and_late_reports_change_nothing() -> None:
    h = Harness(accepted=["CP1", "CP2"])
    table = StatusTable()
    status = StatusHandlers(table, h.bus, h.clock)
    status.register(h.router)
    s16 = h.open("CP1", "ocpp1.6", conn_id=1)
    s201 = h.open("CP2", "ocpp2.0.1", conn_id=2)

    def report16(st: str, at: str, error: str = "NoError") -> None:
        payload = {"connectorId": 1, "errorCode": error, "status": st, "timestamp": at}
        assert h.call(s16, "StatusNotification", payload)[0] == 3

    report16("Available", "2026-11-30T07:00:00Z")
    report16("Available", "2026-11-30T07:01:00Z")  # unchanged: recorded, not published
    report16("Charging", "2026-11-30T07:02:00Z")
    report16(
        "Faulted", "2026-11-30T06:00:00Z", "GroundFailure"
    )  # older than the last: stored as-is, no event
    changes = h.published()
    assert [(e.old_status, e.status) for e in changes] == [(None, "Available"), ("Available", "Charging")]  # type: ignore[attr-defined]
    first = changes[0]
    assert isinstance(first, ConnectorStatusChanged)
    assert (first.charger_id, first.evse_id, first.connector_id, first.error_code) == ("CP1", None, 1, None)
    assert status.last("CP1", None, 1) == "Charging"
    assert len(table.records) == 4 and table.records[-1].error_code == "GroundFailure"

    notify = {
        "generatedAt": "2026-11-30T07:03:00Z",
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": "2026-11-30T07:03:00Z",
                "trigger": "Delta",
                "actualValue": "Occupied",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
            },
            {  # not a connector's availability: ignored
                "eventId": 2,
                "timestamp": "2026-11-30T07:03:00Z",
                "trigger": "Delta",
                "actualValue": "1",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Controller"},
                "variable": {"name": "Problem"},
            },
        ],
    }
    assert h.call(s201, "NotifyEvent", notify)[0] == 3
    sn = {"timestamp": "2026-11-30T07:04:00Z", "connectorStatus": "Available", "evseId": 2, "connectorId": 1}
    assert h.call(s201, "StatusNotification", sn)[0] == 3
    changes = h.published()
    assert [(e.evse_id, e.old_status, e.status) for e in changes] == [
        (2, None, "Occupied"),
        (2, "Occupied", "Available"),
    ]  # type: ignore[attr-defined]
    assert changes[1].reported_at == datetime.fromisoformat("2026-11-30T07:04:00+00:00")  # type: ignore[attr-defined]


def test_firmware_statuses_are_recorded_and_published_as_sent() -> None:
    h = Harness(accepted=["CP1", "CP2"])
    FirmwareHandlers(h.chargers, h.bus, h.clock).register(h.router)
    s16 = h.open("CP1", "ocpp1.6", conn_id=1)
    s201 = h.open("CP2", "ocpp2.0.1", conn_id=2)
    assert h.call(s16, "FirmwareStatusNotification", {"status": "Downloading"})[0] == 3
    assert (
        h.call(s16, "SignedFirmwareStatusNotification", {"status": "InvalidSignature", "requestId": 4})[0]
        == 3
    )
    assert h.call(s201, "FirmwareStatusNotification", {"status": "Installed", "requestId": 9})[0] == 3
    expected = [("CP1", "Downloading", None), ("CP1", "InvalidSignature", 4), ("CP2", "Installed", 9)]
    assert h.chargers.firmware == expected
    events = h.published()
    assert all(isinstance(e, FirmwareStatusReported) for e in events)
    assert [(e.charger_id, e.status, e.request_id) for e in events] == expected  # type: ignore[attr-defined]
