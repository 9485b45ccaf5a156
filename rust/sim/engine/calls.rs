//! Sending: our CALLs (one outstanding per link, the rest queued in order), the replies to the CSMS's CALLs;
//! what the charger does when its link comes up. What it sends goes to the outbox (`outbox.rs`).

use std::fmt::Write as _;

use super::*;

impl Sim {
    // -- the link, as the protocol sees it -----------------------------------------------------------------

    /// The charger's link is up (open, upgraded): it boots, or, accepted before, carries on without a new boot.
    pub(super) fn link_up(&mut self, idx: usize) {
        let now = self.now_us();
        let c = &mut self.ch[idx];
        if !c.ever_connected {
            c.ever_connected = true;
            self.r.first_connects += 1;
            self.r.last_first_connect_us = now;
        }
        if c.need_boot || c.boot != Boot::Accepted {
            self.send_boot(idx);
        } else {
            self.booted_open += 1;
            self.link_up_timers(idx);
            self.pump_queue(idx);
        }
    }

    /// Timers that live as long as an accepted link: heartbeats, flapping.
    pub(super) fn link_up_timers(&mut self, idx: usize) {
        if !matches!(self.ch[idx].conn.link, Link::Open) {
            // A boot answered while the link closes (the run ended): nothing more on this link.
            return;
        }
        let e = self.ch[idx].conn.epoch;
        let hb = self.ch[idx].hb_interval;
        self.after(hb, idx, Timer::Heartbeat { epoch: e });
        if self.ch[idx].traits & TRAIT_FLAP != 0 {
            let period = self.cfg.flap_period * (0.5 + self.rand_f64());
            self.after(period, idx, Timer::Flap { epoch: e });
        }
        if self.cfg.status_period > 0.0 {
            // The first at a random instant of a period, so the fleet's changes are spread evenly.
            let first = self.cfg.status_period * self.rand_f64();
            self.after(first, idx, Timer::StatusChange { epoch: e });
        }
        self.load_resume(idx);
    }

    // -- sending CALLs -------------------------------------------------------------------------------------

    pub(super) fn send_boot(&mut self, idx: usize) {
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
    pub(super) fn serial(&self, idx: usize) -> String {
        let id = self.cfg.charger_id(idx);
        let skip = id.chars().count().saturating_sub(25);
        id.chars().skip(skip).collect()
    }

    /// Queue one of the charger's own CALLs (sent once the ones before it are answered).
    pub(super) fn call(&mut self, idx: usize, action: Action, payload: String) {
        self.call_for(idx, action, payload, Purpose::Own);
    }

    pub(super) fn call_for(
        &mut self,
        idx: usize,
        action: Action,
        payload: String,
        purpose: Purpose,
    ) {
        self.ch[idx].queue.push_back(Queued {
            action,
            payload,
            purpose,
        });
        self.pump_queue(idx);
    }

    pub(super) fn pump_queue(&mut self, idx: usize) {
        let c = &mut self.ch[idx];
        if c.outstanding.is_some() || !matches!(c.conn.link, Link::Open) || c.boot != Boot::Accepted
        {
            return;
        }
        if let Some(q) = c.queue.pop_front() {
            self.send_call(idx, q.action, &q.payload, q.purpose);
        } else if c.reboot_pending.is_some() {
            self.do_reboot(idx);
        }
    }

    pub(super) fn send_call(
        &mut self,
        idx: usize,
        action: Action,
        payload: &str,
        purpose: Purpose,
    ) {
        let c = &mut self.ch[idx];
        c.seq = c.seq.wrapping_add(1);
        let seq = c.seq;
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
        self.emit_text(idx, |t| {
            msg::call_head(t, seq, action);
            t.push_str(payload);
            t.push(']');
        });
        let e = self.ch[idx].conn.epoch;
        self.after(
            self.cfg.call_timeout,
            idx,
            Timer::CallTimeout { epoch: e, seq },
        );
    }

    pub(super) fn send_reply(&mut self, idx: usize, unique_id: &str, payload: &str) {
        let id = serde_json::to_string(unique_id).unwrap_or_default();
        self.r.sent += 1;
        self.emit_text(idx, |t| {
            t.push_str("[3,");
            t.push_str(&id);
            t.push(',');
            t.push_str(payload);
            t.push(']');
        });
    }

    pub(super) fn send_call_error(&mut self, idx: usize, unique_id: &str, code: &str, why: &str) {
        let json = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let (id, code, why) = (json(unique_id), json(code), json(why));
        self.r.sent += 1;
        self.emit_text(idx, |t| {
            let _ = write!(t, "[4,{id},{code},{why},{{}}]");
        });
    }
}
