"""/api/v1/chargers/{charger_id}/security-profile-upgrades: raise a charger's OCPP security profile in one call
(ampgate.profileupgrade: configure the new profile on the charger, reset it, accept it on the new profile only
once it connects with it) and follow the upgrade. Starting and cancelling are admin (security settings); reading
is for viewers. Progress is also the event `charger.security_profile_upgrade`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import ChargerReads, ProfileUpgradeService
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, int_cursor, require_charger
from ampgate.api.schemas import ErrorBody
from ampgate.profileupgrade.machine import AWAITING_RECONNECT, steps
from ampgate.profileupgrade.repository import UpgradeRow
from ampgate.profileupgrade.service import CSMS_URL_MAX, DEFAULT_RECONNECT_S, RECONNECT_MAX_S


class UpgradeCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Raise a charger's security profile."""

    security_profile: Annotated[
        int, Meta(ge=2, le=3, description="The new profile: 2 (TLS + Basic auth) or 3 (client certificate)")
    ]
    csms_url: (
        Annotated[
            str,
            Meta(
                max_length=CSMS_URL_MAX,
                description="OCPP 2.0.1 chargers: the wss:// URL the charger is to connect to, without its id "
                "(ocppCsmsUrl of the network connection profile written to it). Ignored for 1.6, whose "
                "chargers keep their URL and change only the SecurityProfile key.",
            ),
        ]
        | None
    ) = None
    configuration_slot: Annotated[
        int, Meta(ge=1, le=16, description="2.0.1: the network connection profile slot to write")
    ] = 1
    reconnect_s: Annotated[
        float,
        Meta(
            ge=1,
            le=RECONNECT_MAX_S,
            description="How long the charger has, once it took the commands, to connect with the new profile "
            "before the upgrade fails (timed_out, or fell_back when it came back on a lower one)",
        ),
    ] = DEFAULT_RECONNECT_S


class UpgradeRead(msgspec.Struct, kw_only=True):
    """An upgrade and where it stands."""

    id: int
    charger_id: str
    protocol: str
    from_profile: int
    to_profile: int
    # configuring, awaiting_reconnect, completed, failed, cancelled
    state: str
    # The command under way while configuring (ChangeConfiguration, Reset; 2.0.1: GetVariables,
    # SetNetworkProfile, SetVariables, Reset), else null.
    step: str | None
    # Why it failed: refused, command_failed, timed_out, fell_back, node_restarted; null otherwise.
    reason: str | None
    detail: str | None
    # Reconnects with a lower profile while it waited (the charger fell back to an older connection).
    fallbacks: int
    csms_url: str | None
    configuration_slot: int
    # Until when it waits for the charger on the new profile (while awaiting_reconnect).
    deadline_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UpgradePage(msgspec.Struct, kw_only=True):
    """A charger's upgrades, newest first; `next_cursor` null on the last page."""

    items: list[UpgradeRead]
    next_cursor: str | None


def upgrade_read(row: UpgradeRow) -> UpgradeRead:
    u = row.upgrade
    waiting = u.state == AWAITING_RECONNECT
    return UpgradeRead(
        id=u.id,
        charger_id=u.charger_id,
        protocol=u.protocol,
        from_profile=u.from_profile,
        to_profile=u.target.security_profile,
        state=u.state,
        step=steps(u.protocol)[u.step] if u.state == "configuring" else None,
        reason=u.reason,
        detail=u.detail,
        fallbacks=u.fallbacks,
        csms_url=u.target.csms_url,
        configuration_slot=u.target.configuration_slot,
        deadline_at=datetime.fromtimestamp(u.deadline, UTC) if waiting else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_NOT_FOUND = {
    404: ResponseSpec(ErrorBody, description="Unknown charger (`field`: id) or upgrade (upgrade_id)")
}
Charger = Annotated[str, Parameter(description="The charge point id")]
UpgradeId = Annotated[int, Parameter(description="The upgrade's id")]


class ProfileUpgradeController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/security-profile-upgrades"
    tags = ("security",)

    @post(
        "/",
        operation_id="start_security_profile_upgrade",
        guards=[requires_admin],
        status_code=201,
        responses={
            **COMMON_ERRORS,
            **_NOT_FOUND,
            409: ResponseSpec(
                ErrorBody,
                description="upgrade_in_progress, profile_not_higher, tls_not_configured, "
                "client_ca_not_configured, charger_offline",
            ),
        },
        summary="Raise a charger's security profile (role: admin)",
        description="Role: admin. Configures the new profile on the charger (1.6: ChangeConfiguration "
        "SecurityProfile, then Reset when it answers RebootRequired; 2.0.1: SetNetworkProfile into a slot, that "
        "slot first in NetworkConfigurationPriority, Reset OnIdle) and answers 201 at once; the upgrade then "
        "waits for the charger to connect with the new profile, and only then raises its lowest allowed "
        "profile. Follow it here or by the charger.security_profile_upgrade events.",
    )
    async def start_upgrade(
        self,
        profile_upgrades: NamedDependency[ProfileUpgradeService],
        charger_id: Charger,
        data: JSONBody[UpgradeCreate],
    ) -> Response[UpgradeRead]:
        """201 with the upgrade (state configuring). 404 (field charger_id), 409 with the code saying why
        not, 422 naming the field."""
        row = await profile_upgrades.start(
            charger_id,
            data.security_profile,
            csms_url=data.csms_url,
            configuration_slot=data.configuration_slot,
            reconnect_s=data.reconnect_s,
        )
        return Response(
            upgrade_read(row),
            status_code=201,
            headers={"Location": f"/api/v1/chargers/{charger_id}/security-profile-upgrades/{row.upgrade.id}"},
        )

    @get(
        "/",
        operation_id="list_security_profile_upgrades",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="A charger's security-profile upgrades (role: viewer)",
        description="Role: viewer. Newest first.",
    )
    async def list_upgrades(
        self,
        profile_upgrades: NamedDependency[ProfileUpgradeService],
        chargers: NamedDependency[ChargerReads],
        charger_id: Charger,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> UpgradePage:
        """404 (field id) for an unknown charger, 422 naming limit or cursor."""
        before = int_cursor(cursor)
        require_charger(chargers, charger_id)
        rows = profile_upgrades.page(charger_id, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return UpgradePage(
            items=[upgrade_read(r) for r in rows], next_cursor=str(rows[-1].upgrade.id) if more else None
        )

    @get(
        "/{upgrade_id:int}",
        operation_id="get_security_profile_upgrade",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="One security-profile upgrade (role: viewer)",
        description="Role: viewer.",
    )
    async def get_upgrade(
        self,
        profile_upgrades: NamedDependency[ProfileUpgradeService],
        charger_id: Charger,
        upgrade_id: UpgradeId,
    ) -> UpgradeRead:
        """404 (field upgrade_id) when the charger has no such upgrade."""
        return upgrade_read(profile_upgrades.get(charger_id, upgrade_id))

    @post(
        "/{upgrade_id:int}/cancel",
        operation_id="cancel_security_profile_upgrade",
        guards=[requires_admin],
        status_code=200,
        responses={**COMMON_ERRORS, **_NOT_FOUND},
        summary="Cancel a security-profile upgrade (role: admin)",
        description="Role: admin. Idempotent: an upgrade already final is returned as it is. What the charger "
        "took stays taken (its fallback keeps the old profile reachable); its lowest allowed profile is not "
        "raised.",
    )
    async def cancel_upgrade(
        self,
        profile_upgrades: NamedDependency[ProfileUpgradeService],
        charger_id: Charger,
        upgrade_id: UpgradeId,
    ) -> UpgradeRead:
        """200 with the upgrade. 404 (field upgrade_id)."""
        return upgrade_read(await profile_upgrades.cancel(charger_id, upgrade_id))
