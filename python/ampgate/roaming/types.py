"""The OCPI 2.2.1 objects this node reads and writes, as msgspec Structs with the spec's snake_case names, and
the enums they use (transport_and_format, credentials, version_information_endpoint, mod_locations, types).

Our own types rather than a package: the OCPI packages on the Python index are frameworks on FastAPI and
pydantic, models tied to pydantic, or near-empty (docs/ocpi.md, "Our own types", says what was found). msgspec is what the
node already decodes OCPP and its API with, and its errors name the JSON path of the offending value, which is
exactly what OCPI's status code 2001 wants to carry.

Rules kept here, once:
- Optional fields are omitted when unset (`omit_defaults`): OCPI treats a missing optional field as null, and
  a PATCH must carry only the fields it changes.
- Unknown fields are ignored on decode: a party on a later 2.2.x, or with custom fields, still decodes.
- DateTime: UTC, written with `Z` (`+00:00` is not UTC for OCPI). Every time we publish goes through
  `ocpi_time`, which drops the sub-second part: msgspec writes microseconds (27 characters) and OCPI's DateTime
  is string(25); whole seconds also keep what a party sees equal to what `date_from` / `date_to` compare.
- Strings are checked for the spec's lengths where a party's value is stored or echoed (tokens, URLs, ids).
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from ampgate.errors import read_msgspec_error

__all__ = [
    "OCPI_VERSION",
    "AllowedType",
    "AuthMethod",
    "AuthorizationInfo",
    "BusinessDetails",
    "CancelReservation",
    "Capability",
    "CommandResponse",
    "CommandResponseType",
    "CommandResult",
    "CommandResultType",
    "CommandType",
    "Connector",
    "ConnectorFormat",
    "ConnectorTariffsPatch",
    "ConnectorType",
    "Credentials",
    "CredentialsRole",
    "DisplayText",
    "Endpoint",
    "EnergyContract",
    "Envelope",
    "Evse",
    "EvseStatus",
    "GeoLocation",
    "Image",
    "InterfaceRole",
    "Location",
    "LocationReferences",
    "MalformedObject",
    "ModuleId",
    "ParkingType",
    "PowerType",
    "ProfileType",
    "ReserveNow",
    "Role",
    "StartSession",
    "StatusCode",
    "StopSession",
    "Token",
    "TokenPatch",
    "TokenType",
    "UnlockConnector",
    "Version",
    "VersionDetails",
    "WhitelistType",
    "decode",
    "ocpi_time",
    "parse_datetime",
]

T = TypeVar("T")

# The one version this node speaks.
OCPI_VERSION = "2.2.1"


# -- enums ----------------------------------------------------------------------------------------------------


class StatusCode(enum.IntEnum):
    """The `status_code` of the response envelope (status_codes.asciidoc)."""

    SUCCESS = 1000
    CLIENT_ERROR = 2000
    INVALID_PARAMETERS = 2001
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    CLIENT_API_UNUSABLE = 3001
    UNSUPPORTED_VERSION = 3002
    NO_MATCHING_ENDPOINTS = 3003


class Role(enum.StrEnum):
    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class InterfaceRole(enum.StrEnum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class ModuleId(enum.StrEnum):
    """Module identifiers of 2.2.1. A party may list custom ones (`nltnm-tokens`): the Endpoint's
    `identifier` is therefore a plain string, compared with these values."""

    CDRS = "cdrs"
    CHARGING_PROFILES = "chargingprofiles"
    COMMANDS = "commands"
    CREDENTIALS = "credentials"
    HUB_CLIENT_INFO = "hubclientinfo"
    LOCATIONS = "locations"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    TOKENS = "tokens"


class EvseStatus(enum.StrEnum):
    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


class ConnectorFormat(enum.StrEnum):
    SOCKET = "SOCKET"
    CABLE = "CABLE"


class PowerType(enum.StrEnum):
    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class ConnectorType(enum.StrEnum):
    CHADEMO = "CHADEMO"
    CHAOJI = "CHAOJI"
    DOMESTIC_A = "DOMESTIC_A"
    DOMESTIC_B = "DOMESTIC_B"
    DOMESTIC_C = "DOMESTIC_C"
    DOMESTIC_D = "DOMESTIC_D"
    DOMESTIC_E = "DOMESTIC_E"
    DOMESTIC_F = "DOMESTIC_F"
    DOMESTIC_G = "DOMESTIC_G"
    DOMESTIC_H = "DOMESTIC_H"
    DOMESTIC_I = "DOMESTIC_I"
    DOMESTIC_J = "DOMESTIC_J"
    DOMESTIC_K = "DOMESTIC_K"
    DOMESTIC_L = "DOMESTIC_L"
    DOMESTIC_M = "DOMESTIC_M"
    DOMESTIC_N = "DOMESTIC_N"
    DOMESTIC_O = "DOMESTIC_O"
    GBT_AC = "GBT_AC"
    GBT_DC = "GBT_DC"
    IEC_60309_2_single_16 = "IEC_60309_2_single_16"
    IEC_60309_2_three_16 = "IEC_60309_2_three_16"
    IEC_60309_2_three_32 = "IEC_60309_2_three_32"
    IEC_60309_2_three_64 = "IEC_60309_2_three_64"
    IEC_62196_T1 = "IEC_62196_T1"
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
    IEC_62196_T2 = "IEC_62196_T2"
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
    IEC_62196_T3A = "IEC_62196_T3A"
    IEC_62196_T3C = "IEC_62196_T3C"
    NEMA_5_20 = "NEMA_5_20"
    NEMA_6_30 = "NEMA_6_30"
    NEMA_6_50 = "NEMA_6_50"
    NEMA_10_30 = "NEMA_10_30"
    NEMA_10_50 = "NEMA_10_50"
    NEMA_14_30 = "NEMA_14_30"
    NEMA_14_50 = "NEMA_14_50"
    PANTOGRAPH_BOTTOM_UP = "PANTOGRAPH_BOTTOM_UP"
    PANTOGRAPH_TOP_DOWN = "PANTOGRAPH_TOP_DOWN"
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class Capability(enum.StrEnum):
    CHARGING_PROFILE_CAPABLE = "CHARGING_PROFILE_CAPABLE"
    CHARGING_PREFERENCES_CAPABLE = "CHARGING_PREFERENCES_CAPABLE"
    CHIP_CARD_SUPPORT = "CHIP_CARD_SUPPORT"
    CONTACTLESS_CARD_SUPPORT = "CONTACTLESS_CARD_SUPPORT"
    CREDIT_CARD_PAYABLE = "CREDIT_CARD_PAYABLE"
    DEBIT_CARD_PAYABLE = "DEBIT_CARD_PAYABLE"
    PED_TERMINAL = "PED_TERMINAL"
    REMOTE_START_STOP_CAPABLE = "REMOTE_START_STOP_CAPABLE"
    RESERVABLE = "RESERVABLE"
    RFID_READER = "RFID_READER"
    START_SESSION_CONNECTOR_REQUIRED = "START_SESSION_CONNECTOR_REQUIRED"
    TOKEN_GROUP_CAPABLE = "TOKEN_GROUP_CAPABLE"
    UNLOCK_CAPABLE = "UNLOCK_CAPABLE"


class ParkingType(enum.StrEnum):
    ALONG_MOTORWAY = "ALONG_MOTORWAY"
    PARKING_GARAGE = "PARKING_GARAGE"
    PARKING_LOT = "PARKING_LOT"
    ON_DRIVEWAY = "ON_DRIVEWAY"
    ON_STREET = "ON_STREET"
    UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"


# -- field types ------------------------------------------------------------------------------------------------

# A credentials token: string(64) of printable non-whitespace ASCII (U+0021 to U+007E).
CredentialsToken = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
# URL is string(255).
Url = Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^https?://")]
CountryCode = Annotated[str, Meta(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")]
PartyId = Annotated[str, Meta(min_length=3, max_length=3, pattern=r"^[A-Za-z0-9]{3}$")]
CiString36 = Annotated[str, Meta(min_length=1, max_length=36, pattern=r"^[ -~]+$")]
# GeoLocation's regexes: at least five decimals (about a metre), at most seven.
Latitude = Annotated[str, Meta(pattern=r"^-?[0-9]{1,2}\.[0-9]{5,7}$")]
Longitude = Annotated[str, Meta(pattern=r"^-?[0-9]{1,3}\.[0-9]{5,7}$")]


class _Object(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


# -- versions ---------------------------------------------------------------------------------------------------


class Version(_Object):
    version: str
    url: Url


class Endpoint(_Object):
    """One module's URL. `identifier` stays a string: custom module ids are legal (version_information)."""

    identifier: str
    role: InterfaceRole
    url: Url


class VersionDetails(_Object):
    version: str
    endpoints: list[Endpoint]


# -- credentials ------------------------------------------------------------------------------------------------


class Image(_Object):
    url: Url
    category: str
    type: Annotated[str, Meta(max_length=4)]
    thumbnail: Url | None = None
    width: int | None = None
    height: int | None = None


class BusinessDetails(_Object):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    website: Url | None = None
    logo: Image | None = None


class CredentialsRole(_Object):
    role: Role
    business_details: BusinessDetails
    party_id: PartyId
    country_code: CountryCode


class Credentials(_Object):
    token: CredentialsToken
    url: Url
    roles: Annotated[list[CredentialsRole], Meta(min_length=1)]


# -- locations --------------------------------------------------------------------------------------------------


class GeoLocation(_Object):
    latitude: Latitude
    longitude: Longitude


class Connector(_Object):
    id: CiString36
    standard: ConnectorType
    format: ConnectorFormat
    power_type: PowerType
    max_voltage: int
    max_amperage: int
    last_updated: datetime
    max_electric_power: int | None = None
    # The tariff an ad-hoc or roaming session starting now gets (`ampgate.roaming.locations`); left out when
    # none applies (OCPI: optional, any number).
    tariff_ids: list[CiString36] | None = None
    terms_and_conditions: Url | None = None


class Evse(_Object):
    uid: CiString36
    status: EvseStatus
    connectors: Annotated[list[Connector], Meta(min_length=1)]
    last_updated: datetime
    evse_id: Annotated[str, Meta(max_length=48)] | None = None
    capabilities: list[Capability] | None = None
    coordinates: GeoLocation | None = None
    physical_reference: Annotated[str, Meta(max_length=16)] | None = None
    floor_level: Annotated[str, Meta(max_length=4)] | None = None


class Location(_Object):
    country_code: CountryCode
    party_id: PartyId
    id: CiString36
    publish: bool
    address: Annotated[str, Meta(max_length=255)]
    city: Annotated[str, Meta(max_length=45)]
    country: Annotated[str, Meta(min_length=3, max_length=3)]
    coordinates: GeoLocation
    time_zone: str
    last_updated: datetime
    name: Annotated[str, Meta(max_length=255)] | None = None
    postal_code: Annotated[str, Meta(max_length=10)] | None = None
    state: Annotated[str, Meta(max_length=45)] | None = None
    parking_type: ParkingType | None = None
    evses: list[Evse] | None = None
    operator: BusinessDetails | None = None


class EvseStatusPatch(_Object):
    """The body of the most common push: an EVSE's new status (mod_locations, PATCH)."""

    status: EvseStatus
    last_updated: datetime


class ConnectorTariffsPatch(_Object):
    """A connector's tariffs changed (mod_locations, PATCH of a Connector: the spec's "set tariff update"
    example). `tariff_ids` is always written, empty when no tariff applies any more: a PATCH without the field
    would leave the party's old ones in place."""

    tariff_ids: list[CiString36]
    last_updated: datetime


# -- tokens (mod_tokens) ------------------------------------------------------------------------------------


class TokenType(enum.StrEnum):
    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class WhitelistType(enum.StrEnum):
    """When the CPO may authorize a Token from what it holds, without asking its eMSP (`ampgate.roaming.whitelist`
    has what each value makes us do)."""

    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class AllowedType(enum.StrEnum):
    """An eMSP's answer to a real-time authorization."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


class ProfileType(enum.StrEnum):
    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


class AuthMethod(enum.StrEnum):
    """How a session was authorized (mod_cdrs AuthMethod): what the Sessions and CDR modules report."""

    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


class DisplayText(_Object):
    language: Annotated[str, Meta(min_length=2, max_length=2)]
    text: Annotated[str, Meta(max_length=512)]


class EnergyContract(_Object):
    supplier_name: Annotated[str, Meta(max_length=64)]
    contract_id: Annotated[str, Meta(max_length=64)] | None = None


class Token(_Object):
    """A Token an eMSP owns (pushed to us, or carried by a command)."""

    country_code: CountryCode
    party_id: PartyId
    uid: CiString36
    type: TokenType
    contract_id: CiString36
    issuer: Annotated[str, Meta(max_length=64)]
    valid: bool
    whitelist: WhitelistType
    last_updated: datetime
    visual_number: Annotated[str, Meta(max_length=64)] | None = None
    group_id: CiString36 | None = None
    language: Annotated[str, Meta(min_length=2, max_length=2)] | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None


class TokenPatch(_Object):
    """A PATCH of a Token: any field, `last_updated` always (mod_tokens: "SHALL contain the last_updated field").
    Only checks the types of what is present; the merged Token is checked whole."""

    last_updated: datetime
    country_code: CountryCode | None = None
    party_id: PartyId | None = None
    uid: CiString36 | None = None
    type: TokenType | None = None
    contract_id: CiString36 | None = None
    issuer: Annotated[str, Meta(max_length=64)] | None = None
    valid: bool | None = None
    whitelist: WhitelistType | None = None
    visual_number: Annotated[str, Meta(max_length=64)] | None = None
    group_id: CiString36 | None = None
    language: Annotated[str, Meta(min_length=2, max_length=2)] | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None


class LocationReferences(_Object):
    location_id: CiString36
    evse_uids: list[CiString36] | None = None


class AuthorizationInfo(_Object):
    """An eMSP's answer to a real-time authorization (the data of its POST …/authorize)."""

    allowed: AllowedType
    token: Token
    location: LocationReferences | None = None
    authorization_reference: CiString36 | None = None
    info: DisplayText | None = None


# -- commands (mod_commands) ---------------------------------------------------------------------------------


class CommandType(enum.StrEnum):
    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class CommandResponseType(enum.StrEnum):
    """Our synchronous answer to a command: whether we could send it to the charger."""

    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    ACCEPTED = "ACCEPTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResultType(enum.StrEnum):
    """What came of a command at the charger, POSTed to the command's response_url."""

    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


class StartSession(_Object):
    response_url: Url
    token: Token
    location_id: CiString36
    evse_uid: CiString36 | None = None
    connector_id: CiString36 | None = None
    authorization_reference: CiString36 | None = None


class StopSession(_Object):
    response_url: Url
    session_id: CiString36


class ReserveNow(_Object):
    response_url: Url
    token: Token
    expiry_date: datetime
    reservation_id: CiString36
    location_id: CiString36
    evse_uid: CiString36 | None = None
    authorization_reference: CiString36 | None = None


class CancelReservation(_Object):
    response_url: Url
    reservation_id: CiString36


class UnlockConnector(_Object):
    response_url: Url
    location_id: CiString36
    evse_uid: CiString36
    connector_id: CiString36


class CommandResponse(_Object):
    result: CommandResponseType
    timeout: int
    message: list[DisplayText] | None = None


class CommandResult(_Object):
    result: CommandResultType
    message: list[DisplayText] | None = None


# -- the response envelope -------------------------------------------------------------------------------------


class Envelope(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What every OCPI answer is wrapped in (transport_and_format, "Response format"). `data` is left out when
    there is none, as the spec advises for answers whose data it does not define."""

    status_code: int
    timestamp: datetime
    data: Any = msgspec.UNSET
    status_message: str | msgspec.UnsetType = msgspec.UNSET


class AnyEnvelope(msgspec.Struct, kw_only=True):
    """A party's envelope as we read it: `data` kept raw (an absent field and `null` both come out as the raw
    text `null` or empty), decoded later with the type the call expects."""

    status_code: int
    timestamp: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    status_message: str | None = None

    def has_data(self) -> bool:
        return bytes(self.data) not in (b"", b"null")


# -- decoding and times ----------------------------------------------------------------------------------------


class MalformedObject(Exception):
    """An OCPI object that does not decode: `field` is the dotted path of the offending value (`roles.0.party_id`,
    `token`; "" for the document itself), `message` says what is wrong. The server answers it with status code
    2001 naming the field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def decode(data: bytes, type_: type[T]) -> T:
    """`data` (JSON) as `type_`. Raises MalformedObject naming the field at fault; a body that is not JSON at
    all is MalformedObject with field "" (the HTTP layer answers that one 400, per status_codes)."""
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.ValidationError as e:
        problem = read_msgspec_error(e)
        raise MalformedObject(problem.message, problem.path) from None
    except msgspec.DecodeError as e:
        raise MalformedObject(f"not JSON: {e}", "") from None


def ocpi_time(at: datetime) -> datetime:
    """`at` in UTC without its sub-second part: what every time we publish is (see the module docstring).
    Raises ValueError for a naive datetime."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a naive datetime has no zone")
    return at.astimezone(UTC).replace(microsecond=0)


_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def parse_datetime(text: str, field: str) -> datetime:
    """An OCPI DateTime (RFC 3339; no zone designator means UTC, as types.asciidoc says) as an aware UTC
    datetime. An offset other than Z is accepted (strictly OCPI writes only Z; a lenient reader costs nothing).
    Raises MalformedObject naming `field`."""
    if not _DATETIME.match(text):
        raise MalformedObject(f"{field} is not an RFC 3339 date-time such as 2019-06-24T12:39:09Z", field)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedObject(f"{field} is not a valid date-time", field) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
