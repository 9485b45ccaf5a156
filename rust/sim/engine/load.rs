//! The bench load (`[load]` in a scenario): every booted charger sends one load CALL at a time, either at the
//! fleet's rate (chargers take turns from a FIFO) or, at rate 0, the next as soon as the last is answered.
//!
//! A MeterValues load runs inside a transaction of the load's own, so that a central system keeps every sample
//! (a MeterValues without a transactionId may be answered and thrown away, as ampgate does):
//! - as soon as a charger is booted it starts that transaction on [`LOAD_CONNECTOR`] with the run's id tag
//!   (1.6 StartTransaction, the CSMS names it; 2.0.1 TransactionEvent Started, seqNo 0, an id the charger picks,
//!   unique per charger and run). Starting at boot rather than at the load's start keeps these round trips out
//!   of the load's window. They are not load round trips: the report counts them apart
//!   (`load.transactions`);
//! - each load CALL is then a reading in it: 1.6 MeterValues with the transactionId, 2.0.1 TransactionEvent
//!   Updated (MeterValuePeriodic, seqNo + 1). Each reading is strictly later than the charger's previous one
//!   (see `Sim::stamp_meter`) and the register, in whole Wh, never goes back;
//! - the start's answer is obeyed for the id only: whatever the status, the charger carries on, as one whose
//!   StopTransactionOnInvalidId (1.6) / StopTxOnInvalidId (2.0.1) is false; the status is counted in
//!   `responses`. A CALLERROR (or a 1.6 answer without a transactionId) leaves nothing to send readings in:
//!   the charger sits out of the load until its next connection;
//! - the scenario's own transactions (and the CSMS's remote starts) use connector 2 meanwhile
//!   (`Sim::tx_connector`);
//! - a link that drops and comes back resumes the same transaction (an unanswered start goes out again first);
//!   a reboot stops it (StopTransaction / TransactionEvent Ended, with the reboot's reason, as the scenario's
//!   transactions are stopped) and the charger starts a new one once booted again;
//! - it is not stopped at the end of the run: a stop would take one more round trip per charger after the load
//!   (behind a whole round of load CALLs at saturation against a slow server). The central system keeps these
//!   transactions open, as for a charger that went offline mid-session.
//!
//! At the end of the run the load stops, and a charger whose load CALL is still unanswered closes its link
//! only once it is answered (within the closing wait): a central system never holds a reading whose answer
//! the report did not count. Those late answers are counted apart (`answered_after_end`): they fall outside
//! the load's window.
//!
//! The load's transaction messages carry no meter values (the readings are all load CALLs): a central system
//! that keeps every sample holds exactly one energy sample per answered load CALL.

use serde_json::{Map, Value};

use super::{event_type, str_at, Boot, Link, Out, Purpose, Sim};
use crate::client::ClientError;
use crate::client::{Histogram, Protocol};
use crate::sim::config::LoadMessage;
use crate::sim::msg::{self, Action, Reading, TxEvent};

/// The connector (1.6) / EVSE (2.0.1) a MeterValues load's transaction charges on.
pub(super) const LOAD_CONNECTOR: u32 = 1;
/// The state of charge the load's readings report: the load models a meter, not a car.
const LOAD_SOC: f64 = 50.0;

/// A charger's part in the bench load.
#[derive(Default)]
pub(super) struct LoadState {
    /// One of its load CALLs is queued or outstanding: at most one at a time.
    pub(super) busy: bool,
    /// In `load_free` already (rate mode): never twice.
    pub(super) listed: bool,
    /// The run is over: close the link once the outstanding load CALL is answered.
    pub(super) close_when_answered: bool,
    tx: Option<LoadTx>,
    /// The CSMS refused its load transaction on this link.
    refused: bool,
    /// The register of the load's connector, Wh: it carries on from one load transaction to the next.
    energy_wh: f64,
    /// Load transactions begun in this run (numbers the 2.0.1 ids).
    tx_count: u32,
}

impl LoadState {
    /// The link is gone: a refused start may be tried again (the load CALL in flight is counted lost by
    /// `Sim::load_lost_with_link` first).
    pub(super) fn link_lost(&mut self) {
        self.refused = false;
        self.close_when_answered = false;
    }

    /// Its load transaction is started or starting (the load's connector is charging).
    pub(super) fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// Its load transaction as charging profiles see it: (id, when it began); the id is None while a 1.6 start
    /// is unanswered.
    pub(super) fn active_tx(&self, v16: bool) -> Option<(Option<String>, i64)> {
        let t = self.tx.as_ref()?;
        let id = if v16 {
            t.id16.map(|i| i.to_string())
        } else {
            Some(t.id201.to_string())
        };
        Some((id, t.started_ms))
    }

    fn running(&self) -> bool {
        matches!(&self.tx, Some(t) if t.phase == LoadPhase::Running)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LoadPhase {
    /// Its start is out, or queued to go out again after a reconnect.
    Starting,
    Running,
}

struct LoadTx {
    phase: LoadPhase,
    /// 1.6: the id the CSMS gave in its answer to the start.
    id16: Option<i64>,
    /// 2.0.1: the id the charger picked.
    id201: Box<str>,
    /// 2.0.1: the seqNo of its next event.
    seq_no: u32,
    /// Engine time up to which `energy_wh` is counted.
    meter_us: u64,
    /// When it began (ms since the epoch): a Relative charging profile's schedule starts then.
    started_ms: i64,
    /// A reboot came while the start was out: stop it once answered (1.6 has no id to stop before then), with
    /// (reason, 2.0.1 trigger).
    stop: Option<(&'static str, &'static str)>,
}

/// What the report says about the load.
#[derive(Default)]
pub(super) struct LoadCounters {
    sent: u64,
    /// Load CALLs answered with a CALLRESULT (a CALLERROR is counted among the errors).
    answered: u64,
    /// Of those, the ones answered after the run's duration, while the links close: outside the load's window.
    answered_after_end: u64,
    /// Round trips of the load CALLs only.
    latency: Histogram,
    tx_started: u64,
    tx_stopped: u64,
    tx_refused: u64,
    /// The same since the last [`Sim::take_load_window`], for a caller that runs the load in phases.
    pub(super) window: LoadWindow,
}

/// What the load did in one window (see [`Sim::take_load_window`]): the bench's phases are windows.
#[derive(Default, Debug, Clone)]
pub struct LoadWindow {
    /// Load CALLs that went out.
    pub sent: u64,
    /// Answered with a CALLRESULT.
    pub answered: u64,
    /// Answered with a CALLERROR.
    pub errors: u64,
    /// Not answered within the call timeout.
    pub unanswered: u64,
    /// Queued or outstanding on a link that dropped.
    pub lost: u64,
    /// Rate mode: a CALL that fell due when every booted charger already had one out (OCPP-J allows one
    /// outstanding per connection), so it was not made.
    pub skipped: u64,
    /// Round trips of the answered ones.
    pub latency: Histogram,
}

impl Sim {
    fn meter_load(&self) -> bool {
        self.cfg.load_message == Some(LoadMessage::MeterValues)
    }

    /// The action a load CALL goes out as.
    fn load_action(&self) -> Action {
        match (self.cfg.load_message, self.cfg.protocol) {
            (Some(LoadMessage::MeterValues), Protocol::Ocpp16) => Action::MeterValues,
            (Some(LoadMessage::MeterValues), Protocol::Ocpp201) => Action::TransactionEvent,
            _ => Action::Heartbeat,
        }
    }

    /// The connector the scenario's own transactions and the CSMS's remote starts use: 1, or 2 while a
    /// MeterValues load holds connector 1; None when the charger has no other (`SimConfig::check` refuses
    /// scheduled transactions then, and a remote start is Rejected).
    pub(super) fn tx_connector(&self) -> Option<u32> {
        if !self.meter_load() {
            return Some(1);
        }
        (self.cfg.connectors > LOAD_CONNECTOR).then_some(LOAD_CONNECTOR + 1)
    }

    /// The load is due: it turns on at its start time, then (rate mode) hands out the CALLs due by now.
    pub(super) fn pump_load(&mut self, now: u64) {
        if self.cfg.load_message.is_none() || !matches!(self.phase, super::Phase::Running) {
            return;
        }
        let start = super::secs(self.cfg.load_start);
        if now < start {
            return;
        }
        if !self.load_on {
            self.load_on = true;
            for idx in 0..self.ch.len() {
                if matches!(self.ch[idx].conn.link, Link::Open)
                    && self.ch[idx].boot == Boot::Accepted
                {
                    self.load_ready(idx);
                }
            }
        }
        if self.cfg.load_rate > 0.0 {
            let due = (self.cfg.load_rate * (now - start) as f64 / 1e6) as u64;
            while self.load_due_done < due {
                self.load_due_done += 1;
                if !self.load_next() {
                    self.r.load_skipped += 1;
                    self.r.load.window.skipped += 1;
                }
            }
        }
    }

    /// Send a load CALL for the first charger in the FIFO that may send one now; false when none may.
    fn load_next(&mut self) -> bool {
        // Bounded: each turn takes one charger off the list, and only `load_ready` puts one back.
        while let Some(i) = self.load_free.pop_front() {
            let idx = i as usize;
            self.ch[idx].load.listed = false;
            let c = &self.ch[idx];
            if matches!(c.conn.link, Link::Open)
                && c.boot == Boot::Accepted
                && !c.load.busy
                && self.load_can_send(idx)
            {
                self.load_call(idx);
                return true;
            }
        }
        false
    }

    /// Saturation with a cap on CALLs outstanding: while under the cap, the chargers at the head of the FIFO
    /// send.
    fn load_fill(&mut self) {
        if !self.load_on || self.cfg.load_rate > 0.0 || self.cfg.load_inflight == 0 {
            return;
        }
        while self.load_busy < self.cfg.load_inflight && self.load_next() {}
    }

    /// A charger's load CALL is done with (answered, timed out, or lost with its link): its slot is free.
    pub(super) fn load_freed(&mut self) {
        self.load_busy -= 1;
        self.load_fill();
    }

    /// A link dropped: a load CALL it had queued or outstanding is lost.
    pub(super) fn load_lost_with_link(&mut self, idx: usize) {
        if self.ch[idx].load.busy {
            self.r.load.window.lost += 1;
            self.ch[idx].load.busy = false;
            self.load_freed();
        }
    }

    // -- driving the load from outside (the bench's phases) ----------------------------------------------

    /// Run the load from now on at `rate` CALLs per second over this process (0: saturation), with at most
    /// `inflight` outstanding at saturation (0: one per booted charger). The scenario's load message must be
    /// set; what is outstanding from an earlier phase carries on.
    pub fn set_load(&mut self, rate: f64, inflight: usize) -> Result<(), ClientError> {
        if self.cfg.load_message.is_none() {
            return Err(ClientError::Config(
                "load_message",
                "a load needs its message set in the settings".into(),
            ));
        }
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(ClientError::Config(
                "load_rate",
                format!("must be a non-negative number, not {rate}"),
            ));
        }
        self.pause_load();
        self.cfg.load_rate = rate;
        self.cfg.load_inflight = inflight;
        self.cfg.load_start = self.now_us() as f64 / 1e6;
        Ok(())
    }

    /// Stop sending load CALLs (the outstanding ones are still answered and counted).
    pub fn pause_load(&mut self) {
        self.load_on = false;
        self.load_due_done = 0;
        self.cfg.load_start = 1e9;
        for i in std::mem::take(&mut self.load_free) {
            self.ch[i as usize].load.listed = false;
        }
    }

    /// Load CALLs queued or outstanding now.
    pub fn load_in_flight(&self) -> usize {
        self.load_busy
    }

    /// What the load did since the last call (or the start), and start a new window.
    pub fn take_load_window(&mut self) -> LoadWindow {
        std::mem::take(&mut self.r.load.window)
    }

    /// A charger is booted on an open link: a MeterValues load's transaction begins if it has none, and the
    /// charger takes its part in the load when the load is on.
    pub(super) fn load_resume(&mut self, idx: usize) {
        let l = &self.ch[idx].load;
        if self.meter_load() && l.tx.is_none() && !l.refused {
            self.begin_load_tx(idx);
        }
        if self.load_on {
            self.load_ready(idx);
        }
    }

    /// A load CALL of this charger is out, unanswered.
    pub(super) fn load_outstanding(&self, idx: usize) -> bool {
        matches!(&self.ch[idx].outstanding, Some(o) if o.purpose == Purpose::Load)
    }

    /// Count a load CALL as it goes out (one queued behind the charger's own CALLs may never go out).
    pub(super) fn load_sent(&mut self) {
        self.r.load.sent += 1;
        self.r.load.window.sent += 1;
    }

    fn load_can_send(&self, idx: usize) -> bool {
        !self.meter_load() || self.ch[idx].load.running()
    }

    /// A booted charger becomes available for the load: at saturation it sends at once, else it waits its
    /// turn in the FIFO. A MeterValues load's charger waits for its transaction first (the answer to the
    /// start calls this again).
    pub(super) fn load_ready(&mut self, idx: usize) {
        // A charger about to reboot lets its queue drain instead (it rejoins once booted again).
        let c = &self.ch[idx];
        if c.load.busy || c.reboot_pending.is_some() || !self.load_can_send(idx) {
            return;
        }
        if self.cfg.load_rate > 0.0 || self.cfg.load_inflight > 0 {
            if !self.ch[idx].load.listed {
                self.ch[idx].load.listed = true;
                self.load_free.push_back(idx as u32);
            }
            self.load_fill();
        } else {
            self.load_call(idx);
        }
    }

    fn load_call(&mut self, idx: usize) {
        let mut p = String::new();
        if self.meter_load() {
            if !self.load_reading(idx, &mut p) {
                return;
            }
        } else {
            p.push_str("{}");
        }
        let action = self.load_action();
        self.ch[idx].load.busy = true;
        self.load_busy += 1;
        self.call_for(idx, action, p, Purpose::Load);
    }

    /// The current per phase the load's transaction takes: it has no EV, so all the charger's cap on its
    /// connector allows, over three phases (none under 6 A, as an EV would).
    pub(super) fn load_amps(&self, idx: usize) -> f64 {
        self.cap(idx, LOAD_CONNECTOR).offered(3)
    }

    /// The energy the load's connector delivered since its last count.
    pub(super) fn load_accumulate(&mut self, idx: usize) {
        let now = self.now_us();
        let draw = 3.0 * self.load_amps(idx) * crate::sim::ev::VOLTAGE;
        let l = &mut self.ch[idx].load;
        if let Some(t) = l.tx.as_mut().filter(|t| t.phase == LoadPhase::Running) {
            l.energy_wh += draw * now.saturating_sub(t.meter_us) as f64 / 3.6e9;
            t.meter_us = now;
        }
    }

    /// The register as the load reports it, in whole Wh: rounding could move a reading above a later
    /// integer meterStop; flooring never goes back.
    fn load_register(&self, idx: usize) -> f64 {
        self.ch[idx].load.energy_wh.floor()
    }

    /// Write the next reading of the load's transaction into `p`; false when the transaction is not running.
    fn load_reading(&mut self, idx: usize, p: &mut String) -> bool {
        if !self.ch[idx].load.running() {
            return false;
        }
        self.load_accumulate(idx);
        let amps = self.load_amps(idx);
        let reading = Reading {
            at_ms: self.stamp_meter(idx),
            energy_wh: self.load_register(idx),
            power_w: 3.0 * amps * crate::sim::ev::VOLTAGE,
            soc: LOAD_SOC,
            currents: [amps; 3],
            offered_a: amps,
        };
        let protocol = self.cfg.protocol;
        let Some(t) = self.ch[idx].load.tx.as_mut() else {
            return false;
        };
        match protocol {
            Protocol::Ocpp16 => msg::meter_values(p, protocol, LOAD_CONNECTOR, t.id16, &reading),
            Protocol::Ocpp201 => {
                let ev = TxEvent {
                    event_type: "Updated",
                    trigger: "MeterValuePeriodic",
                    seq_no: t.seq_no,
                    tx_id: &t.id201,
                    stopped_reason: None,
                    remote_start_id: None,
                    id_tag: None,
                    evse: LOAD_CONNECTOR,
                };
                t.seq_no += 1;
                msg::tx_event(p, &ev, Some(&reading));
            }
        }
        true
    }

    /// Start the load's transaction on [`LOAD_CONNECTOR`] (its status first, as the scenario's transactions do).
    fn begin_load_tx(&mut self, idx: usize) {
        let now = self.now_us();
        let register = self.load_register(idx);
        let l = &mut self.ch[idx].load;
        l.tx_count += 1;
        let id201 = format!("L{}-{}", self.run_tag, l.tx_count);
        let mut p = String::new();
        let action = match self.cfg.protocol {
            Protocol::Ocpp16 => {
                msg::start16(&mut p, LOAD_CONNECTOR, &self.cfg.id_tag, register as i64);
                Action::StartTransaction
            }
            Protocol::Ocpp201 => {
                let ev = TxEvent {
                    event_type: "Started",
                    trigger: "Authorized",
                    seq_no: 0,
                    tx_id: &id201,
                    stopped_reason: None,
                    remote_start_id: None,
                    id_tag: Some(&self.cfg.id_tag),
                    evse: LOAD_CONNECTOR,
                };
                msg::tx_event(&mut p, &ev, None);
                Action::TransactionEvent
            }
        };
        l.tx = Some(LoadTx {
            phase: LoadPhase::Starting,
            id16: None,
            id201: id201.into_boxed_str(),
            seq_no: 1,
            meter_us: now,
            started_ms: msg::now_ms(),
            stop: None,
        });
        self.status_call(idx, LOAD_CONNECTOR, "Charging");
        self.call_for(idx, action, p, Purpose::LoadTx);
    }

    /// Stop the load's transaction (a reboot): `reason` is the 1.6 Reason / 2.0.1 stoppedReason, `trigger` the
    /// 2.0.1 triggerReason. A transaction whose start is still unanswered is stopped once it is.
    pub(super) fn stop_load_tx(&mut self, idx: usize, reason: &'static str, trigger: &'static str) {
        match &mut self.ch[idx].load.tx {
            None => return,
            Some(t) if t.phase == LoadPhase::Starting => {
                t.stop = Some((reason, trigger));
                return;
            }
            Some(_) => {}
        }
        self.load_accumulate(idx);
        let register = self.load_register(idx);
        let Some(t) = self.ch[idx].load.tx.take() else {
            return;
        };
        self.ch[idx].profiles.end_tx(LOAD_CONNECTOR);
        let mut p = String::new();
        let action = match self.cfg.protocol {
            Protocol::Ocpp16 => {
                let Some(id) = t.id16 else {
                    return; // Never running without one (see load_tx_started).
                };
                msg::stop16(&mut p, id, register as i64, reason, &self.cfg.id_tag);
                Action::StopTransaction
            }
            Protocol::Ocpp201 => {
                let ev = TxEvent {
                    event_type: "Ended",
                    trigger,
                    seq_no: t.seq_no,
                    tx_id: &t.id201,
                    stopped_reason: Some(reason),
                    remote_start_id: None,
                    id_tag: None,
                    evse: LOAD_CONNECTOR,
                };
                msg::tx_event(&mut p, &ev, None);
                Action::TransactionEvent
            }
        };
        self.call_for(idx, action, p, Purpose::LoadTx);
    }

    /// The CSMS answered a load CALL or a message of the load's transaction with a CALLRESULT.
    pub(super) fn on_load_result(&mut self, idx: usize, out: &Out, body: &Value, took_us: u64) {
        if out.purpose == Purpose::Load {
            self.r.load.answered += 1;
            if !matches!(self.phase, super::Phase::Running) {
                self.r.load.answered_after_end += 1;
            }
            self.r.load.latency.record(took_us);
            self.r.load.window.answered += 1;
            self.r.load.window.latency.record(took_us);
            return;
        }
        match out.action {
            Action::StartTransaction => {
                let status = str_at(body, &["idTagInfo", "status"]).unwrap_or("(none)");
                self.count_response("StartTransaction", status);
                let id = body.get("transactionId").and_then(Value::as_i64);
                self.load_tx_started(idx, id);
            }
            Action::TransactionEvent if event_type(out) == "Started" => {
                if let Some(status) = str_at(body, &["idTokenInfo", "status"]) {
                    self.count_response("TransactionEvent", status);
                }
                self.load_tx_started(idx, None);
            }
            _ => self.r.load.tx_stopped += 1,
        }
    }

    fn load_tx_started(&mut self, idx: usize, id16: Option<i64>) {
        let now = self.now_us();
        let v16 = self.cfg.protocol == Protocol::Ocpp16;
        let booted =
            matches!(self.ch[idx].conn.link, Link::Open) && self.ch[idx].boot == Boot::Accepted;
        let l = &mut self.ch[idx].load;
        let Some(t) = l.tx.as_mut().filter(|t| t.phase == LoadPhase::Starting) else {
            return;
        };
        if v16 && id16.is_none() {
            l.tx = None;
            l.refused = true;
            self.r.load.tx_refused += 1;
            self.ch[idx].profiles.end_tx(LOAD_CONNECTOR);
            return;
        }
        self.r.load.tx_started += 1;
        t.phase = LoadPhase::Running;
        t.id16 = id16;
        t.meter_us = now;
        let stop = t.stop.take();
        if let Some((reason, trigger)) = stop {
            // The charger rebooted while this start was out: stop it, and begin the next one now that it is
            // booted again.
            self.stop_load_tx(idx, reason, trigger);
            if booted {
                self.load_resume(idx);
            }
        } else if booted && self.load_on {
            self.load_ready(idx);
        }
    }

    /// The CSMS answered a load CALL or a message of the load's transaction with a CALLERROR (counted among the
    /// errors by the caller).
    pub(super) fn on_load_error(&mut self, idx: usize, out: &Out) {
        if out.purpose == Purpose::Load {
            self.r.load.window.errors += 1;
        }
        let start = out.action == Action::StartTransaction
            || (out.action == Action::TransactionEvent && event_type(out) == "Started");
        if out.purpose != Purpose::LoadTx || !start {
            return;
        }
        let l = &mut self.ch[idx].load;
        if matches!(&l.tx, Some(t) if t.phase == LoadPhase::Starting) {
            l.tx = None;
            l.refused = true;
            self.r.load.tx_refused += 1;
            self.ch[idx].profiles.end_tx(LOAD_CONNECTOR);
        }
    }

    /// The report's `load`: what was sent as what, answered, the load's own round trips (keyed by the action
    /// they went out as) and its transactions. None without a load.
    pub(super) fn load_report(&self) -> Option<Value> {
        let message = self.cfg.load_message?;
        let action = self.load_action().name();
        let l = &self.r.load;
        let (mut latency, mut latency_max) = (Map::new(), Map::new());
        if l.latency.count() > 0 {
            latency.insert(action.into(), serde_json::json!(l.latency.buckets()));
            latency_max.insert(action.into(), l.latency.max().into());
        }
        Some(serde_json::json!({
            "message": message.name(),
            "action": action,
            "connector": self.meter_load().then_some(LOAD_CONNECTOR),
            "sent": l.sent,
            "answered": l.answered,
            "answered_after_end": l.answered_after_end,
            "latency_us": latency,
            "latency_max_us": latency_max,
            "transactions": {
                "started": l.tx_started,
                "stopped": l.tx_stopped,
                "refused": l.tx_refused,
            },
        }))
    }
}
