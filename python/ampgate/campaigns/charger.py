"""One charger's update within a campaign, as a pure state machine: inputs in, (new progress, actions) out. No
store, no clock, no sockets; the runner feeds it what the bus and the command queue report and carries out what
it returns.

    pending ──dispatch──▶ dispatched ──▶ downloading ──▶ downloaded ──▶ installing ──(boot, new version)──▶ installed
       │                      │  every in-flight state ──▶ failed | timed_out | superseded    (2.0.1: Installed)
       ╰──▶ skipped (already installed, in another campaign, offline past the offline timeout, cancelled)

- One request id per dispatch. The message is chosen per charger (`choose_action`): 2.0.1 UpdateFirmware; 1.6
  SignedUpdateFirmware when the image is signed and the charger may support the security extension, else 1.6
  UpdateFirmware. A NotSupported / NotImplemented CALLERROR to the signed call falls back to the unsigned one,
  unless the image is signed-only.
- Statuses (1.6 FirmwareStatusNotification, 1.6 SignedFirmwareStatusNotification, 2.0.1
  FirmwareStatusNotification) are matched by request id where the message carries one; a 1.6 unsigned
  notification belongs to the one in-flight unsigned update (`belongs`).
- Success differs by version, because the versions order the reboot and Installed differently:
  - 1.6 (both notifications): Installed is confirmed by the next BootNotification's firmware version. A 1.6
    charger installs, reports Installed and then reboots into the new firmware, so the boot is what proves it;
    asked with TriggerMessage(BootNotification) when it stays silent (1.6 allows that trigger at any time).
  - 2.0.1: Installed is success at once. A station that must reboot reports InstallRebooting, reboots,
    sends BootNotification and only then Installed (L01); one that needs no reboot goes Installing → Installed
    and never boots. A TriggerMessage(BootNotification) cannot stand in for the boot: a station already
    Accepted rejects it (F06.FR.17), so a silent 2.0.1 charger is only ever asked for its firmware status.
    After Installed the charger is watched for one status timeout (`confirm_until`): a boot with another
    version in that time (it rolled back) flips installed to failed, "version_mismatch"; a boot with the new
    version ends the watch. A boot after the watch says nothing about this update.
  In both, a charger that reboots mid-install and boots with the new version succeeded; InstallRebooting
  followed by a boot with another version is a failure, "version_mismatch".
- Silent past the status timeout: one TriggerMessage; silent again for as long: timed_out. SignatureVerified
  must be followed by Installed within the status timeout.
- Cancelling a campaign skips its pending chargers and those whose update is still queued ("cancelled"); an
  update already sent goes on being followed until final.
- A reply Rejected / InvalidCertificate / RevokedCertificate fails the charger; AcceptedCanceled is accepted (the
  charger cancelled an update it had: that one is superseded, not ours). A manual UpdateFirmware by an operator
  while ours is in flight supersedes ours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

# -- states --------------------------------------------------------------------------------------------------------

PENDING = "pending"
DISPATCHED = "dispatched"
DOWNLOADING = "downloading"
DOWNLOADED = "downloaded"
INSTALLING = "installing"
INSTALLED = "installed"
FAILED = "failed"
TIMED_OUT = "timed_out"
SKIPPED = "skipped"
SUPERSEDED = "superseded"

STATES: tuple[str, ...] = (
    PENDING,
    DISPATCHED,
    DOWNLOADING,
    DOWNLOADED,
    INSTALLING,
    INSTALLED,
    FAILED,
    TIMED_OUT,
    SKIPPED,
    SUPERSEDED,
)
IN_FLIGHT: frozenset[str] = frozenset({DISPATCHED, DOWNLOADING, DOWNLOADED, INSTALLING})
FINAL: frozenset[str] = frozenset({INSTALLED, FAILED, TIMED_OUT, SKIPPED, SUPERSEDED})
# What the error condition counts.
ERRORS: frozenset[str] = frozenset({FAILED, TIMED_OUT})

# Reasons a charger is skipped or failed (the `reason` column; shown by the API).
SKIP_ALREADY_INSTALLED = "already_installed"
SKIP_IN_CAMPAIGN = "in_campaign"  # + ":<campaign id>"
SKIP_OFFLINE = "skipped_offline"
SKIP_CANCELLED = "cancelled"
FAIL_VERSION_MISMATCH = "version_mismatch"
FAIL_SIGNATURE_TIMEOUT = "signature_verified_not_installed"
FAIL_SIGNED_ONLY = "signed_only_unsupported"

# -- messages ------------------------------------------------------------------------------------------------------

OCPP16 = "ocpp1.6"
OCPP201 = "ocpp2.0.1"
UPDATE_FIRMWARE = "UpdateFirmware"
SIGNED_UPDATE_FIRMWARE = "SignedUpdateFirmware"
TRIGGER_MESSAGE = "TriggerMessage"
EXTENDED_TRIGGER_MESSAGE = "ExtendedTriggerMessage"

# The CALLERROR codes by which a 1.6 charger says it has no security extension [L01.FR.20 and plain 1.6].
FALLBACK_CODES = frozenset({"NotSupported", "NotImplemented"})
# Delivery failures after which the charger may or may not have the request: the status timeout decides.
UNKNOWN_OUTCOME = frozenset({"charger_timeout", "node_restarted"})
# Replies to a (Signed)UpdateFirmware that refuse it.
REFUSALS = frozenset({"Rejected", "InvalidCertificate", "RevokedCertificate"})

# Every status any of the three notifications carries, and what it makes of the charger's state. None: it says
# nothing about our update (Idle: nothing going on, the TriggerMessage answer after Installed).
STATUS_STATE: dict[str, str | None] = {
    "Idle": None,
    "DownloadScheduled": DOWNLOADING,
    "Downloading": DOWNLOADING,
    "DownloadPaused": DOWNLOADING,
    "Downloaded": DOWNLOADED,
    "SignatureVerified": DOWNLOADED,
    "InstallScheduled": INSTALLING,
    "Installing": INSTALLING,
    "InstallRebooting": INSTALLING,
    "Installed": INSTALLING,  # 1.6: confirmed by the boot that follows; 2.0.1: installed (see on_status)
    "DownloadFailed": FAILED,
    "InstallationFailed": FAILED,
    "InstallVerificationFailed": FAILED,
    "InvalidSignature": FAILED,
}
# After these the charger is expected to boot with the new version; a boot with another one is a mismatch. (A
# 2.0.1 Installed comes after the reboot, if there is one: it is success, watched for a rollback instead.)
AWAIT_BOOT_STATUSES = frozenset({"Installed", "InstallRebooting"})


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """What the campaign knows of one charger's update. `request_id` and `action` are those of the current
    dispatch; `silent_since` is when the deadline for hearing from the charger started (dispatch or its last
    status), `triggered_at` when it was asked with a TriggerMessage (None: not asked since it last spoke);
    `await_boot` says it reported Installed (1.6) / InstallRebooting; `install_deadline` runs from
    SignatureVerified; `confirm_until`: a 2.0.1 charger installed by its Installed is watched until then, and a
    boot with another version before it is a version mismatch."""

    state: str = PENDING
    reason: str | None = None
    protocol: str | None = None
    action: str | None = None
    request_id: int | None = None
    last_status: str | None = None
    silent_since: datetime | None = None
    triggered_at: datetime | None = None
    await_boot: bool = False
    install_deadline: datetime | None = None
    signed_refused: bool = False  # the charger answered the signed call with NotSupported / NotImplemented
    confirm_until: datetime | None = None


# -- actions (what the runner carries out) -------------------------------------------------------------------------


class Send(msgspec.Struct, frozen=True, kw_only=True):
    """Send the update (`action`, with `request_id`) to the charger: a fallback re-dispatch."""

    action: str
    request_id: int


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    """Ask the charger with a TriggerMessage for `message` (FirmwareStatusNotification or BootNotification)."""

    message: str


Action = Send | Trigger
Step = tuple[Progress, list[Action]]

TriggerKind = Literal["FirmwareStatusNotification", "BootNotification"]


# -- choosing the message ------------------------------------------------------------------------------------------


def choose_action(
    protocol: str,
    *,
    image_signed: bool,
    signed_only: bool,
    supports_signed: bool | None,
    signed_refused: bool,
) -> str | None:
    """The update message for a charger speaking `protocol`. `supports_signed`: whether the charger has the 1.6
    security extension (None: unknown, so the signed call is tried first); `signed_refused`: it already answered
    the signed call with NotSupported / NotImplemented. None: nothing can be sent (a signed-only image to a 1.6
    charger without the extension)."""
    if protocol == OCPP201:
        return UPDATE_FIRMWARE
    can_sign = image_signed and supports_signed is not False and not signed_refused
    if can_sign:
        return SIGNED_UPDATE_FIRMWARE
    if signed_only:
        return None
    return UPDATE_FIRMWARE


def belongs(progress: Progress, *, request_id: int | None, signed: bool) -> bool:
    """Whether a firmware status notification is about this charger's current update. 2.0.1 and 1.6 signed
    notifications carry the request id (Idle excepted); a 1.6 FirmwareStatusNotification carries none and
    belongs to the one in-flight unsigned update."""
    if progress.state not in IN_FLIGHT:
        return False
    if progress.protocol == OCPP16 and progress.action == UPDATE_FIRMWARE:
        return not signed and request_id is None
    if progress.protocol == OCPP16 and not signed:
        return False  # an unsigned notification while our signed update runs: another update's
    return request_id is not None and request_id == progress.request_id


# -- transitions ---------------------------------------------------------------------------------------------------


def dispatch(progress: Progress, *, protocol: str, action: str, request_id: int, at: datetime) -> Progress:
    """pending (or a retried failed / timed_out) -> dispatched with a new request id."""
    return msgspec.structs.replace(
        progress,
        state=DISPATCHED,
        reason=None,
        protocol=protocol,
        action=action,
        request_id=request_id,
        last_status=None,
        silent_since=at,
        triggered_at=None,
        await_boot=False,
        install_deadline=None,
        confirm_until=None,
    )


def skip(progress: Progress, reason: str) -> Progress:
    return msgspec.structs.replace(progress, state=SKIPPED, reason=reason)


def fail(progress: Progress, reason: str) -> Progress:
    return msgspec.structs.replace(progress, state=FAILED, reason=reason, confirm_until=None)


def watching(progress: Progress, now: datetime) -> bool:
    """Whether a 2.0.1 charger installed by its Installed is still watched for a boot with another version."""
    return progress.state == INSTALLED and progress.confirm_until is not None and now < progress.confirm_until


def retry(progress: Progress) -> Progress:
    """failed / timed_out -> pending again (retry-failed); any other state unchanged."""
    if progress.state not in ERRORS:
        return progress
    return Progress(protocol=progress.protocol, signed_refused=progress.signed_refused)


def on_reply(progress: Progress, *, request_id: int, status: str | None, at: datetime) -> Step:
    """The charger answered our (Signed)UpdateFirmware `request_id`: `status` is the reply's (None for 1.6
    UpdateFirmware, whose reply is empty). A refusal fails it; any other answer leaves it dispatched."""
    if progress.state != DISPATCHED or progress.request_id != request_id:
        return progress, []
    if status in REFUSALS:
        return fail(progress, f"reply:{status}"), []
    return msgspec.structs.replace(progress, silent_since=at), []


def on_call_error(
    progress: Progress,
    *,
    request_id: int,
    ocpp_code: str | None,
    code: str,
    signed_only: bool,
    new_request_id: int,
) -> Step:
    """Our (Signed)UpdateFirmware `request_id` failed: a CALLERROR (`ocpp_code`) or a delivery error (`code`).
    NotSupported / NotImplemented to the signed call falls back to the unsigned one when the image allows it (a
    Send with `new_request_id`); a lost answer (charger_timeout, node_restarted) leaves it dispatched, the status timeout decides;
    anything else fails it."""
    if progress.state != DISPATCHED or progress.request_id != request_id:
        return progress, []
    if progress.action == SIGNED_UPDATE_FIRMWARE and ocpp_code in FALLBACK_CODES:
        refused = msgspec.structs.replace(progress, signed_refused=True)
        if signed_only:
            return fail(refused, FAIL_SIGNED_ONLY), []
        return refused, [Send(action=UPDATE_FIRMWARE, request_id=new_request_id)]
    if ocpp_code is None and code in UNKNOWN_OUTCOME:
        return progress, []
    return fail(progress, f"call_error:{ocpp_code or code}"), []


def on_expired(progress: Progress, *, request_id: int) -> Step:
    """The queued update outlived its time to live (the charger stayed away): skipped offline."""
    if progress.state != DISPATCHED or progress.request_id != request_id:
        return progress, []
    return skip(progress, SKIP_OFFLINE), []


def on_status(progress: Progress, *, status: str, at: datetime, install_timeout: timedelta) -> Step:
    """A status notification that `belongs` to the current update. `install_timeout` (the status timeout)
    bounds SignatureVerified → Installed, and how long a 2.0.1 Installed is watched for a rollback."""
    if progress.state in FINAL:
        return progress, []
    if status == "Installed" and progress.protocol == OCPP201:
        # 2.0.1 sends Installed after the reboot it needed, or without one: the update is done.
        done = msgspec.structs.replace(
            progress,
            state=INSTALLED,
            reason=None,
            last_status=status,
            silent_since=at,
            triggered_at=None,
            await_boot=False,
            install_deadline=None,
            confirm_until=at + install_timeout,
        )
        return done, []
    target = STATUS_STATE.get(status)
    if target is None:
        # Idle, or a status no version defines: no progress, and not a sign of life either (Idle is what a
        # charger that forgot the update answers to the trigger).
        return progress, []
    moved = msgspec.structs.replace(
        progress,
        state=target,
        last_status=status,
        silent_since=at,
        triggered_at=None,
        await_boot=progress.await_boot or status in AWAIT_BOOT_STATUSES,
    )
    if target == FAILED:
        return msgspec.structs.replace(moved, reason=status), []
    if status == "SignatureVerified":
        moved = msgspec.structs.replace(moved, install_deadline=at + install_timeout)
    elif status in AWAIT_BOOT_STATUSES:
        moved = msgspec.structs.replace(moved, install_deadline=None)
    return moved, []


def on_boot(progress: Progress, *, version_matches: bool, at: datetime) -> Step:
    """The charger booted (BootNotification) reporting a firmware version that matches the image's or not. A
    pending charger that boots with the image's version already (updated some other way) is skipped; a 2.0.1
    charger watched after its Installed fails on another version (it rolled back) and is confirmed on the new."""
    if progress.state == PENDING and version_matches:
        return skip(progress, SKIP_ALREADY_INSTALLED), []
    if progress.state == INSTALLED and progress.confirm_until is not None:
        if at >= progress.confirm_until:
            return progress, []  # the watch is over: this boot is not about our update
        if version_matches:
            return msgspec.structs.replace(progress, confirm_until=None), []
        return fail(progress, FAIL_VERSION_MISMATCH), []
    if progress.state not in IN_FLIGHT:
        return progress, []
    if version_matches:
        # Confirmed after Installed, or it rebooted mid-install and came back with the new version.
        return msgspec.structs.replace(progress, state=INSTALLED, reason=None, await_boot=False), []
    if progress.await_boot:
        return fail(progress, FAIL_VERSION_MISMATCH), []
    # A reboot during the download or before the install: the update goes on (the charger resumes it).
    return msgspec.structs.replace(progress, silent_since=at, triggered_at=None), []


def on_manual_update(progress: Progress) -> Step:
    """An operator's own UpdateFirmware reached the charger while ours was in flight: ours is superseded."""
    if progress.state not in IN_FLIGHT:
        return progress, []
    return msgspec.structs.replace(progress, state=SUPERSEDED, reason="manual_update"), []


def on_tick(progress: Progress, *, now: datetime, status_timeout: timedelta) -> Step:
    """Time passed: SignatureVerified without Installed past its deadline fails; silent past the status timeout
    asks once (TriggerMessage: the firmware status, or for 1.6 the boot it owes after Installed; 2.0.1 is never
    asked for a boot, which a station already accepted rejects); silent as long again after asking times out."""
    if progress.state not in IN_FLIGHT:
        return progress, []
    if progress.install_deadline is not None and now >= progress.install_deadline:
        return fail(progress, FAIL_SIGNATURE_TIMEOUT), []
    if progress.triggered_at is not None:
        if now >= progress.triggered_at + status_timeout:
            return msgspec.structs.replace(
                progress, state=TIMED_OUT, reason="silent after TriggerMessage"
            ), []
        return progress, []
    if progress.silent_since is not None and now >= progress.silent_since + status_timeout:
        message: TriggerKind = (
            "BootNotification"
            if progress.await_boot and progress.protocol == OCPP16
            else "FirmwareStatusNotification"
        )
        return msgspec.structs.replace(progress, triggered_at=now), [Trigger(message=message)]
    return progress, []


def next_deadline(progress: Progress, *, status_timeout: timedelta) -> datetime | None:
    """When `on_tick` may next change this charger (None: never by time alone)."""
    if progress.state not in IN_FLIGHT:
        return None
    times = []
    if progress.install_deadline is not None:
        times.append(progress.install_deadline)
    if progress.triggered_at is not None:
        times.append(progress.triggered_at + status_timeout)
    elif progress.silent_since is not None:
        times.append(progress.silent_since + status_timeout)
    return min(times) if times else None


# -- building the messages -----------------------------------------------------------------------------------------


def trigger_request(protocol: str, message: str, *, signed: bool) -> tuple[str, dict[str, object]]:
    """(action, payload) asking a charger for `message`: 2.0.1 TriggerMessage; 1.6 TriggerMessage, or
    ExtendedTriggerMessage when the update is a signed one (its FirmwareStatusNotification trigger makes a
    security-extension charger send SignedFirmwareStatusNotification, with the request id)."""
    if protocol == OCPP201:
        return TRIGGER_MESSAGE, {"requestedMessage": message}
    if signed and message == "FirmwareStatusNotification":
        return EXTENDED_TRIGGER_MESSAGE, {"requestedMessage": "FirmwareStatusNotification"}
    return TRIGGER_MESSAGE, {"requestedMessage": message}


def update_request(
    protocol: str,
    action: str,
    *,
    request_id: int,
    location: str,
    retrieve_at: str,
    install_at: str | None,
    signing_certificate: str | None,
    signature: str | None,
) -> dict[str, object]:
    """The payload of `action` as the charger's protocol writes it. 1.6 UpdateFirmware has no request id and no
    install time (`retrieve_at`, `install_at`: ISO 8601 UTC)."""
    if protocol == OCPP16 and action == UPDATE_FIRMWARE:
        return {"location": location, "retrieveDate": retrieve_at}
    firmware: dict[str, object] = {"location": location, "retrieveDateTime": retrieve_at}
    if install_at is not None:
        firmware["installDateTime"] = install_at
    if signing_certificate is not None:
        firmware["signingCertificate"] = signing_certificate
    if signature is not None:
        firmware["signature"] = signature
    return {"requestId": request_id, "firmware": firmware}
