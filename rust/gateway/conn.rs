//! One charger connection as a sans-I/O state machine: bytes and time in; bytes to write, events for the
//! control plane, a timer deadline and "shut / drop the socket" out.
//!
//! ```text
//!   Handshake ──upgrade accepted──▶ Open ──close (either side), protocol error, no pong──▶ Closing ──▶ Done
//!       │  └─HTTP error / no subprotocol (1002)─────────────────────────────────────────────▲          ▲
//!       └──────────────── handshake timeout, socket lost (any state) ──────────────────────┴──────────┘
//! ```
//!
//! The driver (the gateway worker's mio loop, or the bench's limit server) owns the socket: it feeds what it
//! reads to [`Connection::receive`], writes [`Connection::output`] and reports how much the socket took with
//! [`Connection::wrote`], half-closes when [`Connection::take_shutdown_write`] says so, calls
//! [`Connection::tick`] on its timer, and drops the socket once [`Connection::is_done`]. Events come out
//! through a callback, as the codec's do, so a text message goes from the read buffer to the link uncopied.
//! Time is whole seconds of the driver's clock (0 means "never"), which keeps an idle connection small.

use std::cell::RefCell;

use super::admission::{Admission, Verdict};
use super::auth::{AuthTable, Channel, Decision};
use super::config::WorkerConfig;
use super::flow::{Bucket, CallGate, Incoming};
use crate::codec::{self, Decoder, Event, OpCode, Role, UpgradeRequest};

/// How long (seconds) a closing connection may linger for the peer's close frame or EOF: the server closes
/// TCP first, after the close handshake (RFC 6455 §7.1.1), but a peer that never answers must not hold a file.
pub const CLOSE_LINGER_SECS: u32 = 3;

/// RFC 6455 §7.4.1 / IANA: "Try Again Later", the server is overloaded (not in the codec: only the gateway
/// sends it, for its buffer budget).
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// What the connection tells the control plane, in order. `Connected` comes once, when the upgrade succeeds
/// with an agreed subprotocol; `Disconnected` comes once after it, whatever ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEvent<'a> {
    Connected {
        charger: &'a str,
        /// One of the configured subprotocols.
        protocol: &'a str,
        /// The OCPP security profile the connection gave (1 plain, 2 TLS, 3 TLS with a client certificate).
        profile: u8,
    },
    /// A whole text message from the charger.
    Message(&'a str),
    Disconnected {
        code: u16,
        reason: &'a str,
    },
    /// The charger answered our ping after `rtt_us` microseconds.
    Pong {
        rtt_us: u32,
    },
}

/// Why the socket went away under the connection: reported as 1006 with this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// EOF without a close frame.
    Eof,
    /// Reading failed (a reset).
    ReadError,
    /// Writing failed.
    WriteError,
}

impl Lost {
    pub fn reason(self) -> &'static str {
        match self {
            Lost::Eof => "connection closed without a close frame",
            Lost::ReadError => "connection reset",
            Lost::WriteError => "connection lost",
        }
    }
}

/// Reasons the connection itself reports (the gateway's close codes, in one place).
const NO_PROTOCOL: &str = "no agreeable OCPP subprotocol offered";
const BINARY: &str = "binary frames are not OCPP-J";
const NO_PONG: &str = "no answer to ping";
const WRITE_QUEUE_FULL: &str = "write queue full: the charger is not reading";
const SHUTTING_DOWN: &str = "server shutting down";
const BUSY: &str = "too many new connections: retry later";
const UNKNOWN_BUSY: &str = "too many new unknown charge points: retry later";
const THROTTLED: &str = "too many failed authentications for this charge point: retry later";
const TOO_MANY_CALLS: &str =
    "too many CALLs sent before the previous one was answered (OCPP-J: one at a time)";
const MSG_RATE: &str = "too many messages: over the per-charger message rate";
const BUFFER_BUDGET: &str = "worker buffer budget exceeded: this connection held the most";
/// Never reported (the control plane does not know a connection in its handshake or closing).
const TIMED_OUT: &str = "handshake or close timed out";

/// What a connection reads from its driver on every call: the clock, the settings and the handshake table.
pub struct Ctx<'a> {
    /// Seconds of the driver's clock, starting at 1.
    pub now: u32,
    /// Microseconds of a monotonic clock (CLOCK_MONOTONIC in the gateway), for ping round trips.
    pub now_us: u64,
    pub cfg: &'a WorkerConfig,
    pub auth: &'a AuthTable,
    /// The worker's admission control: a handshake whose charger the table does not know is charged to its
    /// bucket of new unknown ids.
    pub admission: &'a RefCell<Admission>,
}

/// What the socket under the connection proved before the upgrade (set by the driver once TLS is up).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Transport {
    #[default]
    Plain,
    Tls,
    /// TLS with a verified client certificate with this subject common name.
    TlsClient(Box<str>),
}

impl Transport {
    fn channel(&self) -> Channel<'_> {
        match self {
            Transport::Plain => Channel::Plain,
            Transport::Tls => Channel::Tls,
            Transport::TlsClient(cn) => Channel::TlsClient(cn),
        }
    }
}

enum State {
    /// Reading the HTTP upgrade request; `buf` holds what arrived so far.
    Handshake {
        buf: Vec<u8>,
    },
    Open {
        decoder: Decoder,
    },
    /// Close frame (or HTTP error) queued; waiting for the peer to finish, or for the linger deadline.
    Closing,
    /// Finished: the driver drops the socket.
    Done,
}

/// Why the gateway itself closed an open connection for its bounds (the worker counts them by reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// The worker's buffer budget was exceeded and this connection held the most.
    BufferBudget,
    /// More CALLs pipelined than `max_pending_calls`.
    PendingCalls,
    /// Over `msg_rate`.
    MsgRate,
}

/// How a decoded frame ends the connection (decided while the decoder is borrowed, applied after).
enum Ending {
    Fail(u16, &'static str),
    PeerClose(Option<u16>, String),
}

pub struct Connection {
    state: State,
    /// Bytes the socket has not taken yet. Empty (no allocation) while the connection is idle.
    out: Vec<u8>,
    /// Seconds of the last byte received.
    last_rx: u32,
    /// Seconds at which our unanswered ping was sent; 0 when none is outstanding. Any bytes from the peer
    /// clear it (they prove it alive).
    ping_sent: u32,
    /// The low 32 bits of `now_us` when our last ping was sent (0: no ping awaits its pong), cleared only by
    /// the pong: the round trip is measured on the pong itself, whatever else arrives before it.
    ping_us: u32,
    /// Answer the upgrade 503 with this `Retry-After` (seconds) instead of deciding it: the worker's
    /// admission control refused the connection. 0: admitted.
    busy_retry: u16,
    /// The HTTP status the upgrade was refused with (0: not refused), for the worker's counters.
    refused: u16,
    /// Handshake or closing deadline, in seconds.
    deadline: u32,
    /// The charger's CALLs waiting for the control plane's answers (see `gateway::flow`).
    gate: CallGate,
    /// The charger's message rate.
    bucket: Bucket,
    /// Why the gateway closed the connection for its bounds, if it did.
    shed: Option<Shed>,
    /// The control plane was told `Connected` and has not yet been told `Disconnected`.
    announced: bool,
    /// The write side was (or is to be) shut; `take_shutdown_write` says so once.
    shut: bool,
    /// Plain, or TLS with or without a client certificate: decides the security profile.
    transport: Transport,
}

/// Pick the subprotocol: the first of ours (in our order) that the charger offered.
pub fn choose_protocol<'a>(ours: &'a [String], offered: &[String]) -> Option<&'a str> {
    ours.iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .map(|s| s.as_str())
}

impl Connection {
    /// A connection just accepted: it must finish its upgrade within `cfg.handshake_timeout`.
    pub fn new(ctx: &Ctx<'_>) -> Self {
        Self {
            state: State::Handshake { buf: Vec::new() },
            out: Vec::new(),
            last_rx: ctx.now,
            ping_sent: 0,
            ping_us: 0,
            busy_retry: 0,
            refused: 0,
            deadline: ctx.now + ctx.cfg.handshake_timeout.as_secs().max(1) as u32,
            gate: CallGate::default(),
            bucket: Bucket::new(ctx.cfg.msg_burst, ctx.now_us),
            shed: None,
            announced: false,
            shut: false,
            transport: Transport::Plain,
        }
    }

    /// The driver finished the TLS handshake under this connection (before any byte of the upgrade).
    pub fn set_transport(&mut self, transport: Transport) {
        self.transport = transport;
    }

    /// A connection over the admission budget: its upgrade is read, then answered 503 with `Retry-After:
    /// retry_after` seconds.
    pub fn refusing(ctx: &Ctx<'_>, retry_after: u32) -> Self {
        let mut c = Self::new(ctx);
        c.busy_retry = retry_after.clamp(1, u16::MAX as u32) as u16;
        c
    }

    /// Bytes read from the socket. `data` is unmasked in place.
    pub fn receive(&mut self, data: &mut [u8], ctx: &Ctx<'_>, emit: &mut dyn FnMut(ConnEvent<'_>)) {
        self.last_rx = ctx.now;
        self.ping_sent = 0;
        self.receive_bytes(data, ctx, emit);
    }

    fn receive_bytes(
        &mut self,
        data: &mut [u8],
        ctx: &Ctx<'_>,
        emit: &mut dyn FnMut(ConnEvent<'_>),
    ) {
        match &mut self.state {
            State::Closing | State::Done => {} // Discard: we only wait for EOF.
            State::Handshake { buf } => {
                buf.extend_from_slice(data);
                match codec::parse_upgrade_request(buf) {
                    Ok(None) => {}
                    Ok(Some((req, used))) => {
                        let mut rest = buf.split_off(used);
                        self.upgrade(req, ctx, emit);
                        if !rest.is_empty() {
                            self.receive_bytes(&mut rest, ctx, emit);
                        }
                    }
                    Err(e) => self.reject(e.status, e.reason, e.extra_headers(), ctx),
                }
            }
            State::Open { decoder } => {
                let out = &mut self.out;
                let ping_us = &mut self.ping_us;
                let gate = &mut self.gate;
                let bucket = &mut self.bucket;
                let mut shed = None;
                let mut ending = None;
                let res = decoder.feed(data, &mut |ev| {
                    if ending.is_some() {
                        return; // The connection is ending: nothing after it counts.
                    }
                    match ev {
                        Event::Text(t) => {
                            let cfg = ctx.cfg;
                            if !bucket.take(cfg.msg_rate, cfg.msg_burst, ctx.now_us) {
                                shed = Some(Shed::MsgRate);
                                ending =
                                    Some(Ending::Fail(codec::CLOSE_POLICY_VIOLATION, MSG_RATE));
                                return;
                            }
                            match gate.incoming(t, ctx.now, cfg.max_pending_calls) {
                                Incoming::Pass => emit(ConnEvent::Message(t)),
                                Incoming::Held => {}
                                Incoming::Overflow => {
                                    shed = Some(Shed::PendingCalls);
                                    ending = Some(Ending::Fail(
                                        codec::CLOSE_POLICY_VIOLATION,
                                        TOO_MANY_CALLS,
                                    ));
                                }
                            }
                        }
                        Event::Binary(_) => {
                            ending = Some(Ending::Fail(codec::CLOSE_UNSUPPORTED_DATA, BINARY))
                        }
                        Event::Ping(p) => codec::encode_frame(out, OpCode::Pong, p, true, None),
                        Event::Pong(_) => {
                            // A pong without our ping (RFC 6455 §5.5.3 allows them) measures nothing.
                            if *ping_us != 0 {
                                let rtt_us = (ctx.now_us as u32).wrapping_sub(*ping_us);
                                *ping_us = 0;
                                emit(ConnEvent::Pong { rtt_us });
                            }
                        }
                        Event::Close(code, reason) => {
                            ending = Some(Ending::PeerClose(code, reason.to_owned()))
                        }
                    }
                });
                if shed.is_some() {
                    self.shed = shed;
                }
                match (ending, res) {
                    (Some(Ending::Fail(code, reason)), _) => {
                        self.close_with((code, reason), Some((code, reason)), ctx, emit)
                    }
                    (Some(Ending::PeerClose(code, reason)), _) => {
                        // Report the peer's code and reason; echo its code as RFC 6455 §5.5.1 suggests (a
                        // close without a code is answered with 1000).
                        let echo = code.unwrap_or(codec::CLOSE_NORMAL);
                        let report = (code.unwrap_or(codec::CLOSE_NO_STATUS), reason.as_str());
                        self.close_with(report, Some((echo, "")), ctx, emit);
                    }
                    (None, Err(e)) => self.close_with(
                        (e.close_code, e.reason),
                        Some((e.close_code, e.reason)),
                        ctx,
                        emit,
                    ),
                    (None, Ok(())) => {}
                }
            }
        }
    }

    /// The handshake decision: charger id from the path, the auth table, the subprotocol.
    fn upgrade(&mut self, req: UpgradeRequest, ctx: &Ctx<'_>, emit: &mut dyn FnMut(ConnEvent<'_>)) {
        let cfg = ctx.cfg;
        if self.busy_retry != 0 {
            let retry = self.busy_retry.to_string();
            return self.reject(503, BUSY, &[("Retry-After", &retry)], ctx);
        }
        let charger = match codec::charger_id_from_path(&req.path, &cfg.path_prefix) {
            Ok(id) => id,
            Err(e) => return self.reject(e.status, e.reason, e.extra_headers(), ctx),
        };
        let basic = req
            .basic_auth
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_slice()));
        let channel = self.transport.channel();
        let profile = channel.profile();
        match ctx.auth.decide(&charger, basic, channel, ctx.now_us) {
            Decision::Accept => {}
            // Over the node's rate of new unknown ids: the same answer as admission control's, for the same
            // reason (the node protecting itself), decided before anything of the charger reaches Python.
            Decision::AcceptUnknown => {
                let verdict = ctx.admission.borrow_mut().admit_unknown(ctx.now_us);
                if let Verdict::Refuse { retry_after, .. } = verdict {
                    let retry = retry_after.to_string();
                    return self.reject(503, UNKNOWN_BUSY, &[("Retry-After", &retry)], ctx);
                }
            }
            // 429 with Retry-After rather than another 401: the same answer whatever the credentials (so a
            // guesser learns nothing from it), and one a charger and its operator can tell from a wrong key
            // ("wait", not "fix your key"), with the time a well-behaved charger should wait. Not 503: that
            // is the node's own overload (admission control), which is a different thing to alert on.
            Decision::Throttled { retry_after } => {
                let retry = retry_after.to_string();
                return self.reject(429, THROTTLED, &[("Retry-After", &retry)], ctx);
            }
            Decision::BadCredentials => {
                return self.reject(
                    401,
                    "bad or missing credentials for this charge point",
                    &[("WWW-Authenticate", "Basic realm=\"ampgate\"")],
                    ctx,
                )
            }
            Decision::Unknown => return self.reject(404, "unknown charge point", &[], ctx),
            Decision::ProfileTooLow { required } => {
                let why = match required {
                    2 => "this charge point must connect over TLS (security profile 2 or 3)",
                    _ => "this charge point must connect with a client certificate (security profile 3)",
                };
                return self.reject(403, why, &[], ctx);
            }
            Decision::CertificateMismatch => {
                return self.reject(
                    403,
                    "the client certificate's common name is not this charge point's id",
                    &[],
                    ctx,
                )
            }
        }
        let protocol = choose_protocol(&cfg.protocols, &req.protocols);
        if protocol.is_none() && !cfg.upgrade_without_protocol {
            return self.reject(400, NO_PROTOCOL, &[], ctx);
        }
        codec::response_101(&mut self.out, &codec::accept_key(&req.key), protocol);
        self.state = State::Open {
            decoder: Decoder::new(Role::Server, cfg.max_message),
        };
        match protocol {
            // `upgrade_without_protocol` (the OCPP-J 1.6 text): complete the handshake without the header,
            // then close.
            None => {
                let close = (codec::CLOSE_PROTOCOL_ERROR, NO_PROTOCOL);
                self.close_with(close, Some(close), ctx, emit);
            }
            Some(protocol) => {
                self.announced = true;
                emit(ConnEvent::Connected {
                    charger: &charger,
                    protocol,
                    profile,
                });
            }
        }
    }

    /// Answer the upgrade with an HTTP error, then close.
    fn reject(&mut self, status: u16, reason: &str, extra: &[(&str, &str)], ctx: &Ctx<'_>) {
        self.refused = status;
        codec::response_error(&mut self.out, status, reason, extra);
        self.close_with((0, ""), None, ctx, &mut |_| {});
    }

    /// Begin closing: tell the control plane (once) with `report`, queue the close frame `frame` if any, and
    /// linger for the peer's close or EOF.
    fn close_with(
        &mut self,
        report: (u16, &str),
        frame: Option<(u16, &str)>,
        ctx: &Ctx<'_>,
        emit: &mut dyn FnMut(ConnEvent<'_>),
    ) {
        if matches!(self.state, State::Closing | State::Done) {
            return;
        }
        self.report(report.0, report.1, emit);
        self.state = State::Closing;
        self.gate = CallGate::default();
        self.deadline = ctx.now + CLOSE_LINGER_SECS;
        if let Some((code, reason)) = frame {
            codec::encode_close(&mut self.out, code, reason, None);
        }
    }

    fn report(&mut self, code: u16, reason: &str, emit: &mut dyn FnMut(ConnEvent<'_>)) {
        if self.announced {
            self.announced = false;
            emit(ConnEvent::Disconnected { code, reason });
        }
    }

    /// Finish at once: report `code` (if the control plane knows the connection) and drop the socket.
    fn finish(&mut self, code: u16, reason: &str, emit: &mut dyn FnMut(ConnEvent<'_>)) {
        self.report(code, reason, emit);
        self.state = State::Done;
        self.out = Vec::new();
        self.gate = CallGate::default();
    }

    /// The control plane (or the driver) closes the connection with `code` and `reason`, which are reported
    /// back and sent in the close frame.
    pub fn close(
        &mut self,
        code: u16,
        reason: &str,
        ctx: &Ctx<'_>,
        emit: &mut dyn FnMut(ConnEvent<'_>),
    ) {
        self.close_with((code, reason), Some((code, reason)), ctx, emit);
    }

    /// The server shuts down: a connection still in its handshake is dropped, any other is closed with `code`.
    pub fn shutdown(&mut self, code: u16, ctx: &Ctx<'_>, emit: &mut dyn FnMut(ConnEvent<'_>)) {
        if matches!(self.state, State::Handshake { .. }) {
            self.finish(codec::CLOSE_ABNORMAL, SHUTTING_DOWN, emit);
        } else {
            self.close(code, SHUTTING_DOWN, ctx, emit);
        }
    }

    /// The socket failed or the peer went away without a close frame.
    pub fn lost(&mut self, why: Lost, emit: &mut dyn FnMut(ConnEvent<'_>)) {
        self.finish(codec::CLOSE_ABNORMAL, why.reason(), emit);
    }

    /// Queue a text message to the charger; dropped unless the connection is open. When it answers the
    /// charger's outstanding CALL, the next CALL the charger pipelined goes to the control plane now.
    pub fn send_text(
        &mut self,
        payload: &[u8],
        ctx: &Ctx<'_>,
        emit: &mut dyn FnMut(ConnEvent<'_>),
    ) -> bool {
        if !self.is_open() {
            return false;
        }
        codec::encode_frame(&mut self.out, OpCode::Text, payload, true, None);
        if let Some(next) = self.gate.outgoing(payload, ctx.now) {
            emit(ConnEvent::Message(&next));
        }
        true
    }

    /// The worker's buffer budget is exceeded and this connection is the one to go: free its buffers now
    /// and close it with 1013 (Try Again Later: the server is the one short of memory, not the charger at
    /// fault). The close frame goes out only when nothing is queued before it (a half-written frame cannot be
    /// cut short); otherwise the socket is dropped at once.
    pub fn shed_for_budget(&mut self, ctx: &Ctx<'_>, emit: &mut dyn FnMut(ConnEvent<'_>)) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.shed = Some(Shed::BufferBudget);
        if self.is_open() && self.out.is_empty() {
            self.close(CLOSE_TRY_AGAIN_LATER, BUFFER_BUDGET, ctx, emit);
        } else {
            self.finish(CLOSE_TRY_AGAIN_LATER, BUFFER_BUDGET, emit);
        }
        self.out.shrink_to_fit();
    }

    /// Why the gateway closed this connection for its bounds, if it did.
    pub fn shed_reason(&self) -> Option<Shed> {
        self.shed
    }

    /// Bytes of buffers this connection holds now (capacity, what they cost), for the worker's budget: O(1).
    pub fn buffered_bytes(&self) -> usize {
        self.heap_bytes() + self.gate.bytes()
    }

    /// Bytes waiting for the socket.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// The socket took `n` bytes of [`Self::output`]. What it did not take stays queued, up to
    /// `cfg.max_write_queue`: past that the charger is not reading, and it is given up on with 1008.
    pub fn wrote(&mut self, n: usize, ctx: &Ctx<'_>, emit: &mut dyn FnMut(ConnEvent<'_>)) {
        self.out.drain(..n);
        if self.out.is_empty() {
            self.out = Vec::new();
        } else if self.out.len() > ctx.cfg.max_write_queue {
            self.finish(codec::CLOSE_POLICY_VIOLATION, WRITE_QUEUE_FULL, emit);
        }
    }

    /// True once, when the connection is closing and its last bytes are written: shut the write side.
    pub fn take_shutdown_write(&mut self) -> bool {
        if matches!(self.state, State::Closing) && self.out.is_empty() && !self.shut {
            self.shut = true;
            return true;
        }
        false
    }

    /// The timer: handshake and linger deadlines, pings and ping timeouts. `reading` is false while the
    /// driver does not read this connection (a full link): silence then proves nothing, so no ping is sent or
    /// timed.
    pub fn tick(&mut self, reading: bool, ctx: &Ctx<'_>, emit: &mut dyn FnMut(ConnEvent<'_>)) {
        let now = ctx.now;
        match self.state {
            State::Handshake { .. } | State::Closing => {
                if now >= self.deadline {
                    self.finish(codec::CLOSE_ABNORMAL, TIMED_OUT, emit);
                }
            }
            State::Done => {}
            State::Open { .. } => {
                if reading {
                    // Only while the control plane is read: a lagging one is slow, not silent.
                    let timeout = pending_timeout(ctx.cfg);
                    if let Some(next) = self.gate.expire(now, timeout) {
                        emit(ConnEvent::Message(&next));
                    }
                }
                let ping_every = ctx.cfg.ping_interval.as_secs() as u32;
                if ping_every == 0 || !reading {
                    self.ping_sent = 0;
                } else if self.ping_sent != 0 {
                    if now - self.ping_sent >= ping_timeout(ctx.cfg) {
                        self.finish(codec::CLOSE_ABNORMAL, NO_PONG, emit);
                    }
                } else if now - self.last_rx >= ping_every {
                    self.ping_sent = now;
                    self.ping_us = (ctx.now_us as u32).max(1);
                    codec::encode_frame(&mut self.out, OpCode::Ping, b"", true, None);
                }
            }
        }
    }

    /// Whether [`Self::tick`] has something to do now (a driver with many connections ticks only these).
    pub fn is_due(&self, reading: bool, ctx: &Ctx<'_>) -> bool {
        match self.state {
            // A ping outstanding while the driver does not read is forgotten (see `tick`).
            State::Open { .. } if !reading => self.ping_sent != 0,
            _ => self.next_deadline(ctx.cfg).is_some_and(|at| at <= ctx.now),
        }
    }

    /// When [`Self::tick`] next has something to do (seconds), if ever.
    pub fn next_deadline(&self, cfg: &WorkerConfig) -> Option<u32> {
        match self.state {
            State::Handshake { .. } | State::Closing => Some(self.deadline),
            State::Done => None,
            State::Open { .. } => {
                let ping_every = cfg.ping_interval.as_secs() as u32;
                let ping = if ping_every == 0 {
                    None
                } else if self.ping_sent != 0 {
                    Some(self.ping_sent + ping_timeout(cfg))
                } else {
                    Some(self.last_rx + ping_every)
                };
                let gate = self.gate.deadline(pending_timeout(cfg));
                match (ping, gate) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// The HTTP status the upgrade was refused with, if it was.
    pub fn refused_status(&self) -> Option<u16> {
        (self.refused != 0).then_some(self.refused)
    }

    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshake { .. })
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    pub fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing)
    }

    /// Drop the socket (and this connection).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Heap held by this connection (buffers), for the worker's stats.
    pub fn heap_bytes(&self) -> usize {
        self.out.capacity()
            + match &self.state {
                State::Handshake { buf } => buf.capacity(),
                State::Open { decoder } => decoder.heap_bytes(),
                State::Closing | State::Done => 0,
            }
    }
}

fn pending_timeout(cfg: &WorkerConfig) -> u32 {
    cfg.pending_call_timeout.as_secs().max(1) as u32
}

fn ping_timeout(cfg: &WorkerConfig) -> u32 {
    cfg.ping_timeout.as_secs().max(1) as u32
}
