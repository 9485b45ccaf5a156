"""The pure rules between OCPP and OCPI, unit-tested without I/O: an OCPP connector status as an OCPI EVSE
status, an EVSE's status from its connectors', an EVSE's uid, eMI3 EVSE ids, what a 2.0.1 device model's
ConnectorType says about a connector, token types both ways, and the OCPI session id of a transaction.

The status table (docs/ocpi.md shows it too; shared/OCPP-NOTES.md "Facts added for the capability work"):

    OCPP (1.6 ChargePointStatus, 2.0.1 ConnectorStatusEnumType)      OCPI EVSE status
    Available                                                        AVAILABLE
    Preparing, Charging, SuspendedEV, SuspendedEVSE, Finishing,      CHARGING
    Occupied (2.0.1)
    Reserved                                                         RESERVED
    Unavailable (taken out of service: not broken)                   INOPERATIVE
    Faulted (broken)                                                 OUTOFORDER
    charger offline, never reported, or a status no version defines  UNKNOWN

UNKNOWN for an unknown word rather than a guess: OCPI's UNKNOWN is "no status information available", which is
the truth; publishing AVAILABLE on a guess sends a driver to a broken charger.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from ampgate.roaming.types import ConnectorFormat, ConnectorType, EvseStatus, PowerType, TokenType

EVSE_STATUS_OF: dict[str, EvseStatus] = {
    "Available": EvseStatus.AVAILABLE,
    "Preparing": EvseStatus.CHARGING,
    "Charging": EvseStatus.CHARGING,
    "SuspendedEV": EvseStatus.CHARGING,
    "SuspendedEVSE": EvseStatus.CHARGING,
    "Finishing": EvseStatus.CHARGING,
    "Occupied": EvseStatus.CHARGING,
    "Reserved": EvseStatus.RESERVED,
    "Unavailable": EvseStatus.INOPERATIVE,
    "Faulted": EvseStatus.OUTOFORDER,
}


def evse_status(ocpp_status: str | None, online: bool) -> EvseStatus:
    """The OCPI status of a connector whose charger last reported `ocpp_status` (None: never) and is `online`
    or not (the table in the module docstring)."""
    if not online or ocpp_status is None:
        return EvseStatus.UNKNOWN
    return EVSE_STATUS_OF.get(ocpp_status, EvseStatus.UNKNOWN)


# An EVSE charges one EV at a time through one of its connectors (2.0.1; a 1.6 EVSE has one connector). Its
# status is the first of these its connectors have: in use by someone (one connector Occupied, the others
# Unavailable meanwhile) is CHARGING; held for someone is RESERVED; one usable connector makes it AVAILABLE even
# if another is broken; out of service before broken; UNKNOWN only when nothing is known.
_PRECEDENCE = (
    EvseStatus.CHARGING,
    EvseStatus.RESERVED,
    EvseStatus.AVAILABLE,
    EvseStatus.INOPERATIVE,
    EvseStatus.OUTOFORDER,
    EvseStatus.UNKNOWN,
)


def combine(statuses: Iterable[EvseStatus]) -> EvseStatus:
    """An EVSE's status from its connectors' (see `_PRECEDENCE`); UNKNOWN for none."""
    present = set(statuses)
    for status in _PRECEDENCE:
        if status in present:
            return status
    return EvseStatus.UNKNOWN


# -- EVSE uid ----------------------------------------------------------------------------------------------------

# An EVSE uid is CiString(36) and may never change: `<charger id>-<evse>` when that is short and made of URL
# unreserved characters (readable in logs and URLs), otherwise a digest of the pair. The readable form always
# has a '-' and the digest form never does, so the two cannot collide; the readable form is split at its last
# '-' (an EVSE number has none), so two readable uids cannot collide either.
UID_MAX = 36
_READABLE = re.compile(r"[A-Za-z0-9._~-]+")
_DIGEST_CHARS = 26  # base32 of SHA-256, 130 bits: no collision among any fleet


def evse_uid(charger_id: str, evse: int) -> str:
    """The OCPI EVSE uid of EVSE `evse` of charger `charger_id` (1.6: the connector id), stable for ever."""
    readable = f"{charger_id}-{evse}"
    if len(readable) <= UID_MAX and _READABLE.fullmatch(readable):
        return readable
    digest = hashlib.sha256(f"{charger_id}\x00{evse}".encode()).digest()
    return "E" + base64.b32encode(digest).decode("ascii")[:_DIGEST_CHARS]


# -- eMI3 EVSE ids ------------------------------------------------------------------------------------------------

# eMI3 V1.0 part 2 (and ISO 15118-2 Annex H): <country: ISO 3166-1 alpha-2> [*] <operator: 3 alphanumerics> [*]
# E <power outlet id: 1 to 30 alphanumerics or '*'>. The separators are optional; ids compare case-insensitively
# and are written upper-case.
_EMI3 = re.compile(r"^[A-Z]{2}\*?[A-Z0-9]{3}\*?E[A-Z0-9*]{1,30}$")


def normalize_emi3(text: str) -> str | None:
    """`text` upper-cased when it is an eMI3 EVSE id (e.g. NL*AMP*E12345*1), else None."""
    up = text.strip().upper()
    return up if _EMI3.match(up) else None


_OUTLET = re.compile(r"[A-Z0-9]+")


def default_emi3(country_code: str, party_id: str, charger_id: str, evse: int) -> str | None:
    """The eMI3 id we publish for an EVSE nobody named one for: `CC*PID*E<charger id>*<evse>`, when the charger
    id is upper-case letters and digits (anything else would be changed by the eMI3 alphabet, and two chargers
    could then share an id); else None (evse_id is optional in OCPI). None too without an OCPI identity (empty
    `country_code` or `party_id`: the node runs without --ocpi-*, and an eMI3 id needs the operator's)."""
    if not country_code or not party_id or not _OUTLET.fullmatch(charger_id):
        return None
    return normalize_emi3(f"{country_code}*{party_id}*E{charger_id}*{evse}")


# -- 2.0.1 device model ----------------------------------------------------------------------------------------

# The Connector component's ConnectorType variable (OCPP 2.0.1 part 2, ConnectorEnumType) as OCPI's standard,
# format and power type (None: the device model does not say, e.g. an AC type that may be wired 1 or 3 phase).
# Types OCPI has no word for (Pan, wInductive, s309-1P-32A, Other…) are absent: the connector keeps its defaults.
CONNECTOR_TYPES: dict[str, tuple[ConnectorType, ConnectorFormat, PowerType | None]] = {
    "cCCS1": (ConnectorType.IEC_62196_T1_COMBO, ConnectorFormat.CABLE, PowerType.DC),
    "cCCS2": (ConnectorType.IEC_62196_T2_COMBO, ConnectorFormat.CABLE, PowerType.DC),
    "cG105": (ConnectorType.CHADEMO, ConnectorFormat.CABLE, PowerType.DC),
    "cTesla": (ConnectorType.TESLA_S, ConnectorFormat.CABLE, None),
    "cType1": (ConnectorType.IEC_62196_T1, ConnectorFormat.CABLE, PowerType.AC_1_PHASE),
    "cType2": (ConnectorType.IEC_62196_T2, ConnectorFormat.CABLE, None),
    "sType2": (ConnectorType.IEC_62196_T2, ConnectorFormat.SOCKET, None),
    "sType3": (ConnectorType.IEC_62196_T3C, ConnectorFormat.SOCKET, None),
    "s309-1P-16A": (ConnectorType.IEC_60309_2_single_16, ConnectorFormat.SOCKET, PowerType.AC_1_PHASE),
    "s309-3P-16A": (ConnectorType.IEC_60309_2_three_16, ConnectorFormat.SOCKET, PowerType.AC_3_PHASE),
    "s309-3P-32A": (ConnectorType.IEC_60309_2_three_32, ConnectorFormat.SOCKET, PowerType.AC_3_PHASE),
    "sBS1361": (ConnectorType.DOMESTIC_G, ConnectorFormat.SOCKET, PowerType.AC_1_PHASE),
    "sCEE-7-7": (ConnectorType.DOMESTIC_F, ConnectorFormat.SOCKET, PowerType.AC_1_PHASE),
}


def power_type_of_phases(phases: int | None) -> PowerType | None:
    """A supply's phase count (2.0.1 SupplyPhases: 0 is DC) as OCPI's power type; None when unknown."""
    return {0: PowerType.DC, 1: PowerType.AC_1_PHASE, 2: PowerType.AC_2_PHASE, 3: PowerType.AC_3_PHASE}.get(
        phases if phases is not None else -1
    )


# -- tokens --------------------------------------------------------------------------------------------------------

# The OCPI token types a presented OCPP token may be, most likely first. A 1.6 idTag has no type; a 2.0.1 RFID card
# is ISO14443 or ISO15693; an id the central system made (what a START_SESSION of an app user is sent as) is
# Central. The others (eMAID, KeyCode, Local, MacAddress) have no OCPI counterpart: any type, OTHER first.
_ANY_TYPE = (TokenType.RFID, TokenType.APP_USER, TokenType.AD_HOC_USER, TokenType.OTHER)
_OCPI_TYPES: dict[str, tuple[TokenType, ...]] = {
    "ISO14443": (TokenType.RFID,),
    "ISO15693": (TokenType.RFID,),
    "Central": (TokenType.APP_USER, TokenType.AD_HOC_USER, TokenType.OTHER),
}


def ocpi_token_types(ocpp_type: str | None) -> tuple[TokenType, ...]:
    """The OCPI token types an OCPP token of `ocpp_type` (None: a 1.6 idTag) may be, most likely first."""
    if ocpp_type is None:
        return _ANY_TYPE
    return _OCPI_TYPES.get(
        ocpp_type, (TokenType.OTHER, TokenType.RFID, TokenType.APP_USER, TokenType.AD_HOC_USER)
    )


def ocpp_token_type(ocpi_type: str) -> str:
    """The 2.0.1 IdTokenEnumType an OCPI token is sent to a charger as: an RFID card as ISO14443 (the common
    card; OCPI does not say which standard), anything an app or the eMSP made up as Central ("a centrally, in
    the CSMS (or other server) generated id")."""
    return "ISO14443" if ocpi_type == TokenType.RFID else "Central"


# -- sessions ------------------------------------------------------------------------------------------------------

_SESSION_ID = re.compile(r"[1-9][0-9]{0,17}")


def session_id(transaction_id: int) -> str:
    """The OCPI Session.id of our transaction `transaction_id` (the node's id, the one 1.6 chargers are given):
    its decimal digits. Stable, unique on the node, CiString(36); the Commands module (STOP_SESSION) reads it
    back with `transaction_of`, and the Sessions and CDR modules write it."""
    return str(transaction_id)


def transaction_of(session: str) -> int | None:
    """The transaction id an OCPI Session.id names (`session_id` reversed), or None when it names none."""
    return int(session) if _SESSION_ID.fullmatch(session) else None
