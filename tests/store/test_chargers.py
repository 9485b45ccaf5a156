"""Chargers: boot records, registration, validation with field names, pagination, the credential table."""

from __future__ import annotations

import hashlib
import sqlite3
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ampgate.errors import NotFoundError, ValidationError
from ampgate.store import (
    BootReport,
    ChargerRepository,
    Store,
    hash_password,
    validate_charger_id,
    verify_password,
)

from .conftest import Runner

BOOT = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
GOOD_PW = "correct-horse-battery"


def repo(store: Store) -> ChargerRepository:
    return ChargerRepository(store)


def boot(store: Store, cp_id: str, **kw: object) -> None:
    args: dict = {
        "vendor": "Acme",
        "model": "X1",
        "serial": "S1",
        "firmware": "1.0",
        "protocol": "ocpp1.6",
        "at": BOOT,
    }
    args.update(kw)
    repo(store).record_boot(BootReport(charger_id=cp_id, **args))


def test_boot_creates_an_unknown_charger_then_updates_it(running: Runner, db_path: str) -> None:
    async def body(store: Store) -> None:
        boot(store, "CP1")
        await store.write(lambda db: None)  # the boot record is fire-and-forget: wait for its group
        row = repo(store).get("CP1")
        assert row is not None
        assert (row.vendor, row.model, row.serial, row.firmware, row.protocol) == (
            "Acme",
            "X1",
            "S1",
            "1.0",
            "ocpp1.6",
        )
        assert row.last_boot_at == BOOT and row.registered_at == BOOT
        assert not row.has_password and not row.accepted

        later = datetime(2026, 3, 5, tzinfo=UTC)
        boot(store, "CP1", firmware="2.0", serial=None, protocol="ocpp2.0.1", at=later)
        await store.write(lambda db: None)
        row = repo(store).get("CP1")
        assert row is not None
        assert (row.firmware, row.serial, row.protocol) == ("2.0", None, "ocpp2.0.1")
        assert row.last_boot_at == later and row.registered_at == BOOT  # first seen stays

    running(body)
    conn = sqlite3.connect(db_path)
    try:
        stored = conn.execute("SELECT registered_at, last_boot_at FROM chargers").fetchone()
    finally:
        conn.close()
    assert stored == ("2026-03-04T05:06:07.890Z", "2026-03-05T00:00:00.000Z")


def test_a_connection_lists_an_unknown_charger_and_tracks_its_protocol(running: Runner) -> None:
    async def body(store: Store) -> None:
        repo(store).record_connection("CP-NEW", protocol="ocpp2.0.1", at=BOOT)
        await store.write(lambda db: None)
        row = repo(store).get("CP-NEW")
        assert row is not None and row.protocol == "ocpp2.0.1" and row.registered_at == BOOT
        assert row.last_boot_at is None and not row.accepted and not row.has_password

        await repo(store).register("CP-NEW", GOOD_PW)
        later = datetime(2026, 5, 1, tzinfo=UTC)
        repo(store).record_connection("CP-NEW", protocol="ocpp1.6", at=later)
        await store.write(lambda db: None)
        row = repo(store).get("CP-NEW")
        assert row is not None and row.protocol == "ocpp1.6"
        assert row.registered_at == BOOT and row.has_password and row.accepted  # nothing else touched

    running(body)


def test_register_creates_then_replaces_the_password(db_path: str) -> None:
    from .conftest import run_store

    store = Store(db_path, now=lambda: NOW)

    async def body(s: Store) -> None:
        row, created = await repo(s).register("CP-7", GOOD_PW)
        assert created and row.id == "CP-7" and row.has_password and row.accepted
        assert row.registered_at == NOW and row.last_boot_at is None
        first = repo(s).credential("CP-7")
        assert first is not None and verify_password(GOOD_PW, first)

        row, created = await repo(s).register("CP-7", "another-key-0123456")
        assert not created and row.has_password
        second = repo(s).credential("CP-7")
        assert second is not None and verify_password("another-key-0123456", second)
        assert not verify_password(GOOD_PW, second)

        row, created = await repo(s).register("CP-7", None)
        assert not created and not row.has_password
        assert repo(s).credential("CP-7") is None
        assert repo(s).count() == 1

    run_store(db_path, body, store)


def test_registering_a_booted_charger_accepts_it_and_keeps_its_details(running: Runner) -> None:
    async def body(store: Store) -> None:
        boot(store, "CP1")
        row, created = await repo(store).register("CP1", GOOD_PW)
        assert not created and row.accepted and row.vendor == "Acme" and row.registered_at == BOOT

    running(body)


@pytest.mark.parametrize(
    ("cp_id", "password", "field"),
    [
        ("", None, "id"),
        ("x" * 49, None, "id"),
        ("a/b", None, "id"),
        ("a:b", None, "id"),
        ("a\nb", None, "id"),
        ("a\x7fb", None, "id"),
        ("CP1", "short", "password"),
        ("CP1", "x" * 41, "password"),
        ("CP1", "non-ascii-passwörd-123", "password"),
        ("CP1", "tab\tinside-password-123", "password"),
    ],
)
def test_registration_rejects_bad_values_naming_the_field(
    running: Runner, cp_id: str, password: str | None, field: str
) -> None:
    async def body(store: Store) -> None:
        with pytest.raises(ValidationError) as info:
            await repo(store).register(cp_id, password)
        assert info.value.field == field
        assert info.value.code == "invalid_field"
        assert repo(store).count() == 0

    running(body)


def test_limits_are_inclusive(running: Runner) -> None:
    async def body(store: Store) -> None:
        await repo(store).register("x" * 48, "p" * 16)
        await repo(store).register("y", "p" * 40)
        await repo(store).register("ünïcode id with spaces", " " * 16)
        assert repo(store).count() == 3

    running(body)


@given(st.text(min_size=1, max_size=48))
def test_id_rule_matches_its_definition(cp_id: str) -> None:
    bad = (
        any(
            c in "/:"
            or ord(c) < 0x20
            or 0x7F <= ord(c) <= 0x9F
            or unicodedata.category(c) in ("Cf", "Zl", "Zp", "Cs", "Co", "Cn")
            or (unicodedata.category(c) == "Zs" and c != " ")
            for c in cp_id
        )
        or unicodedata.normalize("NFC", cp_id) != cp_id
    )
    if bad:
        with pytest.raises(ValidationError):
            validate_charger_id(cp_id)
    else:
        assert validate_charger_id(cp_id) == cp_id


@pytest.mark.parametrize(
    "cp_id",
    [
        "CP\u200b1",  # ZERO WIDTH SPACE
        "CP\u202e1",  # RIGHT-TO-LEFT OVERRIDE
        "CP\u20661",  # LEFT-TO-RIGHT ISOLATE
        "CP\u00ad1",  # SOFT HYPHEN
        "\ufeffCP1",  # BYTE ORDER MARK / ZERO WIDTH NO-BREAK SPACE
        "CP\u00a01",  # NO-BREAK SPACE (looks like "CP 1")
        "CP\u20281",  # LINE SEPARATOR
        "CP\ue0001",  # private use
        "Cafe\u0301",  # not NFC
    ],
)
def test_invisible_direction_changing_and_look_alike_ids_are_refused(cp_id: str) -> None:
    with pytest.raises(ValidationError) as e:
        validate_charger_id(cp_id)
    assert e.value.field == "id"


def test_registration_normalizes_to_nfc_so_look_alikes_are_one_charger(running: Runner) -> None:
    async def body(store: Store) -> None:
        from ampgate.store import normalize_charger_id

        composed, decomposed = "Caf\u00e9", "Cafe\u0301"
        assert normalize_charger_id(decomposed) == composed
        await repo(store).register(normalize_charger_id(composed), None)
        await repo(store).register(normalize_charger_id(decomposed), None)
        assert repo(store).count() == 1 and repo(store).get(composed) is not None

    running(body)


def test_pagination_walks_every_charger_once_in_id_order(running: Runner) -> None:
    ids = [f"CP{i:03}" for i in range(25)]

    async def body(store: Store) -> None:
        for cp_id in reversed(ids):
            boot(store, cp_id)
        await store.write(lambda db: None)
        seen: list[str] = []
        after: str | None = None
        pages = 0
        while True:
            page = repo(store).page(10, after)
            if not page:
                break
            pages += 1
            seen += [r.id for r in page]
            after = page[-1].id
        assert seen == ids
        assert pages == 3
        assert repo(store).page(5, "CP022") == [repo(store).get("CP023"), repo(store).get("CP024")]
        with pytest.raises(ValidationError) as info:
            repo(store).page(0)
        assert info.value.field == "limit"

    running(body)


def test_firmware_status_is_recorded_as_sent_and_the_latest_wins(running: Runner, db_path: str) -> None:
    async def body(store: Store) -> None:
        boot(store, "CP1")
        await store.write(lambda db: None)
        row = repo(store).get("CP1")
        assert row is not None
        assert (row.firmware_status, row.firmware_request_id, row.firmware_status_at) == (None, None, None)

        repo(store).record_firmware_status("CP1", status="Downloading", request_id=7, at=BOOT)
        await store.write(lambda db: None)
        row = repo(store).get("CP1")
        assert row is not None
        assert (row.firmware_status, row.firmware_request_id, row.firmware_status_at) == (
            "Downloading",
            7,
            BOOT,
        )

        # A notification without a request id (1.6 FirmwareStatusNotification, a triggered Idle) clears it.
        later = datetime(2026, 3, 4, 6, tzinfo=UTC)
        repo(store).record_firmware_status("CP1", status="Idle", request_id=None, at=later)
        # A reboot with the new version changes the version and keeps the status.
        boot(store, "CP1", firmware="2.0", at=later)
        await store.write(lambda db: None)
        row = repo(store).get("CP1")
        assert row is not None
        assert (row.firmware, row.firmware_status, row.firmware_request_id) == ("2.0", "Idle", None)
        assert row.firmware_status_at == later

        repo(store).record_firmware_status("NOBODY", status="Installed", request_id=1, at=later)
        await store.write(lambda db: None)
        assert repo(store).get("NOBODY") is None  # an unknown charger is not created by a status
        with pytest.raises(ValueError):
            repo(store).record_firmware_status(
                "CP1", status="Installed", request_id=1, at=datetime(2026, 1, 1)
            )

    running(body)
    conn = sqlite3.connect(db_path)
    try:
        stored = conn.execute("SELECT firmware_status_at FROM chargers WHERE id = 'CP1'").fetchone()
    finally:
        conn.close()
    assert stored == ("2026-03-04T06:00:00.000Z",)


def test_pages_filtered_by_firmware_version_and_status(running: Runner) -> None:
    async def body(store: Store) -> None:
        for i in range(12):
            boot(store, f"CP{i:02}", firmware="2.0" if i % 3 == 0 else "1.0")
            if i % 2 == 0:
                repo(store).record_firmware_status(f"CP{i:02}", status="Installed", request_id=1, at=BOOT)
        await store.write(lambda db: None)

        def walk(**filters: str) -> list[str]:
            seen: list[str] = []
            after: str | None = None
            while page := repo(store).page(2, after, **filters):
                seen += [r.id for r in page]
                after = page[-1].id
            return seen

        assert walk(firmware="2.0") == ["CP00", "CP03", "CP06", "CP09"]
        assert walk(firmware_status="Installed") == ["CP00", "CP02", "CP04", "CP06", "CP08", "CP10"]
        assert walk(firmware="2.0", firmware_status="Installed") == ["CP00", "CP06"]
        assert walk(firmware="9.9") == [] and walk(firmware_status="Downloading") == []
        assert len(walk()) == 12

    running(body)


def test_credentials_cover_every_known_charger(running: Runner) -> None:
    async def body(store: Store) -> None:
        boot(store, "B-booted")
        await repo(store).register("A-with-pw", GOOD_PW)
        await repo(store).register("C-no-pw", None)
        creds = repo(store).credentials(100)
        assert [cid for cid, _, _ in creds] == ["A-with-pw", "B-booted", "C-no-pw"]
        # Keyset pages: each after the last id of the one before, none lost or repeated.
        assert [c for c, _, _ in repo(store).credentials(2)] == ["A-with-pw", "B-booted"]
        assert [c for c, _, _ in repo(store).credentials(2, "B-booted")] == ["C-no-pw"]
        assert repo(store).credentials(2, "C-no-pw") == []
        # Every charger starts at security profile 1 (plain ws allowed).
        assert {p for _, _, p in creds} == {1}
        hashes = {cid: h for cid, h, _ in creds}
        assert hashes["B-booted"] is None and hashes["C-no-pw"] is None
        assert hashes["A-with-pw"] is not None and verify_password(GOOD_PW, hashes["A-with-pw"])
        assert repo(store).credential("nobody") is None

    running(body)


def test_security_profile_is_kept_and_checked(running: Runner) -> None:
    async def body(store: Store) -> None:
        await repo(store).register("CP-TLS", GOOD_PW)
        row = await repo(store).set_security_profile("CP-TLS", 3)
        assert row.security_profile == 3 and repo(store).security_profile("CP-TLS") == 3
        assert repo(store).credentials(10)[0][2] == 3
        for bad in (0, 4, True):
            with pytest.raises(ValidationError) as e:
                await repo(store).set_security_profile("CP-TLS", bad)
            assert e.value.field == "security_profile"
        assert repo(store).security_profile("CP-TLS") == 3
        with pytest.raises(NotFoundError) as nf:
            await repo(store).set_security_profile("nobody", 2)
        assert nf.value.field == "id"
        assert repo(store).security_profile("nobody") == 1

    running(body)


def test_password_hash_has_the_format_the_gateway_parses() -> None:
    stored = hash_password(GOOD_PW)
    scheme, salt_hex, digest_hex = stored.split("$")
    assert scheme == "sha256"
    salt = bytes.fromhex(salt_hex)
    assert len(salt) == 16 and salt_hex == salt_hex.lower()
    assert digest_hex == hashlib.sha256(salt + GOOD_PW.encode()).hexdigest()
    assert hash_password(GOOD_PW) != stored  # fresh salt each time


def test_verify_password() -> None:
    stored = hash_password(GOOD_PW)
    assert verify_password(GOOD_PW, stored)
    assert not verify_password(GOOD_PW + "x", stored)
    assert not verify_password(GOOD_PW, "md5$00$ff")
    assert not verify_password(GOOD_PW, "sha256$zz$ff")
    assert not verify_password(GOOD_PW, "garbage")
    # The gateway's own test vector (rust/gateway/auth.rs).
    salt = b"0123456789abcdef"
    vector = f"sha256${salt.hex()}${hashlib.sha256(salt + b'averylongsecretkey').hexdigest()}"
    assert verify_password("averylongsecretkey", vector)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=16, max_size=40))
def test_hash_then_verify_round_trips(password: str) -> None:
    assert verify_password(password, hash_password(password))
