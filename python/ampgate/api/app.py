"""`create_app(services)`: the whole operator API assembled in one place."""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin

from ampgate.api.auth import EXCLUDE_FROM_AUTH, BearerTokenMiddleware
from ampgate.api.availability import AvailabilityController
from ampgate.api.campaigns import CampaignController
from ampgate.api.cdrs import CdrController, SiteUsageController
from ampgate.api.certificates import ChargerCertificateController
from ampgate.api.charger_connectors import ChargerConnectorsController
from ampgate.api.chargers import ChargerController
from ampgate.api.command_records import ChargerCommandController, CommandRecordController
from ampgate.api.commands import CommandController, LocalListController
from ampgate.api.connectivity import ChargerConnectivityController, ConnectivityController, IncidentController
from ampgate.api.cost_display import CostDisplayController
from ampgate.api.customer_information import CustomerInformationController
from ampgate.api.demand_response import DemandResponseController
from ampgate.api.deps import ApiServices
from ampgate.api.device_model import DeviceModelController
from ampgate.api.display_messages import DisplayMessageController
from ampgate.api.errors import EXCEPTION_HANDLERS
from ampgate.api.events import EventController
from ampgate.api.firmware_images import FirmwareImageController
from ampgate.api.firmware_publications import FirmwarePublicationController
from ampgate.api.health import HealthController
from ampgate.api.id_tokens import IdTokenController
from ampgate.api.idempotency import IdempotencyMiddleware, IdempotencyStore
from ampgate.api.ids import ids_in_range
from ampgate.api.load import SiteLoadController
from ampgate.api.logs import ChargerLogController
from ampgate.api.maintenance_windows import MaintenanceWindowController
from ampgate.api.metrics import MetricsExposition, metrics_route
from ampgate.api.monitoring import MonitoringController
from ampgate.api.ocpi import OcpiPartyController
from ampgate.api.ocpi_deliveries import CdrDeliveryController
from ampgate.api.openadr import OpenAdrController
from ampgate.api.placements import PlacementController
from ampgate.api.profile_upgrades import ProfileUpgradeController
from ampgate.api.reservations import ReservationController
from ampgate.api.responses import NumberResponse
from ampgate.api.security_events import ChargerSecurityEventController, SecurityEventController
from ampgate.api.sites import CapacityNodeController, SiteController
from ampgate.api.smart_charging import SmartChargingController
from ampgate.api.tags import ChargerTagController
from ampgate.api.tariffs import (
    ChargerTariffController,
    DefaultTariffController,
    GroupTariffController,
    SiteTariffController,
    TariffController,
)
from ampgate.api.tokens import ApiTokenController
from ampgate.api.transactions import ChargerTransactionController, TransactionController

API_VERSION = "0.1.0"
SCHEMA_PATH = "/api/v1/schema"
# The schema and its viewer are public: they describe the API, they expose no data.
_PUBLIC_PATHS = [f"^{SCHEMA_PATH}(/|$)"]
# Largest request body accepted. Today's bodies are a few hundred bytes; 1 MiB leaves room for bulk
# operations while refusing a runaway upload before it reaches a handler.
MAX_BODY_BYTES = 1 << 20


def _provider(value: object) -> Provide:
    return Provide(lambda: value, sync_to_thread=False, use_cache=True)


def create_app(services: ApiServices, *, metrics: MetricsExposition | None = None) -> Litestar:
    """The Litestar app serving the operator API over `services`: each field is a dependency of the same name
    (`chargers`, `commander`, ...), and the API tokens are also `app.state.api_tokens` for the authentication
    middleware. `metrics` is served at /metrics (no token: it binds where the operator API binds). Logging is
    left to the node (`logging_config=None`): the app does not reconfigure it."""
    handlers: list[Any] = [] if metrics is None else [metrics_route(metrics)]
    return Litestar(
        route_handlers=[
            HealthController,
            ChargerController,
            CommandController,
            CommandRecordController,
            ChargerConnectivityController,
            ConnectivityController,
            IncidentController,
            EventController,
            ChargerCommandController,
            LocalListController,
            IdTokenController,
            TransactionController,
            ChargerTransactionController,
            SecurityEventController,
            ChargerSecurityEventController,
            ChargerCertificateController,
            ProfileUpgradeController,
            DeviceModelController,
            SmartChargingController,
            MonitoringController,
            ChargerLogController,
            ReservationController,
            DisplayMessageController,
            CustomerInformationController,
            FirmwarePublicationController,
            SiteController,
            CapacityNodeController,
            PlacementController,
            OpenAdrController,
            AvailabilityController,
            SiteLoadController,
            DemandResponseController,
            FirmwareImageController,
            MaintenanceWindowController,
            ChargerTagController,
            CampaignController,
            ChargerConnectorsController,
            CostDisplayController,
            OcpiPartyController,
            CdrDeliveryController,
            TariffController,
            ChargerTariffController,
            SiteTariffController,
            GroupTariffController,
            DefaultTariffController,
            CdrController,
            SiteUsageController,
            ApiTokenController,
            *handlers,
        ],
        dependencies={f.name: _provider(getattr(services, f.name)) for f in dataclasses.fields(services)},
        middleware=[
            DefineMiddleware(
                BearerTokenMiddleware, exclude=_PUBLIC_PATHS, exclude_from_auth_key=EXCLUDE_FROM_AUTH
            ),
            # Inside authentication: only an authenticated request's outcome is remembered.
            DefineMiddleware(IdempotencyMiddleware, store=IdempotencyStore(), max_body=MAX_BODY_BYTES),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=ids_in_range,
        # Money (Decimal) as JSON numbers.
        response_class=NumberResponse,
        openapi_config=OpenAPIConfig(
            title="ampgate",
            version=API_VERSION,
            description="Central system and gateway for EV chargers (OCPP 1.6J and 2.0.1).",
            path=SCHEMA_PATH,
            render_plugins=[JsonRenderPlugin(), SwaggerRenderPlugin()],
        ),
        state=State({"api_tokens": services.api_tokens}),
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,
        debug=False,
    )
