"""The node: the composition root of a running ampgate control plane. It builds every part, hands each the
narrow interfaces it uses, and runs them in one nursery; it holds no business logic, and no module but the CLI
imports it.

`Node.run` starts, in order: the store (and its writer thread), the OCPP router's task, the reservations
(reloaded, then swept for expiry), the gateway (listening socket, worker processes, the handshake table, the
event pump), the operator API and the public surface (each Litestar on Hypercorn, same trio loop). Shutdown is the reverse: workers close every charger with 1001, the
listeners stop, the store flushes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import socket
from typing import Any

import trio

from ampgate import _native, openadr
from ampgate.api import ApiServices, create_app
from ampgate.api.deps import OpenAdrNotConfigured
from ampgate.availability import Availability, OccupancyRepository
from ampgate.availability.public import PublicRecommendations
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
from ampgate.campaigns.ports import CampaignSources, DeviceModelSigned
from ampgate.campaigns.sources import wire as wire_sources
from ampgate.certauthority import (
    CertificateRepository,
    ChargerCertificates,
    LocalAuthority,
    Signer,
    SignerCommand,
)
from ampgate.certauthority import Settings as CertificateSettings
from ampgate.certificates import CertificateHandlers
from ampgate.clock import Clock
from ampgate.commands import CommandQueue, CommandRepository
from ampgate.config import NodeConfig
from ampgate.connectivity import (
    ChargerRegistration,
    ChargerSender,
    KnownChargers,
    LinkTracker,
    PresenceRegistry,
    rules,
)
from ampgate.connectivity.history import HistoryRepository
from ampgate.connectivity.incidents import IncidentRepository
from ampgate.connectivity.links import CREDENTIALS_CHANGED_CODE, CREDENTIALS_CHANGED_REASON
from ampgate.connectivity.monitor import ConnectivityMonitor
from ampgate.connectivity.sites import SiteIndex
from ampgate.connectivity.view import ConnectivityView
from ampgate.costdisplay import CostDisplay, CostDisplayRepository, CountsCollector, NoTariffs
from ampgate.costdisplay.ports import SessionCosts, TariffLookup
from ampgate.customer import (
    CustomerInformationHandlers,
    CustomerInformationRepository,
    CustomerInformationService,
)
from ampgate.demand import DemandRepository, DemandResponse
from ampgate.devicemodel import DeviceModel, DeviceModelHandlers, DeviceModelRepository
from ampgate.display import DisplayMessageHandlers, DisplayMessageRepository, DisplayMessages
from ampgate.eventlog import EventLog, EventRepository
from ampgate.firmware_images import FirmwareImages, ImageFiles, ImageRepository
from ampgate.firmware_publish import FirmwarePublications, PublicationRepository, PublishStatusHandlers
from ampgate.fleet import Fleet, FleetRepository
from ampgate.gateway import Gateway
from ampgate.gateway.backpressure import LateReplies, WriteRoom
from ampgate.gateway.outgoing import Outgoing
from ampgate.health import NodeHealth, StoreWatch, store_report
from ampgate.httpserver import bind, serve
from ampgate.load import Sites, TopologyRepository
from ampgate.loadctl import LoadHistoryRepository, LoadTicker
from ampgate.loadctl import Settings as LoadSettings
from ampgate.logs import LogRepository, LogService, LogStatusHandlers, UploadReceiver
from ampgate.metrics import NodeMetrics
from ampgate.metrics.sources import MetricSources
from ampgate.metrics.store import StoreCollector
from ampgate.monitoring import Monitoring, MonitoringHandlers, MonitoringRepository
from ampgate.ocpp import payloads
from ampgate.ocpp.authorization import Authorizer
from ampgate.ocpp.boot import BootHandlers
from ampgate.ocpp.boot_policy import BootPolicy
from ampgate.ocpp.boot_spread import BootSpread
from ampgate.ocpp.boot_spread_task import BootSpreadTriggers
from ampgate.ocpp.commander import Commander
from ampgate.ocpp.data_transfer import DataTransferRegistry
from ampgate.ocpp.firmware import FirmwareHandlers
from ampgate.ocpp.id_tokens import IdTokens
from ampgate.ocpp.local_list import LocalLists
from ampgate.ocpp.observed import ObservedCommands
from ampgate.ocpp.outbox import CallManager
from ampgate.ocpp.router import OcppRouter
from ampgate.ocpp.status import StatusHandlers
from ampgate.ocpp.transactions import TransactionHandlers
from ampgate.profileupgrade import ProfileUpgrades, UpgradeRepository
from ampgate.profileupgrade import Settings as ProfileUpgradeSettings
from ampgate.public import PublicRoutes, TransferLimiter, create_public_app
from ampgate.public.firmware_files import download_firmware, probe_firmware
from ampgate.public.locations import get_public_location, list_public_locations
from ampgate.public.locations_service import OptedInSites, PublicLocations
from ampgate.public.openadr import NOTIFICATIONS_PATH, openadr_notification
from ampgate.public.recommendations import recommendations
from ampgate.public.uploads import upload_log
from ampgate.reports import ReportRepository, Reports
from ampgate.reservations import ReservationBook, ReservationRepository, Reservations
from ampgate.roaming.credentials import Identity
from ampgate.roaming.equipment import EquipmentRepository, EquipmentService
from ampgate.roaming.locations import LocationBook
from ampgate.roaming.service import Roaming
from ampgate.security import SecurityEventHandlers, SecurityEventRepository
from ampgate.smartcharging import SmartCharging, SmartChargingHandlers, SmartChargingRepository
from ampgate.store import (
    ApiTokenRepository,
    ChargerRepository,
    ConnectorStatusRepository,
    IdTokenRepository,
    Store,
    TransactionRepository,
)

log = logging.getLogger(__name__)

# --ready-file holds the first admin token: readable by the node's user only.
READY_FILE_MODE = 0o600


class Node:
    """A running ampgate node. Build it with a config, then `await nursery.start(node.run)`.

    What chargers are shown (ampgate.costdisplay) is priced by the node's billing service; a test may pass its
    own `tariffs` and `session_costs` instead, as it may pass `campaign_sources`."""

    def __init__(
        self,
        config: NodeConfig,
        clock: Clock | None = None,
        campaign_sources: CampaignSources | None = None,
        *,
        tariffs: TariffLookup | None = None,
        session_costs: SessionCosts | None = None,
    ) -> None:
        self.config = config
        clock = self.clock = clock or Clock()
        self.bus = EventBus()
        self.store = Store(
            config.db_path, now=clock.now, sync=config.store_sync, queue_max=config.store_queue_max
        )
        # A locked or full database: store.degraded / store.recovered on the bus (and in the health report).
        self.store.watch(StoreWatch(self.bus, clock).changed)
        chargers = ChargerRepository(self.store)
        self.api_tokens = ApiTokenRepository(self.store)
        id_tokens = IdTokenRepository(self.store)
        transactions = TransactionRepository(self.store)
        connectors = ConnectorStatusRepository(self.store)
        security_events = SecurityEventRepository(self.store)
        variables = DeviceModelRepository(self.store)
        report_reads = ReportRepository(self.store)
        reports = Reports(report_reads, clock)
        charging_notes = SmartChargingRepository(self.store)
        monitors = MonitoringRepository(self.store)
        monitoring_handlers = MonitoringHandlers(monitors, reports, self.bus, clock)
        log_requests = LogRepository(self.store)
        display_view = DisplayMessageRepository(self.store)
        customer_requests = CustomerInformationRepository(self.store)
        publications = PublicationRepository(self.store)
        self.presence = PresenceRegistry()
        self.hub = _native.Hub()
        # What replies to chargers go through: never raises for a message's size (it closes that connection).
        self.outgoing = Outgoing(self.hub)
        self.policy = BootPolicy(
            chargers,
            unknown_boot=config.unknown_boot,
            heartbeat_interval=config.heartbeat_interval,
            retry_interval=config.boot_retry_interval,
        )
        # Boot spreading: boots past the threshold per second are Pending for a random moment (the rule), and
        # asked back with TriggerMessage as room frees (the task, built with the Commander below).
        self.boot_spread = BootSpread(
            threshold=config.boot_spread_threshold,
            spread_window=config.boot_spread_window,
            now=clock.monotonic,
            randint=random.Random().randint,
        )

        # OCPP: the outbox puts our CALLs on a charger's link; the router handles what chargers send; the
        # link tracker turns the gateway's connection events into presence, sessions, records and events.
        outbox = CallManager(
            ChargerSender(self.presence, self.hub, max_message=config.max_message).send,
            publish=self.bus.publish,
            now=clock.now,
        )
        self.router = OcppRouter(self.policy, self.outgoing, outbox, clock, late_max=config.store_queue_max)
        # Connectivity: state (online / stale / offline), flapping and history; the monitor sweeps.
        connectivity_settings = rules.Settings(
            heartbeat_interval=config.heartbeat_interval,
            grace=config.stale_grace,
            flap_count=config.flap_count,
            flap_window=config.flap_window,
            flap_clear=config.flap_clear,
            offline_alert=config.offline_alert,
            spike_fraction=config.spike_fraction,
            spike_min=config.spike_min,
            spike_window=config.spike_window,
        )
        self.connectivity_history = HistoryRepository(self.store)
        self.incidents = IncidentRepository(self.store)
        # Which site each charger is placed at (the load part's placements), for per-site connectivity.
        self.site_index = SiteIndex(TopologyRepository(self.store).site_of_every_charger, self.bus)
        # Which ids the node knows: an unknown one is recorded only by its boot, and its presence is forgotten
        # when it leaves without one.
        self.known_chargers = KnownChargers(self.policy, chargers, self.hub.auth_set)
        self.links = links = LinkTracker(
            self.presence,
            self.router,
            self.outgoing,
            chargers,
            self.bus,
            clock,
            history=self.connectivity_history,
            settings=connectivity_settings,
            sites=self.site_index,
            known=self.known_chargers.known,
        )
        self.connectivity = ConnectivityMonitor(
            self.presence,
            self.connectivity_history,
            self.bus,
            clock,
            connectivity_settings,
            history_days=config.history_days,
            drops=links,
            fleet=chargers.count,
            incidents=self.incidents,
            sites=self.site_index,
        )
        # Reservations: the book (live reservations in memory) is what Authorize and transaction starts ask;
        # the service (built below, with the commander) is what the API drives.
        reservation_rows = ReservationRepository(self.store)
        reservation_book = ReservationBook(reservation_rows, self.bus, clock.now)
        self.commander = Commander(
            outbox,
            self.presence,
            self.router.sessions,
            chargers.exists,
            publish=self.bus.publish,
            clock=clock,
            timeout=config.call_timeout,
            max_message=config.max_message,
        )
        # Charging-station certificates: the node's own CA (--charger-ca-dir) or the operator's signer
        # (--charger-ca-signer) signs chargers' CSRs; with neither, SignCertificate gets the spec's NotEnabled.
        # What chargers have installed is followed either way (the observers below).
        self.charger_ca: LocalAuthority | None = None
        signer: Signer | None = None
        if config.charger_ca_path is not None:
            signer = self.charger_ca = LocalAuthority.open(
                config.charger_ca_path,
                key_type=config.charger_ca_key_type,
                organization=config.charger_cert_organization,
                now=clock.now,
            )
        elif config.charger_ca_signer is not None:
            signer = SignerCommand(config.charger_ca_signer, timeout=config.charger_ca_signer_timeout)
        self.certificates = ChargerCertificates(
            CertificateRepository(self.store),
            signer,
            self.commander,
            self.bus,
            clock,
            CertificateSettings(
                cert_days=config.charger_cert_days,
                organization=config.charger_cert_organization,
                warn_days=config.charger_cert_warn_days,
                check_interval_s=config.charger_cert_check_interval,
                auto_renew=config.charger_cert_auto_renew,
            ),
            ca_certificate=self.charger_ca.certificate if self.charger_ca is not None else None,
        )
        # Cost on the charger: the tariff text and the final cost in the replies below, the running cost at an
        # interval. Prices come from the billing service built below (bound there), or from `tariffs` /
        # `session_costs` when a test passes its own.
        no_tariffs = NoTariffs()
        self.cost_display = CostDisplay(
            overrides=CostDisplayRepository(self.store),
            chargers=chargers,
            variables=variables,
            tariffs=tariffs if tariffs is not None else no_tariffs,
            costs=session_costs if session_costs is not None else no_tariffs,
            transactions=transactions,
            calls=self.commander,
            bus=self.bus,
            clock=clock,
            interval=config.cost_update_interval,
        )
        authorizer = Authorizer(id_tokens, clock.now, reservation_book, costs=self.cost_display.replies)
        self.data_transfer = DataTransferRegistry()
        for handlers in (
            BootHandlers(
                self.policy,
                chargers,
                self.bus,
                clock,
                self.router.time,
                self.boot_spread,
                first_boot=self.known_chargers.first_boot,
            ),
            authorizer,
            reservation_book,
            TransactionHandlers(transactions, authorizer, self.bus, clock, costs=self.cost_display.replies),
            StatusHandlers(connectors, self.bus, clock, events=monitoring_handlers.events),
            monitoring_handlers,
            FirmwareHandlers(chargers, self.bus, clock),
            SecurityEventHandlers(security_events, self.bus, clock),
            # No contract-certificate provider or OCSP responder yet: those requests get the spec's explicit
            # "not enabled" answer, as SignCertificate does without a certificate authority.
            CertificateHandlers(self.bus, clock, authority=self.certificates if signer is not None else None),
            DeviceModelHandlers(variables, reports, clock),
            SmartChargingHandlers(
                charging_notes,
                transactions,
                reports,
                self.bus,
                clock,
                managed=lambda cid: self.site_index.site_of(cid) is not None,
            ),
            LogStatusHandlers(log_requests, self.bus, clock),
            DisplayMessageHandlers(display_view, reports, clock),
            CustomerInformationHandlers(reports, report_reads, self.bus, clock),
            PublishStatusHandlers(publications, self.bus, clock),
        ):
            handlers.register(self.router)
        self.data_transfer.attach(self.router)
        self.boot_spread_triggers = BootSpreadTriggers(
            self.boot_spread, self.commander, self.presence, self.bus, clock
        )
        self.reservations = Reservations(
            reservation_book, reservation_rows, self.commander, id_tokens, clock, self.bus
        )

        # The API's commands go through the device model: split to the charger's limits, and learned from.
        device_model = DeviceModel(
            self.commander,
            variables,
            reports,
            clock,
            report_timeout=config.report_timeout,
            protocol_of=lambda cid: row.protocol if (row := chargers.get(cid)) is not None else None,
        )
        smart_charging = SmartCharging(
            self.commander, charging_notes, reports, report_reads, clock, report_timeout=config.report_timeout
        )
        # Answers some parts learn from (the device model learns its own).
        commands = ObservedCommands(device_model)
        commands.observe("GetCompositeSchedule", smart_charging.learn_composite)
        monitoring = Monitoring(
            self.commander, monitors, reports, clock, report_timeout=config.report_timeout
        )
        commands.observe("SetVariableMonitoring", monitoring.learn_set)
        commands.observe("ClearVariableMonitoring", monitoring.learn_clear)
        # The certificates a charger has installed, as its answers to the admin's commands tell.
        commands.observe("InstallCertificate", self.certificates.learn_install)
        commands.observe("DeleteCertificate", self.certificates.learn_delete)
        commands.observe("GetInstalledCertificateIds", self.certificates.learn_installed_ids)
        # Logs: requests go out through the Commander; chargers upload to the public surface, whose URLs exist
        # once its port is bound (`_public_url` is only called after that).
        self.logs = LogService(log_requests, self.commander, self.bus, clock, self._public_url)
        self.uploads = UploadReceiver(
            log_requests, self.bus, clock, config.uploads_path, config.max_upload_bytes
        )

        # 2.0.1 display messages, customer information and firmware publishing: commands through the Commander,
        # reports through `reports`.
        display_messages = DisplayMessages(
            display_view,
            self.commander,
            reports,
            report_reads,
            self.bus,
            clock,
            report_timeout=config.report_timeout,
        )
        customer_information = CustomerInformationService(
            customer_requests,
            self.commander,
            reports,
            report_reads,
            self.bus,
            clock,
            report_timeout=config.report_timeout,
        )
        firmware_publications = FirmwarePublications(publications, self.commander, self.bus, clock)

        # Load management's site topology (sites, capacity nodes, placements), changed by admins over the API.
        self.sites = Sites(TopologyRepository(self.store), chargers, self.bus, clock)
        # Load management: demand-response events lower node limits; the ticker allocates every tick and sends
        # the charging profiles (straight through the Commander: a profile is stale within seconds, so it keeps
        # one latest-wins slot per connector rather than queueing durably).
        self.demand_response = DemandResponse(
            DemandRepository(self.store), self.sites.node_exists, self.bus.publish, clock
        )
        self.load = LoadTicker(
            sites=self.sites,
            transactions=transactions,
            presence=self.presence,
            calls=self.commander,
            demand=self.demand_response,
            external=charging_notes,
            rate_unit=device_model.charging_rate_unit,
            history=LoadHistoryRepository(self.store),
            bus=self.bus,
            clock=clock,
            settings=LoadSettings(
                period_s=config.load_tick,
                min_a=config.load_min_a,
                default_a=config.load_default_a,
                validity_s=config.load_profile_validity,
                min_interval_s=config.load_min_interval,
                offline_assume=config.load_offline_assume,
                hysteresis_a=config.load_hysteresis_a,
                hysteresis_pct=config.load_hysteresis_pct,
                min_hold_s=config.load_min_hold,
            ),
        )

        # Utilization balancing: each site's connectors per state and headroom, its hourly occupancy, and the
        # public ranking for EV owners' apps; headroom is the load ticker's (limit minus measured draw).
        self.availability = Availability(
            TopologyRepository(self.store),
            connectors,
            self.presence,
            OccupancyRepository(self.store),
            self.load,
            self.bus,
            clock,
        )
        self.recommendations = PublicRecommendations(self.availability, clock)

        # OpenADR 3.0.1 VEN, only with --openadr-vtn: the grid operator's capacity limits become demand-response
        # events on the sites; its callbacks come in on the public listener (whose URL exists once it is bound).
        openadr_settings = openadr.settings_from(config)
        self.openadr: openadr.OpenAdrVen | None = None
        if openadr_settings is not None:
            self.openadr = openadr.build_ven(
                openadr_settings,
                limits=self.demand_response,
                readings=self.load,
                sites=self.sites,
                prices=openadr.PriceRepository(self.store),
                publish=self.bus.publish,
                clock=clock,
                callback_url=lambda: self._public_url(NOTIFICATIONS_PATH),
            )

        # Pricing as a service (ampgate.billing, on the pure engine in ampgate.pricing): tariffs and where they
        # apply; each session's running and final cost from the bus and the store, its CDR when the EVSE is free
        # again; each site's dynamic prices from the API and from the VEN's stored OpenADR PRICE events.
        topology = TopologyRepository(self.store)
        billing_rows = SessionRepository(self.store)
        self.tariffs = Tariffs(
            TariffRepository(self.store),
            charger_exists=chargers.exists,
            site_exists=lambda site_id: topology.site(site_id) is not None,
            site_of=self.site_index.site_of,
            groups=id_tokens,
            in_use=billing_rows.in_use,
            bus=self.bus,
            clock=clock,
        )
        self.price_signals = PriceSignals(
            PriceSignalRepository(self.store),
            site_exists=lambda site_id: topology.site(site_id) is not None,
            openadr=openadr.PriceRepository(self.store),
            bus=self.bus,
            clock=clock,
        )
        cdr_rows = CdrRepository(self.store)
        self.billing = BillingSessions(
            billing_rows,
            cdr_rows,
            self.tariffs,
            self.price_signals,
            transactions,
            connectors,
            self.site_index.site_of,
            topology,
            self.bus,
            clock,
            max_parking_s=config.cdr_max_parking_s,
        )
        self.cdrs = Cdrs(
            cdr_rows,
            site_exists=lambda site_id: topology.site(site_id) is not None,
            occupancy=self.availability.occupancy,
            bus=self.bus,
            clock=clock,
        )
        # What chargers are shown (the tariff text, running and final cost) is what billing prices.
        self.cost_display.bind(
            tariffs if tariffs is not None else self.tariffs,
            session_costs if session_costs is not None else self.billing,
        )

        # Firmware images: uploaded files live beside the database and are served on the public listener. An
        # image a campaign (not finished or cancelled) uses cannot be deleted.
        campaign_rows = CampaignRepository(self.store)
        self.firmware_images = FirmwareImages(
            ImageRepository(self.store),
            ImageFiles(config.firmware_path, config.max_firmware_bytes),
            campaign_rows,
            self.bus,
            clock,
            self._public_url,
        )
        self.firmware_images.sweep()
        # Chargers' tags and selections by selector (what a campaign freezes as its targets).
        self.fleet = Fleet(FleetRepository(self.store), chargers, self.bus, clock)

        # Every command the API asks for gets a record; queued ones wait durably for their charger. They go
        # through `commands` (the device model's splitting, the parts that learn from answers).
        self.commands = CommandQueue(
            CommandRepository(self.store),
            commands,
            chargers,
            self.presence,
            payloads.validate_request,
            self.bus,
            clock,
            max_message=config.max_message,
        )

        # Every bus event numbered, kept and streamed (GET /api/v1/events, …/stream).
        self.event_log = EventLog(self.bus, EventRepository(self.store), clock, days=config.events_days)

        # The pump takes no batch while the store's queue, or the replies awaiting commits, are full.
        self.gateway = Gateway(
            config,
            self.hub,
            links,
            self.router,
            chargers.credentials,
            publish=self.bus.publish,
            now=clock.now,
            room=WriteRoom(self.store, LateReplies(self.router)),
        )
        self.api_connectivity = ConnectivityView(
            self.presence,
            self.connectivity_history,
            chargers,
            links.rates,
            self.gateway.handshakes,
            connectivity_settings,
            clock,
            boot_spread_pending=self.boot_spread.pending,
            sites=self.site_index,
        )
        self.health = NodeHealth(
            self.gateway.health,
            self.presence.online_count,
            clock,
            store=functools.partial(store_report, self.store),
        )
        self.metrics = NodeMetrics(
            self.bus,
            MetricSources(
                self.gateway,
                self.api_connectivity,
                self.bus,
                self.store,
                CommandRepository(self.store),
                self.event_log,
                links.rtt,
                boot_spread_pending=self.boot_spread.pending,
                presence_records=self.presence.__len__,
            ),
        )
        self.metrics.registry.register(CountsCollector(self.cost_display.counts))
        self.metrics.registry.register(StoreCollector(self.store))
        # Firmware campaigns: every dispatch through the durable command queue (see campaigns.runner); images,
        # the selection and maintenance windows from the parts that own them (a test may pass its own).
        sources = campaign_sources or wire_sources(self.firmware_images, self.fleet, self.sites)
        self.campaigns = CampaignRunner(
            campaign_rows,
            sources.images,
            sources.selection,
            sources.windows,
            self.presence,
            transactions,
            DeviceModelSigned(device_model.capabilities_of),
            self.commands,
            self.bus,
            clock,
        )
        # Sites as OCPI Locations, live (their EVSEs as chargers' descriptions or statuses say, each EVSE's status
        # mapped from OCPP), with or without OCPI: the public locations route shows the statuses the pushes
        # carry. With --ocpi-* every site (OCPI publishes them all); without, only the sites opted in to the
        # public surface, so a node that publishes a few sites does not hold and reconcile its whole fleet here
        # (ampgate.public.locations_service), and no default eMI3 ids (there is no operator id to build them).
        ocpi = bool(config.ocpi_country_code and config.ocpi_party_id)
        opted_in = None if ocpi else OptedInSites(TopologyRepository(self.store))
        equipment_rows = EquipmentRepository(self.store)
        self.equipment = EquipmentService(equipment_rows, chargers, self.bus, clock)
        self.locations = LocationBook(
            opted_in or TopologyRepository(self.store),
            connectors,
            equipment_rows,
            self.presence,
            variables,
            self.bus,
            clock,
            country_code=config.ocpi_country_code or "",
            party_id=config.ocpi_party_id or "",
            # Each connector names the tariff an ad-hoc or roaming session there gets, by billing's resolution.
            tariffs=self.tariffs,
        )
        self.public_locations = PublicLocations(
            self.availability,
            self.locations,
            self.tariffs,
            self.price_signals,
            clock,
            opted_in=opted_in,
            bus=self.bus,
        )
        # OCPI 2.2.1 as a CPO, only with --ocpi-country-code and --ocpi-party-id: the book's Locations served and
        # their changes pushed to the registered parties, the server under /ocpi on the public listener.
        self.roaming: Roaming | None = None
        if config.ocpi_country_code and config.ocpi_party_id:
            self.roaming = Roaming(
                self.store,
                Identity(
                    country_code=config.ocpi_country_code,
                    party_id=config.ocpi_party_id,
                    name=config.ocpi_name or f"{config.ocpi_country_code}*{config.ocpi_party_id}",
                    # Replaced once the public listener is bound (its URL may name the bound port).
                    base_url=config.ocpi_base_url or "http://localhost/ocpi",
                ),
                book=self.locations,
                bus=self.bus,
                clock=clock,
                transactions=transactions,
                readiness=self.commander,
                sender=self.commands,
                reservations=self.reservations,
                costs=self.billing,
                cdrs=cdr_rows,
                tariffs=self.tariffs,
                call_timeout_s=config.call_timeout,
                authorize_timeout_s=config.ocpi_authorize_timeout,
                rate_per_s=config.ocpi_rate_limit,
                session_update_s=config.ocpi_session_update_s,
                cdr_retry_s=config.ocpi_cdr_retry_s,
            )
            # Tokens our id-token table does not know: the eMSPs' (pushed, or asked in real time).
            authorizer.external = self.roaming.authority
            # What let a roaming session in (the eMSP's authorization_reference) goes on its CDR.
            self.billing.authorizations = self.roaming.authority
        ocpi_services: dict[str, Any] = {}
        if self.roaming is not None:
            ocpi_services = {
                "ocpi": self.roaming,
                "published": self.roaming,
                "cdr_deliveries": self.roaming.cdr_delivery,
            }
        self.registration = ChargerRegistration(
            chargers,
            self.policy,
            self.gateway.push_credentials,
            functools.partial(
                self.links.drop, code=CREDENTIALS_CHANGED_CODE, reason=CREDENTIALS_CHANGED_REASON
            ),
            self._connection_profile,
        )
        # Security-profile upgrades: accepted on the new profile only once the charger connects with it.
        self.profile_upgrades = ProfileUpgrades(
            UpgradeRepository(self.store),
            self.commander,
            chargers,
            self.presence,
            self.registration.set_security_profile,
            self.bus,
            clock,
            ProfileUpgradeSettings(
                tls=config.ocpp_tls_port is not None, client_ca=config.tls_client_ca is not None
            ),
        )
        self.api_services = ApiServices(
            api_tokens=self.api_tokens,
            chargers=chargers,
            presence=self.presence,
            connectors=connectors,
            registration=self.registration,
            commands=self.commands,
            events=self.event_log,
            connectivity=self.api_connectivity,
            incidents=self.incidents,
            local_lists=LocalLists(id_tokens, self.commander, clock, device_model.local_list_limits),
            id_tokens=IdTokens(id_tokens),
            transactions=transactions,
            security_events=security_events,
            device_model=device_model,
            smart_charging=smart_charging,
            monitoring=monitoring,
            logs=self.logs,
            reservations=self.reservations,
            display_messages=display_messages,
            customer_information=customer_information,
            firmware_publications=firmware_publications,
            sites=self.sites,
            availability=self.availability,
            demand_response=self.demand_response,
            load=self.load,
            firmware_images=self.firmware_images,
            fleet=self.fleet,
            health=self.health,
            campaigns=self.campaigns,
            openadr=self.openadr if self.openadr is not None else OpenAdrNotConfigured(),
            equipment=self.equipment,
            cost_display=self.cost_display,
            certificates=self.certificates,
            profile_upgrades=self.profile_upgrades,
            tariffs=self.tariffs,
            costs=self.billing,
            cdrs=self.cdrs,
            price_signals=self.price_signals,
            **ocpi_services,
        )
        self.transfers = TransferLimiter(config.public_max_transfers)
        self.api_port = 0
        self.public_port = 0
        self.public_routes: PublicRoutes | None = None
        self.first_admin_token: str | None = None
        self._stop = trio.Event()

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until `request_stop()` (or cancellation). Raises OSError if a port cannot be bound."""
        config = self.config
        async with trio.open_nursery() as outer:
            await outer.start(self.store.run)
            if self.api_tokens.count() == 0:
                self.first_admin_token = self.api_tokens.create("admin", label="first start")
            try:
                async with trio.open_nursery() as inner:
                    # First: every event from the first charger on is logged.
                    await inner.start(self.event_log.run)
                    await inner.start(self.router.run)
                    # Before the gateway: the first charger message must meet the reservations reloaded.
                    await inner.start(self.reservations.run)
                    await inner.start(self.commands.run)
                    await inner.start(self.certificates.run)
                    await inner.start(self.profile_upgrades.run)
                    await inner.start(self.campaigns.run)
                    await inner.start(self.boot_spread_triggers.run)
                    await inner.start(self.site_index.run)
                    # After the placements (a session's site), before the gateway: sessions parked when the node
                    # stopped are loaded before their chargers report their connectors free.
                    await inner.start(self.billing.run)
                    await inner.start(self.availability.run)
                    await inner.start(self.locations.run)
                    await inner.start(self.public_locations.run)
                    await inner.start(self.connectivity.run)
                    await inner.start(self.metrics.run)
                    await inner.start(self.load.run)
                    await inner.start(self.cost_display.run)
                    await inner.start(self.gateway.run)
                    # Both ports are bound before either listener serves, so the public URLs the API hands
                    # out (log upload URLs) exist from the API's first request.
                    api = bind(config.api_host, config.api_port)
                    self.api_port = api.getsockname()[1]
                    public = bind(config.public_host, config.public_port)
                    self.public_port = public.getsockname()[1]
                    self.public_routes = PublicRoutes(config.public_base_url or self._default_base_url())
                    roaming = self.roaming
                    if roaming is not None:
                        roaming.set_base_url(config.ocpi_base_url or self.public_routes.url_for("/ocpi"))
                        await inner.start(roaming.run)
                    await inner.start(serve, create_app(self.api_services, metrics=self.metrics), api)
                    await inner.start(
                        functools.partial(
                            serve,
                            create_public_app(
                                self.health,
                                self.transfers,
                                [
                                    upload_log,
                                    recommendations,
                                    list_public_locations,
                                    get_public_location,
                                    download_firmware,
                                    probe_firmware,
                                    *([openadr_notification] if self.openadr else []),
                                    *([roaming.router()] if roaming else []),
                                ],
                                {
                                    "uploads": self.uploads,
                                    "recommender": self.recommendations,
                                    "public_locations": self.public_locations,
                                    "images": self.firmware_images,
                                }
                                | ({"openadr": self.openadr} if self.openadr else {})
                                | (roaming.public_services() if roaming else {}),
                                exception_handlers=roaming.exception_handlers if roaming else None,
                                state=roaming.public_state() if roaming else None,
                            ),
                            public,
                            certfile=config.public_tls_cert,
                            keyfile=config.public_tls_key,
                        )
                    )
                    if self.openadr is not None:
                        await inner.start(self.openadr.run)
                    self.health.started()
                    task_status.started(self)
                    await self._stop.wait()
                    await self.gateway.stop()
                    self.links.node_stopping()
                    inner.cancel_scope.cancel()
            finally:
                # Cancelling the store's task flushes every queued write before it returns.
                outer.cancel_scope.cancel()

    def request_stop(self) -> None:
        """Begin a clean shutdown: chargers get close 1001, the store is flushed, `run` returns."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a shutdown was requested."""
        return self._stop.is_set()

    def _connection_profile(self, charger_id: str) -> int | None:
        """The security profile of the charger's live connection, None when it is offline."""
        p = self.presence.get(charger_id)
        return p.security_profile if p is not None and p.online else None

    def _public_url(self, path: str) -> str:
        assert self.public_routes is not None, "public URLs exist once the public port is bound"
        return self.public_routes.url_for(path)

    def _default_base_url(self) -> str:
        """Without --public-base-url, chargers are told this host's name (never a loopback or wildcard
        address, which would mean nothing to them)."""
        scheme = "https" if self.config.public_tls else "http"
        url = f"{scheme}://{socket.gethostname()}:{self.public_port}"
        log.warning("--public-base-url not set: chargers will be sent URLs under %s", url)
        return url

    def write_ready_file(self) -> None:
        """Write the ports (and the first admin token) as JSON to --ready-file, atomically; the CLI calls it
        once the node runs and its banner is out, so a script that waits for the file finds both."""
        if not self.config.ready_file:
            return
        info = {
            "pid": os.getpid(),
            "ocpp_port": self.gateway.ocpp_port if self.config.ocpp_plain else None,
            "ocpp_tls_port": self.gateway.tls_port,
            "api_port": self.api_port,
            "public_port": self.public_port,
            "public_base_url": self.public_routes.base_url if self.public_routes else None,
            "admin_token": self.first_admin_token,
            "workers": [w.pid for w in self.gateway.workers.values()],
        }
        # The file holds an admin token: it is created owner-only (0600) rather than chmod-ed after the write,
        # which would leave a window in which another local user can open it. A leftover .tmp from a crash is
        # removed first so O_EXCL creates a fresh file with this mode (O_CREAT keeps an existing file's mode).
        tmp = self.config.ready_file + ".tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, READY_FILE_MODE)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        os.replace(tmp, self.config.ready_file)
