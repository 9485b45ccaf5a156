"""API fixtures: the Litestar app over stand-in services (real repositories on a Store on a temp file, a presence
dict, a health report), driven in-process by httpx on our own trio loop, as Hypercorn will serve it.

Litestar's TestClient / AsyncTestClient run the app on a separate event loop thread (an anyio portal); the
store's writer delivers commits to the trio loop that started it, so the app must run on ours.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from ampgate.api import ApiServices, create_app
from ampgate.availability import Availability, OccupancyRepository
from ampgate.billing import (
    BillingSessions,
    CdrRepository,
    Cdrs,
    PriceSignalRepository,
    PriceSignals,
    SessionRepository,
    TariffRepository,
    Tariffs,
)
from ampgate.bus import EventBus
from ampgate.campaigns import CampaignRepository, CampaignRunner
from ampgate.clock import Clock
from ampgate.commands import CommandQueue, CommandRepository
from ampgate.connectivity import PresenceRegistry
from ampgate.connectivity.history import HistoryRepository
from ampgate.connectivity.incidents import IncidentRepository
from ampgate.connectivity.links import MinuteCounts
from ampgate.connectivity.rules import Settings
from ampgate.connectivity.view import ConnectivityView
from ampgate.costdisplay import CostDisplay, CostDisplayRepository, NoTariffs
from ampgate.customer import CustomerInformationRepository, CustomerInformationService
from ampgate.demand import DemandRepository, DemandResponse
from ampgate.devicemodel import DeviceModel, DeviceModelRepository
from ampgate.display import DisplayMessageRepository, DisplayMessages
from ampgate.errors import ChargerOfflineError, NotFoundError
from ampgate.eventlog import EventLog, EventRepository
from ampgate.firmware_images import FirmwareImages, ImageFiles, ImageRepository
from ampgate.firmware_publish import FirmwarePublications, PublicationRepository
from ampgate.fleet import Fleet, FleetRepository
from ampgate.gateway.admission import HandshakeCounts
from ampgate.load import Sites, TopologyRepository
from ampgate.loadctl import LoadHistoryRepository, LoadTicker
from ampgate.logs import LogRepository, LogService
from ampgate.monitoring import Monitoring, MonitoringRepository
from ampgate.ocpp import payloads
from ampgate.ocpp.id_tokens import IdTokens
from ampgate.reports import ReportRepository, Reports
from ampgate.reservations import ReservationBook, ReservationRepository, Reservations
from ampgate.security import SecurityEventRepository
from ampgate.smartcharging import SmartCharging, SmartChargingRepository
from ampgate.store import (
    ApiTokenRepository,
    ChargerRepository,
    ChargerRow,
    ConnectorStatusRepository,
    IdTokenRepository,
    Store,
    TransactionRepository,
)

BASE_URL = "http://ampgate.test"
PUBLIC_BASE_URL = "http://public.test"
# The stand-in's limit on a firmware image: small, so a test can send a file past it.
MAX_FIRMWARE_BYTES = 1 << 20


@dataclass
class FakePresence:
    online: bool
    protocol: str | None
    connected_since: datetime | None
    last_seen: datetime | None
    security_profile: int = 1


class StandInHealth:
    def __init__(self, node: StandInNode) -> None:
        self._node = node

    def report(self) -> dict[str, Any]:
        online = sum(p.online for p in self._node.presence.values())
        return {"status": "ok", "workers": [], "connections": online, "chargers_online": online}


class PresenceVia:
    """Looks presence up in `node.presence` as it is at the time (a test may swap the dict)."""

    def __init__(self, node: StandInNode) -> None:
        self._node = node

    def get(self, charger_id: str) -> FakePresence | None:
        return self._node.presence.get(charger_id)


class StandInNode:
    """The services the API relies on, and no more: real repositories on a real Store, a presence dict, a
    registration that records what it was asked, and commands that find every charger offline unless a test
    scripts their replies (`replies[(charger_id, action)]`: a payload, or an exception to raise; the charger
    then speaks `protocols[charger_id]`). Reservations are the real service over this stand-in commander."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.chargers = ChargerRepository(store)
        self.id_token_table = IdTokenRepository(store)
        self.presence: dict[str, FakePresence] = {}
        self.registered: list[tuple[str, str | None]] = []
        self.health = StandInHealth(self)
        self.log_requests = LogRepository(store)
        self.logs = LogService(
            self.log_requests, self, EventBus(), Clock(), lambda path: "http://public.test" + path
        )
        self.protocols: dict[str, str] = {}
        self.replies: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.bus = EventBus()
        self.events = self.bus.subscribe()
        self.reservation_rows = ReservationRepository(store)
        self.reservation_book = ReservationBook(self.reservation_rows, self.bus, Clock().now)
        self.reservations = Reservations(
            self.reservation_book, self.reservation_rows, self, self.id_token_table, Clock()
        )
        # 2.0.1 display messages, customer information, firmware publishing: real repositories, this node's
        # commands (every charger offline), so tests can seed what the routes read.
        self.report_parts = ReportRepository(store)
        self.reports = Reports(self.report_parts, Clock())
        self.display_view = DisplayMessageRepository(store)
        self.customer_requests = CustomerInformationRepository(store)
        self.publications = PublicationRepository(store)
        # Site topology: the real service on the real repository, publishing on this node's bus.
        self.sites = Sites(TopologyRepository(store), self.chargers, self.bus, Clock())
        # Load management: the real demand-response service and the real ticker (ticked by the tests that need
        # it, never running on its own here), this node's commands for profiles.
        self.demand_response = DemandResponse(
            DemandRepository(store), self.sites.node_exists, self.bus.publish, Clock()
        )
        self.load = LoadTicker(
            sites=self.sites,
            transactions=TransactionRepository(store),
            presence=PresenceVia(self),
            calls=self,
            demand=self.demand_response,
            external=SmartChargingRepository(store),
            rate_unit=lambda charger_id: "A",
            history=LoadHistoryRepository(store),
            bus=self.bus,
            clock=Clock(),
        )
        # Firmware images: the real service, files in a directory beside the database, at most
        # `max_firmware_bytes` (small, so a test can go past it); a test marks images used by a campaign in
        # `images_in_use`. Tags and selections: the real service.
        self.images_in_use: set[int] = set()
        self.firmware_images = FirmwareImages(
            ImageRepository(store),
            ImageFiles(os.path.join(os.path.dirname(store.path), "firmware"), MAX_FIRMWARE_BYTES),
            self,
            self.bus,
            Clock(),
            lambda path: PUBLIC_BASE_URL + path,
        )
        self.fleet = Fleet(FleetRepository(store), self.chargers, self.bus, Clock())
        # Firmware campaigns: the real runner (not running: the verbs and reads work without its loop) over
        # in-test images, selection, windows and presence (`tests.api.campaign_ports`).
        from tests.api.campaign_ports import CampaignPorts

        self.campaign_ports = CampaignPorts()
        self.campaigns = CampaignRunner(
            CampaignRepository(store),
            self.campaign_ports,
            self.campaign_ports,
            self.campaign_ports,
            self.campaign_ports,
            self.campaign_ports,
            self.campaign_ports,
            self.campaign_ports,
            self.bus,
            Clock(),
        )
        # Availability: the real service over the same tables; presence from this node's dict.
        self.availability = Availability(
            TopologyRepository(store),
            ConnectorStatusRepository(store),
            PresenceVia(self),
            OccupancyRepository(store),
            self.load,
            EventBus(),
            Clock(),
        )

        # Cost on the charger: the real service over the real tables (device model, overrides); no tariffs.
        self.device_variables = DeviceModelRepository(store)
        self.cost_display = CostDisplay(
            overrides=CostDisplayRepository(store),
            chargers=self.chargers,
            variables=self.device_variables,
            tariffs=NoTariffs(),
            costs=NoTariffs(),
            transactions=TransactionRepository(store),
            calls=self,
            bus=self.bus,
            clock=Clock(),
        )
        # Billing: the real services over the same tables (the sessions' loop not running: costs are read
        # from the store when asked).
        topology = TopologyRepository(store)
        billing_rows = SessionRepository(store)

        def site_of(charger_id: str) -> str | None:
            placed = self.sites.placement(charger_id)
            return None if placed is None else placed.site_id

        self.tariffs = Tariffs(
            TariffRepository(store),
            charger_exists=self.chargers.exists,
            site_exists=lambda s: topology.site(s) is not None,
            site_of=site_of,
            groups=self.id_token_table,
            in_use=billing_rows.in_use,
            bus=self.bus,
            clock=Clock(),
        )
        self.price_signals = PriceSignals(
            PriceSignalRepository(store),
            site_exists=lambda s: topology.site(s) is not None,
            openadr=None,
            bus=self.bus,
            clock=Clock(),
        )
        self.cdr_rows = CdrRepository(store)
        self.billing = BillingSessions(
            billing_rows,
            self.cdr_rows,
            self.tariffs,
            self.price_signals,
            TransactionRepository(store),
            ConnectorStatusRepository(store),
            site_of,
            topology,
            self.bus,
            Clock(),
        )
        self.cdrs = Cdrs(
            self.cdr_rows,
            site_exists=lambda s: topology.site(s) is not None,
            occupancy=self.availability.occupancy,
            bus=self.bus,
            clock=Clock(),
        )

    def uses(self, image_id: int) -> bool:
        """`ImageUsers`: a test marks images as used by a campaign in `images_in_use`."""
        return image_id in self.images_in_use

    async def register(
        self, charger_id: str, password: str | None, *, keep_password: bool = False
    ) -> tuple[ChargerRow, bool]:
        result = await self.chargers.register(charger_id, password, keep_password=keep_password)
        self.registered.append((charger_id, password))
        return result

    async def set_security_profile(self, charger_id: str, profile: int) -> ChargerRow:
        return await self.chargers.set_security_profile(charger_id, profile)

    def ready(self, charger_id: str, action: str) -> str:
        if charger_id in self.protocols:
            return self.protocols[charger_id]
        if self.chargers.get(charger_id) is None:
            raise NotFoundError(f"charger {charger_id!r} is not registered", field="id")
        raise ChargerOfflineError(f"charger {charger_id!r} is not connected")

    def check(self, charger_id: str, action: str, payload: Any) -> str:
        return self.ready(charger_id, action)

    async def call(
        self,
        charger_id: str,
        action: str,
        payload: Any,
        *,
        command_id: str | None = None,
        on_enqueued: Any = None,
    ) -> Any:
        # Commands need live chargers: they are tested end to end against a real node (tests/integration).
        self.ready(charger_id, action)
        self.calls.append((charger_id, action, payload))
        reply = self.replies.get((charger_id, action))
        if reply is None:
            raise ChargerOfflineError(f"charger {charger_id!r} is not connected")
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def send(self, charger_id: str, update_type: str, version: int | None) -> dict[str, Any]:
        raise ChargerOfflineError(f"charger {charger_id!r} is not connected")

    def services(self) -> ApiServices:
        return ApiServices(
            api_tokens=ApiTokenRepository(self.store),
            chargers=self.chargers,
            presence=PresenceVia(self),
            connectors=ConnectorStatusRepository(self.store),
            registration=self,
            incidents=IncidentRepository(self.store),
            events=EventLog(self.bus, EventRepository(self.store), Clock()),
            connectivity=ConnectivityView(
                PresenceRegistry(),
                HistoryRepository(self.store),
                self.chargers,
                MinuteCounts(),
                HandshakeCounts(),
                Settings(),
                Clock(),
            ),
            commands=CommandQueue(
                CommandRepository(self.store),
                self,
                self.chargers,
                PresenceVia(self),
                payloads.validate_request,
                self.bus,
                Clock(),
            ),
            local_lists=self,
            id_tokens=IdTokens(self.id_token_table),
            transactions=TransactionRepository(self.store),
            security_events=SecurityEventRepository(self.store),
            device_model=DeviceModel(
                self,
                DeviceModelRepository(self.store),
                Reports(ReportRepository(self.store), Clock()),
                Clock(),
                report_timeout=5.0,
            ),
            monitoring=Monitoring(
                self,
                MonitoringRepository(self.store),
                Reports(ReportRepository(self.store), Clock()),
                Clock(),
                report_timeout=5.0,
            ),
            smart_charging=SmartCharging(
                self,
                SmartChargingRepository(self.store),
                Reports(ReportRepository(self.store), Clock()),
                ReportRepository(self.store),
                Clock(),
                report_timeout=5.0,
            ),
            logs=self.logs,
            reservations=self.reservations,
            display_messages=DisplayMessages(
                self.display_view,
                self,
                self.reports,
                self.report_parts,
                EventBus(),
                Clock(),
                report_timeout=5.0,
            ),
            customer_information=CustomerInformationService(
                self.customer_requests,
                self,
                self.reports,
                self.report_parts,
                EventBus(),
                Clock(),
                report_timeout=5.0,
            ),
            firmware_publications=FirmwarePublications(self.publications, self, EventBus(), Clock()),
            sites=self.sites,
            availability=self.availability,
            demand_response=self.demand_response,
            load=self.load,
            firmware_images=self.firmware_images,
            fleet=self.fleet,
            health=self.health,
            campaigns=self.campaigns,
            cost_display=self.cost_display,
            tariffs=self.tariffs,
            costs=self.billing,
            cdrs=self.cdrs,
            price_signals=self.price_signals,
        )


@dataclass
class Api:
    client: httpx.AsyncClient
    node: StandInNode
    tokens: dict[str, str] = field(default_factory=dict)  # role -> plaintext token

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


Scenario = Callable[[Api], Awaitable[None]]


@pytest.fixture
def api(tmp_path: Path) -> Callable[[Scenario], None]:
    """`api(scenario)`: run `await scenario(Api(...))` with a running store, tokens for every role, and an
    httpx client bound to the app."""

    def run(scenario: Scenario) -> None:
        async def main() -> None:
            store = Store(str(tmp_path / "api.db"))
            node = StandInNode(store)
            tokens = {
                role: ApiTokenRepository(store).create(role, label=f"test {role}")
                for role in ("viewer", "operator", "admin")
            }
            async with trio.open_nursery() as nursery:
                await nursery.start(store.run)
                transport = httpx.ASGITransport(app=create_app(node.services()))
                async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                    with trio.fail_after(30):
                        await scenario(Api(client, node, tokens))
                nursery.cancel_scope.cancel()

        trio.run(main)

    return run
