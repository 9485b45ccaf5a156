//! The simulator's event loop: one mio poll over every simulated charger of this process, a timer heap, and
//! each charger's OCPP state machine (boot, status, heartbeats, transactions, firmware, the CSMS's commands).
//!
//! Python drives it in slices ([`Sim::run`]) and takes, between slices, the CSMS's messages for the schema
//! check ([`Sim::take_checks`]) and the counters ([`Sim::stats`], [`Sim::report`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::value::RawValue;
use serde_json::Value;

use super::config::{SimConfig, TRAIT_FLAP, TRAIT_SLOW_READ};
use super::msg::{self, Action, ACTIONS};

mod behaviour;
mod commands;
mod load;
#[cfg(test)]
mod tests_load;

use crate::codec::{self, Decoder, Event, OpCode, Role};
use crate::gateway::worker::raise_nofile_limit;
use crate::loadgen::client::FD_RESERVE;
use crate::loadgen::net::{self, connect, connect_failure, XorShift};
use crate::loadgen::{Histogram, LoadGenError, Protocol};
pub use commands::version_from_location;

const SCRATCH: usize = 64 << 10;
const EVENTS: usize = 1024;
const MAX_WAIT: Duration = Duration::from_millis(10);
/// How long closing at the end of the run waits for the CSMS to finish the close handshakes.
const CLOSE_WAIT_US: u64 = 5_000_000;
/// CSMS messages kept for the schema check when Python does not take them; beyond this they are counted.
const MAX_CHECKS: usize = 1 << 20;
const GLOBAL: u32 = u32::MAX;

// Timer kinds. Link-bound timers carry the link epoch and die with the link; the others carry a generation.
const K_CONNECT: u8 = 0;
const K_HEARTBEAT: u8 = 1;
const K_BOOT_RETRY: u8 = 2;
const K_CALL_TIMEOUT: u8 = 3;
const K_FLAP: u8 = 4;
const K_SLOW_RESUME: u8 = 5;
const K_TX_BEGIN: u8 = 6;
const K_METER: u8 = 7;
const K_TX_END: u8 = 8;
const K_FW_STEP: u8 = 9;
const K_REBOOT: u8 = 10;
const K_HANDSHAKE: u8 = 11;
const K_CLOSE: u8 = 12;
const G_END: u8 = 100;
const G_STORM: u8 = 101;
const G_ROLLING: u8 = 102;

/// Error kinds of the report: what a real charger would log as a fault.
pub const E_CONNECT: &str = "connect_failed";
pub const E_HANDSHAKE: &str = "handshake_failed";
pub const E_TIMEOUT: &str = "timeout";
pub const E_CALL_ERROR: &str = "call_error";
pub const E_CLOSE: &str = "unexpected_close";
pub const E_PROTOCOL: &str = "protocol_error";

enum Link {
    Down,
    Connecting,
    Upgrading {
        key: Box<str>,
        buf: Vec<u8>,
    },
    Open,
    /// Our close frame is out; reconnect this long after the close finishes (a reboot), or stay down.
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
}

struct Fw {
    request_id: Option<i64>,
    signed: bool,
    /// 0 Downloading sent, 1 Downloaded sent, 2 Installing sent, 3 rebooting to install.
    step: u8,
    new_version: Box<str>,
}

struct Charger {
    sock: Option<TcpStream>,
    link: Link,
    decoder: Decoder,
    wbuf: Vec<u8>,
    link_epoch: u32,
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
    limit_w: Option<f64>,
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
}

impl Charger {
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

/// (due µs, charger index or GLOBAL, kind, link epoch, argument).
type Timer = (u64, u32, u8, u32, u32);

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
    timers: BinaryHeap<Reverse<Timer>>,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    text: String,
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
    /// Names this run in the 2.0.1 transaction ids a MeterValues load picks (the start time, in hex ms).
    run_tag: String,
    checks: Vec<Check>,
    // Report counters.
    r: Counters,
}

#[derive(Default)]
struct Counters {
    connects: u64,
    first_connects: u64,
    boots: u64,
    ever_booted: u64,
    first_connect_us: Option<u64>,
    last_first_connect_us: u64,
    last_first_boot_us: u64,
    sent: u64,
    received: u64,
    errors: BTreeMap<&'static str, u64>,
    error_details: BTreeMap<&'static str, BTreeMap<String, u64>>,
    error_total: u64,
    latency: Vec<Histogram>,
    connect_latency: Histogram,
    responses: BTreeMap<&'static str, BTreeMap<String, u64>>,
    csms_calls: BTreeMap<String, u64>,
    tx_started: u64,
    tx_stopped: u64,
    tx_refused: u64,
    fw_updates: u64,
    fw_installed: u64,
    fw_failed: u64,
    fw_statuses: BTreeMap<&'static str, u64>,
    reboots: u64,
    flaps: u64,
    storm_drops: u64,
    load_skipped: u64,
    load: load::LoadCounters,
    checks_dropped: u64,
    end_connected: u64,
    end_booted: u64,
    closed_clean: u64,
    elapsed_end_s: f64,
}

/// What the report says about one run of one process (serialised by [`Sim::report_json`]).
impl Sim {
    pub fn new(cfg: SimConfig, traits: Vec<u8>) -> Result<Self, LoadGenError> {
        cfg.check()
            .map_err(|(k, why)| LoadGenError::Config(k, why))?;
        if traits.len() != cfg.count {
            return Err(LoadGenError::Config(
                "traits",
                format!("{} bytes for {} chargers", traits.len(), cfg.count),
            ));
        }
        let limit = raise_nofile_limit();
        let needed = cfg.count + FD_RESERVE;
        if needed > limit {
            return Err(LoadGenError::FileLimit {
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
                sock: None,
                link: Link::Down,
                decoder: Decoder::new(Role::Client, 0),
                wbuf: Vec::new(),
                link_epoch: 0,
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
                limit_w: None,
                energy_wh: 0.0,
                available: true,
                reboot_pending: None,
                after_tx: AfterTx::default(),
                connect_started_us: 0,
                load: load::LoadState::default(),
                last_meter_ms: 0,
                local_list_version: 0,
                traits: t,
            })
            .collect();
        let seed = cfg
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(cfg.first_index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Ok(Self {
            host_header: cfg.target.to_string(),
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS),
            ch,
            timers: BinaryHeap::new(),
            scratch: vec![0; SCRATCH],
            frame: Vec::new(),
            text: String::new(),
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
            run_tag: String::new(),
            checks: Vec::new(),
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
    pub fn run(&mut self, slice: Duration) -> Result<bool, LoadGenError> {
        if self.phase == Phase::NotStarted {
            self.start();
        }
        let deadline = Instant::now() + slice;
        loop {
            let now = self.now_us();
            self.fire_timers(now);
            self.pump_connects(now);
            self.pump_load(now);
            if let Phase::Closing { until_us } = self.phase {
                let closing = self
                    .ch
                    .iter()
                    .any(|c| matches!(c.link, Link::Closing { .. }) || c.load.close_when_answered);
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
            Phase::Running => self.begin_closing(),
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
        self.at(secs(self.cfg.duration), GLOBAL, G_END, 0, 0);
        if let Some(t) = self.cfg.storm_at {
            self.at(secs(t), GLOBAL, G_STORM, 0, 0);
        }
        if self.cfg.rolling_period > 0.0 && self.cfg.rolling_fraction > 0.0 {
            self.at(secs(self.cfg.rolling_period), GLOBAL, G_ROLLING, 0, 0);
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
            match self.ch[idx].link {
                // The load ends with the run, and its last CALL is seen through: the charger closes once it
                // is answered (within CLOSE_WAIT_US), so that the CSMS holds no reading whose answer its
                // charger never saw (see `Sim::after_answer`).
                Link::Open if self.load_outstanding(idx) => {
                    self.ch[idx].load.close_when_answered = true
                }
                Link::Open => self.close_at_end(idx),
                Link::Connecting | Link::Upgrading { .. } => self.drop_link(idx),
                Link::Closing { .. } => {
                    self.ch[idx].link = Link::Closing {
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
        self.ch[idx].link = Link::Closing {
            reconnect_after: None,
        };
        self.send_close(idx, 1000);
    }

    fn finish(&mut self) {
        for idx in 0..self.ch.len() {
            let c = &self.ch[idx];
            if matches!(c.link, Link::Closing { .. }) || c.load.close_when_answered {
                self.drop_link(idx);
            }
        }
        self.r.elapsed_end_s = self.epoch.elapsed().as_secs_f64();
        self.phase = Phase::Done;
    }

    // -- timers --------------------------------------------------------------------------------------------

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn at(&mut self, at_us: u64, idx: u32, kind: u8, epoch: u32, arg: u32) {
        self.timers.push(Reverse((at_us, idx, kind, epoch, arg)));
    }

    fn after(&mut self, delay_s: f64, idx: usize, kind: u8, epoch: u32, arg: u32) {
        let at = self.now_us() + secs(delay_s);
        self.at(at, idx as u32, kind, epoch, arg);
    }

    fn fire_timers(&mut self, now: u64) {
        while let Some(&Reverse((at, idx, kind, epoch, arg))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if !matches!(self.phase, Phase::Running) {
                continue;
            }
            if idx == GLOBAL {
                self.global_timer(kind);
            } else {
                self.charger_timer(idx as usize, kind, epoch, arg);
            }
        }
    }

    fn global_timer(&mut self, kind: u8) {
        match kind {
            G_END => self.begin_closing(),
            G_STORM => {
                for idx in 0..self.ch.len() {
                    if matches!(self.ch[idx].link, Link::Open) {
                        self.r.storm_drops += 1;
                        self.drop_link(idx);
                        let wait = self.rand_f64() * self.cfg.storm_backoff;
                        self.after(wait, idx, K_CONNECT, 0, 0);
                    }
                }
            }
            G_ROLLING => {
                // Round r reboots fleet indices [r·f·N, (r+1)·f·N) modulo N, where N is the whole fleet over
                // every process: the same chargers whatever the number of processes. This process takes
                // the ones it holds.
                let fleet = self.cfg.fleet_size.max(1) as f64;
                let round = self.rolling_cursor as f64;
                let lo = (round * self.cfg.rolling_fraction * fleet).floor() as u64;
                let hi = ((round + 1.0) * self.cfg.rolling_fraction * fleet).floor() as u64;
                self.rolling_cursor += 1;
                let n = self.cfg.fleet_size.max(1);
                let (first, count) = (self.cfg.first_index, self.ch.len() as u64);
                for g in lo..hi.min(lo + n) {
                    let g = g % n;
                    if g >= first && g < first + count {
                        let idx = (g - first) as usize;
                        if matches!(self.ch[idx].boot, Boot::Accepted) {
                            self.begin_reboot(idx, "ScheduledReset", "Reboot");
                        }
                    }
                }
                self.after(self.cfg.rolling_period, GLOBAL as usize, G_ROLLING, 0, 0);
            }
            _ => {}
        }
    }

    fn charger_timer(&mut self, idx: usize, kind: u8, epoch: u32, arg: u32) {
        let c = &self.ch[idx];
        let link_ok = epoch == c.link_epoch && matches!(c.link, Link::Open);
        match kind {
            K_CONNECT => {
                if matches!(c.link, Link::Down) {
                    self.connect_wait.push_back(idx as u32);
                }
            }
            K_HEARTBEAT if link_ok => {
                if c.boot == Boot::Accepted {
                    let busy = c
                        .queue
                        .iter()
                        .any(|q| q.action == Action::Heartbeat && q.purpose == Purpose::Own)
                        || matches!(&c.outstanding, Some(o) if o.action == Action::Heartbeat && o.purpose == Purpose::Own);
                    if !busy {
                        self.call(idx, Action::Heartbeat, "{}".into());
                    }
                }
                let interval = self.ch[idx].hb_interval;
                self.after(interval, idx, K_HEARTBEAT, epoch, 0);
            }
            K_BOOT_RETRY
                if link_ok
                    && matches!(c.boot, Boot::Pending | Boot::None)
                    && c.outstanding.is_none() =>
            {
                self.send_boot(idx)
            }
            K_CALL_TIMEOUT if link_ok => {
                if matches!(&c.outstanding, Some(o) if o.seq == arg) {
                    let out = self.ch[idx].outstanding.take().unwrap();
                    self.error(E_TIMEOUT, out.action.name());
                    self.unanswered(idx, out);
                    self.pump_queue(idx);
                }
            }
            K_FLAP if link_ok => {
                self.r.flaps += 1;
                self.drop_link(idx);
                self.after(self.cfg.flap_down, idx, K_CONNECT, 0, 0);
            }
            K_SLOW_RESUME if link_ok => {
                if let Some(sock) = self.ch[idx].sock.as_mut() {
                    let _ = self.poll.registry().reregister(
                        sock,
                        Token(idx),
                        Interest::READABLE | Interest::WRITABLE,
                    );
                }
                self.read(idx, false, true);
            }
            K_TX_BEGIN if arg == c.tx_gen => {
                self.ch[idx].tx_scheduled = false;
                if !self.begin_tx(idx, None, None) && self.ch[idx].tx.is_none() {
                    // Unavailable or not booted: the driver tries again later.
                    self.schedule_tx(idx);
                }
            }
            K_METER if arg == c.tx_gen => self.meter_tick(idx),
            K_TX_END if arg == c.tx_gen => {
                if matches!(&c.tx, Some(t) if t.phase == TxPhase::Charging) {
                    self.stop_tx(idx, "Local", "StopAuthorized");
                }
            }
            K_FW_STEP if arg == c.fw_gen => self.fw_step(idx),
            K_REBOOT if c.reboot_pending.is_some() => self.do_reboot(idx),
            K_HANDSHAKE
                if epoch == c.link_epoch
                    && matches!(c.link, Link::Connecting | Link::Upgrading { .. }) =>
            {
                self.fail_link(idx, E_TIMEOUT, "connect and upgrade")
            }
            K_CLOSE if epoch == c.link_epoch && matches!(c.link, Link::Closing { .. }) => {
                // The CSMS never finished the close handshake: let go of the link all the same.
                self.fail_link(idx, E_CLOSE, "close handshake not finished")
            }
            _ => {}
        }
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

    // -- connecting ----------------------------------------------------------------------------------------

    fn pump_connects(&mut self, now: u64) {
        if !matches!(self.phase, Phase::Running) {
            return;
        }
        while self.inflight < self.cfg.max_inflight {
            if self.cfg.connect_rate > 0.0 {
                let due = (self.cfg.connect_rate * now as f64 / 1e6) as u64 + 1;
                if self.connects_started >= due {
                    break;
                }
            }
            let Some(idx) = self.connect_wait.pop_front() else {
                break;
            };
            let idx = idx as usize;
            if matches!(self.ch[idx].link, Link::Down) {
                self.connects_started += 1;
                self.start_connect(idx);
            }
        }
    }

    fn start_connect(&mut self, idx: usize) {
        let now = self.now_us();
        self.r.first_connect_us.get_or_insert(now);
        self.ch[idx].connect_started_us = now;
        match connect(self.cfg.target, self.cfg.source_ip(idx)) {
            Ok(mut sock) => {
                if let Err(e) = self.poll.registry().register(
                    &mut sock,
                    Token(idx),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    self.error(E_CONNECT, &format!("register: {e}"));
                    let wait = self.backoff();
                    self.after(wait, idx, K_CONNECT, 0, 0);
                    return;
                }
                let c = &mut self.ch[idx];
                c.sock = Some(sock);
                c.link = Link::Connecting;
                let e = c.link_epoch;
                self.inflight += 1;
                self.after(self.cfg.call_timeout, idx, K_HANDSHAKE, e, 0);
            }
            Err(e) => {
                self.error(E_CONNECT, &connect_failure(&e));
                let wait = self.backoff();
                self.after(wait, idx, K_CONNECT, 0, 0);
            }
        }
    }

    fn finish_connect(&mut self, idx: usize) {
        let Some(sock) = self.ch[idx].sock.as_ref() else {
            return;
        };
        match net::connected(sock) {
            Ok(true) => {}
            Ok(false) => return, // Not yet: wait for the next event.
            Err(e) => return self.fail_link(idx, E_CONNECT, &connect_failure(&e)),
        }
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
        self.ch[idx].link = Link::Upgrading {
            key,
            buf: Vec::new(),
        };
        self.write(idx, &req);
        self.frame = req;
    }

    fn on_upgraded(&mut self, idx: usize) {
        let now = self.now_us();
        self.inflight -= 1;
        self.open += 1;
        self.r.connects += 1;
        let c = &mut self.ch[idx];
        c.link = Link::Open;
        c.decoder = Decoder::new(Role::Client, self.cfg.max_message);
        self.r
            .connect_latency
            .record(now.saturating_sub(c.connect_started_us));
        if !c.ever_connected {
            c.ever_connected = true;
            self.r.first_connects += 1;
            self.r.last_first_connect_us = now;
        }
        if c.need_boot || c.boot != Boot::Accepted {
            self.send_boot(idx);
        } else {
            // A link that came back: the charger was accepted before, so it carries on without a new boot.
            self.booted_open += 1;
            self.link_up_timers(idx);
            self.pump_queue(idx);
        }
    }

    /// Timers that live as long as an accepted link: heartbeats, flapping.
    fn link_up_timers(&mut self, idx: usize) {
        if !matches!(self.ch[idx].link, Link::Open) {
            return; // The link failed while the boot was being handled.
        }
        let e = self.ch[idx].link_epoch;
        let hb = self.ch[idx].hb_interval;
        self.after(hb, idx, K_HEARTBEAT, e, 0);
        if self.ch[idx].traits & TRAIT_FLAP != 0 {
            let period = self.cfg.flap_period * (0.5 + self.rand_f64());
            self.after(period, idx, K_FLAP, e, 0);
        }
        self.load_resume(idx);
    }

    // -- sending CALLs -------------------------------------------------------------------------------------

    fn send_boot(&mut self, idx: usize) {
        let mut p = std::mem::take(&mut self.payload);
        p.clear();
        let serial = self.serial(idx);
        let c = &self.ch[idx];
        msg::boot(
            &mut p,
            self.cfg.protocol,
            &self.cfg.vendor,
            &self.cfg.model,
            &serial,
            &c.fw_version,
            c.boot_reason,
        );
        self.ch[idx].boot = Boot::Sent;
        self.send_call(idx, Action::BootNotification, &p, Purpose::Own);
        self.payload = p;
    }

    /// The serial number a charger reports: its id, cut to the schemas' 25 characters from the left so the
    /// distinguishing number stays.
    fn serial(&self, idx: usize) -> String {
        let id = self.cfg.charger_id(idx);
        let skip = id.chars().count().saturating_sub(25);
        id.chars().skip(skip).collect()
    }

    /// Queue one of the charger's own CALLs (sent once the ones before it are answered).
    fn call(&mut self, idx: usize, action: Action, payload: String) {
        self.call_for(idx, action, payload, Purpose::Own);
    }

    fn call_for(&mut self, idx: usize, action: Action, payload: String, purpose: Purpose) {
        self.ch[idx].queue.push_back(Queued {
            action,
            payload,
            purpose,
        });
        self.pump_queue(idx);
    }

    fn pump_queue(&mut self, idx: usize) {
        let c = &mut self.ch[idx];
        if c.outstanding.is_some() || !matches!(c.link, Link::Open) || c.boot != Boot::Accepted {
            return;
        }
        if let Some(q) = c.queue.pop_front() {
            self.send_call(idx, q.action, &q.payload, q.purpose);
        } else if c.reboot_pending.is_some() {
            self.do_reboot(idx);
        }
    }

    fn send_call(&mut self, idx: usize, action: Action, payload: &str, purpose: Purpose) {
        let c = &mut self.ch[idx];
        c.seq = c.seq.wrapping_add(1);
        let seq = c.seq;
        let mut text = std::mem::take(&mut self.text);
        msg::call_head(&mut text, seq, action);
        text.push_str(payload);
        text.push(']');
        // A load round trip is a measurement: one lost with its link is counted, not sent again.
        let resend = purpose != Purpose::Load
            && matches!(
                action,
                Action::StartTransaction
                    | Action::StopTransaction
                    | Action::TransactionEvent
                    | Action::MeterValues
                    | Action::FirmwareStatusNotification
                    | Action::SignedFirmwareStatusNotification
            );
        let now = self.now_us();
        if purpose == Purpose::Load {
            self.load_sent();
        }
        self.ch[idx].outstanding = Some(Out {
            action,
            seq,
            sent_us: now,
            purpose,
            resend: resend.then(|| payload.to_owned()),
        });
        self.r.sent += 1;
        self.send(idx, OpCode::Text, text.as_bytes());
        self.text = text;
        let e = self.ch[idx].link_epoch;
        self.after(self.cfg.call_timeout, idx, K_CALL_TIMEOUT, e, seq);
    }

    fn send_reply(&mut self, idx: usize, unique_id: &str, payload: &str) {
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        text.push_str("[3,");
        text.push_str(&serde_json::to_string(unique_id).unwrap_or_default());
        text.push(',');
        text.push_str(payload);
        text.push(']');
        self.r.sent += 1;
        self.send(idx, OpCode::Text, text.as_bytes());
        self.text = text;
    }

    fn send_call_error(&mut self, idx: usize, unique_id: &str, code: &str, why: &str) {
        let text = format!(
            "[4,{},{},{},{{}}]",
            serde_json::to_string(unique_id).unwrap_or_default(),
            serde_json::to_string(code).unwrap_or_default(),
            serde_json::to_string(why).unwrap_or_default()
        );
        self.r.sent += 1;
        self.send(idx, OpCode::Text, text.as_bytes());
    }

    // -- the socket ----------------------------------------------------------------------------------------

    fn turn(&mut self, timeout: Duration) -> Result<(), LoadGenError> {
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
            if idx >= self.ch.len() || self.ch[idx].sock.is_none() {
                continue;
            }
            let read_closed = ev.is_read_closed();
            if matches!(self.ch[idx].link, Link::Connecting) {
                if ev.is_writable() || ev.is_error() || read_closed || ev.is_write_closed() {
                    self.finish_connect(idx);
                }
                continue;
            }
            if ev.is_writable() {
                self.flush(idx);
            }
            if ev.is_readable() || read_closed || ev.is_error() {
                self.read(idx, read_closed || ev.is_error(), false);
            }
        }
        self.events = events;
        Ok(())
    }

    fn read(&mut self, idx: usize, to_eof: bool, resumed: bool) {
        let slow =
            self.ch[idx].traits & TRAIT_SLOW_READ != 0 && matches!(self.ch[idx].link, Link::Open);
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(sock) = self.ch[idx].sock.as_mut() {
            match sock.read(&mut scratch) {
                Ok(0) => {
                    self.on_eof(idx);
                    break;
                }
                Ok(n) => {
                    self.on_bytes(idx, &mut scratch[..n]);
                    if slow {
                        break;
                    }
                    if n < scratch.len() && !to_eof {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let detail = format!("read: {}", e.kind());
                    self.fail_link(idx, E_CLOSE, &detail);
                    break;
                }
            }
        }
        self.scratch = scratch;
        // A slow reader takes one read, then stops reading for a while (TCP pushes back on the CSMS).
        let _ = resumed;
        if slow && matches!(self.ch[idx].link, Link::Open) {
            if let Some(sock) = self.ch[idx].sock.as_mut() {
                let _ = self
                    .poll
                    .registry()
                    .reregister(sock, Token(idx), Interest::WRITABLE);
                let e = self.ch[idx].link_epoch;
                self.after(self.cfg.slow_pause, idx, K_SLOW_RESUME, e, 0);
            }
        }
    }

    fn on_eof(&mut self, idx: usize) {
        match self.ch[idx].link {
            Link::Closing { .. } => self.closed(idx),
            _ => self.fail_link(idx, E_CLOSE, "connection closed without a close frame"),
        }
    }

    fn on_bytes(&mut self, idx: usize, data: &mut [u8]) {
        match self.ch[idx].link {
            Link::Upgrading { .. } => self.on_upgrade_bytes(idx, data),
            Link::Open | Link::Closing { .. } => self.on_frames(idx, data),
            Link::Down | Link::Connecting => {}
        }
    }

    fn on_upgrade_bytes(&mut self, idx: usize, data: &mut [u8]) {
        let Link::Upgrading { key, buf } = &mut self.ch[idx].link else {
            return;
        };
        match net::feed_upgrade(buf, data, key) {
            Ok(None) => {}
            Ok(Some((resp, mut rest))) => {
                if resp.status != 101 {
                    return self.fail_link(idx, E_HANDSHAKE, &format!("http {}", resp.status));
                }
                if resp.protocol.as_deref() != Some(self.cfg.protocol.name()) {
                    return self.fail_link(idx, E_HANDSHAKE, "subprotocol not agreed");
                }
                self.on_upgraded(idx);
                if !rest.is_empty() {
                    self.on_frames(idx, &mut rest);
                }
            }
            Err(e) => self.fail_link(idx, E_HANDSHAKE, e.reason),
        }
    }

    fn on_frames(&mut self, idx: usize, data: &mut [u8]) {
        // Frames are decoded first and handled after, since handling needs `self` mutably.
        let mut texts: Vec<String> = Vec::new();
        let mut pings: Vec<Vec<u8>> = Vec::new();
        let mut close: Option<Option<u16>> = None;
        let mut binary = false;
        let res = self.ch[idx].decoder.feed(data, &mut |ev| match ev {
            Event::Text(t) => texts.push(t.to_owned()),
            Event::Binary(_) => binary = true,
            Event::Ping(p) => pings.push(p.to_vec()),
            Event::Pong(_) => {}
            Event::Close(code, _) => close = Some(code),
        });
        for p in pings {
            self.send(idx, OpCode::Pong, &p);
        }
        for t in texts {
            if self.ch[idx].sock.is_none() {
                return;
            }
            self.r.received += 1;
            self.on_text(idx, &t);
        }
        if binary {
            self.error(E_PROTOCOL, "binary frame from the CSMS");
        }
        if let Err(e) = res {
            self.send_close(idx, e.close_code);
            return self.fail_link(idx, E_PROTOCOL, e.reason);
        }
        if let Some(code) = close {
            if matches!(self.ch[idx].link, Link::Closing { .. }) {
                return self.closed(idx);
            }
            let echo = code
                .filter(|c| codec::is_valid_close_code(*c))
                .unwrap_or(1000);
            self.send_close(idx, echo);
            let detail = format!(
                "closed by the CSMS (code {})",
                code.map_or("none".into(), |c| c.to_string())
            );
            self.fail_link(idx, E_CLOSE, &detail);
        }
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

    fn send_close(&mut self, idx: usize, code: u16) {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        codec::encode_close(&mut frame, code, "", Some(self.mask()));
        self.write(idx, &frame);
        self.frame = frame;
    }

    fn write(&mut self, idx: usize, bytes: &[u8]) {
        let c = &mut self.ch[idx];
        let Some(sock) = c.sock.as_mut() else {
            return;
        };
        if let Err(e) = net::write_or_queue(sock, &mut c.wbuf, bytes) {
            self.fail_link(idx, E_CLOSE, &format!("write: {}", e.kind()));
        }
    }

    fn flush(&mut self, idx: usize) {
        let c = &mut self.ch[idx];
        let Some(sock) = c.sock.as_mut() else {
            return;
        };
        if let Err(e) = net::flush_queue(sock, &mut c.wbuf) {
            self.fail_link(idx, E_CLOSE, &format!("write: {}", e.kind()));
        }
    }

    // -- losing a link ---------------------------------------------------------------------------------------

    fn set_link_down_counts(&mut self, idx: usize) {
        let c = &self.ch[idx];
        match c.link {
            Link::Connecting | Link::Upgrading { .. } => self.inflight -= 1,
            Link::Open => {
                self.open -= 1;
                if c.boot == Boot::Accepted {
                    self.booted_open -= 1;
                }
            }
            _ => {}
        }
    }

    /// Drop the socket (no close frame) and forget what was in flight on it.
    fn drop_link(&mut self, idx: usize) {
        self.set_link_down_counts(idx);
        let c = &mut self.ch[idx];
        c.link = Link::Down;
        c.link_epoch = c.link_epoch.wrapping_add(1);
        c.wbuf = Vec::new();
        c.decoder = Decoder::new(Role::Client, 0);
        if c.boot == Boot::Sent || c.boot == Boot::Pending {
            c.boot = Boot::None;
        }
        if let Some(out) = c.outstanding.take() {
            c.resend_first(out);
        }
        // Liveness and load CALLs are not kept for the next link; transaction and firmware messages are.
        c.queue
            .retain(|q| q.purpose != Purpose::Load && q.action != Action::Heartbeat);
        c.load.link_lost();
        if let Some(mut sock) = c.sock.take() {
            let _ = self.poll.registry().deregister(&mut sock);
        }
    }

    /// The link failed: count it, drop it, reconnect after a back-off while the run goes on.
    fn fail_link(&mut self, idx: usize, kind: &'static str, detail: &str) {
        if self.ch[idx].sock.is_none() {
            return;
        }
        let closing_end = matches!(
            self.ch[idx].link,
            Link::Closing {
                reconnect_after: None
            }
        );
        if closing_end {
            return self.closed(idx);
        }
        if let Link::Closing { reconnect_after } = self.ch[idx].link {
            // A reboot's close that ended abruptly: still a reboot.
            self.drop_link(idx);
            self.after(reconnect_after.unwrap_or(0.0), idx, K_CONNECT, 0, 0);
            return;
        }
        self.error(kind, detail);
        self.drop_link(idx);
        if matches!(self.phase, Phase::Running) {
            let wait = self.backoff();
            self.after(wait, idx, K_CONNECT, 0, 0);
        }
    }

    /// A close we started has finished.
    fn closed(&mut self, idx: usize) {
        let after = match self.ch[idx].link {
            Link::Closing { reconnect_after } => reconnect_after,
            _ => None,
        };
        if after.is_none() && !matches!(self.phase, Phase::Running) {
            self.r.closed_clean += 1;
        }
        self.drop_link(idx);
        if let Some(delay) = after {
            if matches!(self.phase, Phase::Running) {
                self.after(delay, idx, K_CONNECT, 0, 0);
            }
        }
    }

    fn error(&mut self, kind: &'static str, detail: &str) {
        self.r.error_total += 1;
        *self.r.errors.entry(kind).or_default() += 1;
        let details = self.r.error_details.entry(kind).or_default();
        if let Some(n) = details.get_mut(detail) {
            *n += 1;
        } else if details.len() < 64 {
            details.insert(detail.to_owned(), 1);
        } else {
            *details.entry("(other)".to_owned()).or_default() += 1;
        }
    }

    fn check(&mut self, kind: &'static str, action: &str, payload: &RawValue) {
        if self.checks.len() >= MAX_CHECKS {
            self.r.checks_dropped += 1;
            return;
        }
        self.checks
            .push((kind, action.to_owned(), payload.get().to_owned()));
    }

    // -- messages from the CSMS ------------------------------------------------------------------------------

    fn on_text(&mut self, idx: usize, text: &str) {
        let parts: Vec<&RawValue> = match serde_json::from_str(text) {
            Ok(p) => p,
            Err(_) => return self.error(E_PROTOCOL, "not a JSON array"),
        };
        let kind = parts.first().map(|k| k.get());
        let id: Option<String> = parts
            .get(1)
            .and_then(|v| serde_json::from_str(v.get()).ok());
        let Some(id) = id else {
            return self.error(E_PROTOCOL, "unique id unreadable");
        };
        match (kind, parts.len()) {
            (Some("2"), 4) => {
                let Ok(action) = serde_json::from_str::<String>(parts[2].get()) else {
                    return self.error(E_PROTOCOL, "CALL action unreadable");
                };
                self.on_csms_call(idx, &id, &action, parts[3]);
            }
            (Some("3"), 3) => self.on_result(idx, &id, parts[2]),
            (Some("4"), 4 | 5) => {
                let code: String = serde_json::from_str(parts[2].get()).unwrap_or_default();
                self.on_call_error(idx, &id, &code);
            }
            _ => self.error(E_PROTOCOL, "not an OCPP-J message"),
        }
    }

    fn take_outstanding(&mut self, idx: usize, id: &str) -> Option<Out> {
        let c = &mut self.ch[idx];
        match &c.outstanding {
            Some(o) if id.parse::<u32>() == Ok(o.seq) => c.outstanding.take(),
            _ => None,
        }
    }

    fn on_call_error(&mut self, idx: usize, id: &str, code: &str) {
        let Some(out) = self.take_outstanding(idx, id) else {
            return self.error(E_PROTOCOL, "CALLERROR for no outstanding CALL");
        };
        self.error(E_CALL_ERROR, &format!("{} {code}", out.action.name()));
        self.after_answer(idx, &out);
        if out.purpose != Purpose::Own {
            self.on_load_error(idx, &out);
            return self.pump_queue(idx);
        }
        match out.action {
            Action::BootNotification => self.boot_failed(idx),
            Action::Authorize => self.end_tx_refused(idx),
            Action::StartTransaction => {
                // No transaction id: the transaction cannot go on.
                self.r.tx_refused += 1;
                self.tx_done(idx);
            }
            Action::StopTransaction => self.tx_done(idx),
            Action::TransactionEvent => match event_type(&out) {
                "Ended" => self.tx_done(idx),
                "Started" => {
                    self.r.tx_refused += 1;
                    self.tx_done(idx);
                }
                _ => {}
            },
            _ => {}
        }
        self.pump_queue(idx);
    }

    /// A boot answered with a CALLERROR or not at all: boot again after a back-off, unless the charger was
    /// accepted already (a triggered boot).
    fn boot_failed(&mut self, idx: usize) {
        if self.ch[idx].boot == Boot::Accepted {
            return;
        }
        self.ch[idx].boot = Boot::None;
        let wait = self.backoff();
        let e = self.ch[idx].link_epoch;
        self.after(wait, idx, K_BOOT_RETRY, e, 0);
    }

    /// Our CALL timed out: a boot is retried, an Authorize abandoned, a transaction or firmware message sent
    /// again (it must reach the CSMS; the CSMS de-duplicates).
    fn unanswered(&mut self, idx: usize, out: Out) {
        self.after_answer(idx, &out);
        match out.action {
            Action::BootNotification => self.boot_failed(idx),
            Action::Authorize => {
                if matches!(&self.ch[idx].tx, Some(t) if t.phase == TxPhase::Authorizing) {
                    self.ch[idx].tx = None;
                    self.ch[idx].tx_gen = self.ch[idx].tx_gen.wrapping_add(1);
                    self.schedule_tx(idx);
                }
            }
            _ => self.ch[idx].resend_first(out),
        }
    }

    /// Bookkeeping common to every answer (result, error or timeout) of our CALL.
    fn after_answer(&mut self, idx: usize, out: &Out) {
        if out.purpose == Purpose::Load {
            let open = matches!(self.ch[idx].link, Link::Open);
            let l = &mut self.ch[idx].load;
            l.busy = false;
            if std::mem::take(&mut l.close_when_answered) {
                if open {
                    self.close_at_end(idx);
                }
            } else if self.load_on && open {
                self.load_ready(idx);
            }
        }
    }

    fn on_result(&mut self, idx: usize, id: &str, payload: &RawValue) {
        let Some(out) = self.take_outstanding(idx, id) else {
            return self.error(E_PROTOCOL, "CALLRESULT for no outstanding CALL");
        };
        let took_us = self.now_us().saturating_sub(out.sent_us);
        self.r.latency[out.action.slot()].record(took_us);
        self.check("result", out.action.name(), payload);
        // A load round trip's answer says nothing the charger acts on: not parsed (saturation sends many).
        let needs_body = out.purpose != Purpose::Load
            && matches!(
                out.action,
                Action::BootNotification
                    | Action::Authorize
                    | Action::StartTransaction
                    | Action::TransactionEvent
            );
        let body: Value = if needs_body {
            serde_json::from_str(payload.get()).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        match out.purpose {
            Purpose::Own => self.on_own_result(idx, &out, &body),
            Purpose::Load | Purpose::LoadTx => self.on_load_result(idx, &out, &body, took_us),
        }
        self.after_answer(idx, &out);
        self.pump_queue(idx);
    }

    /// The CSMS answered one of the charger's own CALLs.
    fn on_own_result(&mut self, idx: usize, out: &Out, body: &Value) {
        match out.action {
            Action::BootNotification => self.on_boot_result(idx, body),
            Action::Authorize => {
                let status = match self.cfg.protocol {
                    Protocol::Ocpp16 => str_at(body, &["idTagInfo", "status"]),
                    Protocol::Ocpp201 => str_at(body, &["idTokenInfo", "status"]),
                };
                self.count_response("Authorize", status.unwrap_or("(none)"));
                if status == Some("Accepted") {
                    self.start_tx(idx);
                } else {
                    self.end_tx_refused(idx);
                }
            }
            Action::StartTransaction => {
                let status = str_at(body, &["idTagInfo", "status"]);
                self.count_response("StartTransaction", status.unwrap_or("(none)"));
                let tx_id = body.get("transactionId").and_then(Value::as_i64);
                self.r.tx_started += 1;
                let stop_reason = match &mut self.ch[idx].tx {
                    Some(t) => {
                        t.id16 = tx_id;
                        t.phase = TxPhase::Charging;
                        t.stop_reason.take()
                    }
                    None => None,
                };
                if status != Some("Accepted") {
                    self.r.tx_refused += 1;
                    self.stop_tx(idx, "DeAuthorized", "Deauthorized");
                } else if let Some(reason) = stop_reason {
                    self.stop_tx(idx, reason, "StopAuthorized");
                } else {
                    self.charging(idx);
                }
            }
            Action::StopTransaction => {
                self.r.tx_stopped += 1;
                self.tx_done(idx);
            }
            Action::TransactionEvent => {
                if let Some(status) = str_at(body, &["idTokenInfo", "status"]) {
                    self.count_response("TransactionEvent", status);
                }
                match event_type(out) {
                    "Started" => {
                        self.r.tx_started += 1;
                        if let Some(t) = self.ch[idx].tx.as_mut() {
                            if t.phase == TxPhase::Starting {
                                t.phase = TxPhase::Charging;
                            }
                        }
                        match str_at(body, &["idTokenInfo", "status"]) {
                            Some(s) if s != "Accepted" => {
                                self.r.tx_refused += 1;
                                self.stop_tx(idx, "DeAuthorized", "Deauthorized");
                            }
                            _ => {
                                let stop =
                                    self.ch[idx].tx.as_mut().and_then(|t| t.stop_reason.take());
                                match stop {
                                    Some(r) => self.stop_tx(idx, r, "StopAuthorized"),
                                    None => self.charging(idx),
                                }
                            }
                        }
                    }
                    "Ended" => {
                        self.r.tx_stopped += 1;
                        self.tx_done(idx);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn count_response(&mut self, action: &'static str, status: &str) {
        let m = self.r.responses.entry(action).or_default();
        if let Some(n) = m.get_mut(status) {
            *n += 1;
        } else if m.len() < 32 {
            m.insert(status.chars().take(40).collect(), 1);
        }
    }

    fn on_boot_result(&mut self, idx: usize, body: &Value) {
        let status = body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("(none)");
        self.count_response("BootNotification", status);
        if self.ch[idx].boot == Boot::Accepted {
            // The answer to a triggered boot of a charger accepted already: nothing changes.
            return;
        }
        let interval = body
            .get("interval")
            .and_then(Value::as_f64)
            .filter(|i| i.is_finite() && *i > 0.0);
        let e = self.ch[idx].link_epoch;
        if status != "Accepted" {
            // Pending or Rejected: boot again after the interval the CSMS gave [B02/B03].
            self.ch[idx].boot = Boot::Pending;
            let wait = interval.unwrap_or(10.0).min(3600.0);
            self.after(wait, idx, K_BOOT_RETRY, e, 0);
            return;
        }
        let now = self.now_us();
        self.r.boots += 1;
        self.booted_open += 1;
        let c = &mut self.ch[idx];
        c.boot = Boot::Accepted;
        c.need_boot = false;
        if let (None, Some(i)) = (self.cfg.heartbeat_interval, interval) {
            c.hb_interval = i;
        }
        if !c.ever_booted {
            c.ever_booted = true;
            self.r.ever_booted += 1;
            self.r.last_first_boot_us = now;
        }
        // Status of every connector, then whatever waited for the boot.
        for connector in 1..=self.cfg.connectors {
            let s = self.connector_status(idx, connector);
            self.status_call(idx, connector, s);
        }
        if matches!(&self.ch[idx].fw, Some(f) if f.step == 3) {
            let fw = self.ch[idx].fw.take().unwrap();
            self.r.fw_installed += 1;
            self.fw_status(idx, "Installed", fw.request_id, fw.signed);
        }
        if self.cfg.tx_per_hour > 0.0 && self.ch[idx].tx.is_none() && !self.ch[idx].tx_scheduled {
            self.schedule_tx(idx);
        }
        self.link_up_timers(idx);
    }

    fn connector_status(&self, idx: usize, connector: u32) -> &'static str {
        let c = &self.ch[idx];
        if !c.available {
            "Unavailable"
        } else if matches!(&c.tx, Some(t) if t.connector == connector)
            || (connector == load::LOAD_CONNECTOR && c.load.in_transaction())
        {
            "Charging"
        } else {
            "Available"
        }
    }

    fn status_call(&mut self, idx: usize, connector: u32, status: &str) {
        let mut p = String::new();
        msg::status(&mut p, self.cfg.protocol, connector, status);
        self.call(idx, Action::StatusNotification, p);
    }

    // -- the report ------------------------------------------------------------------------------------------

    pub fn report_json(&self) -> Value {
        let mut latency = serde_json::Map::new();
        let mut latency_max = serde_json::Map::new();
        for a in Action::ALL {
            let h = &self.r.latency[a.slot()];
            if h.count() > 0 {
                latency.insert(a.name().into(), serde_json::json!(h.buckets()));
                latency_max.insert(a.name().into(), h.max().into());
            }
        }
        if self.r.connect_latency.count() > 0 {
            latency.insert(
                "connect".into(),
                serde_json::json!(self.r.connect_latency.buckets()),
            );
            latency_max.insert("connect".into(), self.r.connect_latency.max().into());
        }
        let window = |last: u64| match self.r.first_connect_us {
            Some(first) if last > first => (last - first) as f64 / 1e6,
            _ => 0.0,
        };
        let (connected, booted) = if matches!(self.phase, Phase::Running | Phase::NotStarted) {
            (self.open as u64, self.booted_open as u64)
        } else {
            (self.r.end_connected, self.r.end_booted)
        };
        let mut report = serde_json::json!({
            "chargers": self.ch.len(),
            "protocol": self.cfg.protocol.name(),
            "elapsed_s": self.elapsed_s(),
            "connected": connected,
            "booted": booted,
            "ever_booted": self.r.ever_booted,
            "connects": self.r.connects,
            "first_connects": self.r.first_connects,
            "boots": self.r.boots,
            "connect_window_s": window(self.r.last_first_connect_us),
            "boot_window_s": window(self.r.last_first_boot_us),
            "messages_sent": self.r.sent,
            "messages_received": self.r.received,
            "errors": self.r.errors,
            "error_details": self.r.error_details,
            "latency_us": latency,
            "latency_max_us": latency_max,
            "responses": self.r.responses,
            "csms_calls": self.r.csms_calls,
            "transactions": {
                "started": self.r.tx_started,
                "stopped": self.r.tx_stopped,
                "refused": self.r.tx_refused,
            },
            "firmware": {
                "updates": self.r.fw_updates,
                "installed": self.r.fw_installed,
                "failed": self.r.fw_failed,
                "statuses": self.r.fw_statuses,
            },
            "reboots": self.r.reboots,
            "flaps": self.r.flaps,
            "storm_drops": self.r.storm_drops,
            "load_skipped": self.r.load_skipped,
            "checks_dropped": self.r.checks_dropped,
            "closed_clean": self.r.closed_clean,
        });
        if let Some(load) = self.load_report() {
            report["load"] = load;
        }
        report
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{SocketAddr, TcpListener};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread;

    /// A tiny blocking CSMS: accepts every connection, answers each CALL with a CALLRESULT (boot Accepted
    /// with interval 1), and sends one Reset to the first charger that boots. Counts boots it has seen.
    fn csms(listener: TcpListener, boots: Arc<AtomicUsize>) {
        let resets = Arc::new(AtomicUsize::new(0));
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                let (boots, resets) = (boots.clone(), resets.clone());
                thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    let mut have = 0;
                    let req = loop {
                        let k = s.read(&mut buf[have..]).unwrap_or(0);
                        if k == 0 {
                            return;
                        }
                        have += k;
                        if let Some((r, _)) = codec::parse_upgrade_request(&buf[..have]).unwrap() {
                            break r;
                        }
                    };
                    let mut out = Vec::new();
                    codec::response_101(&mut out, &codec::accept_key(&req.key), Some("ocpp1.6"));
                    s.write_all(&out).unwrap();
                    let mut dec = Decoder::new(Role::Server, 1 << 20);
                    loop {
                        let k = s.read(&mut buf).unwrap_or(0);
                        if k == 0 {
                            return;
                        }
                        let mut replies: Vec<String> = Vec::new();
                        let mut closed = false;
                        dec.feed(&mut buf[..k], &mut |ev| match ev {
                            Event::Text(t) => {
                                let v: Value = serde_json::from_str(t).unwrap();
                                if v[0] != 2 {
                                    return; // The charger's answer to our Reset.
                                }
                                let id = v[1].as_str().unwrap().to_owned();
                                let body = match v[2].as_str().unwrap() {
                                    "BootNotification" => {
                                        boots.fetch_add(1, Ordering::SeqCst);
                                        r#"{"status":"Accepted","currentTime":"2026-01-01T00:00:00Z","interval":1}"#
                                    }
                                    "Heartbeat" => r#"{"currentTime":"2026-01-01T00:00:00Z"}"#,
                                    _ => "{}",
                                };
                                replies.push(format!(r#"[3,"{id}",{body}]"#));
                                if v[2] == "StatusNotification" && resets.fetch_add(1, Ordering::SeqCst) == 0 {
                                    replies.push(r#"[2,"r1","Reset",{"type":"Soft"}]"#.into());
                                    // And a reply to nothing: a protocol error the charger reports.
                                    replies.push(r#"[3,"nope",{}]"#.into());
                                }
                            }
                            Event::Close(..) => closed = true,
                            _ => {}
                        })
                        .unwrap();
                        for r in replies {
                            out.clear();
                            codec::encode_frame(&mut out, OpCode::Text, r.as_bytes(), true, None);
                            if s.write_all(&out).is_err() {
                                return;
                            }
                        }
                        if closed {
                            out.clear();
                            codec::encode_close(&mut out, 1000, "", None);
                            let _ = s.write_all(&out);
                            return;
                        }
                    }
                });
            }
        });
    }

    #[test]
    fn chargers_boot_heartbeat_and_reboot_on_reset() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let boots = Arc::new(AtomicUsize::new(0));
        csms(listener, boots.clone());
        let mut cfg = SimConfig::new(addr, 3);
        cfg.duration = 3.0;
        cfg.reboot_delay = 0.2;
        let mut sim = Sim::new(cfg, vec![0; 3]).unwrap();
        let mut checks = Vec::new();
        for _ in 0..200 {
            let done = sim.run(Duration::from_millis(100)).unwrap();
            checks.extend(sim.take_checks());
            if done {
                break;
            }
        }
        let r = sim.report_json();
        assert!(sim.stats().done);
        assert_eq!(r["ever_booted"], 3, "{r}");
        assert_eq!(r["booted"], 3, "{r}");
        assert_eq!(r["reboots"], 1, "{r}");
        assert_eq!(r["boots"], 4, "{r}");
        assert_eq!(boots.load(Ordering::SeqCst), 4);
        assert_eq!(r["csms_calls"]["Reset"], 1);
        assert_eq!(r["errors"], serde_json::json!({"protocol_error": 1}), "{r}");
        assert_eq!(r["closed_clean"], 3, "{r}");
        // Heartbeats at the interval the CSMS gave (1 s) over ~3 s.
        assert!(r["latency_max_us"]["Heartbeat"].as_u64().is_some(), "{r}");
        assert!(checks
            .iter()
            .any(|(k, a, p)| *k == "call" && a == "Reset" && p.contains("Soft")));
        let results = checks
            .iter()
            .filter(|(k, a, _)| *k == "result" && a == "BootNotification");
        assert_eq!(results.count(), 4);
    }

    #[test]
    fn unreachable_csms_is_counted_and_retried_not_fatal() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = SimConfig::new(SocketAddr::from(([127, 0, 0, 1], port)), 2);
        cfg.duration = 1.5;
        cfg.reconnect_backoff = 0.5;
        let mut sim = Sim::new(cfg, vec![0; 2]).unwrap();
        while !sim.run(Duration::from_millis(100)).unwrap() {}
        let r = sim.report_json();
        assert_eq!(r["booted"], 0);
        // Each charger tried at once, then again after each back-off of at most 0.5 s.
        assert!(r["errors"]["connect_failed"].as_u64().unwrap() >= 4, "{r}");
        assert_eq!(
            r["error_details"]["connect_failed"]["connect refused"],
            r["errors"]["connect_failed"]
        );
    }
}
