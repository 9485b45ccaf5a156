//! A gateway worker: one mio event loop that owns a share of the charger connections.
//!
//! It accepts from the listening socket it shares with the other workers, runs the HTTP upgrade and the
//! handshake decision, frames and deframes with the sans-I/O codec, answers pings and close handshakes, and
//! passes whole text messages to the control plane over the worker link in batches. Nothing here calls Python.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::auth::{AuthTable, Decision};
use super::config::WorkerConfig;
use super::error::GatewayError;
use super::link::{self, conn_id, DownRef, LinkReader, LinkWriter};
use crate::codec::{self, Decoder, Event, OpCode, Role};
// Re-exported: the simulator (rust/sim/) and the bindings reach it by this path.
pub use crate::limits::raise_nofile_limit;
use crate::limits::FD_RESERVE;

const LISTENER: Token = Token(0);
const LINK: Token = Token(1);
const FIRST_CONN: usize = 2;

/// One read buffer for the whole worker: an idle connection holds no read buffer of its own.
const SCRATCH: usize = 64 << 10;
/// Bytes read from one connection per readiness event before the others get a turn.
const READ_BUDGET: usize = 256 << 10;
/// Connections accepted per loop turn, so a boot storm does not starve established chargers.
const ACCEPT_BATCH: usize = 512;
/// While the link is full, each connection may park this many bytes of messages and is still read (so its
/// pings are answered); past it, it is not read until the link drains and TCP pushes back on the charger.
const PARK_LIMIT: usize = 8 << 10;
/// How long a closing connection may linger for the peer's close frame or EOF.
const CLOSE_LINGER: Duration = Duration::from_secs(3);
/// Timer resolution: pings, timeouts and stats are checked this often.
const TICK: Duration = Duration::from_millis(250);
/// Accept queue of a reuseport listener (the kernel caps it at net.core.somaxconn).
const LISTEN_BACKLOG: i32 = 65535;
/// After a shutdown request, how long to wait for close handshakes before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

enum State {
    /// Reading the HTTP upgrade request; `buf` holds what arrived so far.
    Handshake {
        buf: Vec<u8>,
    },
    Open {
        decoder: Decoder,
    },
    /// Close frame (or HTTP error) sent; waiting for the peer to finish, then the socket is dropped.
    Closing,
}

struct Conn {
    sock: TcpStream,
    id: u64,
    state: State,
    /// Bytes the socket has not taken yet. Empty (no allocation) while the connection is idle.
    wbuf: Vec<u8>,
    /// Seconds (worker clock) of the last byte received.
    last_rx: u32,
    /// Seconds at which our unanswered ping was sent; 0 when none is outstanding.
    ping_sent: u32,
    /// Handshake or closing deadline, in worker seconds.
    deadline: u32,
    /// Control plane was told `Connected` and has not yet been told `Disconnected`.
    announced: bool,
    /// Shut the write side once `wbuf` drains (closing handshake).
    shutdown_when_flushed: bool,
    /// Unread bytes may be waiting (edge-triggered readiness we did not drain).
    backlog: bool,
    /// Whole messages held back while the link to the control plane is full, each as `u32 LE length` +
    /// bytes, in arrival order. Empty (no allocation) unless Python lags.
    parked: Vec<u8>,
}

pub struct Worker {
    cfg: WorkerConfig,
    poll: Poll,
    listener: Listen,
    listener_armed: bool,
    /// An edge-triggered listener still had connections queued when the accept batch ran out.
    accept_pending: bool,
    /// After EMFILE/ENFILE, accepting pauses until this worker second.
    accept_paused_until: u32,
    accepting: bool,
    link: Option<UnixStream>,
    link_in: LinkReader,
    link_out: LinkWriter,
    conns: Slab<Conn>,
    by_id: HashMap<u64, usize>,
    auth: AuthTable,
    seq: u64,
    open: usize,
    cap: usize,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    paused: bool,
    backlog: Vec<usize>,
    /// Connections with parked messages, in the order they first parked.
    parked: Vec<usize>,
    start: Instant,
    shutdown_at: Option<Instant>,
    link_dead: bool,
}

/// CLOCK_MONOTONIC in microseconds: the clock Python's `time.monotonic()` reads, shared by every process of
/// the host, so the control plane can order connection events from different workers.
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

fn now_secs(start: Instant) -> u32 {
    // Start at 1 so that 0 can mean "never".
    start.elapsed().as_secs() as u32 + 1
}

fn peer_string(sock: &TcpStream) -> String {
    sock.peer_addr().map(|a| a.to_string()).unwrap_or_default()
}

/// Pick the subprotocol: the first of ours (in our order) that the charger offered.
fn choose_protocol<'a>(ours: &'a [String], offered: &[String]) -> Option<&'a str> {
    ours.iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .map(|s| s.as_str())
}

/// A CALL's unique id, read without a JSON parser: `[2,"<id>",` (bench mode only).
fn call_unique_id(text: &str) -> Option<&str> {
    let rest = text
        .trim_start()
        .strip_prefix('[')?
        .trim_start()
        .strip_prefix('2')?
        .trim_start();
    let rest = rest.strip_prefix(',')?.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(&rest[..end])
}

/// Bench only: the canned CALLRESULT payload for a CALL, valid against the action's response schema in
/// both versions (so a simulator checking every reply finds nothing wrong with the physical-limit server).
fn canned_payload(call: &str) -> &'static str {
    let action = call_unique_id(call)
        .and_then(|id| call.split_once(&format!("\"{id}\"")))
        .and_then(|(_, rest)| {
            rest.trim_start()
                .strip_prefix(',')?
                .trim_start()
                .strip_prefix('"')
        })
        .and_then(|rest| rest.split_once('"'))
        .map_or("", |(action, _)| action);
    match action {
        "BootNotification" => {
            r#"{"status":"Accepted","currentTime":"2026-01-01T00:00:00.000Z","interval":300}"#
        }
        "Heartbeat" => r#"{"currentTime":"2026-01-01T00:00:00.000Z"}"#,
        "Authorize" if call.contains(r#""idToken""#) => r#"{"idTokenInfo":{"status":"Accepted"}}"#,
        "Authorize" => r#"{"idTagInfo":{"status":"Accepted"}}"#,
        "StartTransaction" => r#"{"transactionId":1,"idTagInfo":{"status":"Accepted"}}"#,
        "DataTransfer" => r#"{"status":"Accepted"}"#,
        _ => "{}",
    }
}

impl Worker {
    /// Build a worker around an inherited listening socket and (unless `cfg.canned`) the link socket.
    ///
    /// # Safety-relevant contract
    /// `listen_fd` and `link_fd` must be open file descriptors this process owns; the worker takes them over.
    pub fn new(
        cfg: WorkerConfig,
        listen_fd: Option<RawFd>,
        link_fd: Option<RawFd>,
    ) -> Result<Self, GatewayError> {
        let limit = raise_nofile_limit();
        let by_fd = limit.saturating_sub(FD_RESERVE);
        let cap = if cfg.max_connections == 0 {
            by_fd
        } else {
            cfg.max_connections.min(by_fd)
        };
        let poll = Poll::new()?;
        let listener = match (&cfg.reuseport_addr, listen_fd) {
            (Some(addr), _) => {
                let addr = addr
                    .parse()
                    .map_err(|e| GatewayError::Config("reuseport_addr", format!("{addr}: {e}")))?;
                Listen::ReusePort { addr, sock: None }
            }
            (None, Some(fd)) => {
                // SAFETY: the caller hands us ownership of these descriptors.
                let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
                std_listener.set_nonblocking(true)?;
                Listen::Shared(TcpListener::from_std(std_listener))
            }
            (None, None) => {
                return Err(GatewayError::Config(
                    "listen_fd",
                    "either a listening socket or reuseport_addr is needed".into(),
                ))
            }
        };
        let link = match link_fd {
            Some(fd) => {
                // SAFETY: as above.
                let s = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
                s.set_nonblocking(true)?;
                let mut s = UnixStream::from_std(s);
                poll.registry()
                    .register(&mut s, LINK, Interest::READABLE | Interest::WRITABLE)?;
                Some(s)
            }
            None => None,
        };
        let accept_unknown = cfg.accept_unknown;
        let canned = cfg.canned;
        let mut w = Self {
            cfg,
            poll,
            listener,
            listener_armed: false,
            accept_pending: false,
            accept_paused_until: 0,
            // A linked worker waits for the control plane's auth table and `Accept { on: true }`.
            accepting: canned,
            link,
            link_in: LinkReader::new(),
            link_out: LinkWriter::new(),
            conns: Slab::new(),
            by_id: HashMap::new(),
            auth: AuthTable::new(accept_unknown || canned),
            seq: 0,
            open: 0,
            cap,
            scratch: vec![0; SCRATCH],
            frame: Vec::new(),
            paused: false,
            backlog: Vec::new(),
            parked: Vec::new(),
            start: Instant::now(),
            shutdown_at: None,
            link_dead: false,
        };
        w.link_out.up(&link::Up::Hello {
            pid: std::process::id(),
        });
        w.update_listener()?;
        Ok(w)
    }

    /// Start or stop accepting, whichever the cap, the control plane and shutdown call for.
    ///
    /// Shared mode: the inherited listener is registered with EPOLLEXCLUSIVE so one incoming connection wakes
    /// one worker, not all of them. mio cannot set that flag, so the listener goes straight into mio's epoll
    /// with `epoll_ctl` (level-triggered); its events arrive through `Poll::poll` with the LISTENER token like
    /// any other. Stopping is EPOLL_CTL_DEL: queued connections stay in the kernel for the other workers.
    ///
    /// Reuseport mode: this worker binds its own SO_REUSEPORT socket and the kernel hashes connections over
    /// the group. Stopping must close the socket (to leave the group), which resets whatever sat in its queue
    /// unless net.ipv4.tcp_migrate_req is on.
    fn update_listener(&mut self) -> io::Result<()> {
        let want = self.accepting
            && self.shutdown_at.is_none()
            && self.conns.len() < self.cap
            && now_secs(self.start) >= self.accept_paused_until;
        if want == self.listener_armed {
            return Ok(());
        }
        match &mut self.listener {
            Listen::Shared(l) => {
                let mut ev = libc::epoll_event {
                    events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
                    u64: LISTENER.0 as u64,
                };
                let op = if want {
                    libc::EPOLL_CTL_ADD
                } else {
                    libc::EPOLL_CTL_DEL
                };
                // SAFETY: valid fds owned by this worker; `ev` outlives the call.
                let rc =
                    unsafe { libc::epoll_ctl(self.poll.as_raw_fd(), op, l.as_raw_fd(), &mut ev) };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Listen::ReusePort { addr, sock } => {
                if want {
                    let mut l = reuseport_listener(*addr)?;
                    self.poll
                        .registry()
                        .register(&mut l, LISTENER, Interest::READABLE)?;
                    *sock = Some(l);
                    // Registration reports a listener that is already readable, so nothing is missed.
                } else if let Some(mut l) = sock.take() {
                    let _ = self.poll.registry().deregister(&mut l);
                }
            }
        }
        self.listener_armed = want;
        Ok(())
    }

    /// Run until the control plane asks us to shut down or goes away. Blocks; call with the GIL released.
    pub fn run(&mut self) -> Result<(), GatewayError> {
        let mut events = Events::with_capacity(1024);
        let mut last_tick = Instant::now();
        loop {
            let more = !self.backlog.is_empty() || !self.parked.is_empty();
            let timeout = if (more && !self.paused) || self.accept_pending {
                Duration::ZERO
            } else {
                TICK
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            if self.accept_pending {
                self.accept_some();
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_some(),
                    LINK => {
                        if ev.is_readable() || ev.is_read_closed() {
                            self.read_link()?;
                        }
                    }
                    Token(t) => {
                        let idx = t - FIRST_CONN;
                        if ev.is_writable() {
                            self.flush_conn(idx);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_readable(idx);
                        }
                    }
                }
            }
            if !self.paused && !self.parked.is_empty() {
                self.unpark_some();
                self.flush_link()?;
            }
            if !self.paused && self.parked.is_empty() && !self.backlog.is_empty() {
                let backlog = std::mem::take(&mut self.backlog);
                for idx in backlog {
                    if let Some(c) = self.conns.get_mut(idx) {
                        c.backlog = false;
                        self.on_readable(idx);
                    }
                }
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.tick();
            }
            self.flush_link()?;
            if self.link_dead && self.shutdown_at.is_none() {
                // The control plane is gone: nobody can serve these chargers, so let them reconnect elsewhere.
                self.begin_shutdown(codec::CLOSE_GOING_AWAY);
            }
            if let Some(at) = self.shutdown_at {
                if self.conns.is_empty() || at.elapsed() >= SHUTDOWN_GRACE {
                    self.flush_link()?;
                    return Ok(());
                }
            }
        }
    }

    fn accept_some(&mut self) {
        // Edge-triggered (reuseport) listeners report readiness once: remember to come back if the batch
        // runs out before the queue does. The shared listener is level-triggered and reports again anyway.
        self.accept_pending = matches!(self.listener, Listen::ReusePort { .. });
        for _ in 0..ACCEPT_BATCH {
            if !self.listener_armed {
                // Re-arming re-registers (reuseport) or re-adds (shared) the listener, which reports a ready
                // queue by itself: nothing to come back for.
                self.accept_pending = false;
                return;
            }
            let accepted = match &self.listener {
                Listen::Shared(l) => l.accept(),
                Listen::ReusePort { sock: Some(l), .. } => l.accept(),
                Listen::ReusePort { sock: None, .. } => return,
            };
            match accepted {
                Ok((sock, _)) => self.add_conn(sock),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                Err(e)
                    if e.raw_os_error() == Some(libc::EMFILE)
                        || e.raw_os_error() == Some(libc::ENFILE) =>
                {
                    // Out of files despite the cap (ENFILE is system-wide and passing): stop accepting for
                    // a moment rather than spin on it; the other workers take the load meanwhile, and the next
                    // tick after the pause tries again.
                    self.accept_paused_until = now_secs(self.start) + 1;
                    self.accept_pending = false;
                    let _ = self.update_listener();
                    return;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // The socket is not listening (a misconfigured hand-over): epoll would report it ready
                    // forever. Stop using it rather than spin; the control plane sees no connections here.
                    self.accepting = false;
                    let _ = self.update_listener();
                    return;
                }
                Err(_) => return, // ECONNABORTED and friends: that one connection is gone; carry on.
            }
        }
    }

    fn add_conn(&mut self, mut sock: TcpStream) {
        let _ = sock.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let idx = entry.key();
        if self
            .poll
            .registry()
            .register(
                &mut sock,
                Token(idx + FIRST_CONN),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            return;
        }
        self.seq += 1;
        let now = now_secs(self.start);
        entry.insert(Conn {
            sock,
            id: conn_id::make(self.cfg.worker, self.cfg.generation, self.seq),
            state: State::Handshake { buf: Vec::new() },
            wbuf: Vec::new(),
            last_rx: now,
            ping_sent: 0,
            deadline: now + self.cfg.handshake_timeout.as_secs().max(1) as u32,
            announced: false,
            shutdown_when_flushed: false,
            backlog: false,
            parked: Vec::new(),
        });
        if self.conns.len() >= self.cap {
            let _ = self.update_listener();
        }
    }

    /// Move a connection's parked messages onto the link (in order), ahead of anything it sends later.
    fn unpark(&mut self, idx: usize) {
        let Some(c) = self.conns.get_mut(idx) else {
            return;
        };
        let parked = std::mem::take(&mut c.parked);
        let mut rest = &parked[..];
        while rest.len() >= 4 {
            let n = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            self.link_out.message(c.id, &rest[4..4 + n]);
            rest = &rest[4 + n..];
        }
    }

    /// The link has room again: deliver parked messages, oldest connection first, until it fills up again.
    fn unpark_some(&mut self) {
        let list = std::mem::take(&mut self.parked);
        let mut it = list.into_iter();
        for idx in it.by_ref() {
            self.unpark(idx);
            if self.link_out.len() > self.cfg.link_high {
                break;
            }
        }
        self.parked = it.collect();
    }

    fn drop_conn(&mut self, idx: usize) {
        if !self.conns.contains(idx) {
            return;
        }
        // Whatever the charger sent before it went away is delivered before its disconnect.
        self.unpark(idx);
        let mut c = self.conns.remove(idx);
        let _ = self.poll.registry().deregister(&mut c.sock);
        if matches!(c.state, State::Open { .. }) {
            self.open -= 1;
        }
        if c.announced {
            self.link_out.disconnected(
                c.id,
                codec::CLOSE_ABNORMAL,
                "connection lost",
                monotonic_us(),
            );
        }
        self.by_id.remove(&c.id);
        let _ = self.update_listener();
    }

    /// Begin closing: tell the control plane (once) with `report`, queue the close frame `frame` if any, and
    /// linger for the peer's close or EOF (the server closes TCP first, after the close handshake).
    fn close_conn(&mut self, idx: usize, report: (u16, &str), frame: Option<(u16, &str)>) {
        let linger = now_secs(self.start) + CLOSE_LINGER.as_secs() as u32;
        self.unpark(idx);
        let Some(c) = self.conns.get_mut(idx) else {
            return;
        };
        if matches!(c.state, State::Closing) {
            return;
        }
        if matches!(c.state, State::Open { .. }) {
            self.open -= 1;
        }
        if c.announced {
            c.announced = false;
            self.link_out
                .disconnected(c.id, report.0, report.1, monotonic_us());
        }
        c.state = State::Closing;
        c.deadline = linger;
        c.shutdown_when_flushed = true;
        if let Some((code, reason)) = frame {
            let mut buf = std::mem::take(&mut self.frame);
            buf.clear();
            codec::encode_close(&mut buf, code, reason, None);
            self.write_conn(idx, &buf);
            self.frame = buf;
        }
        if let Some(c) = self.conns.get_mut(idx) {
            if c.wbuf.is_empty() {
                let _ = c.sock.shutdown(Shutdown::Write);
            }
        }
    }

    /// Queue bytes on a connection: written straight to the socket when nothing is queued, else appended.
    fn write_conn(&mut self, idx: usize, bytes: &[u8]) {
        let max = self.cfg.max_write_queue;
        let Some(c) = self.conns.get_mut(idx) else {
            return;
        };
        let mut rest = bytes;
        if c.wbuf.is_empty() {
            match write_some(&mut c.sock, bytes) {
                Ok(n) if n == bytes.len() => return,
                Ok(n) => rest = &bytes[n..],
                Err(_) => {
                    self.drop_conn(idx);
                    return;
                }
            }
        }
        if c.wbuf.len() + rest.len() > max {
            // The charger is not reading. Its queue must not grow without bound: give up on it. What it sent
            // before goes up first, then its disconnect.
            self.unpark(idx);
            let Some(c) = self.conns.get_mut(idx) else {
                return;
            };
            if c.announced {
                c.announced = false;
                self.link_out.disconnected(
                    c.id,
                    codec::CLOSE_POLICY_VIOLATION,
                    "write queue full: the charger is not reading",
                    monotonic_us(),
                );
            }
            self.drop_conn(idx);
            return;
        }
        c.wbuf.extend_from_slice(rest);
    }

    fn flush_conn(&mut self, idx: usize) {
        let Some(c) = self.conns.get_mut(idx) else {
            return;
        };
        match write_some(&mut c.sock, &c.wbuf) {
            Ok(n) => {
                c.wbuf.drain(..n);
                if !c.wbuf.is_empty() {
                    return; // The socket is full again; the next writable event resumes.
                }
            }
            Err(_) => {
                self.drop_conn(idx);
                return;
            }
        }
        c.wbuf = Vec::new();
        if c.shutdown_when_flushed {
            let _ = c.sock.shutdown(Shutdown::Write);
        }
    }

    fn on_readable(&mut self, idx: usize) {
        let Some(c) = self.conns.get_mut(idx) else {
            return;
        };
        if self.paused && matches!(c.state, State::Open { .. }) && c.parked.len() >= PARK_LIMIT {
            // Python is behind and this charger has used its parking: leave the bytes in the kernel so TCP
            // pushes back on the charger.
            if !c.backlog {
                c.backlog = true;
                self.backlog.push(idx);
            }
            return;
        }
        let mut budget = READ_BUDGET;
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(c) = self.conns.get_mut(idx) {
            let n = match c.sock.read(&mut scratch) {
                Ok(0) => {
                    self.close_conn(
                        idx,
                        (
                            codec::CLOSE_ABNORMAL,
                            "connection closed without a close frame",
                        ),
                        None,
                    );
                    self.drop_conn(idx);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close_conn(idx, (codec::CLOSE_ABNORMAL, "connection reset"), None);
                    self.drop_conn(idx);
                    break;
                }
            };
            c.last_rx = now_secs(self.start);
            c.ping_sent = 0;
            self.on_bytes(idx, &mut scratch[..n]);
            budget = budget.saturating_sub(n);
            if budget == 0
                || (self.paused
                    && self.conns.get(idx).is_some_and(|c| {
                        matches!(c.state, State::Open { .. }) && c.parked.len() >= PARK_LIMIT
                    }))
            {
                if let Some(c) = self.conns.get_mut(idx) {
                    if !c.backlog {
                        c.backlog = true;
                        self.backlog.push(idx);
                    }
                }
                break;
            }
        }
        self.scratch = scratch;
    }

    fn on_bytes(&mut self, idx: usize, data: &mut [u8]) {
        let Some(c) = self.conns.get_mut(idx) else {
            return;
        };
        match &mut c.state {
            State::Closing => {} // Discard: we only wait for EOF.
            State::Handshake { buf } => {
                buf.extend_from_slice(data);
                let mut req_buf = std::mem::take(buf);
                match codec::parse_upgrade_request(&req_buf) {
                    Ok(None) => {
                        if let Some(State::Handshake { buf }) =
                            self.conns.get_mut(idx).map(|c| &mut c.state)
                        {
                            *buf = req_buf;
                        }
                    }
                    Ok(Some((req, used))) => {
                        let mut rest = req_buf.split_off(used);
                        self.on_upgrade(idx, req);
                        if !rest.is_empty() {
                            self.on_bytes(idx, &mut rest);
                        }
                    }
                    Err(e) => self.reject_http(idx, e.status, e.reason, e.extra_headers()),
                }
            }
            State::Open { decoder } => {
                let id = c.id;
                let canned = self.cfg.canned;
                let paused = self.paused;
                let link_out = &mut self.link_out;
                let parked = &mut c.parked;
                let was_parked = !parked.is_empty();
                let mut ctl: Vec<Ctl> = Vec::new();
                let res = decoder.feed(data, &mut |ev| match ev {
                    Event::Text(t) => {
                        if canned {
                            let reply = call_unique_id(t)
                                .map(|uid| format!("[3,\"{uid}\",{}]", canned_payload(t)));
                            ctl.push(Ctl::Canned(reply));
                        } else if paused || !parked.is_empty() {
                            // Behind messages already parked, or the link is full: keep the order.
                            parked.extend_from_slice(&(t.len() as u32).to_le_bytes());
                            parked.extend_from_slice(t.as_bytes());
                        } else {
                            link_out.message(id, t.as_bytes());
                        }
                    }
                    Event::Binary(_) => ctl.push(Ctl::Fail(
                        codec::CLOSE_UNSUPPORTED_DATA,
                        "binary frames are not OCPP-J",
                    )),
                    Event::Ping(p) => ctl.push(Ctl::Pong(p.to_vec())),
                    Event::Pong(_) => {}
                    Event::Close(code, reason) => ctl.push(Ctl::PeerClose(code, reason.to_owned())),
                });
                if !was_parked && !c.parked.is_empty() {
                    self.parked.push(idx);
                }
                for a in ctl {
                    self.on_ctl(idx, a);
                }
                if let Err(e) = res {
                    self.close_conn(
                        idx,
                        (e.close_code, e.reason),
                        Some((e.close_code, e.reason)),
                    );
                }
            }
        }
    }

    fn on_ctl(&mut self, idx: usize, a: Ctl) {
        if !self
            .conns
            .get(idx)
            .is_some_and(|c| matches!(c.state, State::Open { .. }))
        {
            return;
        }
        match a {
            Ctl::Pong(p) => self.send_frame(idx, OpCode::Pong, &p),
            Ctl::Fail(code, reason) => self.close_conn(idx, (code, reason), Some((code, reason))),
            Ctl::PeerClose(code, reason) => {
                // Report the peer's code and reason; echo its code as RFC 6455 §5.5.1 suggests (a close
                // without a code is answered with 1000).
                let echo = code.unwrap_or(codec::CLOSE_NORMAL);
                self.close_conn(
                    idx,
                    (code.unwrap_or(codec::CLOSE_NO_STATUS), &reason),
                    Some((echo, "")),
                );
            }
            Ctl::Canned(Some(reply)) => self.send_frame(idx, OpCode::Text, reply.as_bytes()),
            Ctl::Canned(None) => {}
        }
    }

    fn send_frame(&mut self, idx: usize, op: OpCode, payload: &[u8]) {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        codec::encode_frame(&mut frame, op, payload, true, None);
        self.write_conn(idx, &frame);
        if frame.capacity() > SCRATCH {
            frame = Vec::new();
        }
        self.frame = frame;
    }

    fn reject_http(&mut self, idx: usize, status: u16, reason: &str, extra: &[(&str, &str)]) {
        let mut out = Vec::new();
        codec::response_error(&mut out, status, reason, extra);
        self.write_conn(idx, &out);
        self.close_conn(idx, (0, ""), None);
    }

    fn on_upgrade(&mut self, idx: usize, req: codec::UpgradeRequest) {
        let charger = match codec::charger_id_from_path(&req.path, &self.cfg.path_prefix) {
            Ok(id) => id,
            Err(e) => return self.reject_http(idx, e.status, e.reason, e.extra_headers()),
        };
        let basic = req
            .basic_auth
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_slice()));
        match self.auth.decide(&charger, basic) {
            Decision::Accept => {}
            Decision::BadCredentials => {
                return self.reject_http(
                    idx,
                    401,
                    "bad or missing credentials for this charge point",
                    &[("WWW-Authenticate", "Basic realm=\"ampgate\"")],
                )
            }
            Decision::Unknown => return self.reject_http(idx, 404, "unknown charge point", &[]),
        }
        let protocol = choose_protocol(&self.cfg.protocols, &req.protocols).map(str::to_owned);
        if protocol.is_none() && !self.cfg.upgrade_without_protocol {
            return self.reject_http(idx, 400, "no agreeable OCPP subprotocol offered", &[]);
        }
        let mut out = Vec::new();
        codec::response_101(&mut out, &codec::accept_key(&req.key), protocol.as_deref());
        self.write_conn(idx, &out);
        let max_message = self.cfg.max_message;
        let canned = self.cfg.canned;
        let Some(c) = self.conns.get_mut(idx) else {
            return;
        };
        c.state = State::Open {
            decoder: Decoder::new(Role::Server, max_message),
        };
        self.open += 1;
        match protocol {
            None => {
                // `upgrade_without_protocol` (the OCPP-J 1.6 text): complete the handshake without the
                // header, then close.
                let reason = "no agreeable OCPP subprotocol offered";
                self.close_conn(
                    idx,
                    (codec::CLOSE_PROTOCOL_ERROR, reason),
                    Some((codec::CLOSE_PROTOCOL_ERROR, reason)),
                );
            }
            Some(p) => {
                let id = c.id;
                self.by_id.insert(id, idx);
                if !canned {
                    c.announced = true;
                    let peer = peer_string(&c.sock);
                    let pnum = link::protocol_number(&p).unwrap_or(link::PROTO_NONE);
                    self.link_out
                        .connected(id, pnum, &charger, &peer, monotonic_us());
                }
            }
        }
    }

    fn read_link(&mut self) -> Result<(), GatewayError> {
        let Some(link) = self.link.as_mut() else {
            return Ok(());
        };
        loop {
            let spare = self.link_in.spare(SCRATCH);
            let spare_len = spare.len();
            match link.read(spare) {
                Ok(0) => {
                    self.link_in.filled(0, spare_len);
                    self.link_dead = true;
                    break;
                }
                Ok(n) => self.link_in.filled(n, spare_len),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.link_in.filled(0, spare_len);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.link_in.filled(0, spare_len)
                }
                Err(_) => {
                    self.link_in.filled(0, spare_len);
                    self.link_dead = true;
                    break;
                }
            }
        }
        let mut reader = std::mem::take(&mut self.link_in);
        while let Some(mut batch) = reader.next_batch()? {
            while let Some(rec) = batch.next_down()? {
                self.on_down(rec);
            }
        }
        reader.shrink_if_idle();
        self.link_in = reader;
        Ok(())
    }

    fn on_down(&mut self, rec: DownRef<'_>) {
        match rec {
            DownRef::Send { conn_id, data } => {
                // An id we no longer hold: the charger is gone; the control plane learns from Disconnected.
                if let Some(&idx) = self.by_id.get(&conn_id) {
                    if self
                        .conns
                        .get(idx)
                        .is_some_and(|c| matches!(c.state, State::Open { .. }))
                    {
                        self.send_frame(idx, OpCode::Text, data);
                    }
                }
            }
            DownRef::Close {
                conn_id,
                code,
                reason,
            } => {
                if let Some(&idx) = self.by_id.get(&conn_id) {
                    self.close_conn(idx, (code, reason), Some((code, reason)));
                }
            }
            DownRef::AuthClear => self.auth.clear(),
            DownRef::AuthSet { charger, hash } => self.auth.set(charger, hash),
            DownRef::AuthDelete { charger } => self.auth.delete(charger),
            DownRef::AuthPolicy { accept_unknown } => self.auth.set_accept_unknown(accept_unknown),
            DownRef::Accept { on } => {
                self.accepting = on;
                if let Err(e) = self.update_listener() {
                    // Retried every tick; say why on the node's stderr (the worker's is inherited).
                    eprintln!("ampgate worker {}: cannot listen yet: {e}", self.cfg.worker);
                }
            }
            DownRef::Barrier { seq } => self.link_out.up(&link::Up::Ack { seq }),
            DownRef::Shutdown { code } => self.begin_shutdown(code),
        }
    }

    fn begin_shutdown(&mut self, code: u16) {
        if self.shutdown_at.is_some() {
            return;
        }
        self.shutdown_at = Some(Instant::now());
        let _ = self.update_listener();
        let idxs: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for idx in idxs {
            let handshaking = self
                .conns
                .get(idx)
                .is_some_and(|c| matches!(c.state, State::Handshake { .. }));
            if handshaking {
                self.drop_conn(idx);
            } else {
                self.close_conn(
                    idx,
                    (code, "server shutting down"),
                    Some((code, "server shutting down")),
                );
            }
        }
    }

    fn flush_link(&mut self) -> Result<(), GatewayError> {
        if self.link.is_none() || self.link_dead {
            self.link_out = LinkWriter::new();
            return Ok(());
        }
        self.link_out.seal();
        let link = self.link.as_mut().expect("checked above");
        while !self.link_out.pending().is_empty() {
            match link.write(self.link_out.pending()) {
                Ok(n) => self.link_out.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.link_dead = true;
                    break;
                }
            }
        }
        let queued = self.link_out.len();
        if !self.paused && queued > self.cfg.link_high {
            self.paused = true;
        } else if self.paused && queued < self.cfg.link_low {
            self.paused = false;
        }
        Ok(())
    }

    fn tick(&mut self) {
        let now = now_secs(self.start);
        let ping_every = self.cfg.ping_interval.as_secs() as u32;
        let ping_timeout = self.cfg.ping_timeout.as_secs().max(1) as u32;
        let mut to_drop = Vec::new();
        let mut to_ping = Vec::new();
        let mut to_timeout = Vec::new();
        let mut heap = 0u64;
        for (idx, c) in self.conns.iter_mut() {
            heap += c.wbuf.capacity() as u64;
            match &c.state {
                State::Handshake { buf } => {
                    heap += buf.capacity() as u64;
                    if now >= c.deadline {
                        to_drop.push(idx);
                    }
                }
                State::Closing => {
                    if now >= c.deadline {
                        to_drop.push(idx);
                    }
                }
                State::Open { decoder } => {
                    heap += decoder.heap_bytes() as u64;
                    if ping_every == 0 || self.paused {
                        // While paused we are not reading, so silence proves nothing.
                        c.ping_sent = 0;
                        continue;
                    }
                    if c.ping_sent != 0 {
                        if now - c.ping_sent >= ping_timeout {
                            to_timeout.push(idx);
                        }
                    } else if now - c.last_rx >= ping_every {
                        c.ping_sent = now;
                        to_ping.push(idx);
                    }
                }
            }
        }
        for idx in to_drop {
            self.drop_conn(idx);
        }
        for idx in to_ping {
            self.send_frame(idx, OpCode::Ping, b"");
        }
        for idx in to_timeout {
            self.close_conn(idx, (codec::CLOSE_ABNORMAL, "no answer to ping"), None);
            self.drop_conn(idx);
        }
        if self.link.is_some() {
            self.link_out.up(&link::Up::Stats {
                connections: self.open as u32,
                paused: self.paused,
                heap_bytes: heap,
            });
        }
        let _ = self.update_listener();
    }
}

/// Where connections come from: see [`Worker::update_listener`].
enum Listen {
    Shared(TcpListener),
    ReusePort {
        addr: std::net::SocketAddr,
        sock: Option<TcpListener>,
    },
}

/// Write as much of `buf` as the socket takes without blocking; returns how many bytes it took.
fn write_some(sock: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match sock.write(&buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn reuseport_listener(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(s.into()))
}

/// What a decoded control event asks the loop to do (collected while the decoder is borrowed).
enum Ctl {
    Pong(Vec<u8>),
    Fail(u16, &'static str),
    PeerClose(Option<u16>, String),
    /// Bench only: the whole canned CALLRESULT to send (None: the CALL's unique id was unreadable).
    Canned(Option<String>),
}

/// Die with the control plane: PR_SET_PDEATHSIG, then check the parent did not die before we asked.
pub fn bind_to_parent(parent_pid: u32) -> Result<(), GatewayError> {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if parent_pid != 0 && libc::getppid() as u32 != parent_pid {
            return Err(GatewayError::Config(
                "parent_pid",
                "the control plane exited before the worker started".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_choice_follows_server_preference() {
        let ours = vec!["ocpp2.0.1".to_string(), "ocpp1.6".to_string()];
        let offered = vec!["ocpp1.6".to_string(), "ocpp2.0.1".to_string()];
        assert_eq!(choose_protocol(&ours, &offered), Some("ocpp2.0.1"));
        assert_eq!(choose_protocol(&ours, &["ocpp9.9".to_string()]), None);
    }

    #[test]
    fn canned_mode_reads_unique_ids() {
        assert_eq!(
            call_unique_id(r#"[2,"abc-1","Heartbeat",{}]"#),
            Some("abc-1")
        );
        assert_eq!(call_unique_id(r#" [ 2 , "x" ,"A",{}]"#), Some("x"));
        assert_eq!(call_unique_id(r#"[3,"x",{}]"#), None);
    }

    #[test]
    fn canned_replies_follow_the_action() {
        assert!(canned_payload(r#"[2,"1","BootNotification",{}]"#).contains("interval"));
        assert_eq!(
            canned_payload(r#"[2,"h1", "Heartbeat",{}]"#),
            r#"{"currentTime":"2026-01-01T00:00:00.000Z"}"#
        );
        assert!(canned_payload(r#"[2,"a","Authorize",{"idToken":{}}]"#).contains("idTokenInfo"));
        assert!(canned_payload(r#"[2,"a","Authorize",{"idTag":"T"}]"#).contains("idTagInfo"));
        assert_eq!(canned_payload(r#"[2,"m","MeterValues",{}]"#), "{}");
        assert_eq!(canned_payload("garbage"), "{}");
    }
}
