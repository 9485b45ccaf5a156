"""/api/v1/chargers/{charger_id}/cost-display: which cost display a charger gets (ampgate.costdisplay).

`ocpp201` (OCPP 2.0.1 tariff and cost), `california` (the OCPP 1.6 California Pricing DataTransfer messages) or
`none`. By default what the charger's device model says (2.0.1 TariffCostCtrlr.Enabled, 1.6
CustomDisplayCostAndPrice); `PUT` overrides it (admin: per-charger configuration is managing chargers), `PUT`
with `mode` null or absent clears the override; `GET` reads it (viewer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import CostDisplaySettings
from ampgate.api.paging import CHARGER_ERRORS
from ampgate.costdisplay import CostDisplayView, Mode

ChargerId = Annotated[str, Parameter(description="The charger's id")]


class CostDisplayPut(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    mode: Annotated[
        Mode | None,
        Meta(
            description="ocpp201 (2.0.1 chargers), california (1.6 chargers) or none; null: the device model decides"
        ),
    ] = None


class CostDisplayRead(msgspec.Struct, kw_only=True):
    """The mode in force and where it comes from (`source`: override or device_model), the override and when it
    was set (null: none), what the device model says, and the protocol the charger last spoke (null: never
    connected)."""

    charger_id: str
    mode: Mode
    source: str
    override: Mode | None
    updated_at: datetime | None
    device_model_mode: Mode
    protocol: str | None


def _read(v: CostDisplayView) -> CostDisplayRead:
    return CostDisplayRead(
        charger_id=v.charger_id,
        mode=v.mode,
        source=v.source,
        override=v.override,
        updated_at=v.updated_at,
        device_model_mode=v.device_model_mode,
        protocol=v.protocol,
    )


class CostDisplayController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/cost-display"
    tags = ("chargers",)

    @put(
        "/",
        operation_id="put_charger_cost_display",
        guards=[requires_admin],
        responses=CHARGER_ERRORS,
        summary="Set which cost display a charger gets",
        description="Role: admin. Overrides what the device model says; `mode` null or absent clears the "
        "override. 422 (field mode) for an unknown mode, and `unsupported_mode` for ocpp201 on a 1.6 charger or "
        "california on a 2.0.1 one.",
    )
    async def put_cost_display(
        self,
        cost_display: NamedDependency[CostDisplaySettings],
        charger_id: ChargerId,
        data: JSONBody[CostDisplayPut],
    ) -> CostDisplayRead:
        """Role: admin. 200 with the cost display; 404 (field id); 422 (field mode)."""
        return _read(await cost_display.set(charger_id, data.mode))

    @get(
        "/",
        operation_id="get_charger_cost_display",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="Which cost display a charger gets",
        description="Role: viewer. The mode in force, the override and what the device model says.",
    )
    async def get_cost_display(
        self, cost_display: NamedDependency[CostDisplaySettings], charger_id: ChargerId
    ) -> CostDisplayRead:
        """Role: viewer. 404 (field id)."""
        return _read(cost_display.view(charger_id))
