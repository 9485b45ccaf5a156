"""/api/v1/chargers/{id}/device-model: what the node knows of a charger's components, variables and their
attributes (2.0.1) or configuration keys (1.6, `component` null), and a refresh that asks the charger for all of
it and waits until the report is complete."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import ChargerReads, DeviceModelService
from ampgate.api.paging import (
    CHARGER_ERRORS,
    COMMON_ERRORS,
    DEFAULT_LIMIT,
    REFRESH_ERRORS,
    Cursor,
    Limit,
    decode_cursor,
    encode_cursor,
    require_charger,
)
from ampgate.api.schemas import ErrorBody
from ampgate.devicemodel import Capabilities
from ampgate.devicemodel.repository import VariableRow, sort_key
from ampgate.errors import NotFoundError


class VariablePage(msgspec.Struct, kw_only=True):
    items: list[VariableRow]
    next_cursor: str | None


class RefreshResult(msgspec.Struct, kw_only=True):
    """`request_id` is the GetBaseReport requestId (null for a 1.6 charger, asked with GetConfiguration)."""

    request_id: int | None
    status: str


def _after(cursor: str | None) -> tuple[Any, ...] | None:
    if cursor is None:
        return None

    def check(text: str) -> None:
        key = json.loads(text)
        if not (isinstance(key, list) and len(key) == 7):
            raise ValueError("not a device-model cursor")

    return tuple(json.loads(decode_cursor(cursor, check)))


class DeviceModelController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/device-model"
    tags = ("device model",)

    @get(
        "/",
        operation_id="get_device_model",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="A charger's device model as known (role: viewer)",
    )
    async def get_device_model(
        self,
        device_model: NamedDependency[DeviceModelService],
        chargers: NamedDependency[ChargerReads],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        component: Annotated[
            str | None,
            Parameter(description="Only this component's variables ('' for 1.6 configuration keys)"),
        ] = None,
        variable: Annotated[str | None, Parameter(description="Only variables of this name")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> VariablePage:
        """The charger's variables in (component, EVSE, connector, variable, attribute type) order. Role:
        viewer. Raises 404 (field id) for an unknown charger, 422 naming limit or cursor."""
        require_charger(chargers, charger_id)
        rows = device_model.page(
            charger_id, limit + 1, component=component, variable=variable, after=_after(cursor)
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return VariablePage(
            items=rows,
            next_cursor=encode_cursor(json.dumps(sort_key(rows[-1]))) if more else None,
        )

    @get(
        "/capabilities",
        operation_id="get_capabilities",
        guards=[requires_viewer],
        responses={
            **COMMON_ERRORS,
            404: ResponseSpec(ErrorBody, description="No such charger, or never connected"),
        },
        summary="What the device model says the charger can do (role: viewer)",
    )
    async def get_capabilities(
        self,
        device_model: NamedDependency[DeviceModelService],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
    ) -> Capabilities:
        """Security profile, signed firmware support, supported measurands, per-message limits by action, as
        known from the device model (refresh it first for a full picture). Role: viewer."""
        found = device_model.capabilities_of(charger_id)
        if found is None:
            raise NotFoundError(f"charger '{charger_id}' is unknown or never connected", field="id")
        return found

    @post(
        "/refresh",
        operation_id="refresh_device_model",
        guards=[requires_operator],
        status_code=200,
        responses=REFRESH_ERRORS,
        summary="Ask the charger for its whole device model and wait for it (role: operator)",
    )
    async def refresh_device_model(
        self,
        device_model: NamedDependency[DeviceModelService],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
    ) -> RefreshResult:
        """2.0.1: GetBaseReport FullInventory, answered when every NotifyReport part has arrived; 1.6:
        GetConfiguration of every key. Role: operator. Raises 404, 409 (`charger_offline`,
        `charger_not_accepted`, `report_refused`), 502, 504."""
        result = await device_model.refresh(charger_id)
        return RefreshResult(request_id=result["request_id"], status=result["status"])
