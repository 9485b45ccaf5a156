//! The load generator's event loop: one mio poll over every client connection of this process.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::config::LoadGenConfig;
use super::ocpp::{self, Incoming, BOOT_ID};
use crate::client::net::{self, connect, connect_failure, XorShift};
use crate::client::ClientError;
use crate::client::Histogram;
use crate::codec::{self, Decoder, Event, OpCode, Role};
use crate::limits::{raise_nofile_limit, FD_RESERVE};
/// One read buffer for the whole process: an idle connection holds no read buffer of its own.
const SCRATCH: usize = 64 << 10;
/// Readiness events taken per poll.
const EVENTS: usize = 1024;
/// Longest a phase loop sleeps in poll; bounds how late it notices its deadline.
const MAX_WAIT: Duration = Duration::from_millis(10);
/// After a heartbeat phase's duration, how long to wait for the replies still outstanding, so the next
/// phase starts with none (each connection has at most one CALL outstanding, as OCPP-J requires).
const DRAIN: Duration = Duration::from_secs(5);

enum State {
    /// Not started yet.
    Idle,
    /// TCP connect in progress.
    Connecting,
    /// Upgrade request sent; `buf` holds a response head cut by a read boundary (usually never allocated).
    Upgrading { key: Box<str>, buf: Vec<u8> },
    /// 101 received, BootNotification sent, waiting for its CALLRESULT.
    Booting,
    /// Booted: idle or exchanging heartbeats.
    Open,
    /// Our close frame sent; waiting for the server's close frame or EOF.
    Closing,
    /// Socket dropped (failed, closed, or finished).
    Done,
}

struct Conn {
    sock: Option<TcpStream>,
    state: State,
    decoder: Decoder,
    /// Bytes the socket has not taken yet. Empty (no allocation) while the connection is idle.
    wbuf: Vec<u8>,
    /// A heartbeat CALL is waiting for its reply.
    outstanding: bool,
    /// When the connect started, µs since the load generator's epoch (for the boot latency).
    started_us: u64,
}

/// What one decoded server event asks of the loop (collected while the decoder is borrowed).
enum Act {
    Boot(bool),
    BootError,
    Result(Option<u64>),
    CallError,
    ServerCall(String),
    Pong(Vec<u8>),
    PeerClose(Option<u16>),
    Unreadable,
}

/// Result of [`LoadGen::connect_and_boot`].
#[derive(Debug, Clone, Default)]
pub struct BootReport {
    /// Connects started in this phase.
    pub attempted: u64,
    /// TCP connects that completed.
    pub connected: u64,
    /// Upgrades answered with 101 and the subprotocol we asked for.
    pub upgraded: u64,
    /// BootNotifications answered with status Accepted.
    pub booted: u64,
    /// Connections lost in this phase, by what went wrong ("connect refused", "http 404", "timeout", ...).
    pub failures: BTreeMap<String, u64>,
    /// From the first connect to the last accepted boot (to the end of the phase when none was accepted).
    pub elapsed_s: f64,
    /// Connect start to BootNotification accepted, per connection.
    pub boot_latency: Histogram,
    /// Connections open (booted) at the end of the phase, all phases so far included.
    pub open: u64,
}

/// Result of [`LoadGen::hold`].
#[derive(Debug, Clone, Default)]
pub struct HoldReport {
    pub seconds: f64,
    pub open_at_start: u64,
    pub open_at_end: u64,
    /// Connections lost while holding, by how.
    pub lost: BTreeMap<String, u64>,
    pub pings_answered: u64,
}

/// Result of [`LoadGen::heartbeats`].
#[derive(Debug, Clone, Default)]
pub struct HeartbeatReport {
    pub duration_s: f64,
    /// Requested total rate; 0 = saturation (closed loop with `inflight` CALLs outstanding).
    pub target_rate: f64,
    pub inflight: u64,
    pub sent: u64,
    /// Replies received within the duration: the numerator of `rate`.
    pub answered: u64,
    /// Replies received during the drain after the duration.
    pub answered_late: u64,
    /// CALLERROR replies (counted apart from `answered`).
    pub errors: u64,
    /// Still unanswered after the drain.
    pub unanswered: u64,
    /// Open-loop sends that found every connection with a CALL outstanding.
    pub skipped: u64,
    /// `answered / duration_s`.
    pub rate: f64,
    /// Round trips of every reply (late ones included).
    pub latency: Histogram,
    pub lost: BTreeMap<String, u64>,
    pub open: u64,
}

/// Result of [`LoadGen::close`].
#[derive(Debug, Clone, Default)]
pub struct CloseReport {
    /// Close frames sent.
    pub closing: u64,
    /// Connections whose close finished (server's close frame or EOF) before the timeout.
    pub clean: u64,
    pub elapsed_s: f64,
}

pub struct LoadGen {
    cfg: LoadGenConfig,
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    /// Next connection to start.
    next: usize,
    inflight: usize,
    open: usize,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    text: String,
    acts: Vec<Act>,
    host_header: String,
    rng: XorShift,
    epoch: Instant,
    // Per-phase counters, reset at the start of each phase.
    failures: BTreeMap<String, u64>,
    booted: u64,
    upgraded: u64,
    connected: u64,
    last_boot: Option<Instant>,
    boot_latency: Histogram,
    pings: u64,
    hb_outstanding: usize,
    hb_answered: u64,
    hb_errors: u64,
    hb_seq: u64,
    latency: Histogram,
    /// Open connections without a heartbeat outstanding, in the order they get the next one: FIFO, so every
    /// connection takes its turn.
    free: VecDeque<u32>,
}

impl LoadGen {
    /// Prepare `cfg.count` connections (nothing is opened yet). Raises the soft open-file limit to the hard
    /// one first.
    ///
    /// Errors: [`ClientError::FileLimit`] when the hard limit is too low for `count` connections;
    /// [`ClientError::Config`] for a bad setting; `Io` when epoll cannot be created.
    pub fn new(cfg: LoadGenConfig) -> Result<Self, ClientError> {
        cfg.check()?;
        let limit = raise_nofile_limit();
        let needed = cfg.count + FD_RESERVE;
        if needed > limit {
            return Err(ClientError::FileLimit {
                limit,
                count: cfg.count,
                needed,
                reserve: FD_RESERVE,
                per_process: limit.saturating_sub(FD_RESERVE),
            });
        }
        let max_message = cfg.max_message;
        let conns = (0..cfg.count)
            .map(|_| Conn {
                sock: None,
                state: State::Idle,
                decoder: Decoder::new(Role::Client, max_message),
                wbuf: Vec::new(),
                outstanding: false,
                started_us: 0,
            })
            .collect();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ (u64::from(std::process::id()) << 32);
        Ok(Self {
            host_header: cfg.target.to_string(),
            cfg,
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS),
            conns,
            next: 0,
            inflight: 0,
            open: 0,
            scratch: vec![0; SCRATCH],
            frame: Vec::new(),
            text: String::new(),
            acts: Vec::new(),
            rng: XorShift::new(seed),
            epoch: Instant::now(),
            failures: BTreeMap::new(),
            booted: 0,
            upgraded: 0,
            connected: 0,
            last_boot: None,
            boot_latency: Histogram::new(),
            pings: 0,
            hb_outstanding: 0,
            hb_answered: 0,
            hb_errors: 0,
            hb_seq: 0,
            latency: Histogram::new(),
            free: VecDeque::new(),
        })
    }

    /// Connections booted and still open.
    pub fn open(&self) -> usize {
        self.open
    }

    pub fn config(&self) -> &LoadGenConfig {
        &self.cfg
    }

    // -- phases ------------------------------------------------------------------------------------------

    /// Connect every connection not started yet (at most `max_inflight` in the connect / upgrade / boot
    /// stages at once), upgrade, send a BootNotification and wait for it to be accepted, until all are done
    /// or `timeout` has passed. Connections still unfinished then are dropped and counted as "timeout".
    pub fn connect_and_boot(&mut self, timeout: Duration) -> Result<BootReport, ClientError> {
        self.reset_phase();
        let t0 = Instant::now();
        let end = t0 + timeout;
        let mut attempted = 0u64;
        loop {
            while self.inflight < self.cfg.max_inflight && self.next < self.conns.len() {
                let idx = self.next;
                self.next += 1;
                attempted += 1;
                self.start_connect(idx);
            }
            if self.inflight == 0 && self.next >= self.conns.len() {
                break;
            }
            let now = Instant::now();
            if now >= end {
                break;
            }
            self.turn((end - now).min(MAX_WAIT))?;
        }
        for idx in 0..self.conns.len() {
            if matches!(
                self.conns[idx].state,
                State::Connecting | State::Upgrading { .. } | State::Booting
            ) {
                self.lose(idx, "timeout");
            }
        }
        let not_started = self.conns.len() - self.next;
        if not_started > 0 {
            *self
                .failures
                .entry("not started (timeout)".into())
                .or_default() += not_started as u64;
        }
        let elapsed = match self.last_boot {
            Some(t) => t.duration_since(t0),
            None => t0.elapsed(),
        };
        Ok(BootReport {
            attempted,
            connected: self.connected,
            upgraded: self.upgraded,
            booted: self.booted,
            failures: std::mem::take(&mut self.failures),
            elapsed_s: elapsed.as_secs_f64(),
            boot_latency: self.boot_latency.clone(),
            open: self.open as u64,
        })
    }

    /// Keep every connection open for `duration`, answering the server's pings and CALLs; counts the
    /// connections the server closes meanwhile.
    pub fn hold(&mut self, duration: Duration) -> Result<HoldReport, ClientError> {
        self.reset_phase();
        let open_at_start = self.open as u64;
        let end = Instant::now() + duration;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            self.turn((end - now).min(Duration::from_millis(250)))?;
        }
        Ok(HoldReport {
            seconds: duration.as_secs_f64(),
            open_at_start,
            open_at_end: self.open as u64,
            lost: std::mem::take(&mut self.failures),
            pings_answered: self.pings,
        })
    }

    /// Send Heartbeat CALLs for `duration` over every open connection (each has at most one outstanding,
    /// and they take turns in FIFO order).
    ///
    /// `rate == 0`: saturation, a closed loop keeping `inflight` CALLs outstanding in total (0 = one per open
    /// connection): the next CALL goes out as soon as a reply comes in. `rate > 0`: open loop, CALLs sent at
    /// `rate` per second in total whatever the replies do (a send that finds every connection busy is counted
    /// as skipped). Afterwards waits up to 5 s for outstanding replies.
    pub fn heartbeats(
        &mut self,
        duration: Duration,
        rate: f64,
        inflight: usize,
    ) -> Result<HeartbeatReport, ClientError> {
        self.reset_phase();
        self.latency.clear();
        self.free = (0..self.conns.len())
            .filter(|&i| matches!(self.conns[i].state, State::Open) && !self.conns[i].outstanding)
            .map(|i| i as u32)
            .collect();
        let cap = if inflight == 0 { self.open } else { inflight };
        let t0 = Instant::now();
        let end = t0 + duration;
        let mut sent = 0u64;
        let mut scheduled = 0u64;
        let mut skipped = 0u64;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            let wait = if rate <= 0.0 {
                while self.hb_outstanding < cap && self.send_heartbeat() {
                    sent += 1;
                }
                MAX_WAIT
            } else {
                let elapsed = now.duration_since(t0).as_secs_f64();
                let due = (rate * elapsed) as u64;
                while scheduled < due {
                    scheduled += 1;
                    if self.send_heartbeat() {
                        sent += 1;
                    } else {
                        skipped += 1;
                    }
                }
                let next_at = (scheduled + 1) as f64 / rate;
                Duration::from_secs_f64((next_at - elapsed).max(0.0)).min(MAX_WAIT)
            };
            self.turn(wait.min(end - now))?;
        }
        let answered = self.hb_answered;
        let drain_end = Instant::now() + DRAIN;
        while self.hb_outstanding > 0 {
            let now = Instant::now();
            if now >= drain_end {
                break;
            }
            self.turn((drain_end - now).min(MAX_WAIT))?;
        }
        let unanswered = self.hb_outstanding as u64;
        // A reply that comes after this is ignored; the connection may take part in the next phase.
        for c in &mut self.conns {
            c.outstanding = false;
        }
        self.hb_outstanding = 0;
        self.free = VecDeque::new();
        let secs = duration.as_secs_f64();
        Ok(HeartbeatReport {
            duration_s: secs,
            target_rate: rate.max(0.0),
            inflight: cap as u64,
            sent,
            answered,
            answered_late: self.hb_answered - answered,
            errors: self.hb_errors,
            unanswered,
            skipped,
            rate: if secs > 0.0 {
                answered as f64 / secs
            } else {
                0.0
            },
            latency: self.latency.clone(),
            lost: std::mem::take(&mut self.failures),
            open: self.open as u64,
        })
    }

    /// Send a close frame (`CLOSE_NORMAL`) on every open connection, wait up to `timeout` for the server to finish
    /// each close, then drop every socket.
    pub fn close(&mut self, timeout: Duration) -> Result<CloseReport, ClientError> {
        self.reset_phase();
        let t0 = Instant::now();
        let mut closing = 0u64;
        for idx in 0..self.conns.len() {
            match self.conns[idx].state {
                State::Open => {
                    closing += 1;
                    self.open -= 1;
                    self.conns[idx].state = State::Closing;
                    let mut frame = std::mem::take(&mut self.frame);
                    frame.clear();
                    codec::encode_close(&mut frame, codec::CLOSE_NORMAL, "", Some(self.mask()));
                    self.write(idx, &frame);
                    self.frame = frame;
                }
                State::Idle | State::Done | State::Closing => {}
                _ => self.lose(idx, "closed by us before booting"),
            }
        }
        let end = t0 + timeout;
        let clean = loop {
            let remaining = self
                .conns
                .iter()
                .filter(|c| matches!(c.state, State::Closing))
                .count() as u64;
            let now = Instant::now();
            if remaining == 0 || now >= end {
                break closing - remaining;
            }
            self.turn((end - now).min(MAX_WAIT))?;
        };
        for idx in 0..self.conns.len() {
            self.drop_sock(idx);
        }
        Ok(CloseReport {
            closing,
            clean,
            elapsed_s: t0.elapsed().as_secs_f64(),
        })
    }

    // -- the loop ----------------------------------------------------------------------------------------

    fn reset_phase(&mut self) {
        self.failures.clear();
        self.booted = 0;
        self.upgraded = 0;
        self.connected = 0;
        self.last_boot = None;
        self.boot_latency.clear();
        self.pings = 0;
        self.hb_answered = 0;
        self.hb_errors = 0;
    }

    fn turn(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        match self.poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.events = events;
                return Err(e.into());
            }
        }
        for ev in events.iter() {
            let idx = ev.token().0;
            let read_closed = ev.is_read_closed();
            if matches!(self.conns[idx].state, State::Connecting) {
                if ev.is_writable() || ev.is_error() || read_closed || ev.is_write_closed() {
                    self.finish_connect(idx);
                }
                continue;
            }
            if ev.is_writable() {
                self.flush(idx);
            }
            if ev.is_readable() || read_closed || ev.is_error() {
                self.read(idx, read_closed || ev.is_error());
            }
        }
        self.events = events;
        Ok(())
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn mask(&mut self) -> [u8; 4] {
        self.rng.mask()
    }

    fn start_connect(&mut self, idx: usize) {
        let started = self.now_us();
        let c = &mut self.conns[idx];
        c.started_us = started;
        match connect(self.cfg.target, self.cfg.source_ip(idx)) {
            Ok(mut sock) => {
                if let Err(e) = self.poll.registry().register(
                    &mut sock,
                    Token(idx),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    *self.failures.entry(format!("register: {e}")).or_default() += 1;
                    return;
                }
                c.sock = Some(sock);
                c.state = State::Connecting;
                self.inflight += 1;
            }
            Err(e) => {
                c.state = State::Done;
                *self.failures.entry(connect_failure(&e)).or_default() += 1;
            }
        }
    }

    fn finish_connect(&mut self, idx: usize) {
        let Some(sock) = self.conns[idx].sock.as_ref() else {
            return;
        };
        match net::connected(sock) {
            Ok(true) => {}
            Ok(false) => return, // Not yet: wait for the next event.
            Err(e) => return self.lose_owned(idx, connect_failure(&e)),
        }
        self.connected += 1;
        let id = self.cfg.charger_id(idx);
        let mut req = std::mem::take(&mut self.frame);
        let key = net::upgrade_request(
            &mut req,
            &mut self.rng,
            &self.host_header,
            &self.cfg.path_prefix,
            &id,
            self.cfg.protocol,
            self.cfg.password.as_deref(),
        );
        self.conns[idx].state = State::Upgrading {
            key,
            buf: Vec::new(),
        };
        self.write(idx, &req);
        self.frame = req;
    }

    /// Read until the socket is drained. A read shorter than the buffer means the receive queue was empty
    /// at that moment, and edge-triggered epoll reports any later data as a new event, so it stops there and
    /// saves the EAGAIN read, except when the peer's FIN is pending (no later event would report it).
    fn read(&mut self, idx: usize, to_eof: bool) {
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(sock) = self.conns[idx].sock.as_mut() {
            match sock.read(&mut scratch) {
                Ok(0) => {
                    self.on_eof(idx);
                    break;
                }
                Ok(n) => {
                    self.on_bytes(idx, &mut scratch[..n]);
                    if n < scratch.len() && !to_eof {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = format!("{} ({})", self.stage_name(idx), e.kind());
                    self.lose_owned(idx, kind);
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    fn stage_name(&self, idx: usize) -> &'static str {
        match self.conns[idx].state {
            State::Connecting => "reset while connecting",
            State::Upgrading { .. } => "reset during upgrade",
            State::Booting => "reset during boot",
            State::Open => "reset while open",
            _ => "reset",
        }
    }

    fn on_eof(&mut self, idx: usize) {
        match self.conns[idx].state {
            State::Closing => self.finish(idx),
            State::Upgrading { .. } => self.lose(idx, "closed during upgrade"),
            State::Booting => self.lose(idx, "closed during boot"),
            _ => self.lose(idx, "closed by server without a close frame"),
        }
    }

    fn on_bytes(&mut self, idx: usize, data: &mut [u8]) {
        match self.conns[idx].state {
            State::Upgrading { .. } => self.on_upgrade_bytes(idx, data),
            State::Booting | State::Open | State::Closing => self.on_frames(idx, data),
            State::Idle | State::Connecting | State::Done => {}
        }
    }

    fn on_upgrade_bytes(&mut self, idx: usize, data: &mut [u8]) {
        let State::Upgrading { key, buf } = &mut self.conns[idx].state else {
            return;
        };
        match net::feed_upgrade(buf, data, key) {
            Ok(None) => {}
            Ok(Some((resp, mut rest))) => {
                if resp.status != 101 {
                    return self.lose_owned(idx, format!("http {}", resp.status));
                }
                if resp.protocol.as_deref() != Some(self.cfg.protocol.name()) {
                    return self.lose(idx, "no agreed subprotocol");
                }
                self.upgraded += 1;
                self.conns[idx].state = State::Booting;
                let mut text = std::mem::take(&mut self.text);
                ocpp::boot_call(
                    &mut text,
                    self.cfg.protocol,
                    &self.cfg.vendor,
                    &self.cfg.model,
                );
                self.send(idx, OpCode::Text, text.as_bytes());
                self.text = text;
                if !rest.is_empty() {
                    self.on_frames(idx, &mut rest);
                }
            }
            Err(e) => self.lose_owned(idx, format!("bad upgrade response: {}", e.reason)),
        }
    }

    fn on_frames(&mut self, idx: usize, data: &mut [u8]) {
        let mut acts = std::mem::take(&mut self.acts);
        let res = self.conns[idx].decoder.feed(data, &mut |ev| {
            acts.push(match ev {
                Event::Text(t) => match ocpp::classify(t) {
                    Incoming::Result(id) if id == BOOT_ID => Act::Boot(ocpp::boot_accepted(t)),
                    Incoming::Result(id) => Act::Result(ocpp::heartbeat_sent_us(id)),
                    Incoming::Error(id) if id == BOOT_ID => Act::BootError,
                    Incoming::Error(_) => Act::CallError,
                    Incoming::Call(id) => Act::ServerCall(id.to_owned()),
                    Incoming::Other => Act::Unreadable,
                },
                Event::Binary(_) => Act::Unreadable,
                Event::Ping(p) => Act::Pong(p.to_vec()),
                Event::Pong(_) => return,
                Event::Close(code, _) => Act::PeerClose(code),
            })
        });
        for act in acts.drain(..) {
            self.on_act(idx, act);
        }
        self.acts = acts;
        if let Err(e) = res {
            if self.conns[idx].sock.is_some() {
                let mut frame = std::mem::take(&mut self.frame);
                frame.clear();
                codec::encode_close(&mut frame, e.close_code, e.reason, Some(self.mask()));
                self.write(idx, &frame);
                self.frame = frame;
                self.lose_owned(idx, format!("protocol error: {}", e.reason));
            }
        }
    }

    fn on_act(&mut self, idx: usize, act: Act) {
        if self.conns[idx].sock.is_none() {
            return;
        }
        match act {
            Act::Boot(accepted) => {
                if !matches!(self.conns[idx].state, State::Booting) {
                    return;
                }
                if !accepted {
                    return self.lose(idx, "boot not accepted");
                }
                self.inflight -= 1;
                self.open += 1;
                self.booted += 1;
                self.conns[idx].state = State::Open;
                let now = Instant::now();
                self.last_boot = Some(now);
                let us = now.duration_since(self.epoch).as_micros() as u64;
                self.boot_latency
                    .record(us.saturating_sub(self.conns[idx].started_us));
            }
            Act::BootError => self.lose(idx, "boot answered with CALLERROR"),
            Act::Result(sent) => {
                let c = &mut self.conns[idx];
                if !c.outstanding {
                    return; // A late reply from an earlier phase.
                }
                c.outstanding = false;
                self.hb_outstanding -= 1;
                self.hb_answered += 1;
                if let Some(sent) = sent {
                    let now = self.now_us();
                    self.latency.record(now.saturating_sub(sent));
                }
                if matches!(self.conns[idx].state, State::Open) {
                    self.free.push_back(idx as u32);
                }
            }
            Act::CallError => {
                let c = &mut self.conns[idx];
                if c.outstanding {
                    c.outstanding = false;
                    self.hb_outstanding -= 1;
                    self.hb_errors += 1;
                    self.free.push_back(idx as u32);
                }
            }
            Act::ServerCall(id) => {
                let mut text = std::mem::take(&mut self.text);
                ocpp::not_implemented(&mut text, &id);
                self.send(idx, OpCode::Text, text.as_bytes());
                self.text = text;
            }
            Act::Pong(payload) => {
                self.pings += 1;
                self.send(idx, OpCode::Pong, &payload);
            }
            Act::PeerClose(code) => {
                if matches!(self.conns[idx].state, State::Closing) {
                    return self.finish(idx);
                }
                // Echo the code (RFC 6455 §5.5.1), then let go: the server closes TCP after the handshake.
                let echo = code
                    .filter(|c| codec::is_valid_close_code(*c))
                    .unwrap_or(codec::CLOSE_NORMAL);
                let mut frame = std::mem::take(&mut self.frame);
                frame.clear();
                codec::encode_close(&mut frame, echo, "", Some(self.mask()));
                self.write(idx, &frame);
                self.frame = frame;
                let code = code.map_or("none".to_string(), |c| c.to_string());
                self.lose_owned(idx, format!("closed by server (code {code})"));
            }
            Act::Unreadable => {
                *self
                    .failures
                    .entry("unreadable message".into())
                    .or_default() += 1;
            }
        }
    }

    /// Send one heartbeat on the next free connection; false when none is free.
    fn send_heartbeat(&mut self) -> bool {
        while let Some(i) = self.free.pop_front() {
            let idx = i as usize;
            let c = &self.conns[idx];
            if !matches!(c.state, State::Open) || c.outstanding {
                continue;
            }
            self.hb_seq += 1;
            let mut text = std::mem::take(&mut self.text);
            ocpp::heartbeat_call(&mut text, self.now_us(), self.hb_seq);
            self.conns[idx].outstanding = true;
            self.hb_outstanding += 1;
            self.send(idx, OpCode::Text, text.as_bytes());
            self.text = text;
            return true;
        }
        false
    }

    fn send(&mut self, idx: usize, op: OpCode, payload: &[u8]) {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        codec::encode_frame(&mut frame, op, payload, true, Some(self.mask()));
        self.write(idx, &frame);
        if frame.capacity() > SCRATCH {
            frame = Vec::new();
        }
        self.frame = frame;
    }

    /// Write straight to the socket when nothing is queued; queue only what the socket did not take.
    fn write(&mut self, idx: usize, bytes: &[u8]) {
        let c = &mut self.conns[idx];
        let Some(sock) = c.sock.as_mut() else {
            return;
        };
        if let Err(e) = net::write_or_queue(sock, &mut c.wbuf, bytes) {
            self.lose_owned(idx, format!("write failed ({})", e.kind()));
        }
    }

    fn flush(&mut self, idx: usize) {
        let c = &mut self.conns[idx];
        let Some(sock) = c.sock.as_mut() else {
            return;
        };
        if c.wbuf.is_empty() {
            return;
        }
        if let Err(e) = net::flush_queue(sock, &mut c.wbuf) {
            self.lose_owned(idx, format!("write failed ({})", e.kind()));
        }
    }

    fn lose(&mut self, idx: usize, kind: &str) {
        if self.conns[idx].sock.is_none() {
            return;
        }
        if let Some(n) = self.failures.get_mut(kind) {
            *n += 1;
        } else {
            self.failures.insert(kind.to_owned(), 1);
        }
        self.drop_sock(idx);
    }

    fn lose_owned(&mut self, idx: usize, kind: String) {
        if self.conns[idx].sock.is_none() {
            return;
        }
        *self.failures.entry(kind).or_default() += 1;
        self.drop_sock(idx);
    }

    /// A close we started has finished.
    fn finish(&mut self, idx: usize) {
        self.drop_sock(idx);
    }

    fn drop_sock(&mut self, idx: usize) {
        let c = &mut self.conns[idx];
        match c.state {
            State::Connecting | State::Upgrading { .. } | State::Booting => self.inflight -= 1,
            State::Open => self.open -= 1,
            _ => {}
        }
        if c.outstanding {
            c.outstanding = false;
            self.hb_outstanding -= 1;
        }
        c.state = State::Done;
        c.wbuf = Vec::new();
        c.decoder = Decoder::new(Role::Client, 0);
        if let Some(mut sock) = c.sock.take() {
            let _ = self.poll.registry().deregister(&mut sock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{Ipv4Addr, SocketAddr, TcpListener};
    use std::thread;

    /// A tiny blocking server for `n` connections: accepts, answers the upgrade and the boot, then answers
    /// every heartbeat with a CALLRESULT, so the client's bookkeeping can be checked end to end.
    fn serve(listener: TcpListener, n: usize) -> thread::JoinHandle<usize> {
        thread::spawn(move || {
            let mut handles = Vec::new();
            for _ in 0..n {
                let (mut s, _) = listener.accept().unwrap();
                handles.push(thread::spawn(move || {
                    let mut buf = vec![0u8; 4096];
                    let mut have = 0;
                    let (req, used) = loop {
                        let k = s.read(&mut buf[have..]).unwrap();
                        have += k;
                        if let Some(r) = codec::parse_upgrade_request(&buf[..have]).unwrap() {
                            break r;
                        }
                    };
                    assert_eq!(used, have);
                    assert!(req.path.starts_with("/ocpp/T"));
                    let mut out = Vec::new();
                    codec::response_101(&mut out, &codec::accept_key(&req.key), Some("ocpp1.6"));
                    s.write_all(&out).unwrap();
                    let mut dec = Decoder::new(Role::Server, 1 << 16);
                    let mut calls = 0;
                    loop {
                        let k = s.read(&mut buf).unwrap_or(0);
                        if k == 0 {
                            return calls;
                        }
                        let mut replies = Vec::new();
                        let mut closed = false;
                        dec.feed(&mut buf[..k], &mut |ev| match ev {
                            Event::Text(t) => {
                                let Incoming::Call(id) = ocpp::classify(t) else {
                                    panic!("{t}")
                                };
                                calls += 1;
                                let body = if id == BOOT_ID {
                                    r#"{"status":"Accepted","currentTime":"x","interval":300}"#
                                } else {
                                    r#"{"currentTime":"x"}"#
                                };
                                replies.push(format!(r#"[3,"{id}",{body}]"#));
                            }
                            Event::Close(..) => closed = true,
                            _ => {}
                        })
                        .unwrap();
                        for r in replies {
                            out.clear();
                            codec::encode_frame(&mut out, OpCode::Text, r.as_bytes(), true, None);
                            s.write_all(&out).unwrap();
                        }
                        if closed {
                            out.clear();
                            codec::encode_close(&mut out, codec::CLOSE_NORMAL, "", None);
                            let _ = s.write_all(&out);
                            return calls;
                        }
                    }
                }));
            }
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        })
    }

    #[test]
    fn boots_heartbeats_and_closes_against_a_real_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = serve(listener, 4);
        let mut cfg = LoadGenConfig::new(addr, 4);
        cfg.id_prefix = "T".into();
        cfg.max_inflight = 2;
        cfg.source_ips = vec![Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
        let mut lg = LoadGen::new(cfg).unwrap();
        let boot = lg.connect_and_boot(Duration::from_secs(10)).unwrap();
        assert_eq!((boot.attempted, boot.booted), (4, 4), "{:?}", boot.failures);
        assert!(boot.failures.is_empty());
        assert_eq!(boot.boot_latency.count(), 4);
        let hb = lg.heartbeats(Duration::from_millis(300), 0.0, 2).unwrap();
        assert!(
            hb.answered > 0 && hb.unanswered == 0 && hb.errors == 0,
            "{hb:?}"
        );
        assert_eq!(hb.sent, hb.answered + hb.answered_late);
        assert_eq!(hb.latency.count(), hb.sent);
        let paced = lg.heartbeats(Duration::from_millis(300), 100.0, 0).unwrap();
        assert!((20..=31).contains(&paced.sent), "{paced:?}");
        let hold = lg.hold(Duration::from_millis(50)).unwrap();
        assert_eq!(hold.open_at_end, 4);
        let closed = lg.close(Duration::from_secs(5)).unwrap();
        assert_eq!((closed.closing, closed.clean), (4, 4));
        // Every CALL the server saw: 4 boots and every heartbeat.
        assert_eq!(server.join().unwrap() as u64, 4 + hb.sent + paced.sent);
    }

    #[test]
    fn refused_connections_are_counted_not_fatal() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = LoadGenConfig::new(SocketAddr::from(([127, 0, 0, 1], port)), 3);
        let mut lg = LoadGen::new(cfg).unwrap();
        let boot = lg.connect_and_boot(Duration::from_secs(5)).unwrap();
        assert_eq!(boot.booted, 0);
        assert_eq!(boot.failures.get("connect refused"), Some(&3));
        assert_eq!(lg.open(), 0);
    }

    #[test]
    fn too_many_connections_for_the_file_limit_is_a_plain_error() {
        let cfg = LoadGenConfig::new("127.0.0.1:1".parse().unwrap(), 1 << 30);
        let err = LoadGen::new(cfg).err().expect("over the limit");
        let msg = err.to_string();
        assert!(
            msg.contains("may open at most") && msg.contains("more"),
            "{msg}"
        );
    }
}
