"""/api/v1/chargers/{charger_id}/connectors: what a charger's EVSEs and connectors are (standard, format, power
type, ratings, eMI3 EVSE ids), which OCPP does not say and OCPI publishes (ampgate.roaming.equipment).

`PUT` replaces the description (admin); `GET` reads it back with what OCPI publishes for the charger now (its
EVSE uids and statuses, and the defaults standing in for what was not described). A 1.6 charger has no EVSE
level: each connector is an EVSE of its own, so its EVSEs hold one connector each, numbered as the EVSE."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import ChargerReads, EquipmentReads, PublishedEvses
from ampgate.api.paging import CHARGER_ERRORS, require_charger
from ampgate.api.schemas import ErrorBody
from ampgate.roaming.equipment import ConnectorSpec, Equipment, EvseSpec
from ampgate.roaming.types import ConnectorFormat, ConnectorType, Evse, PowerType


class ConnectorBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    connector_id: Annotated[
        int, Meta(description="OCPP connector id (2.0.1: per EVSE; 1.6: the EVSE's number)")
    ]
    standard: Annotated[ConnectorType, Meta(description="OCPI ConnectorType, e.g. IEC_62196_T2")]
    format: ConnectorFormat
    power_type: PowerType
    max_voltage: Annotated[int, Meta(description="V (line to neutral for AC_3_PHASE)")]
    max_amperage: Annotated[int, Meta(description="A")]
    max_electric_power: Annotated[int | None, Meta(description="W, when lower than voltage × current")] = None


class EvseBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    evse_id: Annotated[int, Meta(description="OCPP EVSE id (1.6: the connector id)")]
    emi3_id: Annotated[
        str | None, Meta(description="eMI3 EVSE id, e.g. NL*AMP*E12345*1 (written upper-case)")
    ] = None
    connectors: list[ConnectorBody]


class ConnectorsPut(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every EVSE of the charger (an empty list removes the description: defaults apply again)."""

    evses: list[EvseBody]


class ConnectorRead(msgspec.Struct, kw_only=True):
    connector_id: int
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None


class EvseRead(msgspec.Struct, kw_only=True):
    evse_id: int
    emi3_id: str | None
    connectors: list[ConnectorRead]


class PublishedConnector(msgspec.Struct, kw_only=True):
    id: str
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None


class PublishedEvse(msgspec.Struct, kw_only=True):
    """An EVSE as OCPI publishes it: its Location (the site), uid, eMI3 id, status and connectors."""

    location_id: str
    uid: str
    evse_id: str | None
    status: str
    connectors: list[PublishedConnector]
    last_updated: datetime


class ConnectorsRead(msgspec.Struct, kw_only=True):
    """The description (`evses`, empty when none; `updated_at` null then) and what OCPI publishes now
    (`published`; null without OCPI or when the charger is placed at no site)."""

    evses: list[EvseRead]
    updated_at: datetime | None
    published: list[PublishedEvse] | None


def _description(found: Equipment | None) -> tuple[list[EvseRead], datetime | None]:
    if found is None:
        return [], None
    return [
        EvseRead(
            evse_id=e.evse_id,
            emi3_id=e.emi3_id,
            connectors=[
                ConnectorRead(
                    connector_id=c.connector_id,
                    standard=c.standard.value,
                    format=c.format.value,
                    power_type=c.power_type.value,
                    max_voltage=c.max_voltage,
                    max_amperage=c.max_amperage,
                    max_electric_power=c.max_electric_power,
                )
                for c in e.connectors
            ],
        )
        for e in found.evses
    ], found.updated_at


def _published(found: list[tuple[str, Evse]] | None) -> list[PublishedEvse] | None:
    if found is None:
        return None
    return [
        PublishedEvse(
            location_id=location_id,
            uid=e.uid,
            evse_id=e.evse_id,
            status=e.status.value,
            connectors=[
                PublishedConnector(
                    id=c.id,
                    standard=c.standard.value,
                    format=c.format.value,
                    power_type=c.power_type.value,
                    max_voltage=c.max_voltage,
                    max_amperage=c.max_amperage,
                    max_electric_power=c.max_electric_power,
                )
                for c in e.connectors
            ],
            last_updated=e.last_updated,
        )
        for location_id, e in found
    ]


ChargerId = Annotated[str, Parameter(description="The charger's id")]


class ChargerConnectorsController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/connectors"
    tags = ("chargers",)

    @put(
        "/",
        operation_id="put_charger_connectors",
        guards=[requires_admin],
        responses={
            **CHARGER_ERRORS,
            409: ResponseSpec(ErrorBody, description="`emi3_id_taken`: another charger's EVSE has that id"),
        },
        summary="Describe a charger's EVSEs and connectors",
        description="Role: admin. Replaces the description; 422 naming the field (an eMI3 id not in eMI3 form, a "
        "1.6 EVSE with more than one connector, a duplicate id, a rating out of range).",
    )
    async def put_connectors(
        self,
        equipment: NamedDependency[EquipmentReads],
        charger_id: ChargerId,
        data: JSONBody[ConnectorsPut],
    ) -> ConnectorsRead:
        """Role: admin. 200 with the description; 404 (field id); 409 `emi3_id_taken`; 422 naming the field."""
        specs = [
            EvseSpec(
                evse_id=e.evse_id,
                emi3_id=e.emi3_id,
                connectors=tuple(
                    ConnectorSpec(
                        connector_id=c.connector_id,
                        standard=c.standard,
                        format=c.format,
                        power_type=c.power_type,
                        max_voltage=c.max_voltage,
                        max_amperage=c.max_amperage,
                        max_electric_power=c.max_electric_power,
                    )
                    for c in e.connectors
                ),
            )
            for e in data.evses
        ]
        stored = await equipment.describe(charger_id, specs)
        evses, updated = _description(stored)
        return ConnectorsRead(evses=evses, updated_at=updated, published=_published(None))

    @get(
        "/",
        operation_id="get_charger_connectors",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="A charger's EVSEs and connectors",
        description="Role: viewer. The description, and what OCPI publishes for the charger now.",
    )
    async def get_connectors(
        self,
        equipment: NamedDependency[EquipmentReads],
        published: NamedDependency[PublishedEvses],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
    ) -> ConnectorsRead:
        """Role: viewer. 404 (field id)."""
        require_charger(chargers, charger_id)
        evses, updated = _description(equipment.get(charger_id))
        return ConnectorsRead(
            evses=evses, updated_at=updated, published=_published(published.published_evses(charger_id))
        )
