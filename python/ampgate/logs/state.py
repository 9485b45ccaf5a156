"""The rules of a log request, as pure functions: no store, no clock, no sockets.

A log request is one GetLog (2.0.1, or the 1.6 security extension's) or GetDiagnostics (1.6 core) sent to a
charger. Its life is a timeline of statuses, each with the time the node saw it:

- `Requested` (the node): the row exists and the CALL is on its way;
- the charger's reply: GetLog's `Accepted`, `Rejected` or `AcceptedCanceled` (accepted; an upload already under
  way was cancelled); GetDiagnostics has no status, so its reply counts as `Accepted`;
- or the call's failure (the node): `Failed` (a CALLERROR, an invalid reply, the charger went away) or
  `TimedOut` (no answer in time: the charger may still have it, so the request stays open);
- the charger's notifications: LogStatusNotification (`Uploading`, `Uploaded`, `UploadFailure`, `BadMessage`,
  `NotSupportedOperation`, `PermissionDenied`, `AcceptedCanceled`, `Idle`) or DiagnosticsStatusNotification
  (`Uploading`, `Uploaded`, `UploadFailed`, `Idle`);
- `Canceled` (the node): a newer GetLog to the same charger was answered `AcceptedCanceled`, which cancels the
  upload of the one before [N01.FR.12 / 1.6 security N01].

A request is open until a status in FINAL_STATUSES arrives. Notifications find their request by the charger's
request id (LogStatusNotification's requestId); 1.6 DiagnosticsStatusNotification carries none, so it belongs to
the charger's latest open GetDiagnostics. `Idle` without a request id says the charger is uploading nothing: it
belongs to no request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from ampgate.clock import iso_utc
from ampgate.errors import ValidationError

GET_LOG = "GetLog"
GET_DIAGNOSTICS = "GetDiagnostics"
LOG_COMMANDS = frozenset({GET_LOG, GET_DIAGNOSTICS})
LOG_TYPES = ("DiagnosticsLog", "SecurityLog")
OCPP16 = "ocpp1.6"

REQUESTED = "Requested"
ACCEPTED = "Accepted"
REJECTED = "Rejected"
FAILED = "Failed"
TIMED_OUT = "TimedOut"
CANCELED = "Canceled"
ACCEPTED_CANCELED = "AcceptedCanceled"
IDLE = "Idle"

# Statuses after which the charger will not upload for this request (nor report on it). AcceptedCanceled is
# not among them: as GetLog's reply it means "accepted" (the *previous* upload is the one cancelled), and the
# spec does not say which request a LogStatusNotification AcceptedCanceled names.
FINAL_STATUSES = frozenset(
    {
        "Uploaded",
        "UploadFailed",  # 1.6 DiagnosticsStatusNotification
        "UploadFailure",  # LogStatusNotification
        "BadMessage",
        "NotSupportedOperation",
        "PermissionDenied",
        REJECTED,
        FAILED,
        CANCELED,
    }
)
# A charger that keeps repeating a status must not grow a row without bound: the timeline keeps its first entry
# (when the request was made) and the newest ones, this many in all. A real upload has five or six.
MAX_TIMELINE = 50
# The OCPP error codes with which a 1.6 charger says it has no GetLog (the security extension): a
# DiagnosticsLog request then goes out again as GetDiagnostics.
NO_GET_LOG_CODES = frozenset({"NotImplemented", "NotSupported"})
# URL schemes a charger may be told to upload to. Chargers upload over HTTP(S) or FTP(S) (1.6 edition 2 §4.4
# names FTP; 2.0.1 N01 leaves it to the charger); the node itself receives only HTTP(S).
LOCATION_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "sftp"})
# GetLog's remoteLocation is at most 512 characters (LogParametersType).
MAX_LOCATION = 512
# OCPP integers are 32-bit signed.
MAX_INT32 = 2**31 - 1


class TimelineEntry(msgspec.Struct, frozen=True, array_like=True):
    """One status of a request and when the node saw it (ISO 8601 UTC, as stored)."""

    status: str
    at: str


class Candidate(msgspec.Struct, frozen=True):
    """A stored request, as much as matching needs."""

    id: int
    status: str


def is_open(status: str) -> bool:
    """Whether a request whose last status is `status` may still be uploaded or reported on."""
    return status not in FINAL_STATUSES


def append(timeline: Sequence[TimelineEntry], status: str, at: datetime) -> list[TimelineEntry]:
    """`timeline` with (`status`, `at`) added, capped at MAX_TIMELINE entries (the first one and the newest
    kept). Raises ValueError for a naive `at`."""
    out = [*timeline, TimelineEntry(status, iso_utc(at))]
    if len(out) > MAX_TIMELINE:
        out = [out[0], *out[len(out) - MAX_TIMELINE + 1 :]]
    return out


def latest_open(candidates: Sequence[Candidate]) -> int | None:
    """The id of the newest open request among `candidates` (any order), or None: where a 1.6
    DiagnosticsStatusNotification, which names no request, belongs."""
    for c in sorted(candidates, key=lambda c: c.id, reverse=True):
        if is_open(c.status):
            return c.id
    return None


def notification_applies(status: str, request_id: int | None) -> bool:
    """Whether a notification names a request at all: `Idle` without a request id reports the charger's state
    (nothing uploading), not a request's."""
    return not (status == IDLE and request_id is None)


def reply_outcome(command: str, reply: Any) -> tuple[str, str | None]:
    """The status and file name that the charger's (valid) reply to `command` gives a request. GetDiagnostics
    has no status: its reply means Accepted (`fileName` is absent when the charger has nothing to send, though
    many chargers omit it anyway)."""
    body = reply if isinstance(reply, dict) else {}
    if command == GET_DIAGNOSTICS:
        name = body.get("fileName")
        return ACCEPTED, name if isinstance(name, str) else None
    status = body.get("status")
    name = body.get("filename")
    return (status if isinstance(status, str) else FAILED), name if isinstance(name, str) else None


def token_stays_valid(status: str) -> bool:
    """Whether an upload token may still be used once a request has `status`: not after the charger refused
    the request or the call failed (it will not upload). After a timeout it may (the charger may have the
    request), and after a charger's final notification too (it may report before its upload ends)."""
    return status not in (REJECTED, FAILED, CANCELED)


def falls_back(protocol: str, command: str, log_type: str, ocpp_code: str | None) -> bool:
    """Whether a GetLog the charger refused with `ocpp_code` goes out again as GetDiagnostics: a 1.6 charger
    without the security extension answers NotImplemented / NotSupported, and GetDiagnostics carries a
    DiagnosticsLog only (there is no 1.6 core request for the security log)."""
    return (
        protocol == OCPP16
        and command == GET_LOG
        and log_type == "DiagnosticsLog"
        and ocpp_code in NO_GET_LOG_CODES
    )


def check_location(location: str, field: str = "location") -> str:
    """`location` if it is an absolute URL a charger can upload to (http, https, ftp, ftps or sftp, with a
    host, at most 512 characters), else ValidationError naming `field`."""
    if not 1 <= len(location) <= MAX_LOCATION:
        raise ValidationError(f"{field} is 1 to {MAX_LOCATION} characters", field=field)
    try:
        parts = urlsplit(location)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme.lower() not in LOCATION_SCHEMES or not host:
        raise ValidationError(
            f"{field} must be an absolute {', '.join(sorted(LOCATION_SCHEMES))} URL with a host", field=field
        )
    return location


def redact(location: str) -> str:
    """`location` as it may be shown and stored: without the password of its user info
    (ftp://user:secret@host/x becomes ftp://user:***@host/x)."""
    try:
        parts = urlsplit(location)
        password = parts.password
    except ValueError:
        return location
    if password is None:
        return location
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class LogParams(msgspec.Struct, frozen=True, kw_only=True):
    """What the operator asks for, in the API's terms (validated)."""

    log_type: str = "DiagnosticsLog"
    oldest_at: datetime | None = None
    latest_at: datetime | None = None
    retries: int | None = None
    retry_interval_s: int | None = None


def build_payload(command: str, request_id: int, location: str, params: LogParams) -> dict[str, Any]:
    """The request payload (wire names) of `command`: GetLog (2.0.1 and the 1.6 security extension have the
    same shape) or 1.6 GetDiagnostics (no request id, no log type; startTime/stopTime for the window)."""
    if command == GET_DIAGNOSTICS:
        payload: dict[str, Any] = {"location": location}
        if params.oldest_at is not None:
            payload["startTime"] = iso_utc(params.oldest_at)
        if params.latest_at is not None:
            payload["stopTime"] = iso_utc(params.latest_at)
    else:
        log: dict[str, Any] = {"remoteLocation": location}
        if params.oldest_at is not None:
            log["oldestTimestamp"] = iso_utc(params.oldest_at)
        if params.latest_at is not None:
            log["latestTimestamp"] = iso_utc(params.latest_at)
        payload = {"logType": params.log_type, "requestId": request_id, "log": log}
    if params.retries is not None:
        payload["retries"] = params.retries
    if params.retry_interval_s is not None:
        payload["retryInterval"] = params.retry_interval_s
    return payload


def given_location(command: str, payload: dict[str, Any]) -> str | None:
    """The upload location in a raw GetLog / GetDiagnostics payload (the generic command API's), or None when
    absent (the node then fills in its own)."""
    if command == GET_DIAGNOSTICS:
        loc = payload.get("location")
    else:
        log = payload.get("log")
        loc = log.get("remoteLocation") if isinstance(log, dict) else None
    return loc if isinstance(loc, str) else None


def with_location(command: str, payload: dict[str, Any], location: str) -> dict[str, Any]:
    """A copy of a raw GetLog / GetDiagnostics payload with `location` filled in (the caller checked that none
    was given). A `log` that is not an object is left for the schema check to refuse."""
    out = dict(payload)
    if command == GET_DIAGNOSTICS:
        out["location"] = location
        return out
    log = out.get("log", {})
    if isinstance(log, dict):
        out["log"] = {**log, "remoteLocation": location}
    return out


def raw_params(command: str, payload: dict[str, Any]) -> tuple[str, int | None]:
    """The log type and the charger's request id of a validated raw payload (GetDiagnostics: a
    DiagnosticsLog, numbered by the node)."""
    if command == GET_DIAGNOSTICS:
        return "DiagnosticsLog", None
    return str(payload["logType"]), int(payload["requestId"])
