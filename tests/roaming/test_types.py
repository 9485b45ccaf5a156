"""Our OCPI types: a malformed object names its field (what status code 2001 carries), times are written as
OCPI's DateTime, the envelope leaves out what it does not have."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from ampgate.roaming.errors import invalid
from ampgate.roaming.types import (
    Credentials,
    Envelope,
    EvseStatus,
    EvseStatusPatch,
    MalformedObject,
    Token,
    TokenPatch,
    decode,
    ocpi_time,
    parse_datetime,
)

GOOD = {
    "token": "ebf3b399-779f-4497-9b9d-ac6ad3cc44d2",
    "url": "https://example.com/ocpi/versions",
    "roles": [
        {"role": "EMSP", "party_id": "EXA", "country_code": "NL", "business_details": {"name": "Example"}}
    ],
}


def _with(path: list[str | int], value: object) -> bytes:
    doc = msgspec.json.decode(msgspec.json.encode(GOOD))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return msgspec.json.encode(doc)


def test_a_good_credentials_object_decodes_and_extra_fields_are_ignored() -> None:
    creds = decode(_with(["hub_extra"], 1), Credentials)
    assert creds.roles[0].party_id == "EXA" and creds.roles[0].business_details.name == "Example"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["token"], ..., "token"),
        (["url"], ..., "url"),
        (["token"], "has space", "token"),  # printable non-whitespace ASCII only
        (["token"], "x" * 65, "token"),
        (["url"], "ftp://x", "url"),
        (["roles"], [], "roles"),
        (["roles", 0, "party_id"], "TOOLONG", "roles[0].party_id"),
        (["roles", 0, "country_code"], "N1", "roles[0].country_code"),
        (["roles", 0, "role"], "DRIVER", "roles[0].role"),
        (["roles", 0, "business_details"], ..., "roles[0].business_details"),
        (["roles", 0, "business_details", "name"], "", "roles[0].business_details.name"),
    ],
)
def test_a_malformed_credentials_object_names_its_field(path: list, value: object, field: str) -> None:
    with pytest.raises(MalformedObject) as err:
        decode(_with(path, value), Credentials)
    assert err.value.field == field
    answer = invalid(err.value.message, err.value.field)
    assert answer.status_code == 2001 and answer.http_status == 200 and answer.data == {"field": field}
    assert field in answer.message


def test_a_body_that_is_not_json_is_the_document_at_fault() -> None:
    with pytest.raises(MalformedObject) as err:
        decode(b"{nope", Credentials)
    assert err.value.field == ""


def test_times_are_utc_with_z_and_whole_seconds() -> None:
    at = datetime(2026, 11, 30, 9, 1, 2, 345678, tzinfo=timezone(timedelta(hours=1)))
    body = msgspec.json.encode(EvseStatusPatch(status=EvseStatus.CHARGING, last_updated=ocpi_time(at)))
    assert body == b'{"status":"CHARGING","last_updated":"2026-11-30T08:01:02Z"}'
    with pytest.raises(ValueError):
        ocpi_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-06-24T12:39:09Z", datetime(2019, 6, 24, 12, 39, 9, tzinfo=UTC)),
        ("2019-06-24T12:39:09", datetime(2019, 6, 24, 12, 39, 9, tzinfo=UTC)),  # no zone: UTC
        ("2016-12-29T17:45:09.2Z", datetime(2016, 12, 29, 17, 45, 9, 200000, tzinfo=UTC)),
        ("2019-06-24T14:39:09+02:00", datetime(2019, 6, 24, 12, 39, 9, tzinfo=UTC)),
    ],
)
def test_datetimes_are_read_as_ocpi_writes_them(text: str, expected: datetime) -> None:
    assert parse_datetime(text, "date_from") == expected


@pytest.mark.parametrize("text", ["yesterday", "2019-06-24", "2019-13-01T00:00:00Z", "2019-06-24 12:39:09"])
def test_a_bad_datetime_names_its_parameter(text: str) -> None:
    with pytest.raises(MalformedObject) as err:
        parse_datetime(text, "date_to")
    assert err.value.field == "date_to"


def test_the_envelope_leaves_out_data_and_message_it_does_not_have() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert msgspec.json.decode(msgspec.json.encode(Envelope(status_code=1000, timestamp=at))) == {
        "status_code": 1000,
        "timestamp": "2026-01-01T00:00:00Z",
    }
    full = Envelope(status_code=2001, timestamp=at, data={"field": "url"}, status_message="missing url")
    assert msgspec.json.decode(msgspec.json.encode(full))["data"] == {"field": "url"}


TOKEN = {
    "country_code": "NL",
    "party_id": "EMP",
    "uid": "012345678",
    "type": "RFID",
    "contract_id": "NL8ACC12E46L89",
    "issuer": "Example",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2015-06-29T22:39:09Z",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"uid": "x" * 37}, "uid"),
        ({"type": "CARD"}, "type"),
        ({"whitelist": "SOMETIMES"}, "whitelist"),
        ({"valid": "yes"}, "valid"),
        ({"party_id": "EMPX"}, "party_id"),
        ({"last_updated": "yesterday"}, "last_updated"),
        ({"energy_contract": {"contract_id": "c"}}, "energy_contract.supplier_name"),
    ],
)
def test_a_malformed_token_names_its_field(change: dict, field: str) -> None:
    with pytest.raises(MalformedObject) as err:
        decode(msgspec.json.encode({**TOKEN, **change}), Token)
    assert err.value.field == field


def test_a_token_patch_needs_last_updated_and_checks_what_it_carries() -> None:
    assert decode(msgspec.json.encode(TOKEN), Token).uid == "012345678"
    with pytest.raises(MalformedObject) as err:
        decode(b'{"valid": false}', TokenPatch)
    assert err.value.field == "last_updated"
    patch = decode(b'{"valid": false, "last_updated": "2019-06-19T02:11:11Z"}', TokenPatch)
    assert patch.valid is False and patch.whitelist is None
