//! When things happen: the timer heap of the run and of each charger, and what each timer does when it fires.

use super::*;

/// What a charger's timer does when it fires. The link-bound ones carry the epoch of the link they were set on
/// and die with it; transaction and firmware ones carry the generation of what they belong to.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Timer {
    Connect,
    Heartbeat { epoch: u32 },
    BootRetry { epoch: u32 },
    CallTimeout { epoch: u32, seq: u32 },
    Flap { epoch: u32 },
    SlowResume { epoch: u32 },
    TxBegin { gen: u32 },
    Meter { gen: u32 },
    TxEnd { gen: u32 },
    FwStep { gen: u32 },
    StatusChange { epoch: u32 },
    Reboot,
    Handshake { epoch: u32 },
    Close { epoch: u32 },
}

impl Timer {
    /// The link epoch a link-bound timer was set on.
    fn link_epoch(self) -> Option<u32> {
        match self {
            Timer::Heartbeat { epoch }
            | Timer::BootRetry { epoch }
            | Timer::CallTimeout { epoch, .. }
            | Timer::Flap { epoch }
            | Timer::SlowResume { epoch }
            | Timer::StatusChange { epoch }
            | Timer::Handshake { epoch }
            | Timer::Close { epoch } => Some(epoch),
            _ => None,
        }
    }
}

/// The run's own timers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum RunTimer {
    End,
    Storm,
    Rolling,
}

/// A due timer: a charger's (by index) or the run's; at the same instant chargers' fire first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Due {
    Charger(u32, Timer),
    Run(RunTimer),
}

impl Sim {
    // -- timers --------------------------------------------------------------------------------------------

    pub(super) fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    pub(super) fn at(&mut self, at_us: u64, due: Due) {
        self.timers.push(Reverse((at_us, due)));
    }

    /// Charger `idx`'s `timer`, `delay_s` from now.
    pub(super) fn after(&mut self, delay_s: f64, idx: usize, timer: Timer) {
        let at = self.now_us() + secs(delay_s);
        self.at(at, Due::Charger(idx as u32, timer));
    }

    pub(super) fn fire_timers(&mut self, now: u64) {
        while let Some(&Reverse((at, due))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if !matches!(self.phase, Phase::Running) {
                continue;
            }
            match due {
                Due::Run(timer) => self.run_timer(timer),
                Due::Charger(idx, timer) => self.charger_timer(idx as usize, timer),
            }
            self.drain();
        }
    }

    /// A reconnect storm now: every open link drops without a close frame (a network outage) and each charger
    /// reconnects after a uniform random wait in [0, `backoff`] s, without booting again (as the scenario's
    /// `[reconnect_storm]` does at its time). Returns how many links dropped.
    pub fn storm_now(&mut self, backoff: f64) -> u64 {
        let before = self.r.storm_drops;
        self.drop_every_link(backoff.max(0.0));
        self.r.storm_drops - before
    }

    pub(super) fn drop_every_link(&mut self, backoff: f64) {
        for idx in 0..self.ch.len() {
            if matches!(self.ch[idx].conn.link, Link::Open) {
                self.r.storm_drops += 1;
                self.drop_link(idx);
                let wait = self.rand_f64() * backoff;
                self.after(wait, idx, Timer::Connect);
            }
        }
    }

    pub(super) fn run_timer(&mut self, timer: RunTimer) {
        match timer {
            RunTimer::End => self.begin_closing(),
            RunTimer::Storm => self.drop_every_link(self.cfg.storm_backoff),
            RunTimer::Rolling => {
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
                let at = self.now_us() + secs(self.cfg.rolling_period);
                self.at(at, Due::Run(RunTimer::Rolling));
            }
        }
    }

    pub(super) fn charger_timer(&mut self, idx: usize, timer: Timer) {
        let c = &self.ch[idx];
        let on_link = timer.link_epoch() == Some(c.conn.epoch);
        let link_ok = on_link && matches!(c.conn.link, Link::Open);
        match timer {
            Timer::Connect => {
                if matches!(c.conn.link, Link::Down) {
                    self.connect_wait.push_back(idx as u32);
                }
            }
            Timer::Heartbeat { epoch } if link_ok => {
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
                self.after(interval, idx, Timer::Heartbeat { epoch });
            }
            Timer::BootRetry { .. }
                if link_ok
                    && matches!(c.boot, Boot::Pending | Boot::None)
                    && c.outstanding.is_none() =>
            {
                self.send_boot(idx)
            }
            Timer::CallTimeout { seq, .. } if link_ok => {
                if matches!(&c.outstanding, Some(o) if o.seq == seq) {
                    let out = self.ch[idx].outstanding.take().unwrap();
                    self.error(E_TIMEOUT, out.action.name());
                    self.unanswered(idx, out);
                    self.pump_queue(idx);
                }
            }
            Timer::Flap { .. } if link_ok => {
                self.r.flaps += 1;
                self.drop_link(idx);
                self.after(self.cfg.flap_down, idx, Timer::Connect);
            }
            Timer::SlowResume { .. } if link_ok => self.slow_resume(idx),
            Timer::TxBegin { gen } if gen == c.tx_gen => {
                self.ch[idx].tx_scheduled = false;
                if !self.begin_tx(idx, None, None) && self.ch[idx].tx.is_none() {
                    // Unavailable or not booted: the driver tries again later.
                    self.schedule_tx(idx);
                }
            }
            Timer::Meter { gen } if gen == c.tx_gen => self.meter_tick(idx),
            Timer::TxEnd { gen } if gen == c.tx_gen => {
                if matches!(&c.tx, Some(t) if t.phase == TxPhase::Charging) {
                    self.stop_tx(idx, "Local", "StopAuthorized");
                }
            }
            Timer::FwStep { gen } if gen == c.fw_gen => self.fw_step(idx),
            Timer::StatusChange { epoch } if link_ok => {
                self.status_change(idx);
                self.after(self.cfg.status_period, idx, Timer::StatusChange { epoch });
            }
            Timer::Reboot if c.reboot_pending.is_some() => self.do_reboot(idx),
            Timer::Handshake { .. }
                if on_link
                    && matches!(
                        c.conn.link,
                        Link::Connecting | Link::Securing | Link::Upgrading { .. }
                    ) =>
            {
                self.fail_link(idx, E_TIMEOUT, "connect and upgrade")
            }
            Timer::Close { .. } if on_link && matches!(c.conn.link, Link::Closing { .. }) => {
                // The CSMS never finished the close handshake: let go of the link all the same.
                self.fail_link(idx, E_CLOSE, "close handshake not finished")
            }
            _ => {}
        }
    }
}
