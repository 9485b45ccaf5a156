"""The rules of a log request without any I/O: which statuses end it, where a notification belongs, what is
sent, when a token dies, when a 1.6 GetLog falls back to GetDiagnostics, and which locations are accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ampgate.errors import ValidationError
from ampgate.logs import state
from ampgate.logs.state import Candidate, LogParams, TimelineEntry
from ampgate.ocpp import payloads

AT = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)


def test_final_statuses_close_a_request_and_accepted_canceled_does_not() -> None:
    for status in ("Uploaded", "UploadFailed", "UploadFailure", "BadMessage", "NotSupportedOperation"):
        assert not state.is_open(status)
    for status in ("Requested", "Accepted", "AcceptedCanceled", "Uploading", "TimedOut", "Idle"):
        assert state.is_open(status)


def test_a_diagnostics_notification_belongs_to_the_latest_open_request() -> None:
    rows = [Candidate(3, "Uploaded"), Candidate(1, "Uploading"), Candidate(2, "Accepted")]
    assert state.latest_open(rows) == 2
    assert state.latest_open([Candidate(5, "Rejected"), Candidate(4, "Failed")]) is None
    assert state.latest_open([]) is None
    # Idle without a request id names no request; with one it does.
    assert not state.notification_applies("Idle", None)
    assert state.notification_applies("Idle", 7)
    assert state.notification_applies("Uploading", None)


def test_the_timeline_keeps_its_first_entry_and_the_newest_when_capped() -> None:
    timeline: list[TimelineEntry] = []
    for i in range(state.MAX_TIMELINE + 10):
        timeline = state.append(timeline, f"S{i}", AT + timedelta(seconds=i))
    assert len(timeline) == state.MAX_TIMELINE
    assert timeline[0] == TimelineEntry("S0", "2026-11-30T08:00:00.000Z")
    assert timeline[1].status == "S11" and timeline[-1].status == f"S{state.MAX_TIMELINE + 9}"
    with pytest.raises(ValueError):
        state.append([], "Requested", datetime(2026, 1, 1))


def test_replies_give_a_status_and_only_refusals_and_failures_void_the_token() -> None:
    assert state.reply_outcome("GetLog", {"status": "Accepted", "filename": "a.log"}) == ("Accepted", "a.log")
    assert state.reply_outcome("GetLog", {"status": "Rejected"}) == ("Rejected", None)
    assert state.reply_outcome("GetDiagnostics", {"fileName": "d.zip"}) == ("Accepted", "d.zip")
    assert state.reply_outcome("GetDiagnostics", {}) == ("Accepted", None)
    for status in ("Rejected", "Failed", "Canceled"):
        assert not state.token_stays_valid(status)
    for status in ("Accepted", "AcceptedCanceled", "TimedOut", "Uploading", "Uploaded", "UploadFailure"):
        assert state.token_stays_valid(status)


def test_only_a_16_diagnostics_getlog_refused_as_unknown_falls_back() -> None:
    assert state.falls_back("ocpp1.6", "GetLog", "DiagnosticsLog", "NotImplemented")
    assert state.falls_back("ocpp1.6", "GetLog", "DiagnosticsLog", "NotSupported")
    assert not state.falls_back("ocpp1.6", "GetLog", "SecurityLog", "NotSupported")
    assert not state.falls_back("ocpp1.6", "GetLog", "DiagnosticsLog", "InternalError")
    assert not state.falls_back("ocpp2.0.1", "GetLog", "DiagnosticsLog", "NotSupported")
    assert not state.falls_back("ocpp1.6", "GetDiagnostics", "DiagnosticsLog", "NotSupported")


def test_payloads_are_valid_requests_of_their_version() -> None:
    params = LogParams(
        log_type="SecurityLog",
        oldest_at=AT - timedelta(days=1),
        latest_at=AT,
        retries=2,
        retry_interval_s=60,
    )
    get_log = state.build_payload("GetLog", 7, "https://x.test/u/t", params)
    assert get_log == {
        "logType": "SecurityLog",
        "requestId": 7,
        "log": {
            "remoteLocation": "https://x.test/u/t",
            "oldestTimestamp": "2026-11-29T08:00:00.000Z",
            "latestTimestamp": "2026-11-30T08:00:00.000Z",
        },
        "retries": 2,
        "retryInterval": 60,
    }
    for protocol in ("ocpp1.6", "ocpp2.0.1"):
        payloads.validate_request(protocol, "GetLog", get_log)
    diag = state.build_payload("GetDiagnostics", 7, "ftp://x.test/in", params)
    assert diag == {
        "location": "ftp://x.test/in",
        "startTime": "2026-11-29T08:00:00.000Z",
        "stopTime": "2026-11-30T08:00:00.000Z",
        "retries": 2,
        "retryInterval": 60,
    }
    payloads.validate_request("ocpp1.6", "GetDiagnostics", diag)
    assert state.build_payload("GetDiagnostics", 1, "ftp://x.test/in", LogParams()) == {
        "location": "ftp://x.test/in"
    }


def test_raw_payloads_get_the_nodes_location_only_when_they_name_none() -> None:
    raw = {"logType": "DiagnosticsLog", "requestId": 5}
    assert state.given_location("GetLog", raw) is None
    filled = state.with_location("GetLog", raw, "https://n.test/u")
    assert filled["log"] == {"remoteLocation": "https://n.test/u"} and "log" not in raw
    with_log = {
        "logType": "DiagnosticsLog",
        "requestId": 5,
        "log": {"oldestTimestamp": "2026-01-01T00:00:00Z"},
    }
    assert state.with_location("GetLog", with_log, "https://n.test/u")["log"] == {
        "oldestTimestamp": "2026-01-01T00:00:00Z",
        "remoteLocation": "https://n.test/u",
    }
    assert state.given_location("GetLog", {"log": {"remoteLocation": "ftp://o.test/"}}) == "ftp://o.test/"
    assert state.given_location("GetDiagnostics", {}) is None
    assert state.with_location("GetDiagnostics", {"retries": 1}, "https://n.test/u") == {
        "retries": 1,
        "location": "https://n.test/u",
    }
    assert state.raw_params("GetLog", raw) == ("DiagnosticsLog", 5)
    assert state.raw_params("GetDiagnostics", {"location": "x"}) == ("DiagnosticsLog", None)


def test_locations_must_be_upload_urls_and_passwords_are_never_shown() -> None:
    for good in ("https://a.test/x", "ftp://user:pw@a.test/dir/", "sftp://a.test", "HTTP://A.TEST/"):
        assert state.check_location(good) == good
    for bad in ("a.test/x", "file:///etc/passwd", "https://", "mailto:x@a.test", "x" * 600, ""):
        with pytest.raises(ValidationError) as info:
            state.check_location(bad)
        assert info.value.field == "location"
    assert state.redact("ftp://user:secret@a.test:21/in/") == "ftp://user:***@a.test:21/in/"
    assert state.redact("https://a.test/u/x") == "https://a.test/u/x"
    assert state.redact("ftp://user@a.test/") == "ftp://user@a.test/"
