"""Request and response bodies of the HTTP API, as msgspec Structs (snake_case JSON). Read shapes are what we
send, Create shapes what we accept; they are separate even where they overlap, so one can change alone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ampgate.api.costs import CostRead


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every 4xx/5xx body. `code` is stable (branch on it); `message` is for people; `field` names the input
    (JSON key, query or path parameter) at fault, when one is."""

    code: str
    message: str
    field: str | None = None
    # For 502 charger_error: the charger's OCPP error code and its errorDetails.
    ocpp_code: str | None = None
    details: Any = None


class ConnectorRead(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A connector's last reported status. `evse_id` only for 2.0.1 chargers (1.6 has no EVSE level)."""

    evse_id: int | None = None
    connector_id: int
    status: str
    error_code: str | None  # null: no error reported
    updated_at: datetime


# omit_defaults only drops `connectors` (the one field with a default): every other field is always sent.
class ChargerRead(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A charger: what the store knows merged with its live presence."""

    id: str
    online: bool
    # The live connection's subprotocol when online, else the one of its last boot.
    protocol: str | None
    vendor: str | None
    model: str | None
    serial: str | None
    firmware: str | None  # the version it reported at its last boot
    # Its last FirmwareStatusNotification: the status as sent (e.g. Downloading, Installed), the requestId of
    # the update it belongs to (null when it sent none, always for a 1.6 FirmwareStatusNotification) and when
    # the node received it. All null until it sends one.
    firmware_status: str | None
    firmware_request_id: int | None
    firmware_status_at: datetime | None
    connected_since: datetime | None
    last_seen: datetime | None
    registered_at: datetime
    last_boot_at: datetime | None
    # The lowest OCPP security profile it may connect with (1 plain ws + Basic auth, 2 TLS + Basic auth, 3 TLS
    # with a client certificate); PATCH /chargers/{id} sets it.
    security_profile: int
    # The security profile of the live connection; null when offline.
    connection_security_profile: int | None
    # Each connector's last status; only on GET /chargers/{id}, and only once the charger reported one.
    connectors: list[ConnectorRead] | None = None
    # Its tags, sorted; only on GET /chargers/{id} (PUT /chargers/{id}/tags sets them).
    tags: list[str] | None = None


class ChargerUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change a registered charger's settings: only the keys given change."""

    security_profile: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=3,
                description="The lowest OCPP security profile the charger may connect with: 1 plain ws with Basic "
                "auth, 2 TLS with Basic auth, 3 TLS with a client certificate whose common name is its id. A live "
                "connection below it is closed.",
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class ChargerPage(msgspec.Struct, kw_only=True):
    """One page of chargers in id order; pass `next_cursor` as `cursor` for the next (null: this was the last),
    with the same filters."""

    items: list[ChargerRead]
    next_cursor: str | None


class ChargerCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Register a charger, or replace the password of a registered one."""

    id: Annotated[
        str,
        Meta(
            description="The charge point id in the charger's URL: 1–48 characters, no '/', ':' or control "
            "characters.",
            examples=["CP-0001"],
        ),
    ]
    password: Annotated[
        str | msgspec.UnsetType | None,
        Meta(
            description="HTTP Basic password the charger will present: 16–40 printable ASCII characters. null: "
            "the charger connects without a password (clears an existing one). Absent: a new charger has "
            "none, an existing one keeps its own.",
        ),
    ] = msgspec.UNSET


# -- id tokens --------------------------------------------------------------------------------------------------


class IdTokenRead(msgspec.Struct, kw_only=True):
    """An id token (1.6 idTag, 2.0.1 idToken) and what the node answers when a charger presents it."""

    id_token: str
    type: str | None  # 2.0.1 IdTokenEnumType; null matches any type (and every 1.6 idTag)
    status: str
    expiry: datetime | None
    group: str | None
    created_at: datetime
    updated_at: datetime


class IdTokenPage(msgspec.Struct, kw_only=True):
    """One page of id tokens in id_token order; `next_cursor` null on the last."""

    items: list[IdTokenRead]
    next_cursor: str | None


class IdTokenCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Create an id token."""

    id_token: Annotated[str, Meta(description="1–36 printable characters (1.6 idTags are at most 20)")]
    type: Annotated[str | None, Meta(description="2.0.1 IdTokenEnumType, e.g. ISO14443; null: any")] = None
    status: Annotated[str, Meta(description="Accepted, Blocked, Expired, Invalid or ConcurrentTx")]
    expiry: Annotated[datetime | None, Meta(description="After this instant the token answers Expired")] = (
        None
    )
    group: Annotated[str | None, Meta(description="Parent / group id token")] = None


class IdTokenUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change an id token: only the fields present change (null clears expiry, group or type)."""

    status: str | msgspec.UnsetType = msgspec.UNSET
    expiry: datetime | msgspec.UnsetType | None = msgspec.UNSET
    group: str | msgspec.UnsetType | None = msgspec.UNSET
    type: str | msgspec.UnsetType | None = msgspec.UNSET


# -- transactions -----------------------------------------------------------------------------------------------


class SampleRead(msgspec.Struct, kw_only=True):
    """One meter reading: Energy.Active.Import.Register in Wh, Power.Active.Import in W, Current.Import in A
    (with its phase), SoC in Percent."""

    at: datetime
    measurand: str
    phase: str | None
    value: float
    unit: str
    context: str | None


class TransactionRead(msgspec.Struct, kw_only=True):
    """A charging transaction, the same shape for both protocol versions."""

    id: int
    charger_id: str
    protocol: str
    # The id the charger uses: the 1.6 transactionId the node issued, or the 2.0.1 one the charger chose.
    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    started_at: datetime
    stopped_at: datetime | None
    meter_start_wh: float | None
    meter_stop_wh: float | None
    energy_wh: float | None  # (stop, or latest reading) - start
    stop_reason: str | None
    last_meter_values: list[SampleRead]


class TransactionDetail(TransactionRead, kw_only=True):
    """A transaction with its last meter values (`last_meter_values`: every sample at its latest sample time),
    where the rest are paged (`samples_url`), and what it costs (null: no tariff applies)."""

    samples_url: str
    cost: CostRead | None


class SamplePage(msgspec.Struct, kw_only=True):
    """One page of a transaction's meter samples in time order; `next_cursor` null on the last."""

    items: list[SampleRead]
    next_cursor: str | None


class TransactionPage(msgspec.Struct, kw_only=True):
    """One page of transactions, newest first; `next_cursor` null on the last."""

    items: list[TransactionRead]
    next_cursor: str | None


# -- reservations -----------------------------------------------------------------------------------------------


class ReservationRead(msgspec.Struct, kw_only=True):
    """A reservation. `state`: pending (ReserveNow sent), active, refused (the charger's status in
    `charger_status`), failed (the error in `charger_status`: charger_timeout, charger_error, ...), ended
    (`end_reason`: expired, cancelled, used, removed). A 1.6 reservation has `connector_id` (null: any
    connector), a 2.0.1 one `evse_id` (null: any EVSE) and maybe `connector_type`."""

    id: int  # the reservationId the charger knows it by
    charger_id: str
    protocol: str
    evse_id: int | None
    connector_id: int | None
    connector_type: str | None
    id_token: str
    id_token_type: str | None
    group_id_token: str | None
    expires_at: datetime
    state: str
    charger_status: str | None
    end_reason: str | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


class CommandRead(msgspec.Struct, kw_only=True):
    """A command to a charger (its `id` is the command_id of the `X-Command-Id` header). `state`: queued
    (waiting for the charger to be online and accepted), sent (on the wire), answered (`reply` is the charger's
    answer), failed (`error_code`, `error_message`, and `ocpp_code` for a CALLERROR; `node_restarted` when the
    node stopped while it was on the wire), expired (its `expires_at` passed first: never sent), cancelled (an
    operator, or `superseded_by` a newer command of the same kind). `unique_id` is the OCPP message id it went
    out with."""

    id: str
    charger_id: str
    action: str
    payload: Any
    protocol: str
    queued: bool
    state: str
    reply: Any = None
    error_code: str | None = None
    error_message: str | None = None
    ocpp_code: str | None = None
    unique_id: str | None = None
    superseded_by: str | None = None
    created_at: datetime
    expires_at: datetime | None = None
    sent_at: datetime | None = None
    finished_at: datetime | None = None


class CommandPage(msgspec.Struct, kw_only=True):
    """One page of a charger's commands, newest first; `next_cursor` null on the last."""

    items: list[CommandRead]
    next_cursor: str | None


class LastDisconnect(msgspec.Struct, kw_only=True):
    at: datetime
    reason: str | None
    code: int | None


class UptimeDay(msgspec.Struct, kw_only=True):
    date: date
    ratio: float  # the share of the UTC day connected (today: of the day so far)


class ConnectivityRead(msgspec.Struct, kw_only=True):
    """A charger's connectivity. `state`: online (connected and spoke within heartbeat interval × grace),
    stale (connected but silent past that), offline; `since` when it got there (null: offline since before the
    history). `ping_rtt_ms`: the round trip of the last WebSocket ping the gateway sent and the charger
    answered, at `last_pong_at`; null when there is none (a charger that talks often is never pinged: any bytes
    from it prove the link)."""

    charger_id: str
    state: str
    since: datetime | None
    online: bool
    protocol: str | None
    remote_address: str | None
    connected_at: datetime | None
    last_message_at: datetime | None
    last_heartbeat_at: datetime | None
    connects_today: int
    flapping: bool
    flapping_since: datetime | None
    last_disconnect: LastDisconnect | None
    ping_rtt_ms: float | None
    last_pong_at: datetime | None
    uptime: list[UptimeDay]


class ConnectivityHistoryRead(msgspec.Struct, kw_only=True):
    """One state change: `state` at `at` because of `reason` (`code`: the close code when a connection ended,
    `duration_s` how long it had lasted). A replaced connection's end keeps the state online."""

    id: int
    at: datetime
    state: str
    reason: str
    code: int | None
    conn_id: int | None
    protocol: str | None
    remote_address: str | None
    duration_s: float | None


class ConnectivityHistoryPage(msgspec.Struct, kw_only=True):
    items: list[ConnectivityHistoryRead]
    next_cursor: str | None


class ProtocolCounts(msgspec.Struct, kw_only=True):
    online: int
    stale: int


class Rejections(msgspec.Struct, kw_only=True):
    """Refused WebSocket upgrades by reason: `busy` is admission control's HTTP 503 (over the node's rate of new
    connections, its cap on handshakes at once or its rate of new unknown charger ids, the last also counted
    alone in `unknown_ids_busy`); 401, 404 and 400 are the handshake table's and the request's;
    `auth_throttled` is HTTP 429, a charger id refused after too many failed authentications."""

    busy: int
    unknown_ids_busy: int = 0
    bad_credentials: int
    unknown_charger: int
    bad_request: int
    auth_throttled: int


class SiteConnectivity(msgspec.Struct, kw_only=True):
    """The chargers placed at one site, by state."""

    placed: int
    online: int
    stale: int
    offline: int
    flapping: int


class ConnectivitySummary(msgspec.Struct, kw_only=True):
    """The fleet now: registered chargers online, stale, offline; flapping; connected chargers told Pending to
    spread a boot storm (`boot_spread_pending`: connected, not yet Accepted); connects and disconnects in the
    last whole minute, the current minute so far and the last hour; WebSocket handshakes completed and upgrades
    refused (by reason) in the last whole minute and the current one."""

    at: datetime
    registered: int
    online: int
    stale: int
    offline: int
    flapping: int
    boot_spread_pending: int
    by_protocol: dict[str, ProtocolCounts]
    by_site: dict[str, SiteConnectivity]
    connects_last_minute: int
    disconnects_last_minute: int
    connects_this_minute: int
    disconnects_this_minute: int
    connects_last_hour: int
    disconnects_last_hour: int
    handshakes_last_minute: int
    handshakes_this_minute: int
    rejections_last_minute: Rejections
    rejections_this_minute: Rejections


class ReservationPage(msgspec.Struct, kw_only=True):
    """One page of reservations, newest first; `next_cursor` null on the last."""

    items: list[ReservationRead]
    next_cursor: str | None


class ReservationCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Reserve a connector (1.6) or an EVSE (2.0.1) of a charger for an id token until `expires_at`."""

    charger_id: Annotated[str, Meta(description="The charge point id")]
    connector_id: (
        Annotated[int, Meta(ge=0, description="1.6 chargers: the connector; null or 0 for any connector")]
        | None
    ) = None
    evse_id: Annotated[int, Meta(ge=1, description="2.0.1 chargers: the EVSE; null for any EVSE")] | None = (
        None
    )
    connector_type: Annotated[
        str | None, Meta(description="2.0.1 chargers: a ConnectorEnumType the EVSE must have, e.g. cType2")
    ] = None
    id_token: Annotated[str, Meta(description="The token that may use it (1.6: at most 20 characters)")]
    id_token_type: Annotated[
        str | None,
        Meta(description="2.0.1: the token's IdTokenEnumType; null takes the id-token table's type for it"),
    ] = None
    group_id_token: Annotated[
        str | None,
        Meta(
            description="Tokens of this group may use it too (1.6 parentIdTag); null takes the token's group"
        ),
    ] = None
    expires_at: Annotated[datetime, Meta(tz=True, description="When it ends; in the future, with a zone")]
