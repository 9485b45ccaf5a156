"""The per-charger update machine (`ampgate.campaigns.charger`), every transition and every status of the three
notifications, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ampgate.campaigns import charger as c

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=30)


def sent(protocol: str = c.OCPP201, action: str = c.UPDATE_FIRMWARE, request_id: int = 7) -> c.Progress:
    return c.dispatch(c.Progress(), protocol=protocol, action=action, request_id=request_id, at=T0)


def status(p: c.Progress, s: str, minutes: float = 1) -> c.Progress:
    out, actions = c.on_status(p, status=s, at=T0 + timedelta(minutes=minutes), install_timeout=TIMEOUT)
    assert actions == []
    return out


# -- choosing the message ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "signed", "signed_only", "supports", "refused", "expected"),
    [
        (c.OCPP201, False, False, None, False, c.UPDATE_FIRMWARE),
        (c.OCPP201, True, True, False, True, c.UPDATE_FIRMWARE),
        (c.OCPP16, True, False, True, False, c.SIGNED_UPDATE_FIRMWARE),
        (c.OCPP16, True, False, None, False, c.SIGNED_UPDATE_FIRMWARE),
        (c.OCPP16, True, False, False, False, c.UPDATE_FIRMWARE),
        (c.OCPP16, True, False, None, True, c.UPDATE_FIRMWARE),
        (c.OCPP16, False, False, True, False, c.UPDATE_FIRMWARE),
        (c.OCPP16, True, True, False, False, None),
        (c.OCPP16, True, True, None, True, None),
        (c.OCPP16, True, True, True, False, c.SIGNED_UPDATE_FIRMWARE),
    ],
)
def test_the_message_is_chosen_per_charger(
    protocol: str, signed: bool, signed_only: bool, supports: bool | None, refused: bool, expected: str | None
) -> None:
    got = c.choose_action(
        protocol,
        image_signed=signed,
        signed_only=signed_only,
        supports_signed=supports,
        signed_refused=refused,
    )
    assert got == expected


def test_the_payloads_follow_each_version() -> None:
    unsigned16 = c.update_request(
        c.OCPP16,
        c.UPDATE_FIRMWARE,
        request_id=3,
        location="https://cdn/fw-2.0.bin",
        retrieve_at="2026-11-30T12:00:00.000Z",
        install_at="2026-11-30T13:00:00.000Z",
        signing_certificate="PEM",
        signature="SIG",
    )
    assert unsigned16 == {"location": "https://cdn/fw-2.0.bin", "retrieveDate": "2026-11-30T12:00:00.000Z"}
    signed = c.update_request(
        c.OCPP16,
        c.SIGNED_UPDATE_FIRMWARE,
        request_id=3,
        location="https://cdn/fw-2.0.bin",
        retrieve_at="2026-11-30T12:00:00.000Z",
        install_at=None,
        signing_certificate="PEM",
        signature="SIG",
    )
    assert signed == {
        "requestId": 3,
        "firmware": {
            "location": "https://cdn/fw-2.0.bin",
            "retrieveDateTime": "2026-11-30T12:00:00.000Z",
            "signingCertificate": "PEM",
            "signature": "SIG",
        },
    }
    v201 = c.update_request(
        c.OCPP201,
        c.UPDATE_FIRMWARE,
        request_id=4,
        location="https://cdn/fw-2.0.bin",
        retrieve_at="2026-11-30T12:00:00.000Z",
        install_at="2026-11-30T13:00:00.000Z",
        signing_certificate=None,
        signature=None,
    )
    assert v201 == {
        "requestId": 4,
        "firmware": {
            "location": "https://cdn/fw-2.0.bin",
            "retrieveDateTime": "2026-11-30T12:00:00.000Z",
            "installDateTime": "2026-11-30T13:00:00.000Z",
        },
    }


def test_triggers_per_version() -> None:
    assert c.trigger_request(c.OCPP201, "FirmwareStatusNotification", signed=False) == (
        "TriggerMessage",
        {"requestedMessage": "FirmwareStatusNotification"},
    )
    assert c.trigger_request(c.OCPP16, "FirmwareStatusNotification", signed=True) == (
        "ExtendedTriggerMessage",
        {"requestedMessage": "FirmwareStatusNotification"},
    )
    assert c.trigger_request(c.OCPP16, "FirmwareStatusNotification", signed=False) == (
        "TriggerMessage",
        {"requestedMessage": "FirmwareStatusNotification"},
    )
    assert c.trigger_request(c.OCPP16, "BootNotification", signed=True)[0] == "TriggerMessage"


# -- matching notifications ----------------------------------------------------------------------------------------


def test_notifications_match_by_request_id_where_the_version_carries_one() -> None:
    v201 = sent(c.OCPP201)
    assert c.belongs(v201, request_id=7, signed=False)
    assert not c.belongs(v201, request_id=8, signed=False)
    assert not c.belongs(v201, request_id=None, signed=False)  # Idle carries none
    signed16 = sent(c.OCPP16, c.SIGNED_UPDATE_FIRMWARE)
    assert c.belongs(signed16, request_id=7, signed=True)
    assert not c.belongs(signed16, request_id=8, signed=True)
    assert not c.belongs(signed16, request_id=None, signed=False)  # a plain 1.6 notification: another update
    unsigned16 = sent(c.OCPP16, c.UPDATE_FIRMWARE)
    assert c.belongs(unsigned16, request_id=None, signed=False)  # the one in-flight update
    assert not c.belongs(unsigned16, request_id=5, signed=True)
    assert not c.belongs(c.Progress(), request_id=None, signed=False)  # pending: nothing in flight
    done = c.on_boot(status(v201, "Installed"), version_matches=True, at=T0)[0]
    assert not c.belongs(done, request_id=7, signed=False)


# -- every status --------------------------------------------------------------------------------------------------

EXPECTED_STATE = {
    "Idle": c.DISPATCHED,
    "DownloadScheduled": c.DOWNLOADING,
    "Downloading": c.DOWNLOADING,
    "DownloadPaused": c.DOWNLOADING,
    "Downloaded": c.DOWNLOADED,
    "SignatureVerified": c.DOWNLOADED,
    "InstallScheduled": c.INSTALLING,
    "Installing": c.INSTALLING,
    "InstallRebooting": c.INSTALLING,
    "Installed": c.INSTALLING,  # 1.6: the boot confirms it; 2.0.1: installed (below)
    "DownloadFailed": c.FAILED,
    "InstallationFailed": c.FAILED,
    "InstallVerificationFailed": c.FAILED,
    "InvalidSignature": c.FAILED,
}


def test_every_status_of_every_notification_is_mapped() -> None:
    from ocpp.v16.enums import FirmwareStatus as Fw16
    from ocpp.v201.enums import FirmwareStatusEnumType as Fw201

    names = {s.value for s in Fw16} | {s.value for s in Fw201}
    assert names <= set(c.STATUS_STATE), names - set(c.STATUS_STATE)
    assert set(EXPECTED_STATE) == set(c.STATUS_STATE)


@pytest.mark.parametrize("protocol", [c.OCPP16, c.OCPP201])
@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_STATE.items()))
def test_each_status_moves_the_charger(protocol: str, name: str, expected: str) -> None:
    after = status(sent(protocol), name)
    if protocol == c.OCPP201 and name == "Installed":
        expected = c.INSTALLED
    assert after.state == expected
    if expected == c.FAILED:
        assert after.reason == name
    if name != "Idle":
        assert after.last_status == name
        assert after.silent_since == T0 + timedelta(minutes=1)


def test_a_final_charger_ignores_statuses() -> None:
    failed = status(sent(), "DownloadFailed")
    assert status(failed, "Installed") == failed


# -- success and failure -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "action"), [(c.OCPP16, c.UPDATE_FIRMWARE), (c.OCPP16, c.SIGNED_UPDATE_FIRMWARE)]
)
def test_1_6_installed_is_confirmed_by_the_boot_with_the_new_version(protocol: str, action: str) -> None:
    p = sent(protocol, action)
    for s in ("Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"):
        p = status(p, s)
    assert p.state == c.INSTALLING and p.await_boot and p.confirm_until is None
    done, _ = c.on_boot(p, version_matches=True, at=T0)
    assert done.state == c.INSTALLED and done.confirm_until is None
    after, _ = c.on_boot(p, version_matches=False, at=T0)
    assert (after.state, after.reason) == (c.FAILED, c.FAIL_VERSION_MISMATCH)


def test_2_0_1_installed_without_a_reboot_is_installed_and_watched_for_a_rollback() -> None:
    p = sent(c.OCPP201)
    for s in ("Downloading", "Downloaded", "Installing"):
        p = status(p, s)
    done = status(p, "Installed", minutes=5)
    assert (done.state, done.reason, done.await_boot) == (c.INSTALLED, None, False)
    assert done.confirm_until == T0 + timedelta(minutes=5) + TIMEOUT
    assert c.watching(done, T0 + timedelta(minutes=6)) and not c.watching(done, done.confirm_until)
    # Nothing left to time out or to ask: no TriggerMessage(BootNotification), which 2.0.1 rejects (F06.FR.17).
    assert c.on_tick(done, now=T0 + 10 * TIMEOUT, status_timeout=TIMEOUT) == (done, [])
    assert c.next_deadline(done, status_timeout=TIMEOUT) is None
    # A boot with the new version in the watch confirms (and ends it) ...
    confirmed, _ = c.on_boot(done, version_matches=True, at=T0 + timedelta(minutes=20))
    assert confirmed.state == c.INSTALLED and confirmed.confirm_until is None
    assert c.on_boot(confirmed, version_matches=False, at=T0 + timedelta(minutes=21)) == (confirmed, [])
    # ... one with another version in it is a rollback: version mismatch.
    rolled, _ = c.on_boot(done, version_matches=False, at=T0 + timedelta(minutes=20))
    assert (rolled.state, rolled.reason, rolled.confirm_until) == (c.FAILED, c.FAIL_VERSION_MISMATCH, None)
    # After the watch a boot says nothing about this update.
    late = done.confirm_until
    assert late is not None
    assert c.on_boot(done, version_matches=False, at=late) == (done, [])


def test_2_0_1_install_rebooting_then_the_boot_then_installed() -> None:
    p = status(status(sent(c.OCPP201), "Installing"), "InstallRebooting")
    assert p.state == c.INSTALLING and p.await_boot
    booted, _ = c.on_boot(p, version_matches=True, at=T0 + timedelta(minutes=2))
    assert booted.state == c.INSTALLED and booted.confirm_until is None  # the boot itself confirmed it
    assert status(booted, "Installed", minutes=3) == booted  # the Installed after the boot: already final
    # Installed arriving before the boot the node saw (the boot's event was lost): installed, watched.
    early = status(p, "Installed", minutes=3)
    assert early.state == c.INSTALLED and early.confirm_until is not None


def test_install_rebooting_then_the_old_version_is_a_version_mismatch() -> None:
    for protocol in (c.OCPP16, c.OCPP201):
        p = status(sent(protocol), "InstallRebooting")
        after, _ = c.on_boot(p, version_matches=False, at=T0)
        assert (after.state, after.reason) == (c.FAILED, c.FAIL_VERSION_MISMATCH)


def test_a_reboot_mid_install_with_the_new_version_is_success() -> None:
    p = status(sent(), "Installing")
    after, _ = c.on_boot(p, version_matches=True, at=T0)
    assert after.state == c.INSTALLED


def test_a_reboot_mid_download_with_the_old_version_goes_on() -> None:
    p = status(sent(), "Downloading")
    after, _ = c.on_boot(p, version_matches=False, at=T0 + timedelta(minutes=5))
    assert after.state == c.DOWNLOADING
    assert after.silent_since == T0 + timedelta(minutes=5)


def test_a_boot_outside_an_update_changes_nothing_but_a_pending_one_already_updated_is_skipped() -> None:
    skipped = c.skip(c.Progress(), c.SKIP_OFFLINE)
    assert c.on_boot(skipped, version_matches=True, at=T0) == (skipped, [])
    assert c.on_boot(c.Progress(), version_matches=False, at=T0) == (c.Progress(), [])
    done, _ = c.on_boot(c.Progress(), version_matches=True, at=T0)
    assert (done.state, done.reason) == (c.SKIPPED, c.SKIP_ALREADY_INSTALLED)


@pytest.mark.parametrize("reply", ["Rejected", "InvalidCertificate", "RevokedCertificate"])
def test_refusing_replies_fail(reply: str) -> None:
    after, _ = c.on_reply(sent(), request_id=7, status=reply, at=T0)
    assert (after.state, after.reason) == (c.FAILED, f"reply:{reply}")


@pytest.mark.parametrize("reply", ["Accepted", "AcceptedCanceled", None])
def test_accepting_replies_keep_it_dispatched(reply: str | None) -> None:
    after, _ = c.on_reply(sent(), request_id=7, status=reply, at=T0 + timedelta(minutes=2))
    assert after.state == c.DISPATCHED
    assert after.silent_since == T0 + timedelta(minutes=2)


def test_a_reply_to_an_older_request_is_ignored() -> None:
    p = sent()
    assert c.on_reply(p, request_id=6, status="Rejected", at=T0) == (p, [])


def test_signed_refused_falls_back_to_unsigned_unless_signed_only() -> None:
    p = sent(c.OCPP16, c.SIGNED_UPDATE_FIRMWARE)
    for code in ("NotSupported", "NotImplemented"):
        after, actions = c.on_call_error(
            p, request_id=7, ocpp_code=code, code="charger_error", signed_only=False, new_request_id=8
        )
        assert actions == [c.Send(action=c.UPDATE_FIRMWARE, request_id=8)]
        assert after.signed_refused and after.state == c.DISPATCHED
        only, none = c.on_call_error(
            p, request_id=7, ocpp_code=code, code="charger_error", signed_only=True, new_request_id=8
        )
        assert none == [] and (only.state, only.reason) == (c.FAILED, c.FAIL_SIGNED_ONLY)


def test_other_call_errors_fail_and_a_lost_answer_waits() -> None:
    p = sent(c.OCPP16, c.UPDATE_FIRMWARE)
    after, _ = c.on_call_error(
        p, request_id=7, ocpp_code="NotSupported", code="charger_error", signed_only=False, new_request_id=8
    )
    assert (after.state, after.reason) == (c.FAILED, "call_error:NotSupported")  # no fallback from unsigned
    after, _ = c.on_call_error(
        p, request_id=7, ocpp_code="InternalError", code="charger_error", signed_only=False, new_request_id=8
    )
    assert after.state == c.FAILED
    after, _ = c.on_call_error(
        p, request_id=7, ocpp_code=None, code="charger_timeout", signed_only=False, new_request_id=8
    )
    assert after == p


def test_a_queued_update_that_expires_is_skipped_offline() -> None:
    after, _ = c.on_expired(sent(), request_id=7)
    assert (after.state, after.reason) == (c.SKIPPED, c.SKIP_OFFLINE)
    assert c.on_expired(sent(), request_id=1)[0].state == c.DISPATCHED


def test_a_manual_update_supersedes_an_update_in_flight() -> None:
    for s in ("Downloading", "Downloaded", "Installing"):
        after, _ = c.on_manual_update(status(sent(), s))
        assert after.state == c.SUPERSEDED
    assert c.on_manual_update(c.Progress())[0].state == c.PENDING


# -- time ----------------------------------------------------------------------------------------------------------


def test_silence_triggers_once_then_times_out() -> None:
    p = status(sent(), "Downloading", minutes=0)
    assert c.on_tick(p, now=T0 + TIMEOUT - timedelta(seconds=1), status_timeout=TIMEOUT) == (p, [])
    assert c.next_deadline(p, status_timeout=TIMEOUT) == T0 + TIMEOUT
    asked, actions = c.on_tick(p, now=T0 + TIMEOUT, status_timeout=TIMEOUT)
    assert actions == [c.Trigger(message="FirmwareStatusNotification")]
    assert c.on_tick(asked, now=T0 + TIMEOUT + timedelta(minutes=1), status_timeout=TIMEOUT) == (asked, [])
    assert c.next_deadline(asked, status_timeout=TIMEOUT) == T0 + 2 * TIMEOUT
    out, _ = c.on_tick(asked, now=T0 + 2 * TIMEOUT, status_timeout=TIMEOUT)
    assert out.state == c.TIMED_OUT


def test_an_answer_to_the_trigger_restarts_the_wait() -> None:
    p = sent()
    asked, _ = c.on_tick(p, now=T0 + TIMEOUT, status_timeout=TIMEOUT)
    back = status(asked, "Downloading", minutes=31)
    assert back.triggered_at is None
    assert c.on_tick(back, now=T0 + 2 * TIMEOUT, status_timeout=TIMEOUT)[0].state == c.DOWNLOADING


def test_idle_is_no_sign_of_life() -> None:
    asked, _ = c.on_tick(sent(), now=T0 + TIMEOUT, status_timeout=TIMEOUT)
    idle = status(asked, "Idle", minutes=31)
    assert c.on_tick(idle, now=T0 + 2 * TIMEOUT, status_timeout=TIMEOUT)[0].state == c.TIMED_OUT


def test_after_installed_a_1_6_charger_is_asked_for_the_boot() -> None:
    p = status(sent(c.OCPP16), "Installed", minutes=0)
    _, actions = c.on_tick(p, now=T0 + TIMEOUT, status_timeout=TIMEOUT)
    assert actions == [c.Trigger(message="BootNotification")]


def test_after_install_rebooting_a_2_0_1_charger_is_asked_for_its_firmware_status_not_a_boot() -> None:
    p = status(sent(c.OCPP201), "InstallRebooting", minutes=0)
    _, actions = c.on_tick(p, now=T0 + TIMEOUT, status_timeout=TIMEOUT)
    assert actions == [c.Trigger(message="FirmwareStatusNotification")]


def test_signature_verified_must_be_followed_by_installed_in_time() -> None:
    p = status(sent(), "SignatureVerified", minutes=0)
    p = status(p, "Installing", minutes=10)  # progress, but not Installed: the deadline stands
    assert c.next_deadline(p, status_timeout=TIMEOUT) == T0 + TIMEOUT
    out, _ = c.on_tick(p, now=T0 + TIMEOUT, status_timeout=TIMEOUT)
    assert (out.state, out.reason) == (c.FAILED, c.FAIL_SIGNATURE_TIMEOUT)
    ok = status(status(sent(), "SignatureVerified", minutes=0), "Installed", minutes=10)
    assert ok.install_deadline is None


def test_final_and_pending_chargers_do_not_tick() -> None:
    for p in (c.Progress(), c.fail(sent(), "x"), c.skip(c.Progress(), "x")):
        assert c.on_tick(p, now=T0 + 10 * TIMEOUT, status_timeout=TIMEOUT) == (p, [])
        assert c.next_deadline(p, status_timeout=TIMEOUT) is None


def test_retry_puts_errors_back_to_pending() -> None:
    failed = c.fail(sent(c.OCPP16, c.SIGNED_UPDATE_FIRMWARE), "x")
    failed = c.Progress(
        **{**{f: getattr(failed, f) for f in failed.__struct_fields__}, "signed_refused": True}
    )
    again = c.retry(failed)
    assert again.state == c.PENDING and again.request_id is None and again.signed_refused
    timed = c.on_tick(
        c.on_tick(sent(), now=T0 + TIMEOUT, status_timeout=TIMEOUT)[0],
        now=T0 + 2 * TIMEOUT,
        status_timeout=TIMEOUT,
    )[0]
    assert c.retry(timed).state == c.PENDING
    installed = c.on_boot(sent(), version_matches=True, at=T0)[0]
    assert c.retry(installed) == installed
