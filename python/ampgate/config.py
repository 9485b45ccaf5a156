"""The node's settings: one frozen value built by the CLI (or a test) and handed to `ampgate.node.Node`."""

from __future__ import annotations

import math
import os
import resource
from typing import Literal

import msgspec

# The OCPP subprotocols we speak, in our default order of preference: 2.0.1 first, as the newer protocol.
DEFAULT_PROTOCOLS = ("ocpp2.0.1", "ocpp1.6")

# Limits of the compiled gateway that `max_message` must fit, mirrored here so the settings stay importable
# without the extension (tests/gateway/test_outgoing.py pins them against it). A worker link batch is at most
# LINK_MAX_BATCH bytes (rust/gateway/link.rs MAX_BATCH): one larger incoming message is a corrupt link, and the
# worker is killed with every charger on it. The hub takes messages from Python of at most HUB_MAX_SEND bytes
# (rust/py/hub.rs MAX_SEND) and refuses the whole batch otherwise. A message we accept may come back in what we
# send (a CALLERROR names what it refuses; a DataTransfer is relayed), so the largest message a charger may send
# is the smaller of the two, with the rest of the batch's room to spare.
LINK_MAX_BATCH = 64 << 20
HUB_MAX_SEND = 16 << 20
MAX_MESSAGE_LIMIT = HUB_MAX_SEND
# The smallest max_message: a 1.6 BootNotification with every field at its maxLength is about 600 bytes; below
# 1 KiB chargers would be refused their first message (the simulator has the same floor).
MIN_MESSAGE = 1024


# Bytes a connection may have queued for sending before its worker closes it (the charger is not reading).
DEFAULT_MAX_WRITE_QUEUE = 4 << 20
# The most CALLs a charger may pipeline: each is held in its worker (up to max_message bytes) until answered.
MAX_PENDING_CALLS_MAX = 1000
MIB = 1 << 20


def check_bounds(budget_mb: int, pending: int, rate: float, burst: int, one_connection: int) -> str | None:
    """What is wrong with the per-worker and per-charger bounds, naming the setting (None: nothing).
    `one_connection` is the most one connection may hold by its own limits (max_message + max_write_queue):
    a budget below it would close a charger that keeps within them."""
    if budget_mb < 0:
        return f"worker_buffer_budget_mb must be >= 0 (0 = no budget), got {budget_mb}"
    if budget_mb != 0 and budget_mb * MIB < one_connection:
        need = -(-one_connection // MIB)
        return (
            f"worker_buffer_budget_mb must be 0 or at least {need} (one connection's max message and write "
            f"queue), got {budget_mb}"
        )
    if budget_mb * MIB >= 1 << 63:
        return f"worker_buffer_budget_mb is too large, got {budget_mb}"
    if not 0 <= pending <= MAX_PENDING_CALLS_MAX:
        return f"max_pending_calls must be 0 to {MAX_PENDING_CALLS_MAX}, got {pending}"
    if not (0 <= rate <= 1e9):
        return f"charger_msg_rate must be 0 (no limit) to 1e9 messages a second, got {rate}"
    if rate > 0 and not 1 <= burst < 1 << 32:
        return f"charger_msg_burst must be 1 to 2**32 - 1 when charger_msg_rate is set, got {burst}"
    if not 0 <= burst < 1 << 32:
        return f"charger_msg_burst must be 0 to 2**32 - 1, got {burst}"
    return None


# The store's write-queue bound (ampgate.store.writer.QUEUE_MAX says why the default), mirrored here like the
# gateway's limits; tests/store/test_backpressure.py pins it. The ceiling keeps the bound a bound: a million queued
# writes of a few KB each is already gigabytes held while a disk is locked or full.
STORE_QUEUE_MAX = 20_000
STORE_QUEUE_MAX_LIMIT = 1_000_000


def check_store_queue_max(value: int) -> str | None:
    """Why `value` cannot bound the store's write queue, or None when it can."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number, got {value!r}"
    if not 1 <= value <= STORE_QUEUE_MAX_LIMIT:
        return f"must be between 1 and {STORE_QUEUE_MAX_LIMIT} writes, got {value}"
    return None


def check_max_message(value: int) -> str | None:
    """Why `value` cannot be the largest message a charger may send, or None when it can."""
    if value < MIN_MESSAGE:
        return f"must be at least {MIN_MESSAGE} bytes, got {value}"
    if value > MAX_MESSAGE_LIMIT:
        return (
            f"must be at most {MAX_MESSAGE_LIMIT} bytes (16 MiB: the largest message the hub sends to a worker;"
            f" a worker link batch holds {LINK_MAX_BATCH}), got {value}"
        )
    return None


# The link heartbeat's bounds: below WORKER_HEARTBEAT_MIN a busy worker's loop (a 100k reconnect storm holds it
# for tens of milliseconds a turn) could miss three in a row; above an hour a hung worker goes unnoticed for
# half a day.
WORKER_HEARTBEAT_MIN = 0.1
WORKER_HEARTBEAT_MAX = 3600.0


def check_worker_heartbeat(value: float) -> str | None:
    """Why `value` cannot be the worker heartbeat interval (seconds, 0 = off), or None when it can."""
    if value == 0:
        return None
    if not WORKER_HEARTBEAT_MIN <= value <= WORKER_HEARTBEAT_MAX:
        return f"must be 0 (off) or between {WORKER_HEARTBEAT_MIN:g} and {WORKER_HEARTBEAT_MAX:g} seconds, got {value}"
    return None


def connections_per_worker() -> int:
    """How many connections one worker process can hold under this machine's hard open-file limit."""
    # Imported here so that the settings stay importable without the compiled extension.
    from ampgate._native import FD_RESERVE

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    return max(1, hard - FD_RESERVE)


def default_workers(max_chargers: int) -> int:
    """Enough workers for `max_chargers` at the per-process cap, plus one spare (so a dead worker's chargers
    have somewhere to reconnect while it restarts)."""
    return math.ceil(max_chargers / connections_per_worker()) + 1


class NodeConfig(msgspec.Struct, frozen=True, kw_only=True):
    ocpp_host: str = "0.0.0.0"
    ocpp_port: int = 9000
    ocpp_path: str = "/ocpp"
    # Plain ws on ocpp_port (security profile 1); off leaves wss only.
    ocpp_plain: bool = True
    # wss (security profiles 2 and 3) on this port, terminated in the gateway workers; None: no TLS.
    ocpp_tls_port: int | None = None
    # (certificate chain PEM, private key PEM) pairs, at most one RSA and one ECDSA: OCPP's four cipher suites
    # need both (two use ECDSA keys, two static RSA); one pair serves the suites of its key type.
    tls_certs: tuple[tuple[str, str], ...] = ()
    # CA certificates (PEM) client certificates must chain to: security profile 3. None: no client certificates.
    tls_client_ca: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # The public surface (shared/API-CONVENTIONS.md): what chargers and outside parties call. Listens on every
    # address by default, as the OCPP port does; its URLs are built from public_base_url.
    public_host: str = "0.0.0.0"
    public_port: int = 8081
    # What chargers and outside parties reach the public surface at, e.g. https://cs.example.com; None: this
    # host's name and the public port (logged at start, so an operator sees what chargers will be told).
    public_base_url: str | None = None
    public_tls_cert: str | None = None
    public_tls_key: str | None = None
    # Concurrent file transfers over the public surface (ampgate.public.transfers).
    public_max_transfers: int = 512
    db_path: str = "./ampgate.db"
    # Which commits are fsynced (ampgate.store.writer): "durable" those holding a write a charger is told it
    # never has to send again (transaction messages, a first Accepted boot); "full" every commit; "normal" none
    # (a process crash loses nothing committed, a power cut may lose the last commits: only on a disk whose
    # write cache survives power loss, or to measure what durability costs, bench/durability.py).
    store_sync: Literal["durable", "full", "normal"] = "durable"
    # Writes queued (and replies awaiting their commits) before the store counts as full and the gateway pump
    # stops taking batches until there is room (ampgate.store.writer.QUEUE_MAX says why this value).
    store_queue_max: int = STORE_QUEUE_MAX
    # Where files chargers upload to the node (logs, diagnostics) are kept; None: `uploads` next to the database.
    upload_dir: str | None = None
    # The largest file a charger may upload (bytes): diagnostics archives are a few MB, full logs tens of MB.
    max_upload_bytes: int = 100 << 20
    # Where uploaded firmware images are kept (ampgate.firmware_images); None: `firmware` next to the database.
    firmware_dir: str | None = None
    # The largest firmware image an admin may upload (bytes): charger images are tens to hundreds of MB.
    max_firmware_bytes: int = 1 << 30
    workers: int = 0  # 0: default_workers(max_chargers)
    max_chargers: int = 100_000
    unknown_chargers: Literal["accept", "reject"] = "accept"
    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    # An upgrade offering none of `protocols`: "refuse" answers HTTP 400 and never opens the WebSocket (what
    # the OCA's certification tool expects, so the default); "close" upgrades without the header and closes at
    # once with 1002 (the OCPP-J 1.6 text).
    no_subprotocol: Literal["refuse", "close"] = "refuse"
    # BootNotification.interval: the heartbeat interval we ask chargers for. 5 minutes is the common default
    # of CSMSs in the field; WebSocket pings carry liveness in between.
    heartbeat_interval: int = 300
    # BootNotification answer for chargers never accepted before (registered or accepted chargers always get
    # Accepted): "accept" accepts and remembers them, "pending" and "reject" make an operator decide.
    unknown_boot: Literal["accept", "pending", "reject"] = "accept"
    # BootNotification.interval for Pending / Rejected: when the charger may boot again. A minute keeps a
    # waiting fleet's retries cheap while an operator registers chargers.
    boot_retry_interval: int = 60
    # Boot spreading (ampgate.ocpp.boot_spread): at most this many boots are Accepted per second; the rest get
    # Pending with a random interval of 1 to boot_spread_window seconds and are asked back with TriggerMessage as
    # room frees. 2,000/s is a third of the ~6,000 handshakes + boots per second one node measured on 2 cores
    # (docs/benchmarks.md): what follows an Accepted boot (a StatusNotification per connector, queued transaction
    # messages) costs more than the boot, and chargers still connecting need their share. 0 turns it off.
    boot_spread_threshold: int = 2000
    # The longest Pending interval boot spreading tells a charger: every charger is Accepted within about this
    # long after a storm. 10 s as the issue states; a fleet much larger than threshold × window still arrives
    # faster than the threshold once intervals end (no charger is starved), so raise it with the fleet.
    boot_spread_window: int = 10
    # How long a remote command waits for the charger's answer (queueing included) before it fails with 504.
    call_timeout: float = 30.0
    # How long a refresh of a charger's device model waits for the whole report after the charger accepted.
    report_timeout: float = 120.0
    ping_interval: float = 60.0
    ping_timeout: float = 30.0
    # A connected charger silent for heartbeat_interval × stale_grace is stale (its pings may still pass).
    stale_grace: float = 2.0
    # More than flap_count disconnects within flap_window seconds: flapping, until connected flap_clear
    # seconds without a drop.
    flap_count: int = 5
    flap_window: float = 600.0
    flap_clear: float = 1800.0
    # A charger offline this long gets an alert (not when it flaps or went down in an outage incident).
    offline_alert: float = 900.0
    # More than this share of the fleet (and at least spike_min chargers) disconnecting within a minute is an
    # outage: one incident.
    spike_fraction: float = 0.05
    spike_min: int = 10
    spike_window: float = 60.0
    # Days of connectivity history kept (pruned in the background).
    history_days: float = 30.0
    # Days of events kept in the event log (GET /api/v1/events).
    events_days: float = 7.0
    handshake_timeout: float = 10.0
    max_message: int = 1 << 20
    max_write_queue: int = DEFAULT_MAX_WRITE_QUEUE
    # Admission control (node-wide, shared out evenly over the workers): new connections per second with a
    # burst, and handshakes in progress at once; 0 = no limit. Beyond it an upgrade is answered HTTP 503 with a
    # randomized Retry-After of at most admit_retry_max s, by the worker. Sized from a measured storm on the
    # 2-core reference box (docs/operations.md, "Reconnect storms").
    admit_rate: int = 6000
    admit_burst: int = 3000
    admit_handshakes: int = 5000
    admit_retry_max: int = 60
    # New unknown charger ids (not registered, never booted here) admitted per minute over the node, by the same
    # admission control (a bucket of one minute's worth, shared out over the workers; HTTP 503 with a
    # Retry-After beyond it); registered and recorded chargers are never charged. 600 a minute lets a new site's
    # chargers in within seconds while a stream of made-up ids costs the node at most 10 handshakes a second.
    # 0 = no limit (`unknown_chargers = "reject"` refuses every unknown id).
    unknown_ids_per_minute: int = 600
    # Failed Basic-auth attempts per charger id (not per address: fleets behind carrier NAT share one): after
    # auth_fail_limit failures within auth_fail_window_s of the first, the id is refused (HTTP 429 with
    # Retry-After) for auth_backoff_s without checking its password, the right one included; a success clears
    # its failures. Node-wide, shared out over the workers (each counts its own: a charger's reconnects can land
    # on any worker). 10 a minute is well above a misconfigured charger's retries (every 30-60 s); 5 minutes
    # of back-off hold a guesser to about 10 guesses per 6 minutes against keys of 16+ characters. 0 turns it
    # off.
    auth_fail_limit: int = 10
    auth_fail_window_s: float = 60.0
    auth_backoff_s: float = 300.0
    # Bounds per worker and per charger, applied by the gateway workers (rust/gateway/flow.rs, worker.rs):
    # - worker_buffer_budget_mb: MiB of buffers a worker may hold over all its connections (partial incoming
    #   messages, messages parked while the control plane lags, CALLs held, write queues); past it the
    #   connections holding the most are closed with 1013 until it is under again. A worker holds up to
    #   ~20,000 connections (the open-file limit) whose own bounds (max_message, max_write_queue) add up to
    #   ~100 GB, while an idle charger holds no buffer and a busy one a few KB: 512 MiB is thousands of times a
    #   healthy fleet's use, and four workers stay within 2 GB whatever the chargers do. 0 = no budget.
    # - max_pending_calls: CALLs a charger may send before its previous one is answered; they wait in the
    #   worker and go on in order, one more closes the connection with 1008 (OCPP-J: one CALL at a time; 4
    #   forgives a charger that pipelines a little, e.g. its offline queue).
    # - charger_msg_rate / charger_msg_burst: messages per second per connection (a token bucket); past it
    #   1008. A charger sends a few a minute and a few dozen at boot; the simulator's saturation load and the
    #   benches stay well under 200/s per charger. 0 = no limit.
    worker_buffer_budget_mb: int = 512
    max_pending_calls: int = 4
    charger_msg_rate: float = 200.0
    charger_msg_burst: int = 2000
    # How workers share the OCPP port: "shared" = one listening socket inherited by every worker, polled with
    # EPOLLEXCLUSIVE (the default: a worker at its cap simply stops polling and queued connections wait for
    # another worker); "reuseport" = a SO_REUSEPORT socket per worker (the kernel spreads connections evenly,
    # but a worker at its cap must close its socket, resetting what sat in its queue). bench/ compares them.
    listen_mode: Literal["shared", "reuseport"] = "shared"
    # Per-worker connection cap; 0 = what the open-file limit allows.
    worker_max_connections: int = 0
    # The link heartbeat: every this many seconds each worker is asked for an answer its Rust loop gives; one
    # silent for 3 intervals is hung, killed and replaced (0 = off). 5 s finds a hung worker within 15-20 s and
    # costs a few bytes per worker per interval.
    worker_heartbeat_s: float = 5.0
    # Load management (ampgate.loadctl): the allocation tick; the current a session gets at least (IEC 61851:
    # 6 A) and the default profile's limit (a charger's own fallback); how long a profile holds (a charger that
    # stops hearing from us falls back after it); the least time between two profiles of a connector (decreases
    # go at once); what an offline charger is assumed to draw ("max": its rating; "last": its last allocation,
    # at least the default); and the allocator's hysteresis and minimum run/pause time.
    load_tick: float = 1.0
    load_min_a: float = 6.0
    load_default_a: float = 6.0
    load_profile_validity: int = 60
    load_min_interval: float = 10.0
    load_offline_assume: Literal["max", "last"] = "max"
    load_hysteresis_a: float = 1.0
    load_hysteresis_pct: float = 10.0
    load_min_hold: float = 300.0
    # Cost on the charger (ampgate.costdisplay): seconds between running-cost updates of a priced open
    # transaction (2.0.1 CostUpdated, 1.6 RunningCost); 0 sends none.
    cost_update_interval: float = 60.0
    # Write the ports (and a first admin token) as JSON here once ready: for tests and scripts.
    ready_file: str | None = None
    # OpenADR 3.0.1 VEN (ampgate.openadr): runs only when openadr_vtn (the VTN's base URL, e.g.
    # https://vtn.example/openadr3/3.0.1) is set, with OAuth2 client credentials.
    openadr_vtn: str | None = None
    openadr_client_id: str | None = None
    openadr_client_secret: str | None = None
    # The token endpoint; None: what the VTN's /auth/server names, else <vtn>/auth/token.
    openadr_token_url: str | None = None
    # The VEN's name at the VTN (the ElaadNL profile wants an eMI3 id such as NL-ABC); None: this host's name.
    openadr_ven_name: str | None = None
    # Poll period when the programs give no interval, and the longest: a minute keeps a VEN at most a minute
    # behind a VTN whose callbacks it missed.
    openadr_poll_interval: float = 60.0
    # The VTN unreachable this long: safe mode. Five minutes rides out a VTN restart without touching the
    # sites, yet acts well within a 15-minute capacity interval.
    openadr_safe_mode_timeout: float = 300.0
    # kW per site in safe mode where the program has no safe-mode event; None: no limit.
    openadr_fallback_kw: float | None = None

    # OCPI 2.2.1 (ampgate.roaming): runs only when both are set: our ISO 3166-1 alpha-2 country code and
    # 3-character party id, as parties know us. The base URL parties reach our OCPI server at; None: the public
    # base URL + /ocpi. The name in our credentials' business details; None: "<country code>*<party id>".
    ocpi_country_code: str | None = None
    ocpi_party_id: str | None = None
    ocpi_base_url: str | None = None
    ocpi_name: str | None = None
    # Real-time authorization of a token at its eMSP waits at most this long (the charger waits for our
    # Authorize reply meanwhile; its own timeout is longer).
    ocpi_authorize_timeout: float = 5.0
    # Requests per second per client address over all of /ocpi (past it: 429 as an envelope).
    ocpi_rate_limit: int = 50
    # A roaming session's kwh and cost are pushed to its eMSP at most this often (issue 14: once a minute).
    ocpi_session_update_s: float = 60.0
    # The first wait after a failed CDR delivery, doubled per attempt up to an hour.
    ocpi_cdr_retry_s: float = 30.0
    # Billing (ampgate.billing): the longest a session waits after its transaction stopped for the EVSE to be
    # reported free (connector Available, or the charger offline) before its CDR is made with the parking up to
    # then: an hour, longer than a driver's coffee, short enough that a lost status does not bill a day.
    cdr_max_parking_s: float = 3600.0

    # Charging-station certificates (ampgate.certauthority, docs/certificates.md). charger_ca_dir: the node's own
    # CA (ca.pem + ca.key there, made at first start when absent; "" means `charger-ca` beside the database);
    # charger_ca_signer: the operator's signer command instead (CSR PEM on stdin, chain PEM on stdout). Neither:
    # SignCertificate is Rejected / NotEnabled, as before. The CA key a new CA gets ("ec": P-256, "rsa": 3072).
    charger_ca_dir: str | None = None
    charger_ca_signer: str | None = None
    charger_ca_signer_timeout: float = 30.0
    charger_ca_key_type: Literal["ec", "rsa"] = "ec"
    # Validity of an issued certificate (days; a fraction for tests), cut to the CA's own end. A year: chargers
    # renew on the expiry warning, so a short life limits a stolen key without burdening anyone.
    charger_cert_days: float = 365.0
    # The O a 2.0.1 CSR must carry (the CPO name, the charger's OrganizationName); None accepts any.
    charger_cert_organization: str | None = None
    # certificate.expiring this many days before a charger's certificate ends (and the renewal asked, with
    # charger_cert_auto_renew); checked every charger_cert_check_interval seconds.
    charger_cert_warn_days: float = 30.0
    charger_cert_check_interval: float = 3600.0
    charger_cert_auto_renew: bool = True

    def __post_init__(self) -> None:
        """Raises ValueError naming max_message when it does not fit the gateway's own limits (the CLI refuses
        it earlier, naming --max-message)."""
        problem = check_max_message(self.max_message)
        if problem is not None:
            raise ValueError(f"max_message {problem}")
        problem = check_worker_heartbeat(self.worker_heartbeat_s)
        if problem is not None:
            raise ValueError(f"worker_heartbeat_s {problem}")
        problem = check_bounds(
            self.worker_buffer_budget_mb,
            self.max_pending_calls,
            self.charger_msg_rate,
            self.charger_msg_burst,
            self.max_message + self.max_write_queue,
        )
        if problem is not None:
            raise ValueError(problem)
        problem = check_store_queue_max(self.store_queue_max)
        if problem is not None:
            raise ValueError(f"store_queue_max {problem}")
        if not self.ocpp_plain and self.ocpp_tls_port is None:
            raise ValueError("ocpp_plain off needs ocpp_tls_port: chargers would have no port to connect to")
        if self.ocpp_tls_port is not None and not self.tls_certs:
            raise ValueError("ocpp_tls_port needs tls_certs (a certificate and its key)")
        if self.tls_client_ca is not None and self.ocpp_tls_port is None:
            raise ValueError("tls_client_ca needs ocpp_tls_port")
        if len(self.tls_certs) > 2:
            raise ValueError("tls_certs: at most two (one RSA and one ECDSA key)")

    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else default_workers(self.max_chargers)

    @property
    def uploads_path(self) -> str:
        """The upload directory: `upload_dir`, or `uploads` beside the database file."""
        if self.upload_dir is not None:
            return self.upload_dir
        return os.path.join(os.path.dirname(os.path.abspath(self.db_path)), "uploads")

    @property
    def firmware_path(self) -> str:
        """The firmware image directory: `firmware_dir`, or `firmware` beside the database file."""
        if self.firmware_dir is not None:
            return self.firmware_dir
        return os.path.join(os.path.dirname(os.path.abspath(self.db_path)), "firmware")

    @property
    def charger_ca_path(self) -> str | None:
        """The node CA's directory: `charger_ca_dir`, `charger-ca` beside the database when it is "", None when
        the node has no CA of its own."""
        if self.charger_ca_dir is None:
            return None
        if self.charger_ca_dir:
            return self.charger_ca_dir
        return os.path.join(os.path.dirname(os.path.abspath(self.db_path)), "charger-ca")

    @property
    def charger_ca_certificate_path(self) -> str | None:
        """The node CA's certificate (PEM), what a TLS listener trusts for chargers' client certificates
        (security profile 3); None without a node CA. The file exists once the node has started."""
        path = self.charger_ca_path
        return None if path is None else os.path.join(path, "ca.pem")

    @property
    def public_tls(self) -> bool:
        return self.public_tls_cert is not None
