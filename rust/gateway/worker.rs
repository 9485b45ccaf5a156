//! A gateway worker: one mio event loop that owns a share of the charger connections.
//!
//! It accepts from the listening socket it shares with the other workers, and drives each connection's
//! sans-I/O state machine ([`super::conn::Connection`]: upgrade, handshake decision, frames, pings, close
//! handshake) with the bytes it reads and the time; it writes what the connection queues, and passes whole
//! text messages to the control plane over the worker link in batches, holding them back (and, past a bound,
//! not reading) while the link is full. Nothing here calls Python.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::time::{Duration, Instant};

use mio::net::{TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token};
use openssl::ssl::SslContext;
use slab::Slab;

use super::admission::{Admission, Budget, Verdict};
use super::auth::AuthTable;
use super::config::WorkerConfig;
use super::conn::{ConnEvent, Connection, Ctx, Lost, Shed};
use super::error::GatewayError;
use super::flow::shed_order;
use super::link::{self, conn_id, DownRef, LinkReader, LinkWriter};
use super::listen::Listener;
use super::stream::{Handshake, Stream};
use super::sys::{monotonic_us, now_secs};
use super::tls;
use super::uplink::{unpark_into, Uplink};
use crate::codec;
// Re-exported: the simulator (rust/sim/) and the bindings reach it by this path.
pub use crate::limits::raise_nofile_limit;
use crate::limits::FD_RESERVE;

const LINK: Token = Token(0);
/// Listeners take tokens 1 (plain ws) and 2 (wss): `Token(LISTENERS + i)`.
const LISTENERS: usize = 1;
const FIRST_CONN: usize = 3;

/// One read buffer for the whole worker: an idle connection holds no read buffer of its own.
pub const SCRATCH: usize = 64 << 10;
/// Bytes read from one connection per readiness event before the others get a turn.
pub const READ_BUDGET: usize = 256 << 10;
/// Connections accepted per loop turn, so a boot storm does not starve established chargers.
pub const ACCEPT_BATCH: usize = 512;
/// While the link is full, each connection may park this many bytes of messages and is still read (so its
/// pings are answered); past it, it is not read until the link drains and TCP pushes back on the charger.
const PARK_LIMIT: usize = 8 << 10;
/// Timer resolution: pings, timeouts and stats are checked this often.
pub const TICK: Duration = Duration::from_millis(250);
/// After a shutdown request, how long to wait for close handshakes before exiting anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A connection's socket and state machine, and what the loop keeps beside them.
struct Slot {
    sock: Stream,
    /// The charger's address, as accepted.
    peer: Option<SocketAddr>,
    id: u64,
    conn: Connection,
    /// Unread bytes may be waiting (edge-triggered readiness we did not drain).
    backlog: bool,
    /// Whole messages held back while the link to the control plane is full, each as `u32 LE length` +
    /// bytes, in arrival order. Empty (no allocation) unless Python lags.
    parked: Vec<u8>,
    /// An admitted handshake still counted against the admission budget.
    counted: bool,
    /// This connection's share of the worker's `buffered` as last accounted.
    accounted: usize,
}

/// A listening socket: plain ws or wss.
struct Door {
    listener: Listener,
    tls: bool,
    armed: bool,
    /// An edge-triggered listener still had connections queued when the accept batch ran out.
    pending: bool,
}

pub struct Worker {
    cfg: WorkerConfig,
    poll: Poll,
    /// Plain ws at index 0 and wss at index 1, each if configured.
    doors: [Option<Door>; 2],
    /// The TLS server context new wss connections get (replaced on reload; live connections keep theirs).
    tls_ctx: Option<SslContext>,
    /// After EMFILE/ENFILE, accepting pauses until this worker second.
    accept_paused_until: u32,
    accepting: bool,
    link: Option<UnixStream>,
    link_in: LinkReader,
    link_out: LinkWriter,
    conns: Slab<Slot>,
    by_id: HashMap<u64, usize>,
    auth: AuthTable,
    seq: u64,
    cap: usize,
    scratch: Vec<u8>,
    paused: bool,
    backlog: Vec<usize>,
    /// Connections with parked messages, in the order they first parked.
    parked: Vec<usize>,
    start: Instant,
    shutdown_at: Option<Instant>,
    link_dead: bool,
    /// Shared with the connections' `Ctx` (the unknown-id bucket is charged inside a handshake); borrowed
    /// only for a call at a time, on the worker's one thread.
    admission: RefCell<Admission>,
    counts: link::Counts,
    /// Bytes of buffers over all connections (the sum of their `accounted`), against `cfg.buffer_budget`.
    buffered: usize,
    /// A shed is under way (closing a victim drives it, which must not start another shed).
    shedding: bool,
}

impl Worker {
    /// Build a worker around an inherited listening socket (or `cfg.reuseport_addr`) and the link socket.
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
        let door = |addr: &Option<String>, fd: Option<RawFd>, what: &'static str, tls: bool| {
            let listener = match (addr, fd) {
                (Some(addr), _) => Listener::reuseport(
                    addr.parse()
                        .map_err(|e| GatewayError::Config(what, format!("{addr}: {e}")))?,
                ),
                (None, Some(fd)) => Listener::shared(fd)?,
                (None, None) => return Ok::<_, GatewayError>(None),
            };
            Ok(Some(Door {
                listener,
                tls,
                armed: false,
                pending: false,
            }))
        };
        let plain = door(&cfg.reuseport_addr, listen_fd, "reuseport_addr", false)?;
        let secure = door(
            &cfg.tls_reuseport_addr,
            cfg.tls_listen_fd,
            "tls_reuseport_addr",
            true,
        )?;
        let tls_ctx = match (&secure, &cfg.tls) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(GatewayError::Config(
                    "tls",
                    "a TLS listener needs a certificate and key".into(),
                ))
            }
            (Some(_), Some(files)) => {
                Some(tls::context(files).map_err(|e| GatewayError::Config("tls", e.to_string()))?)
            }
        };
        if plain.is_none() && secure.is_none() {
            return Err(GatewayError::Config(
                "listen_fd",
                "a listening socket or a reuseport address (plain or TLS) is needed".into(),
            ));
        }
        let link = match link_fd {
            Some(fd) => {
                // SAFETY: the caller hands us ownership of this descriptor.
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
        let auth_throttle = cfg.auth_throttle;
        let mut w = Self {
            cfg,
            poll,
            doors: [plain, secure],
            tls_ctx,
            accept_paused_until: 0,
            // A linked worker waits for the control plane's auth table and `Accept { on: true }`.
            accepting: false,
            link,
            link_in: LinkReader::new(),
            link_out: LinkWriter::new(),
            conns: Slab::new(),
            by_id: HashMap::new(),
            auth: AuthTable::with_throttle(accept_unknown, auth_throttle),
            seq: 0,
            cap,
            scratch: vec![0; SCRATCH],
            paused: false,
            backlog: Vec::new(),
            parked: Vec::new(),
            start: Instant::now(),
            shutdown_at: None,
            link_dead: false,
            // No limit until the control plane shares its budget out.
            admission: RefCell::new(Admission::new(
                Budget::UNLIMITED,
                monotonic_us() ^ ((std::process::id() as u64) << 32),
            )),
            counts: link::Counts::default(),
            buffered: 0,
            shedding: false,
        };
        w.link_out.up(&link::Up::Hello {
            pid: std::process::id(),
        });
        w.update_listener()?;
        Ok(w)
    }

    /// Start or stop accepting, whichever the cap, the control plane and shutdown call for (see
    /// [`Listener::arm`] for what stopping means in each listening mode).
    fn update_listener(&mut self) -> io::Result<()> {
        let want = self.accepting
            && self.shutdown_at.is_none()
            && self.conns.len() < self.cap
            && now_secs(self.start) >= self.accept_paused_until;
        for (i, door) in self.doors.iter_mut().enumerate() {
            let Some(d) = door else { continue };
            if want == d.armed {
                continue;
            }
            d.listener.arm(&self.poll, Token(LISTENERS + i), want)?;
            d.armed = want;
        }
        Ok(())
    }

    /// Whether a listener still had connections queued when its accept batch ran out.
    fn accept_pending(&self) -> bool {
        self.doors.iter().flatten().any(|d| d.pending)
    }

    /// Run until the control plane asks us to shut down or goes away. Blocks; call with the GIL released.
    pub fn run(&mut self) -> Result<(), GatewayError> {
        let mut events = Events::with_capacity(1024);
        let mut last_tick = Instant::now();
        loop {
            let more = !self.backlog.is_empty() || !self.parked.is_empty();
            let timeout = if (more && !self.paused) || self.accept_pending() {
                Duration::ZERO
            } else {
                TICK
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            for i in 0..self.doors.len() {
                if self.doors[i].as_ref().is_some_and(|d| d.pending) {
                    self.accept_some(i);
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    LINK => {
                        if ev.is_readable() || ev.is_read_closed() {
                            self.read_link()?;
                        }
                    }
                    Token(t) if t < FIRST_CONN => self.accept_some(t - LISTENERS),
                    Token(t) => {
                        let idx = t - FIRST_CONN;
                        if ev.is_writable() {
                            self.drive(idx, |_, _, _| {});
                            // TLS: the handshake, or a read that had to write first (a key update), may be
                            // waiting for this.
                            let tls = self.conns.get(idx).is_some_and(|s| s.sock.is_tls());
                            if tls && !ev.is_readable() {
                                self.on_readable(idx);
                            }
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
                    if let Some(s) = self.conns.get_mut(idx) {
                        s.backlog = false;
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

    fn accept_some(&mut self, door: usize) {
        let Some(d) = self.doors.get_mut(door).and_then(|d| d.as_mut()) else {
            return;
        };
        // Edge-triggered (reuseport) listeners report readiness once: remember to come back if the batch
        // runs out before the queue does. The shared listener is level-triggered and reports again anyway.
        d.pending = d.listener.is_edge_triggered();
        let tls = d.tls;
        for _ in 0..ACCEPT_BATCH {
            let Some(d) = self.doors[door].as_mut() else {
                return;
            };
            if !d.armed {
                // Re-arming re-registers (reuseport) or re-adds (shared) the listener, which reports a ready
                // queue by itself: nothing to come back for.
                d.pending = false;
                return;
            }
            match d.listener.accept() {
                Ok((sock, peer)) => self.add_conn(sock, peer, tls),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    d.pending = false;
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
                    d.pending = false;
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

    fn add_conn(&mut self, mut sock: TcpStream, peer: SocketAddr, tls: bool) {
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
        let sock = match (tls, &self.tls_ctx) {
            (false, _) => Stream::Plain(sock),
            (true, Some(ctx)) => match Stream::accept_tls(ctx, sock) {
                Some(s) => s,
                None => {
                    self.counts.tls_failed += 1;
                    return; // Dropping the socket deregisters it.
                }
            },
            (true, None) => return,
        };
        self.seq += 1;
        let now_us = monotonic_us();
        let verdict = self.admission.get_mut().admit(now_us);
        let ctx = Ctx {
            now: now_secs(self.start),
            now_us,
            cfg: &self.cfg,
            auth: &self.auth,
            admission: &self.admission,
        };
        let (mut conn, counted) = match verdict {
            Verdict::Admit => (Connection::new(&ctx), true),
            Verdict::Refuse { retry_after, .. } => (Connection::refusing(&ctx, retry_after), false),
        };
        // A TLS handshake already through at accept (a resumed TLS 1.3 session can be): no later
        // `Handshake::Done` will say what it proved.
        if let Some(transport) = sock.transport() {
            conn.set_transport(transport);
        }
        entry.insert(Slot {
            sock,
            peer: Some(peer),
            id: conn_id::make(self.cfg.worker, self.cfg.generation, self.seq),
            conn,
            backlog: false,
            parked: Vec::new(),
            counted,
            accounted: 0,
        });
        if self.conns.len() >= self.cap {
            let _ = self.update_listener();
        }
    }

    /// Give connection `idx`'s state machine an input (`f`), then carry out what it asks for: its events go
    /// to the link, its bytes to the socket, and its socket is half-closed or dropped when it says so.
    fn drive(
        &mut self,
        idx: usize,
        f: impl FnOnce(&mut Connection, &Ctx<'_>, &mut dyn FnMut(ConnEvent<'_>)),
    ) {
        let ctx = Ctx {
            now: now_secs(self.start),
            now_us: monotonic_us(),
            cfg: &self.cfg,
            auth: &self.auth,
            admission: &self.admission,
        };
        let Some(Slot {
            sock,
            peer,
            id,
            conn,
            parked,
            counted,
            ..
        }) = self.conns.get_mut(idx)
        else {
            return;
        };
        let was_parked = !parked.is_empty();
        let mut up = Uplink {
            link: &mut self.link_out,
            by_id: &mut self.by_id,
            peer: *peer,
            parked,
            id: *id,
            idx,
            paused: self.paused,
            upgrades: &mut self.counts.upgrades,
        };
        f(conn, &ctx, &mut |ev| up.event(ev));
        if !conn.output().is_empty() {
            match sock.write_some(conn.output()) {
                Ok(n) => conn.wrote(n, &ctx, &mut |ev| up.event(ev)),
                Err(_) => conn.lost(Lost::WriteError, &mut |ev| up.event(ev)),
            }
        }
        if conn.take_shutdown_write() {
            sock.shutdown_write();
        }
        if *counted && !conn.is_handshaking() {
            *counted = false;
            self.admission.get_mut().handshake_done();
        }
        let done = conn.is_done();
        if !was_parked && !up.parked.is_empty() {
            self.parked.push(idx);
        }
        self.account(idx);
        if done {
            self.remove_conn(idx);
        }
        if self.buffered > self.cfg.buffer_budget && self.cfg.buffer_budget != 0 && !self.shedding {
            self.shed();
        }
    }

    /// Bring connection `idx`'s share of the worker's buffered bytes up to date: O(1) (buffer sizes only).
    fn account(&mut self, idx: usize) {
        if let Some(s) = self.conns.get_mut(idx) {
            let now = s.conn.buffered_bytes() + s.parked.capacity();
            self.buffered = self.buffered - s.accounted + now;
            s.accounted = now;
        }
    }

    /// Over the buffer budget: close the connections holding the most until the worker is under it again.
    /// Scans every connection, but only when over budget (see `flow::shed_order`).
    fn shed(&mut self) {
        self.shedding = true;
        let sizes = self.conns.iter().map(|(idx, s)| (idx, s.accounted));
        let victims = shed_order(sizes, self.buffered, self.cfg.buffer_budget);
        for idx in victims {
            self.drive(idx, |c, ctx, emit| c.shed_for_budget(ctx, emit));
            if self.buffered <= self.cfg.buffer_budget {
                break;
            }
        }
        self.shedding = false;
    }

    fn remove_conn(&mut self, idx: usize) {
        if !self.conns.contains(idx) {
            return;
        }
        let mut s = self.conns.remove(idx);
        self.buffered -= s.accounted;
        if s.sock.is_handshaking() {
            // Gone before its TLS handshake finished, however: a failed verification, a timeout, a peer
            // that gave up or closed. One place, so no path escapes the count.
            self.counts.tls_failed += 1;
        }
        if s.counted {
            self.admission.get_mut().handshake_done();
        }
        match s.conn.shed_reason() {
            None => {}
            Some(Shed::BufferBudget) => self.counts.closed_budget += 1,
            Some(Shed::PendingCalls) => self.counts.closed_pending_calls += 1,
            Some(Shed::MsgRate) => self.counts.closed_msg_rate += 1,
        }
        match s.conn.refused_status() {
            None | Some(503) => {} // 503: counted by the admission control.
            Some(401) => self.counts.refused_auth += 1,
            Some(429) => self.counts.refused_throttled += 1,
            Some(403) => self.counts.refused_profile += 1,
            Some(404) => self.counts.refused_unknown += 1,
            Some(_) => self.counts.refused_other += 1,
        }
        unpark_into(&mut self.link_out, s.id, &mut s.parked);
        if let Some(sock) = s.sock.tcp_mut() {
            let _ = self.poll.registry().deregister(sock);
        }
        self.by_id.remove(&s.id);
        let _ = self.update_listener();
    }

    /// Move a connection's parked messages onto the link (in order), ahead of anything it sends later.
    fn unpark(&mut self, idx: usize) {
        if let Some(s) = self.conns.get_mut(idx) {
            unpark_into(&mut self.link_out, s.id, &mut s.parked);
        }
        self.account(idx);
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

    fn on_readable(&mut self, idx: usize) {
        let Some(s) = self.conns.get_mut(idx) else {
            return;
        };
        if self.paused && s.conn.is_open() && s.parked.len() >= PARK_LIMIT {
            // Python is behind and this charger has used its parking: leave the bytes in the kernel so TCP
            // pushes back on the charger.
            if !s.backlog {
                s.backlog = true;
                self.backlog.push(idx);
            }
            return;
        }
        if s.sock.is_handshaking() {
            match s.sock.handshake() {
                Handshake::Pending => return,
                Handshake::Failed => {
                    // Counted as `tls_failed` when the connection is removed (still handshaking).
                    self.drive(idx, |c, _, emit| c.lost(Lost::ReadError, emit));
                    return;
                }
                // The upgrade may already be in the kernel (edge-triggered: no new event for it), so read on.
                Handshake::Done(transport) => s.conn.set_transport(transport),
            }
        }
        let mut budget = READ_BUDGET;
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(s) = self.conns.get_mut(idx) {
            let n = match s.sock.read(&mut scratch) {
                Ok(0) => {
                    self.drive(idx, |c, _, emit| c.lost(Lost::Eof, emit));
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.drive(idx, |c, _, emit| c.lost(Lost::ReadError, emit));
                    break;
                }
            };
            let data = &mut scratch[..n];
            self.drive(idx, |c, ctx, emit| c.receive(data, ctx, emit));
            budget = budget.saturating_sub(n);
            let Some(s) = self.conns.get_mut(idx) else {
                break;
            };
            if budget == 0 || (self.paused && s.conn.is_open() && s.parked.len() >= PARK_LIMIT) {
                if !s.backlog {
                    s.backlog = true;
                    self.backlog.push(idx);
                }
                break;
            }
        }
        self.scratch = scratch;
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
                    self.drive(idx, |c, ctx, emit| {
                        c.send_text(data, ctx, emit);
                    });
                }
            }
            DownRef::Close {
                conn_id,
                code,
                reason,
            } => {
                if let Some(&idx) = self.by_id.get(&conn_id) {
                    self.drive(idx, |c, ctx, emit| c.close(code, reason, ctx, emit));
                }
            }
            DownRef::AuthClear => self.auth.clear(),
            DownRef::AuthSet {
                charger,
                hash,
                profile,
            } => self.auth.set(charger, hash, profile),
            DownRef::TlsReload => self.reload_tls(),
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
            DownRef::Admission(a) => self.admission.get_mut().set_budget(Budget {
                rate: a.rate,
                burst: a.burst,
                handshakes: a.handshakes,
                retry_max: a.retry_max,
                unknown_per_min: a.unknown_per_min,
            }),
        }
    }

    /// Read the TLS files again. A file that does not load keeps the context in use (the control plane
    /// checks the files before it asks, so this is a race with an operator editing them).
    fn reload_tls(&mut self) {
        let (Some(files), Some(_)) = (&self.cfg.tls, &self.tls_ctx) else {
            return;
        };
        match tls::context(files) {
            Ok(ctx) => {
                self.tls_ctx = Some(ctx);
                self.counts.tls_reloads += 1;
            }
            Err(e) => eprintln!(
                "ampgate worker {}: TLS reload failed, keeping the certificate in use: {e}",
                self.cfg.worker
            ),
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
            self.drive(idx, |c, ctx, emit| c.shutdown(code, ctx, emit));
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
        let reading = !self.paused;
        let ctx = Ctx {
            now: now_secs(self.start),
            now_us: monotonic_us(),
            cfg: &self.cfg,
            auth: &self.auth,
            admission: &self.admission,
        };
        let mut due = Vec::new();
        let mut heap = 0u64;
        for (idx, s) in self.conns.iter() {
            heap += s.conn.heap_bytes() as u64;
            if s.conn.is_due(reading, &ctx) {
                due.push(idx);
            }
        }
        for idx in due {
            self.drive(idx, |c, ctx, emit| c.tick(reading, ctx, emit));
        }
        if self.link.is_some() {
            let open = self.conns.iter().filter(|(_, s)| s.conn.is_open()).count() as u32;
            self.link_out.up(&link::Up::Stats {
                connections: open,
                paused: self.paused,
                heap_bytes: heap,
                counts: {
                    let a = self.admission.borrow();
                    link::Counts {
                        refused_rate: a.refused_rate,
                        refused_handshakes: a.refused_handshakes,
                        refused_unknown_ids: a.refused_unknown_ids,
                        ..self.counts
                    }
                },
            });
        }
        let _ = self.update_listener();
    }
}
