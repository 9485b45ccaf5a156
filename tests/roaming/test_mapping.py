"""The written mapping from OCPP connector status to OCPI EVSE status, and the other pure rules between them."""

from __future__ import annotations

import pytest

from ampgate.roaming import mapping
from ampgate.roaming.types import ConnectorFormat, ConnectorType, EvseStatus, PowerType, TokenType

# The table of docs/ocpi.md, row by row: 1.6 ChargePointStatus and 2.0.1 ConnectorStatusEnumType.
TABLE = [
    ("Available", EvseStatus.AVAILABLE),
    ("Preparing", EvseStatus.CHARGING),
    ("Charging", EvseStatus.CHARGING),
    ("SuspendedEV", EvseStatus.CHARGING),
    ("SuspendedEVSE", EvseStatus.CHARGING),
    ("Finishing", EvseStatus.CHARGING),
    ("Occupied", EvseStatus.CHARGING),
    ("Reserved", EvseStatus.RESERVED),
    ("Unavailable", EvseStatus.INOPERATIVE),
    ("Faulted", EvseStatus.OUTOFORDER),
]


@pytest.mark.parametrize(("ocpp", "ocpi"), TABLE)
def test_each_ocpp_status_maps_as_the_table_says(ocpp: str, ocpi: EvseStatus) -> None:
    assert mapping.evse_status(ocpp, online=True) is ocpi


@pytest.mark.parametrize(("ocpp", "_"), TABLE)
def test_an_offline_charger_is_unknown_whatever_it_last_said(ocpp: str, _: EvseStatus) -> None:
    assert mapping.evse_status(ocpp, online=False) is EvseStatus.UNKNOWN


def test_no_status_or_a_word_no_version_defines_is_unknown() -> None:
    assert mapping.evse_status(None, online=True) is EvseStatus.UNKNOWN
    assert mapping.evse_status("Broken", online=True) is EvseStatus.UNKNOWN
    assert set(mapping.EVSE_STATUS_OF) == {o for o, _ in TABLE}


def test_an_evse_takes_the_most_telling_status_of_its_connectors() -> None:
    S = EvseStatus
    assert (
        mapping.combine([S.INOPERATIVE, S.CHARGING]) is S.CHARGING
    )  # 2.0.1: one Occupied, the other Unavailable
    assert mapping.combine([S.OUTOFORDER, S.AVAILABLE]) is S.AVAILABLE  # one usable connector is enough
    assert mapping.combine([S.AVAILABLE, S.RESERVED]) is S.RESERVED
    assert mapping.combine([S.OUTOFORDER, S.INOPERATIVE]) is S.INOPERATIVE
    assert mapping.combine([S.UNKNOWN, S.OUTOFORDER]) is S.OUTOFORDER
    assert mapping.combine([]) is S.UNKNOWN


def test_evse_uids_are_readable_when_they_can_be_and_never_collide() -> None:
    assert mapping.evse_uid("CP-001", 2) == "CP-001-2"
    long_id = "X" * 40
    odd = "cp 7/ü"
    for cid in (long_id, odd):
        uid = mapping.evse_uid(cid, 1)
        assert len(uid) <= 36 and "-" not in uid and uid == mapping.evse_uid(cid, 1)
    assert mapping.evse_uid(long_id, 1) != mapping.evse_uid(long_id, 2)
    # Split at the last '-': "A-1" EVSE 2 and "A" EVSE 12 differ.
    assert mapping.evse_uid("A-1", 2) != mapping.evse_uid("A", 12)


@pytest.mark.parametrize(
    "text", ["NL*AMP*E12345*1", "nl*amp*e12345*1", "NLAMPE12345", "DE*AB7*E840*6487", "BE*BEC*E041503001"]
)
def test_emi3_ids_are_accepted_and_written_upper_case(text: str) -> None:
    assert mapping.normalize_emi3(text) == text.upper()


@pytest.mark.parametrize(
    "text", ["NL-AMP-E1", "N*AMP*E1", "NL*AM*E1", "NL*AMP*X1", "NL*AMP*E", "NL*AMP*E" + "1" * 31]
)
def test_text_that_is_no_emi3_id_is_refused(text: str) -> None:
    assert mapping.normalize_emi3(text) is None


def test_the_default_emi3_id_needs_a_charger_id_the_alphabet_keeps() -> None:
    assert mapping.default_emi3("NL", "AMP", "CP001", 2) == "NL*AMP*ECP001*2"
    assert mapping.default_emi3("NL", "AMP", "cp001", 2) is None  # upper-casing could merge two chargers
    assert mapping.default_emi3("NL", "AMP", "CP-1", 2) is None
    # Without OCPI (no --ocpi-*) the node has no operator id to build one from: the public locations then show
    # only the eMI3 ids an admin described.
    assert mapping.default_emi3("", "", "CP001", 2) is None


def test_device_model_connector_types() -> None:
    assert mapping.CONNECTOR_TYPES["cCCS2"] == (
        ConnectorType.IEC_62196_T2_COMBO,
        ConnectorFormat.CABLE,
        PowerType.DC,
    )
    assert mapping.CONNECTOR_TYPES["sType2"][:2] == (ConnectorType.IEC_62196_T2, ConnectorFormat.SOCKET)
    assert mapping.power_type_of_phases(0) is PowerType.DC
    assert mapping.power_type_of_phases(3) is PowerType.AC_3_PHASE
    assert mapping.power_type_of_phases(None) is None


def test_the_session_id_of_a_transaction_and_back() -> None:
    assert mapping.session_id(42) == "42"
    assert mapping.transaction_of("42") == 42
    for text in ("0", "042", "-1", "4 2", "x", "", "1" * 19):
        assert mapping.transaction_of(text) is None, text


def test_token_types_both_ways() -> None:
    assert mapping.ocpi_token_types(None)[0] is TokenType.RFID  # a 1.6 idTag: any type, a card first
    assert mapping.ocpi_token_types("ISO14443") == (TokenType.RFID,)
    assert mapping.ocpi_token_types("Central")[0] is TokenType.APP_USER
    assert set(mapping.ocpi_token_types("eMAID")) == set(TokenType)
    assert mapping.ocpp_token_type(TokenType.RFID) == "ISO14443"
    assert mapping.ocpp_token_type(TokenType.AD_HOC_USER) == "Central"
