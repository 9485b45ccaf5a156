"""/api/v1/chargers: list (keyset pages, optionally filtered by firmware version and status), read one,
register (or replace a password)."""

from __future__ import annotations

from typing import Annotated, get_args

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter, QueryParameter

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import (
    ChargerReads,
    ChargerRegistrar,
    ChargerTags,
    ConnectivityReads,
    ConnectorReads,
    PresenceLookup,
)
from ampgate.api.paging import (
    COMMON_ERRORS,
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    decode_cursor,
    encode_cursor,
    instant,
)
from ampgate.api.schemas import (
    ChargerCreate,
    ChargerPage,
    ChargerRead,
    ChargerUpdate,
    ConnectorRead,
    ErrorBody,
)
from ampgate.connectivity.rules import STATES as CONNECTIVITY_STATES
from ampgate.errors import NotFoundError, ValidationError
from ampgate.ocpp.v201 import FirmwareStatusEnumType
from ampgate.store import ChargerRow, normalize_charger_id, validate_charger_id

_ERRORS = COMMON_ERRORS
# Rows read from the store per step when a connectivity filter pages through the table.
SCAN_BATCH = 1000
# Every firmware status a charger can report: 2.0.1's FirmwareStatusEnumType, which is also the enum of 1.6's
# SignedFirmwareStatusNotification and holds every value of 1.6's FirmwareStatusNotification.
FIRMWARE_STATUSES: tuple[str, ...] = get_args(FirmwareStatusEnumType)
Firmware = Annotated[
    str | None, Parameter(description="Only chargers whose last boot reported this firmware version")
]
FirmwareStatus = Annotated[
    str | None,
    Parameter(description="Only chargers whose last firmware status is this one, e.g. Installed"),
]


def validate_firmware_status(status: str | None) -> str | None:
    """Return `status` if it is None or one of FIRMWARE_STATUSES, else raise
    ValidationError(field="firmware_status"): a filter on any other value is a typo, not a question whose
    answer is "no charger"."""
    if status is not None and status not in FIRMWARE_STATUSES:
        raise ValidationError(
            f"firmware_status must be one of {', '.join(FIRMWARE_STATUSES)}", field="firmware_status"
        )
    return status


def charger_read(presence_lookup: PresenceLookup, row: ChargerRow) -> ChargerRead:
    """The API's view of a charger: the stored row merged with its live presence (none: offline)."""
    presence = presence_lookup.get(row.id)
    online = presence is not None and presence.online
    return ChargerRead(
        id=row.id,
        online=online,
        protocol=presence.protocol if presence is not None and online else row.protocol,
        vendor=row.vendor,
        model=row.model,
        serial=row.serial,
        firmware=row.firmware,
        firmware_status=row.firmware_status,
        firmware_request_id=row.firmware_request_id,
        firmware_status_at=row.firmware_status_at,
        connected_since=presence.connected_since if presence is not None else None,
        last_seen=presence.last_seen if presence is not None else None,
        registered_at=row.registered_at,
        last_boot_at=row.last_boot_at,
        security_profile=row.security_profile,
        connection_security_profile=presence.security_profile if presence is not None and online else None,
    )


class ChargerController(Controller):
    path = "/api/v1/chargers"
    tags = ("chargers",)

    @get(
        "/",
        operation_id="list_chargers",
        guards=[requires_viewer],
        responses=_ERRORS,
        summary="List chargers (role: viewer)",
    )
    async def list_chargers(
        self,
        chargers: NamedDependency[ChargerReads],
        presence: NamedDependency[PresenceLookup],
        connectivity: NamedDependency[ConnectivityReads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        firmware: Firmware = None,
        firmware_status: FirmwareStatus = None,
        online: Annotated[bool | None, Parameter(description="Only chargers connected (true) or not")] = None,
        state_filter: Annotated[
            str | None, QueryParameter(name="state", description="Only chargers online, stale or offline")
        ] = None,
        offline_since: Annotated[
            str | None, Parameter(description="Only chargers offline since this time or earlier")
        ] = None,
        flapping: Annotated[
            bool | None, Parameter(description="Only chargers flapping (true) or not")
        ] = None,
    ) -> ChargerPage:
        """Chargers in id order, one page at a time, only those with `firmware` and `firmware_status` when
        given and passing the connectivity filters (`online`, `state`, `offline_since`, `flapping`; pass the
        same filters with each page's cursor). Raises 422 naming `limit`, `cursor`, `firmware_status` (not a
        status OCPP defines), `state` or `offline_since` when invalid. The connectivity filters read the live
        presence and scan the table from the cursor until the page is full."""
        after = None if cursor is None else decode_cursor(cursor, validate_charger_id)
        validate_firmware_status(firmware_status)
        state = state_filter
        if state is not None and state not in CONNECTIVITY_STATES:
            raise ValidationError(f"state must be one of {', '.join(CONNECTIVITY_STATES)}", field="state")
        since = instant(offline_since, "offline_since")
        filtered = online is not None or state is not None or since is not None or flapping is not None
        # One row more than asked tells whether another page exists, so the last page says null, not a
        # cursor to an empty page.
        if not filtered:
            rows = chargers.page(limit + 1, after, firmware=firmware, firmware_status=firmware_status)
        else:
            rows = []
            while len(rows) <= limit:
                batch = chargers.page(SCAN_BATCH, after, firmware=firmware, firmware_status=firmware_status)
                rows += [
                    r
                    for r in batch
                    if connectivity.matches(
                        r.id, online=online, state=state, offline_since=since, flapping=flapping
                    )
                ]
                if len(batch) < SCAN_BATCH:
                    break
                after = batch[-1].id
        more = len(rows) > limit
        rows = rows[:limit]
        return ChargerPage(
            items=[charger_read(presence, r) for r in rows],
            next_cursor=encode_cursor(rows[-1].id) if more else None,
        )

    @get(
        "/{id:str}",
        operation_id="get_charger",
        guards=[requires_viewer],
        responses={**_ERRORS, 404: ResponseSpec(ErrorBody, description="No such charger")},
        summary="One charger (role: viewer)",
    )
    async def get_charger(
        self,
        chargers: NamedDependency[ChargerReads],
        presence: NamedDependency[PresenceLookup],
        connectors: NamedDependency[ConnectorReads],
        fleet: NamedDependency[ChargerTags],
        # Named `id` (shadowing the builtin here only) so the path, the docs and the error's `field` agree.
        id: Annotated[str, Parameter(description="The charge point id")],
    ) -> ChargerRead:
        """The charger `id` with its `tags`, and `connectors` (each one's last status) once it reported any.
        Raises 404 not_found (field "id") when the store does not know it."""
        row = chargers.get(id)
        if row is None:
            raise NotFoundError(f"charger '{id}' is not registered", field="id")
        read = charger_read(presence, row)
        read.tags = list(fleet.tags(id))
        statuses = connectors.statuses(id)
        if statuses:
            read.connectors = [
                ConnectorRead(
                    evse_id=c.evse_id,
                    connector_id=c.connector_id,
                    status=c.status,
                    error_code=c.error_code,
                    updated_at=c.updated_at,
                )
                for c in statuses
            ]
        return read

    @patch(
        "/{id:str}",
        operation_id="update_charger",
        guards=[requires_admin],
        responses={**_ERRORS, 404: ResponseSpec(ErrorBody, description="No such charger")},
        summary="Change a charger's security profile (role: admin)",
    )
    async def update_charger(
        self,
        registration: NamedDependency[ChargerRegistrar],
        presence: NamedDependency[PresenceLookup],
        id: Annotated[str, Parameter(description="The charge point id")],
        data: JSONBody[ChargerUpdate],
    ) -> ChargerRead:
        """Set the charger's `security_profile`, the lowest it may connect with: every gateway worker refuses
        a lower one (403) when this returns, and a live connection below it is closed so the charger
        reconnects with it. An admin's act: it can lock a charger out. Raises 404 not_found (field "id") and
        422 (field "security_profile")."""
        row = None
        if not isinstance(data.security_profile, msgspec.UnsetType):
            row = await registration.set_security_profile(id, data.security_profile)
        if row is None:
            raise ValidationError("nothing to change: give security_profile", field="security_profile")
        return charger_read(presence, row)

    @post(
        "/",
        operation_id="register_charger",
        guards=[requires_admin],
        status_code=201,
        responses={
            **_ERRORS,
            200: ResponseSpec(ChargerRead, description="The charger existed: its password was replaced"),
        },
        summary="Register a charger (role: admin)",
    )
    async def register_charger(
        self,
        registration: NamedDependency[ChargerRegistrar],
        presence: NamedDependency[PresenceLookup],
        data: JSONBody[ChargerCreate],
    ) -> Response[ChargerRead]:
        """Register charger `id` with `password` (201), or replace the password of a known one (200). Every
        gateway worker knows the new credentials when this returns, and a live connection of the charger that
        authenticated with other credentials is closed (it reconnects with the new ones). Without a `password`
        key a known charger keeps its password; `"password": null` clears it. Raises 422 naming `id` or
        `password`; the id is
        stored in Unicode NFC, and one with invisible, direction-changing or look-alike characters is refused
        (docs/api.md "Charger ids")."""
        keep = data.password is msgspec.UNSET
        password = None if isinstance(data.password, msgspec.UnsetType) else data.password
        # NFC here (ChargerRegistration does it too): the stand-in registrar of the API's tests is the store's.
        charger_id = normalize_charger_id(data.id)
        row, created = await registration.register(charger_id, password, keep_password=keep)
        return Response(charger_read(presence, row), status_code=201 if created else 200)
