//! The simulator's event loop: one mio poll over every simulated charger of this process, a timer heap, and
//! each charger's OCPP state machine (boot, status, heartbeats, transactions, firmware, the CSMS's commands).
//!
//! Python drives it in slices ([`Sim::run`]) and takes, between slices, the CSMS's messages for the schema
//! check ([`Sim::take_checks`]) and the counters ([`Sim::stats`], [`Sim::report_json`]).
//!
//! Each charger has two sides:
//! - its protocol side, a sans-I/O state machine (boot, CALLs one at a time, transactions, firmware, reboots,
//!   the load). Its inputs are the CSMS's messages as text (`Sim::on_text`), its link coming up
//!   (`Sim::link_up`) or going down (`Charger::link_lost`), and its timers firing (`Sim::charger_timer`); its
//!   outputs are OCPP-J messages to send and closes, appended to the outbox (`outbox`) tagged with the charger
//!   and the link epoch they were emitted on, and timers set in the heap. It never touches a socket, a write
//!   buffer, the frame encoder or the poll;
//! - the I/O shell (`link`): the socket, the poll, the WebSocket upgrade and frames, the close handshake. It
//!   feeds the protocol side, and after each input (the texts of one read, a timer, the connects' and the
//!   load's pumps, an upgrade) drains the outbox: it frames each output, masked, a charger's outputs of one
//!   drain in one write, drops those of a link that died meanwhile, and fails a link whose write fails. Pongs
//!   and the echo of the CSMS's close are the shell's own, written after a drain. The timer dispatch hands the link's own timers
//!   (handshake, close handshake, a slow reader's pause) and the faults a scenario injects (flaps, storms) to
//!   the shell, and a reboot of a charger still connecting has it drop the half-open socket: none of these
//!   writes, so none can fail in the middle of the protocol's handling.
//!
//! This file holds the state (a [`Charger`] per simulated charger) and the driving; each seam has a file of its
//! own: `timers` (the timer kinds, what fires when), `link` (the shell), `outbox` (the seam between the two),
//! `calls` (what the charger sends, its link coming up), `replies` (the CSMS's answers to it), `commands` (the
//! CSMS's CALLs), `charging` (the charging profiles it obeys), `settings` (its configuration keys and variables), `behaviour` (transactions, firmware,
//! reboots), `load` (the bench load) and `report` (the run's counters and the report).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use serde_json::value::RawValue;
use serde_json::Value;

use super::config::{SimConfig, TRAIT_FLAP, TRAIT_SLOW_READ};
use super::ev::Ev;
use super::msg::{self, Action, ACTIONS};
use super::profiles::Profiles;

mod behaviour;
mod calls;
mod charging;
mod commands;
mod link;
mod load;
mod outbox;
mod replies;
mod report;
mod settings;
#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_outbox;
#[cfg(test)]
mod tests_profiles;
#[cfg(test)]
mod tests_protocol;
#[cfg(test)]
mod tests_socket;
#[cfg(test)]
mod tests_tls;
mod timers;

use outbox::Outbox;
use report::Counters;
use timers::{Due, RunTimer, Timer};

use crate::client::net::{self, connect, connect_failure, XorShift};
use crate::client::stream::Stream;
use crate::client::tls::{ClientTls, Identity};
use crate::client::{ClientError, Histogram, Protocol};
use crate::codec::{self, Decoder, Event, OpCode, Role};
use crate::limits::{raise_nofile_limit, FD_RESERVE};
pub use commands::version_from_location;
pub use load::LoadWindow;

const SCRATCH: usize = 64 << 10;
const EVENTS: usize = 1024;
const MAX_WAIT: Duration = Duration::from_millis(10);
/// How long closing at the end of the run waits for the CSMS to finish the close handshakes.
const CLOSE_WAIT_US: u64 = 5_000_000;
/// CSMS messages kept for the schema check when Python does not take them; beyond this they are counted.
const MAX_CHECKS: usize = 1 << 20;

/// Error kinds of the report: what a real charger would log as a fault.
pub const E_CONNECT: &str = "connect_failed";
pub const E_HANDSHAKE: &str = "handshake_failed";
/// The TLS handshake failed (the server's certificate did not verify, the server refused ours, ...).
pub const E_TLS: &str = "tls_failed";
pub const E_TIMEOUT: &str = "timeout";
pub const E_CALL_ERROR: &str = "call_error";
pub const E_CLOSE: &str = "unexpected_close";
pub const E_PROTOCOL: &str = "protocol_error";

enum Link {
    Down,
    Connecting,
    /// wss://: the TLS handshake, between the TCP connect and the upgrade.
    Securing,
    Upgrading {
        key: Box<str>,
        buf: Vec<u8>,
    },
    Open,
    /// Our close is asked for (in the outbox, or written); reconnect this long after the close finishes (a
    /// reboot), or stay down.
    Closing {
        reconnect_after: Option<f64>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Boot {
    None,
    Sent,
    Pending,
    Accepted,
}

/// Why a charger sends a CALL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Purpose {
    /// Its own behaviour: boot, status, heartbeats, the scenario's transactions, firmware, answers to the CSMS.
    Own,
    /// A round trip of the bench load: counted and timed as the load.
    Load,
    /// The transaction a MeterValues load runs in (its start, and its stop on a reboot): not load round trips.
    LoadTx,
}

struct Out {
    action: Action,
    seq: u32,
    sent_us: u64,
    purpose: Purpose,
    /// Transaction and firmware messages are resent after a reconnect when unanswered (at-least-once, as
    /// chargers do); the CSMS de-duplicates.
    resend: Option<String>,
}

struct Queued {
    action: Action,
    payload: String,
    purpose: Purpose,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TxPhase {
    Authorizing,
    Starting,
    Charging,
    Stopping,
}

struct Tx {
    phase: TxPhase,
    connector: u32,
    id16: Option<i64>,
    id201: Box<str>,
    seq_no: u32,
    tag: Box<str>,
    remote_start_id: Option<i64>,
    last_meter_us: u64,
    /// The 1.6 stop waits for the transaction id when the start is still unanswered.
    stop_reason: Option<&'static str>,
    /// The EV plugged in (None: the transaction draws the scenario's `power_w`), and the meter register when it
    /// arrived (what it took since gives its state of charge).
    ev: Option<Ev>,
    meter_start_wh: f64,
    /// When it started (ms since the epoch): a Relative charging profile's schedule starts then.
    started_ms: i64,
}

struct Fw {
    request_id: Option<i64>,
    signed: bool,
    /// 0 Downloading sent, 1 Downloaded sent, 2 Installing sent, 3 rebooting to install.
    step: u8,
    new_version: Box<str>,
}

/// A charger's connection: the socket, where its link is (down, connecting, upgrading, open, closing), the
/// frame decoder and what waits to be written. Bumping `epoch` kills every timer set on the link before, and
/// every output emitted on it that the shell has not written yet.
struct Conn {
    sock: Option<Stream>,
    link: Link,
    decoder: Decoder,
    wbuf: Vec<u8>,
    epoch: u32,
}

/// One simulated charger: its connection, and its protocol state (what it has said and been told).
struct Charger {
    conn: Conn,
    boot: Boot,
    need_boot: bool,
    boot_reason: &'static str,
    ever_connected: bool,
    ever_booted: bool,
    outstanding: Option<Out>,
    queue: VecDeque<Queued>,
    seq: u32,
    hb_interval: f64,
    meter_period: f64,
    tx: Option<Tx>,
    tx_gen: u32,
    tx_count: u32,
    tx_scheduled: bool,
    fw: Option<Fw>,
    fw_gen: u32,
    fw_version: Box<str>,
    /// The charging profiles the CSMS installed (they survive reboots and lost links, as on a real charger).
    profiles: Profiles,
    energy_wh: f64,
    available: bool,
    reboot_pending: Option<&'static str>,
    after_tx: AfterTx,
    connect_started_us: u64,
    /// Its part in the bench load.
    load: load::LoadState,
    /// The instant of the last meter reading it sent (ms since the epoch): the next is strictly later.
    last_meter_ms: i64,
    local_list_version: i64,
    traits: u8,
    /// The scenario's status changes: connector 1 shows Preparing (a cable in, no transaction) until the next.
    plugged: bool,
}

impl Charger {
    /// The protocol's side of losing the link: a boot in flight is forgotten, the outstanding CALL goes out
    /// again first on the next link if it must, and the liveness and load CALLs are not kept for it
    /// (transaction and firmware messages are).
    fn link_lost(&mut self) {
        if self.boot == Boot::Sent || self.boot == Boot::Pending {
            self.boot = Boot::None;
        }
        if let Some(out) = self.outstanding.take() {
            self.resend_first(out);
        }
        self.queue
            .retain(|q| q.purpose != Purpose::Load && q.action != Action::Heartbeat);
        self.load.link_lost();
    }

    /// A CALL of ours that will get no answer on this link: if it must reach the CSMS (a transaction or firmware
    /// message), it goes out again first on the next one.
    fn resend_first(&mut self, out: Out) {
        if let Some(payload) = out.resend {
            self.queue.push_front(Queued {
                action: out.action,
                payload,
                purpose: out.purpose,
            });
        }
    }
}

/// What the CSMS asked for while a transaction ran ("Scheduled"), done when it ends.
#[derive(Default)]
struct AfterTx {
    available: Option<bool>,
    /// A Reset OnIdle: the boot reason of the reboot.
    reboot: Option<&'static str>,
}

/// Live counters for the progress line.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    pub chargers: u64,
    pub connected: u64,
    pub booted: u64,
    pub sent: u64,
    pub received: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub done: bool,
}

/// One message from the CSMS for the schema check: (kind "call"/"result", action, payload JSON).
pub type Check = (&'static str, String, String);

#[derive(PartialEq, Eq)]
enum Phase {
    NotStarted,
    Running,
    Closing { until_us: u64 },
    Done,
}

pub struct Sim {
    cfg: SimConfig,
    poll: Poll,
    events: Events,
    ch: Vec<Charger>,
    timers: BinaryHeap<Reverse<(u64, Due)>>,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    /// What the chargers' protocol side emitted since the shell last wrote it out.
    outbox: Outbox,
    payload: String,
    host_header: String,
    rng: XorShift,
    epoch: Instant,
    phase: Phase,
    connect_wait: VecDeque<u32>,
    connects_started: u64,
    inflight: usize,
    open: usize,
    booted_open: usize,
    rolling_cursor: usize,
    load_on: bool,
    load_free: VecDeque<u32>,
    load_due_done: u64,
    /// Chargers with a load CALL queued or outstanding.
    load_busy: usize,
    /// Names this run in the 2.0.1 transaction ids a MeterValues load picks (the start time, in hex ms).
    run_tag: String,
    checks: Vec<Check>,
    /// wss://: the TLS client context, and per charger (empty for ws://) its certificate when the run issues
    /// one to each, and the session it offers on its next connect.
    tls: Option<ClientTls>,
    identities: Vec<Option<Identity>>,
    sessions: Vec<Option<openssl::ssl::SslSession>>,
    // Report counters.
    r: Counters,
}

impl Sim {
    pub fn new(cfg: SimConfig, traits: Vec<u8>) -> Result<Self, ClientError> {
        cfg.check()
            .map_err(|(k, why)| ClientError::Config(k, why))?;
        if traits.len() != cfg.count {
            return Err(ClientError::Config(
                "traits",
                format!("{} bytes for {} chargers", traits.len(), cfg.count),
            ));
        }
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
        let ch = traits
            .iter()
            .map(|&t| Charger {
                conn: Conn {
                    sock: None,
                    link: Link::Down,
                    decoder: Decoder::new(Role::Client, 0),
                    wbuf: Vec::new(),
                    epoch: 0,
                },
                boot: Boot::None,
                need_boot: true,
                boot_reason: "PowerUp",
                ever_connected: false,
                ever_booted: false,
                outstanding: None,
                queue: VecDeque::new(),
                seq: 0,
                hb_interval: cfg.heartbeat_interval.unwrap_or(60.0),
                meter_period: cfg.meter_period,
                tx: None,
                tx_gen: 0,
                tx_count: 0,
                tx_scheduled: false,
                fw: None,
                fw_gen: 0,
                fw_version: cfg.firmware_version.clone().into_boxed_str(),
                profiles: Profiles::default(),
                energy_wh: 0.0,
                available: true,
                reboot_pending: None,
                after_tx: AfterTx::default(),
                connect_started_us: 0,
                load: load::LoadState::default(),
                last_meter_ms: 0,
                local_list_version: 0,
                traits: t,
                plugged: false,
            })
            .collect();
        let tls = cfg.tls.as_ref().map(ClientTls::new).transpose()?;
        let (identities, sessions) = match &tls {
            None => (Vec::new(), Vec::new()),
            Some(t) => {
                let ids = if t.issues_identities() {
                    (0..cfg.count).map(|_| None).collect()
                } else {
                    Vec::new()
                };
                (ids, (0..cfg.count).map(|_| None).collect())
            }
        };
        let host_header = match &cfg.tls {
            // The URL's host name, as a browser sends it; an IP address as the target.
            Some(t) if t.server_name.parse::<std::net::IpAddr>().is_err() => {
                format!("{}:{}", t.server_name, cfg.target.port())
            }
            _ => cfg.target.to_string(),
        };
        let seed = cfg
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(cfg.first_index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Ok(Self {
            host_header,
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS),
            ch,
            timers: BinaryHeap::new(),
            scratch: vec![0; SCRATCH],
            frame: Vec::new(),
            outbox: Outbox::default(),
            payload: String::new(),
            rng: XorShift::new(seed),
            epoch: Instant::now(),
            phase: Phase::NotStarted,
            connect_wait: VecDeque::new(),
            connects_started: 0,
            inflight: 0,
            open: 0,
            booted_open: 0,
            rolling_cursor: 0,
            load_on: false,
            load_free: VecDeque::new(),
            load_due_done: 0,
            load_busy: 0,
            run_tag: String::new(),
            checks: Vec::new(),
            tls,
            identities,
            sessions,
            r: Counters {
                latency: (0..ACTIONS).map(|_| Histogram::new()).collect(),
                ..Counters::default()
            },
            cfg,
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    // -- driving -------------------------------------------------------------------------------------------

    /// Run the loop for up to `slice`; true once the run is over (duration reached, every link closed).
    pub fn run(&mut self, slice: Duration) -> Result<bool, ClientError> {
        if self.phase == Phase::NotStarted {
            self.start();
        }
        let deadline = Instant::now() + slice;
        loop {
            let now = self.now_us();
            self.fire_timers(now);
            self.pump_connects(now);
            self.pump_load(now);
            self.drain();
            if let Phase::Closing { until_us } = self.phase {
                let closing = self.ch.iter().any(|c| {
                    matches!(c.conn.link, Link::Closing { .. }) || c.load.close_when_answered
                });
                if !closing || now >= until_us {
                    self.finish();
                }
            }
            if self.phase == Phase::Done {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut wait = left.min(MAX_WAIT);
            if let Some(Reverse((at, ..))) = self.timers.peek() {
                let until = Duration::from_micros(at.saturating_sub(self.now_us()));
                wait = wait.min(until);
            }
            self.turn(wait)?;
        }
    }

    /// End the run now: the same closing as when the duration is reached.
    pub fn stop(&mut self) {
        match self.phase {
            Phase::NotStarted => self.phase = Phase::Done,
            Phase::Running => {
                self.begin_closing();
                self.drain();
            }
            _ => {}
        }
    }

    pub fn stats(&self) -> SimStats {
        SimStats {
            chargers: self.ch.len() as u64,
            connected: self.open as u64,
            booted: self.booted_open as u64,
            sent: self.r.sent,
            received: self.r.received,
            errors: self.r.error_total,
            elapsed_s: self.elapsed_s(),
            done: self.phase == Phase::Done,
        }
    }

    pub fn take_checks(&mut self) -> Vec<Check> {
        std::mem::take(&mut self.checks)
    }

    fn elapsed_s(&self) -> f64 {
        if self.phase == Phase::NotStarted {
            0.0
        } else if self.phase == Phase::Done {
            self.r.elapsed_end_s
        } else {
            self.epoch.elapsed().as_secs_f64()
        }
    }

    fn start(&mut self) {
        self.epoch = Instant::now();
        self.run_tag = format!("{:x}", msg::now_ms());
        self.phase = Phase::Running;
        self.connect_wait = (0..self.ch.len() as u32).collect();
        self.at(secs(self.cfg.duration), Due::Run(RunTimer::End));
        if let Some(t) = self.cfg.storm_at {
            self.at(secs(t), Due::Run(RunTimer::Storm));
        }
        if self.cfg.rolling_period > 0.0 && self.cfg.rolling_fraction > 0.0 {
            self.at(secs(self.cfg.rolling_period), Due::Run(RunTimer::Rolling));
        }
    }

    fn begin_closing(&mut self) {
        self.r.end_connected = self.open as u64;
        self.r.end_booted = self.booted_open as u64;
        self.timers.clear();
        self.connect_wait.clear();
        self.load_on = false;
        self.phase = Phase::Closing {
            until_us: self.now_us() + CLOSE_WAIT_US,
        };
        for idx in 0..self.ch.len() {
            match self.ch[idx].conn.link {
                // The load ends with the run, and its last CALL is seen through: the charger closes once it
                // is answered (within CLOSE_WAIT_US), so that the CSMS holds no reading whose answer its
                // charger never saw (see `Sim::after_answer`).
                Link::Open if self.load_outstanding(idx) => {
                    self.ch[idx].load.close_when_answered = true
                }
                Link::Open => self.close_at_end(idx),
                Link::Connecting | Link::Securing | Link::Upgrading { .. } => self.drop_link(idx),
                Link::Closing { .. } => {
                    self.ch[idx].conn.link = Link::Closing {
                        reconnect_after: None,
                    }
                }
                Link::Down => {}
            }
        }
    }

    /// Close an open link because the run is over.
    fn close_at_end(&mut self, idx: usize) {
        self.set_link_down_counts(idx);
        self.ch[idx].conn.link = Link::Closing {
            reconnect_after: None,
        };
        self.emit_close(idx, codec::CLOSE_NORMAL);
    }

    fn finish(&mut self) {
        for idx in 0..self.ch.len() {
            let c = &self.ch[idx];
            if matches!(c.conn.link, Link::Closing { .. }) || c.load.close_when_answered {
                self.drop_link(idx);
            }
        }
        self.r.elapsed_end_s = self.epoch.elapsed().as_secs_f64();
        self.phase = Phase::Done;
    }

    fn rand_f64(&mut self) -> f64 {
        self.rng.next_f64()
    }

    /// Reconnect wait after a failure: uniform in [1, reconnect_backoff] s (or 0 when it is 0).
    fn backoff(&mut self) -> f64 {
        let max = self.cfg.reconnect_backoff;
        if max <= 0.0 {
            return 0.0;
        }
        let lo = max.min(1.0);
        lo + self.rand_f64() * (max - lo)
    }

    fn mask(&mut self) -> [u8; 4] {
        self.rng.mask()
    }
}

/// The eventType of a 2.0.1 TransactionEvent we sent (its payload starts with it).
fn event_type(out: &Out) -> &'static str {
    let p = out.resend.as_deref().unwrap_or("");
    for t in ["Started", "Updated", "Ended"] {
        if p.starts_with(&format!(r#"{{"eventType":"{t}""#)) {
            return t;
        }
    }
    ""
}

fn secs(s: f64) -> u64 {
    (s.clamp(0.0, 1e9) * 1e6) as u64
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}
