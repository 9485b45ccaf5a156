"""The Commands module's pure rules (ampgate.roaming.command_rules): each command's OCPP request per version,
checked against the generated OCPP schemas, and the charger's answer (or failure) as a CommandResult."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest

from ampgate.errors import ChargerCallError, ChargerOfflineError, ChargerTimeoutError
from ampgate.ocpp import payloads, v16, v201
from ampgate.roaming.command_rules import (
    RESULTS,
    result_of,
    result_of_error,
    start_refused,
    start_request,
    stop_request,
    unlock_request,
)
from ampgate.roaming.types import CommandResultType, EvseStatus, Token, TokenType, WhitelistType
from ampgate.store.transactions import TransactionRow

R = CommandResultType
AT = datetime(2026, 1, 1, tzinfo=UTC)


def token(type_: TokenType = TokenType.APP_USER, group: str | None = None) -> Token:
    return Token(
        country_code="NL",
        party_id="EMP",
        uid="U-1",
        type=type_,
        contract_id="NL-EMP-C1",
        issuer="x",
        valid=True,
        whitelist=WhitelistType.NEVER,
        last_updated=AT,
        group_id=group,
    )


def tx(protocol: str) -> TransactionRow:
    return TransactionRow(
        id=42,
        charger_id="CP",
        protocol=protocol,
        remote_id="TX-9" if protocol == "ocpp2.0.1" else None,
        evse_id=1,
        connector_id=1,
        id_token="U-1",
        started_at=AT,
        stopped_at=None,
        meter_start_wh=0,
        meter_stop_wh=None,
        energy_wh=0,
        stop_reason=None,
    )


def test_start_per_version() -> None:
    assert start_request("ocpp1.6", token(), 2, 7) == (
        "RemoteStartTransaction",
        {"idTag": "U-1", "connectorId": 2},
    )
    assert start_request("ocpp1.6", token(), None, 7) == ("RemoteStartTransaction", {"idTag": "U-1"})
    assert start_request("ocpp2.0.1", token(TokenType.RFID, "G"), 1, 7) == (
        "RequestStartTransaction",
        {
            "remoteStartId": 7,
            "idToken": {"idToken": "U-1", "type": "ISO14443"},
            "evseId": 1,
            "groupIdToken": {"idToken": "G", "type": "Central"},
        },
    )
    assert start_request("ocpp2.0.1", token(), None, 7)[1]["idToken"]["type"] == "Central"


def test_stop_and_unlock_per_version() -> None:
    assert stop_request(tx("ocpp1.6")) == ("RemoteStopTransaction", {"transactionId": 42})
    assert stop_request(tx("ocpp2.0.1")) == ("RequestStopTransaction", {"transactionId": "TX-9"})
    assert unlock_request("ocpp1.6", 2, 2) == ("UnlockConnector", {"connectorId": 2})
    assert unlock_request("ocpp2.0.1", 1, 2) == ("UnlockConnector", {"evseId": 1, "connectorId": 2})


@pytest.mark.parametrize(
    ("protocol", "call"),
    [
        ("ocpp1.6", start_request("ocpp1.6", token(), 1, 1)),
        ("ocpp2.0.1", start_request("ocpp2.0.1", token(group="G"), 1, 1)),
        ("ocpp1.6", stop_request(tx("ocpp1.6"))),
        ("ocpp2.0.1", stop_request(tx("ocpp2.0.1"))),
        ("ocpp1.6", unlock_request("ocpp1.6", 1, 1)),
        ("ocpp2.0.1", unlock_request("ocpp2.0.1", 1, 1)),
    ],
)
def test_every_request_matches_its_schema(protocol: str, call: tuple[str, dict]) -> None:
    payloads.validate_request(protocol, *call)


def test_answers_and_failures_as_results() -> None:
    assert result_of("RemoteStartTransaction", {"status": "Accepted"}) == R.ACCEPTED
    assert result_of("RequestStopTransaction", {"status": "Rejected"}) == R.REJECTED
    assert result_of("UnlockConnector", {"status": "NotSupported"}) == R.NOT_SUPPORTED
    assert result_of("UnlockConnector", {"status": "OngoingAuthorizedTransaction"}) == R.REJECTED
    assert result_of("ReserveNow", {"status": "Faulted"}) == R.EVSE_INOPERATIVE
    assert result_of("ReserveNow", {"status": "Something"}) == R.FAILED
    assert result_of("ReserveNow", None) == R.FAILED
    assert result_of_error(ChargerTimeoutError("late")) == R.TIMEOUT
    assert result_of_error(ChargerCallError("no", ocpp_code="NotImplemented")) == R.NOT_SUPPORTED
    assert result_of_error(ChargerCallError("no", ocpp_code="InternalError")) == R.FAILED
    assert result_of_error(ChargerOfflineError("gone")) == R.FAILED
    assert start_refused(EvseStatus.CHARGING) == R.EVSE_OCCUPIED
    assert start_refused(EvseStatus.OUTOFORDER) == R.EVSE_INOPERATIVE
    assert start_refused(EvseStatus.AVAILABLE) == R.REJECTED
    assert start_refused(None) == R.REJECTED


def test_every_status_the_schemas_allow_has_a_result() -> None:
    statuses = {
        "RemoteStartTransaction": get_args(v16.RemoteStartTransactionResponseStatus),
        "RemoteStopTransaction": get_args(v16.RemoteStopTransactionResponseStatus),
        "RequestStartTransaction": get_args(v201.RequestStartStopStatusEnumType),
        "RequestStopTransaction": get_args(v201.RequestStartStopStatusEnumType),
        "UnlockConnector": get_args(v16.UnlockConnectorResponseStatus) + get_args(v201.UnlockStatusEnumType),
        "ReserveNow": get_args(v16.ReserveNowResponseStatus) + get_args(v201.ReserveNowStatusEnumType),
    }
    for action, values in statuses.items():
        for status in values:
            assert (action, status) in RESULTS, (action, status)
