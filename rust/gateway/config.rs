//! Settings of one gateway worker, passed down from the control plane when it starts the worker.

use std::time::Duration;

use super::throttle::ThrottleConfig;
use super::tls::TlsFiles;

/// 512 MiB per worker: a worker holds up to ~20,000 connections (the open-file limit), whose own bounds
/// (a 1 MiB partial message, a 4 MiB write queue) add up to ~100 GB; an idle charger holds no buffer at all
/// and a busy one a few KB, so 512 MiB is thousands of times what a healthy fleet uses, yet four workers stay
/// within 2 GB whatever the chargers do.
pub const DEFAULT_BUFFER_BUDGET: usize = 512 << 20;
/// 200 messages a second with a burst of 2,000: a charger sends a few a minute, a few dozen at boot (a
/// StatusNotification per connector) and its offline queue one CALL per round trip after a reconnect; the
/// simulator's saturation load and the benches send well under it per charger (they spread over 10+
/// chargers), while one connection can no longer feed the control plane at wire speed.
pub const DEFAULT_MSG_RATE: f64 = 200.0;
pub const DEFAULT_MSG_BURST: u32 = 2000;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Slot number of this worker (0..K); goes into every conn_id.
    pub worker: u8,
    /// Bumped by the control plane every time it (re)starts a worker in a slot; goes into every conn_id.
    pub generation: u16,
    /// The OCPP URL prefix, e.g. "/ocpp": chargers connect to `{prefix}/{chargePointId}`.
    pub path_prefix: String,
    /// Subprotocols we agree to, in the server's order of preference.
    pub protocols: Vec<String>,
    /// Largest message accepted from a charger; larger ones are closed with 1009.
    pub max_message: usize,
    /// Server ping interval; `Duration::ZERO` turns pings off.
    pub ping_interval: Duration,
    /// How long a ping may go unanswered (no bytes at all from the peer) before the connection is dropped.
    pub ping_timeout: Duration,
    /// How long an HTTP upgrade may take from accept to the end of its headers (slowloris guard).
    pub handshake_timeout: Duration,
    /// Bytes a connection may have queued for sending before it is closed with 1008.
    pub max_write_queue: usize,
    /// Bytes this worker may hold in buffers over all its connections (partial incoming messages, messages
    /// parked while the link is full, CALLs held behind an unanswered one, outgoing write queues): past it
    /// the largest connections are closed with 1013 until it is under again. 0: no budget.
    pub buffer_budget: usize,
    /// CALLs a charger may send before the control plane answered its previous one: they wait in the worker
    /// and go on in order; one more closes the connection with 1008 (see `gateway::flow`).
    pub max_pending_calls: usize,
    /// How long the worker waits for the control plane's answer to a charger's CALL before letting the next
    /// held CALL go on regardless (a control plane that never answers must not wedge a charger).
    pub pending_call_timeout: Duration,
    /// Messages per second a charger may send (a token bucket per connection, `msg_burst` deep); past it the
    /// connection is closed with 1008. 0: no limit.
    pub msg_rate: f64,
    pub msg_burst: u32,
    /// Connections this worker holds at most; 0 means "as many as the open-file limit allows".
    pub max_connections: usize,
    /// Link back-pressure: above `link_high` bytes queued to the control plane, stop reading chargers;
    /// resume below `link_low`.
    pub link_high: usize,
    pub link_low: usize,
    /// Admit chargers that are not in the table (until the control plane says otherwise).
    pub accept_unknown: bool,
    /// Failed Basic-auth attempts per charger id, in this worker: past the limit the id is refused with 429
    /// for the back-off (see `gateway::throttle`). The control plane passes this worker's share of the
    /// node-wide limit.
    pub auth_throttle: ThrottleConfig,
    /// An upgrade offering none of `protocols`: refused with HTTP 400 before the upgrade (the default: the
    /// OCA's certification tool expects no WebSocket), or, when set, upgraded without the header and closed
    /// at once with 1002 (the OCPP-J 1.6 text).
    pub upgrade_without_protocol: bool,
    /// Reuseport mode: bind our own SO_REUSEPORT listener on this address ("host:port") instead of using an
    /// inherited listening socket.
    pub reuseport_addr: Option<String>,
    /// The wss listener (security profiles 2 and 3): an inherited listening socket, or (reuseport mode) the
    /// address to bind; either needs `tls`.
    pub tls_listen_fd: Option<i32>,
    pub tls_reuseport_addr: Option<String>,
    /// Server certificates and the client CA, read at start and on `Down::TlsReload`.
    pub tls: Option<TlsFiles>,
    /// The pid of the control plane, to notice if it died before we set PR_SET_PDEATHSIG.
    pub parent_pid: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker: 0,
            generation: 0,
            path_prefix: "/ocpp".into(),
            protocols: vec!["ocpp2.0.1".into(), "ocpp1.6".into()],
            max_message: 1 << 20,
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_write_queue: 4 << 20,
            max_connections: 0,
            buffer_budget: DEFAULT_BUFFER_BUDGET,
            max_pending_calls: 4,
            pending_call_timeout: Duration::from_secs(60),
            msg_rate: DEFAULT_MSG_RATE,
            msg_burst: DEFAULT_MSG_BURST,
            link_high: 16 << 20,
            link_low: 4 << 20,
            accept_unknown: true,
            auth_throttle: ThrottleConfig::default(),
            upgrade_without_protocol: false,
            reuseport_addr: None,
            tls_listen_fd: None,
            tls_reuseport_addr: None,
            tls: None,
            parent_pid: 0,
        }
    }
}
