"""What the API needs from the node, one narrow interface per service, and how handlers receive them.

The API is written against these Protocols, never against the node, so it can be driven by small stand-ins in
tests and never imports the gateway. `create_app` registers each field of `ApiServices` as a Litestar
dependency of the same name: a handler declares exactly the services it uses (`chargers:
NamedDependency[ChargerReads]`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ampgate.api.campaigns import CampaignService
from ampgate.availability import OccupancyRow, SiteAvailability
from ampgate.billing import Assignment, Cdr, Scope, SignalWindow, SiteSignals, TariffRow, UsageReport
from ampgate.certauthority import CertificateView, RenewalResult
from ampgate.commands import CommandRow
from ampgate.connectivity.history import HistoryRow
from ampgate.connectivity.incidents import IncidentRow
from ampgate.costdisplay import CostDisplayView, Mode
from ampgate.customer import CustomerInformation, CustomerRequest
from ampgate.demand import EventRow as DemandEventRow
from ampgate.demand import EventSpec as DemandEventSpec
from ampgate.devicemodel import Capabilities, VariableRow
from ampgate.display import DisplayMessage, DisplayMessageRow, RefreshResult
from ampgate.errors import ConflictError
from ampgate.eventlog.repository import EventRow
from ampgate.eventlog.service import Entry, Stream
from ampgate.firmware_images import ImageRow, ImageSpec, ImageUpload
from ampgate.firmware_publish import PublicationRow, PublishSpec
from ampgate.load import (
    MaintenanceWindow,
    NodeRow,
    NodeSpec,
    PlacementRow,
    PlacementSpec,
    SiteRow,
    SiteSpec,
    SiteWindows,
)
from ampgate.logs import LogRow, LogSpec
from ampgate.monitoring import DeviceEventRow, MonitorRow
from ampgate.pricing import Cost, Tariff
from ampgate.profileupgrade.repository import UpgradeRow
from ampgate.profileupgrade.service import DEFAULT_RECONNECT_S
from ampgate.reservations import ReservationRow
from ampgate.roaming.billing_rows import Delivery
from ampgate.roaming.equipment import Equipment, EvseSpec
from ampgate.roaming.parties import Party
from ampgate.roaming.push import PartyStats
from ampgate.roaming.types import Evse
from ampgate.security import SecurityEventRow
from ampgate.smartcharging import ChargingLimitRow, ChargingNoteRow
from ampgate.store import (
    ApiTokenRow,
    ChargerRow,
    ConnectorStatusRow,
    IdTokenRow,
    Sample,
    SampleKey,
    TransactionRow,
)

# runtime_checkable: Litestar checks each injected dependency against its annotation with isinstance().


@runtime_checkable
class TokenRoles(Protocol):
    """API tokens (`ampgate.store.ApiTokenRepository`): the check on every request, and their management."""

    def role_for(self, token: str, /) -> str | None: ...
    async def add(
        self, role: str, label: str | None = None, expires_at: datetime | None = None
    ) -> tuple[ApiTokenRow, str]: ...
    def get(self, token_id: int, /) -> ApiTokenRow | None: ...
    def page(self, limit: int, after: int | None = None) -> list[ApiTokenRow]: ...
    async def revoke(self, token_id: int, /) -> ApiTokenRow: ...
    def now(self) -> datetime: ...


@runtime_checkable
class ChargerReads(Protocol):
    """The charger table (`ampgate.store.ChargerRepository`)."""

    def get(self, cp_id: str, /) -> ChargerRow | None: ...
    def page(
        self,
        limit: int,
        after: str | None = None,
        /,
        *,
        firmware: str | None = None,
        firmware_status: str | None = None,
    ) -> list[ChargerRow]: ...


class PresenceView(Protocol):
    """A charger's live link state (see `ampgate.connectivity.Presence`)."""

    @property
    def online(self) -> bool: ...
    @property
    def protocol(self) -> str | None: ...
    @property
    def connected_since(self) -> datetime | None: ...
    @property
    def last_seen(self) -> datetime | None: ...
    @property
    def security_profile(self) -> int: ...


@runtime_checkable
class PresenceLookup(Protocol):
    def get(self, charger_id: str, /) -> PresenceView | None: ...


@runtime_checkable
class ConnectorReads(Protocol):
    """Connector statuses (`ampgate.store.ConnectorStatusRepository`)."""

    def statuses(self, charger_id: str, /) -> list[ConnectorStatusRow]: ...


@runtime_checkable
class ChargerRegistrar(Protocol):
    """`ampgate.connectivity.ChargerRegistration`."""

    async def register(
        self, charger_id: str, password: str | None, /, *, keep_password: bool = False
    ) -> tuple[ChargerRow, bool]: ...
    async def set_security_profile(self, charger_id: str, profile: int, /) -> ChargerRow: ...


@runtime_checkable
class LocalListSender(Protocol):
    """`ampgate.ocpp.local_list.LocalLists`."""

    async def send(self, charger_id: str, update_type: str, version: int | None, /) -> dict[str, Any]: ...


@runtime_checkable
class IdTokenService(Protocol):
    """`ampgate.ocpp.id_tokens.IdTokens`."""

    async def create(
        self,
        id_token: str,
        /,
        *,
        status: str,
        type: str | None = None,
        expiry: datetime | None = None,
        group: str | None = None,
    ) -> IdTokenRow: ...
    async def update(self, id_token: str, changes: dict[str, Any], /) -> IdTokenRow: ...
    async def delete(self, id_token: str, /) -> None: ...
    def page(self, limit: int, after: str | None = None, /) -> list[IdTokenRow]: ...


@runtime_checkable
class TransactionReads(Protocol):
    """The transactions (`ampgate.store.TransactionRepository`)."""

    def get(self, tx_id: int, /) -> TransactionRow | None: ...
    def page(
        self,
        limit: int,
        /,
        *,
        before: int | None = None,
        charger_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[TransactionRow]: ...
    def sample_page(
        self, tx_id: int, limit: int, /, *, after: SampleKey | None = None, measurand: str | None = None
    ) -> list[Sample]: ...
    def last_samples(self, tx_ids: list[int], /) -> dict[int, list[Sample]]: ...


@runtime_checkable
class SecurityEventReads(Protocol):
    """Security events (`ampgate.security.SecurityEventRepository`)."""

    def page(
        self,
        limit: int,
        /,
        *,
        before: int | None = None,
        charger_id: str | None = None,
        critical: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[SecurityEventRow]: ...


@runtime_checkable
class DeviceModelService(Protocol):
    """`ampgate.devicemodel.DeviceModel`."""

    def page(
        self,
        charger_id: str,
        limit: int,
        /,
        *,
        component: str | None = None,
        variable: str | None = None,
        after: tuple[Any, ...] | None = None,
    ) -> list[VariableRow]: ...
    async def refresh(self, charger_id: str, /) -> dict[str, Any]: ...
    def capabilities_of(self, charger_id: str, /) -> Capabilities | None: ...


@runtime_checkable
class LogRequests(Protocol):
    """`ampgate.logs.LogService`."""

    async def request(self, charger_id: str, spec: LogSpec, /) -> LogRow: ...
    async def command(self, charger_id: str, action: str, payload: Any, /) -> Any: ...
    def get(self, log_id: int, /) -> LogRow | None: ...
    def page(self, charger_id: str, limit: int, before: int | None = None, /) -> list[LogRow]: ...


@runtime_checkable
class SmartChargingService(Protocol):
    """`ampgate.smartcharging.SmartCharging`."""

    def limits(self, charger_id: str, /) -> list[ChargingLimitRow]: ...
    def notes(
        self,
        charger_id: str,
        limit: int,
        /,
        *,
        kind: str | None,
        transaction_id: int | None,
        before: int | None,
    ) -> list[ChargingNoteRow]: ...
    def profiles(self, charger_id: str, /) -> tuple[datetime | None, list[dict[str, Any]]]: ...
    async def refresh_profiles(
        self, charger_id: str, criterion: dict[str, Any], evse_id: int | None, /
    ) -> int: ...


@runtime_checkable
class MonitoringService(Protocol):
    """`ampgate.monitoring.Monitoring`."""

    def monitors(self, charger_id: str, /) -> list[MonitorRow]: ...
    def events(
        self, charger_id: str, limit: int, /, *, monitor_id: int | None, before: int | None
    ) -> list[DeviceEventRow]: ...
    async def refresh(self, charger_id: str, criteria: list[str] | None, /) -> int: ...


@runtime_checkable
class ConnectivityReads(Protocol):
    """`ampgate.connectivity.view.ConnectivityView`."""

    def charger(self, charger_id: str, days: int, /) -> dict[str, Any]: ...
    def history(
        self, charger_id: str, limit: int, before: int | None, since: datetime | None, /
    ) -> list[HistoryRow]: ...
    def summary(self) -> dict[str, Any]: ...
    def matches(
        self,
        charger_id: str,
        /,
        *,
        online: bool | None = None,
        state: str | None = None,
        offline_since: datetime | None = None,
        flapping: bool | None = None,
    ) -> bool: ...


@runtime_checkable
class EventLogReads(Protocol):
    """`ampgate.eventlog.EventLog`."""

    def page(
        self,
        limit: int,
        /,
        *,
        before: int | None,
        types: list[str] | None,
        charger_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[EventRow]: ...
    def open_stream(
        self, types: Iterable[str] | None, charger_id: str | None, last_id: int | None, /
    ) -> tuple[Stream, list[Entry]]: ...
    def close_stream(self, stream: Stream, /) -> None: ...


@runtime_checkable
class IncidentReads(Protocol):
    """`ampgate.connectivity.incidents.IncidentRepository`."""

    def page(self, limit: int, before: int | None, state: str | None, /) -> list[IncidentRow]: ...
    def get(self, iid: int, /) -> IncidentRow | None: ...


@runtime_checkable
class CommandRecords(Protocol):
    """`ampgate.commands.CommandQueue`."""

    async def send(self, charger_id: str, action: str, payload: Any, /) -> tuple[str, Any]: ...
    async def enqueue(
        self, charger_id: str, action: str, payload: Any, /, *, ttl_s: float | None = None
    ) -> CommandRow: ...
    async def cancel(self, command_id: str, /) -> CommandRow: ...
    def get(self, command_id: str, /) -> CommandRow | None: ...
    def page(
        self, charger_id: str, limit: int, before: int | None, state: str | None, /
    ) -> list[CommandRow]: ...


@runtime_checkable
class ReservationService(Protocol):
    """`ampgate.reservations.Reservations`."""

    async def create(
        self,
        *,
        charger_id: str,
        expires_at: datetime,
        id_token: str,
        evse_id: int | None = None,
        connector_id: int | None = None,
        connector_type: str | None = None,
        id_token_type: str | None = None,
        group_id_token: str | None = None,
    ) -> ReservationRow: ...
    async def cancel(self, rid: int, /) -> ReservationRow: ...
    def get(self, rid: int, /) -> ReservationRow | None: ...
    def page(
        self,
        limit: int,
        /,
        *,
        before: int | None = None,
        charger_id: str | None = None,
        state: str | None = None,
    ) -> list[ReservationRow]: ...


@runtime_checkable
class DisplayMessageService(Protocol):
    """`ampgate.display.DisplayMessages`."""

    def get(self, charger_id: str, message_id: int, /) -> DisplayMessageRow | None: ...
    def page(self, charger_id: str, limit: int, after: int | None = None, /) -> list[DisplayMessageRow]: ...
    async def set(
        self, charger_id: str, msg: DisplayMessage, /, *, assign_id: bool = False
    ) -> DisplayMessageRow: ...
    async def clear(self, charger_id: str, message_id: int, /) -> None: ...
    async def refresh(self, charger_id: str, /) -> RefreshResult: ...


@runtime_checkable
class CustomerInformationRequests(Protocol):
    """`ampgate.customer.CustomerInformationService`."""

    def get(self, charger_id: str, request_id: int, /) -> CustomerInformation | None: ...
    def page(
        self, charger_id: str, limit: int, before: int | None = None, /
    ) -> list[CustomerInformation]: ...
    async def request(self, charger_id: str, spec: CustomerRequest, /) -> CustomerInformation: ...
    async def delete(self, charger_id: str, request_id: int, /) -> None: ...


@runtime_checkable
class FirmwarePublicationService(Protocol):
    """`ampgate.firmware_publish.FirmwarePublications`."""

    def get(self, charger_id: str, request_id: int, /) -> PublicationRow | None: ...
    def page(self, charger_id: str, limit: int, before: int | None = None, /) -> list[PublicationRow]: ...
    async def publish(self, charger_id: str, spec: PublishSpec, /) -> PublicationRow: ...
    async def unpublish(self, charger_id: str, request_id: int, /) -> PublicationRow: ...


@runtime_checkable
class SiteService(Protocol):
    """`ampgate.load.Sites`."""

    async def create_site(self, spec: SiteSpec, /) -> SiteRow: ...
    async def update_site(self, site_id: str, changes: dict[str, Any], /) -> SiteRow: ...
    async def delete_site(self, site_id: str, /) -> None: ...
    def get_site(self, site_id: str, /) -> SiteRow | None: ...
    def page_sites(self, limit: int, after: str | None = None, /) -> list[SiteRow]: ...
    async def create_node(self, site_id: str, spec: NodeSpec, /) -> NodeRow: ...
    async def update_node(self, site_id: str, node_id: str, changes: dict[str, Any], /) -> NodeRow: ...
    async def delete_node(self, site_id: str, node_id: str, /) -> None: ...
    def get_node(self, site_id: str, node_id: str, /) -> NodeRow | None: ...
    def page_nodes(
        self, site_id: str, limit: int, after: str | None = None, /, *, parent_id: str | None = None
    ) -> list[NodeRow]: ...
    async def place(self, charger_id: str, spec: PlacementSpec, /) -> PlacementRow: ...
    async def unplace(self, charger_id: str, /) -> None: ...
    def placement(self, charger_id: str, /) -> PlacementRow | None: ...
    def page_placements(
        self, site_id: str, limit: int, after: str | None = None, /, *, node_id: str | None = None
    ) -> list[PlacementRow]: ...
    async def set_maintenance_windows(
        self, site_id: str, windows: list[MaintenanceWindow], /
    ) -> SiteWindows: ...
    def maintenance_windows(self, site_id: str, /) -> SiteWindows: ...
    def now(self) -> datetime: ...


@runtime_checkable
class FirmwareImageService(Protocol):
    """`ampgate.firmware_images.FirmwareImages`."""

    @property
    def max_bytes(self) -> int: ...
    async def create(self, spec: ImageSpec, /) -> ImageRow: ...
    def begin_upload(self) -> ImageUpload: ...
    async def create_uploaded(
        self, spec: ImageSpec, upload: ImageUpload, original_name: str | None, /
    ) -> ImageRow: ...
    def get(self, image_id: int, /) -> ImageRow | None: ...
    def page(
        self, limit: int, before: int | None = None, version: str | None = None, /
    ) -> list[ImageRow]: ...
    def location(self, row: ImageRow, /) -> str: ...
    async def delete(self, image_id: int, /) -> ImageRow: ...


@runtime_checkable
class ChargerTags(Protocol):
    """`ampgate.fleet.Fleet`."""

    def tags(self, charger_id: str, /) -> tuple[str, ...]: ...
    async def set_tags(self, charger_id: str, tags: list[str], /) -> tuple[str, ...]: ...


@runtime_checkable
class AvailabilityReads(Protocol):
    """`ampgate.availability.Availability`."""

    def availability(self, site_id: str, /) -> SiteAvailability: ...
    def occupancy(
        self, site_id: str, since: datetime | None, until: datetime | None, step_s: int, /
    ) -> list[OccupancyRow]: ...


@runtime_checkable
class DemandResponseService(Protocol):
    """`ampgate.demand.DemandResponse`."""

    async def create(self, spec: DemandEventSpec, /) -> DemandEventRow: ...
    async def cancel(self, event_id: int, /) -> DemandEventRow: ...
    def get(self, event_id: int, /) -> DemandEventRow | None: ...
    def page(
        self, limit: int, before: int | None = None, source: str | None = None, /
    ) -> list[DemandEventRow]: ...
    def points(
        self, event_id: int, limit: int, after: str | None = None, /
    ) -> list[tuple[datetime, str, float, float | None]]: ...
    def targets(self, event_id: int, /) -> dict[str, float]: ...
    def now(self) -> datetime: ...


@runtime_checkable
class LoadView(Protocol):
    """`ampgate.loadctl.LoadTicker`."""

    def site_load(self, site_id: str, /) -> dict[str, Any] | None: ...
    def history(
        self, site_id: str, since: datetime, until: datetime, step_s: int, /
    ) -> list[dict[str, Any]]: ...
    def now(self) -> datetime: ...


@runtime_checkable
class HealthReport(Protocol):
    """`ampgate.health.NodeHealth`."""

    def report(self) -> dict[str, Any]: ...


@runtime_checkable
class OpenAdrStatus(Protocol):
    """`ampgate.openadr.OpenAdrVen`."""

    def status(self) -> dict[str, Any]: ...


class OpenAdrNotConfigured:
    """The node runs no VEN (no --openadr-vtn)."""

    def status(self) -> dict[str, Any]:
        return {"configured": False}


@runtime_checkable
class EquipmentReads(Protocol):
    """`ampgate.roaming.EquipmentService`."""

    def get(self, charger_id: str, /) -> Equipment | None: ...
    async def describe(self, charger_id: str, evses: list[EvseSpec], /) -> Equipment | None: ...


@runtime_checkable
class PublishedEvses(Protocol):
    """`ampgate.roaming.Roaming` (or `NotPublished` without OCPI)."""

    def published_evses(self, charger_id: str, /) -> list[tuple[str, Evse]] | None: ...


class NoEquipment:
    """Charger descriptions where none are kept (API tests that do not use them)."""

    def get(self, charger_id: str, /) -> Equipment | None:
        return None

    async def describe(self, charger_id: str, evses: list[EvseSpec], /) -> Equipment | None:
        raise ConflictError("this node keeps no charger descriptions", code="not_supported")


class NotPublished:
    """No OCPI: nothing is published."""

    def published_evses(self, charger_id: str, /) -> list[tuple[str, Evse]] | None:
        return None


@runtime_checkable
class OcpiParties(Protocol):
    """`ampgate.roaming.Roaming`."""

    @property
    def versions_url(self) -> str: ...
    async def create(
        self, country_code: str, party_id: str, role: str, name: str | None, /
    ) -> tuple[Party, str]: ...
    def get(self, ref: int, /) -> Party | None: ...
    def page(self, limit: int, after: int | None = None, /) -> list[Party]: ...
    async def delete(self, ref: int, /) -> None: ...
    async def register_with(self, ref: int, versions_url: str, token: str, /) -> Party: ...
    def push_stats(self, ref: int, /) -> PartyStats | None: ...


def _not_configured() -> ConflictError:
    return ConflictError(
        "OCPI is not configured: start the node with --ocpi-country-code and --ocpi-party-id",
        code="ocpi_not_configured",
    )


class OcpiNotConfigured:
    """The node has no OCPI identity: every route is 409."""

    versions_url = ""

    async def create(
        self, country_code: str, party_id: str, role: str, name: str | None, /
    ) -> tuple[Party, str]:
        raise _not_configured()

    def get(self, ref: int, /) -> Party | None:
        raise _not_configured()

    def page(self, limit: int, after: int | None = None, /) -> list[Party]:
        raise _not_configured()

    async def delete(self, ref: int, /) -> None:
        raise _not_configured()

    async def register_with(self, ref: int, versions_url: str, token: str, /) -> Party:
        raise _not_configured()

    def push_stats(self, ref: int, /) -> PartyStats | None:
        raise _not_configured()


@runtime_checkable
class CostDisplaySettings(Protocol):
    """`ampgate.costdisplay.CostDisplay`: which cost display each charger gets."""

    def view(self, charger_id: str, /) -> CostDisplayView: ...
    async def set(self, charger_id: str, mode: Mode | None, /) -> CostDisplayView: ...


class NoCostDisplay:
    """A node that shows chargers no cost (API tests that do not use it)."""

    def view(self, charger_id: str, /) -> CostDisplayView:
        raise ConflictError("this node shows chargers no cost", code="not_supported")

    async def set(self, charger_id: str, mode: Mode | None, /) -> CostDisplayView:
        raise ConflictError("this node shows chargers no cost", code="not_supported")


@runtime_checkable
class ChargerCertificateService(Protocol):
    """`ampgate.certauthority.ChargerCertificates`: a charger's certificates, and asking it to renew."""

    def listing(self, charger_id: str, /) -> list[CertificateView]: ...
    async def renew(self, charger_id: str, /) -> RenewalResult: ...


class NoCertificates:
    """A node that keeps no certificates (API tests that do not use them)."""

    def listing(self, charger_id: str, /) -> list[CertificateView]:
        return []

    async def renew(self, charger_id: str, /) -> RenewalResult:
        raise ConflictError("no certificate authority is configured", code="charger_ca_not_configured")


@runtime_checkable
class ProfileUpgradeService(Protocol):
    """`ampgate.profileupgrade.ProfileUpgrades`."""

    async def start(
        self,
        charger_id: str,
        security_profile: int,
        /,
        *,
        csms_url: str | None = None,
        configuration_slot: int = 1,
        reconnect_s: float = DEFAULT_RECONNECT_S,
    ) -> UpgradeRow: ...
    async def cancel(self, charger_id: str, upgrade_id: int, /) -> UpgradeRow: ...
    def get(self, charger_id: str, upgrade_id: int, /) -> UpgradeRow: ...
    def page(self, charger_id: str, limit: int, before: int | None, /) -> list[UpgradeRow]: ...


class NoProfileUpgrades:
    """A node without the upgrade service (API tests that do not use it)."""

    async def start(self, charger_id: str, security_profile: int, /, **_: object) -> UpgradeRow:
        raise ConflictError("this node upgrades no security profiles", code="not_supported")

    async def cancel(self, charger_id: str, upgrade_id: int, /) -> UpgradeRow:
        raise ConflictError("this node upgrades no security profiles", code="not_supported")

    def get(self, charger_id: str, upgrade_id: int, /) -> UpgradeRow:
        raise ConflictError("this node upgrades no security profiles", code="not_supported")

    def page(self, charger_id: str, limit: int, before: int | None, /) -> list[UpgradeRow]:
        return []


@runtime_checkable
class TariffService(Protocol):
    """`ampgate.billing.Tariffs`."""

    def get(self, tariff_id: str, /) -> TariffRow | None: ...
    def page(self, limit: int, after: str | None = None, /) -> list[TariffRow]: ...
    async def create(self, tariff: Tariff, /) -> TariffRow: ...
    async def replace(self, tariff: Tariff, /) -> TariffRow: ...
    async def delete(self, tariff_id: str, /) -> None: ...
    def assignment(self, scope: Scope, subject: str | None = None, /) -> Assignment: ...
    async def assign(self, scope: Scope, subject: str | None, tariff_id: str | None, /) -> Assignment: ...


@runtime_checkable
class SessionCostReads(Protocol):
    """`ampgate.billing.BillingSessions`: a transaction's cost."""

    def running_cost(self, transaction_id: int, /) -> Cost | None: ...


@runtime_checkable
class CdrService(Protocol):
    """`ampgate.billing.Cdrs`."""

    def get(self, cdr_id: int, /) -> Cdr | None: ...
    def credit_of(self, cdr_id: int, /) -> Cdr | None: ...
    def page(
        self,
        limit: int,
        /,
        *,
        before: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        charger_id: str | None = None,
        site_id: str | None = None,
    ) -> list[Cdr]: ...
    async def credit(self, cdr_id: int, /) -> Cdr: ...
    def usage(
        self, site_id: str, since: datetime | None, until: datetime | None, step_s: int, /
    ) -> UsageReport: ...


@runtime_checkable
class PriceSignalService(Protocol):
    """`ampgate.billing.PriceSignals`."""

    def get(self, site_id: str, /) -> SiteSignals: ...
    async def replace(self, site_id: str, windows: list[SignalWindow], /) -> SiteSignals: ...


@runtime_checkable
class CdrDeliveries(Protocol):
    """`ampgate.roaming.cdr_delivery.CdrDelivery`."""

    def get(self, ref: int, /) -> Delivery | None: ...
    def page(
        self,
        limit: int,
        after: int | None = None,
        /,
        *,
        state: str | None = None,
        party_id: str | None = None,
    ) -> list[Delivery]: ...
    async def retry(self, ref: int, /) -> Delivery: ...


class CdrDeliveriesNotConfigured:
    """The node has no OCPI identity: nothing is delivered, every route is 409."""

    def get(self, ref: int, /) -> Delivery | None:
        raise _not_configured()

    def page(
        self,
        limit: int,
        after: int | None = None,
        /,
        *,
        state: str | None = None,
        party_id: str | None = None,
    ) -> list[Delivery]:
        raise _not_configured()

    async def retry(self, ref: int, /) -> Delivery:
        raise _not_configured()


@dataclass(frozen=True)
class ApiServices:
    """Everything the operator API uses, each a narrow interface; the node builds it."""

    api_tokens: TokenRoles
    chargers: ChargerReads
    presence: PresenceLookup
    connectors: ConnectorReads
    registration: ChargerRegistrar
    commands: CommandRecords
    connectivity: ConnectivityReads
    incidents: IncidentReads
    events: EventLogReads
    local_lists: LocalListSender
    id_tokens: IdTokenService
    transactions: TransactionReads
    security_events: SecurityEventReads
    device_model: DeviceModelService
    smart_charging: SmartChargingService
    monitoring: MonitoringService
    logs: LogRequests
    reservations: ReservationService
    display_messages: DisplayMessageService
    customer_information: CustomerInformationRequests
    firmware_publications: FirmwarePublicationService
    sites: SiteService
    availability: AvailabilityReads
    demand_response: DemandResponseService
    load: LoadView
    firmware_images: FirmwareImageService
    fleet: ChargerTags
    health: HealthReport
    campaigns: CampaignService
    tariffs: TariffService
    costs: SessionCostReads
    cdrs: CdrService
    price_signals: PriceSignalService
    openadr: OpenAdrStatus = field(default_factory=OpenAdrNotConfigured)
    equipment: EquipmentReads = field(default_factory=NoEquipment)
    ocpi: OcpiParties = field(default_factory=OcpiNotConfigured)
    cdr_deliveries: CdrDeliveries = field(default_factory=CdrDeliveriesNotConfigured)
    published: PublishedEvses = field(default_factory=NotPublished)
    cost_display: CostDisplaySettings = field(default_factory=NoCostDisplay)
    certificates: ChargerCertificateService = field(default_factory=NoCertificates)
    profile_upgrades: ProfileUpgradeService = field(default_factory=NoProfileUpgrades)
