//! `ampgate-limit LISTEN_FD [PARENT_PID]`: the benchmarks' physical-limit server (bench/ only, never shipped
//! in the node).
//!
//! It serves chargers on an inherited listening socket with the gateway's own connection state machine
//! ([`ampgate_native::gateway::conn::Connection`]: the same upgrade, framing, pings and close handshake as a
//! gateway worker) and answers every CALL itself with a canned CALLRESULT per action: no validation, no
//! Python, no control plane, nothing stored. K of these on one listening socket are what the hardware can do
//! for the traffic, the figure ampgate is compared against. Its loop is the worker's without the link.

mod canned;

use std::io::{self, Read};
use std::net::Shutdown;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::cell::RefCell;

use ampgate_native::gateway::admission::{Admission, Budget};
use ampgate_native::gateway::auth::AuthTable;
use ampgate_native::gateway::conn::{ConnEvent, Connection, Ctx, Lost};
use ampgate_native::gateway::listen::Listener;
use ampgate_native::gateway::sys::{bind_to_parent, now_secs, write_some};
use ampgate_native::gateway::worker::{ACCEPT_BATCH, READ_BUDGET, SCRATCH, TICK};
use ampgate_native::gateway::WorkerConfig;
use ampgate_native::limits::{raise_nofile_limit, FD_RESERVE};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const LISTENER: Token = Token(0);
const FIRST_CONN: usize = 1;

struct Limit {
    poll: Poll,
    listener: Listener,
    armed: bool,
    cap: usize,
    /// The worker's defaults: the same timeouts and bounds as a gateway worker; every charger is admitted.
    cfg: WorkerConfig,
    auth: AuthTable,
    /// No budget: the limit server measures connections, not admission.
    admission: RefCell<Admission>,
    conns: Slab<(TcpStream, Connection)>,
    /// Connections whose read budget ran out with bytes left (edge-triggered: come back by ourselves).
    backlog: Vec<usize>,
    scratch: Vec<u8>,
    start: Instant,
}

impl Limit {
    fn new(listen_fd: i32) -> io::Result<Self> {
        let cap = raise_nofile_limit().saturating_sub(FD_RESERVE);
        let mut l = Self {
            poll: Poll::new()?,
            listener: Listener::shared(listen_fd)?,
            armed: false,
            cap,
            // The physical limit: no per-charger message rate (a bench drives few connections hard).
            cfg: WorkerConfig {
                msg_rate: 0.0,
                ..WorkerConfig::default()
            },
            auth: AuthTable::new(true),
            admission: RefCell::new(Admission::new(Budget::UNLIMITED, 1)),
            conns: Slab::new(),
            backlog: Vec::new(),
            scratch: vec![0; SCRATCH],
            start: Instant::now(),
        };
        l.update_listener()?;
        Ok(l)
    }

    /// Accept while under the open-file cap; at it, leave new connections queued for the other servers.
    fn update_listener(&mut self) -> io::Result<()> {
        let want = self.conns.len() < self.cap;
        if want != self.armed {
            self.listener.arm(&self.poll, LISTENER, want)?;
            self.armed = want;
        }
        Ok(())
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_tick = Instant::now();
        loop {
            let timeout = if self.backlog.is_empty() {
                TICK
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_some(),
                    Token(t) => {
                        let idx = t - FIRST_CONN;
                        if ev.is_writable() {
                            self.drive(idx, |_, _, _| {});
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_readable(idx);
                        }
                    }
                }
            }
            for idx in std::mem::take(&mut self.backlog) {
                self.on_readable(idx);
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.tick();
            }
        }
    }

    fn accept_some(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            if !self.armed {
                return;
            }
            match self.listener.accept() {
                Ok((sock, _)) => self.add_conn(sock),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // Out of files or a connection gone before we took it: the next readiness tries again.
                Err(_) => return,
            }
        }
    }

    fn add_conn(&mut self, mut sock: TcpStream) {
        let _ = sock.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key() + FIRST_CONN);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut sock, token, interest)
            .is_err()
        {
            return;
        }
        let ctx = Ctx {
            now: now_secs(self.start),
            now_us: 0,
            cfg: &self.cfg,
            auth: &self.auth,
            admission: &self.admission,
        };
        entry.insert((sock, Connection::new(&ctx)));
        let _ = self.update_listener();
    }

    /// Give a connection an input, answer every message it yields with its canned reply, write what it
    /// queued, and shut or drop its socket when it says so. Its other events have nobody to go to.
    fn drive(
        &mut self,
        idx: usize,
        f: impl FnOnce(&mut Connection, &Ctx<'_>, &mut dyn FnMut(ConnEvent<'_>)),
    ) {
        let ctx = Ctx {
            now: now_secs(self.start),
            now_us: 0,
            cfg: &self.cfg,
            auth: &self.auth,
            admission: &self.admission,
        };
        let Some((sock, conn)) = self.conns.get_mut(idx) else {
            return;
        };
        let mut replies = Vec::new();
        f(conn, &ctx, &mut |ev| {
            if let ConnEvent::Message(call) = ev {
                replies.extend(canned::canned_reply(call));
            }
        });
        // A reply may release a CALL the charger pipelined (see `gateway::flow`): answer it too, in order.
        let mut replies = std::collections::VecDeque::from(replies);
        while let Some(r) = replies.pop_front() {
            conn.send_text(r.as_bytes(), &ctx, &mut |ev| {
                if let ConnEvent::Message(call) = ev {
                    replies.extend(canned::canned_reply(call));
                }
            });
        }
        if !conn.output().is_empty() {
            match write_some(sock, conn.output()) {
                Ok(n) => conn.wrote(n, &ctx, &mut |_| {}),
                Err(_) => conn.lost(Lost::WriteError, &mut |_| {}),
            }
        }
        if conn.take_shutdown_write() {
            let _ = sock.shutdown(Shutdown::Write);
        }
        if conn.is_done() {
            let (mut sock, _) = self.conns.remove(idx);
            let _ = self.poll.registry().deregister(&mut sock);
            let _ = self.update_listener();
        }
    }

    fn on_readable(&mut self, idx: usize) {
        let mut budget = READ_BUDGET;
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some((sock, _)) = self.conns.get_mut(idx) {
            let n = match sock.read(&mut scratch) {
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
            if budget == 0 {
                if self.conns.contains(idx) {
                    self.backlog.push(idx);
                }
                break;
            }
        }
        self.scratch = scratch;
    }

    fn tick(&mut self) {
        let ctx = Ctx {
            now: now_secs(self.start),
            now_us: 0,
            cfg: &self.cfg,
            auth: &self.auth,
            admission: &self.admission,
        };
        let due: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, (_, c))| c.is_due(true, &ctx))
            .map(|(idx, _)| idx)
            .collect();
        for idx in due {
            self.drive(idx, |c, ctx, emit| c.tick(true, ctx, emit));
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(fd), parent) = (
        args.first().and_then(|a| a.parse::<i32>().ok()),
        args.get(1).and_then(|a| a.parse::<u32>().ok()).unwrap_or(0),
    ) else {
        eprintln!("usage: ampgate-limit LISTEN_FD [PARENT_PID]");
        return ExitCode::from(2);
    };
    // Die with the benchmark that started us (PR_SET_PDEATHSIG), as a gateway worker dies with its node.
    if let Err(e) = bind_to_parent(parent) {
        eprintln!("ampgate-limit: {e}");
        return ExitCode::FAILURE;
    }
    match Limit::new(fd).and_then(|mut l| l.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ampgate-limit: {e}");
            ExitCode::FAILURE
        }
    }
}
