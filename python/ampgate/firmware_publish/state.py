"""The rules of a firmware publication, as pure functions: no store, no clock, no sockets.

A publication is one PublishFirmware sent to a 2.0.1 local controller [L03]: it downloads the image from
`location`, checks its MD5 `checksum` and serves it to the chargers behind it. Its life is a timeline of
statuses, each with the time the node saw it:

- `Requested` (the node): the row exists and the CALL is on its way; its id is the requestId sent;
- the controller's answer `Accepted` / `Rejected`, or the call's failure `Failed` / `TimedOut`;
- its PublishFirmwareStatusNotifications: `DownloadScheduled`, `Downloading`, `DownloadPaused`, `Downloaded`,
  `ChecksumVerified`, `Published` (with the URIs it serves the image at, one per protocol), or `DownloadFailed`,
  `InvalidChecksum`, `PublishFailed`;
- the answer to UnpublishFirmware [L04]: `Unpublished`, or `NoFirmware` (it had no image of that checksum).
  `DownloadOngoing` is a refusal (it is still downloading): the timeline does not change.

Notifications find their publication by requestId; `Idle` without one reports the controller's state (nothing
going on) and belongs to none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from ampgate.clock import iso_utc
from ampgate.errors import ValidationError

PUBLISH_FIRMWARE = "PublishFirmware"
UNPUBLISH_FIRMWARE = "UnpublishFirmware"
PUBLISH_FIRMWARE_STATUS_NOTIFICATION = "PublishFirmwareStatusNotification"

REQUESTED = "Requested"
# The controller's answers to PublishFirmware [L03].
ANSWERS = frozenset({"Accepted", "Rejected"})
FAILED = "Failed"
TIMED_OUT = "TimedOut"
PUBLISHED = "Published"
IDLE = "Idle"
UNPUBLISHED = "Unpublished"
NO_FIRMWARE = "NoFirmware"
DOWNLOAD_ONGOING = "DownloadOngoing"
# After these the controller serves nothing for the publication: unpublishing again sends nothing.
UNPUBLISHED_STATUSES = frozenset({UNPUBLISHED, NO_FIRMWARE})

# A controller repeating a status must not grow a row without bound: the first entry and the newest kept, this
# many in all. A real publication has five or six.
MAX_TIMELINE = 50
# PublishFirmwareRequest.location is at most 512 characters; the controller downloads over one of these.
MAX_LOCATION = 512
LOCATION_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "sftp"})
# The checksum is the image's MD5 as hex: 32 characters (the schema's maxLength), no fewer.
MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
MAX_INT32 = 2**31 - 1


class TimelineEntry(msgspec.Struct, frozen=True, array_like=True):
    """One status of a publication and when the node saw it (ISO 8601 UTC, as stored)."""

    status: str
    at: str


class PublishSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What the operator asks a local controller to publish."""

    location: str
    checksum: str
    retries: int | None = None
    retry_interval_s: int | None = None


def check(spec: PublishSpec) -> PublishSpec:
    """`spec` if it can be sent, else ValidationError naming the field (location, checksum, retries,
    retry_interval_s)."""
    if not 1 <= len(spec.location) <= MAX_LOCATION:
        raise ValidationError(f"location is 1 to {MAX_LOCATION} characters", field="location")
    try:
        parts = urlsplit(spec.location)
        host = parts.hostname
        scheme = parts.scheme.lower()
    except ValueError:
        host, scheme = None, ""
    if scheme not in LOCATION_SCHEMES or not host:
        raise ValidationError(
            f"location must be an absolute {', '.join(sorted(LOCATION_SCHEMES))} URL with a host",
            field="location",
        )
    if not MD5_HEX.fullmatch(spec.checksum):
        raise ValidationError("checksum is the image's MD5: 32 hexadecimal characters", field="checksum")
    for name in ("retries", "retry_interval_s"):
        n = getattr(spec, name)
        if n is not None and not 0 <= n <= MAX_INT32:
            raise ValidationError(f"{name} is 0 to {MAX_INT32}", field=name)
    return spec


def build_payload(request_id: int, spec: PublishSpec) -> dict[str, Any]:
    """The PublishFirmware request (wire names)."""
    payload: dict[str, Any] = {"location": spec.location, "checksum": spec.checksum, "requestId": request_id}
    if spec.retries is not None:
        payload["retries"] = spec.retries
    if spec.retry_interval_s is not None:
        payload["retryInterval"] = spec.retry_interval_s
    return payload


def append(timeline: Sequence[TimelineEntry], status: str, at: datetime) -> list[TimelineEntry]:
    """`timeline` with (`status`, `at`) added, capped at MAX_TIMELINE entries (the first and the newest kept)."""
    out = [*timeline, TimelineEntry(status, iso_utc(at))]
    if len(out) > MAX_TIMELINE:
        out = [out[0], *out[len(out) - MAX_TIMELINE + 1 :]]
    return out


def with_answer(
    timeline: Sequence[TimelineEntry], status: str, at: datetime
) -> tuple[list[TimelineEntry], bool]:
    """`timeline` with the controller's answer to PublishFirmware (`status`, seen at `at`) in its place, right
    after `Requested`, and whether it is the newest entry (then it is the publication's status). The controller
    answers before it notifies, but the node may record a notification first: both can arrive in one batch,
    and the router handles the notification before the API task that awaits the answer runs again."""
    if len(timeline) <= 1:
        return append(timeline, status, at), True
    out = [timeline[0], TimelineEntry(status, iso_utc(at)), *timeline[1:]]
    if len(out) > MAX_TIMELINE:
        out = [out[0], *out[len(out) - MAX_TIMELINE + 1 :]]
    return out, False


def notification_applies(request_id: int | None) -> bool:
    """Whether a notification names a publication: one without a request id (Idle, as the spec allows it only
    there) reports the controller's state instead."""
    return request_id is not None
