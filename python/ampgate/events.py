"""The events published on the bus (`ampgate.bus`): typed, frozen msgspec Structs, one per kind of change.

Every event has `type` (dotted, the Struct's tag: `charger.connected`), `at` (when the node saw the change) and
`charger_id` when it concerns one charger; the other fields are its payload. A feature adds its own events by
subclassing `Event` with a tag of its own (`campaign.paused`); the names follow shared/API-CONVENTIONS.md.
Encoded with msgspec (`msgspec.json.encode(ev)`) an event carries its `type`; `msgspec.json.decode(data,
type=AnyEvent)` gives it back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from ampgate.store.transactions import Sample

__all__ = [
    "CampaignChanged",
    "CampaignChargerChanged",
    "CampaignGroupChanged",
    "CapacityNodeCreated",
    "CapacityNodeDeleted",
    "CapacityNodeUpdated",
    "CdrCreated",
    "CertificateExpiring",
    "CertificateIssued",
    "CertificateRenewalRequested",
    "CertificateRequested",
    "CertificateSigningFailed",
    "ChargerAlert",
    "ChargerBooted",
    "ChargerConnected",
    "ChargerConnectorsChanged",
    "ChargerDisconnected",
    "ChargerFlapping",
    "ChargerPlaced",
    "ChargerStale",
    "ChargerTagsChanged",
    "ChargerUnplaced",
    "ChargingLimitCleared",
    "ChargingLimitSet",
    "CommandAnswered",
    "CommandCancelled",
    "CommandExpired",
    "CommandFailed",
    "CommandQueued",
    "CommandSent",
    "ConnectorStatusChanged",
    "CostDisplayChanged",
    "CustomerInformationDeleted",
    "CustomerInformationReceived",
    "CustomerInformationRequested",
    "DeviceEventReported",
    "DisplayMessageCleared",
    "DisplayMessageSet",
    "DisplayMessagesRefreshed",
    "EvChargingNeedsReported",
    "EvChargingScheduleReported",
    "Event",
    "FirmwareImageCreated",
    "FirmwareImageDeleted",
    "FirmwarePublicationStatus",
    "FirmwareStatusReported",
    "GatewayWorkerDown",
    "IncidentEnded",
    "IncidentOpened",
    "InstalledCertificatesChanged",
    "LogStatusReported",
    "LogUploaded",
    "OcpiCdrDelivered",
    "OcpiCommandFinished",
    "OcpiPartyCreated",
    "OcpiPartyDeleted",
    "OcpiPartyRegistered",
    "OcpiPartyUnregistered",
    "OcpiPushFailing",
    "OcpiTokenAuthorized",
    "OpenAdrEventRejected",
    "OpenAdrSafeMode",
    "ReservationCreated",
    "ReservationEnded",
    "SecurityAlert",
    "SecurityEventReported",
    "SecurityProfileUpgradeChanged",
    "SiteAvailabilityChanged",
    "SiteCreated",
    "SiteDeleted",
    "SiteMaintenanceWindowsChanged",
    "SitePriceSignalsChanged",
    "SiteUpdated",
    "StoreDegraded",
    "StoreRecovered",
    "TariffAssigned",
    "TariffChanged",
    "TransactionEnded",
    "TransactionStarted",
    "TransactionUpdated",
    "event_type",
]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Base of every event. Not tracked by the garbage collector (`gc=False`): an event refers to no other
    event, so it can be in no cycle, and a boot storm's thousands of short-lived events then add nothing to the
    collector's passes over the node's 100k+ long-lived objects."""

    at: datetime
    charger_id: str | None = None


_TYPES: dict[type, str] = {}


def event_type(event: Event) -> str:
    """The `type` of `event`, e.g. "charger.connected"."""
    cls = type(event)
    name = _TYPES.get(cls)
    if name is None:
        tag = cls.__struct_config__.tag
        assert isinstance(tag, str), f"{cls.__name__} has no event type"
        name = _TYPES[cls] = tag
    return name


# -- the node's own store ------------------------------------------------------------------------------------------


class StoreDegraded(Event, frozen=True, kw_only=True, tag="store.degraded"):
    """The store cannot write: `reason` "locked" (another process holds the database's write lock past the busy
    timeout), "full" (the disk or the database is full) or "io_error"; `detail` is SQLite's message. Writes wait
    and are retried (nothing acknowledged is lost, nothing waiting for a commit is acknowledged meanwhile); what
    needs no write is still served. Published again if the reason changes."""

    reason: str
    detail: str | None = None


class StoreRecovered(Event, frozen=True, kw_only=True, tag="store.recovered"):
    """The store writes again after being degraded for `reason` since `since`; the writes that waited commit."""

    reason: str
    since: datetime | None = None


# -- connectivity -------------------------------------------------------------------------------------------------


class ChargerConnected(Event, frozen=True, kw_only=True, tag="charger.connected"):
    """A charger's WebSocket is open and authenticated. `worker_at` is the gateway worker's monotonic clock
    (CLOCK_MONOTONIC seconds, comparable with `time.monotonic()` on this host) when the handshake completed."""

    conn_id: int
    protocol: str
    remote_address: str
    worker_at: float | None = None
    # The OCPP security profile the connection gave: 1 plain ws with Basic auth, 2 TLS with Basic auth, 3 TLS
    # with a client certificate.
    security_profile: int = 1


class ChargerDisconnected(Event, frozen=True, kw_only=True, tag="charger.disconnected"):
    """A charger's connection is gone: `code` and `reason` as the worker reported them (the charger's close
    code and reason, 1006 "connection lost", a ping timeout), or as the node decided them ("replaced by a newer
    connection of this charger", "gateway worker exited"). `worker_at` is the worker's monotonic time of the
    disconnect (None when the node decided it)."""

    conn_id: int
    code: int
    reason: str
    worker_at: float | None = None


class ChargerStale(Event, frozen=True, kw_only=True, tag="charger.stale"):
    """A connected charger went silent past its heartbeat interval × the grace factor (`stale` True, `reason`
    "heartbeat timeout"), or spoke again (`stale` False, "message received"). Its link may still pass pings."""

    stale: bool
    reason: str
    last_message_at: datetime | None


class ChargerAlert(Event, frozen=True, kw_only=True, tag="charger.alert"):
    """An alert about one charger: `kind` "offline" (offline longer than the node's limit; not raised for a
    flapping charger, nor for one that went down in an outage incident), `severity`, `raised` True when it
    starts and False when it clears (the charger is back), `since` when the condition began."""

    kind: str
    severity: str
    raised: bool
    since: datetime | None


class IncidentOpened(Event, frozen=True, kw_only=True, tag="incident.opened"):
    """An outage: more than the node's share of the fleet, or of one site's chargers (`scope` "fleet" or
    "site:<id>"), disconnected within a minute (`disconnects` of `fleet`, the chargers in the scope). One
    incident, not an alert per charger."""

    incident_id: int
    kind: str
    scope: str
    severity: str
    disconnects: int
    fleet: int


class IncidentEnded(Event, frozen=True, kw_only=True, tag="incident.ended"):
    """The outage ended (a whole quiet window): `disconnects` is the most within a window while it lasted."""

    incident_id: int
    kind: str
    scope: str
    started_at: datetime
    disconnects: int


class ChargerFlapping(Event, frozen=True, kw_only=True, tag="charger.flapping"):
    """A charger started flapping (`flapping` True: more than the node's limit of disconnects within its window;
    `drops` of them) or stopped (False: connected for the clearing period without a drop)."""

    flapping: bool
    drops: int


# -- OCPP -----------------------------------------------------------------------------------------------------


class ChargerBooted(Event, frozen=True, kw_only=True, tag="charger.booted"):
    """A BootNotification and the node's answer to it (`boot_status`: Accepted, Pending or Rejected). `spread`:
    Pending only to spread a boot storm (the policy accepts the charger; it is asked to boot again soon)."""

    protocol: str
    vendor: str | None
    model: str | None
    serial: str | None
    firmware_version: str | None
    boot_status: str
    spread: bool = False


class ConnectorStatusChanged(Event, frozen=True, kw_only=True, tag="connector.status"):
    """A connector reported a status other than its last one (`old_status` None: the first the node heard
    since it started). `evse_id` is None for 1.6. `reported_at` is the charger's timestamp."""

    evse_id: int | None
    connector_id: int
    old_status: str | None
    status: str
    error_code: str | None
    reported_at: datetime


class TransactionStarted(Event, frozen=True, kw_only=True, tag="transaction.started"):
    """A transaction was recorded (committed). `transaction_id` is the node's id, `remote_id` the charger's
    (2.0.1; for 1.6 the node's id as text)."""

    transaction_id: int
    remote_id: str
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    started_at: datetime
    meter_start_wh: float | None


class TransactionUpdated(Event, frozen=True, kw_only=True, tag="transaction.updated"):
    """New meter samples of a running transaction were recorded: the latest ones, normalised (Wh, W, A per
    phase, Percent)."""

    transaction_id: int
    remote_id: str
    samples: list[Sample]


class TransactionEnded(Event, frozen=True, kw_only=True, tag="transaction.ended"):
    """A transaction's end was recorded, with its energy (stop, or last, register reading minus start)."""

    transaction_id: int
    remote_id: str
    stopped_at: datetime
    stop_reason: str | None
    meter_stop_wh: float | None
    energy_wh: float | None


class FirmwareStatusReported(Event, frozen=True, kw_only=True, tag="firmware.status"):
    """A FirmwareStatusNotification (1.6 signed: SignedFirmwareStatusNotification) as the charger sent it.
    `signed`: it came as the 1.6 SignedFirmwareStatusNotification (a 1.6 FirmwareStatusNotification carries no
    request id, so a campaign matches it to the one unsigned update in flight, never to a signed one)."""

    status: str
    request_id: int | None
    signed: bool = False


# -- security -----------------------------------------------------------------------------------------------------


class SecurityEventReported(Event, frozen=True, kw_only=True, tag="security.event"):
    """A SecurityEventNotification, stored as `id`; `critical` when the spec lists its type as critical."""

    id: int
    event_type: str
    occurred_at: datetime
    tech_info: str | None
    critical: bool


class SecurityAlert(Event, frozen=True, kw_only=True, tag="security.alert"):
    """A security event of a type the spec marks critical (tampering, an invalid certificate or firmware
    signature, a maintenance login, ...): raised for whoever alerts operators, after its `security.event`."""

    id: int
    event_type: str
    occurred_at: datetime
    tech_info: str | None


class CertificateRequested(Event, frozen=True, kw_only=True, tag="certificate.requested"):
    """A charger's SignCertificate, Get15118EVCertificate or GetCertificateStatus and the answer it got
    (`reason_code` the statusInfo reasonCode, when one was given)."""

    action: str
    certificate_type: str | None
    status: str
    reason_code: str | None


class CertificateIssued(Event, frozen=True, kw_only=True, tag="certificate.issued"):
    """The node signed a charger's certificate (`serial` in hex) and sent it with CertificateSigned:
    `delivery` is the charger's answer (Accepted, Rejected) or "failed" (`error` says why: offline, a CALLERROR,
    no answer)."""

    serial: str
    certificate_type: str
    not_after: datetime
    fingerprint_sha256: str
    delivery: str
    error: str | None = None


class CertificateSigningFailed(Event, frozen=True, kw_only=True, tag="certificate.signing_failed"):
    """A charger's accepted CSR could not be signed: the operator's signer failed or printed no usable chain,
    or the node's CA has expired (`reason`). The charger got no certificate and keeps its old one."""

    certificate_type: str
    reason: str


class CertificateExpiring(Event, frozen=True, kw_only=True, tag="certificate.expiring"):
    """A charger's certificate ends within the warning lead time (`--charger-cert-warn-days`), announced once
    per certificate: `kind` "issued" (its own, from the node's CA; renewal follows when automatic) or
    "installed" (one we installed on it, e.g. a root)."""

    kind: str
    certificate_type: str
    serial_number: str
    not_after: datetime


class SecurityProfileUpgradeChanged(Event, frozen=True, kw_only=True, tag="charger.security_profile_upgrade"):
    """An upgrade of a charger's OCPP security profile moved (ampgate.profileupgrade): `state` configuring →
    awaiting_reconnect → completed, or failed (`reason`: refused, command_failed, timed_out, fell_back,
    node_restarted) or cancelled; `step` is the command under way; `fallbacks` counts reconnects with a lower
    profile while it waited. On completed, the charger's lowest allowed profile is `to_profile`."""

    upgrade_id: int
    state: str
    from_profile: int
    to_profile: int
    step: str | None = None
    reason: str | None = None
    detail: str | None = None
    fallbacks: int = 0


class CertificateRenewalRequested(Event, frozen=True, kw_only=True, tag="certificate.renewal_requested"):
    """The node asked a charger to renew its certificate (2.0.1 TriggerMessage SignChargingStationCertificate,
    1.6 ExtendedTriggerMessage SignChargePointCertificate): `status` is its answer; `automatic` when the expiry
    check asked rather than an admin."""

    action: str
    status: str | None
    automatic: bool


class InstalledCertificatesChanged(Event, frozen=True, kw_only=True, tag="certificate.installed_changed"):
    """What the node knows a charger has installed changed after `action` (InstallCertificate,
    DeleteCertificate, GetInstalledCertificateIds) was answered with `status`; `count` is how many it now
    holds as far as the node knows."""

    action: str
    status: str | None
    count: int


class LogStatusReported(Event, frozen=True, kw_only=True, tag="log.status"):
    """A log request's status changed (see `ampgate.logs.state`): the node made it (Requested), the charger
    answered it (Accepted, Rejected, AcceptedCanceled) or the call failed (Failed, TimedOut), the charger
    reported on it (LogStatusNotification, 1.6 DiagnosticsStatusNotification) or a newer request cancelled it
    (Canceled). `log_id` is None for a notification that belongs to no request the node knows (e.g. Idle).
    `command` is GetLog or GetDiagnostics; `request_id` the id the charger knows."""

    log_id: int | None
    command: str
    request_id: int | None
    status: str


class LogUploaded(Event, frozen=True, kw_only=True, tag="log.uploaded"):
    """The file of log request `log_id` was received on the public surface and stored: `size` bytes with SHA-256
    `sha256` (hex); `file_name` as the charger named it (multipart filename or URL), if it did."""

    log_id: int
    size: int
    sha256: str
    file_name: str | None


# -- smart charging -----------------------------------------------------------------------------------------------


class ChargingLimitSet(Event, frozen=True, kw_only=True, tag="charging_limit.set"):
    """A limit set on the charger by another source (NotifyChargingLimit: EMS, SO, CSO, Other); `evse_id` None
    for the whole charger; `schedules` how many charging schedules came with it."""

    evse_id: int | None
    source: str
    grid_critical: bool | None
    schedules: int


class ChargingLimitCleared(Event, frozen=True, kw_only=True, tag="charging_limit.cleared"):
    evse_id: int | None
    source: str


class EvChargingNeedsReported(Event, frozen=True, kw_only=True, tag="ev_charging_needs.reported"):
    """An EV's charging needs (ISO 15118 via NotifyEVChargingNeeds), with the node's transaction on that EVSE."""

    evse_id: int
    transaction_id: int | None
    requested_energy_transfer: str
    departure_time: datetime | None
    energy_amount_wh: float | None


class EvChargingScheduleReported(Event, frozen=True, kw_only=True, tag="ev_charging_schedule.reported"):
    evse_id: int
    transaction_id: int | None
    periods: int


# -- monitoring ---------------------------------------------------------------------------------------------------


class DeviceEventReported(Event, frozen=True, kw_only=True, tag="device_event.reported"):
    """One event of a NotifyEvent; `monitor_id` the monitor that raised it (None: a hard-wired or periodic
    report); `occurred_at` the charger's time."""

    event_id: int
    occurred_at: datetime
    trigger: str
    monitor_id: int | None
    component: str
    variable: str
    actual_value: str
    cleared: bool | None


# -- reservations -------------------------------------------------------------------------------------------------


class ReservationCreated(Event, frozen=True, kw_only=True, tag="reservation.created"):
    """The charger accepted a reservation (ReserveNow answered Accepted). `evse_id` (2.0.1) or `connector_id`
    (1.6) is the place reserved; neither: any connector of the charger."""

    reservation_id: int
    evse_id: int | None
    connector_id: int | None
    id_token: str
    group_id_token: str | None
    expires_at: datetime


class ReservationEnded(Event, frozen=True, kw_only=True, tag="reservation.ended"):
    """An active reservation ended: `reason` is expired (its time passed, by the node's clock or the charger's
    ReservationStatusUpdate), cancelled (CancelReservation), used (a transaction started with it) or removed
    (the charger's ReservationStatusUpdate Removed)."""

    reservation_id: int
    reason: str


# -- display messages, customer information, firmware publishing (2.0.1) -----------------------------------------


class DisplayMessageSet(Event, frozen=True, kw_only=True, tag="display_message.set"):
    """The charger accepted a SetDisplayMessage: message `message_id` (new, or replacing one of that id) is in
    the node's view. The text is not repeated here: read it from the API."""

    message_id: int
    priority: str


class DisplayMessageCleared(Event, frozen=True, kw_only=True, tag="display_message.cleared"):
    """A ClearDisplayMessage was answered: `status` Accepted, or Unknown (the charger did not have the message);
    either way the node's view no longer has it."""

    message_id: int
    status: str


class DisplayMessagesRefreshed(Event, frozen=True, kw_only=True, tag="display_message.refreshed"):
    """The node's view of a charger's messages was replaced by what it listed for GetDisplayMessages
    `request_id` (`status` Unknown: it has none): `messages` is how many it shows now."""

    request_id: int
    status: str
    messages: int


class CustomerInformationRequested(Event, frozen=True, kw_only=True, tag="customer_information.requested"):
    """A CustomerInformation request was answered (`status` Accepted, Rejected, Invalid) or failed (Failed,
    TimedOut). Who it was about is personal data and is not in the event: read it from the API (operator)."""

    request_id: int
    report: bool
    clear: bool
    status: str


class CustomerInformationReceived(Event, frozen=True, kw_only=True, tag="customer_information.received"):
    """Every NotifyCustomerInformation part of `request_id` is in: `parts` messages, `size` characters of text
    (the text itself is personal data: read it from the API)."""

    request_id: int
    parts: int
    size: int


class CustomerInformationDeleted(Event, frozen=True, kw_only=True, tag="customer_information.deleted"):
    """An admin deleted what the node kept of customer-information request `request_id` (its report too)."""

    request_id: int


class FirmwarePublicationStatus(Event, frozen=True, kw_only=True, tag="firmware_publication.status"):
    """A firmware publication's status changed: the node sent it (Requested), the local controller answered
    (Accepted, Rejected) or the call failed (Failed, TimedOut), it reported with
    PublishFirmwareStatusNotification (Downloading, Downloaded, Published with `locations`, ...) or answered an
    UnpublishFirmware (Unpublished, NoFirmware). `publication_id` is None for a notification that belongs to no
    publication the node knows (an Idle without a request id, or another system's request)."""

    publication_id: int | None
    request_id: int | None
    status: str
    locations: tuple[str, ...] | None = None


# -- commands -----------------------------------------------------------------------------------------------------


class CommandSent(Event, frozen=True, kw_only=True, tag="command.sent"):
    """A CALL went on the wire to the charger (`unique_id` is its OCPP message id)."""

    unique_id: str
    action: str


class CommandAnswered(Event, frozen=True, kw_only=True, tag="command.answered"):
    """The charger answered a CALL with a valid CALLRESULT; `status` is the reply's `status` field, if any.
    `command_id` names the command record (`GET /api/v1/commands/{command_id}`) when it has one."""

    unique_id: str
    action: str
    status: str | None
    command_id: str | None = None


class CommandFailed(Event, frozen=True, kw_only=True, tag="command.failed"):
    """A command that was queued failed: `code` is the API error code (charger_error, invalid_response,
    charger_timeout), `ocpp_code` the charger's CALLERROR code when it sent one. `unique_id` is the OCPP message
    id it had (or would have had, when it timed out before going on the wire)."""

    unique_id: str
    action: str
    code: str
    message: str
    ocpp_code: str | None = None
    command_id: str | None = None


class CommandQueued(Event, frozen=True, kw_only=True, tag="command.queued"):
    """A command was queued for its charger (delivered, in order, once the charger is online and accepted)."""

    command_id: str
    action: str
    expires_at: datetime


class CommandExpired(Event, frozen=True, kw_only=True, tag="command.expired"):
    """A queued command's time to live passed before its charger could take it: it is never sent."""

    command_id: str
    action: str


class CommandCancelled(Event, frozen=True, kw_only=True, tag="command.cancelled"):
    """A queued command was cancelled: `reason` is "cancelled" (an operator) or "superseded" (a newer command of
    the same kind for the same target, `superseded_by`)."""

    command_id: str
    action: str
    reason: str
    superseded_by: str | None = None


# -- firmware campaigns ------------------------------------------------------------------------------------------


class CampaignChanged(Event, frozen=True, kw_only=True, tag="campaign.state"):
    """A firmware campaign changed state (`state`: draft, scheduled, running, paused, finished, cancelled) by
    `verb` (start, pause, resume, cancel, retry-failed; None when the campaign decided it: its error condition,
    a group below its success threshold, the last group done), with `reason` (the pause reason)."""

    campaign_id: int
    state: str
    verb: str | None
    reason: str | None


class CampaignGroupChanged(Event, frozen=True, kw_only=True, tag="campaign.group"):
    """A campaign's group started or finished (`state` running or finished), with its counts per state."""

    campaign_id: int
    group_index: int
    state: str
    counts: dict[str, int]


class CampaignChargerChanged(Event, frozen=True, kw_only=True, tag="campaign.charger"):
    """A charger's update in a campaign moved to `state` (dispatched, downloading, …, installed, failed, …)."""

    campaign_id: int
    group_index: int
    state: str
    reason: str | None
    request_id: int | None


# -- site topology (load management) ------------------------------------------------------------------------------


class SiteCreated(Event, frozen=True, kw_only=True, tag="site.created"):
    """An admin created site `site_id` (the root of a capacity tree: its grid connection)."""

    site_id: str
    name: str | None


class SiteUpdated(Event, frozen=True, kw_only=True, tag="site.updated"):
    """Site `site_id` changed: `changed` names the fields that took a new value (e.g. phase_limits_a)."""

    site_id: str
    changed: tuple[str, ...]


class SiteDeleted(Event, frozen=True, kw_only=True, tag="site.deleted"):
    """Site `site_id` was deleted (it had no nodes and no chargers left)."""

    site_id: str


class CapacityNodeCreated(Event, frozen=True, kw_only=True, tag="capacity_node.created"):
    """Capacity node `node_id` was added to site `site_id` under `parent_id` (the site's id: directly under
    it)."""

    site_id: str
    node_id: str
    parent_id: str


class CapacityNodeUpdated(Event, frozen=True, kw_only=True, tag="capacity_node.updated"):
    """Capacity node `node_id` changed (`changed`: the fields; `parent_id` in it: it moved, with everything
    under it, to `parent_id`)."""

    site_id: str
    node_id: str
    parent_id: str
    changed: tuple[str, ...]


class CapacityNodeDeleted(Event, frozen=True, kw_only=True, tag="capacity_node.deleted"):
    """Capacity node `node_id` was deleted from site `site_id` (nothing was under it)."""

    site_id: str
    node_id: str
    parent_id: str


class ChargerPlaced(Event, frozen=True, kw_only=True, tag="charger.placed"):
    """The charger was placed under `node_id` of `site_id` (the site's id: directly under it), or its placement
    changed; `previous_node_id` is where it hung before (None: it was not placed)."""

    site_id: str
    node_id: str
    phases: str
    max_a: float
    priority: int
    weight: float
    previous_node_id: str | None = None


class ChargerUnplaced(Event, frozen=True, kw_only=True, tag="charger.unplaced"):
    """The charger was taken out of site `site_id` (it hung under `node_id`): no load management applies to it."""

    site_id: str
    node_id: str


# -- OpenADR (the VEN, ampgate.openadr) ----------------------------------------------------------------------------


class OpenAdrEventRejected(Event, frozen=True, kw_only=True, tag="openadr.event_rejected"):
    """The VTN sent an event (or a notification) the VEN cannot map, so none of it is applied. `reason` is a
    stable code (malformed, unknown_target, unknown_payload_type, bad_units, bad_value, bad_interval), `field`
    the JSON path at fault; `event_id` / `program_id` when they could be read."""

    reason: str
    field: str
    message: str
    event_id: str | None = None
    program_id: str | None = None


class OpenAdrSafeMode(Event, frozen=True, kw_only=True, tag="openadr.safe_mode"):
    """The VTN has been unreachable past the timeout (`active`: the safe-mode limits are applied on `sites`),
    or answers again (`active` false: they are lifted)."""

    active: bool
    sites: tuple[str, ...] = ()


# -- utilization balancing --------------------------------------------------------------------------------------


class SiteAvailabilityChanged(Event, frozen=True, kw_only=True, tag="site.availability_changed"):
    """The connectors of site `site_id` per state changed (a connector began or ended a session, failed, or its
    charger went offline or came back): the new counts, and `previous_free`. For live maps, EV-app pushes and
    roaming status pushes, which would otherwise poll every site."""

    site_id: str
    connectors_free: int
    connectors_in_use: int
    connectors_faulted: int
    connectors_unavailable: int
    connectors_offline: int
    connectors_total: int
    previous_free: int


# -- firmware images, maintenance windows, charger tags (what firmware campaigns build on) ------------------------


class FirmwareImageCreated(Event, frozen=True, kw_only=True, tag="firmware_image.created"):
    """An admin added a firmware image: `uploaded` when the node stores and serves its file (then `size` and
    `sha256` are set), else it lives at an external location."""

    image_id: int
    version: str
    uploaded: bool
    size: int | None
    sha256: str | None


class FirmwareImageDeleted(Event, frozen=True, kw_only=True, tag="firmware_image.deleted"):
    """An admin deleted a firmware image (and the node's copy of its file, if it had one)."""

    image_id: int
    version: str


class SiteMaintenanceWindowsChanged(Event, frozen=True, kw_only=True, tag="site.maintenance_windows_changed"):
    """The maintenance windows of site `site_id` were replaced: how many it has now (0: none, so campaigns that
    respect windows dispatch nothing there)."""

    site_id: str
    windows: int


class ChargerTagsChanged(Event, frozen=True, kw_only=True, tag="charger.tags_changed"):
    """The tags of charger `charger_id` were replaced: the new set, sorted."""

    tags: tuple[str, ...]


# -- OCPI roaming (ampgate.roaming) --------------------------------------------------------------------------------


class OcpiPartyCreated(Event, frozen=True, kw_only=True, tag="ocpi.party.created"):
    """An admin added OCPI party `party_ref` (country code and party id as OCPI names it, its role): its
    registration token was issued."""

    party_ref: int
    country_code: str
    party_id: str
    role: str


class OcpiPartyRegistered(Event, frozen=True, kw_only=True, tag="ocpi.party.registered"):
    """The credentials handshake with the party completed (`by` "them": it registered with us; "us": we
    registered with it), or it updated its credentials (`updated`). `version` is the one agreed; `modules` the
    identifiers of the endpoints it offers."""

    party_ref: int
    country_code: str
    party_id: str
    role: str
    by: str
    version: str
    modules: tuple[str, ...]
    updated: bool = False


class OcpiPartyUnregistered(Event, frozen=True, kw_only=True, tag="ocpi.party.unregistered"):
    """The party's credentials were withdrawn (`by` "them": its DELETE on our credentials; "us": an admin
    removed it): no token of it works any more and nothing is pushed to it."""

    party_ref: int
    country_code: str
    party_id: str
    by: str


class OcpiPartyDeleted(Event, frozen=True, kw_only=True, tag="ocpi.party.deleted"):
    """An admin deleted the party."""

    party_ref: int
    country_code: str
    party_id: str


class OcpiPushFailing(Event, frozen=True, kw_only=True, tag="ocpi.push.failing"):
    """Pushes to the party failed `failures` times in a row (`failing` true: it is told nothing until it answers
    again, and must re-sync by GET, as OCPI says) or it answered again (`failing` false). `error` is the last
    failure."""

    party_ref: int
    country_code: str
    party_id: str
    failing: bool
    failures: int
    error: str | None = None


class OcpiTokenAuthorized(Event, frozen=True, kw_only=True, tag="ocpi.token.authorized"):
    """An eMSP's token presented at one of our chargers was decided from the Tokens it pushed or by asking it in
    real time: `allowed`, the reason (OCPI AllowedType, INVALID or UNKNOWN), `method` (WHITELIST or
    AUTH_REQUEST), `status` as the charger was told; `party_ref` is the eMSP that decided (None: nobody
    knew the token)."""

    uid: str
    party_ref: int | None
    allowed: bool
    reason: str
    method: str
    status: str
    authorization_reference: str | None = None


class OcpiCommandFinished(Event, frozen=True, kw_only=True, tag="ocpi.command.finished"):
    """An eMSP's command (START_SESSION, STOP_SESSION, RESERVE_NOW, CANCEL_RESERVATION, UNLOCK_CONNECTOR) came to
    its CommandResult (`result`), or a reservation it made was cancelled on our side (CANCELED_RESERVATION);
    `delivered`: whether the eMSP took the result at its response_url."""

    party_ref: int
    command: str
    result: str
    delivered: bool
    message: str | None = None


class OcpiCdrDelivered(Event, frozen=True, kw_only=True, tag="ocpi.cdr.delivery"):
    """A CDR's delivery to an eMSP came to an end: `state` sent (the eMSP took it; `location` where it keeps
    it) or failed (given up after `attempts`, or the party is gone: `error`); a failed one can be retried by an
    admin."""

    cdr_id: int
    delivery_id: int
    party_ref: int
    state: str
    attempts: int
    location: str | None = None
    error: str | None = None


class ChargerConnectorsChanged(Event, frozen=True, kw_only=True, tag="charger.connectors_changed"):
    """An admin described the charger's EVSEs and connectors (standard, format, power type, ratings, eMI3 ids):
    `evses` of them (0: the description was removed and defaults apply)."""

    evses: int


class CostDisplayChanged(Event, frozen=True, kw_only=True, tag="charger.cost_display_changed"):
    """An admin set (or cleared: `override` None) which cost display the charger gets; `mode` is the one now in
    force (ampgate.costdisplay)."""

    mode: str
    override: str | None


# -- pricing --------------------------------------------------------------------------------------------------


class TariffChanged(Event, frozen=True, kw_only=True, tag="tariff.changed"):
    """A tariff was `created`, `updated` (replaced) or `deleted` (`change`). Sessions already running keep the
    tariff they started with."""

    tariff_id: str
    change: str
    currency: str


class TariffAssigned(Event, frozen=True, kw_only=True, tag="tariff.assigned"):
    """A tariff was assigned (`tariff_id`; None: the assignment was removed) at `scope` charger (the event's
    `charger_id` is the subject), site, id_token_group or default (no subject). Applies to sessions that
    start from now on."""

    scope: str
    subject: str | None
    tariff_id: str | None
    previous_tariff_id: str | None


class SitePriceSignalsChanged(Event, frozen=True, kw_only=True, tag="site.price_signals_changed"):
    """An operator replaced a site's dynamic energy prices: `windows` of them now."""

    site_id: str
    windows: int


class CdrCreated(Event, frozen=True, kw_only=True, tag="cdr.created"):
    """A charge detail record was created: a session ended (the EVSE free again), or an operator credited a
    CDR (`credit_of` the original; its total negated). `total_cost` incl VAT, None when no tariff applied."""

    cdr_id: int
    transaction_id: int
    credit_of: int | None
    site_id: str | None
    currency: str | None
    total_cost: Decimal | None
    ended_at: datetime


# -- demand response ----------------------------------------------------------------------------------------------


class DemandResponseCreated(Event, frozen=True, kw_only=True, tag="demand_response.created"):
    """A demand-response event was scheduled (`node_id` None: network-wide); exactly one amount is set.
    `source` is api or openadr."""

    event_id: int
    node_id: str | None
    limit_kw: float | None
    reduce_kw: float | None
    reduce_pct: float | None
    starts_at: datetime
    ends_at: datetime
    source: str


class DemandResponseUpdated(Event, frozen=True, kw_only=True, tag="demand_response.updated"):
    """An external source changed an event it had sent (an OpenADR event's interval changed)."""

    event_id: int
    node_id: str | None
    limit_kw: float | None
    starts_at: datetime
    ends_at: datetime


class DemandResponseStarted(Event, frozen=True, kw_only=True, tag="demand_response.started"):
    """An event began: each lowered node's baseline (its draw at the start) and its target, in kW."""

    event_id: int
    baseline_kw: dict[str, float]
    target_kw: dict[str, float]


class DemandResponseEnded(Event, frozen=True, kw_only=True, tag="demand_response.ended"):
    """An event's window ended (`cancelled`: it was cancelled before or while it ran)."""

    event_id: int
    cancelled: bool


# -- load management ----------------------------------------------------------------------------------------------


class LoadProfileRejected(Event, frozen=True, kw_only=True, tag="load.profile_rejected"):
    """A charger answered a load-management charging profile with something other than Accepted: it is flagged
    (the site's load view) and its allocation is still counted as given."""

    connector_id: int
    limit_a: float
    status: str


class LoadOverdraw(Event, frozen=True, kw_only=True, tag="load.overdraw"):
    """A connector kept drawing more than its acknowledged allocation (several meter samples in a row)."""

    connector_id: int
    allocated_a: float
    measured_a: float


# -- the node itself ------------------------------------------------------------------------------------------------


class GatewayWorkerDown(Event, frozen=True, kw_only=True, tag="gateway.worker_down"):
    """A gateway worker slot lost its worker and starts another in `restart_in_s` (the restart back-off).
    `reason`: exited (the process ended; its chargers reconnect to the other workers), hung (it left the link
    heartbeat unanswered and was killed), arming_failed (it could not load its handshake table, e.g. an SQLite
    error, and was killed), start_failed (no process could be started: socketpair or fork/exec failed).
    `error` says more; `pid` is None when no process was started."""

    worker: int
    generation: int
    pid: int | None
    reason: str
    error: str
    restart_in_s: float


# Every event type the node publishes (the events API lists and filters by these tags).
AnyEvent = (
    SecurityProfileUpgradeChanged
    | ChargerConnected
    | ChargerDisconnected
    | ChargerBooted
    | ChargerStale
    | ChargerFlapping
    | ChargerAlert
    | IncidentOpened
    | IncidentEnded
    | ConnectorStatusChanged
    | TransactionStarted
    | TransactionUpdated
    | TransactionEnded
    | FirmwareStatusReported
    | SecurityEventReported
    | SecurityAlert
    | CertificateRequested
    | CertificateIssued
    | CertificateSigningFailed
    | CertificateExpiring
    | CertificateRenewalRequested
    | InstalledCertificatesChanged
    | ChargingLimitSet
    | DeviceEventReported
    | ChargingLimitCleared
    | EvChargingNeedsReported
    | EvChargingScheduleReported
    | LogStatusReported
    | LogUploaded
    | ReservationCreated
    | ReservationEnded
    | DisplayMessageSet
    | DisplayMessageCleared
    | DisplayMessagesRefreshed
    | CustomerInformationRequested
    | CustomerInformationReceived
    | CustomerInformationDeleted
    | FirmwarePublicationStatus
    | CommandSent
    | CommandAnswered
    | CommandFailed
    | CommandQueued
    | CommandExpired
    | CommandCancelled
    | SiteCreated
    | SiteUpdated
    | SiteDeleted
    | CapacityNodeCreated
    | CapacityNodeUpdated
    | CapacityNodeDeleted
    | ChargerPlaced
    | ChargerUnplaced
    | OpenAdrEventRejected
    | OpenAdrSafeMode
    | SiteAvailabilityChanged
    | FirmwareImageCreated
    | FirmwareImageDeleted
    | SiteMaintenanceWindowsChanged
    | ChargerTagsChanged
    | CampaignChanged
    | CampaignGroupChanged
    | CampaignChargerChanged
    | OcpiPartyCreated
    | OcpiPartyRegistered
    | OcpiPartyUnregistered
    | OcpiPartyDeleted
    | OcpiPushFailing
    | OcpiTokenAuthorized
    | OcpiCommandFinished
    | OcpiCdrDelivered
    | ChargerConnectorsChanged
    | CostDisplayChanged
    | TariffChanged
    | TariffAssigned
    | SitePriceSignalsChanged
    | CdrCreated
    | DemandResponseCreated
    | DemandResponseUpdated
    | DemandResponseStarted
    | DemandResponseEnded
    | LoadProfileRejected
    | LoadOverdraw
    | GatewayWorkerDown
    | StoreDegraded
    | StoreRecovered
)
