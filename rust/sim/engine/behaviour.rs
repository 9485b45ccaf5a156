//! What a simulated charger does on its own: transactions (authorise, start, meter values, stop), the firmware
//! update walk, and reboots.

use super::{Boot, Link, Purpose, Sim, Timer, Tx, TxPhase};
use crate::client::Protocol;
use crate::sim::config::{FailStep, TRAIT_FW_FAIL};
use crate::sim::ev::{self, Ev};
use crate::sim::msg::{self, Action, Reading};

impl Sim {
    // -- transactions ----------------------------------------------------------------------------------------

    pub(super) fn schedule_tx(&mut self, idx: usize) {
        if self.cfg.tx_per_hour <= 0.0 {
            return;
        }
        let mean = 3600.0 / self.cfg.tx_per_hour;
        let u = self.rand_f64().max(1e-12);
        let gap = -mean * u.ln();
        self.ch[idx].tx_scheduled = true;
        let g = self.ch[idx].tx_gen;
        self.after(gap, idx, Timer::TxBegin { gen: g });
    }

    /// A driver plugs in (`remote`: the CSMS started it, with this id tag and remote start id).
    pub(super) fn begin_tx(
        &mut self,
        idx: usize,
        remote: Option<String>,
        remote_start_id: Option<i64>,
    ) -> bool {
        let Some(connector) = self.tx_connector() else {
            return false;
        };
        let c = &mut self.ch[idx];
        if c.tx.is_some() || !c.available || c.boot != Boot::Accepted {
            return false;
        }
        c.tx_count += 1;
        let tx_id = format!("{}-{}", self.cfg.first_index + idx as u64, c.tx_count);
        let tag = remote.clone().unwrap_or_else(|| self.cfg.id_tag.clone());
        let meter_start_wh = c.energy_wh;
        let ev = if self.cfg.ev_mix.is_empty() {
            None
        } else {
            let r = self.rng.next_f64();
            ev::pick(&self.cfg.ev_mix, r).map(Ev::new)
        };
        let c = &mut self.ch[idx];
        c.tx = Some(Tx {
            phase: TxPhase::Authorizing,
            connector,
            id16: None,
            id201: tx_id.into_boxed_str(),
            seq_no: 0,
            tag: tag.clone().into_boxed_str(),
            remote_start_id,
            last_meter_us: 0,
            stop_reason: None,
            ev,
            meter_start_wh,
            started_ms: 0,
        });
        if remote.is_some() {
            // A remote start is authorised by the CSMS already (AuthorizeRemoteTxRequests = false).
            self.start_tx(idx);
        } else {
            let mut p = String::new();
            msg::authorize(&mut p, self.cfg.protocol, &tag);
            self.call(idx, Action::Authorize, p);
        }
        true
    }

    pub(super) fn start_tx(&mut self, idx: usize) {
        let now = self.now_us();
        let soc = if self.ev_of(idx).is_some() {
            self.soc(idx)
        } else {
            20.0
        };
        let reading = Reading {
            at_ms: self.stamp_meter(idx),
            energy_wh: self.ch[idx].energy_wh,
            power_w: 0.0,
            soc,
            currents: [0.0; 3],
            offered_a: self.offered_a(idx),
        };
        let energy = reading.energy_wh;
        let Some(t) = self.ch[idx].tx.as_mut() else {
            return;
        };
        t.phase = TxPhase::Starting;
        t.last_meter_us = now;
        t.started_ms = msg::now_ms();
        let connector = t.connector;
        let mut p = String::new();
        match self.cfg.protocol {
            Protocol::Ocpp16 => {
                msg::start16(&mut p, connector, &t.tag, energy as i64);
                self.status_call(idx, connector, "Charging");
                self.call(idx, Action::StartTransaction, p);
            }
            Protocol::Ocpp201 => {
                let trigger = if t.remote_start_id.is_some() {
                    "RemoteStart"
                } else {
                    "Authorized"
                };
                let ev = msg::TxEvent {
                    event_type: "Started",
                    trigger,
                    seq_no: t.seq_no,
                    tx_id: &t.id201,
                    stopped_reason: None,
                    remote_start_id: t.remote_start_id,
                    id_tag: Some(&t.tag),
                    evse: connector,
                };
                t.seq_no += 1;
                msg::tx_event(&mut p, &ev, Some(&reading));
                self.status_call(idx, connector, "Charging");
                self.call(idx, Action::TransactionEvent, p);
                if self.cfg.ev_charging_needs {
                    if let Some(ev) = self.ev_of(idx) {
                        let mut p = String::new();
                        let delta = self.ev_energy(idx);
                        msg::ev_charging_needs(&mut p, connector, ev, delta, msg::now_ms());
                        self.call(idx, Action::NotifyEVChargingNeeds, p);
                    }
                }
            }
        }
    }

    pub(super) fn charging(&mut self, idx: usize) {
        let Some(t) = self.ch[idx].tx.as_mut() else {
            return;
        };
        t.phase = TxPhase::Charging;
        let g = self.ch[idx].tx_gen;
        let period = self.ch[idx].meter_period;
        self.after(period, idx, Timer::Meter { gen: g });
        self.after(self.cfg.tx_duration, idx, Timer::TxEnd { gen: g });
    }

    /// The EV of charger `idx`'s transaction, if the scenario has EVs.
    pub(super) fn ev_of(&self, idx: usize) -> Option<&Ev> {
        self.ch[idx].tx.as_ref().and_then(|t| t.ev.as_ref())
    }

    /// Energy the EV took since it arrived.
    fn ev_energy(&self, idx: usize) -> f64 {
        let c = &self.ch[idx];
        c.tx.as_ref()
            .map_or(0.0, |t| c.energy_wh - t.meter_start_wh)
    }

    /// The current on each phase: what the EV takes under the charger's cap on its connector (see
    /// `charging.rs`), or without an EV a three-phase load that takes all of it.
    fn currents(&self, idx: usize) -> [f64; 3] {
        let Some(t) = &self.ch[idx].tx else {
            return [0.0; 3];
        };
        let cap = self.cap(idx, t.connector);
        match &t.ev {
            Some(ev) => ev.currents(ev.soc(self.ev_energy(idx)), cap),
            None => [cap.current(3, f64::INFINITY).0; 3],
        }
    }

    pub(super) fn draw_w(&self, idx: usize) -> f64 {
        ev::power_w(self.currents(idx))
    }

    /// What the charger offers per phase on its transaction's connector (the meter's Current.Offered).
    pub(super) fn offered_a(&self, idx: usize) -> f64 {
        let Some(t) = &self.ch[idx].tx else {
            return 0.0;
        };
        let phases = t.ev.as_ref().map_or(3, |ev| ev.profile.phases.count());
        self.cap(idx, t.connector).offered(phases)
    }

    pub(super) fn accumulate(&mut self, idx: usize) {
        let now = self.now_us();
        let draw = self.draw_w(idx);
        let c = &mut self.ch[idx];
        if let Some(t) = c.tx.as_mut() {
            if matches!(t.phase, TxPhase::Charging | TxPhase::Starting) {
                let dt = now.saturating_sub(t.last_meter_us) as f64 / 1e6;
                c.energy_wh += draw * dt / 3600.0;
            }
            t.last_meter_us = now;
        }
    }

    pub(super) fn soc(&self, idx: usize) -> f64 {
        match self.ev_of(idx) {
            Some(ev) => ev.soc(self.ev_energy(idx)),
            None => (20.0 + self.ch[idx].energy_wh / 500.0).min(100.0),
        }
    }

    /// The instant of a new meter reading of charger `idx` (ms since the epoch): now, or 1 ms after its
    /// previous reading if that is not earlier. A central system keys samples by transaction, time, measurand
    /// and phase at millisecond resolution (ampgate does): two readings in one millisecond would be one
    /// sample, and a clock stepping back would put a reading before the one it follows.
    pub(super) fn stamp_meter(&mut self, idx: usize) -> i64 {
        let c = &mut self.ch[idx];
        let at = msg::now_ms().max(c.last_meter_ms + 1);
        c.last_meter_ms = at;
        at
    }

    /// A reading of the scenario's transaction meter (`energy_wh`), stamped by [`Sim::stamp_meter`].
    pub(super) fn reading(&mut self, idx: usize, power_w: f64) -> Reading {
        let currents = if power_w > 0.0 {
            self.currents(idx)
        } else {
            [0.0; 3]
        };
        Reading {
            at_ms: self.stamp_meter(idx),
            energy_wh: self.ch[idx].energy_wh,
            power_w,
            soc: self.soc(idx),
            currents,
            offered_a: self.offered_a(idx),
        }
    }

    pub(super) fn meter_tick(&mut self, idx: usize) {
        if !matches!(&self.ch[idx].tx, Some(t) if t.phase == TxPhase::Charging) {
            return;
        }
        self.accumulate(idx);
        let draw = self.draw_w(idx);
        let reading = self.reading(idx, draw);
        let mut p = String::new();
        let t = self.ch[idx].tx.as_mut().unwrap();
        let action = match self.cfg.protocol {
            Protocol::Ocpp16 => {
                msg::meter_values(&mut p, Protocol::Ocpp16, t.connector, t.id16, &reading);
                Action::MeterValues
            }
            Protocol::Ocpp201 => {
                let ev = msg::TxEvent {
                    event_type: "Updated",
                    trigger: "MeterValuePeriodic",
                    seq_no: t.seq_no,
                    tx_id: &t.id201,
                    stopped_reason: None,
                    remote_start_id: None,
                    id_tag: None,
                    evse: t.connector,
                };
                t.seq_no += 1;
                msg::tx_event(&mut p, &ev, Some(&reading));
                Action::TransactionEvent
            }
        };
        self.call(idx, action, p);
        let g = self.ch[idx].tx_gen;
        let period = self.ch[idx].meter_period;
        self.after(period, idx, Timer::Meter { gen: g });
    }

    /// End the transaction: `reason` is the 1.6 Reason / 2.0.1 stoppedReason, `trigger` the 2.0.1
    /// triggerReason.
    pub(super) fn stop_tx(&mut self, idx: usize, reason: &'static str, trigger: &'static str) {
        self.accumulate(idx);
        let energy = self.ch[idx].energy_wh;
        // The 2.0.1 Ended carries the last reading; stamped only when it goes out (a Charging transaction).
        let charging = matches!(&self.ch[idx].tx, Some(t) if t.phase == TxPhase::Charging);
        let reading =
            (charging && self.cfg.protocol == Protocol::Ocpp201).then(|| self.reading(idx, 0.0));
        let c = &mut self.ch[idx];
        let Some(t) = c.tx.as_mut() else {
            return;
        };
        if t.phase == TxPhase::Stopping {
            return;
        }
        if t.phase == TxPhase::Authorizing {
            c.tx = None;
            return;
        }
        if t.phase == TxPhase::Starting {
            // The start is not answered yet (1.6 has no transaction id): stop once it is.
            t.stop_reason = Some(reason);
            return;
        }
        t.phase = TxPhase::Stopping;
        // It no longer draws, and its TxProfiles end with it (1.6 §3.13.4; the connector's default applies to
        // the next one).
        c.profiles.end_tx(t.connector);
        let mut p = String::new();
        let action = match self.cfg.protocol {
            Protocol::Ocpp16 => {
                let Some(id) = t.id16 else {
                    c.tx = None;
                    return;
                };
                msg::stop16(&mut p, id, energy as i64, reason, &t.tag);
                Action::StopTransaction
            }
            Protocol::Ocpp201 => {
                let ev = msg::TxEvent {
                    event_type: "Ended",
                    trigger,
                    seq_no: t.seq_no,
                    tx_id: &t.id201,
                    stopped_reason: Some(reason),
                    remote_start_id: None,
                    id_tag: None,
                    evse: t.connector,
                };
                t.seq_no += 1;
                msg::tx_event(&mut p, &ev, reading.as_ref());
                Action::TransactionEvent
            }
        };
        self.call(idx, action, p);
    }

    pub(super) fn end_tx_refused(&mut self, idx: usize) {
        if matches!(&self.ch[idx].tx, Some(t) if t.phase == TxPhase::Authorizing) {
            self.r.tx_refused += 1;
            self.ch[idx].tx = None;
            self.ch[idx].tx_gen = self.ch[idx].tx_gen.wrapping_add(1);
            self.schedule_tx(idx);
        }
    }

    /// The scenario's status change (`status_period`): connector 1 from Available to Preparing or back, unless
    /// it is in a transaction (the scenario's or the load's), the charger is Unavailable or not booted.
    pub(super) fn status_change(&mut self, idx: usize) {
        let c = &self.ch[idx];
        let busy = matches!(&c.tx, Some(t) if t.connector == 1) || c.load.in_transaction();
        if busy || !c.available || c.boot != Boot::Accepted {
            return;
        }
        let plugged = !c.plugged;
        self.ch[idx].plugged = plugged;
        self.status_call(idx, 1, if plugged { "Preparing" } else { "Available" });
    }

    pub(super) fn tx_done(&mut self, idx: usize) {
        let Some(t) = self.ch[idx].tx.take() else {
            return;
        };
        if t.connector == 1 {
            // The cable came out with the transaction's end: the status sent next says Available.
            self.ch[idx].plugged = false;
        }
        self.ch[idx].profiles.end_tx(t.connector);
        self.ch[idx].tx_gen = self.ch[idx].tx_gen.wrapping_add(1);
        // What the CSMS asked for while the transaction ran.
        if let Some(available) = self.ch[idx].after_tx.available.take() {
            self.ch[idx].available = available;
        }
        let s = if self.ch[idx].available {
            "Available"
        } else {
            "Unavailable"
        };
        self.status_call(idx, t.connector, s);
        if let Some(reason) = self.ch[idx].after_tx.reboot.take() {
            self.begin_reboot(idx, reason, "Reboot");
        }
        if self.ch[idx].reboot_pending.is_none() {
            self.schedule_tx(idx);
        }
    }

    // -- firmware --------------------------------------------------------------------------------------------

    pub(super) fn fw_status(
        &mut self,
        idx: usize,
        status: &'static str,
        request_id: Option<i64>,
        signed: bool,
    ) {
        *self.r.fw_statuses.entry(status).or_default() += 1;
        let mut p = String::new();
        let (action, rid) = match (self.cfg.protocol, signed) {
            (Protocol::Ocpp16, false) => (Action::FirmwareStatusNotification, None),
            (Protocol::Ocpp16, true) => (Action::SignedFirmwareStatusNotification, request_id),
            (Protocol::Ocpp201, _) => (Action::FirmwareStatusNotification, request_id),
        };
        msg::firmware_status(&mut p, status, rid);
        self.call(idx, action, p);
    }

    pub(super) fn fw_step(&mut self, idx: usize) {
        let fail = self.ch[idx].traits & TRAIT_FW_FAIL != 0;
        let fw_gen = self.ch[idx].fw_gen;
        let Some(fw) = self.ch[idx].fw.as_mut() else {
            return;
        };
        let (rid, signed) = (fw.request_id, fw.signed);
        match fw.step {
            0 => {
                if fail && self.cfg.firmware_fail_step == FailStep::Downloading {
                    self.ch[idx].fw = None;
                    self.r.fw_failed += 1;
                    return self.fw_status(idx, "DownloadFailed", rid, signed);
                }
                fw.step = 1;
                self.fw_status(idx, "Downloaded", rid, signed);
                if signed {
                    self.fw_status(idx, "SignatureVerified", rid, signed);
                }
                self.after(self.cfg.firmware_step, idx, Timer::FwStep { gen: fw_gen });
            }
            1 => {
                fw.step = 2;
                self.fw_status(idx, "Installing", rid, signed);
                self.after(self.cfg.firmware_step, idx, Timer::FwStep { gen: fw_gen });
            }
            2 => {
                if fail && self.cfg.firmware_fail_step == FailStep::Installing {
                    self.ch[idx].fw = None;
                    self.r.fw_failed += 1;
                    return self.fw_status(idx, "InstallationFailed", rid, signed);
                }
                fw.step = 3;
                let version = fw.new_version.clone();
                if signed || self.cfg.protocol == Protocol::Ocpp201 {
                    self.fw_status(idx, "InstallRebooting", rid, signed);
                }
                // The new image runs after the reboot; "Installed" follows the boot it announces.
                self.ch[idx].fw_version = version;
                self.begin_reboot(idx, "FirmwareUpdate", "Reboot");
            }
            _ => {}
        }
    }

    // -- rebooting -------------------------------------------------------------------------------------------

    /// Reboot once what is queued has gone out (a transaction in progress is stopped first).
    /// `reason`: the boot reason after it; `stop`: the stop reason of a transaction it ends.
    pub(super) fn begin_reboot(&mut self, idx: usize, reason: &'static str, stop: &'static str) {
        if self.ch[idx].reboot_pending.is_some() {
            return;
        }
        self.ch[idx].reboot_pending = Some(reason);
        if matches!(&self.ch[idx].tx, Some(t) if t.phase != TxPhase::Stopping) {
            self.stop_tx(idx, stop, "ResetCommand");
        }
        self.stop_load_tx(idx, stop, "ResetCommand");
        let c = &self.ch[idx];
        if c.outstanding.is_none() && c.queue.is_empty() || !matches!(c.conn.link, Link::Open) {
            self.do_reboot(idx);
        } else {
            // Whatever happens to the queue, reboot within the call timeout.
            self.after(self.cfg.call_timeout, idx, Timer::Reboot);
        }
    }

    pub(super) fn do_reboot(&mut self, idx: usize) {
        let Some(reason) = self.ch[idx].reboot_pending.take() else {
            return;
        };
        self.r.reboots += 1;
        let c = &mut self.ch[idx];
        c.need_boot = true;
        c.boot_reason = match (self.cfg.protocol, reason) {
            (Protocol::Ocpp201, r) => r,
            _ => "PowerUp",
        };
        // Transaction messages survive the reboot (a charger keeps them until the CSMS has them); the stop that
        // begin_reboot asked for goes out after the boot. Only a transaction still waiting for its
        // authorisation is forgotten.
        if matches!(&c.tx, Some(t) if t.phase == TxPhase::Authorizing) {
            c.tx = None;
            c.tx_gen = c.tx_gen.wrapping_add(1);
        }
        c.queue.retain(|q| {
            q.purpose != Purpose::Load
                && matches!(
                    q.action,
                    Action::StartTransaction
                        | Action::StopTransaction
                        | Action::MeterValues
                        | Action::TransactionEvent
                        | Action::FirmwareStatusNotification
                        | Action::SignedFirmwareStatusNotification
                )
        });
        if let Some(out) = c.outstanding.take() {
            c.resend_first(out);
        }
        c.tx_scheduled = false;
        match c.conn.link {
            Link::Open => {
                self.set_link_down_counts(idx);
                self.ch[idx].conn.link = Link::Closing {
                    reconnect_after: Some(self.cfg.reboot_delay),
                };
                if self.ch[idx].boot == Boot::Accepted {
                    // set_link_down_counts counted it while Open; boot state resets with the reboot.
                }
                self.ch[idx].boot = Boot::None;
                self.emit_close(idx, crate::codec::CLOSE_NORMAL);
                let e = self.ch[idx].conn.epoch;
                self.after(self.cfg.call_timeout, idx, Timer::Close { epoch: e });
            }
            Link::Down => {
                self.ch[idx].boot = Boot::None;
            }
            _ => {
                self.drop_link(idx);
                self.ch[idx].boot = Boot::None;
                self.after(self.cfg.reboot_delay, idx, Timer::Connect);
            }
        }
    }
}
